"""A ``MutableMapping[bytes, bytes]`` over one SQLite table, for ``shelve.Shelf`` to sit on.

This machine's Python has neither ``dbm.gnu`` nor ``dbm.ndbm``, and ``dbm.dumb`` can lose
its index in a crash. SQLite in WAL mode is crash-safe: a transaction is either all there
after a crash or not at all (it is what Python 3.13's ``dbm.sqlite3`` does). Several
mappings share one connection, so one transaction can span every table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, MutableMapping, Sequence


def connect(path: str, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode; transactions are explicit (``transaction``)."""
    if readonly:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk when it returns; survives power loss, not just a crash.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


class SqliteMapping(MutableMapping[bytes, bytes]):
    def __init__(self, conn: sqlite3.Connection, table: str) -> None:
        if not table.isidentifier():
            raise ValueError(f"bad table name {table!r}")
        self._conn = conn
        self._get = f"SELECT value FROM {table} WHERE key = ?"
        self._put = f"INSERT OR REPLACE INTO {table} (key, value) VALUES (?, ?)"
        self._del = f"DELETE FROM {table} WHERE key = ?"
        self._keys = f"SELECT key FROM {table}"
        self._count = f"SELECT COUNT(*) FROM {table}"
        self._table = table

    def create(self) -> None:
        self._conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self._table} "
            "(key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID"
        )

    def __getitem__(self, key: bytes) -> bytes:
        row = self._conn.execute(self._get, (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        value: bytes = row[0]
        return value

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """Several point lookups in one call (one thread hop for the caller)."""
        execute = self._conn.execute
        out: list[bytes | None] = []
        for key in keys:
            row = execute(self._get, (key,)).fetchone()
            out.append(None if row is None else row[0])
        return out

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._conn.execute(self._put, (key, value))

    def put_many(self, items: Iterable[tuple[bytes, bytes]]) -> None:
        """Several (key, value) writes in one statement run (a commit's rows of a table)."""
        self._conn.executemany(self._put, items)

    def discard_many(self, keys: Iterable[bytes]) -> None:
        """Delete each key; a key that is not there is no error."""
        self._conn.executemany(self._del, ((key,) for key in keys))

    def __delitem__(self, key: bytes) -> None:
        if self._conn.execute(self._del, (key,)).rowcount == 0:
            raise KeyError(key)

    def scan(self) -> list[tuple[bytes, bytes]]:
        """Every (key, value) in one query: for the rare whole-table pass (repair)."""
        return self._conn.execute(f"SELECT key, value FROM {self._table}").fetchall()

    def clear(self) -> None:
        self._conn.execute(f"DELETE FROM {self._table}")

    def __iter__(self) -> Iterator[bytes]:
        for (key,) in self._conn.execute(self._keys).fetchall():
            yield key

    def __len__(self) -> int:
        count: int = self._conn.execute(self._count).fetchone()[0]
        return count
