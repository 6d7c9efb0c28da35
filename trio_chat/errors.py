"""The one error language of trio-chat.

Every failure the server reports to a client is a :class:`ChatError`. Like h11's
``ProtocolError(msg, error_status_hint=...)``, each error carries the HTTP status and the
machine-readable code it should be answered with, so the domain can raise them without
knowing anything about HTTP, and the HTTP layer can render them without a lookup table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

JSONValue = Any


class SlowConsumer(Exception):
    """A live stream fell too far behind and was cut off; its client resumes from its cursor.

    Not a ``ChatError``: there is no answer to give, the connection is simply closed.
    """


class ChatError(Exception):
    """Base class: an error answered to the client as ``{"error": {...}}``."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    default_message: ClassVar[str] = "internal server error"

    def __init__(
        self,
        message: str | None = None,
        *,
        headers: Sequence[tuple[str, str]] = (),
        **extra: JSONValue,
    ) -> None:
        self.message = message or self.default_message
        self.headers = list(headers)
        self.extra: dict[str, JSONValue] = extra
        super().__init__(self.message)

    def body(self) -> dict[str, JSONValue]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


class InvalidRequest(ChatError):
    status = 400
    code = "invalid_request"
    default_message = "the request is not valid"

    def __init__(self, message: str | None = None, *, fields: Sequence[Mapping[str, str]] = ()):
        if fields:
            super().__init__(message, fields=[dict(f) for f in fields])
        else:
            super().__init__(message)

    @classmethod
    def field(cls, path: str, message: str) -> InvalidRequest:
        return cls(f"{message} @ {path}", fields=[{"path": path, "message": message}])


class MalformedJSON(ChatError):
    status = 400
    code = "malformed_json"
    default_message = "the request body is not valid JSON"


class InvalidCursor(ChatError):
    status = 400
    code = "invalid_cursor"
    default_message = "the cursor is not one this server issued"


class Unauthorized(ChatError):
    status = 401
    code = "unauthorized"
    default_message = "a valid bearer token is required"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers=[("WWW-Authenticate", 'Bearer realm="trio-chat"')])


class BadCredentials(ChatError):
    status = 401
    code = "bad_credentials"
    default_message = "wrong username or password"


class Banned(ChatError):
    status = 403
    code = "banned"
    default_message = "you are banned from sending"

    def __init__(self, banned_until: str) -> None:
        super().__init__(
            f"you are banned from sending until {banned_until}", banned_until=banned_until
        )


class NotFound(ChatError):
    status = 404
    code = "not_found"
    default_message = "no such resource"


class UserNotFound(NotFound):
    code = "user_not_found"
    default_message = "no such user"


class MessageNotFound(NotFound):
    code = "message_not_found"
    default_message = "no such message"


class ChatNotFound(NotFound):
    code = "chat_not_found"
    default_message = "no such chat"


class MethodNotAllowed(ChatError):
    status = 405
    code = "method_not_allowed"
    default_message = "method not allowed"

    def __init__(self, method: str, allow: Sequence[str]) -> None:
        allowed = ", ".join(allow)
        super().__init__(
            f"{method} is not allowed here; use {allowed}",
            headers=[("Allow", allowed)],
            allow=list(allow),
        )


class RequestTimeout(ChatError):
    status = 408
    code = "request_timeout"
    default_message = "the request was not received in time"


class UsernameTaken(ChatError):
    status = 409
    code = "username_taken"
    default_message = "that username is taken"


class LinkNotFound(NotFound):
    code = "link_not_found"
    default_message = "no such link"


class RequestNotFound(NotFound):
    code = "request_not_found"
    default_message = "no such request"


class NotOwner(ChatError):
    status = 403
    code = "not_owner"
    default_message = "only the room's owner may do that"


class AlreadyMember(ChatError):
    status = 409
    code = "already_member"
    default_message = "already a member of this room"


class OwnerCannotLeave(ChatError):
    status = 409
    code = "owner_cannot_leave"
    default_message = "the owner cannot leave the room"


class FileNotFound(NotFound):
    code = "file_not_found"
    default_message = "no such file"


class ScheduledNotFound(NotFound):
    code = "scheduled_not_found"
    default_message = "no such scheduled message"


class AlreadySent(ChatError):
    status = 409
    code = "already_sent"
    default_message = "that message has already been sent"


class TooManyScheduled(ChatError):
    status = 409
    code = "too_many_scheduled"
    default_message = "too many scheduled messages are waiting"


class SessionNotFound(NotFound):
    code = "session_not_found"
    default_message = "no such session"


class ClientIdConflict(ChatError):
    status = 409
    code = "client_id_conflict"
    default_message = "this client_id was already used for a different request"


class AlreadyReported(ChatError):
    status = 409
    code = "already_reported"
    default_message = "you have already reported this user"


class PayloadTooLarge(ChatError):
    status = 413
    code = "payload_too_large"
    default_message = "the request body is too large"


class RangeNotSatisfiable(ChatError):
    status = 416
    code = "range_not_satisfiable"
    default_message = "the requested range is not within the file"


class HeadTooLarge(ChatError):
    status = 431
    code = "request_header_fields_too_large"
    default_message = "the request head is too large"


class HTTPVersionNotSupported(ChatError):
    """A request line with a major version other than 1 (RFC 9110 §15.6.6)."""

    status = 505
    code = "http_version_not_supported"
    default_message = "this server speaks HTTP/1.1 (and 1.0) only"


class _RetryLater(ChatError):
    """A 429: carries ``retry_after`` (whole seconds, rounded up) and the header."""

    status = 429

    def __init__(self, message: str, retry_after: float, **extra: JSONValue) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(
            message,
            headers=[("Retry-After", str(seconds))],
            retry_after=seconds,
            **extra,
        )


class RateLimited(_RetryLater):
    code = "rate_limited"


class TooManyAttempts(_RetryLater):
    code = "too_many_attempts"


class StorageUnavailable(ChatError):
    status = 503
    code = "storage_unavailable"
    default_message = "storage is unavailable; nothing was written, try again later"


class Overloaded(ChatError):
    status = 503
    code = "overloaded"
    default_message = "the server is at its connection limit; try again later"


class ShuttingDown(ChatError):
    status = 503
    code = "shutting_down"
    default_message = "the server is shutting down"
