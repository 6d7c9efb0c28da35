"""The interactive chat: start-up (connect, history, unread), commands, and live messages.

Two tasks share one console: the input loop runs commands one at a time, and the live follower
prints what other people write. Every message and comment is printed at most once, whoever
delivers it first (the answer to our own send, ``/connect``, or the live stream), which makes
the overlaps between those sources harmless.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, tzinfo

import trio

from .api import ApiClient
from .auth import is_session_refused
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
    Revoke,
    Say,
    Sessions,
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
    ReadEvent,
    UnbannedEvent,
)
from .render import (
    HISTORY_SEPARATOR,
    UNREAD_SEPARATOR,
    ShortIds,
    chat_label,
    clean,
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
        relogin: Callable[[str | None], Awaitable[None]] | None = None,
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
        self.relogin = relogin
        self.follower: LiveFollower | None = None
        self._fatal: ClientError | None = None

    def is_mine(self, author: str) -> bool:
        """Usernames are case-insensitive: a message from any of our devices is ours."""
        return author.lower() == self.me.lower()

    async def run(self) -> None:
        """Connect, show what is new, then chat until /quit or end of input.

        Raises the :class:`ClientError` that ended it otherwise (a refused session that was
        not logged in again).
        """
        result = await self.api.connect()
        # API.md's /connect has no cursor; without one, ask for "the present" right after.
        cursor = result.cursor
        if cursor is None:
            cursor = (await self.api.updates(timeout=0)).cursor
        self._show_connect(result)
        self.follower = LiveFollower(
            self.api,
            cursor,
            self.on_event,
            self.notice,
            backoff=self._backoff,
            reauthenticate=self.relogin,
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._until_fatal, self.follower.run, nursery.cancel_scope)
            await self._until_fatal(self._input_loop, nursery.cancel_scope)
            nursery.cancel_scope.cancel()
        if self._fatal is not None:
            raise self._fatal

    async def _until_fatal(
        self, work: Callable[[], Awaitable[None]], scope: trio.CancelScope
    ) -> None:
        # Either task may end the session with an error; it is raised once, not as a group.
        try:
            await work()
        except ClientError as exc:
            self._fatal = exc
            scope.cancel()

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
        elif isinstance(event, ReadEvent):
            # Another device of ours read that chat. A line console shows every message as it
            # comes, so it has no unread marks to clear; the full-screen one does.
            pass
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
            if not await self._execute_logged_in(command):
                return

    async def _execute_logged_in(self, command: Command) -> bool:
        """Run a command; if the server refused our session, log in again and run it again."""
        for first in (True, False):
            token = self.api.token
            try:
                return await self.execute(command)
            except ClientError as exc:
                if first and self.relogin is not None and is_session_refused(exc):
                    await self.relogin(token)  # raises when no new password was given
                    continue
                self.error(self._explain(command, exc))
                break
        return True

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
        elif isinstance(command, Sessions):
            await self._sessions()
        elif isinstance(command, Revoke):
            await self._revoke(command.ref)
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

    async def _sessions(self) -> None:
        now = self._clock()
        found = await self.api.sessions()
        self.notice(f"you are signed in on {len(found)} device(s), newest first:")
        for s in found:
            mark = "  ← this one" if s.current else ""
            since = format_clock(s.created_at, now, self._tz)
            seen = format_clock(s.last_seen_at, now, self._tz)
            self.notice(f"  {s.id}  {clean(s.device)}  signed in {since}, last seen {seen}{mark}")
        if len(found) > 1:
            self.notice("/revoke ID signs one of them out")

    async def _revoke(self, ref: str) -> None:
        found = await self.api.sessions()
        matches = [s for s in found if s.id == ref] or [s for s in found if s.id.startswith(ref)]
        if len(matches) != 1:
            problem = "no session" if not matches else "more than one session"
            self.error(f"you have {problem} matching {ref!r}; /sessions lists them")
            return
        (target,) = matches
        if target.current:
            self.error("that is this session; /logout ends it")
            return
        await self.api.revoke_session(target.id)
        self.notice(f"signed out {clean(target.device)} (session {target.id})")

    async def _status(self) -> None:
        status = await self.api.status()
        now = self._clock()
        rate = status.rate_limit
        lines = [f"logged in as {status.username} on {self.api.server}"]
        if rate.limit is None:
            lines.append("common chat: no rate limit on this server")
        else:
            reset = ""
            if rate.reset_at is not None:
                reset = f"; the count resets at {format_clock(rate.reset_at, now, self._tz)}"
            lines.append(
                f"common chat: {rate.remaining} of {rate.limit} messages left{reset} "
                "(private messages are not limited)"
            )
        unread = [f"{chat_label(c, self.me)} {n}" for c, n in status.unread.items() if n]
        lines.append("unread: " + (", ".join(unread) if unread else "nothing"))
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
