"""The core every job of the service shares: state, store, clock, live hub, timers, and the
one commit path every write goes through.

Theory of operation
-------------------
A write is: validate and change ``ChatState`` synchronously (no await in between, so two
requests never interleave inside one operation), then ``commit`` the changed records. Only
once they are durable does the change become visible: the committed heads move, events are
published, and the caller answers. If the write fails, ``undo`` puts the state back.

Several processes may share one store (see ``storage.redis_store``). Then a write must run
on up-to-date state with no other process writing meanwhile: every method that changes state
is marked ``@writes``, which holds the store's write access (``ServiceStore.writing``) from
before it reads the state it changes until its commit is done. Changes other processes
commit come in through ``apply_remote``. With a store of one process, ``@writes`` costs a
no-op context manager.

Readers see committed numbers only (``committed_heads``, ``committed_cursor``); messages are
read from the store by number. Read positions moved by live delivery are gathered here and
applied in batches (``note_delivered``, ``flush_reads``): applying one is a new UserState,
too dear to make per event per stream.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Concatenate, ParamSpec, Protocol, TypeVar

import attrs
import trio

from trio_chat import errors
from trio_chat.clock import Clock
from trio_chat.config import Config
from trio_chat.domain import chats, idempotency, lifetime, moderation, ratelimit
from trio_chat.domain.filerefs import FileRef
from trio_chat.domain.files import FileRecord, Files
from trio_chat.domain.idempotency import ClientRequest
from trio_chat.domain.models import (
    Event,
    EventType,
    Message,
    Session,
    User,
    parse_comment_id,
    parse_message_id,
)
from trio_chat.domain.rooms import Rooms
from trio_chat.domain.schedule import Schedule
from trio_chat.domain.state import ChatState, UserState
from trio_chat.service.live import Hub
from trio_chat.service.timers import Timers
from trio_chat.storage import Batch, Note, ServiceStore, Snapshot
from trio_chat.storage.blobs import BlobStore

log = logging.getLogger("trio_chat.service")

RETRY_TIMER_AFTER = 5.0  # seconds before retrying a timer whose write failed
SEEN_STEP_MS = 60_000  # a session's last_seen_at moves in steps of at least this
EXPIRE_CHUNK = 1000  # expired messages deleted per transaction

P = ParamSpec("P")
R = TypeVar("R")


class _Job(Protocol):
    @property
    def core(self) -> Core: ...


J = TypeVar("J", bound=_Job)


def writes(
    method: Callable[Concatenate[J, P], Awaitable[R]],
) -> Callable[Concatenate[J, P], Awaitable[R]]:
    """Run the method holding the store's write access (see the module's docstring)."""

    async def holding(job: J, /, *args: P.args, **kwargs: P.kwargs) -> R:
        async with job.core.store.writing():
            return await method(job, *args, **kwargs)

    return functools.update_wrapper(holding, method)


class Core:
    def __init__(
        self,
        config: Config,
        clock: Clock,
        store: ServiceStore,
        snapshot: Snapshot,
        timer_nursery: trio.Nursery,
    ) -> None:
        self.config = config
        self.clock = clock
        self.store = store
        self.state = ChatState(
            rate_policy=ratelimit.RatePolicy(
                config.rate_limit_count, int(config.rate_limit_period * 1000)
            ),
            ban_policy=moderation.BanPolicy(config.ban_threshold, int(config.ban_duration * 1000)),
            users=snapshot.users,
            sessions=snapshot.sessions,
            user_states=snapshot.user_states,
            heads=dict(snapshot.heads),
            cursor=snapshot.cursor,
            rooms=Rooms(snapshot.rooms),
            ttl_ms=int(config.message_ttl * 1000),
        )
        self.public_url = f"http://{config.host}:{config.port}"  # set once listening
        self.schedule = Schedule(snapshot.scheduled)
        self.files = Files(snapshot.files)
        self.blobs = BlobStore(config.data_dir)
        # chat -> messages at or below this have expired for everyone and left the disk
        self.floors: dict[str, int] = dict(snapshot.floors)
        # Housekeeping every job may add to; run once an hour.
        self.hourly: list[Callable[[], Awaitable[None]]] = [self.sweep_client_ids]
        # What readers may see: only what is durable.
        self.committed_heads: dict[str, int] = dict(snapshot.heads)
        self.committed_cursor = snapshot.cursor
        self.hub = Hub(config.stream_buffer_events, self.state.members_of)
        self.timers = Timers(timer_nursery, clock)
        self.latest: dict[int, Message] = {}  # messages with comments not yet committed
        # message cursor -> batches not yet written that rewrite that message (comments)
        self._rewriting: dict[int, list[Batch]] = {}
        self._delivered: dict[str, dict[str, int]] = {}  # user -> chat -> seq, not yet applied
        self._seen: set[str] = set()  # sessions whose last_seen_at moved, not yet stored
        self._claims: dict[str, trio.Event] = {}  # client keys being written now
        # Jobs that react to what other processes commit (arm their timers), after the state
        # has taken it in.
        self.remote_hooks: list[Callable[[Batch], None]] = [self._rearm_windows]
        self._window_ends: dict[str, int] = {}  # user -> when its armed window timer fires
        # Jobs that take in the notes other processes share (their throttles' counts).
        self.note_hooks: list[Callable[[Note], None]] = []
        store.on_remote = self.apply_remote
        store.on_note = self._take_note

    @property
    def core(self) -> Core:
        """Itself: so ``@writes`` works on the core's own methods as on every job's."""
        return self

    def now(self) -> int:
        return int(self.clock.now() * 1000)

    # -- the commit path ------------------------------------------------------------------

    async def commit(
        self,
        batch: Batch,
        *,
        events: Sequence[Event] = (),
        updates: Sequence[Event] = (),
        undo: Callable[[], None] | None = None,
    ) -> None:
        """Commit; then make the batch visible to readers and publish ``events``.

        ``events`` are new log entries; ``updates`` rewrite existing ones (a message that
        gained a comment) and are stored, not published.
        """
        for event in updates:
            batch.update_event(event)
        for event in events:
            batch.add_event(event)
        rewritten = [e.message.cursor for e in updates if e.message is not None]
        for cursor in rewritten:
            self._rewriting.setdefault(cursor, []).append(batch)

        def committed() -> None:
            for chat, head in batch.heads.items():
                self.committed_heads[chat] = max(self.committed_heads.get(chat, 0), head)
            self.committed_cursor = max(self.committed_cursor, batch.cursor)
            done()
            for event in events:
                self.hub.publish(event)

        def done() -> None:
            for cursor in rewritten:
                waiting = self._rewriting[cursor]
                waiting.remove(batch)
                if not waiting:
                    del self._rewriting[cursor]
                record = batch.events[cursor].message  # as written (see _drop_comments)
                if self.latest.get(cursor) is record:
                    del self.latest[cursor]

        def failed() -> None:
            done()
            lost = {e.comment.id for e in events if e.comment is not None}
            for cursor in rewritten if lost else ():
                self._drop_comments(cursor, lost)
            if undo is not None:
                undo()

        await self.store.commit(batch, on_commit=committed, on_failure=failed)

    def _drop_comments(self, cursor: int, lost: set[str]) -> None:
        """Take comments whose write failed out of the message at ``cursor`` wherever it
        still waits to be written: a later comment's batch was built on them (each comment
        builds on the message as the one before left it, so neither overwrites the other),
        and so is the overlay the next comment will build on."""

        def without(message: Message) -> Message:
            kept = tuple(c for c in message.comments if c.id not in lost)
            return (
                message
                if len(kept) == len(message.comments)
                else attrs.evolve(message, comments=kept)
            )

        latest = self.latest.get(cursor)
        if latest is not None:
            self.latest[cursor] = without(latest)
        for pending in self._rewriting.get(cursor, ()):
            event = pending.events[cursor]
            if event.message is None:  # (always a message: it was one of ``updates``)
                continue
            # The overlay's own version stays one object, so its commit can still tell that
            # it wrote the newest version (and drop the overlay).
            message = self.latest[cursor] if event.message is latest else without(event.message)
            pending.events[cursor] = attrs.evolve(event, message=message)

    async def share(self, note: Note) -> None:
        """Tell the processes sharing the store (if any) what this one has taken in.

        Best effort: a throttle that misses a note counts a little less, and the request
        that made it is answered all the same."""
        try:
            await self.store.share(note)
        except errors.ChatError as exc:
            log.warning("could not share a %s note with the other processes: %s", note.kind, exc)

    def _take_note(self, note: Note) -> None:
        for hook in self.note_hooks:
            hook(note)

    def apply_remote(self, batch: Batch) -> None:
        """Take in a batch another process sharing the store committed: the same records
        this process's own commit path would have changed, then its new events to the
        streams held here."""
        state = self.state
        state.users.update(batch.users)
        for token_hash, session in batch.sessions.items():
            if session is not None:
                state.put_session(token_hash, session)
            elif (ended := state.remove_session(token_hash)) is not None:
                self.hub.end_session(ended.user, token_hash)
        state.user_states.update(batch.user_states)
        for room_id, room in batch.rooms.items():
            if room is None:
                state.rooms.remove(room_id)
            else:
                state.rooms.put(room)
        for item_id, item in batch.scheduled.items():
            if item is None:
                self.schedule.items.pop(item_id, None)
            else:
                self.schedule.items[item_id] = item
        for file_id, record in batch.files.items():
            if record is None:
                self.files.records.pop(file_id, None)
            else:
                self.files.records[file_id] = record
        for chat, floor in batch.floors.items():
            self.floors[chat] = max(self.floors.get(chat, 0), floor)
        for chat, head in batch.heads.items():
            state.heads[chat] = max(state.heads.get(chat, 0), head)
            self.committed_heads[chat] = max(self.committed_heads.get(chat, 0), head)
        state.cursor = max(state.cursor, batch.cursor)
        before = self.committed_cursor
        self.committed_cursor = max(self.committed_cursor, batch.cursor)
        for hook in self.remote_hooks:
            hook(batch)
        for cursor in sorted(batch.events):
            if cursor > before:
                self.hub.publish(batch.events[cursor])

    def _rearm_windows(self, batch: Batch) -> None:
        for key, user_state in batch.user_states.items():
            if user_state.window is None:
                self.timers.cancel(("window", key))
                continue
            ends = user_state.window.ends_at(self.state.rate_policy)
            # Most remote states carry the same window one more message in: keep its timer.
            if ends != self._window_ends.get(key) or ("window", key) not in self.timers:
                self.arm_window(key, ends)

    # -- the one way a message is posted -----------------------------------------------------

    @writes
    async def post(
        self,
        user: User,
        text: str,
        to: str | None,
        chat: str | None,
        *,
        client_id: str | None = None,
        scheduled_at: int | None = None,
        files: tuple[FileRef, ...] = (),
        extra: Callable[[Message], Batch] | None = None,
        undo_extra: Callable[[], None] | None = None,
    ) -> Message:
        """Post a message as ``user`` now (validated, rate-limited, durable, published).

        ``extra(message)`` gives more to commit in the same transaction (what a client_id
        made; a scheduled message leaving the schedule), so both happen or neither does;
        ``undo_extra`` puts back what it changed if the write fails."""
        self.apply_delivered(user.key)
        message, previous = self.state.post_message(
            user, text, to, self.now(), client_id, chat, scheduled_at, files
        )
        event = Event(
            cursor=message.cursor, type=EventType.MESSAGE, chat=message.chat, message=message
        )
        batch = Batch() if extra is None else extra(message)
        batch.user_states.update({k: self.state.state_of(k) for k in previous})
        window_before = previous.get(user.key, UserState()).window
        before = {ref.id: self.files.records[ref.id] for ref in files}
        for record in self.files.attach([ref.id for ref in files], message.cursor):
            batch.files[record.id] = record

        def undo() -> None:
            self.state.restore(previous)
            self.files.records.update(before)
            if undo_extra is not None:
                undo_extra()

        await self.commit(batch, events=[event], undo=undo)
        if message.chat == chats.GENERAL and self.state.rate_policy.enabled:
            window = self.state.state_of(user.key).window
            if window is not None and window is not window_before and window.count == 1:
                self.arm_window(user.key, window.ends_at(self.state.rate_policy))
        return message

    # -- message lifetimes ------------------------------------------------------------------

    async def run_expiry(self) -> None:
        """Delete what has expired for everyone, a slice of the lifetime at a time.

        Each pass costs what the users' read steps do (the floors), not what the stored
        messages do: it reads by number only the messages that leave the disk."""
        ttl = self.state.ttl_ms
        if not ttl:
            return
        while True:
            await trio.sleep(max(1.0, ttl / 1000 / lifetime.STEPS))
            with contextlib.suppress(errors.ChatError):  # tried again next pass
                await self.expire()

    @writes
    async def expire(self) -> None:
        now = self.now()
        for chat, head in list(self.committed_heads.items()):
            floor = min(self.state.floor(chat, now), head)
            done = self.floors.get(chat, 0)
            while done < floor:
                upto = min(floor, done + EXPIRE_CHUNK)
                await self._drop(chat, done + 1, upto)
                done = upto

    async def _drop(self, chat: str, first: int, last: int) -> None:
        seqs = range(first, last + 1)
        cursors = [c for c in await self.store.chat_cursors(chat, seqs) if c is not None]
        batch = Batch(floors={chat: last}, drop_index={(chat, s) for s in seqs})
        carried: set[str] = set()
        for event in await self.store.events(cursors):
            if event is None or event.message is None:
                continue
            batch.drop_events.add(event.cursor)
            for comment in event.message.comments:
                batch.drop_events.add(parse_comment_id(comment.id))
            carried.update(ref.id for ref in event.message.files)
        orphans = []
        for file_id in carried:
            record = self.files.records.get(file_id)
            if record is not None:
                left = tuple(c for c in record.carriers if c not in batch.drop_events)
                record = attrs.evolve(record, carriers=left)
                self.files.records[file_id] = record
                if left:
                    batch.files[file_id] = record
                else:
                    orphans.append(record)

        def dropped() -> None:
            self.floors[chat] = max(self.floors.get(chat, 0), last)

        await self.store.commit(batch, on_commit=dropped)
        if orphans:
            await self.forget_files(orphans)

    @writes
    async def forget_files(self, gone: Sequence[FileRecord]) -> None:
        """Delete file records, and the bytes no other record shares (after the commit)."""
        await self.store.commit(Batch(files={r.id: None for r in gone}))
        for record in gone:  # only now: if the write fails, the files are still there
            self.files.records.pop(record.id, None)
        for sha256 in {r.sha256 for r in gone}:
            if not self.files.uses_of(sha256):
                await trio.to_thread.run_sync(self.blobs.delete, sha256)

    # -- the rate limit's periods ------------------------------------------------------------

    def arm_persisted_windows(self) -> None:
        """At start-up: re-arm rate-window timers from their stored ends."""
        for key, ends in list(self.state.windows()):
            self.arm_window(key, ends)

    def arm_window(self, key: str, ends_ms: int) -> None:
        self._window_ends[key] = ends_ms
        self.timers.arm(("window", key), ends_ms / 1000, lambda: self._expire_window(key))

    @writes
    async def _expire_window(self, key: str) -> None:
        previous = self.state.state_of(key)
        if not self.state.expire_window(key, self.now()):
            return
        # If the write fails the window is over all the same: a stored window that has
        # ended is ignored.
        with contextlib.suppress(errors.ChatError):
            await self.commit(
                Batch(user_states={key: self.state.state_of(key)}),
                undo=lambda: self.state.restore({key: previous}),
            )

    # -- sessions ---------------------------------------------------------------------------

    def touch_session(self, token_hash: str, session: Session) -> None:
        """The session was just used: move its last-seen time (in memory, stored in steps)."""
        now = self.now()
        if now - (session.last_seen_at or session.created_at) >= SEEN_STEP_MS:
            self.state.put_session(token_hash, attrs.evolve(session, last_seen_at=now))
            self._seen.add(token_hash)

    # -- idempotent writes ------------------------------------------------------------------

    async def recall(self, key: str, kind: str, digest: str) -> ClientRequest | None:
        """What client key ``key`` made by this very request, or None if it made nothing yet
        (then the caller makes it under ``claim``). Another request under the same key is a
        conflict. A request still being written under the key is waited for."""
        while True:
            claim = self._claims.get(key)
            if claim is not None:
                await claim.wait()
                continue
            made = await self.store.client_request(key)
            if key not in self._claims:
                break
        if made is None or not idempotency.still_kept(made, self.now()):
            return None
        if made.kind != kind or made.digest != digest:
            raise errors.ClientIdConflict(
                "this client_id was already used for a different request; use a new one"
            )
        return made

    @contextlib.contextmanager
    def claim(self, key: str | None) -> Iterator[None]:
        """Hold ``key`` while its request is written, so a retry arriving meanwhile waits."""
        if key is None:
            yield
            return
        claim = self._claims[key] = trio.Event()
        try:
            yield
        finally:
            del self._claims[key]
            claim.set()

    async def event(self, cursor: int) -> Event | None:
        (found,) = await self.store.events([cursor])
        return found

    async def run_hourly(self) -> None:
        """Housekeeping, once an hour; a failed task is tried again the next hour."""
        while True:
            await trio.sleep(3600)
            for task in self.hourly:
                with contextlib.suppress(errors.ChatError):
                    await task()

    @writes
    async def sweep_client_ids(self) -> None:
        """Forget idempotency keys a day old."""
        old = await self.store.client_requests_before(self.now() - idempotency.KEPT_MS)
        if old:
            await self.store.commit(Batch(client_requests=dict.fromkeys(old)))

    # -- read positions moved by live delivery --------------------------------------------

    def note_delivered(self, user: User, events: Iterable[Event]) -> None:
        """Events handed to a live transport count as read for ``/connect``."""
        positions = self._delivered.get(user.key)
        for event in events:
            message = event.message
            if event.type is EventType.MESSAGE and message is not None:
                if positions is None:
                    positions = self._delivered[user.key] = {}
                if message.seq > positions.get(message.chat, 0):
                    positions[message.chat] = message.seq

    def apply_delivered(self, key: str) -> None:
        positions = self._delivered.pop(key, None)
        if positions:
            self.state.mark_read(key, positions, self.now())

    @writes
    async def flush_reads(self) -> None:
        """Store read positions moved by delivery, and sessions' last-seen times."""
        delivered, self._delivered = self._delivered, {}
        moved = [
            key
            for key, positions in delivered.items()
            if self.state.mark_read(key, positions, self.now())
        ]
        seen, self._seen = self._seen, set()
        # A session ended meanwhile stays ended: only those still open are written.
        sessions = {h: self.state.sessions[h] for h in seen if h in self.state.sessions}
        if not moved and not sessions:
            return
        batch = Batch(
            user_states={k: self.state.state_of(k) for k in moved},
            sessions=dict(sessions),
        )
        # If this write fails the positions stay moved in memory and go with the user's next
        # write; at worst a restart shows a few delivered messages as unread again.
        with contextlib.suppress(errors.ChatError):
            await self.store.commit(batch)

    async def run_read_flusher(self) -> None:
        """Persist read positions moved by live delivery, at most once per interval."""
        while True:
            await trio.sleep(self.config.read_flush_interval)
            await self.flush_reads()

    # -- reading ----------------------------------------------------------------------------

    async def page(self, user: User, chat: str, end: int, limit: int) -> list[Message]:
        """Up to ``limit`` of ``chat``'s messages numbered ``end`` or lower that ``user`` may
        still see, oldest first.

        Numbers are dense except where a write failed after taking one, or where messages
        expired: step over the gaps, down to what has expired for the reader (or everyone).
        """
        now = self.now()
        lowest = max(self.floors.get(chat, 0), self.state.gone_below(user.key, chat, now)) + 1
        found: list[Message] = []
        while end >= lowest and len(found) < limit:
            start = max(lowest, end - (limit - len(found)) + 1)
            batch = await self.messages(chat, range(start, end + 1))
            found[:0] = [m for m in batch if self.state.alive(user.key, m, now)]
            end = start - 1
        return found

    async def messages(self, chat: str, seqs: range) -> list[Message]:
        if not seqs:
            return []
        cursors = [c for c in await self.store.chat_cursors(chat, seqs) if c is not None]
        events = await self.store.events(cursors)
        return [e.message for e in events if e is not None and e.message is not None]

    async def visible_message(self, user: User, raw_id: str) -> Message | None:
        """The message with this id, if ``user`` may see it; None as if it did not exist."""
        cursor = parse_message_id(raw_id)
        if cursor is None or cursor > self.committed_cursor:
            return None
        (event,) = await self.store.events([cursor])
        if event is None or event.type is not EventType.MESSAGE or event.message is None:
            return None
        message = event.message
        if not self.state.can_see(user.key, message.chat):
            return None
        if not self.state.alive(user.key, message, self.now()):
            return None  # expired for this reader: as if it did not exist
        return message
