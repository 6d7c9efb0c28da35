"""Turning API objects and errors into text for a person (pure functions, time injected).

Short ids: messages are numbered per session (``#1``, ``#2``, ...) in the order this client
first shows them; :class:`ShortIds` maps the numbers back to the server's opaque ids for
``/comment``. Numbers are small and easy to type, and the session is the only scope in which a
person refers to "that message" anyway. Scripts get the real ids (:func:`format_message_plain`).

Other users' text is untrusted: control characters (terminal escape sequences!) are made
visible instead of being written to the terminal.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, tzinfo

from .errors import (
    ApiError,
    BadRequestError,
    BannedError,
    ClientError,
    ConflictError,
    NotFoundError,
    ProtocolViolationError,
    RateLimitedError,
    ServerFailureError,
    ServerUnreachableError,
    UnauthorizedError,
)
from .models import Comment, Message

__all__ = [
    "UNREAD_SEPARATOR",
    "ShortIds",
    "chat_label",
    "clean",
    "describe_error",
    "format_clock",
    "format_comment",
    "format_duration",
    "format_message",
    "format_message_plain",
]

UNREAD_SEPARATOR = "── unread ──"
HISTORY_SEPARATOR = "── history ──"
LIVE_SEPARATOR = "── live ──"

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """Make control characters visible (``\\x1b`` → ``^[``); keep newlines and tabs."""
    return _CONTROL.sub(lambda m: _caret(m.group()), text)


def _caret(ch: str) -> str:
    code = ord(ch)
    if code < 0x20:
        return "^" + chr(code + 0x40)
    return f"\\x{code:02x}"


class ShortIds:
    def __init__(self) -> None:
        self._number: dict[str, int] = {}
        self._id: dict[int, str] = {}

    def number(self, message_id: str) -> int:
        if message_id not in self._number:
            n = len(self._number) + 1
            self._number[message_id] = n
            self._id[n] = message_id
        return self._number[message_id]

    def resolve(self, ref: str) -> str:
        """``#12``/``12`` → the id shown as #12; a known id suffix → that id; else ``ref``."""
        digits = ref[1:] if ref.startswith("#") else ref
        if digits.isdigit() and int(digits) in self._id:
            return self._id[int(digits)]
        if ref in self._number:
            return ref
        matches = [i for i in self._number if i.endswith(ref)]
        if len(matches) == 1 and len(ref) >= 4:
            return matches[0]
        # Unknown: let the server decide (it answers 404 message_not_found).
        return ref[1:] if ref.startswith("#") else ref


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


def format_message(
    message: Message, ids: ShortIds, now: datetime, tz: tzinfo | None = None
) -> list[str]:
    """``[14:05] #12 alice: hello`` plus one line per comment."""
    when = format_clock(message.sent_at, now, tz)
    n = ids.number(message.id)
    who = clean(message.author)
    if message.to is not None:
        who = f"{who} → {clean(message.to)} (private)"
    lines = [f"[{when}] #{n} {who}: {_indent(message.text)}"]
    lines.extend(format_comment(c, ids, now, tz) for c in message.comments)
    return lines


def format_comment(comment: Comment, ids: ShortIds, now: datetime, tz: tzinfo | None = None) -> str:
    when = format_clock(comment.sent_at, now, tz)
    n = ids.number(comment.message_id)
    return f"[{when}]   ↳ {clean(comment.author)} on #{n}: {_indent(comment.text)}"


def format_message_plain(message: Message) -> list[str]:
    """For scripts: ``<sent_at> <id> <author>[ -> <to>]: <text>``, comments indented."""
    stamp = message.sent_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    who = clean(message.author) + (f" -> {clean(message.to)}" if message.to else "")
    lines = [f"{stamp} {message.id} {who}: {_indent(message.text)}"]
    for c in message.comments:
        lines.append(f"    comment {c.id} {clean(c.author)}: {_indent(c.text)}")
    return lines


def _at(when: datetime, now: datetime, tz: tzinfo | None) -> str:
    return f"in {format_duration((when - now).total_seconds())} (at {format_clock(when, now, tz)})"


def describe_error(exc: ClientError, now: datetime, tz: tzinfo | None = None) -> str:
    """One sentence that says what happened and, where it can, what to do about it."""
    if isinstance(exc, ServerUnreachableError):
        return str(exc)
    if isinstance(exc, ProtocolViolationError):
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
        }.get(exc.code, exc.message)
    if isinstance(exc, ServerFailureError):
        return f"the server failed ({exc.status} {exc.code}): {exc.message}; try again later"
    return f"the server refused ({exc.status} {exc.code}): {exc.message}"
