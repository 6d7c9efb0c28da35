"""``ShelfStore``: the store on ``shelve``, one shelf per table of one SQLite file.

Layout (``<data_dir>/trio-chat.sqlite3``):

===========  ==================  =============================================
shelf        key                 value
===========  ==================  =============================================
users        user key            User
sessions     sha256(token)       Session
user_states  user key            UserState (read positions, window, standing)
events       cursor              Event (a message event holds the message, with
                                 its comments as they are now)
chat_index   ``chat/seq``        cursor of the chat's seq-th message
meta         ``cursor``,         the log head, each chat's head, the schema
             ``head/<chat>``,    version
             ``schema``
===========  ==================  =============================================

Start-up loads users, sessions, user states and meta; events and the chat index are only
ever read by key, so opening a store with a million messages costs what an empty one does.
"""

from __future__ import annotations

import shelve
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trio_chat.domain.models import Event, Session, User
from trio_chat.domain.state import UserState
from trio_chat.storage import records
from trio_chat.storage.base import Batch, Snapshot
from trio_chat.storage.sqlite_mapping import SqliteMapping, connect

FILENAME = "trio-chat.sqlite3"
TABLES = ("users", "sessions", "user_states", "events", "chat_index", "meta")
PICKLE_PROTOCOL = 5


class StoreVersionError(Exception):
    pass


def _chat_key(chat: str, seq: int) -> str:
    return f"{chat}/{seq}"


class _Shelves:
    """One ``shelve.Shelf`` per table, all on one connection."""

    def __init__(self, conn: sqlite3.Connection, *, create: bool) -> None:
        self.conn = conn
        self.mappings = {t: SqliteMapping(conn, t) for t in TABLES}
        if create:
            for mapping in self.mappings.values():
                mapping.create()
        self.shelves: dict[str, shelve.Shelf[Any]] = {
            t: shelve.Shelf(m, protocol=PICKLE_PROTOCOL, writeback=False)
            for t, m in self.mappings.items()
        }

    def __getitem__(self, table: str) -> shelve.Shelf[Any]:
        return self.shelves[table]


class ShelfStore:
    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / FILENAME
        self._writer = _Shelves(connect(str(self.path)), create=True)
        meta = self._writer["meta"]
        version = meta.get("schema")
        if version is None:
            self._transaction(lambda: meta.__setitem__("schema", records.SCHEMA_VERSION))
        elif version != records.SCHEMA_VERSION:
            raise StoreVersionError(f"{self.path} has schema {version}, expected 1")
        self._reader = _Shelves(connect(str(self.path), readonly=True), create=False)

    def _transaction(self, body: Any) -> None:
        conn = self._writer.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            body()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def load(self) -> Snapshot:
        w = self._writer
        meta = w["meta"]
        heads = {
            key.removeprefix("head/"): int(value)
            for key, value in meta.items()
            if key.startswith("head/")
        }
        return Snapshot(
            users={k: records.load(v, User) for k, v in w["users"].items()},
            sessions={k: records.load(v, Session) for k, v in w["sessions"].items()},
            user_states={k: records.load(v, UserState) for k, v in w["user_states"].items()},
            heads=heads,
            cursor=int(meta.get("cursor", 0)),
        )

    def write(self, batch: Batch) -> None:
        w = self._writer

        def body() -> None:
            users, sessions, states = w["users"], w["sessions"], w["user_states"]
            events, index, meta = w["events"], w["chat_index"], w["meta"]
            for key, user in batch.users.items():
                users[key] = records.dump(user)
            for key, session in batch.sessions.items():
                if session is None:
                    sessions.pop(key, None)
                else:
                    sessions[key] = records.dump(session)
            for key, state in batch.user_states.items():
                states[key] = records.dump(state)
            for cursor, event in batch.events.items():
                events[str(cursor)] = records.dump(event)
            for (chat, seq), cursor in batch.chat_index.items():
                index[_chat_key(chat, seq)] = cursor
            for chat, head in batch.heads.items():
                meta[f"head/{chat}"] = head
            if batch.cursor:
                meta["cursor"] = batch.cursor

        self._transaction(body)

    def read_events(self, cursors: Sequence[int]) -> list[Event | None]:
        shelf = self._reader["events"]
        out: list[Event | None] = []
        for cursor in cursors:
            raw = shelf.get(str(cursor))
            out.append(None if raw is None else records.load(raw, Event))
        return out

    def read_chat_index(self, chat: str, seqs: Sequence[int]) -> list[int | None]:
        shelf = self._reader["chat_index"]
        return [shelf.get(_chat_key(chat, seq)) for seq in seqs]

    def close(self) -> None:
        for shelves in (self._reader, self._writer):
            for shelf in shelves.shelves.values():
                shelf.close()
            shelves.conn.close()
