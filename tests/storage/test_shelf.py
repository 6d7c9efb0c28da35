"""The shelve-on-SQLite store: round trips, reopening, and surviving SIGKILL mid-write."""

from __future__ import annotations

import io
import pickle
import shelve
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trio

from trio_chat import errors
from trio_chat.domain import moderation, ratelimit
from trio_chat.domain.models import Event, EventType, Message, Session, User, message_id
from trio_chat.domain.state import UserState
from trio_chat.storage import AsyncStore, Batch, ShelfStore, records
from trio_chat.storage.shelf import FILENAME, PICKLE_PROTOCOL


def message(cursor: int, seq: int, chat: str = "general", text: str = "hi") -> Event:
    m = Message(
        id=message_id(cursor),
        chat=chat,
        seq=seq,
        cursor=cursor,
        author="Alice",
        author_key="alice",
        to=None,
        text=text,
        sent_at=1_700_000_000_123,
    )
    return Event(cursor=cursor, type=EventType.MESSAGE, chat=chat, message=m)


def full_batch() -> Batch:
    batch = Batch(
        users={"alice": User("Alice", "scrypt$hash", 1)},
        sessions={"h1": Session("alice", 2)},
        user_states={
            "alice": UserState(
                read={"general": 1},
                private_chats=frozenset({"dm:alice:bob"}),
                window=ratelimit.RateWindow(5, 3),
                standing=moderation.Standing(frozenset({"bob"}), 99),
            )
        },
    )
    batch.add_event(message(1, 1))
    batch.add_event(message(2, 1, chat="dm:alice:bob", text="psst"))
    batch.add_event(Event(cursor=3, type=EventType.BANNED, user="alice", until=99))
    return batch


def test_round_trip_and_reopen(tmp_path: Path) -> None:
    store = ShelfStore(tmp_path)
    original = full_batch()
    store.write(original)
    store.close()

    store = ShelfStore(tmp_path)
    snap = store.load()
    assert snap.users == original.users
    assert snap.sessions == {"h1": Session("alice", 2)}
    assert snap.user_states == original.user_states
    assert snap.heads == {"general": 1, "dm:alice:bob": 1}
    assert snap.cursor == 3
    assert store.read_events([1, 2, 3, 4]) == [*original.events.values(), None]
    assert store.read_chat_index("dm:alice:bob", [1, 2]) == [2, None]
    # Deleting a session.
    store.write(Batch(sessions={"h1": None}))
    assert store.load().sessions == {}
    store.close()


def test_commits_are_durable_on_disk_not_only_in_the_os(tmp_path: Path) -> None:
    store = ShelfStore(tmp_path)
    # FULL (2): a commit is on disk when it returns (WAL: survives power loss too).
    assert store._writer.conn.execute("PRAGMA synchronous").fetchone() == (2,)
    assert store._writer.conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    store.close()


def test_a_batch_is_written_whole_or_not_at_all(tmp_path: Path, monkeypatch) -> None:
    store = ShelfStore(tmp_path)
    batch = full_batch()
    real_dump = records.dump

    def dump(record: object) -> object:
        if isinstance(record, Event) and record.cursor == 3:
            raise OSError("disk full")  # fails after users, sessions and two events went in
        return real_dump(record)

    monkeypatch.setattr(records, "dump", dump)
    with pytest.raises(OSError):
        store.write(batch)
    monkeypatch.undo()
    store.close()
    store = ShelfStore(tmp_path)
    snap = store.load()
    assert (snap.users, snap.sessions, snap.cursor) == ({}, {}, 0)
    assert store.read_events([1, 2]) == [None, None]
    store.close()


def test_a_commit_writes_the_bytes_shelve_writes(tmp_path: Path) -> None:
    """A commit writes each table's rows at once (put_many), not through ``Shelf.__setitem__``:
    the stored bytes must still be what ``__setitem__`` stores, or older readers and
    ``shelve`` itself could not read them."""
    store = ShelfStore(tmp_path)
    store.write(full_batch())
    store.close()
    conn = sqlite3.connect(tmp_path / FILENAME)
    rows = 0
    for table in ("users", "sessions", "user_states", "events", "chat_index", "meta"):
        for key, value in conn.execute(f"SELECT key, value FROM {table}"):
            plain: dict[bytes, bytes] = {}
            shelf = shelve.Shelf(plain, protocol=PICKLE_PROTOCOL)  # type: ignore[arg-type]
            shelf[key.decode("utf-8")] = pickle.loads(value)
            assert plain == {key: value}, table
            rows += 1
    conn.close()
    assert rows == 12  # 1 user, 1 session, 1 state, 3 events, 2 index, cursor, 2 heads, schema


