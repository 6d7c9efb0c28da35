"""Scheduled messages: a message to be sent at a set time, until then cancellable.

A scheduled message is sent by its author's name at its time, checked then as any send is
(ban, rate limit, membership). It leaves the schedule in the same transaction as the message
it becomes (or as the ``scheduled_failed`` notice, if refused), so it is sent at most once
whatever crashes. Done ones are kept a day, so that cancelling one already sent says so.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import attrs

from trio_chat import errors
from trio_chat.domain.filerefs import FileRef

MAX_AHEAD_MS = 30 * 24 * 3600 * 1000
MAX_PENDING = 100  # per user
KEPT_DONE_MS = 24 * 3600 * 1000

PENDING, SENT, FAILED = "pending", "sent", "failed"


@attrs.frozen
class Scheduled:
    id: str
    author: str  # user key
    chat: str | None  # what the send named: a chat...
    to: str | None  # ...or a private recipient (display name), or neither (common chat)
    text: str
    send_at: int
    created_at: int
    client_id: str | None = None
    status: str = PENDING
    done_at: int | None = None
    message_id: str | None = None  # once sent
    files: tuple[FileRef, ...] = ()


def new_id() -> str:
    return "q" + secrets.token_hex(8)


@attrs.define
class Schedule:
    items: dict[str, Scheduled] = attrs.field(factory=dict)

    def pending_of(self, key: str) -> list[Scheduled]:
        """A user's pending scheduled messages, soonest first."""
        mine = [s for s in self.items.values() if s.author == key and s.status == PENDING]
        return sorted(mine, key=lambda s: (s.send_at, s.id))

    def pending(self) -> Iterator[Scheduled]:
        return (s for s in self.items.values() if s.status == PENDING)

    def add(
        self,
        key: str,
        chat: str | None,
        to: str | None,
        text: str,
        send_at: int,
        now: int,
        client_id: str | None = None,
        files: tuple[FileRef, ...] = (),
    ) -> Scheduled:
        if send_at <= now:
            raise errors.InvalidRequest.field("$.send_at", "must be in the future")
        if send_at > now + MAX_AHEAD_MS:
            raise errors.InvalidRequest.field("$.send_at", "must be at most 30 days ahead")
        if len(self.pending_of(key)) >= MAX_PENDING:
            raise errors.TooManyScheduled(
                f"at most {MAX_PENDING} scheduled messages may wait at once; cancel some first"
            )
        item = Scheduled(new_id(), key, chat, to, text, send_at, now, client_id, files=files)
        self.items[item.id] = item
        return item

    def find(self, key: str, scheduled_id: str) -> Scheduled:
        item = self.items.get(scheduled_id)
        if item is None or item.author != key:
            raise errors.ScheduledNotFound(f"you have no scheduled message {scheduled_id!r}")
        return item

    def cancel(self, key: str, scheduled_id: str) -> Scheduled:
        item = self.find(key, scheduled_id)
        if item.status == SENT:
            raise errors.AlreadySent("that message has already been sent")
        if item.status != PENDING:
            raise errors.ScheduledNotFound(f"you have no scheduled message {scheduled_id!r}")
        del self.items[item.id]
        return item

    def done(self, item: Scheduled, status: str, now: int, message_id: str | None) -> Scheduled:
        finished = attrs.evolve(item, status=status, done_at=now, message_id=message_id)
        self.items[item.id] = finished
        return finished

    def expired(self, now: int) -> list[Scheduled]:
        """Done ones older than a day: to forget."""
        return [
            s
            for s in self.items.values()
            if s.done_at is not None and now - s.done_at >= KEPT_DONE_MS
        ]
