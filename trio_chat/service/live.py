"""Live fan-out: every open event stream and waiting long-poll, per user.

A subscriber is a bounded inbox. Publishing never blocks: a subscriber whose inbox is full
is cut off (closed), and its client resumes from its last cursor -- replay comes from the
durable store, so a slow consumer loses nothing and slows no one. A consumer stuck writing
to a peer that stopped reading is cut off by the connection's write deadline.

Keep-alive is the hub's too: one task puts a ``None`` tick into every inbox each interval,
so a stream waits on its inbox alone, with no timer of its own per wait.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Collection
from types import TracebackType

import trio

from trio_chat.domain.models import Event

log = logging.getLogger("trio_chat.live")

# What an inbox holds: an event, or None for a keep-alive tick.
Item = Event | None


class SentNow(enum.Enum):
    """What a stream's ``send_now`` did with what it was given."""

    NOT_SENT = "nothing written: the stream's task sends it"
    SENT = "all of it written"
    OWED = "part of it written: the rest goes out first with the task's next write"


class Subscriber:
    """One stream's or long-poll's inbox: a bounded list and at most one waiting task.

    Lighter than a memory channel (an idle stream holds one of these for hours, and a server
    holds thousands), and ``take`` hands over everything pending at once, which is what a
    stream wants: one write for all it has fallen behind by.
    """

    __slots__ = (
        "_closed",
        "_items",
        "_limit",
        "_waiter",
        "direct",
        "overflowed",
        "session",
        "user",
    )

    def __init__(self, user: str, session: str, limit: int) -> None:
        self.user = user
        self.session = session  # the token hash it was opened with
        self._limit = limit
        self._items: list[Item] = []
        self._waiter: trio.lowlevel.Task | None = None
        self._closed = False
        self.overflowed = False
        # Set by a stream that can deliver an item at once, without its task: called with an
        # item only while the task waits in ``take`` with nothing queued (so in order, and
        # never while the task itself writes); True if it delivered the item. Waking the
        # task for each event is most of what fan-out costs beyond the socket write.
        self.direct: Callable[[Item], bool] | None = None

    def put(self, item: Item) -> None:
        """Queue an item without blocking; past the limit the subscriber is cut off."""
        if self._closed:
            return
        direct = self.direct
        if direct is not None and self._waiter is not None and not self._items:
            self.direct = None  # (a put from inside it queues)
            try:
                if direct(item):
                    return
            except Exception:
                # Whatever it had written, the stream cannot go on: its client resumes from
                # its last cursor, losing nothing.
                log.exception("direct delivery failed; the stream is cut off")
                self.close()
                return
            finally:
                if not self._closed:
                    self.direct = direct
        if len(self._items) >= self._limit:
            self.overflowed = True
            self.close()
            return
        self._items.append(item)
        self._wake()

    def close(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None:
            task, self._waiter = self._waiter, None
            trio.lowlevel.reschedule(task)

    async def take(self) -> list[Item]:
        """Everything queued, waiting for at least one item; EndOfChannel once closed."""
        if self._items or self._closed:
            await trio.lowlevel.checkpoint()
        else:
            self._waiter = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(self._abort)
        if self._closed:
            # Closed: what was queued is dropped, as the client resumes from its cursor.
            raise trio.EndOfChannel
        items, self._items = self._items, []
        return items

    def _abort(self, _: object) -> trio.lowlevel.Abort:
        # (A method, not a closure per wait: thousands of streams wait at once.)
        self._waiter = None
        return trio.lowlevel.Abort.SUCCEEDED


class Subscription:
    """``with hub.subscribe(user) as sub:`` -- registered for exactly the ``with`` block."""

    __slots__ = ("_hub", "_sub")

    def __init__(self, hub: Hub, sub: Subscriber) -> None:
        self._hub = hub
        self._sub = sub

    def __enter__(self) -> Subscriber:
        return self._sub

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._hub._remove(self._sub)


class Hub:
    """Routes each event to the subscribers of the users it may concern.

    Routing only: ``members(chat)`` (the domain's membership, None for "everyone") says whom
    to wake, and delivery asks the visibility rule again for every event it sends.
    """

    def __init__(self, buffer: int, members: Callable[[str], Collection[str] | None]) -> None:
        self._buffer = buffer
        self._members = members
        self._by_user: dict[str, set[Subscriber]] = {}
        self._closed = False

    def subscribe(self, user: str, session: str) -> Subscription:
        sub = Subscriber(user, session, self._buffer)
        if self._closed:
            sub.close()
        else:
            self._by_user.setdefault(user, set()).add(sub)
        return Subscription(self, sub)

    def _remove(self, sub: Subscriber) -> None:
        sub.close()
        subs = self._by_user.get(sub.user)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._by_user[sub.user]

    def end_session(self, user: str, session: str) -> None:
        """End the streams and polls a session opened (it was revoked or logged out)."""
        for sub in list(self._by_user.get(user, ())):
            if sub.session == session:
                sub.close()

    def publish(self, event: Event) -> None:
        for sub in self._audience(event):
            sub.put(event)

    async def run_keepalive(self, interval: float) -> None:
        """Tick every subscriber each ``interval`` seconds (streams answer with a comment)."""
        while True:
            await trio.sleep(interval)
            for subs in list(self._by_user.values()):
                for sub in list(subs):
                    sub.put(None)

    def _audience(self, event: Event) -> list[Subscriber]:
        if event.user is not None:
            return list(self._by_user.get(event.user, ()))
        chat = event.chat
        if chat is None:
            return []
        members = self._members(chat)
        if members is None:
            return [sub for subs in self._by_user.values() for sub in subs]
        return [sub for user in members for sub in self._by_user.get(user, ())]

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """End every stream (at shutdown)."""
        self._closed = True
        for subs in self._by_user.values():
            for sub in subs:
                sub.close()

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._by_user.values())
