"""Where the client keeps its session tokens between runs.

One JSON file, ``tokens.json``, in ``$XDG_CONFIG_HOME/trio-chat/`` (or ``~/.config/trio-chat/``),
mapping server URL → username → bearer token. Usernames are case-insensitive on the server, so
they are kept lower-cased: ``--user Alice`` finds the session saved by ``--user alice``.
A token is as good as a password for as long as it lives, so the directory is created 0700 and
the file 0600, and the file is written to a temporary file (created 0600 from the start, never
world-readable even for an instant) that is then renamed over the old one: a crash mid-write
leaves the previous file intact.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Final

__all__ = ["TOKEN_FILE", "TokenStore", "default_config_dir"]

TOKEN_FILE: Final = "tokens.json"
FILE_MODE: Final = 0o600
DIR_MODE: Final = 0o700


def default_config_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "trio-chat"


class TokenStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / TOKEN_FILE

    def get(self, server: str, username: str) -> str | None:
        users = self._load().get(server, {})
        # Files written before keys were lower-cased have the name as it was typed.
        token = users.get(username.lower(), users.get(username))
        return token if isinstance(token, str) else None

    def put(self, server: str, username: str, token: str) -> None:
        data = self._load()
        users = data.setdefault(server, {})
        users.pop(username, None)
        users[username.lower()] = token
        self._save(data)

    def forget(self, server: str, username: str) -> None:
        data = self._load()
        users = data.get(server, {})
        found = [users.pop(key, None) for key in {username, username.lower()}]
        if any(t is not None for t in found):
            if not users:
                del data[server]
            self._save(data)

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        self._tighten()
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            return {}  # a damaged file only costs a fresh login
        if not isinstance(data, dict):
            return {}
        return {
            str(server): {str(u): t for u, t in users.items() if isinstance(t, str)}
            for server, users in data.items()
            if isinstance(users, dict)
        }

    def _tighten(self) -> None:
        # Someone (a backup restore, a careless cp) may have loosened the mode: repair it.
        with contextlib.suppress(OSError):
            if stat.S_IMODE(self.path.stat().st_mode) != FILE_MODE:
                self.path.chmod(FILE_MODE)

    def _save(self, data: dict[str, dict[str, str]]) -> None:
        self.directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{TOKEN_FILE}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=2, sort_keys=True)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
