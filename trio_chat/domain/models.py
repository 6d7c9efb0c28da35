"""The records of the domain.

Timestamps are integer milliseconds since the Unix epoch; formatting happens at the edge.
Users are identified by their *key*, the lower-cased username (uniqueness is
case-insensitive, so ``Alice`` cannot impersonate ``alice``); ``name`` keeps the spelling the
user registered with and is what clients see.
"""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum

import attrs

from trio_chat.domain.filerefs import FileRef
from trio_chat.domain.schedule import Scheduled


@attrs.frozen
class User:
    name: str
    password_hash: str
    created_at: int

    @property
    def key(self) -> str:
        return user_key(self.name)


def user_key(name: str) -> str:
    return name.lower()


DEVICE_DEFAULT = "unnamed"


@attrs.frozen
class Session:
    """One device's login. Stored under the hash of its token; shown by ``session_id``."""

    user: str  # user key
    created_at: int
    device: str = DEVICE_DEFAULT
    last_seen_at: int | None = None  # None: not seen since it was created


def session_id(token_hash: str) -> str:
    """A session's public id: derived from its token's hash, so it needs no storage and tells
    nothing about the token (or the stored hash) to whoever sees it."""
    return "s" + hashlib.sha256(b"session-id:" + token_hash.encode("ascii")).hexdigest()[:20]


@attrs.frozen
class Comment:
    id: str
    message_id: str
    author: str  # display name
    text: str
    sent_at: int
    client_id: str | None = None  # the author's idempotency key, if it sent one


@attrs.frozen(cache_hash=True)
class Message:
    """A message in a chat.

    ``cursor`` is the message's position in the server-wide event log (its id is derived
    from it); ``seq`` its position within its chat (1, 2, 3, ... without gaps in normal
    operation), which makes history, unread and paging simple lookups by number.
    """

    id: str
    chat: str
    seq: int
    cursor: int
    author: str  # display name
    author_key: str
    to: str | None  # recipient's display name for a private message
    text: str
    sent_at: int
    comments: tuple[Comment, ...] = ()
    client_id: str | None = None  # the author's idempotency key, if it sent one
    scheduled_at: int | None = None  # when it was scheduled for, if it was
    files: tuple[FileRef, ...] = ()

    def with_comment(self, comment: Comment) -> Message:
        return attrs.evolve(self, comments=(*self.comments, comment))


class EventType(StrEnum):
    MESSAGE = "message"
    COMMENT = "comment"
    BANNED = "banned"
    UNBANNED = "unbanned"
    READ = "read"
    JOIN_REQUEST = "join_request"  # to a room's owner
    ROOM_JOINED = "room_joined"  # to a room's members, the new one included
    JOIN_REFUSED = "join_refused"  # to the refused user
    ROOM_LEFT = "room_left"  # to the room's members and to the one who left
    SCHEDULED_FAILED = "scheduled_failed"  # to the author of a scheduled message refused


@attrs.frozen
class RoomInfo:
    """A room as its members see it (no links, no requests), as it was at an event."""

    id: str
    name: str
    owner: str  # display names
    members: tuple[str, ...]
    created_at: int


@attrs.frozen(cache_hash=True)
class Event:
    """One entry of the server-wide event log.

    Its audience is either a chat (``chat``: every member sees it) or one user (``user``:
    ban and unban notices, read positions). ``cursor`` is the log position; cursors of all
    events form one increasing sequence, which is what clients resume from. ``origin`` names
    the session an event came from when that session must not be sent it (a ``read`` event
    goes to the user's *other* sessions).
    """

    cursor: int
    type: EventType
    chat: str | None = None
    user: str | None = None  # user key, for personal events
    message: Message | None = None
    comment: Comment | None = None
    until: int | None = None  # for "banned"
    up_to: int | None = None  # for "read" (with ``chat``): the cursor of the last message read
    origin: str | None = None  # session id
    room: str | None = None  # for room events: the room's id
    room_info: RoomInfo | None = None  # for "room_joined"
    username: str | None = None  # for room events: who joined, left or asks to join
    scheduled: Scheduled | None = None  # for "scheduled_failed"
    error: tuple[str, str] | None = None  # for "scheduled_failed": (code, message)


def message_id(cursor: int) -> str:
    return f"m{cursor}"


def comment_id(cursor: int) -> str:
    return f"c{cursor}"


def parse_message_id(raw: str) -> int | None:
    """The log cursor a message id stands for, or None if it is not one of ours."""
    if _MESSAGE_ID.fullmatch(raw) is None:
        return None
    return int(raw[1:])


_MESSAGE_ID = re.compile(r"m[1-9][0-9]{0,17}")


def parse_comment_id(raw: str) -> int:
    """The log cursor of one of our comment ids (``c<cursor>``)."""
    return int(raw[1:])
