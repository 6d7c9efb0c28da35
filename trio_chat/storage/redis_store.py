"""``RedisStore``: the store several server processes share, on Redis (through coredis).

Theory of operation
-------------------
Every process keeps the whole small state in memory (``ChatState``), as with the embedded
store, and the service changes it synchronously before committing. With several processes
that is only right if a process's memory is up to date when it changes it, and if no other
process changes the same state meanwhile. So writes take turns, process by process:

- **The write lease.** A process writes only while it holds the lease (a Redis key with a
  time-to-live and a token naming the holder). Taking it returns the version of the shared
  state; the process first applies every change logged since its own version, then lets its
  writers in. Many requests of one process share one holding (and one group commit). It
  keeps the lease until another process asks for it (``wanted:<origin>``), then gives it back
  as soon as none is writing, or after ``MAX_HOLD`` so the others get their turn -- and gives
  it back unasked once it has written nothing for ``IDLE_HOLD``, so that a process killed
  while idle (the common case) leaves no lease for the others to wait out. Every
  commit checks the token in the same atomic step: a process that lost the lease (it
  stalled past the time-to-live) cannot write, and stops.
- **The change log.** A commit is one Lua script: check the token, write every record of the
  batch into its hash, move heads and the log's cursor (only ever up), bump the version, and
  append the batch to a stream under that version. Redis runs the script atomically and, with
  ``appendfsync always``, has it on disk before it answers: a 2xx still means durable.
- **Following the others.** Each process reads the stream as it grows (``XREAD BLOCK``) and
  hands each batch another process wrote to the service (``on_remote``), which applies it to
  its state and publishes its new events to the streams this process holds: a message sent
  through one process reaches subscribers on every other.

Because writes are serialized across processes and made on up-to-date state, the rules the
domain enforces in one process hold for all of them: 20 messages an hour means 20, a ban is
lifted once, a scheduled message is sent once (the second process to fire its timer finds it
already sent).

Layout (every key under ``PREFIX``): one hash per table (``users``, ``sessions``,
``user_states``, ``events``, ``chat_index``, ``client_ids``, ``rooms``, ``scheduled``,
``files``) holding JSON records, the ``meta`` hash (``cursor``, ``head/<chat>``,
``floor/<chat>``, ``schema``, ``version``), the ``log`` stream and the ``lease`` key.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast
from urllib.parse import urlsplit

import coredis
import coredis.exceptions
import coredis.retry
import orjson
import trio
from coredis.tokens import PureToken

from trio_chat import errors
from trio_chat.domain.files import FileRecord
from trio_chat.domain.idempotency import ClientRequest
from trio_chat.domain.models import Event, Session, User
from trio_chat.domain.rooms import Room
from trio_chat.domain.schedule import Scheduled
from trio_chat.domain.state import UserState
from trio_chat.storage import records
from trio_chat.storage.async_store import ServiceStore
from trio_chat.storage.base import NOTE_KINDS, Batch, Note, Snapshot
from trio_chat.storage.shelf import StoreError

log = logging.getLogger("trio_chat.storage")

PREFIX = "trio-chat:"
LEASE_TTL_MS = 3000  # a holder that stalls this long loses the lease (and stops)
MAX_HOLD = 0.05  # seconds one process may keep the lease while others may be waiting
IDLE_HOLD = 1.0  # seconds without a write after which the lease is given back unasked
# While another process holds the lease: wait this long at most for its release (a release
# wakes one waiter at once), then try again.
LEASE_WAIT = 0.05
LOG_KEPT = 20_000  # change-log entries kept, ~1 KB each (a process further behind restarts)
TAIL_BLOCK_MS = 1000
NOTES_KEPT = 10_000  # throttle notes kept (a few minutes' worth under a guessing attack)

# Tables, in the order the scripts name them (KEYS[4] onwards); records of each are JSON.
TABLES: dict[str, type] = {
    "users": User,
    "sessions": Session,
    "user_states": UserState,
    "client_requests": ClientRequest,
    "rooms": Room,
    "scheduled": Scheduled,
    "files": FileRecord,
}
HASHES = (*TABLES, "events", "chat_index")
_EVENTS = len(TABLES)  # index of the events hash in HASHES
_INDEX = _EVENTS + 1
_TABLE_INDEX = {name: i for i, name in enumerate(TABLES)}
_TABLE_NAMES = dict(enumerate(TABLES))
KEYS = [PREFIX + name for name in ("lease", "meta", "log", *HASHES)]
_LEASE, _META, _LOG = KEYS[0], KEYS[1], KEYS[2]
_WAKE = PREFIX + "lease-free"  # a waiter for the lease is woken through this list
# Notes (``storage.base.Note``: failed logins and joins, for the throttles) go to a stream of
# their own, beside the change log: they are not state, so they need no lease, no version and
# no place in the hashes; every process's follower reads both streams.
_NOTES = PREFIX + "notes"
# A process that finds the lease taken pushes to the holder's own list (``wanted:<origin>``):
# the holder gives the lease back as soon as it is idle, or after MAX_HOLD if it is not.
_WANTED = PREFIX + "wanted:"
# The next turn: the first process to find the lease taken has it reserved (for 200 ms,
# renewed while it keeps trying), so the holder that gives the lease back cannot take it
# again first -- it did, over and over, and a waiter starved for up to a second.
_NEXT = PREFIX + "lease-next"
_HASH_KEY = {name: PREFIX + name for name in HASHES}

# ops: [[0, hash index, field, value or null (delete)], [1, field, number] (meta, only up)]
_COMMIT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('LEASE this process no longer holds the write lease')
end
local ops = cjson.decode(ARGV[2])
for _, op in ipairs(ops) do
  if op[1] == 0 then
    if op[4] == cjson.null then
      redis.call('HDEL', KEYS[op[2] + 4], op[3])
    else
      redis.call('HSET', KEYS[op[2] + 4], op[3], op[4])
    end
  else
    local now = tonumber(redis.call('HGET', KEYS[2], op[2]) or '0')
    if op[3] > now then redis.call('HSET', KEYS[2], op[2], op[3]) end
  end
end
local v = redis.call('HINCRBY', KEYS[2], 'version', 1)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], v .. '-0', 'o', ARGV[3], 'b', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {v, redis.call('EXISTS', KEYS[#KEYS])}  -- the last key: this process's wanted list
"""

