"""Live fan-out: every open event stream and waiting long-poll, per user.

A subscriber is a bounded memory channel. Publishing never blocks: a subscriber whose buffer
is full is cut off (its channel closed), and its client resumes from its last cursor --
replay comes from the durable store, so a slow consumer loses nothing and slows no one.

Keep-alive is the hub's too: one task puts a ``None`` tick into every channel each interval,
so a stream waits on its channel alone, with no timer of its own per wait.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import attrs
import trio

from trio_chat.domain import chats
from trio_chat.domain.models import Event


@attrs.define(eq=False)
class Subscriber:
    user: str
    send: trio.MemorySendChannel[Event | None]
    receive: trio.MemoryReceiveChannel[Event | None]
    overflowed: bool = False
    # Cancelled on overflow, so a consumer blocked writing to a full socket is stopped too.
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)


class Hub:
    def __init__(self, buffer: int) -> None:
        self._buffer = buffer
        self._by_user: dict[str, set[Subscriber]] = {}
        self._closed = False

    @contextmanager
    def subscribe(self, user: str) -> Iterator[Subscriber]:
        send, receive = trio.open_memory_channel[Event | None](self._buffer)
        sub = Subscriber(user, send, receive)
        if self._closed:
            send.close()
        else:
            self._by_user.setdefault(user, set()).add(sub)
        try:
            yield sub
        finally:
            subs = self._by_user.get(user)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_user[user]
            send.close()
            receive.close()

    def publish(self, event: Event) -> None:
        for sub in self._audience(event):
            self._put(sub, event)

    @staticmethod
    def _put(sub: Subscriber, item: Event | None) -> None:
        try:
            sub.send.send_nowait(item)
        except trio.WouldBlock:
            sub.overflowed = True
            sub.send.close()
            sub.scope.cancel()
        except trio.ClosedResourceError:
            pass

    async def run_keepalive(self, interval: float) -> None:
        """Tick every subscriber each ``interval`` seconds (streams answer with a comment)."""
        while True:
            await trio.sleep(interval)
            for subs in list(self._by_user.values()):
                for sub in list(subs):
                    self._put(sub, None)

    def _audience(self, event: Event) -> list[Subscriber]:
        if event.user is not None:
            return list(self._by_user.get(event.user, ()))
        chat = event.chat
        if chat is None:
            return []
        if chat == chats.GENERAL:
            return [sub for subs in self._by_user.values() for sub in subs]
        parties = chats.private_parties(chat)
        if parties is None:
            return []
        return [sub for user in set(parties) for sub in self._by_user.get(user, ())]

    def close(self) -> None:
        """End every stream (at shutdown)."""
        self._closed = True
        for subs in self._by_user.values():
            for sub in subs:
                sub.send.close()

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._by_user.values())
