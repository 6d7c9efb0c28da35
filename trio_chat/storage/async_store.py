"""``AsyncStore``: the store behind Trio.

Writes: callers hand a ``Batch`` to ``commit`` and wait. One writer task takes everything
pending, merges it into one transaction (group commit: under load, one fsync serves many
requests) and runs it in a worker thread. Callbacks run afterwards in the writer task, in
commit order, whether or not the caller is still waiting -- a request cancelled by its
client disconnecting still gets its message published, because it *was* written.

Reads: by key, in a worker thread on a separate read-only connection (WAL lets it read while
the writer writes), behind an LRU cache of recent events that every commit fills. The cache
is bounded in bytes, not entries: a user sending maximum-size messages must not be able to
grow the server's memory with them.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Generic, TypeVar

import trio

from trio_chat import errors
from trio_chat.domain.idempotency import ClientRequest
from trio_chat.domain.models import Event
from trio_chat.storage.base import Batch, Note, Snapshot, Store

log = logging.getLogger("trio_chat.storage")

K = TypeVar("K")
V = TypeVar("V")
R = TypeVar("R")

Callback = Callable[[], None]


class _Pending:
    __slots__ = ("batch", "done", "error", "on_commit", "on_failure")

    def __init__(self, batch: Batch, on_commit: Callback | None, on_failure: Callback | None):
        self.batch = batch
        self.on_commit = on_commit
        self.on_failure = on_failure
        self.done = trio.Event()
        self.error: BaseException | None = None


class _LRU(Generic[K, V]):
    """Least recently used out first, once the entries' weights add up past ``capacity``."""

    def __init__(self, capacity: int, weigh: Callable[[V], int]) -> None:
        self._capacity = capacity
        self._weigh = weigh
        self._data: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self.weight = 0

    def get(self, key: K) -> V | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        self._data.move_to_end(key)
        return entry[0]

    def put(self, key: K, value: V) -> None:
        weight = self._weigh(value)
        old = self._data.pop(key, None)
        if old is not None:
            self.weight -= old[1]
        self._data[key] = (value, weight)
        self.weight += weight
        while self.weight > self._capacity and self._data:
            _, (_, dropped) = self._data.popitem(last=False)
            self.weight -= dropped

    def drop(self, key: K) -> None:
        entry = self._data.pop(key, None)
        if entry is not None:
            self.weight -= entry[1]

    def __len__(self) -> int:
        return len(self._data)


# What an entry costs beyond its texts: the records, the cache's own node, the key. Measured
# with tracemalloc on events read back from the store: about 600 bytes for a message event,
# 160 more per comment, 250 for an index entry; rounded up.
EVENT_OVERHEAD = 768
COMMENT_OVERHEAD = 256
INDEX_ENTRY = 256  # (chat, seq) -> cursor


def event_weight(event: Event) -> int:
    """Bytes an event holds in memory, about: its texts' real sizes plus fixed overheads."""
    weight = EVENT_OVERHEAD
    message = event.message
    if message is not None:
        weight += sys.getsizeof(message.text)
        for comment in message.comments:
            weight += COMMENT_OVERHEAD + sys.getsizeof(comment.text)
    if event.comment is not None:
        weight += COMMENT_OVERHEAD + sys.getsizeof(event.comment.text)
    return weight


