"""Turning API objects and errors into text for a person (pure functions, time injected).

Messages are referred to by a short form of the server's id (``#m12``), the same in every
client, so people can point each other at a message (:class:`MessageRefs`). Scripts get the
whole ids (:func:`format_message_plain`).

Other users' text is untrusted: control characters (terminal escape sequences!) are made
visible instead of being written to the terminal.
"""

from __future__ import annotations

import math
import re
import zlib
from datetime import datetime, timedelta, tzinfo
from typing import Final

import attrs

from .errors import (
    ApiError,
    BadRequestError,
    BannedError,
    ClientError,
    ConflictError,
    NotFoundError,
    NotTrioChatError,
    ProtocolViolationError,
    RateLimitedError,
    ServerFailureError,
    ServerUnreachableError,
    UnauthorizedError,
)
from .files import format_size
from .models import Comment, FileInfo, Message

__all__ = [
    "UNREAD_SEPARATOR",
    "Line",
    "MessageRefs",
    "chat_label",
    "clean",
    "describe_error",
    "format_clock",
    "format_comment",
    "format_comment_plain",
    "format_duration",
    "format_message",
    "format_message_plain",
    "mentions",
    "message_line",
    "name_style",
    "one_line",
    "stamp",
]

UNREAD_SEPARATOR = "── unread ──"
HISTORY_SEPARATOR = "── history ──"
LIVE_SEPARATOR = "── live ──"

SHORT_ID: Final = 8  # longer server ids are shown by their last 8 characters

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """Make control characters visible (``\\x1b`` → ``^[``); keep newlines and tabs."""
    return _CONTROL.sub(lambda m: _caret(m.group()), text)


def _caret(ch: str) -> str:
    code = ord(ch)
    if code < 0x20:
        return "^" + chr(code + 0x40)
    return f"\\x{code:02x}"


class MessageRefs:
    """How a message is referred to: ``#`` and a short form of the server's id.

    Everyone sees the same reference for the same message (``#m12`` for the server's ``m12``),
    so "see #m12" means the same thing in every client. Long ids are cut to their last
    characters; :meth:`resolve` maps a reference back to the full id among those shown.
    Files are referred to the same way, without the ``#`` (``mark``).
    """

    def __init__(self, mark: str = "#") -> None:
        self._known: set[str] = set()
        self._mark = mark

    def short(self, message_id: str) -> str:
        self._known.add(message_id)
        short = message_id if len(message_id) <= SHORT_ID else message_id[-SHORT_ID:]
        return self._mark + short

    def resolve(self, ref: str) -> str:
        """``#m12``/``m12`` → ``m12``; a unique ending of a shown id → that id; else ``ref``."""
        bare = ref[1:] if self._mark and ref.startswith(self._mark) else ref
        if bare in self._known:
            return bare
        matches = [i for i in self._known if i.endswith(bare)]
        if len(matches) == 1 and bare:
            return matches[0]
        return bare  # unknown: the server decides (404 message_not_found)


@attrs.frozen
class Line:
    """One thing to show: its plain text, and what a colour terminal needs to style it."""

    text: str
    kind: str = "info"  # message, comment, notice, error, info
    chat: str | None = None  # the conversation it belongs to; None: the one in view
    parts: tuple[tuple[str, str], ...] = ()  # (style, text), together the text
    alert: bool = False  # a private message to the user or a mention of the user's name

    def markup(self) -> list[tuple[str, str]]:
        return list(self.parts) if self.parts else [(self.kind, self.text)]


NAME_STYLES = 6


def name_style(name: str, me: str | None) -> str:
    """The style of a name: the user's own, or one of a few colours, the same in every run."""
    if me is not None and name.lower() == me.lower():
        return "me"
    return f"name{zlib.crc32(name.lower().encode()) % NAME_STYLES}"


def mentions(text: str, me: str) -> bool:
    """Whether ``text`` names ``me`` as a word (``alice``, ``@alice``, ``Alice:``)."""
    pattern = rf"(?<![\w.-])@?{re.escape(me)}(?![\w-])"
    return re.search(pattern, text, re.IGNORECASE) is not None


def chat_label(chat: str, me: str) -> str:
    """``general`` → ``common chat``; ``dm:alice:bob`` → ``bob`` for alice; others as they are."""
    if chat == "general":
        return "common chat"
    if chat.startswith("dm:"):
        names = chat.split(":")[1:]
        others = [n for n in names if n != me.lower()]
        return clean(others[0] if others else names[0])
    return clean(chat)


