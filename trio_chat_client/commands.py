"""What the user typed → a command object. Pure: no I/O, no server.

A line that does not start with ``/`` is a message to the conversation in view; ``//text``
sends a text that starts with a slash. The input may hold several lines (a paste): the command
is read from the first word, and the text keeps its line breaks, so a pasted ``/msg alice …``
stays one private message. Parse errors are returned as :class:`Invalid` (with a sentence),
not raised, because an unknown command is an ordinary outcome of typing.
"""

from __future__ import annotations

import re
from datetime import timedelta

import attrs

from .when import TimeError, parse_duration, split_time

__all__ = [
    "HELP",
    "Command",
    "CommentOn",
    "CreateRoom",
    "Decide",
    "DeleteRoom",
    "Download",
    "Help",
    "History",
    "Invalid",
    "Invite",
    "Join",
    "Kick",
    "Leave",
    "ListLinks",
    "ListRooms",
    "ListScheduled",
    "ListUsers",
    "Logout",
    "MakeLink",
    "Private",
    "Query",
    "Quit",
    "Report",
    "Requests",
    "Revoke",
    "RevokeLink",
    "RoomInfo",
    "Say",
    "ScheduleAt",
    "ScheduleIn",
    "Sessions",
    "ShowStatus",
    "Switch",
    "Unschedule",
    "Upload",
    "parse_command",
    "path_word",
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
class ListRooms:
    pass


@attrs.frozen
class CreateRoom:
    name: str


@attrs.frozen
class RoomInfo:
    pass  # the room in view: its owner and members


@attrs.frozen
class DeleteRoom:
    name: str  # typed again, as a confirmation: it must be the name of the room in view


@attrs.frozen
class Invite:
    user: str


@attrs.frozen
class MakeLink:
    expires_in: timedelta | None = None  # None: the server's default (7 days)


@attrs.frozen
class ListLinks:
    pass


@attrs.frozen
class RevokeLink:
    ref: str  # a link's id as /links shows it, or the start of one


@attrs.frozen
class Join:
    token: str  # a link's token, or the whole URL


@attrs.frozen
class Requests:
    pass


@attrs.frozen
class Decide:
    user: str
    approve: bool


@attrs.frozen
class Leave:
    pass


@attrs.frozen
class Kick:
    user: str


@attrs.frozen
class Switch:
    target: str  # a room's name or id, "general", or the other user of a private chat


@attrs.frozen
class ScheduleAt:
    when: str  # as typed ("18:30", "tomorrow 9:00"): made a moment with the clock of the moment
    text: str


@attrs.frozen
class ScheduleIn:
    delay: timedelta
    text: str


@attrs.frozen
class ListScheduled:
    pass


@attrs.frozen
class Unschedule:
    ref: str  # a scheduled message's id, or its first characters


@attrs.frozen
class Upload:
    path: str
    text: str = ""  # sent with the file


@attrs.frozen
class Download:
    ref: str  # a file's id, or its last characters as shown
    path: str | None = None


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
    | ListRooms
    | CreateRoom
    | RoomInfo
    | DeleteRoom
    | Invite
    | MakeLink
    | ListLinks
    | RevokeLink
    | Join
    | Requests
    | Decide
    | Leave
    | Kick
    | Switch
    | ScheduleAt
    | ScheduleIn
    | ListScheduled
    | Unschedule
    | Upload
    | Download
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
  /switch CHAT          talk in CHAT: a room (by name or id), general, or a private chat
rooms:
  /rooms                your rooms
  /room new NAME        make a room (you own it) and talk there
  /room                 the room in view: its owner and members
  /invite USER          add USER to the room in view (its owner only)
  /link [EXPIRY]        an invite link to the room in view, valid 7 days or EXPIRY (2d, 12h)
  /links                the room's invite links still valid (its owner only)
  /unlink ID            stop invite link ID (as /links shows it; a prefix will do)
  /join LINK            ask to join a room through its link (the URL or its token)
  /requests             who asks to join the room in view (its owner only)
  /approve USER         let USER in; /refuse USER turns them away
  /kick USER            remove USER from the room in view (its owner only)
  /leave                leave the room in view
  /room delete NAME     delete the room in view, NAME typed again (its owner only)
scheduled messages:
  /at TIME TEXT         send TEXT here at TIME (18:30, tomorrow 9:00, 2026-12-01T09:00)
  /in DURATION TEXT     send TEXT here in DURATION (45s, 10m, 2h, 1h30m, 2d)
  /scheduled            your messages waiting for their time, soonest first
  /unschedule ID        cancel one (ID as /scheduled shows it)
files:
  /upload PATH [TEXT]   send the file at PATH here, with TEXT ("quote" a PATH with spaces)
  /download ID [PATH]   save file ID (as shown under its message) to PATH or this directory
other:
  /users                the users seen in this session and you (the server has no user list)
  /sessions             the devices you are signed in on (this one is marked)
  /revoke ID            sign out the device with session ID (from /sessions; a prefix will do)
  /logout               end this session on the server, forget its token, and quit
  /help                 this text
  /quit                 leave (also Ctrl-D)"""

ALIASES = {
    "/m": "/msg",
    "/w": "/msg",
    "/q": "/query",
    "/dm": "/msg",
    "/sw": "/switch",
    "/j": "/join",
    "/part": "/leave",
    "/c": "/comment",
    "/h": "/help",
    "/?": "/help",
    "/exit": "/quit",
    "/who": "/users",
}


COMMAND_NAMES = (
    "/msg",
    "/query",
    "/switch",
    "/comment",
    "/report",
    "/status",
    "/history",
    "/users",
    "/sessions",
    "/revoke",
    "/rooms",
    "/room",
    "/invite",
    "/link",
    "/links",
    "/unlink",
    "/join",
    "/requests",
    "/approve",
    "/refuse",
    "/kick",
    "/leave",
    "/at",
    "/in",
    "/scheduled",
    "/unschedule",
    "/upload",
    "/download",
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
    name = ALIASES.get(name.lower(), name.lower())
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
    parsed = _parse_new(name, rest)
    if parsed is not None:
        return parsed
    if name == "/history":
        if not rest:
            return History()
        if not rest.isdigit() or not 1 <= int(rest) <= MAX_HISTORY:
            return Invalid(f"usage: /history [N], with N from 1 to {MAX_HISTORY}")
        return History(int(rest))
    simple: dict[str, Command] = {
        "/rooms": ListRooms(),
        "/requests": Requests(),
        "/leave": Leave(),
        "/scheduled": ListScheduled(),
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


def path_word(text: str) -> tuple[str, str]:
    """A path at the start of ``text`` and the rest: ``"my file.txt" hi`` and
    ``my\\ file.txt hi`` both give ``my file.txt``; a ``~`` is left for the caller."""
    text = text.lstrip()
    if text[:1] in ('"', "'"):
        end = text.find(text[0], 1)
        if end < 0:
            raise ValueError(f"the path has no closing {text[0]}")
        return text[1:end], text[end + 1 :].lstrip()
    path: list[str] = []
    position = 0
    while position < len(text) and not text[position].isspace():
        if text[position] == "\\" and position + 1 < len(text):
            position += 1
        path.append(text[position])
        position += 1
    return "".join(path), text[position:].lstrip()


def _name(word: str) -> str:
    return word.lstrip("@")


def _parse_new(name: str, rest: str) -> Command | None:
    """Rooms, scheduled messages and files; ``None``: not one of these commands."""
    if name == "/room":
        sub, arg = _word(rest)
        if not sub:
            return RoomInfo()
        if sub.lower() in ("new", "create"):
            return CreateRoom(arg.strip()) if arg.strip() else Invalid("usage: /room new NAME")
        if sub.lower() == "delete":
            if not arg.strip():
                return Invalid("usage: /room delete NAME (the room in view's name, to be sure)")
            return DeleteRoom(arg.strip())
        return Invalid("usage: /room, /room new NAME or /room delete NAME")
    one_user = {"/invite": "USER", "/kick": "USER", "/approve": "USER", "/refuse": "USER"}
    if name in one_user:
        user, extra = _word(rest)
        if not user or extra:
            return Invalid(f"usage: {name} USER")
        if name == "/invite":
            return Invite(_name(user))
        if name == "/kick":
            return Kick(_name(user))
        return Decide(_name(user), approve=name == "/approve")
    if name == "/link":
        if not rest:
            return MakeLink()
        try:
            return MakeLink(parse_duration(rest))
        except TimeError as exc:
            return Invalid(f"{exc} (usage: /link [EXPIRY])")
    if name == "/links":
        return Invalid("usage: /links (the room in view's invite links)") if rest else ListLinks()
    if name == "/unlink":
        ref, extra = _word(rest)
        if not ref or extra:
            return Invalid("usage: /unlink ID (a link's id, as /links shows it)")
        return RevokeLink(ref)
    if name == "/join":
        token, extra = _word(rest)
        if not token or extra:
            return Invalid("usage: /join LINK (the invite link's URL, or its token)")
        return Join(token)
    if name == "/switch":
        if not rest:
            return Invalid("usage: /switch CHAT (a room's name or id, general, or a user)")
        return Switch(rest.strip())
    if name == "/at":
        when, text = split_time(rest)
        if not when or not text.strip():
            return Invalid(
                "usage: /at TIME TEXT (TIME like 18:30, tomorrow 9:00, 2026-12-01T09:00)"
            )
        return ScheduleAt(when, text)
    if name == "/in":
        duration, text = _word(rest)
        if not duration or not text.strip():
            return Invalid("usage: /in DURATION TEXT (DURATION like 45s, 10m, 2h, 1h30m, 2d)")
        try:
            return ScheduleIn(parse_duration(duration), text)
        except TimeError as exc:
            return Invalid(str(exc))
    if name == "/unschedule":
        ref, extra = _word(rest)
        if not ref or extra:
            return Invalid("usage: /unschedule ID (as /scheduled shows it)")
        return Unschedule(ref)
    if name == "/upload":
        try:
            path, text = path_word(rest)
        except ValueError as exc:
            return Invalid(f"{exc} (usage: /upload PATH [TEXT])")
        if not path:
            return Invalid("usage: /upload PATH [TEXT]")
        return Upload(path, text)
    if name == "/download":
        ref, more = _word(rest)
        if not ref:
            return Invalid("usage: /download ID [PATH]")
        try:
            path, extra = path_word(more)
        except ValueError as exc:
            return Invalid(f"{exc} (usage: /download ID [PATH])")
        if extra:
            return Invalid('usage: /download ID [PATH] ("quote" a PATH with spaces)')
        return Download(ref.lstrip("#"), path or None)
    return None
