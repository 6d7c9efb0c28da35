"""ChatService: one object per server that every handler talks to."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence

import attrs
import trio

from trio_chat import errors
from trio_chat.clock import Clock, format_ms
from trio_chat.config import Config
from trio_chat.domain import accounts, chats, moderation, ratelimit
from trio_chat.domain.models import Comment, Event, EventType, Message, User, parse_message_id
from trio_chat.domain.state import ChatState, ReportResult, UserState
from trio_chat.service.live import Hub, Subscriber
from trio_chat.service.timers import Timers
from trio_chat.storage import AsyncStore, Batch, Snapshot

log = logging.getLogger("trio_chat.service")

REPLAY_CHUNK = 256  # events read from the store per step when replaying a cursor
UPDATES_MAX_EVENTS = 500  # events per long-poll answer at most (the cursor says where to go on)
RETRY_TIMER_AFTER = 5.0  # seconds before retrying a timer whose write failed


@attrs.frozen
class ConnectResult:
    history: list[Message]
    unread: list[Message]
    cursor: int


@attrs.frozen
class Status:
    user: User
    chats: list[str]
    rate: ratelimit.RateStatus
    banned_until: int | None


@attrs.frozen
class SendResult:
    message: Message
    rate: ratelimit.RateStatus | None  # None when the limit is off


class ChatService:
    def __init__(
        self,
        config: Config,
        clock: Clock,
        store: AsyncStore,
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
        )
        # What readers may see: only what is durable.
        self.committed_heads: dict[str, int] = dict(snapshot.heads)
        self.committed_cursor = snapshot.cursor
        self.hub = Hub(config.stream_buffer_events)
        self.timers = Timers(timer_nursery, clock)
        self.throttle = accounts.LoginThrottle(
            per_user=config.login_failure_limit,
            per_address=config.login_address_failure_limit,
            window_ms=int(config.login_failure_window * 1000),
            memory_bytes=config.login_throttle_memory,
        )
        self._dummy_hash = accounts.dummy_hash(config.scrypt_n)
        # scrypt costs tens of milliseconds of CPU and 16 MiB of memory per hash: at most one
        # per core at a time, so a flood of logins queues up instead of swamping the machine.
        self._hashing = trio.CapacityLimiter(os.cpu_count() or 1)
        self._latest: dict[int, Message] = {}  # messages with comments not yet committed
        # Read positions moved by live delivery, not yet applied: applying one is a new
        # UserState, too dear to make per event per stream. Applied at /connect and flush.
        self._delivered: dict[str, dict[str, int]] = {}

    def now(self) -> int:
        return int(self.clock.now() * 1000)

    # -- lifecycle ------------------------------------------------------------------------

    def arm_persisted_timers(self) -> None:
        """At start-up: re-arm ban and rate-window timers from their stored deadlines."""
        for key, until in list(self.state.bans()):
            self._arm_ban(key, until)
        for key, ends in list(self.state.windows()):
            self._arm_window(key, ends)

    async def run_read_flusher(self) -> None:
        """Persist read positions moved by live delivery, at most once per interval."""
        while True:
            await trio.sleep(self.config.read_flush_interval)
            await self.flush_reads()

    async def flush_reads(self) -> None:
        delivered, self._delivered = self._delivered, {}
        moved = [
            key for key, positions in delivered.items() if self.state.mark_read(key, positions)
        ]
        if not moved:
            return
        batch = Batch(user_states={k: self.state.state_of(k) for k in moved})
        # If this write fails the positions stay moved in memory and go with the user's next
        # write; at worst a restart shows a few delivered messages as unread again.
        with contextlib.suppress(errors.ChatError):
            await self.store.commit(batch)

    def _apply_delivered(self, key: str) -> None:
        positions = self._delivered.pop(key, None)
        if positions:
            self.state.mark_read(key, positions)

    async def _commit(
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

        def committed() -> None:
            for chat, head in batch.heads.items():
                self.committed_heads[chat] = max(self.committed_heads.get(chat, 0), head)
            self.committed_cursor = max(self.committed_cursor, batch.cursor)
            forget_latest()
            for event in events:
                self.hub.publish(event)

        def forget_latest() -> None:
            for event in updates:
                message = event.message
                if message is not None and self._latest.get(message.cursor) is message:
                    del self._latest[message.cursor]

        def failed() -> None:
            forget_latest()
            if undo is not None:
                undo()

        await self.store.commit(batch, on_commit=committed, on_failure=failed)

    # -- accounts -------------------------------------------------------------------------

    async def register(self, name: str, password: str) -> tuple[User, str]:
        fields = []
        if problem := accounts.username_problem(name):
            fields.append({"path": "$.username", "message": problem})
        if problem := accounts.password_problem(password):
            fields.append({"path": "$.password", "message": problem})
        if fields:
            raise errors.InvalidRequest(
                "; ".join(f"{f['message']} @ {f['path']}" for f in fields), fields=fields
            )
        if self.state.find_user(name) is not None:
            raise errors.UsernameTaken(f"the username {name!r} is taken")
        password_hash = await trio.to_thread.run_sync(
            lambda: accounts.hash_password(password, n=self.config.scrypt_n),
            limiter=self._hashing,
        )
        now = self.now()
        user = self.state.register(name, password_hash, now)
        token = accounts.new_token()
        token_hash = accounts.token_hash(token)
        session = self.state.add_session(token_hash, user, now)

        def undo() -> None:
            self.state.remove_session(token_hash)
            self.state.unregister(user)

        batch = Batch(
            users={user.key: user},
            sessions={token_hash: session},
            user_states={user.key: self.state.state_of(user.key)},
        )
        await self._commit(batch, undo=undo)
        log.info("registered user=%s", user.name)
        return user, token

    async def login(self, name: str, password: str, address: str | None) -> tuple[User, str]:
        # A name that cannot exist is refused before it reaches any table (or the throttle's
        # memory: 60 KB usernames once grew it by hundreds of megabytes).
        if problem := accounts.username_problem(name):
            raise errors.InvalidRequest.field("$.username", problem)
        key = name.lower()
        now = self.now()
        refused = self.throttle.check(key, address, now)
        if refused is not None:
            raise errors.TooManyAttempts(
                "too many failed logins from this address; try again later"
                if refused.by_address
                else "too many failed logins for this username; try again later",
                refused.retry_after_ms / 1000,
            )
        user = self.state.find_user(name)
        ok = False
        if accounts.password_problem(password) is None:  # else no account can have it
            stored = user.password_hash if user is not None else self._dummy_hash
            ok = await trio.to_thread.run_sync(
                accounts.verify_password, password, stored, limiter=self._hashing
            )
        if user is None or not ok:
            self.throttle.record_failure(key, address, self.now())
            raise errors.BadCredentials()
        self.throttle.record_success(key, address)
        token = accounts.new_token()
        token_hash = accounts.token_hash(token)
        session = self.state.add_session(token_hash, user, self.now())

        def undo() -> None:
            self.state.remove_session(token_hash)

        await self._commit(Batch(sessions={token_hash: session}), undo=undo)
        return user, token

    def authenticate(self, token: str | None) -> tuple[User, str]:
        """The user a bearer token belongs to, and the token's hash; or 401."""
        if token:
            token_hash = accounts.token_hash(token)
            user = self.state.session_user(token_hash)
            if user is not None:
                return user, token_hash
        raise errors.Unauthorized()

    async def logout(self, token_hash: str) -> None:
        session = self.state.remove_session(token_hash)
        if session is None:
            raise errors.Unauthorized()
        # At once, before the write: delivery checks the session too, so nothing more
        # reaches this token's streams even while the write is under way.
        self.hub.end_session(session.user, token_hash)

        def undo() -> None:
            self.state.sessions[token_hash] = session

        await self._commit(Batch(sessions={token_hash: None}), undo=undo)

    # -- chat -----------------------------------------------------------------------------

    async def connect(self, user: User) -> ConnectResult:
        cursor = self.committed_cursor
        size = self.config.history_size
        self._apply_delivered(user.key)
        plan = self.state.plan_connect(user.key, self.committed_heads, size)
        history = await self._page(chats.GENERAL, plan.history.stop - 1, size)
        unread: list[Message] = []
        for chat, seqs in plan.unread.items():
            for message in await self._messages(chat, seqs):
                if message.author_key != user.key:
                    unread.append(message)
                elif chat == chats.GENERAL:
                    # One's own messages are never unread: they are seen, so history.
                    history.append(message)
        history = history[-size:] if size else []
        unread.sort(key=lambda m: m.cursor)
        previous = self.state.state_of(user.key)
        new_state = self.state.mark_read(user.key, plan.read_after)
        if new_state is not None:

            def undo() -> None:
                if self.state.user_states.get(user.key) is new_state:
                    self.state.user_states[user.key] = previous

            await self._commit(Batch(user_states={user.key: new_state}), undo=undo)
        return ConnectResult(history=history, unread=unread, cursor=cursor)

    def status(self, user: User) -> Status:
        now = self.now()
        return Status(
            user=user,
            chats=self.state.chats_of(user.key),
            rate=self.state.rate_status(user.key, now),
            banned_until=self.state.banned_until(user.key, now),
        )

    def rate_status(self, user: User) -> ratelimit.RateStatus | None:
        if not self.state.rate_policy.enabled:
            return None
        return self.state.rate_status(user.key, self.now())

    async def send(self, user: User, text: str, to: str | None) -> SendResult:
        now = self.now()
        message, previous = self.state.post_message(user, text, to, now)
        event = Event(
            cursor=message.cursor, type=EventType.MESSAGE, chat=message.chat, message=message
        )
        batch = Batch(user_states={k: self.state.state_of(k) for k in previous})
        window_before = previous.get(user.key, UserState()).window if to is None else None

        def undo() -> None:
            self.state.restore(previous)

        await self._commit(batch, events=[event], undo=undo)
        if to is None and self.state.rate_policy.enabled:
            window = self.state.state_of(user.key).window
            if window is not None and window is not window_before and window.count == 1:
                self._arm_window(user.key, window.ends_at(self.state.rate_policy))
        return SendResult(message=message, rate=self.rate_status(user))

    async def messages(
        self, user: User, chat: str, before: str | None, limit: int
    ) -> list[Message]:
        if not self.state.can_see(user.key, chat):
            raise errors.ChatNotFound(f"there is no chat {chat!r} you belong to")
        end = self.committed_heads.get(chat, 0)
        if before is not None:
            anchor = await self._visible_message(user, before)
            if anchor is None or anchor.chat != chat:
                raise errors.MessageNotFound(f"there is no message {before!r} in this chat")
            end = anchor.seq - 1
        return await self._page(chat, end, limit)

    async def comment(self, user: User, message_id: str, text: str) -> Comment:
        found = await self._visible_message(user, message_id)
        if found is None:
            raise errors.MessageNotFound(f"there is no message {message_id!r}")
        # A comment not yet committed is the base for the next one, so none is lost.
        message = self._latest.get(found.cursor, found)
        comment, comment_event = self.state.post_comment(user, message, text, self.now())
        updated = message.with_comment(comment)
        self._latest[updated.cursor] = updated
        message_event = Event(
            cursor=updated.cursor, type=EventType.MESSAGE, chat=updated.chat, message=updated
        )
        await self._commit(Batch(), events=[comment_event], updates=[message_event])
        return comment

    async def report(self, reporter: User, target: str, reason: str | None = None) -> ReportResult:
        target_user = self.state.require_user(target)
        key = target_user.key
        previous = self.state.state_of(key)
        result = self.state.report(reporter, target, self.now())
        events = [result.event] if result.event is not None else []
        await self._commit(
            Batch(user_states={key: self.state.state_of(key)}),
            events=events,
            undo=lambda: self.state.restore({key: previous}),
        )
        log.info(
            "report user=%s by=%s reports=%d reason=%r",
            result.target.name,
            reporter.name,
            result.reports,
            reason,
        )
        if result.banned_until is not None and result.event is not None:
            self._arm_ban(key, result.banned_until)
            log.info("banned user=%s until=%s", result.target.name, format_ms(result.banned_until))
        return result

    # -- timers ---------------------------------------------------------------------------

    def _arm_ban(self, key: str, until_ms: int) -> None:
        self.timers.arm(("ban", key), until_ms / 1000, lambda: self._lift_ban(key))

    def _arm_window(self, key: str, ends_ms: int) -> None:
        self.timers.arm(("window", key), ends_ms / 1000, lambda: self._expire_window(key))

    async def _lift_ban(self, key: str) -> None:
        previous = self.state.state_of(key)
        event = self.state.lift_ban(key, self.now())
        if event is None:
            return
        try:
            await self._commit(
                Batch(user_states={key: self.state.state_of(key)}),
                events=[event],
                undo=lambda: self.state.restore({key: previous}),
            )
        except errors.ChatError:
            self.timers.arm(
                ("ban", key), self.clock.now() + RETRY_TIMER_AFTER, lambda: self._lift_ban(key)
            )
            return
        log.info("ban lifted user=%s", key)

    async def _expire_window(self, key: str) -> None:
        previous = self.state.state_of(key)
        if not self.state.expire_window(key, self.now()):
            return
        # If the write fails the window is over all the same: a stored window that has
        # ended is ignored.
        with contextlib.suppress(errors.ChatError):
            await self._commit(
                Batch(user_states={key: self.state.state_of(key)}),
                undo=lambda: self.state.restore({key: previous}),
            )

    # -- live -----------------------------------------------------------------------------

    def parse_cursor(self, raw: str | None) -> int | None:
        if raw is None:
            return None
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
            raise errors.InvalidCursor(f"{raw!r} is not a cursor")
        value = int(raw)
        if value > self.committed_cursor:
            raise errors.InvalidCursor(f"cursor {raw} is ahead of this server's log")
        return value

    def _session_open(self, session: str) -> bool:
        """Checked at delivery: a revoked token never receives another event."""
        return session in self.state.sessions

    async def updates(
        self, user: User, session: str, since: int | None, timeout: float
    ) -> tuple[list[Event], int]:
        """Long-poll: the caller's events after ``since``, waiting up to ``timeout`` for one."""
        with self.hub.subscribe(user.key, session) as sub:
            head = self.committed_cursor
            position = head if since is None else since
            found: list[Event] = []
            while position < head and not found:
                batch, position = await self._replay(user, position, head, UPDATES_MAX_EVENTS)
                found.extend(batch)
            if not found and timeout > 0:
                with trio.move_on_after(timeout):
                    while not found:
                        try:
                            found = self._fresh(await sub.take(), head)
                        except trio.EndOfChannel:
                            break
            if not self._session_open(session):
                raise errors.Unauthorized("this session has ended")
            if found:
                position = max(position, found[-1].cursor)
            self.delivered(user, found)
            return found, position

    async def stream(
        self,
        user: User,
        session: str,
        since: int | None,
        send: Callable[[list[Event] | None], Awaitable[None]],
    ) -> None:
        """Server-sent events: replay after ``since``, then live until closed.

        ``send(None)`` asks for a keep-alive. Returns when the server shuts down; raises
        ``SlowConsumer`` when this consumer fell too far behind (its client resumes from its
        cursor, losing nothing).
        """
        with self.hub.subscribe(user.key, session) as sub:
            await self._stream(user, since, send, sub)
            if sub.overflowed:
                raise errors.SlowConsumer

    async def _stream(
        self,
        user: User,
        since: int | None,
        send: Callable[[list[Event] | None], Awaitable[None]],
        sub: Subscriber,
    ) -> None:
        head = self.committed_cursor
        position = head if since is None else since
        while position < head:
            batch, position = await self._replay(user, position, head, REPLAY_CHUNK)
            if not self._session_open(sub.session):
                return
            if batch:
                await send(batch)
                self.delivered(user, batch)
        # No timeout per wait: the hub's keep-alive ticks (None) wake every stream.
        while True:
            try:
                received = await sub.take()
            except trio.EndOfChannel:
                return
            if not self._session_open(sub.session):
                return
            batch = self._fresh(received, head)
            if batch:
                await send(batch)
                self.delivered(user, batch)
            elif None in received:
                await send(None)

    @staticmethod
    def _fresh(received: list[Event | None], head: int) -> list[Event]:
        """The events among ``received`` that replay (up to ``head``) has not already sent."""
        return [e for e in received if e is not None and e.cursor > head]

    async def _replay(
        self, user: User, after: int, head: int, limit: int
    ) -> tuple[list[Event], int]:
        """Visible events in (after, head], at most ``limit``; and the position reached."""
        found: list[Event] = []
        position = after
        while position < head and len(found) < limit:
            cursors = range(position + 1, min(head, position + REPLAY_CHUNK) + 1)
            for cursor, event in zip(cursors, await self.store.events(cursors), strict=True):
                position = cursor
                if event is None or not self.state.visible(user.key, event):
                    continue
                if event.message is not None and event.message.comments:
                    # The log keeps each message as it is now; the event as it happened had
                    # no comments yet. They follow as events of their own.
                    event = attrs.evolve(event, message=attrs.evolve(event.message, comments=()))
                found.append(event)
                if len(found) >= limit:
                    break
        return found, position

    def delivered(self, user: User, events: Iterable[Event]) -> None:
        """Events handed to a live transport count as read for ``/connect``."""
        positions = self._delivered.get(user.key)
        for event in events:
            message = event.message
            if event.type is EventType.MESSAGE and message is not None:
                if positions is None:
                    positions = self._delivered[user.key] = {}
                if message.seq > positions.get(message.chat, 0):
                    positions[message.chat] = message.seq

    # -- reading helpers ------------------------------------------------------------------

    async def _page(self, chat: str, end: int, limit: int) -> list[Message]:
        """Up to ``limit`` messages of ``chat`` numbered ``end`` or lower, oldest first.

        Numbers are dense except where a write failed after taking one: step over the gap.
        """
        found: list[Message] = []
        while end >= 1 and len(found) < limit:
            start = max(1, end - (limit - len(found)) + 1)
            found[:0] = await self._messages(chat, range(start, end + 1))
            end = start - 1
        return found

    async def _messages(self, chat: str, seqs: range) -> list[Message]:
        if not seqs:
            return []
        cursors = [c for c in await self.store.chat_cursors(chat, seqs) if c is not None]
        events = await self.store.events(cursors)
        return [e.message for e in events if e is not None and e.message is not None]

    async def _visible_message(self, user: User, raw_id: str) -> Message | None:
        cursor = parse_message_id(raw_id)
        if cursor is None or cursor > self.committed_cursor:
            return None
        (event,) = await self.store.events([cursor])
        if event is None or event.type is not EventType.MESSAGE or event.message is None:
            return None
        if not self.state.can_see(user.key, event.message.chat):
            return None
        return event.message
