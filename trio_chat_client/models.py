"""The objects of API.md as attrs classes, and the one converter that reads them.

The converter is lenient about *extra* keys on purpose: API.md lets the server add fields, and a
client that rejected them would break on every server upgrade. Missing or mistyped required
fields still fail (the API client raises :class:`~.errors.ProtocolViolationError`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeVar

import attrs
from cattrs.preconf.json import make_converter

__all__ = [
    "BannedEvent",
    "Comment",
    "CommentEvent",
    "ConnectResult",
    "Event",
    "EventError",
    "FileInfo",
    "JoinRefusedEvent",
    "JoinRequestEvent",
    "JoinRequested",
    "Link",
    "Message",
    "MessageEvent",
    "PendingRequest",
    "RateLimitStatus",
    "ReadEvent",
    "ReportResult",
    "Room",
    "RoomDetails",
    "RoomJoinedEvent",
    "RoomLeftEvent",
    "Scheduled",
    "ScheduledFailedEvent",
    "Session",
    "SessionInfo",
    "Status",
    "UnbannedEvent",
    "UnknownEvent",
    "Updates",
    "UploadedFile",
    "converter",
    "event_type",
    "structure_event",
]

GENERAL = "general"


@attrs.frozen
class Comment:
    id: str
    message_id: str
    author: str
    text: str
    sent_at: datetime
    client_id: str | None = None


@attrs.frozen
class FileInfo:
    """A file a message carries (API.md §16): its id downloads it."""

    id: str
    name: str
    size: int
    content_type: str = "application/octet-stream"


@attrs.frozen
class UploadedFile:
    """What ``POST /files`` answers: the file's record, before any message carries it."""

    id: str
    name: str
    size: int
    content_type: str
    sha256: str | None = None

    def info(self) -> FileInfo:
        return FileInfo(self.id, self.name, self.size, self.content_type)


@attrs.frozen
class Message:
    id: str
    author: str
    text: str
    sent_at: datetime
    chat: str | None = GENERAL
    to: str | None = None
    comments: tuple[Comment, ...] = ()
    client_id: str | None = None
    # When it was scheduled for (API.md §14); None for a message sent at once.
    scheduled_at: datetime | None = None
    files: tuple[FileInfo, ...] = ()

    @property
    def is_private(self) -> bool:
        return self.to is not None


@attrs.frozen
class Session:
    """What ``/register`` and ``/login`` answer: who we are, our bearer token, the session id."""

    username: str
    token: str
    session: str | None = None


@attrs.frozen
class SessionInfo:
    """One entry of ``GET /sessions``: a device the user is signed in on."""

    id: str
    device: str
    created_at: datetime
    last_seen_at: datetime
    current: bool = False


@attrs.frozen
class ConnectResult:
    chat: str
    history: tuple[Message, ...]
    unread: tuple[Message, ...]
    # Not in API.md; used when a server offers it, so the live stream can start exactly here.
    cursor: str | None = None


@attrs.frozen
class RateLimitStatus:
    # Both null when the server runs without a limit (``--rate-limit-count 0``).
    limit: int | None = None
    remaining: int | None = None
    reset_at: datetime | None = None


@attrs.frozen
class Status:
    username: str
    chats: tuple[str, ...]
    rate_limit: RateLimitStatus
    banned_until: datetime | None = None
    # chat id → messages not yet read, as the server counts them (the same on every device).
    unread: dict[str, int] = attrs.field(factory=dict)


@attrs.frozen
class ReportResult:
    username: str
    reports: int
    threshold: int
    banned_until: datetime | None = None


@attrs.frozen
class Room:
    """A room (API.md §13): a private chat with a name, an owner and members."""

    id: str
    name: str
    owner: str
    members: tuple[str, ...] = ()
    created_at: datetime | None = None


@attrs.frozen
class PendingRequest:
    """Someone who asked to join a room through a link; the owner decides."""

    username: str
    requested_at: datetime


@attrs.frozen
class RoomDetails:
    """``GET /rooms/<id>``: the room, and for its owner the pending requests (oldest first)."""

    room: Room
    requests: tuple[PendingRequest, ...] | None = None


@attrs.frozen
class Link:
    """An invite link; ``token`` and ``url`` only in the answer that created it."""

    id: str
    expires_at: datetime
    uses_left: int | None = None
    token: str | None = None
    url: str | None = None


@attrs.frozen
class JoinRequested:
    """``POST /join``: the request filed, waiting for the owner."""

    room: str
    name: str
    status: str = "pending"


@attrs.frozen
class Scheduled:
    """A message waiting for its time (API.md §14)."""

    id: str
    send_at: datetime
    chat: str
    text: str
    to: str | None = None
    files: tuple[FileInfo, ...] = ()


@attrs.frozen
class EventError:
    code: str
    message: str


@attrs.frozen
class MessageEvent:
    TYPE: ClassVar[str] = "message"
    cursor: str
    message: Message


@attrs.frozen
class CommentEvent:
    TYPE: ClassVar[str] = "comment"
    cursor: str
    comment: Comment


