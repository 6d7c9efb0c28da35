"""What the user typed → a command object. Pure: no I/O, no server.

A line that does not start with ``/`` is a message to the common chat; ``//text`` sends a line
that starts with a slash. Parse errors are returned as :class:`Invalid` (with a sentence), not
raised, because an unknown command is an ordinary outcome of typing.
"""

from __future__ import annotations

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
  TEXT                  send TEXT to the common chat (start it with // to send a leading /)
  /msg USER TEXT        send a private message to USER
  /comment #N TEXT      comment on message #N (the number shown before each message;
                        a message id or its last characters also work)
  /report USER [REASON] report USER to the moderators (3 reports from different users ban)
  /status               who you are, messages left under the rate limit, ban state
  /history [N]          show the last N messages of the common chat (default 20, at most 100)
  /users                the users seen in this session and you (the server has no user list)
  /sessions             the devices you are signed in on (this one is marked)
  /revoke ID            sign out the device with session ID (from /sessions; a prefix will do)
  /logout               end this session on the server, forget its token, and quit
  /help                 this text
  /quit                 leave (also Ctrl-D)"""

_ALIASES = {
    "/m": "/msg",
    "/w": "/msg",
    "/dm": "/msg",
    "/c": "/comment",
    "/h": "/help",
    "/?": "/help",
    "/q": "/quit",
    "/exit": "/quit",
    "/who": "/users",
}


def parse_command(line: str) -> Command | None:
    """Parse one input line; ``None`` for a blank line (nothing to do)."""
    line = line.rstrip("\r\n")
    if not line.strip():
        return None
    if line.startswith("//"):
        return Say(line[1:])
    if not line.startswith("/"):
        return Say(line)
    name, _, rest = line.partition(" ")
    name = _ALIASES.get(name.lower(), name.lower())
    rest = rest.strip()
    if name == "/msg":
        to, _, text = rest.partition(" ")
        if not to or not text.strip():
            return Invalid("usage: /msg USER TEXT")
        return Private(to.lstrip("@"), text.strip())
    if name == "/comment":
        ref, _, text = rest.partition(" ")
        if not ref or not text.strip():
            return Invalid("usage: /comment #N TEXT")
        return CommentOn(ref, text.strip())
    if name == "/report":
        user, _, reason = rest.partition(" ")
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