_ACQUIRE = """
local turn = redis.call('GET', KEYS[4])
if (not turn or turn == ARGV[4]) and redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('DEL', KEYS[3])
  if turn then redis.call('DEL', KEYS[4]) end
  return tonumber(redis.call('HGET', KEYS[2], 'version') or '0')
end
if not turn then
  redis.call('SET', KEYS[4], ARGV[4], 'PX', 200)
elseif turn == ARGV[4] then
  redis.call('PEXPIRE', KEYS[4], 200)
end
local holder = redis.call('GET', KEYS[1])
if holder then
  local wanted = ARGV[3] .. string.match(holder, '^[^:]*')
  redis.call('RPUSH', wanted, '1')
  redis.call('PEXPIRE', wanted, 1000)
end
return -1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('DEL', KEYS[2])
  redis.call('RPUSH', KEYS[2], '1')
  redis.call('PEXPIRE', KEYS[2], 100)
  return 1
end
return 0
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class RedisStoreError(StoreError):
    """Redis cannot be used as the store (not persistent, another schema, unreachable)."""


class LeaseLost(Exception):
    """This process wrote without holding the lease: its memory can no longer be trusted."""


def _json(record: object) -> str:
    return orjson.dumps(records.dump(record)).decode("utf-8")


def encode_batch(batch: Batch) -> bytes:
    """A batch as the list of operations the commit script applies (and the log carries)."""
    ops: list[list[Any]] = []
    for table, index in _TABLE_INDEX.items():
        changes: Mapping[str, object | None] = getattr(batch, table)
        for key, record in changes.items():
            ops.append([0, index, key, None if record is None else _json(record)])
    for cursor, event in batch.events.items():
        ops.append([0, _EVENTS, str(cursor), _json(event)])
    for (chat, seq), cursor in batch.chat_index.items():
        ops.append([0, _INDEX, f"{chat}/{seq}", str(cursor)])
    for cursor in batch.drop_events:
        ops.append([0, _EVENTS, str(cursor), None])
    for chat, seq in batch.drop_index:
        ops.append([0, _INDEX, f"{chat}/{seq}", None])
    for chat, floor in batch.floors.items():
        ops.append([1, f"floor/{chat}", floor])
    for chat, head in batch.heads.items():
        ops.append([1, f"head/{chat}", head])
    if batch.cursor:
        ops.append([1, "cursor", batch.cursor])
    return orjson.dumps(ops)


def decode_batch(raw: bytes) -> Batch:
    batch = Batch()
    for op in orjson.loads(raw):
        if op[0] == 1:
            field, value = op[1], op[2]
            if field == "cursor":
                batch.cursor = value
            elif field.startswith("head/"):
                batch.heads[field.removeprefix("head/")] = value
            else:
                batch.floors[field.removeprefix("floor/")] = value
            continue
        _, index, key, value = op
        if index == _EVENTS:
            if value is None:
                batch.drop_events.add(int(key))
            else:
                batch.events[int(key)] = records.load(orjson.loads(value), Event)
        elif index == _INDEX:
            chat, _, seq = key.rpartition("/")
            if value is None:
                batch.drop_index.add((chat, int(seq)))
            else:
                batch.chat_index[(chat, int(seq))] = int(value)
        else:
            table = _TABLE_NAMES[index]
            changes = getattr(batch, table)
            changes[key] = (
                None if value is None else records.load(orjson.loads(value), TABLES[table])
            )
    return batch


def encode_note(note: Note) -> bytes:
    return orjson.dumps([note.kind, note.user, note.address, note.at])


def decode_note(raw: bytes) -> Note:
    kind, user, address, at = orjson.loads(raw)
    if kind not in NOTE_KINDS or not isinstance(user, str) or not isinstance(at, int):
        raise ValueError(f"not a note: {raw[:200]!r}")
    if address is not None and not isinstance(address, str):
        raise ValueError(f"not a note: {raw[:200]!r}")
    return Note(kind, user, address, at)


def client(url: str) -> coredis.Redis[bytes]:
    """A client for ``redis://host:port/db``. No retries: a commit must never run twice."""
    parts = urlsplit(url)
    if parts.scheme != "redis" or not parts.hostname:
        raise RedisStoreError(f"not a Redis address: {url!r} (use redis://host:port/db)")
    db = int(parts.path.strip("/") or 0)
    return coredis.Redis(
        host=parts.hostname,
        port=parts.port or 6379,
        db=db,
        password=parts.password,
        decode_responses=False,
        retry_policy=coredis.retry.NoRetryPolicy(),
        connect_timeout=5,
    )


