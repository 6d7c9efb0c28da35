"""The client's one error language.

Everything that can go wrong while talking to the server is a :class:`ClientError`, so the UI
and the command line handle failures in one place. Like the server's ``ChatError`` (and h11's
``ProtocolError(..., error_status_hint=...)``), an :class:`ApiError` carries the HTTP status and
the machine-readable ``code`` of the answer, plus the extras the contract defines
(``retry_after``, ``banned_until``, ``fields``), so nothing needs to re-parse a response later.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

__all__ = [
    "ApiError",
    "BadRequestError",
    "BannedError",
    "ClientError",
    "CommandError",
    "ConflictError",
    "ConnectionLostError",
    "NotFoundError",
    "NotTrioChatError",
    "ProtocolViolationError",
    "RateLimitedError",
    "ServerFailureError",
    "ServerUnreachableError",
    "UnauthorizedError",
    "error_for_status",
]


class ClientError(Exception):
    """Base class of every failure the client reports."""


class CommandError(ClientError):
    """A command that cannot be carried out as typed, found before asking the server (no room
    in view, a time that has passed, a file that is not there …); the message says why."""


class ServerUnreachableError(ClientError):
    """No answer at all: connection refused, DNS failure, timeout, connection dropped."""

    def __init__(self, server: str, reason: str) -> None:
        self.server = server
        self.reason = reason
        super().__init__(f"cannot reach the server at {server}: {reason}")


class ConnectionLostError(ServerUnreachableError):
    """An open connection (typically the live event stream) broke in the middle."""


class ProtocolViolationError(ClientError):
    """The server answered something the contract (API.md) does not allow."""


class NotTrioChatError(ProtocolViolationError):
    """The server answered an error without trio-chat's error body: it is something else."""


class ApiError(ClientError):
    """The server answered with an error status and an ``{"error": {...}}`` body."""

    status_hint: ClassVar[int] = 0

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        extras: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.extras: dict[str, Any] = dict(extras or {})
        # Lower-cased header names: the 429 sentence needs X-RateLimit-Limit.
        self.headers: dict[str, str] = {k.lower(): v for k, v in (headers or {}).items()}
        super().__init__(f"{status} {code}: {message}")

    @property
    def fields(self) -> list[tuple[str, str]]:
        """Per-field validation problems as ``(path, message)`` pairs (400 only)."""
        raw = self.extras.get("fields")
        if not isinstance(raw, list):
            return []
        out = []
        for item in raw:
            if isinstance(item, Mapping):
                out.append((str(item.get("path", "?")), str(item.get("message", ""))))
        return out


class BadRequestError(ApiError):
    status_hint = 400


class UnauthorizedError(ApiError):
    """401: ``unauthorized`` (token missing/unknown/revoked) or ``bad_credentials``."""

    status_hint = 401


class BannedError(ApiError):
    status_hint = 403

    @property
    def banned_until(self) -> datetime | None:
        return _parse_time(self.extras.get("banned_until"))


class NotFoundError(ApiError):
    status_hint = 404


class ConflictError(ApiError):
    status_hint = 409


class RateLimitedError(ApiError):
    """429: ``rate_limited`` (common-chat sends) or any other throttling code."""

    status_hint = 429

    @property
    def retry_after(self) -> float | None:
        value = self.extras.get("retry_after")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        header = self.headers.get("retry-after")
        try:
            return float(header) if header is not None else None
        except ValueError:
            return None

    @property
    def limit(self) -> int | None:
        try:
            return int(self.headers["x-ratelimit-limit"])
        except (KeyError, ValueError):
            return None


class ServerFailureError(ApiError):
    """5xx: the server failed (storage unavailable, overloaded, shutting down...)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    cls.status_hint: cls
    for cls in (
        BadRequestError,
        UnauthorizedError,
        BannedError,
        NotFoundError,
        ConflictError,
        RateLimitedError,
    )
}


def error_for_status(
    status: int,
    code: str,
    message: str,
    extras: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> ApiError:
    """Build the most specific :class:`ApiError` subclass for an HTTP status."""
    cls = _BY_STATUS.get(status)
    if cls is None or (status == 403 and code != "banned"):
        # Statuses the contract does not name stay generic: the message still reads well.
        cls = ServerFailureError if status >= 500 else ApiError
    return cls(status, code, message, extras, headers)


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