def format_clock(when: datetime, now: datetime, tz: tzinfo | None = None) -> str:
    """``14:05`` today, ``Nov 28 14:05`` on another day (in the display time zone)."""
    local, today = when.astimezone(tz), now.astimezone(tz)
    if local.date() == today.date():
        return local.strftime("%H:%M")
    return local.strftime("%b %d %H:%M")


def format_duration(seconds: float) -> str:
    """A coarse, readable duration: ``45 s``, ``12 min``, ``3 h 59 min``, ``2 d 4 h``."""
    s = max(0, math.ceil(seconds))
    if s < 60:
        return f"{s} s"
    minutes = math.ceil(s / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _indent(text: str) -> str:
    return clean(text).replace("\n", "\n    ")


def message_line(
    message: Message,
    refs: MessageRefs,
    now: datetime,
    tz: tzinfo | None = None,
    *,
    me: str | None = None,
    chat: str | None = None,
    in_view: bool = False,
    room: str | None = None,
    file_refs: MessageRefs | None = None,
) -> Line:
    """``[14:05] #m12 alice: hello``; ``in_view``: shown in its own conversation's view, where
    "→ bob (private)" or "→ book club (room)" (``room``: its name) goes without saying.

    A scheduled message says for when (``alice (scheduled 18:30): …``); the files a message
    carries follow its text, one a row: ``[file 25afa7a1: notes.txt, 33 B]``, the reference
    that ``/download`` takes.
    """
    when = f"[{format_clock(message.sent_at, now, tz)}]"
    ref = refs.short(message.id)
    author = clean(message.author)
    parts = [("time", when), ("ref", f" {ref} "), (name_style(message.author, me), author)]
    if message.to is not None and not in_view:
        parts.append(("private", f" → {clean(message.to)} (private)"))
    elif room is not None and not in_view:
        parts.append(("private", f" → {clean(room)} (room)"))
    if message.scheduled_at is not None:
        parts.append(("ref", f" (scheduled {format_clock(message.scheduled_at, now, tz)})"))
    text = _indent(message.text)
    mine = me is not None and message.author.lower() == me.lower()
    alert = not mine and me is not None and (message.to is not None or mentions(message.text, me))
    parts.append(("alert" if alert else "text", f": {text}"))
    for number, file in enumerate(message.files):
        gap = "" if number == 0 and not message.text else "\n    "
        parts.append(("file", gap + file_label(file, file_refs or MessageRefs(mark=""))))
    return Line("".join(p for _, p in parts), "message", chat, tuple(parts), alert=alert)


def file_label(file: FileInfo, refs: MessageRefs) -> str:
    """``[file 25afa7a1: notes.txt, 33 B]``: what ``/download`` takes, the name, the size."""
    return f"[file {refs.short(file.id)}: {clean(file.name)}, {format_size(file.size)}]"


def comment_line(
    comment: Comment,
    refs: MessageRefs,
    now: datetime,
    tz: tzinfo | None = None,
    *,
    me: str | None = None,
    chat: str | None = None,
) -> Line:
    when = f"[{format_clock(comment.sent_at, now, tz)}]"
    parts = [
        ("time", when),
        ("ref", "   ↳ "),
        (name_style(comment.author, me), clean(comment.author)),
        ("ref", f" on {refs.short(comment.message_id)}"),
    ]
    mine = me is not None and comment.author.lower() == me.lower()
    alert = not mine and me is not None and mentions(comment.text, me)
    parts.append(("alert" if alert else "text", f": {_indent(comment.text)}"))
    return Line("".join(p for _, p in parts), "comment", chat, tuple(parts), alert=alert)


def format_message(
    message: Message, refs: MessageRefs, now: datetime, tz: tzinfo | None = None
) -> list[str]:
    """``[14:05] #m12 alice: hello`` plus one line per comment (as the line console shows)."""
    lines = [message_line(message, refs, now, tz).text]
    lines.extend(format_comment(c, refs, now, tz) for c in message.comments)
    return lines


def format_comment(
    comment: Comment, refs: MessageRefs, now: datetime, tz: tzinfo | None = None
) -> str:
    return comment_line(comment, refs, now, tz).text


def one_line(text: str) -> str:
    """Text on one line for scripts: backslash, newline and tab escaped as in Python."""
    return clean(text).replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def stamp(when: datetime) -> str:
    """A timestamp as the API writes it: ``2026-11-27T03:13:45.174Z``."""
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_message_plain(message: Message) -> list[str]:
    """For scripts, one line each: ``<sent_at> <id> <author>[ -> <to>]: <text>``, each file
    it carries after it as `` [file <id> <size in bytes> <name>]``, then its comments as
    ``<sent_at> <id> <author> on <message id>: <text>``."""
    who = clean(message.author) + (f" -> {clean(message.to)}" if message.to else "")
    files = "".join(f" [file {f.id} {f.size} {one_line(f.name)}]" for f in message.files)
    lines = [f"{stamp(message.sent_at)} {message.id} {who}: {one_line(message.text)}{files}"]
    lines.extend(format_comment_plain(c) for c in message.comments)
    return lines


def format_comment_plain(comment: Comment) -> str:
    return (
        f"{stamp(comment.sent_at)} {comment.id} {clean(comment.author)} on "
        f"{comment.message_id}: {one_line(comment.text)}"
    )


def _at(when: datetime, now: datetime, tz: tzinfo | None) -> str:
    return f"in {format_duration((when - now).total_seconds())} (at {format_clock(when, now, tz)})"


def describe_error(exc: ClientError, now: datetime, tz: tzinfo | None = None) -> str:
    """One sentence that says what happened and, where it can, what to do about it."""
    if isinstance(exc, ServerUnreachableError):
        return str(exc)
    if isinstance(exc, ProtocolViolationError):
        if isinstance(exc, NotTrioChatError):
            return str(exc)
        return f"the server answered something this client does not understand: {exc}"
    if not isinstance(exc, ApiError):
        return str(exc)
    if isinstance(exc, RateLimitedError):
        retry = exc.retry_after
        if exc.code != "rate_limited":
            wait = f"; try again {_at(now + timedelta(seconds=retry), now, tz)}" if retry else ""
            return f"too many attempts{wait}"
        limit = exc.limit
        noun = "message" if limit == 1 else "messages"
        rule = f"{limit} {noun} to the common chat per period" if limit else "too many messages"
        when = (
            f"you can send again {_at(now + timedelta(seconds=retry), now, tz)}"
            if retry is not None
            else "try again later"
        )
        return f"rate limit reached: {rule}; {when}; private messages are not limited"
    if isinstance(exc, BannedError):
        until = exc.banned_until
        if until is None:
            return "you are banned from sending (other users reported you); you can still read"
        return (
            f"you are banned from sending until {format_clock(until, now, tz)} "
            f"({format_duration((until - now).total_seconds())} from now) because other users "
            "reported you; you can still read"
        )
    if isinstance(exc, UnauthorizedError):
        if exc.code == "bad_credentials":
            return "wrong username or password"
        if exc.code != "unauthorized":
            return exc.message
        return (
            "the server does not accept this session any more (logged out, or the token was "
            "revoked); start the client again to log in"
        )
    if isinstance(exc, BadRequestError) and exc.code == "invalid_cursor":
        return exc.message
    if isinstance(exc, BadRequestError):
        details = "; ".join(f"{p.removeprefix('$.')}: {m}" for p, m in exc.fields)
        return f"the server rejected the request: {details or exc.message}"
    if isinstance(exc, NotFoundError):
        # The server's message names the missing thing ("there is no user 'bob'").
        return exc.message or "not found"
    if isinstance(exc, ConflictError):
        return {
            "already_reported": "you have already reported this user",
            "username_taken": "that username is already taken",
            "client_id_conflict": "the server refused a repeated request (its client id was "
            "already used for something else)",
            "owner_cannot_leave": "you own this room, and its owner cannot leave it; "
            "/room delete NAME deletes it for everyone",
            "too_many_scheduled": "you have 100 messages waiting already, the most the server "
            "keeps; /unschedule one first",
            "already_sent": "that message has been sent already",
        }.get(exc.code, exc.message)
    if exc.code == "not_owner":
        return "only the room's owner can do that"
    if exc.code == "payload_too_large":
        return f"the server refuses a file this large ({exc.message})"
    if isinstance(exc, ServerFailureError):
        return f"the server failed ({exc.status} {exc.code}): {exc.message}; try again later"
    return f"the server refused ({exc.status} {exc.code}): {exc.message}"
