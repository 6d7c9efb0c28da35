"""The request and response objects handlers see."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs
import orjson

from trio_chat import errors

# A streaming body: the handler is given a function that sends one chunk. The connection's
# sender also has ``send_now(chunk) -> int | None`` (see ``HTTPConnection.send_now``), for a
# stream that is handed events while its task waits (live fan-out).
ChunkSender = Callable[[bytes], Awaitable[None]]
StreamBody = Callable[[ChunkSender], Awaitable[None]]

JSON_TYPE = "application/json"


@attrs.define
class Request:
    method: str
    target: str
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    # Set by the authentication step, for the access log.
    user: str | None = None
    # The peer's IP address as text ("127.0.0.1", "::1"); None when the connection is not a
    # TCP socket. Read once per connection, not per request.
    client_address: str | None = None
    # For a route that streams its body (uploads): the body, chunk by chunk, as it arrives.
    body_stream: AsyncIterator[bytes] | None = None
    path: str = attrs.field(init=False)
    query_string: str = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        if self.target.startswith("/"):  # origin-form, nearly always: no need to parse a URL
            self.path, _, self.query_string = self.target.partition("?")
        else:  # absolute-form (http://host/path?query)
            parts = urlsplit(self.target)
            self.path, self.query_string = parts.path, parts.query

    def query(self) -> dict[str, str]:
        """Query parameters; a parameter given twice is an error."""
        out: dict[str, str] = {}
        try:
            pairs = parse_qsl(
                self.query_string,
                keep_blank_values=True,
                strict_parsing=False,
                errors="strict",
            )
        except UnicodeDecodeError:
            raise errors.InvalidRequest("the query string is not valid UTF-8") from None
        for name, value in pairs:
            if name in out:
                raise errors.InvalidRequest.field(f"$.{name}", "given more than once")
            out[name] = value
        return out

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def bearer_token(self) -> str | None:
        value = self.header(b"authorization")
        if value is None:
            return None
        scheme, _, token = value.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()


@attrs.define
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = JSON_TYPE
    headers: list[tuple[str, str]] = attrs.field(factory=list)
    stream: StreamBody | None = None  # when set, the body is streamed (chunked)
    length: int | None = None  # a streamed body's length, when known (sent as Content-Length)

    @classmethod
    def json(
        cls, status: int, payload: Any, headers: list[tuple[str, str]] | None = None
    ) -> Response:
        return cls(status=status, body=dump_json(payload), headers=headers or [])

    @classmethod
    def error(cls, error: errors.ChatError) -> Response:
        return cls(status=error.status, body=dump_json(error.body()), headers=list(error.headers))

    @classmethod
    def empty(cls, status: int = 204) -> Response:
        return cls(status=status, content_type=None)


def dump_json(payload: Any) -> bytes:
    """Compact UTF-8 JSON (orjson: about twenty times faster than the json module here)."""
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError:
        # A lone surrogate has no UTF-8 form; escaped it is still valid JSON. Requests cannot
        # carry one in, but one stored string must never make every answer holding it a 500.
        return json.dumps(payload, separators=(",", ":")).encode("ascii")


class HTTPDate:
    """The ``Date`` header's value (IMF-fixdate, RFC 9110 §5.6.7), formatted once a second.

    Every response carries one, so formatting it per response would be waste on a hot path.
    """

    __slots__ = ("_clock", "_second", "_value")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._second = -1
        self._value = b""

    def __call__(self) -> bytes:
        second = int(self._clock())
        if second != self._second:
            self._value = email.utils.formatdate(second, usegmt=True).encode("ascii")
            self._second = second
        return self._value


http_date = HTTPDate()
