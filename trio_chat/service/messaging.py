"""Chats and messages: connect, status, sending, paging, comments, and the rate limit."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from trio_chat import errors
from trio_chat.domain import chats, idempotency, ratelimit
from trio_chat.domain.filerefs import FileRef
from trio_chat.domain.idempotency import ClientRequest
from trio_chat.domain.models import (
    Comment,
    Event,
    EventType,
    Message,
    User,
    session_id,
)
from trio_chat.service.core import Core, writes
from trio_chat.storage import Batch


@attrs.frozen
class ConnectResult:
    history: list[Message]
    unread: list[Message]
    cursor: int


@attrs.frozen
class Status:
    user: User
    chats: list[str]
    rate: ratelimit.RateStatus | None  # None when the limit is off
    banned_until: int | None


@attrs.frozen
class SendResult:
    message: Message
    rate: ratelimit.RateStatus | None  # None when the limit is off
    repeated: bool = False  # a retry with a known client_id: nothing new was made


class Messaging:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.state = core.state

    async def connect(self, user: User, session: str | None = None) -> ConnectResult:
        cursor = self.core.committed_cursor
        size = self.core.config.history_size
        self.core.apply_delivered(user.key)
        plan = self.state.plan_connect(user.key, self.core.committed_heads, size)
        history = await self.core.page(user, chats.GENERAL, plan.history.stop - 1, size)
        unread: list[Message] = []
        now = self.core.now()
        for chat, seqs in plan.unread.items():
            for message in await self.core.messages(chat, seqs):
                if message.author_key != user.key:
                    unread.append(message)  # not delivered yet: cannot have expired
                elif chat == chats.GENERAL and self.state.alive(user.key, message, now):
                    # One's own messages are never unread: they are seen, so history.
                    history.append(message)
        history = history[-size:] if size else []
        unread.sort(key=lambda m: m.cursor)
        await self._read_up_to(user, session, plan.read_after)
        return ConnectResult(history=history, unread=unread, cursor=cursor)

    @writes
    async def read(self, user: User, session: str, chat: str, up_to: str) -> None:
        """Mark ``up_to`` and everything before it in ``chat`` as read (never back)."""
        if not self.state.can_see(user.key, chat):
            raise errors.ChatNotFound(f"there is no chat {chat!r} you belong to")
        message = await self.core.visible_message(user, up_to)
        if message is None or message.chat != chat:
            raise errors.MessageNotFound(f"there is no message {up_to!r} in this chat")
        self.core.apply_delivered(user.key)
        await self._read_up_to(user, session, {chat: message.seq})

    @writes
    async def _read_up_to(
        self, user: User, session: str | None, positions: Mapping[str, int]
    ) -> None:
        """Move read positions forward, durably, and tell the user's other sessions."""
        before = self.state.state_of(user.key).read
        moved = {c: p for c, p in positions.items() if p > before.get(c, 0) or c not in before}
        if not moved:
            return
        # The message each chat is now read up to (a position can name a failed write's gap).
        up_to: dict[str, int] = {}
        for chat, seq in moved.items():
            (cursor,) = await self.core.store.chat_cursors(chat, [seq])
            if cursor is not None:
                up_to[chat] = cursor
        previous = self.state.state_of(user.key)
        new_state = self.state.mark_read(user.key, moved, self.core.now())
        if new_state is None:  # another request moved them further meanwhile
            return
        origin = None if session is None else session_id(session)
        events = [
            self.state.read_event(user.key, chat, cursor, origin) for chat, cursor in up_to.items()
        ]

        def undo() -> None:
            if self.state.user_states.get(user.key) is new_state:
                self.state.user_states[user.key] = previous

        await self.core.commit(Batch(user_states={user.key: new_state}), events=events, undo=undo)

    def expires_at(self, user: User, message: Message) -> int | None:
        """When ``message`` expires for ``user``: null if never, or not yet delivered."""
        return self.state.expires_at(user.key, message)

    def unread(self, user: User) -> dict[str, int]:
        """Unread messages per chat of the user: the same on every session."""
        self.core.apply_delivered(user.key)
        return self.state.unread_counts(user.key, self.core.committed_heads)

    def status(self, user: User) -> Status:
        now = self.core.now()
        return Status(
            user=user,
            chats=self.state.chats_of(user.key),
            rate=self.rate_status(user),
            banned_until=self.state.banned_until(user.key, now),
        )

    def private_chat_with(self, user: User, name: str) -> str:
        """The id of ``user``'s private chat with the user called ``name``."""
        other = self.state.require_user(name)
        if other.key == user.key:
            raise errors.InvalidRequest.field("$.with", "there is no chat with yourself")
        return chats.private_chat(user.key, other.key)

    def rate_status(self, user: User) -> ratelimit.RateStatus | None:
        if not self.state.rate_policy.enabled:
            return None
        return self.state.rate_status(user.key, self.core.now())

    @writes
    async def send(
        self,
        user: User,
        text: str,
        to: str | None,
        client_id: str | None = None,
        chat: str | None = None,
        files: tuple[FileRef, ...] = (),
    ) -> SendResult:
        """Send now. ``files`` were checked by the files job (the caller's to attach)."""
        key = None
        if client_id is not None:
            key = idempotency.client_key(user.key, client_id)
            fields: dict[str, object] = {"text": text, "to": to}
            if chat is not None:
                fields = {"text": text, "chat": chat}
            if files:
                fields["files"] = [ref.id for ref in files]
            digest = idempotency.digest("message", fields)
            made = await self.core.recall(key, "message", digest)
            if made is not None:
                event = await self.core.event(made.cursor)
                if event is not None and event.message is not None:
                    return SendResult(event.message, self.rate_status(user), repeated=True)
        with self.core.claim(key):

            def record(message: Message) -> Batch:
                if key is None:
                    return Batch()
                made = ClientRequest("message", message.cursor, digest, message.sent_at)
                return Batch(client_requests={key: made})

            message = await self.core.post(
                user, text, to, chat, client_id=client_id, files=files, extra=record
            )
        return SendResult(message=message, rate=self.rate_status(user))

    async def messages(
        self, user: User, chat: str, before: str | None, limit: int
    ) -> list[Message]:
        if not self.state.can_see(user.key, chat):
            raise errors.ChatNotFound(f"there is no chat {chat!r} you belong to")
        end = self.core.committed_heads.get(chat, 0)
        if before is not None:
            anchor = await self.core.visible_message(user, before)
            if anchor is None or anchor.chat != chat:
                raise errors.MessageNotFound(f"there is no message {before!r} in this chat")
            end = anchor.seq - 1
        return await self.core.page(user, chat, end, limit)

    @writes
    async def comment(
        self, user: User, message_id: str, text: str, client_id: str | None = None
    ) -> tuple[Comment, bool]:
        """Comment on a message; returns the comment and whether it was made before (a
        repeated ``client_id``)."""
        found = await self.core.visible_message(user, message_id)
        if found is None:
            raise errors.MessageNotFound(f"there is no message {message_id!r}")
        key = None
        if client_id is not None:
            key = idempotency.client_key(user.key, client_id)
            digest = idempotency.digest("comment", {"message_id": message_id, "text": text})
            made = await self.core.recall(key, "comment", digest)
            if made is not None:
                event = await self.core.event(made.cursor)
                if event is not None and event.comment is not None:
                    return event.comment, True
        # No await from recall to claim: a repeat arriving now finds the claim and waits.
        with self.core.claim(key):
            # A comment not yet committed is the base for the next one, so none is lost.
            message = self.core.latest.get(found.cursor, found)
            now = self.core.now()
            comment, comment_event = self.state.post_comment(user, message, text, now, client_id)
            updated = message.with_comment(comment)
            self.core.latest[updated.cursor] = updated
            message_event = Event(
                cursor=updated.cursor, type=EventType.MESSAGE, chat=updated.chat, message=updated
            )
            batch = Batch()
            if key is not None:
                batch.client_requests[key] = ClientRequest(
                    "comment", comment_event.cursor, digest, now
                )
            await self.core.commit(batch, events=[comment_event], updates=[message_event])
        return comment, False