_REDIS_ERRORS = (coredis.exceptions.RedisError, OSError)


class RedisStore(ServiceStore):
    def __init__(self, redis: coredis.Redis[bytes], *, cache_bytes: int = 32 * 1024 * 1024):
        super().__init__(cache_bytes=cache_bytes)
        self._redis = redis
        # Blocking reads go through clients of their own (see ``open``).
        self._follow_redis = self._watch_redis = self._wait_redis = redis
        self._commit = redis.register_script(_COMMIT)
        self._acquire = redis.register_script(_ACQUIRE)
        self._release = redis.register_script(_RELEASE)
        self._renew = redis.register_script(_RENEW)
        self.origin = f"{os.getpid()}-{secrets.token_hex(4)}"  # names this process in the log
        # The last note read. From the start at first: the notes of the last minutes still
        # count in the throttles' windows (older ones are pruned by them).
        self._notes_from = b"0-0"
        self._token = ""  # the lease's token while held
        self._holdings = 0
        self.applied = 0  # the version of the shared state this process's memory is at
        self._held = False
        self._closing = False  # held past MAX_HOLD: let the writers in finish, then give back
        self._acquiring = False
        self._held_since = 0.0
        self._last_write = 0.0  # when the last writer left (monotonic)
        self._changed = trio.Event()
        self._writers = 0
        self._wanted = False  # another process asked for the lease since we took it
        self._wanted_key = _WANTED + self.origin
        self._commit_keys = [*KEYS, self._wanted_key]
        self._committing = False
        # Tasks holding write access now (by task, not context: a task a writer starts, a
        # timer say, does not inherit its holding), and how deeply each is nested.
        self._holders: dict[trio.lowlevel.Task, int] = {}
        self._loading = False
        self.fatal: BaseException | None = None
        self._failed = trio.Event()

    # -- opening ------------------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def open(
        cls, url: str, *, allow_unsafe: bool = False, cache_bytes: int = 32 * 1024 * 1024
    ) -> AsyncIterator[RedisStore]:
        # A client (so a connection) of its own for each blocking read: coredis sends the
        # commands of one client down shared connections, and a commit queued behind a BLPOP
        # waited out its timeout (seen as 1.6 s stalls under two processes).
        async with (
            client(url) as redis,
            client(url) as follow,
            client(url) as watch,
            client(url) as wait,
        ):
            try:
                await check_durable(redis, url, allow_unsafe=allow_unsafe)
                await check_schema(redis, url)
            except _REDIS_ERRORS as exc:  # only here: later ones are the server's to report
                raise RedisStoreError(f"cannot use {url} as the store: {exc}") from exc
            store = cls(redis, cache_bytes=cache_bytes)
            store._follow_redis, store._watch_redis, store._wait_redis = follow, watch, wait
            yield store

    async def load(self) -> Snapshot:
        """Everything small, as of one version (read while holding the lease)."""
        self._loading = True
        try:
            async with self.writing():
                raw = {name: await self._redis.hgetall(_HASH_KEY[name]) for name in TABLES}
                meta = {
                    k.decode(): v.decode() for k, v in (await self._redis.hgetall(_META)).items()
                }
        finally:
            self._loading = False
        tables: dict[str, dict[str, Any]] = {
            name: {k.decode(): records.load(orjson.loads(v), cls) for k, v in raw[name].items()}
            for name, cls in TABLES.items()
        }
        return Snapshot(
            users=tables["users"],
            sessions=tables["sessions"],
            user_states=tables["user_states"],
            heads={k[5:]: int(v) for k, v in meta.items() if k.startswith("head/")},
            cursor=int(meta.get("cursor", 0)),
            rooms=tables["rooms"],
            scheduled=tables["scheduled"],
            floors={k[6:]: int(v) for k, v in meta.items() if k.startswith("floor/")},
            files=tables["files"],
        )

    # -- the write lease ------------------------------------------------------------------

    def writing(self) -> _Holding:
        return _Holding(self)

    async def _enter(self) -> None:
        if self.fatal is not None:
            raise errors.StorageUnavailable("storage is unavailable; try again later")
        task = trio.lowlevel.current_task()
        if task in self._holders:
            # A write within a write (``send`` posts through ``post``): it is already in.
            # Waiting here for a hand-over would wait for itself.
            self._holders[task] += 1
            self._writers += 1
            return
        while not self._held or self._closing:
            if self._held or self._acquiring:
                await self._wait_change()
                continue
            self._acquiring = True
            try:
                await self._take_lease()
            finally:
                self._acquiring = False
                self._pulse()
        self._writers += 1
        self._holders[task] = 1
        if self._wanted and time.monotonic() - self._held_since > MAX_HOLD:
            self._closing = True  # another process is waiting: finish these, then its turn

    async def _exit(self) -> None:
        task = trio.lowlevel.current_task()
        self._holders[task] -= 1
        if not self._holders[task]:
            del self._holders[task]
        self._writers -= 1
        if self._writers:
            return
        self._last_write = time.monotonic()
        self._pulse()
        if self._wanted or self._closing:
            await self._give_back()
        # Else keep it: nobody else wants it, and our next write need not take it again.

    async def _give_back(self) -> None:
        with trio.CancelScope(shield=True):
            # A writer cancelled while its batch waits: the batch is still ours to write.
            await self._idle.wait()
            if self._writers or not self._held:
                return
            self._held = False
            self._closing = False
            try:
                await self._release(keys=[_LEASE, _WAKE], args=[self._token])
            except Exception as exc:  # also a connection that shutdown's cancellation broke
                log.warning("could not give the write lease back (it will expire): %r", exc)
            self._pulse()

    async def _take_lease(self) -> None:
        self._holdings += 1
        token = f"{self.origin}:{self._holdings}"
        while True:
            try:
                version = int(
                    await self._acquire(
                        keys=[_LEASE, _META, self._wanted_key, _NEXT],
                        args=[token, LEASE_TTL_MS, _WANTED, self.origin],
                    )
                )
            except _REDIS_ERRORS as exc:
                log.error("storage unavailable (taking the write lease): %r", exc)
                raise errors.StorageUnavailable("storage is unavailable; try again later") from exc
            if version >= 0:
                break
            await self._wait_for_release()
        self._token = token
        if self._loading:
            self.applied = version  # the snapshot read under this holding is at version
        try:
            await self._catch_up(version)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._release(keys=[_LEASE, _WAKE], args=[token])
            raise
        self._held = True
        self._wanted = False
        self._held_since = time.monotonic()

    async def refresh(self) -> bool:
        before = self.applied
        try:
            version = int(await self._redis.hget(_META, "version") or 0)
            while self._committing:
                await self._wait_change()
            if version > self.applied:
                await self._catch_up(version)
        except _REDIS_ERRORS as exc:
            log.error("storage unavailable (catching up): %r", exc)
            raise errors.StorageUnavailable("storage is unavailable; try again later") from exc
        return self.applied > before

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow the other processes and keep the lease alive; raise if this process
        can no longer trust its memory (the server then stops)."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._follow)
            nursery.start_soon(self._keep_lease)
            nursery.start_soon(self._watch_wanted)
            task_status.started()
            try:
                await self._failed.wait()
            finally:
                with trio.CancelScope(shield=True):
                    await self._give_back()  # at shutdown: the others need not wait for it
            assert self.fatal is not None
            raise self.fatal

    def _fail(self, problem: BaseException) -> None:
        if self.fatal is None:
            self.fatal = problem
            log.critical("%s", problem)
        self._failed.set()

    async def _watch_wanted(self) -> None:
        """While we hold the lease, learn at once that another process wants it; give it
        back then if none of ours is writing (else the last one out does)."""
        while True:
            if not self._held:
                await self._wait_change()
                continue
            try:
                asked = await self._watch_redis.blpop([self._wanted_key], timeout=1)
            except _REDIS_ERRORS as exc:
                log.warning("cannot watch for processes waiting for the lease: %r", exc)
                await _sleep(1)
                continue
            if asked and self._held:
                self._wanted = True
                if not self._writers:
                    await self._give_back()

    async def _keep_lease(self) -> None:
        """Renew the lease while it is held (a long group commit must not lose it); give it
        back once nothing was written under it for ``IDLE_HOLD``."""
        while True:
            await _sleep(LEASE_TTL_MS / 3000 / 3)
            if (
                self._held
                and not self._writers
                and time.monotonic() - max(self._last_write, self._held_since) >= IDLE_HOLD
            ):
                await self._give_back()
            elif self._held:
                try:
                    await self._renew(keys=[_LEASE], args=[self._token, LEASE_TTL_MS])
                except _REDIS_ERRORS as exc:
                    log.warning("could not renew the write lease: %r", exc)

    async def settled(self) -> None:
        """Wait until no write is under way: none queued, none holding write access."""
        while True:
            await self._idle.wait()
            if not self._writers and not self._acquiring:
                return
            await self._wait_change()

    async def _wait_for_release(self) -> None:
        """Wait until the lease is given back (a release pushes to a list), or a while.

        Redis does the waiting (``BLPOP``): in real time, as the lease's time-to-live runs,
        whatever clock the service runs on (tests run it on a mock clock that only moves
        when told)."""
        try:
            await self._wait_redis.blpop([_WAKE], timeout=LEASE_WAIT)
        except _REDIS_ERRORS as exc:
            raise errors.StorageUnavailable("storage is unavailable; try again later") from exc

    def _pulse(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _wait_change(self) -> None:
        await self._changed.wait()

    # -- writing ----------------------------------------------------------------------------

    async def _write(self, batch: Batch) -> None:
        if not self._held:
            # Only a bug gets here: a write outside ``writing()``.
            raise LeaseLost("a write was attempted without the write lease")
        self._committing = True
        try:
            answer: Any = await self._commit(
                keys=self._commit_keys,
                args=[self._token, encode_batch(batch), self.origin, LOG_KEPT, LEASE_TTL_MS],
            )
        except coredis.exceptions.ResponseError as exc:
            if str(exc).startswith("LEASE"):
                self._lost(exc)
            raise
        except BaseException:
            # The script may or may not have run (the answer was lost). The callers are
            # told it failed and their changes are undone; if it did run, its log entry
            # puts them back. Let the writers inside finish, give the lease back, and
            # catch up before writing again.
            self._closing = True
            raise
        finally:
            self._committing = False
            self._pulse()
        version, wanted = answer
        self.applied = max(self.applied, int(version))
        self._wanted = self._wanted or bool(wanted)  # reset only when the lease is taken

    def _lost(self, exc: BaseException) -> None:
        self._fail(
            LeaseLost(
                "this process lost the write lease mid-write (it stalled longer than "
                f"{LEASE_TTL_MS} ms); its memory may be stale, so it stops: {exc}"
            )
        )

    # -- following the other processes ------------------------------------------------------

    async def _catch_up(self, version: int) -> None:
        """Apply what other processes logged up to ``version`` (holding the lease)."""
        while self.applied < version:
            entries = await self._redis.xrange(
                _LOG, f"{self.applied + 1}-0", f"{version}-0", count=1000
            )
            self._apply(entries, expect_next=True)

    async def _follow(self) -> None:
        """Apply other processes' batches as they are logged."""
        while True:
            try:
                found = await self._follow_redis.xread(
                    {_LOG: f"{self.applied}-0", _NOTES: self._notes_from},
                    count=1000,
                    block=TAIL_BLOCK_MS,
                )
            except _REDIS_ERRORS as exc:
                log.error("cannot follow the shared log: %r; retrying", exc)
                await _sleep(1)
                continue
            while self._committing:  # its answer moves ``applied`` past our own entry
                await self._wait_change()
            for stream, entries in (found or {}).items():
                if stream == _NOTES.encode():
                    self._take_notes(entries)
                else:
                    self._apply(entries, expect_next=False)

    async def share(self, note: Note) -> None:
        """Append ``note`` for the other processes (this one has taken it in already)."""
        try:
            await self._redis.xadd(
                _NOTES,
                {"o": self.origin, "n": encode_note(note)},
                trim_strategy=PureToken.MAXLEN,
                threshold=NOTES_KEPT,
                trim_operator=PureToken.APPROXIMATELY,
            )
        except _REDIS_ERRORS as exc:
            raise errors.StorageUnavailable("storage is unavailable; try again later") from exc

    def _take_notes(self, entries: Sequence[Any]) -> None:
        origin = self.origin.encode()
        for entry in entries:
            self._notes_from = entry.identifier
            fields = entry.field_values
            if fields.get(b"o") == origin:
                continue  # taken in when it was made
            try:
                note = decode_note(fields[b"n"])
            except (KeyError, ValueError, TypeError) as exc:
                log.warning("skipped a note that could not be read: %r", exc)
                continue
            self.on_note(note)

    def _apply(self, entries: Sequence[Any], *, expect_next: bool) -> None:
        for entry in entries:
            version = int(entry.identifier.split(b"-")[0])
            if version <= self.applied:
                continue
            if version != self.applied + 1:
                problem = RedisStoreError(
                    f"this process fell behind the shared log (at {self.applied}, the log "
                    f"keeps from {version}); restart it"
                )
                self._fail(problem)
                raise problem
            # Past ``applied`` even if this process wrote it: a commit whose answer was lost
            # (its changes were undone here when it seemed to fail).
            self.applied = version
            batch = decode_batch(entry.field_values[b"b"])
            self._remember(batch)
            self.on_remote(batch)
        if expect_next and not entries:
            problem = RedisStoreError("the shared log lost entries this process needs; restart it")
            self._fail(problem)
            raise problem

    # -- reading ------------------------------------------------------------------------

    async def _read_events(self, cursors: Sequence[int]) -> list[Event | None]:
        raw = await self._call(self._redis.hmget(_HASH_KEY["events"], [str(c) for c in cursors]))
        return [None if v is None else records.load(orjson.loads(v), Event) for v in raw]

    async def _read_chat_index(self, chat: str, seqs: Sequence[int]) -> list[int | None]:
        raw = await self._call(
            self._redis.hmget(_HASH_KEY["chat_index"], [f"{chat}/{s}" for s in seqs])
        )
        return [None if v is None else int(v) for v in raw]

    async def client_request(self, key: str) -> ClientRequest | None:
        raw = await self._call(self._redis.hget(_HASH_KEY["client_requests"], key))
        return None if raw is None else records.load(orjson.loads(raw), ClientRequest)

    async def client_requests_before(self, at: int) -> list[str]:
        old: list[str] = []
        cursor: int | None = 0
        while cursor is not None:
            cursor, found = await self._call(
                self._redis.hscan(_HASH_KEY["client_requests"], cursor, count=1000)
            )
            for key, value in cast(dict[bytes, bytes], found).items():
                if orjson.loads(value)["at"] < at:
                    old.append(key.decode())
            cursor = cursor or None
        return old

    async def _call(self, request: Any) -> Any:
        try:
            return await request
        except _REDIS_ERRORS as exc:
            log.error("storage read failed: %r", exc)
            raise errors.StorageUnavailable("storage is unavailable; try again later") from exc


async def _sleep(seconds: float) -> None:
    """Sleep in real time, whatever clock Trio runs on (see ``_wait_for_release``)."""
    await trio.to_thread.run_sync(time.sleep, seconds, abandon_on_cancel=True)


class _Holding:
    __slots__ = ("_store",)

    def __init__(self, store: RedisStore) -> None:
        self._store = store

    async def __aenter__(self) -> None:
        await self._store._enter()

    async def __aexit__(self, *exc: object) -> None:
        await self._store._exit()


async def check_durable(redis: coredis.Redis[bytes], url: str, *, allow_unsafe: bool) -> None:
    """A 2xx must mean durable: Redis must fsync every write to its append-only file."""
    try:
        found = await redis.config_get(["appendonly", "appendfsync"])
        settings = {k.decode(): v.decode() for k, v in found.items()}
    except coredis.exceptions.ResponseError as exc:
        settings = {}
        problem = f"its settings cannot be read ({exc})"
    else:
        problem = ""
        if settings.get("appendonly") != "yes" or settings.get("appendfsync") != "always":
            problem = (
                f"appendonly is {settings.get('appendonly')!r} and appendfsync is "
                f"{settings.get('appendfsync')!r}"
            )
    if not problem:
        return
    if allow_unsafe:
        log.warning(
            "%s does not persist every write (%s): acknowledged data may be lost", url, problem
        )
        return
    raise RedisStoreError(
        f"{url} does not persist every write: {problem}. Set 'appendonly yes' and "
        "'appendfsync always' in its configuration, or start with --allow-unsafe-store "
        "to accept losing acknowledged writes"
    )


async def check_schema(redis: coredis.Redis[bytes], url: str) -> None:
    schema = await redis.hget(_META, "schema")
    if schema is None:
        await redis.hsetnx(_META, "schema", str(records.SCHEMA_VERSION))
    elif int(schema) != records.SCHEMA_VERSION:
        raise RedisStoreError(
            f"{url} holds a trio-chat store of schema {int(schema)}, "
            f"expected {records.SCHEMA_VERSION}"
        )
