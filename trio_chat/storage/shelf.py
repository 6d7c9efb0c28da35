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
client_ids   ``user/client_id``  ClientRequest: what an idempotency key made
rooms        room id             Room (members, links by hash, requests)
scheduled    scheduled id        Scheduled (pending, and done ones for a day)
files        file id             FileRecord (the bytes are in files/, by sha256)
meta         ``cursor``,         the log head, each chat's head and floor (its
             ``head/<chat>``,    messages at or below it have expired for everyone
             ``floor/<chat>``,   and left the disk), the schema version
             ``schema``
===========  ==================  =============================================

Start-up loads users, sessions, user states and meta; events and the chat index are only
ever read by key, so opening a store with a million messages costs what an empty one does.

The event log is the truth; the chat index and the heads are derived from it. Heads only
ever grow. Start-up checks, with a few lookups, that nothing lies past a recorded head, and
rebuilds the index and heads from the log when something does -- as it must for stores
written by schema 1, whose comments could move a chat's head back (see ``_repair``).
"""

from __future__ import annotations

import logging
import os
import pickle
import shelve
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from trio_chat.domain.files import FileRecord
from trio_chat.domain.idempotency import ClientRequest
from trio_chat.domain.models import Event, Session, User
from trio_chat.domain.rooms import Room
from trio_chat.domain.schedule import Scheduled
from trio_chat.domain.state import UserState
from trio_chat.storage import records
from trio_chat.storage.base import Batch, Snapshot
from trio_chat.storage.blobs import fsync_dir
from trio_chat.storage.sqlite_mapping import SqliteMapping, connect

log = logging.getLogger("trio_chat.storage")

FILENAME = "trio-chat.sqlite3"
TABLES = (
    "users",
    "sessions",
    "user_states",
    "events",
    "chat_index",
    "meta",
    "client_ids",
    "rooms",
    "scheduled",
    "files",
)
# The tables every store has had since schema 1; newer ones are added when a store is opened.
FIRST_TABLES = TABLES[:6]
PICKLE_PROTOCOL = 5
KEYS = "utf-8"  # how keys are encoded (shelve's default)
# Schema 1 stores may hold the damage of a bug (a comment moved its chat's head back to the
# commented message): they are repaired once, on the first start that reads them. Schema 2
# to 5 lack tables that opening adds.
REPAIRED_SCHEMAS = (1,)
UPGRADED_SCHEMAS = (1, 2, 3, 4, 5)


class StoreError(Exception):
    """The data directory holds something the server must not start on."""


class StoreVersionError(StoreError):
    pass


class StoreDamaged(StoreError):
    pass


def _chat_key(chat: str, seq: int) -> str:
    return f"{chat}/{seq}"


class _Shelf(shelve.Shelf[Any]):
    """A ``shelve.Shelf`` on a ``SqliteMapping`` that also writes many keys at once.

    A commit writes dozens of rows per table under load; one ``executemany`` per table,
    with the values pickled as ``Shelf.__setitem__`` pickles them (the same bytes), costs
    about a third less than a ``__setitem__`` (a ``BytesIO`` and a ``Pickler``) and an
    ``execute`` per row."""

    def __init__(self, mapping: SqliteMapping) -> None:
        super().__init__(mapping, protocol=PICKLE_PROTOCOL, writeback=False, keyencoding=KEYS)
        self.mapping = mapping

    def put_many(self, values: Mapping[str, object]) -> None:
        """Store each value under its key (values as ``records.dump`` made them)."""
        if values:
            self.mapping.put_many(
                (key.encode(KEYS), pickle.dumps(value, PICKLE_PROTOCOL))
                for key, value in values.items()
            )

    def discard_many(self, keys: Iterable[str]) -> None:
        self.mapping.discard_many(key.encode(KEYS) for key in keys)

    def put_records(self, changes: Mapping[str, object]) -> None:
        """Store each record of ``changes`` under its key; None deletes the key."""
        if not changes:
            return
        self.put_many(
            {key: records.dump(record) for key, record in changes.items() if record is not None}
        )
        self.discard_many([key for key, record in changes.items() if record is None])


class _Shelves:
    """One ``shelve.Shelf`` per table, all on one connection."""

    def __init__(self, conn: sqlite3.Connection, *, create: bool) -> None:
        self.conn = conn
        self.mappings = {t: SqliteMapping(conn, t) for t in TABLES}
        if create:
            for mapping in self.mappings.values():
                mapping.create()
        self.shelves = {t: _Shelf(m) for t, m in self.mappings.items()}

    def __getitem__(self, table: str) -> _Shelf:
        return self.shelves[table]


class ShelfStore:
    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / FILENAME
        if not self.path.exists():
            _create(self.path)
        self._reader = _Shelves(connect(str(self.path), readonly=True), create=False)
        try:
            self._check_tables()  # before the writer's first write (WAL mode) touches the file
            self._writer = _Shelves(connect(str(self.path)), create=False)
        except BaseException:
            self._reader.conn.close()
            raise
        try:
            self._check_schema()
        except BaseException:
            self.close()
            raise

    def _check_tables(self) -> None:
        found = {row[0] for row in self._reader.conn.execute("SELECT name FROM sqlite_master")}
        missing = [t for t in FIRST_TABLES if t not in found]
        if missing:
            # An existing file is never taken for a new store: a zero-length or foreign file
            # would otherwise start as an empty server and hide that the data is gone.
            raise StoreDamaged(
                f"{self.path} is not a trio-chat store (empty or damaged: no {missing[0]} "
                "table); restore it from a backup, or remove it to start empty"
            )

    def _check_schema(self) -> None:
        """Refuse a store of another version; repair what a known bug damaged."""
        meta = self._writer["meta"]
        version = meta.get("schema")
        if version != records.SCHEMA_VERSION and version not in UPGRADED_SCHEMAS:
            raise StoreVersionError(
                f"{self.path} has schema {version}, expected {records.SCHEMA_VERSION}"
            )
        if version in REPAIRED_SCHEMAS or self._past_a_head():
            self._repair()
        if version in UPGRADED_SCHEMAS:

            def upgrade() -> None:
                for mapping in self._writer.mappings.values():
                    mapping.create()
                meta["schema"] = records.SCHEMA_VERSION

            self._transaction(upgrade)
            log.info(
                "%s: upgraded from schema %s to %s", self.path, version, records.SCHEMA_VERSION
            )

    def _past_a_head(self) -> bool:
        """Whether a record lies past the log's or a chat's recorded head (a few lookups)."""
        w = self._writer
        meta, index = w["meta"], w["chat_index"]
        if str(int(meta.get("cursor", 0)) + 1) in w["events"]:
            return True
        return any(
            _chat_key(key.removeprefix("head/"), int(value) + 1) in index
            for key, value in meta.items()
            if key.startswith("head/")
        )

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
            rooms={k: records.load(v, Room) for k, v in w["rooms"].items()},
            scheduled={k: records.load(v, Scheduled) for k, v in w["scheduled"].items()},
            floors={
                key.removeprefix("floor/"): int(value)
                for key, value in meta.items()
                if key.startswith("floor/")
            },
            files={k: records.load(v, FileRecord) for k, v in w["files"].items()},
        )

    def write(self, batch: Batch) -> None:
        w = self._writer

        def body() -> None:
            events, index, meta = w["events"], w["chat_index"], w["meta"]
            for table, changes in (
                ("users", batch.users),
                ("sessions", batch.sessions),
                ("user_states", batch.user_states),
                ("rooms", batch.rooms),
                ("files", batch.files),
                ("scheduled", batch.scheduled),
                ("client_ids", batch.client_requests),
            ):
                w[table].put_records(changes)
            events.put_records({str(cursor): event for cursor, event in batch.events.items()})
            index.put_many(
                {_chat_key(chat, seq): cursor for (chat, seq), cursor in batch.chat_index.items()}
            )
            if batch.drop_events:
                events.discard_many([str(cursor) for cursor in batch.drop_events])
            if batch.drop_index:
                index.discard_many([_chat_key(chat, seq) for chat, seq in batch.drop_index])
            for chat, floor in batch.floors.items():
                if floor > meta.get(f"floor/{chat}", 0):
                    meta[f"floor/{chat}"] = floor
            # Heads only grow: a batch can never make a stored message unreachable.
            for chat, head in batch.heads.items():
                key = f"head/{chat}"
                if head > meta.get(key, 0):
                    meta[key] = head
            if batch.cursor > meta.get("cursor", 0):
                meta["cursor"] = batch.cursor

        self._transaction(body)

    def _repair(self) -> None:
        """Rebuild each chat's numbering, index and head, and the log head, from the log.

        The log holds every message with its chat; in a damaged store some messages may
        share a number (a send after a lost head took an older message's place). Each chat's
        messages are numbered again in log order, so all of them are reachable once more,
        and read positions move to the same message under its new number. One transaction:
        a crash during the repair leaves the store as it was, to be repaired next time.
        """
        w = self._writer
        events, index, meta, states = w["events"], w["chat_index"], w["meta"], w["user_states"]
        log.warning("checking %s: rebuilding chat indexes from the event log", self.path)
        by_chat: dict[str, list[tuple[int, int]]] = {}  # chat -> [(cursor, stored seq)]
        top = 0
        for key, value in w.mappings["events"].scan():
            cursor = int(key)
            top = max(top, cursor)
            raw = pickle.loads(value)
            if raw.get("type") == "message" and raw.get("message") is not None:
                message = raw["message"]
                by_chat.setdefault(message["chat"], []).append((cursor, message["seq"]))
        old_index: dict[str, int] = {
            key.decode("utf-8"): pickle.loads(value)
            for key, value in w.mappings["chat_index"].scan()
        }
        new_seq: dict[int, int] = {}
        renumbered = 0

        def body() -> None:
            nonlocal renumbered
            w.mappings["chat_index"].clear()
            for key in [k for k in meta if k.startswith("head/")]:
                del meta[key]
            for chat, messages in by_chat.items():
                messages.sort()
                for seq, (cursor, stored) in enumerate(messages, start=1):
                    new_seq[cursor] = seq
                    index[_chat_key(chat, seq)] = cursor
                    if stored != seq:
                        raw = events[str(cursor)]
                        raw["message"]["seq"] = seq
                        events[str(cursor)] = raw
                        renumbered += 1
                meta[f"head/{chat}"] = len(messages)
            meta["cursor"] = max(top, int(meta.get("cursor", 0)))
            for user, raw_state in list(states.items()):
                read: dict[str, int] = raw_state.get("read") or {}
                moved: dict[str, int] = {}
                for chat, seq in read.items():
                    # A position keeps naming the message it named, under its new number.
                    fallback = min(seq, len(by_chat.get(chat, ())))
                    named = old_index.get(_chat_key(chat, seq))
                    moved[chat] = fallback if named is None else new_seq.get(named, fallback)
                if moved != read:
                    states[user] = {**raw_state, "read": moved}
            meta["schema"] = records.SCHEMA_VERSION

        self._transaction(body)
        log.warning(
            "repaired %s: %d chats, %d messages, %d renumbered",
            self.path,
            len(by_chat),
            len(new_seq),
            renumbered,
        )

    def export(self, table: str) -> list[tuple[str, Any]]:
        """Every (key, stored value) of a table, values as stored (plain data)."""
        return [
            (key.decode("utf-8"), pickle.loads(value))
            for key, value in self._reader.mappings[table].scan()
        ]

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

    def read_client_request(self, key: str) -> ClientRequest | None:
        raw = self._reader["client_ids"].get(key)
        return None if raw is None else records.load(raw, ClientRequest)

    def client_requests_before(self, at: int) -> list[str]:
        return [
            key.decode("utf-8")
            for key, value in self._reader.mappings["client_ids"].scan()
            if pickle.loads(value)["at"] < at
        ]

    def close(self) -> None:
        for shelves in (self._reader, self._writer):
            for shelf in shelves.shelves.values():
                shelf.close()
            shelves.conn.close()


def _create(path: Path) -> None:
    """Make a new, empty store at ``path`` atomically: built aside, then renamed into place.

    So an existing file is always a store that was made whole, and anything else found
    there (an empty or foreign file) is refused rather than taken for a new store.
    """
    aside = path.with_name(path.name + ".new")
    for leftover in (
        aside,
        aside.with_name(aside.name + "-wal"),
        aside.with_name(aside.name + "-shm"),
    ):
        leftover.unlink(missing_ok=True)
    shelves = _Shelves(connect(str(aside)), create=True)
    try:
        shelves["meta"]["schema"] = records.SCHEMA_VERSION
        shelves.conn.execute("PRAGMA journal_mode=DELETE")  # fold the WAL in: one file to move
    finally:
        for shelf in shelves.shelves.values():
            shelf.close()
        shelves.conn.close()
    os.replace(aside, path)
    fsync_dir(path.parent)