@attrs.frozen
class BannedEvent:
    TYPE: ClassVar[str] = "banned"
    cursor: str
    until: datetime


@attrs.frozen
class UnbannedEvent:
    TYPE: ClassVar[str] = "unbanned"
    cursor: str


@attrs.frozen
class ReadEvent:
    """Another session of ours read ``chat`` up to message ``up_to`` (inclusive)."""

    TYPE: ClassVar[str] = "read"
    cursor: str
    chat: str
    up_to: str


@attrs.frozen
class JoinRequestEvent:
    """To a room's owner: ``username`` asks to join ``room`` (an id) through a link."""

    TYPE: ClassVar[str] = "join_request"
    cursor: str
    room: str
    username: str


@attrs.frozen
class RoomJoinedEvent:
    """To a room's members, the newcomer included: ``username`` joined; the room as it is now."""

    TYPE: ClassVar[str] = "room_joined"
    cursor: str
    room: Room
    username: str


@attrs.frozen
class JoinRefusedEvent:
    """To the one who asked: the owner of ``room`` (an id) refused the request."""

    TYPE: ClassVar[str] = "join_refused"
    cursor: str
    room: str


@attrs.frozen
class RoomLeftEvent:
    """``username`` left ``room`` (an id), was removed, or the room was deleted."""

    TYPE: ClassVar[str] = "room_left"
    cursor: str
    room: str
    username: str


@attrs.frozen
class ScheduledFailedEvent:
    """To its author: a scheduled message was refused when its time came, and why."""

    TYPE: ClassVar[str] = "scheduled_failed"
    cursor: str
    scheduled: Scheduled
    error: EventError


@attrs.frozen
class UnknownEvent:
    """An event type this client does not know yet; kept so its cursor still advances."""

    cursor: str
    type: str
    data: dict[str, Any] = attrs.field(factory=dict, eq=False)


KnownEvent = (
    MessageEvent
    | CommentEvent
    | BannedEvent
    | UnbannedEvent
    | ReadEvent
    | JoinRequestEvent
    | RoomJoinedEvent
    | JoinRefusedEvent
    | RoomLeftEvent
    | ScheduledFailedEvent
)
Event = KnownEvent | UnknownEvent


@attrs.frozen
class Updates:
    events: tuple[Event, ...]
    cursor: str


converter = make_converter()


def _structure_chats(value: Any, _: Any) -> tuple[str, ...]:
    # API.md writes ``"chats": [...]`` without saying what an item is: accept ids or objects.
    out: list[str] = []
    for item in value or ():
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            out.append(str(item.get("id") or item.get("chat") or item))
        else:
            out.append(str(item))
    return tuple(out)


def _structure_status(value: Any, _: Any) -> Status:
    return Status(
        username=converter.structure(value["username"], str),
        chats=_structure_chats(value.get("chats", ()), None),
        rate_limit=converter.structure(value["rate_limit"], RateLimitStatus),
        banned_until=converter.structure(value.get("banned_until"), datetime | None),  # type: ignore[arg-type]
        unread=converter.structure(value.get("unread") or {}, dict[str, int]),
    )


_EVENT_TYPES: dict[str, type[KnownEvent]] = {
    cls.TYPE: cls
    for cls in (
        MessageEvent,
        CommentEvent,
        BannedEvent,
        UnbannedEvent,
        ReadEvent,
        JoinRequestEvent,
        RoomJoinedEvent,
        JoinRefusedEvent,
        RoomLeftEvent,
        ScheduledFailedEvent,
    )
}


def event_type(event: Event) -> str:
    """The API's ``type`` of an event."""
    return event.type if isinstance(event, UnknownEvent) else event.TYPE


def structure_event(value: Any, _: Any = None) -> Event:
    """Read one Event object, dispatching on its ``type``."""
    if not isinstance(value, dict):
        raise TypeError(f"an event must be an object, not {type(value).__name__}")
    kind = value.get("type")
    cls = _EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return UnknownEvent(cursor=str(value.get("cursor", "")), type=str(kind), data=value)
    return converter.structure({k: v for k, v in value.items() if k != "type"}, cls)


def _structure_updates(value: Any, _: Any) -> Updates:
    return Updates(
        events=tuple(structure_event(e) for e in value["events"]),
        cursor=converter.structure(value["cursor"], str),
    )


def _unstructure_time(value: datetime) -> str:
    # As the API writes timestamps (scripts' --json output passes them on).
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


converter.register_unstructure_hook(datetime, _unstructure_time)
converter.register_structure_hook(Status, _structure_status)
converter.register_structure_hook(Updates, _structure_updates)
converter.register_structure_hook(Event, structure_event)


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


Identified = TypeVar("Identified", bound=_Identified)


def by_id(items: Iterable[Identified], ref: str) -> list[Identified]:
    """The items whose id is ``ref``; if none, those whose id begins with it. One is a match;
    none or several, the caller says so (commands take an id as shown, or its beginning)."""
    found = list(items)
    return [i for i in found if i.id == ref] or [i for i in found if i.id.startswith(ref)]
