"""The interactive chat: start-up (connect, history, unread), commands, and live messages.

Two tasks share one console: the input loop runs commands one at a time, and the live follower
shows what other people write. Every message and comment is shown at most once, whoever
delivers it first (the answer to our own send, ``/connect``, or the live stream), which makes
the overlaps between those sources harmless.

The session does not know how it is shown. It hands the console :class:`~.render.Line` objects
that name their conversation; the line console prints them one after the other, the
full-screen one puts each in its conversation's view. The session keeps the conversations
(:class:`~.conversations.Conversations`): which one is in view, what is unread where; it tells
the server (``POST /read``) what the user has seen, so the user's other devices clear the same
marks, and clears its own when another device does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, tzinfo
from typing import Final, Protocol

import trio

from .api import ApiClient
from .auth import is_session_refused
from .commands import (
    COMMAND_NAMES,
    HELP,
    Command,
    CommentOn,
    Help,
    History,
    Invalid,
    ListUsers,
    Logout,
    Private,
    Query,
    Quit,
    Report,
    Revoke,
    Say,
    Sessions,
    ShowStatus,
    Upload,
    parse_command,
)
from .conversations import Conversation, Conversations
from .errors import (
    ClientError,
    CommandError,
    ConnectionLostError,
    NotFoundError,
    ServerUnreachableError,
)
from .live import Backoff, LiveFollower
from .models import (
    GENERAL,
    BannedEvent,
    Comment,
    CommentEvent,
    ConnectResult,
    Event,
    Message,
    MessageEvent,
    ReadEvent,
    UnbannedEvent,
    by_id,
)
from .render import (
    HISTORY_SEPARATOR,
    UNREAD_SEPARATOR,
    Line,
    MessageRefs,
    chat_label,
    clean,
    comment_line,
    describe_error,
    format_clock,
    format_duration,
    message_line,
)
from .rooms import ROOM_COMMANDS, RoomCommands
from .scheduling import SCHEDULE_COMMANDS, ScheduleCommands
from .transfers import FILE_COMMANDS, FileCommands, UploadedNotSentError

__all__ = ["ChatSession", "Console", "utc_now"]

# Reports of what was read are sent at most this often (seconds): a busy chat read live would
# otherwise cost a request per message.
READ_REPORT_DELAY: Final = 1.0
HISTORY_PAGE: Final = 50


def utc_now() -> datetime:
    return datetime.now(UTC)


class Console(Protocol):
    """What the session needs from a user interface (``ui.terminal``, ``ui.tui``)."""

    # True when every line is shown as it comes (a line console): nothing is ever unread.
    shows_everything: bool

    def show(self, line: Line) -> None: ...

    def show_older(self, chat: str, lines: list[Line]) -> None: ...

    def changed(self) -> None: ...

    def progress(self, text: str | None) -> None:
        """Show how far a transfer has come (``None``: it is over)."""
        ...

    async def read_line(self) -> str | None: ...

    async def read_password(self, prompt: str) -> str | None: ...


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
        self.refs = MessageRefs()
        self.views = Conversations(me)
        self.views.all_visible = console.shows_everything
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
        self._nursery: trio.Nursery | None = None
        self._reads: dict[str, str] = {}  # chat → newest message seen, not yet reported
        self._reads_waiting = trio.Event()
        self.file_refs = MessageRefs(mark="")
        self.rooms = RoomCommands(self)
        self.scheduling = ScheduleCommands(self)
        self.files = FileCommands(self)

    @property
    def tz(self) -> tzinfo | None:
        """The zone times are shown and typed in (None: the process's own, ``TZ``)."""
        return self._tz

    def now(self) -> datetime:
        return self._clock()

    def is_mine(self, author: str) -> bool:
        """Usernames are case-insensitive: a message from any of our devices is ours."""
        return self.views.is_mine(author)

    @property
    def live(self) -> bool:
        return self.follower is None or not self.follower.outage

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
        await self._open_known_chats()
        self._show_connect(result)
        self.follower = LiveFollower(
            self.api,
            cursor,
            self.on_event,
            self._live_notice,
            backoff=self._backoff,
            reauthenticate=self.relogin,
        )
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._until_fatal, self.follower.run, nursery.cancel_scope)
            nursery.start_soon(self._report_reads)
            await self._until_fatal(self._input_loop, nursery.cancel_scope)
            nursery.cancel_scope.cancel()
        self._nursery = None
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

    async def _open_known_chats(self) -> None:
        """A view for each chat the user has (the full-screen console lists them), and the
        names of the user's rooms (both consoles name them)."""
        with contextlib.suppress(ClientError):  # conversations also open as messages arrive
            await self.rooms.load()
        if self.console.shows_everything:
            return
        try:
            status = await self.api.status()
        except ClientError:
            return
        for chat in status.chats:
            if chat not in self.views:
                self.views.open(chat)

    def room_name(self, chat: str) -> str | None:
        """The name of the room ``chat``, if it is one of the user's rooms."""
        return self.rooms.name_of(chat)

    # -- output -----------------------------------------------------------------------------

    def notice(self, text: str) -> None:
        self.console.show(Line(f"* {text}", "notice"))

    def error(self, text: str) -> None:
        self.console.show(Line(f"error: {text}", "error"))

    def info(self, text: str, chat: str | None = None) -> None:
        self.console.show(Line(text, "info", chat))

    def _live_notice(self, text: str) -> None:
        self.notice(text)
        self.console.changed()  # the status line shows the live connection's state

    def _show_connect(self, result: ConnectResult) -> None:
        if result.history:
            self.info(HISTORY_SEPARATOR, GENERAL)
            for message in result.history:
                self.show_message(message)
        self.views.get(GENERAL).history_loaded = True
        if result.unread:
            self.info(UNREAD_SEPARATOR, GENERAL)
            for message in result.unread:
                self.show_message(message)
            self.info("── end of unread ──", GENERAL)
        else:
            self.info("── no unread messages ──", GENERAL)
        self.notice(f"connected to {self.api.server} as {self.me}; type /help for commands")

    def _message_line(self, message: Message, chat: str) -> Line:
        in_view = not self.console.shows_everything
        self.files.saw(message)
        room = None
        if chat in self.views and self.views.get(chat).is_room:
            room = self.room_name(chat) or self.views.get(chat).title
        return message_line(
            message,
            self.refs,
            self._clock(),
            self._tz,
            me=self.me,
            chat=chat,
            in_view=in_view,
            room=room,
            file_refs=self.file_refs,
        )

    def show_message(self, message: Message) -> None:
        """Show a message once (a known one again only for comments it did not have)."""
        self.users.add(message.author)
        if message.to is not None:
            self.users.add(message.to)
        chat = self.views.chat_of(message)
        if message.id in self._seen_messages:
            for comment in message.comments:
                self.show_comment(comment)
            return
        self._seen_messages.add(message.id)
        self._seen_comments.update(c.id for c in message.comments)
        line = self._message_line(message, chat)
        self.views.add(message, alert=line.alert)
        self.console.show(line)
        for comment in message.comments:
            self.console.show(self._comment_line(comment, chat))
        if not self.is_mine(message.author):
            self._seen(chat, message.id)
        self.console.changed()

    def _comment_line(self, comment: Comment, chat: str) -> Line:
        return comment_line(comment, self.refs, self._clock(), self._tz, me=self.me, chat=chat)

    def show_comment(self, comment: Comment) -> None:
        if comment.id in self._seen_comments:
            return
        self._seen_comments.add(comment.id)
        self.users.add(comment.author)
        # A comment goes with its message; one on a message never shown here, to the common
        # chat (the one conversation whose old messages every user can comment on).
        chat = self.views.chat_of_message_id(comment.message_id) or GENERAL
        self.console.show(self._comment_line(comment, chat))

    def on_event(self, event: Event) -> None:
        if self.rooms.on_event(event) or self.scheduling.on_event(event):
            return
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
        elif isinstance(event, ReadEvent) and self.views.read_up_to(event.chat, event.up_to):
            # Another device of ours read that chat: clear the marks it cleared.
            self.console.changed()
        # Unknown event types: nothing to show; the follower still advances the cursor.

    # -- conversations ----------------------------------------------------------------------

    def focus(self, chat: str) -> Conversation:
        """Bring a conversation into view; tell the server (and our devices) it is read."""
        had_unread = self.views.get(chat).unread if chat in self.views else 0
        conversation = self.views.focus(chat)
        if had_unread and conversation.newest is not None:
            self._seen(chat, conversation.newest, force=True)
        if not conversation.history_loaded and not conversation.gone and self._nursery is not None:
            conversation.history_loaded = True
            self._nursery.start_soon(self._load_history, chat)
        self.console.changed()
        return conversation

    async def _load_history(self, chat: str) -> None:
        try:
            await self.page_back(chat, HISTORY_PAGE, quiet=True)
        except ClientError as exc:
            self.error(describe_error(exc, self._clock(), self._tz))

    async def page_back(self, chat: str, limit: int = HISTORY_PAGE, *, quiet: bool = False) -> int:
        """Show up to ``limit`` messages of ``chat`` older than the oldest shown; how many."""
        conversation = self.views.open(chat)
        if conversation.gone:
            if not quiet:
                title = self._title(conversation)
                self.info(f"── you are no longer in {title}: nothing older can be loaded ──", chat)
            return 0
        if conversation.at_start:
            if not quiet:
                self.info(f"── the start of {self._title(conversation)} ──", chat)
            return 0
        messages = await self.api.messages(chat=chat, before=conversation.oldest, limit=limit)
        new = self.views.add_page(chat, messages)
        if len(messages) < limit:
            conversation.at_start = True
        for message in new:
            self._seen_messages.add(message.id)
            self._seen_comments.update(c.id for c in message.comments)
            self.users.add(message.author)
        lines: list[Line] = []
        for message in new:
            lines.append(self._message_line(message, chat))
            lines.extend(self._comment_line(c, chat) for c in message.comments)
        if lines or not quiet:
            title = self._title(conversation)
            head = f"── {len(new)} earlier messages of {title} ──"
            if conversation.at_start:
                head = f"── the start of {title} ──"
            self.console.show_older(chat, [Line(head, "info", chat), *lines])
        return len(new)

    def _title(self, conversation: Conversation) -> str:
        if conversation.id == GENERAL:
            return "the common chat"
        if conversation.peer is not None:
            return f"your private chat with {clean(conversation.peer)}"
        return clean(conversation.title)

    def _seen(self, chat: str, message_id: str, *, force: bool = False) -> None:
        """The user has seen ``chat`` up to ``message_id``: report it (soon, batched)."""
        if not force and not (self.console.shows_everything or chat == self.views.focused):
            return
        self._reads[chat] = message_id
        self._reads_waiting.set()

    async def _report_reads(self) -> None:
        while True:
            await self._reads_waiting.wait()
            await trio.sleep(READ_REPORT_DELAY)
            self._reads_waiting = trio.Event()
            reads, self._reads = self._reads, {}
            for chat, up_to in reads.items():
                # Best effort: the server already counts delivered messages as read.
                with contextlib.suppress(ClientError):
                    await self.api.mark_read(chat, up_to)

    def completions(self, word: str, *, command: bool, argument_of: str | None = None) -> list[str]:
        """What ``word`` may be completed to: a command name, a known user's name, or what
        the command ``argument_of`` takes (``/switch``: a conversation's title)."""
        if command:
            return [c for c in COMMAND_NAMES if c.startswith(word.lower())]
        if argument_of is not None:
            found = self.rooms.completions(word, argument_of)
            if found is not None:
                return found
        bare = word.lstrip("@")
        names = sorted(self.users - {self.me}, key=str.lower)
        return [
            word[: len(word) - len(bare)] + n for n in names if n.lower().startswith(bare.lower())
        ]

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
        if isinstance(exc, UploadedNotSentError):
            return (
                f"{describe_error(exc.cause, self._clock(), self._tz)}; the file was uploaded, "
                "but the message to carry it was NOT sent"
            )
        text = describe_error(exc, self._clock(), self._tz)
        sending = isinstance(command, Say | Private | CommentOn | Upload)
        if isinstance(exc, NotFoundError) and exc.code == "message_not_found":
            ref = getattr(command, "ref", "")
            text = f"there is no message {ref} (or it is not visible to you)"
        if isinstance(exc, NotFoundError) and exc.code == "file_not_found":
            ref = getattr(command, "ref", "")
            text = f"there is no file {ref} (or it is not one you may see)"
        if isinstance(exc, CommandError):
            return text
        if sending:
            if isinstance(exc, ConnectionLostError):
                text += "; it is unknown whether it was sent (check with /history)"
            elif isinstance(exc, ServerUnreachableError):
                text += "; your message was NOT sent (try again when the server is back)"
            else:
                text += "; your message was not sent"
        return text

    def sendable(self) -> Conversation:
        """The conversation in view, if it can be written to (not a room the user left)."""
        conversation = self.views.current
        if conversation.gone:
            raise CommandError(
                f"you are no longer in {clean(conversation.title)}; nothing was sent "
                "(/switch to another conversation)"
            )
        return conversation

    def destination(self, conversation: Conversation) -> tuple[str | None, str | None]:
        """``(to, chat)`` for a send to ``conversation``: a user, or a chat id (a room)."""
        if conversation.peer is not None:
            return conversation.peer, None
        if conversation.id == GENERAL:
            return None, None
        return None, conversation.id

    async def _send(self, text: str) -> None:
        to, chat = self.destination(self.sendable())
        message = await self.api.send(text, to, chat=chat)
        self.show_message(message)

    async def execute(self, command: Command) -> bool:
        """Run one command; ``False`` means the session should end."""
        if isinstance(command, Say):
            await self._send(command.text)
        elif isinstance(command, ROOM_COMMANDS):
            await self.rooms.execute(command)
        elif isinstance(command, SCHEDULE_COMMANDS):
            await self.scheduling.execute(command)
        elif isinstance(command, FILE_COMMANDS):
            await self.files.execute(command)
        elif isinstance(command, Private):
            message = await self.api.send(command.text, to=command.to)
            self.show_message(message)
            chat = self.views.chat_of(message)
            if chat != self.views.focused and not self.console.shows_everything:
                position = self.views.index(chat) + 1
                self.notice(f"sent privately to {message.to} (it is in view {position})")
        elif isinstance(command, Query):
            self._query(command.user)
        elif isinstance(command, CommentOn):
            message_id = self.refs.resolve(command.ref)
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
            await self.page_back(self.views.focused, command.limit)
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
                self.info(line)
        elif isinstance(command, Logout):
            await self.api.logout()
            if self._on_logout is not None:
                self._on_logout()
            self.notice("logged out; the saved session was removed")
            return False
        elif isinstance(command, Invalid):
            self.error(command.reason)
        return True

    def _query(self, user: str | None) -> None:
        if user is None:
            self.focus(GENERAL)
            self.notice("talking in the common chat")
            return
        if self.is_mine(user):
            self.error("you cannot talk privately with yourself")
            return
        conversation = self.views.open_private(user)
        self.focus(conversation.id)
        self.notice(
            f"talking privately with {clean(conversation.title)}; /query alone goes back to the "
            "common chat"
        )

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
        matches = by_id(found, ref)
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
