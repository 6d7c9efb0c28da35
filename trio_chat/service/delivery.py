"""Live delivery: long-poll and event streams, replay from a cursor, and what each reader
may receive, decided at the moment of delivery."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
import trio

from trio_chat import errors
from trio_chat.domain.models import Event, EventType, User, parse_message_id, session_id
from trio_chat.service.core import Core
from trio_chat.service.live import Item, SentNow, Subscriber

REPLAY_CHUNK = 256  # events read from the store per step when replaying a cursor
UPDATES_MAX_EVENTS = 500  # events per long-poll answer at most (the cursor says where to go on)


class _DeliverNow:
    """``Delivery._deliver_now`` for one stream (one small object per waiting stream)."""

    __slots__ = ("_delivery", "_head", "_public", "_send_now", "_sub", "_user")

    def __init__(
        self,
        delivery: Delivery,
        user: User,
        public: str,
        head: int,
        sub: Subscriber,
        send_now: Callable[[list[Event] | None], SentNow],
    ) -> None:
        self._delivery = delivery
        self._user = user
        self._public = public
        self._head = head
        self._sub = sub
        self._send_now = send_now

    def __call__(self, item: Item) -> bool:
        return self._delivery._deliver_now(
            self._user, self._public, self._head, self._sub, self._send_now, item
        )


class Delivery:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.state = core.state

    def parse_cursor(self, raw: str | None) -> int | None:
        if raw is None:
            return None
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
            raise errors.InvalidCursor(f"{raw!r} is not a cursor")
        value = int(raw)
        if value > self.core.committed_cursor:
            raise errors.InvalidCursor(f"cursor {raw} is ahead of this server's log")
        return value

    def _session_open(self, session: str) -> bool:
        """Checked at delivery: a revoked token never receives another event."""
        return session in self.state.sessions

    async def updates(
        self, user: User, session: str, since: int | None, timeout: float
    ) -> tuple[list[Event], int]:
        """Long-poll: the caller's events after ``since``, waiting up to ``timeout`` for one."""
        public = session_id(session)
        with self.core.hub.subscribe(user.key, session) as sub:
            head = self.core.committed_cursor
            position = head if since is None else since
            found: list[Event] = []
            while position < head and not found:
                batch, position = await self._replay(
                    user, public, position, head, UPDATES_MAX_EVENTS
                )
                found.extend(batch)
            if not found and timeout > 0:
                with trio.move_on_after(timeout):
                    while not found:
                        try:
                            fresh = self._fresh(user, public, await sub.take(), head)
                        except trio.EndOfChannel:
                            break
                        # (Cancelled meanwhile, nothing is answered: the next poll replays.)
                        found = await self._without_expired_comments(user, fresh)
            if not self._session_open(session):
                raise errors.Unauthorized("this session has ended")
            if found:
                position = max(position, found[-1].cursor)
            self.core.note_delivered(user, found)
            return found, position

    async def stream(
        self,
        user: User,
        session: str,
        since: int | None,
        send: Callable[[list[Event] | None], Awaitable[None]],
        send_now: Callable[[list[Event] | None], SentNow] | None = None,
    ) -> None:
        """Server-sent events: replay after ``since``, then live until closed.

        ``send(None)`` asks for a keep-alive. Returns when the server shuts down; raises
        ``SlowConsumer`` when this consumer fell too far behind (its client resumes from its
        cursor, losing nothing). ``send_now``, if given, sends without waiting when it can:
        live events then go out from the publisher, without waking this task (see
        ``_deliver_now``).
        """
        # One frame, not two: thousands of streams wait in here for hours, each holding its
        # frames (about 300 bytes each).
        with self.core.hub.subscribe(user.key, session) as sub:
            public = session_id(sub.session)
            head = self.core.committed_cursor
            position = head if since is None else since
            live = True
            while position < head:
                batch, position = await self._replay(user, public, position, head, REPLAY_CHUNK)
                if not self._session_open(sub.session):
                    live = False
                    break
                if batch:
                    await send(batch)
                    self.core.note_delivered(user, batch)
            if send_now is not None:
                sub.direct = _DeliverNow(self, user, public, head, sub, send_now)
            # No timeout per wait: the hub's keep-alive ticks (None) wake every stream.
            while live:
                try:
                    received = await sub.take()
                except trio.EndOfChannel:
                    break
                if not self._session_open(sub.session):
                    break
                batch = await self._without_expired_comments(
                    user, self._fresh(user, public, received, head)
                )
                if batch:
                    await send(batch)
                    self.core.note_delivered(user, batch)
                elif None in received:
                    await send(None)
            if sub.overflowed:
                raise errors.SlowConsumer

    def _deliver_now(
        self,
        user: User,
        public: str,
        head: int,
        sub: Subscriber,
        send_now: Callable[[list[Event] | None], SentNow],
        item: Item,
    ) -> bool:
        """What the stream's loop does with one item, done by the publisher while the loop
        waits for one; False (nothing sent) hands the item to the loop instead."""
        if not self._session_open(sub.session):
            return False  # the loop ends the stream
        if item is None:
            batch = None
        else:
            batch = self._fresh(user, public, [item], head)
            if not batch:
                return True  # not for this reader, or sent by replay: the loop skips it too
            if batch[0].type is EventType.COMMENT:
                lives = self._comment_lives(user, batch[0])
                if lives is None:
                    return False  # whether its message lives for this reader takes a read
                if not lives:
                    return True  # expired for this reader: the loop would skip it too
        sent = send_now(batch)
        if sent is SentNow.NOT_SENT:
            return False
        if batch is not None:
            self.core.note_delivered(user, batch)
        if sent is SentNow.OWED:
            sub.put(None)  # the loop wakes, and its next write (a keep-alive) pays the debt
        return True

    def _fresh(
        self, user: User, session: str, received: list[Event | None], head: int
    ) -> list[Event]:
        """The events among ``received`` that replay (up to ``head``) has not already sent,
        and that ``user`` may see now: the hub only routes, the rule decides."""
        visible = self.state.visible
        return [
            e
            for e in received
            if e is not None and e.cursor > head and visible(user.key, e, session)
        ]

    async def _replay(
        self, user: User, session: str, after: int, head: int, limit: int
    ) -> tuple[list[Event], int]:
        """Visible events in (after, head], at most ``limit``; and the position reached."""
        found: list[Event] = []
        position = after
        now = self.core.now()
        while position < head and len(found) < limit:
            cursors = range(position + 1, min(head, position + REPLAY_CHUNK) + 1)
            for cursor, event in zip(cursors, await self.core.store.events(cursors), strict=True):
                position = cursor
                if event is None or not self.state.visible(user.key, event, session):
                    continue
                if event.message is not None and not self.state.alive(user.key, event.message, now):
                    continue  # expired for this reader
                if event.message is not None and event.message.comments:
                    # The log keeps each message as it is now; the event as it happened had
                    # no comments yet. They follow as events of their own.
                    event = attrs.evolve(event, message=attrs.evolve(event.message, comments=()))
                found.append(event)
                if len(found) >= limit:
                    break
        return await self._without_expired_comments(user, found), position

    def _comment_lives(self, user: User, event: Event) -> bool | None:
        """Whether a comment event's message lives for ``user``, from the store's cache;
        None if the message is not in it (the loop then reads it)."""
        cursor = None if event.comment is None else parse_message_id(event.comment.message_id)
        parent = None if cursor is None else self.core.store.cached_event(cursor)
        if parent is None or parent.message is None:
            return None
        return self.state.alive(user.key, parent.message, self.core.now())

    async def _without_expired_comments(self, user: User, events: list[Event]) -> list[Event]:
        """``events`` less the comments on messages that have expired for ``user`` (or left
        the disk): a message's comments live and go with it, for each reader."""
        parents = {
            cursor
            for e in events
            if e.type is EventType.COMMENT
            and e.comment is not None
            and (cursor := parse_message_id(e.comment.message_id)) is not None
        }
        if not parents:
            return events
        ordered = sorted(parents)
        found = dict(zip(ordered, await self.core.store.events(ordered), strict=True))
        now = self.core.now()

        def lives(event: Event) -> bool:
            if event.type is not EventType.COMMENT or event.comment is None:
                return True
            parent = found.get(parse_message_id(event.comment.message_id) or 0)
            message = None if parent is None else parent.message
            return message is not None and self.state.alive(user.key, message, now)

        return [e for e in events if lives(e)]
