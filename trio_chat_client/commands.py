"""What the user typed → a command object. Pure: no I/O, no server.

A line that does not start with ``/`` is a message to the conversation in view; ``//text``
sends a text that starts with a slash. The input may hold several lines (a paste): the command
is read from the first word, and the text keeps its line breaks, so a pasted ``/msg alice …``
stays one private message. Parse errors are returned as :class:`Invalid` (with a sentence),
not raised, because an unknown command is an ordinary outcome of typing.
"""

from __future__ import annotations

import re

import attrs

__all__ = [
    "HELP",
    "Command",
    "CommentOn",
    "Help",
    "History",
    "Invalid",
    "ListUsers",
    "Logout",
    "Private",
    "Query",
    "Quit",
    "Report",
    "Revoke",
    "Say",
    "Sessions",
    "ShowStatus",
    "parse_command",
]

DEFAULT_HISTORY = 20
MAX_HISTORY = 100  # the server's limit for GET /messages


@attrs.frozen
class Say:
    text: str


@attrs.frozen
class Private:
    to: str
    text: str


@attrs.frozen
class Query:
    user: str | None  # None: back to the common chat


@attrs.frozen
class CommentOn:
    ref: str  # "#12", "12", or a message id (or its last characters)
    text: str


@attrs.frozen
class Report:
    username: str
    reason: str | None = None


@attrs.frozen
class ShowStatus:
    pass


@attrs.frozen
class History:
    limit: int = DEFAULT_HISTORY


@attrs.frozen
class ListUsers:
    pass


@attrs.frozen
class Sessions:
    pass


@attrs.frozen
class Revoke:
    ref: str  # a session id from /sessions, or its first characters


@attrs.frozen
class Help:
    pass


@attrs.frozen
class Logout:
    pass


@attrs.frozen
class Quit:
    pass


@attrs.frozen
class Invalid:
    reason: str


Command = (
    Say
    | Private
    | Query
    | CommentOn
    | Report
    | ShowStatus
    | History
    | ListUsers
    | Sessions
    | Revoke
    | Help
    | Logout
    | Quit
    | Invalid
)

HELP = """\
commands:
  TEXT                  send TEXT to the conversation in view (// sends a leading /)
  /msg USER TEXT        send a private message to USER
  /query [USER]         talk with USER privately from now on; alone: the common chat
  /comment #ID TEXT     comment on message #ID (the reference shown before each message)
  /report USER [REASON] report USER to the moderators (3 reports from different users ban)
  /status               who you are, messages left under the rate limit, ban state
  /history [N]          N earlier messages of this conversation (default 20, at most 100);
                        again for the ones before
  /users                the users seen in this session and you (the server has no user list)
  /sessions             the devices you are signed in on (this one is marked)
  /revoke ID            sign out the device with session ID (from /sessions; a prefix will do)
  /logout               end this session on the server, forget its token, and quit
  /help                 this text
  /quit                 leave (also Ctrl-D)"""

_ALIASES = {
    "/m": "/msg",
    "/w": "/msg",
    "/q": "/query",
    "/dm": "/msg",
    "/c": "/comment",
    "/h": "/help",
    "/?": "/help",
    "/exit": "/quit",
    "/who": "/users",
}


COMMAND_NAMES = (
    "/msg",
    "/query",
    "/comment",
    "/report",
    "/status",
    "/history",
    "/users",
    "/sessions",
    "/revoke",
    "/logout",
    "/help",
    "/quit",
)


def _word(text: str) -> tuple[str, str]:
    """The first word and the rest (any whitespace, line breaks included, separates them)."""
    found = re.match(r"\s*(\S*)\s*(.*)", text, re.DOTALL)
    assert found is not None
    return found[1], found[2]


def parse_command(line: str) -> Command | None:
    """Parse what was typed (maybe several lines); ``None`` for blank input (nothing to do)."""
    line = line.rstrip("\r\n")
    if not line.strip():
        return None
    if line.startswith("//"):
        return Say(line[1:])
    if not line.startswith("/"):
        return Say(line)
    name, rest = _word(line)
    name = _ALIASES.get(name.lower(), name.lower())
    rest = rest.rstrip()
    if name == "/msg":
        to, text = _word(rest)
        if not to or not text.strip():
            return Invalid("usage: /msg USER TEXT")
        return Private(to.lstrip("@"), text)
    if name == "/query":
        user, extra = _word(rest)
        if extra:
            return Invalid("usage: /query [USER]")
        return Query(user.lstrip("@") or None)
    if name == "/comment":
        ref, text = _word(rest)
        if not ref or not text.strip():
            return Invalid("usage: /comment #ID TEXT")
        return CommentOn(ref, text)
    if name == "/report":
        user, reason = _word(rest)
        if not user:
            return Invalid("usage: /report USER [REASON]")
        return Report(user.lstrip("@"), reason.strip() or None)
    if name == "/revoke":
        if not rest or " " in rest:
            return Invalid("usage: /revoke ID (the session id shown by /sessions)")
        return Revoke(rest)
    if name == "/history":
        if not rest:
            return History()
        if not rest.isdigit() or not 1 <= int(rest) <= MAX_HISTORY:
            return Invalid(f"usage: /history [N], with N from 1 to {MAX_HISTORY}")
        return History(int(rest))
    simple: dict[str, Command] = {
        "/status": ShowStatus(),
        "/users": ListUsers(),
        "/sessions": Sessions(),
        "/devices": Sessions(),
        "/help": Help(),
        "/logout": Logout(),
        "/quit": Quit(),
    }
    if name in simple:
        if rest:
            return Invalid(f"{name} takes no arguments")
        return simple[name]
    return Invalid(f"unknown command {name}; type /help for the list")
