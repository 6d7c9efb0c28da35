"""File contents on disk, named by their SHA-256: ``<data_dir>/files/ab/abcdef...``.

An upload streams into a temporary file in ``files/tmp`` (never named after anything a
client sends), is fsynced, and only then renamed into place and its directory fsynced; the
same content uploaded twice is stored once. Temporary files left by a crash are removed at
start-up. Synchronous: called from worker threads.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


class BlobStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "files"
        self.tmp = self.root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def clean_temp(self) -> int:
        """Remove what uploads cut short by a crash left behind; how many."""
        count = 0
        for leftover in self.tmp.iterdir():
            leftover.unlink(missing_ok=True)
            count += 1
        return count

    def temp_path(self) -> Path:
        return self.tmp / secrets.token_hex(16)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError("not a sha256")
        return self.root / sha256[:2] / sha256

    def keep(self, temp: Path, sha256: str) -> Path:
        """Move a complete, fsynced temporary file into place (durably)."""
        final = self.path(sha256)
        final.parent.mkdir(exist_ok=True)
        if final.exists():
            temp.unlink()  # the same bytes are already kept
        else:
            os.replace(temp, final)
            fsync_dir(final.parent)
        return final

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)


def fsync_dir(directory: Path) -> None:
    """Make a rename or creation in ``directory`` durable (the store's file, a blob)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