class _NoGate:
    """Write access to a store no other process writes: always granted, at no cost."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


_NO_GATE = _NoGate()


class ServiceStore:
    """What the service writes through and reads from, whatever the backend.

    Subclasses give the backend's part: ``_write`` one merged batch durably, and the reads.
    A store shared by several processes also gives ``writing`` (exclusive write access, with
    this process's state brought up to date first) and calls ``on_remote`` with every batch
    another process committed; for a store of one process both are no-ops.
    """

    def __init__(self, *, cache_bytes: int = 32 * 1024 * 1024) -> None:
        self._pending: list[_Pending] = []
        self._wakeup = trio.Event()
        self._idle = trio.Event()
        self._idle.set()
        self._closed = False
        # Three quarters for events, the rest for the chat index.
        self._events: _LRU[int, Event] = _LRU(cache_bytes * 3 // 4, event_weight)
        self._index: _LRU[tuple[str, int], int] = _LRU(cache_bytes // 4, lambda _: INDEX_ENTRY)
        self.commits = 0  # transactions, for tests and metrics
        self.batches = 0
        # Set by the service: applies a batch another process committed to this one's state,
        # and takes in a note another process shared.
        self.on_remote: Callable[[Batch], None] = lambda batch: None
        self.on_note: Callable[[Note], None] = lambda note: None

    async def refresh(self) -> bool:
        """Catch up with what other processes committed until now; whether anything came.

        For a read that would otherwise fail (a token or user another process created a
        moment ago). A store of one process has nothing to catch up with."""
        return False

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """What the store does alongside the server (following other processes); nothing for
        a store of one process."""
        task_status.started()

    async def share(self, note: Note) -> None:
        """Tell the other processes sharing the store (``on_note`` there); none here."""
        return None

    def writing(self) -> AbstractAsyncContextManager[None]:
        """Hold around a write: from before the state is read to change it until the commit
        is done. Many tasks of this process may hold it at once."""
        return _NO_GATE

    # -- writing ------------------------------------------------------------------------

    async def commit(
        self,
        batch: Batch,
        *,
        on_commit: Callback | None = None,
        on_failure: Callback | None = None,
    ) -> None:
        """Write ``batch`` durably; raise ``StorageUnavailable`` if it could not be."""
        if self._closed:
            raise errors.ShuttingDown()
        pending = _Pending(batch, on_commit, on_failure)
        self._pending.append(pending)
        self._idle = trio.Event() if self._idle.is_set() else self._idle
        self._wakeup.set()
        await pending.done.wait()
        if pending.error is not None:
            raise errors.StorageUnavailable() from pending.error

    async def run_writer(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        while True:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            group, self._pending = self._pending, []
            if not group:
                continue
            merged = Batch()
            for pending in group:
                merged.merge(pending.batch)
            try:
                # Not cancellable: once started, a write runs to its end even at shutdown.
                await self._write(merged)
            except Exception as exc:
                log.error("storage write failed (%d requests): %r", len(group), exc)
                for pending in group:
                    pending.error = exc
                    _run(pending.on_failure)
                    pending.done.set()
            else:
                self.commits += 1
                self.batches += len(group)
                self._remember(merged)
                for pending in group:
                    _run(pending.on_commit)
                    pending.done.set()
            if not self._pending:
                self._idle.set()

    async def _write(self, batch: Batch) -> None:
        """Write one merged batch, durably (the backend's part of a commit)."""
        raise NotImplementedError

    def _remember(self, batch: Batch) -> None:
        for cursor, event in batch.events.items():
            self._events.put(cursor, event)
        for key, cursor in batch.chat_index.items():
            self._index.put(key, cursor)
        for cursor in batch.drop_events:
            self._events.drop(cursor)
        for key in batch.drop_index:
            self._index.drop(key)

    @property
    def cache_weight(self) -> int:
        """Bytes the caches hold, by their own estimate (for tests and metrics)."""
        return self._events.weight + self._index.weight

    async def settled(self) -> None:
        """Wait until every write handed in so far has been committed (or has failed)."""
        await self._idle.wait()

    async def drain(self) -> None:
        """Refuse new writes and wait for the pending ones (at shutdown)."""
        self._closed = True
        await self._idle.wait()

    # -- reading ------------------------------------------------------------------------

    async def events(self, cursors: Sequence[int]) -> list[Event | None]:
        found: list[Event | None] = [self._events.get(c) for c in cursors]
        missing = [c for c, e in zip(cursors, found, strict=True) if e is None]
        if missing:
            loaded = await self._read_events(missing)
            by_cursor = dict(zip(missing, loaded, strict=True))
            for cursor, event in by_cursor.items():
                if event is not None:
                    self._events.put(cursor, event)
            found = [
                e if e is not None else by_cursor[c] for c, e in zip(cursors, found, strict=True)
            ]
        return found

    def cached_event(self, cursor: int) -> Event | None:
        """The event at ``cursor`` if the cache holds it (no read); None if it does not."""
        return self._events.get(cursor)

    async def chat_cursors(self, chat: str, seqs: Sequence[int]) -> list[int | None]:
        found: list[int | None] = [self._index.get((chat, s)) for s in seqs]
        missing = [s for s, c in zip(seqs, found, strict=True) if c is None]
        if missing:
            loaded = await self._read_chat_index(chat, missing)
            by_seq = dict(zip(missing, loaded, strict=True))
            for seq, cursor in by_seq.items():
                if cursor is not None:
                    self._index.put((chat, seq), cursor)
            found = [c if c is not None else by_seq[s] for s, c in zip(seqs, found, strict=True)]
        return found

    async def client_request(self, key: str) -> ClientRequest | None:
        raise NotImplementedError

    async def client_requests_before(self, at: int) -> list[str]:
        """The keys of client requests made before ``at`` (to forget them)."""
        raise NotImplementedError

    async def _read_events(self, cursors: Sequence[int]) -> list[Event | None]:
        raise NotImplementedError

    async def _read_chat_index(self, chat: str, seqs: Sequence[int]) -> list[int | None]:
        raise NotImplementedError

    async def aclose(self) -> None:
        await self.drain()


class AsyncStore(ServiceStore):
    """A synchronous ``Store`` (SQLite) behind Trio: writes and reads in worker threads."""

    def __init__(self, store: Store, *, cache_bytes: int = 32 * 1024 * 1024) -> None:
        super().__init__(cache_bytes=cache_bytes)
        self._store = store
        self._read_limiter = trio.CapacityLimiter(1)
        self._write_limiter = trio.CapacityLimiter(1)

    @classmethod
    async def load(cls, store: Store) -> Snapshot:
        return await trio.to_thread.run_sync(store.load)

    async def _write(self, batch: Batch) -> None:
        await trio.to_thread.run_sync(self._store.write, batch, limiter=self._write_limiter)

    async def client_request(self, key: str) -> ClientRequest | None:
        return await self._read(self._store.read_client_request, key)

    async def client_requests_before(self, at: int) -> list[str]:
        return await self._read(self._store.client_requests_before, at)

    async def _read_events(self, cursors: Sequence[int]) -> list[Event | None]:
        return await self._read(self._store.read_events, cursors)

    async def _read_chat_index(self, chat: str, seqs: Sequence[int]) -> list[int | None]:
        return await self._read(self._store.read_chat_index, chat, seqs)

    async def _read(self, fn: Callable[..., R], *args: object) -> R:
        def call() -> R:
            return fn(*args)

        try:
            return await trio.to_thread.run_sync(call, limiter=self._read_limiter)
        except (OSError, sqlite3.Error) as exc:
            log.error("storage read failed: %r", exc)
            raise errors.StorageUnavailable("storage is unavailable; try again later") from exc

    async def aclose(self) -> None:
        await self.drain()
        await trio.to_thread.run_sync(self._store.close)


def _run(callback: Callback | None) -> None:
    if callback is None:
        return
    try:
        callback()
    except Exception:
        log.exception("storage callback failed")
