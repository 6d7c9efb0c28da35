"""trio-chat's console client: a typed API client (:mod:`.api`) and a console UI (:mod:`.cli`)."""

from .api import ApiClient, EventStream
from .errors import (
    ApiError,
    BadRequestError,
    BannedError,
    ClientError,
    ConflictError,
    ConnectionLostError,
    NotFoundError,
    ProtocolViolationError,
    RateLimitedError,
    ServerFailureError,
    ServerUnreachableError,
    UnauthorizedError,
)

__all__ = [
    "ApiClient",
    "ApiError",
    "BadRequestError",
    "BannedError",
    "ClientError",
    "ConflictError",
    "ConnectionLostError",
    "EventStream",
    "NotFoundError",
    "ProtocolViolationError",
    "RateLimitedError",
    "ServerFailureError",
    "ServerUnreachableError",
    "UnauthorizedError",
]
