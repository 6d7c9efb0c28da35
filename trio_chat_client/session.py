"""The interactive chat: start-up (connect, history, unread), commands, and live messages.

Two tasks share one console: the input loop runs commands one at a time, and the live follower
prints what other people write. Every message and comment is printed at most once, whoever
delivers it first (the answer to our own send, ``/connect``, or the live stream), which makes
the overlaps between those sources harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, tzinfo

import trio

from .api import ApiClient
from .commands import (
    HELP,
    Command,
    CommentOn,
    Help,
    History,
    Invalid,
    ListUsers,
    Logout,
    Private,
    Quit,
    Report,
    Say,
    ShowStatus,
    parse_command,
)
from .errors import ClientError, ConnectionLostError, NotFoundError, ServerUnreachableError
from .live import Backoff, LiveFollower
from .models import (
    BannedEvent,
    Comment,
    CommentEvent,
    ConnectResult,
    Event,
    Message,
    MessageEvent,
    UnbannedEvent,
)
from .render import (
    HISTORY_SEPARATOR,
    UNREAD_SEPARATOR,
    ShortIds,
    describe_error,
    format_clock,
    format_comment,
    format_duration,
    format_message,
)
from .ui.terminal import Console

__all__ = ["ChatSession", "utc_now"]


def utc_now() -> datetime:
    return datetime.now(UTC)


class ChatSession:
    def __init__(
        self,
        api: ApiClient,
        me: str,
        console: Console,
        *,
        on_logout: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = utc_now,
        tz: tzinfo | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.api = api
        self.me = me
        self.console = console
        self.ids = ShortIds()
        self.users: set[str] = {me}
        self._seen_messages: set[str] = set()
        self._seen_comments: set[str] = set()
        self._on_logout = on_logout
        self._clock = clock
        self._tz = tz
        self._backoff = backoff
        self.follower: LiveFollower | None = None

    async def run(self) -> None:
        """Connect, show what is new, then chat until /quit or end of input."""
        result = await self.api.connect()
        # API.md's /connect has no cursor; without one, ask for "the present" right after.
        cursor = result.cursor
        if cursor is None:
            cursor = (await self.api.updates(timeout=0)).cursor
        self._show_connect(result)
        self.follower = LiveFollower(
            self.api, cursor, self.on_event, self.notice, backoff=self._backoff
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.follower.run)
            await self._input_loop()
            nursery.cancel_scope.cancel()

    # -- output -----------------------------------------------------------------------------

    def notice(self, text: str) -> None:
        self.console.show(f"* {text}")

    def error(self, text: str) -> None:
        self.console.show(f"error: {text}")

    def _show_connect(self, result: ConnectResult) -> None:
        if result.history:
            self.console.show(HISTORY_SEPARATOR)
            for message in result.history:
                self.show_message(message)
        if result.unread:
            self.console.show(UNREAD_SEPARATOR)
            for message in result.unread:
                self.show_message(message)
            self.console.show("── end of unread ──")
        else:
            self.console.show("── no unread messages ──")
        self.notice(f"connected to {self.api.server} as {self.me}; type /help for commands")

    def show_message(self, message: Message, *, again: bool = False) -> None:
        """Print a message once (``again``: print even if shown before, e.g. for /history)."""
        new = message.id not in self._seen_messages
        self._seen_messages.add(message.id)
        self.users.add(message.author)
        if message.to is not None:
            self.users.add(message.to)
        if new or again:
            self._seen_comments.update(c.id for c in message.comments)
            for line in format_message(message, self.ids, self._clock(), self._tz):
                self.console.show(line)
        else:
            # Known message coming back with more comments: show only the new ones.
            for comment in message.comments:
                self.show_comment(comment)

    def show_comment(self, comment: Comment) -> None:
        if comment.id in self._seen_comments:
            return
        self._seen_comments.add(comment.id)
        self.users.add(comment.author)
        self.console.show(format_comment(comment, self.ids, self._clock(), self._tz))

    def on_event(self, event: Event) -> None:
        if isinstance(event, MessageEvent):
            self.show_message(event.message)
        elif isinstance(event, CommentEvent):
            self.show_comment(event.comment)
        elif isinstance(event, BannedEvent):
            now = self._clock()
            self.notice(
                f"you are banned from sending until {format_clock(event.until, now, self._tz)} "
                f"({format_duration((event.until - now).total_seconds())} from now) because "
                "other users reported you; you can still read"
            )
        elif isinstance(event, UnbannedEvent):
            self.notice("your ban has ended; you can send again")
        # Unknown event types: nothing to show; the follower still advances the cursor.

    # -- input ------------------------------------------------------------------------------

    async def _input_loop(self) -> None:
        while True:
            line = await self.console.read_line()
            if line is None:
                return
            command = parse_command(line)
            if command is None:
                continue
            if isinstance(command, Quit):
                return
            try:
                if not await self.execute(command):
                    return
            except ClientError as exc:
                self.error(self._explain(command, exc))

    def _explain(self, command: Command, exc: ClientError) -> str:
        text = describe_error(exc, self._clock(), self._tz)
        sending = isinstance(command, Say | Private | CommentOn)
        if isinstance(exc, NotFoundError) and exc.code == "message_not_found":
            ref = getattr(command, "ref", "")
            text = f"there is no message {ref} (or it is not visible to you)"
        if sending:
            if isinstance(exc, ConnectionLostError):
                text += "; it is unknown whether it was sent (check with /history)"
            elif isinstance(exc, ServerUnreachableError):
                text += "; your message was NOT sent (try again when the server is back)"
            else:
                text += "; your message was not sent"
        return text

    async def execute(self, command: Command) -> bool:
        """Run one command; ``False`` means the session should end."""
        if isinstance(command, Say):
            self.show_message(await self.api.send(command.text))
        elif isinstance(command, Private):
            self.show_message(await self.api.send(command.text, to=command.to))
        elif isinstance(command, CommentOn):
            message_id = self.ids.resolve(command.ref)
            self.show_comment(await self.api.comment(message_id, command.text))
        elif isinstance(command, Report):
            result = await self.api.report(command.username, command.reason)
            text = (
                f"reported {result.username}: {result.reports} of {result.threshold} reports "
                "needed for a ban"
            )
            if result.banned_until is not None:
                until = format_clock(result.banned_until, self._clock(), self._tz)
                text = f"reported {result.username}; they are now banned until {until}"
            self.notice(text)
        elif isinstance(command, ShowStatus):
            await self._status()
        elif isinstance(command, History):
            messages = await self.api.messages(limit=command.limit)
            self.console.show(f"── last {len(messages)} messages of the common chat ──")
            for message in messages:
                self.show_message(message, again=True)
            self.console.show("── end of history ──")
        elif isinstance(command, ListUsers):
            others = sorted(self.users - {self.me}, key=str.lower)
            names = ", ".join([f"{self.me} (you)", *others])
            self.notice(f"users seen in this session: {names} (the server has no user list)")
        elif isinstance(command, Help):
            for line in HELP.splitlines():
                self.console.show(line)
        elif isinstance(command, Logout):
            await self.api.logout()
            if self._on_logout is not None:
                self._on_logout()
            self.notice("logged out; the saved session was removed")
            return False
        elif isinstance(command, Invalid):
            self.error(command.reason)
        return True

    async def _status(self) -> None:
        status = await self.api.status()
        now = self._clock()
        rate = status.rate_limit
        lines = [f"logged in as {status.username} on {self.api.server}"]
        reset = ""
        if rate.reset_at is not None:
            reset = f"; the count resets at {format_clock(rate.reset_at, now, self._tz)}"
        lines.append(
            f"common chat: {rate.remaining} of {rate.limit} messages left{reset} "
            "(private messages are not limited)"
        )
        if status.banned_until is not None:
            lines.append(
                f"banned from sending until {format_clock(status.banned_until, now, self._tz)}"
            )
        else:
            lines.append("not banned")
        if self.follower is not None:
            state = "reconnecting" if self.follower.outage else "connected"
            lines.append(f"live updates: {state}")
        for line in lines:
            self.notice(line)
