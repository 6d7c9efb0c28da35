"""Domain records as the JSON objects of the API."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from trio_chat.clock import format_ms, format_optional_ms
from trio_chat.domain.filerefs import FileRef
from trio_chat.domain.files import FileRecord
from trio_chat.domain.models import (
    Comment,
    Event,
    EventType,
    Message,
    RoomInfo,
    Session,
    message_id,
)
from trio_chat.domain.rooms import Link
from trio_chat.domain.schedule import Scheduled
from trio_chat.http.messages import dump_json


def comment(c: Comment) -> dict[str, Any]:
    return {
        "id": c.id,
        "message_id": c.message_id,
        "author": c.author,
        "text": c.text,
        "sent_at": format_ms(c.sent_at),
        "client_id": c.client_id,
    }


def message(m: Message, expires_at: int | None = None) -> dict[str, Any]:
    """A message as the API shows it; ``expires_at`` is for whoever asks (in events, where
    one frame serves every reader, it is null: the message is only being delivered)."""
    return {
        "id": m.id,
        "chat": m.chat,
        "author": m.author,
        "to": m.to,
        "text": m.text,
        "sent_at": format_ms(m.sent_at),
        "comments": [comment(c) for c in m.comments],
        "client_id": m.client_id,
        "scheduled_at": format_optional_ms(m.scheduled_at),
        "expires_at": format_optional_ms(expires_at),
        "files": [file_ref(f) for f in m.files],
    }


def file_ref(f: FileRef) -> dict[str, Any]:
    return {"id": f.id, "name": f.name, "size": f.size, "content_type": f.content_type}


def file(r: FileRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "size": r.size,
        "content_type": r.content_type,
        "sha256": r.sha256,
    }


def event(e: Event) -> dict[str, Any]:
    out: dict[str, Any] = {"type": e.type.value, "cursor": str(e.cursor)}
    if e.message is not None:
        out["message"] = message(e.message)
    if e.comment is not None:
        out["comment"] = comment(e.comment)
    if e.until is not None:
        out["until"] = format_optional_ms(e.until)
    if e.type is EventType.READ and e.up_to is not None:
        out["chat"] = e.chat
        out["up_to"] = message_id(e.up_to)
    if e.scheduled is not None:
        out["scheduled"] = scheduled(e.scheduled)
    if e.error is not None:
        out["error"] = {"code": e.error[0], "message": e.error[1]}
    if e.room is not None:
        out["room"] = room(e.room_info) if e.room_info is not None else e.room
        if e.username is not None:
            out["username"] = e.username
    return out


def scheduled(s: Scheduled) -> dict[str, Any]:
    return {
        "id": s.id,
        "send_at": format_ms(s.send_at),
        "chat": s.chat,
        "to": s.to,
        "text": s.text,
        "files": [file_ref(f) for f in s.files],
    }


def room(r: RoomInfo) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "owner": r.owner,
        "members": list(r.members),
        "created_at": format_ms(r.created_at),
    }


def link(lk: Link, url: str | None = None, token: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": lk.id,
        "expires_at": format_ms(lk.expires_at),
        "uses_left": lk.uses_left,
    }
    if token is not None:
        out = {"token": token, "url": url, **out}
    return out


def session(public_id: str, s: Session, *, current: bool) -> dict[str, Any]:
    return {
        "id": public_id,
        "device": s.device,
        "created_at": format_ms(s.created_at),
        "last_seen_at": format_ms(s.last_seen_at or s.created_at),
        "current": current,
    }


@lru_cache(maxsize=128)
def sse_frame(e: Event) -> bytes:
    """One server-sent event. Cached: fan-out sends the same event object to many streams,
    all within moments, so a few recent frames do (at most ~6 MiB of maximum-size ones)."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (
        e.cursor,
        e.type.value.encode("ascii"),
        dump_json(event(e)),
    )
