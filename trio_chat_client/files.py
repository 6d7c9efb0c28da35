"""Files on this machine: what to call a download, what type an upload is, sizes and progress.

Pure but for :func:`create_new`, which opens a file that did not exist. A file's name comes
from whoever uploaded it, through the server: it is a label, never a path. :func:`safe_name`
makes it one file name in the target directory, or refuses it.
"""

from __future__ import annotations

import mimetypes
import os
import re
from pathlib import Path
from typing import BinaryIO, Final
from urllib.parse import unquote

import attrs

__all__ = [
    "PROGRESS_FROM",
    "Progress",
    "UnsafeNameError",
    "available_path",
    "content_type_for",
    "create_new",
    "format_size",
    "name_from_disposition",
    "progress_bar",
    "safe_name",
]

# Files from this size on show a progress bar while they travel.
PROGRESS_FROM: Final = 1024 * 1024
NAME_MAX: Final = 255  # bytes, on most file systems
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class UnsafeNameError(ValueError):
    """A name that cannot be made a file name in the target directory."""


def safe_name(name: str) -> str:
    """The server-given ``name`` as one file name: never a path, never outside the directory.

    Only the last part after any ``/`` or ``\\`` is kept (``../../x`` → ``x``), control
    characters are dropped, and what is left must be a name: not empty, not ``.`` or ``..``.
    A leading dot is kept off too, so a download does not turn up hidden (``.bashrc`` →
    ``bashrc``). Too long a name is cut, keeping its extension.
    """
    base = re.split(r"[/\\]", name)[-1]
    base = _CONTROL.sub("", base).strip()
    if base in ("", ".", ".."):
        raise UnsafeNameError(f"the file's name {name!r} is not a file name")
    base = base.lstrip(".").strip() or "download"
    encoded = base.encode("utf-8")
    if len(encoded) > NAME_MAX:
        stem, dot, ext = base.rpartition(".")
        ext = f".{ext}" if dot and len(ext.encode()) < 16 else ""
        room = NAME_MAX - len(ext.encode())
        base = (stem if ext else base).encode()[:room].decode("utf-8", "ignore") + ext
    return base


def available_path(directory: Path, name: str) -> Path:
    """``directory/name``, or ``name (1).ext``, ``name (2).ext`` … if that exists already."""
    candidate = directory / name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    else:
        ext = "." + ext
    number = 1
    while candidate.exists() or candidate.is_symlink():
        candidate = directory / f"{stem} ({number}){ext}"
        number += 1
    return candidate


def create_new(path: Path) -> BinaryIO:
    """Open ``path`` for writing only if nothing is there (not even a dangling symlink):
    a download never overwrites a file, and never writes through a link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o644)
    return os.fdopen(fd, "wb")


def name_from_disposition(header: str | None) -> str | None:
    """The file name of a ``Content-Disposition`` header (``filename*=UTF-8''…`` first)."""
    if not header:
        return None
    found = re.search(r"filename\*\s*=\s*([\w-]+)'[^']*'([^;]+)", header, re.IGNORECASE)
    if found:
        charset = found[1].lower()
        try:
            return unquote(found[2].strip(), encoding=charset, errors="strict")
        except (LookupError, UnicodeDecodeError):
            return None
    found = re.search(r'filename\s*=\s*"((?:[^"\\]|\\.)*)"', header, re.IGNORECASE)
    if found:
        return re.sub(r"\\(.)", r"\1", found[1])
    found = re.search(r"filename\s*=\s*([^;\s]+)", header, re.IGNORECASE)
    return found[1] if found else None


def content_type_for(path: Path) -> str:
    """The type to upload ``path`` as, guessed from its name (else bytes)."""
    kind, encoding = mimetypes.guess_type(path.name, strict=False)
    if kind is None or encoding is not None:  # a .tar.gz is gzip bytes, not a tar
        return "application/gzip" if encoding == "gzip" else "application/octet-stream"
    return kind


def format_size(size: int) -> str:
    """``512 B``, ``3.4 KiB``, ``2.0 MiB``, ``1.2 GiB``."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"


@attrs.define
class Progress:
    """A transfer under way: what, which way, how far."""

    verb: str  # "uploading", "downloading"
    name: str
    total: int
    done: int = 0

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 1.0

    def describe(self, width: int = 20) -> str:
        return (
            f"{self.verb} {self.name} {progress_bar(self.fraction, width)} "
            f"{int(self.fraction * 100):3d}% of {format_size(self.total)}"
        )


def progress_bar(fraction: float, width: int = 20) -> str:
    """``[#########...........]``: ASCII, so every terminal shows it the same width."""
    fraction = min(1.0, max(0.0, fraction))
    filled = int(fraction * width)
    return "[" + "#" * filled + "." * (width - filled) + "]"
