"""Scheduled messages: kept until their time, then sent as their author would send them.

Each pending one has a timer (a cancellable task on the injected clock). When it fires, the
message is posted through the core's one send path with the schedule's change in the same
transaction: sent (or refused, with a ``scheduled_failed`` notice to its author) exactly
once, whatever crashes. At start-up every pending one is armed again; those whose time
passed while the server was down fire at once.
"""

from __future__ import annotations

import logging

from trio_chat import errors
from trio_chat.domain import idempotency, schedule
from trio_chat.domain.filerefs import FileRef
from trio_chat.domain.idempotency import ClientRequest
from trio_chat.domain.models import Event, EventType, Message, User
from trio_chat.domain.schedule import Scheduled
from trio_chat.domain.state import text_problem
from trio_chat.service.core import RETRY_TIMER_AFTER, Core, writes
from trio_chat.storage import Batch

log = logging.getLogger("trio_chat.service")


class Scheduling:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.state = core.state
        self.schedule = core.schedule
        core.hourly.append(self._forget_done)
        core.remote_hooks.append(self._rearm)

    def arm_persisted_timers(self) -> None:
        for item in list(self.schedule.pending()):
            self._arm(item)

    def pending(self, user: User) -> list[Scheduled]:
        return self.schedule.pending_of(user.key)

    @writes
    async def create(
        self,
        user: User,
        text: str,
        to: str | None,
        chat: str | None,
        send_at: int,
        client_id: str | None = None,
        files: tuple[FileRef, ...] = (),
    ) -> Scheduled:
        """Schedule a message; what it names is checked now and again when it is sent."""
        key = None
        if client_id is not None:
            key = idempotency.client_key(user.key, client_id)
            fields = {
                "text": text,
                "to": to,
                "chat": chat,
                "send_at": send_at,
                "files": [ref.id for ref in files],
            }
            digest = idempotency.digest("scheduled", fields)
            made = await self.core.recall(key, "scheduled", digest)
            if made is not None and made.ref in self.schedule.items:
                return self.schedule.items[made.ref]
        if (problem := text_problem(text)) and not (files and text == ""):
            raise errors.InvalidRequest.field("$.text", problem)
        target, recipient = self.state.resolve_target(user, to, chat)
        with self.core.claim(key):
            now = self.core.now()
            item = self.schedule.add(
                user.key,
                target,
                None if recipient is None else recipient.name,
                text,
                send_at,
                now,
                client_id,
                files,
            )
            batch = Batch(scheduled={item.id: item})
            if key is not None:
                batch.client_requests[key] = ClientRequest("scheduled", 0, digest, now, item.id)

            def undo() -> None:
                self.schedule.items.pop(item.id, None)

            await self.core.commit(batch, undo=undo)
        self._arm(item)
        return item

    @writes
    async def cancel(self, user: User, scheduled_id: str) -> None:
        item = self.schedule.cancel(user.key, scheduled_id)
        self.core.timers.cancel(("scheduled", item.id))

        def undo() -> None:
            self.schedule.items[item.id] = item
            self._arm(item)

        await self.core.commit(Batch(scheduled={item.id: None}), undo=undo)

    def _rearm(self, batch: Batch) -> None:
        """Another process scheduled, sent or cancelled: this one's timers follow (so a
        message is still sent if the process that took it stops)."""
        for item_id, item in batch.scheduled.items():
            if item is not None and item.status == schedule.PENDING:
                self._arm(item)
            else:
                self.core.timers.cancel(("scheduled", item_id))

    def _arm(self, item: Scheduled) -> None:
        self.core.timers.arm(
            ("scheduled", item.id), item.send_at / 1000, lambda: self._send(item.id)
        )

    @writes
    async def _send(self, scheduled_id: str) -> None:
        item = self.schedule.items.get(scheduled_id)
        if item is None or item.status != schedule.PENDING:
            return
        author = self.state.users[item.author]

        def sent(message: Message) -> Batch:
            done = self.schedule.done(item, schedule.SENT, message.sent_at, message.id)
            return Batch(scheduled={item.id: done})

        def not_sent() -> None:
            self.schedule.items[item.id] = item

        try:
            await self.core.post(
                author,
                item.text,
                None,
                item.chat,
                client_id=item.client_id,
                scheduled_at=item.send_at,
                files=item.files,
                extra=sent,
                undo_extra=not_sent,
            )
        except (errors.StorageUnavailable, errors.ShuttingDown):
            # Not refused, just not written: try again soon (or at the next start).
            if not self.core.hub.closed:
                self.core.timers.arm(
                    ("scheduled", item.id),
                    self.core.clock.now() + RETRY_TIMER_AFTER,
                    lambda: self._send(item.id),
                )
            return
        except errors.ChatError as refused:
            await self._refuse(item, refused)
            return
        log.info("scheduled message sent id=%s author=%s", item.id, author.name)

    @writes
    async def _refuse(self, item: Scheduled, refused: errors.ChatError) -> None:
        """The author may not send it now (banned, rate-limited, no longer a member)."""
        failed = self.schedule.done(item, schedule.FAILED, self.core.now(), None)
        event = Event(
            cursor=self.state.next_cursor(),
            type=EventType.SCHEDULED_FAILED,
            user=item.author,
            scheduled=item,
            error=(refused.code, refused.message),
        )
        try:
            await self.core.commit(
                Batch(scheduled={item.id: failed}),
                events=[event],
                undo=lambda: self.schedule.items.__setitem__(item.id, item),
            )
        except errors.ChatError:
            self._arm(item)  # not recorded: it will be tried (and refused) again
            return
        log.info("scheduled message refused id=%s code=%s", item.id, refused.code)

    @writes
    async def _forget_done(self) -> None:
        old = self.schedule.expired(self.core.now())
        for item in old:
            del self.schedule.items[item.id]

        def undo() -> None:
            for item in old:
                self.schedule.items[item.id] = item

        if old:
            await self.core.commit(Batch(scheduled=dict.fromkeys(s.id for s in old)), undo=undo)