def test_expired_messages_leave_every_table(tmp_path: Path) -> None:
    store = ShelfStore(tmp_path)
    store.write(full_batch())
    store.write(
        Batch(
            drop_events={1, 2, 99},
            drop_index={("general", 1), ("general", 7)},
            floors={"general": 1},
        )
    )
    assert store.read_events([1, 2, 3]) == [None, None, full_batch().events[3]]
    assert store.read_chat_index("general", [1]) == [None]
    assert store.read_chat_index("dm:alice:bob", [1]) == [2]  # not dropped
    store.close()


class _NoClasses(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        raise AssertionError(f"a stored value refers to a class: {module}.{name}")


def test_values_are_plain_data_not_pickled_classes(tmp_path: Path) -> None:
    store = ShelfStore(tmp_path)
    store.write(full_batch())
    store.close()
    conn = sqlite3.connect(tmp_path / FILENAME)
    for table in ("users", "sessions", "user_states", "events", "chat_index", "meta"):
        for (value,) in conn.execute(f"SELECT value FROM {table}"):
            # Unpickling with every class lookup forbidden still works: plain data only.
            _NoClasses(io.BytesIO(value)).load()
    conn.close()


def test_batch_merge_keeps_the_latest_and_the_highest_heads() -> None:
    first = Batch()
    first.add_event(message(1, 1))
    later = Batch(sessions={"h": None})
    later.add_event(message(2, 2))
    first.merge(later)
    assert first.heads == {"general": 2} and first.cursor == 2 and first.sessions == {"h": None}
    assert not Batch() and first


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from trio_chat.storage import Batch, ShelfStore
    from tests.storage.test_shelf import message
    store = ShelfStore(Path(sys.argv[1]))
    cursor = 0
    while True:
        batch = Batch()
        for _ in range(50):
            cursor += 1
            batch.add_event(message(cursor, cursor, text="x" * 200))
        store.write(batch)
        print(cursor, flush=True)
    """
)


@pytest.mark.slow
def test_sigkill_mid_write_loses_nothing_committed(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parents[2],
        text=True,
    )
    assert proc.stdout is not None
    committed = 0
    for line in proc.stdout:
        committed = int(line)
        if committed >= 2000:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()

    conn = sqlite3.connect(tmp_path / FILENAME)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    store = ShelfStore(tmp_path)
    snap = store.load()
    assert snap.cursor >= committed
    events = store.read_events(range(1, snap.cursor + 1))
    assert all(e is not None for e in events)
    assert store.read_chat_index("general", [committed]) == [committed]
    store.close()


class FailingStore:
    """A store whose writes fail while ``failing`` is set."""

    def __init__(self, inner: ShelfStore) -> None:
        self.inner = inner
        self.failing = False
        self.writes = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def write(self, batch: Batch) -> None:
        if self.failing:
            raise sqlite3.OperationalError("disk I/O error")
        self.writes += 1
        self.inner.write(batch)


async def test_group_commit_and_failures(tmp_path: Path) -> None:
    store = FailingStore(ShelfStore(tmp_path))
    astore = AsyncStore(store)  # type: ignore[arg-type]
    done: list[int] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(astore.run_writer)

        async def commit(cursor: int) -> None:
            batch = Batch()
            batch.add_event(message(cursor, cursor))
            await astore.commit(batch, on_commit=lambda: done.append(cursor))

        async with trio.open_nursery() as writers:
            for cursor in range(1, 101):
                writers.start_soon(commit, cursor)
        assert sorted(done) == list(range(1, 101))
        # Concurrent commits were grouped: far fewer transactions than requests.
        assert store.writes < 100 and astore.batches == 100
        assert [e.cursor for e in await astore.events([1, 50, 100]) if e] == [1, 50, 100]

        store.failing = True
        failed: list[bool] = []
        with pytest.raises(errors.StorageUnavailable):
            await astore.commit(Batch(sessions={"x": None}), on_failure=lambda: failed.append(True))
        assert failed == [True]
        store.failing = False
        await commit(101)
        assert done[-1] == 101
        nursery.cancel_scope.cancel()
    store.inner.close()
