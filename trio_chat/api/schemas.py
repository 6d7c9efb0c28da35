"""Request bodies as attrs classes, and the one converter that decodes them strictly.

The converter forbids unknown keys and does not coerce: ``"text": 5`` is an error, not
``"5"``. Decoding errors come back as per-field messages (``"... @ $.text"``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

import attrs
import cattrs
import orjson
from cattrs.preconf.json import make_converter

from trio_chat import errors
from trio_chat.domain import idempotency
from trio_chat.domain.models import DEVICE_DEFAULT


@attrs.frozen
class Credentials:
    username: str
    password: str
    device: str | None = None


@attrs.frozen
class SendRequest:
    text: str = ""  # may be empty or absent when files are attached
    to: str | None = None
    chat: str | None = None
    client_id: str | None = None
    send_at: str | None = None
    files: list[str] | None = None


@attrs.frozen
class RoomRequest:
    name: str


@attrs.frozen
class MemberRequest:
    username: str


@attrs.frozen
class LinkRequest:
    expires_in: str | None = None
    max_uses: int | None = None


@attrs.frozen
class JoinRequest:
    token: str


@attrs.frozen
class DecisionRequest:
    approve: bool


@attrs.frozen
class CommentRequest:
    message_id: str
    text: str
    client_id: str | None = None


@attrs.frozen
class ReadRequest:
    chat: str
    up_to: str


@attrs.frozen
class ReportRequest:
    username: str
    reason: str | None = None


@attrs.frozen
class Empty:
    pass


REPORT_REASON_MAX = 1024
DEVICE_MAX = 64


def check_device(device: str | None) -> str:
    """The device name a session is given: 1-64 printable characters, or the default."""
    if device is None:
        return DEVICE_DEFAULT
    if not 1 <= len(device) <= DEVICE_MAX or not device.isprintable():
        raise errors.InvalidRequest.field(
            "$.device", f"device must be 1 to {DEVICE_MAX} printable characters"
        )
    return device


def parse_timestamp(raw: str, path: str) -> int:
    """An RFC 3339 timestamp with its offset (``2026-11-30T18:00:00Z``) -> milliseconds."""
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or "T" not in raw.upper():
        raise errors.InvalidRequest.field(
            path, "must be an RFC 3339 timestamp with an offset, e.g. 2026-11-30T18:00:00Z"
        )
    return round(moment.timestamp() * 1000)


def check_client_id(client_id: str | None) -> None:
    if client_id is not None and (problem := idempotency.client_id_problem(client_id)):
        raise errors.InvalidRequest.field("$.client_id", problem)


T = TypeVar("T")

converter = make_converter(forbid_extra_keys=True)


def _strict(kind: type[Any], name: str) -> Any:
    def structure(value: Any, _: Any) -> Any:
        # bool is an int subclass; neither may pass for the other.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise TypeError(f"expected {name}")
        return value

    return structure


converter.register_structure_hook(str, _strict(str, "a string"))
converter.register_structure_hook(int, _strict(int, "an integer"))
converter.register_structure_hook(bool, _strict(bool, "a boolean"))


def decode(body: bytes, cls: type[T], *, allow_empty: bool = False) -> T:
    """Parse a JSON request body into ``cls``, or raise the 400 that says what is wrong."""
    if not body.strip():
        if allow_empty:
            return converter.structure({}, cls)
        raise errors.InvalidRequest("a JSON object body is required")
    try:
        # orjson is strict where the json module is lax: invalid UTF-8, lone surrogates,
        # numbers out of range and nesting deeper than 1024 are all malformed JSON.
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise errors.MalformedJSON(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise errors.InvalidRequest.field("$", "must be a JSON object")
    try:
        return converter.structure(raw, cls)
    except cattrs.BaseValidationError as exc:
        fields = [_field(line) for line in cattrs.transform_error(exc, path="$")]
        message = "; ".join(f"{f['message']} @ {f['path']}" for f in fields)
        raise errors.InvalidRequest(message, fields=fields) from None


def _field(line: str) -> dict[str, str]:
    message, _, path = line.rpartition(" @ ")
    return {"path": path or "$", "message": message or line}
