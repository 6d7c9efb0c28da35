"""A typed client for the trio-chat HTTP API (the contract in API.md), over ``httpx.AsyncClient``.

One method per endpoint; answers come back as the attrs classes of :mod:`.models`; every failure
is a :class:`~.errors.ClientError`. httpx's own exceptions are translated at this one boundary
(the httpcore ``map_exceptions`` idea), so the rest of the client speaks a single error language.
httpx runs on Trio through anyio, so this module is usable from any Trio program or test.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TypeVar, cast
from urllib.parse import quote

import httpx
import trio

from .errors import (
    ClientError,
    ConnectionLostError,
    NotTrioChatError,
    ProtocolViolationError,
    ServerUnreachableError,
    error_for_status,
)
from .files import name_from_disposition
from .models import (
    GENERAL,
    Comment,
    ConnectResult,
    Event,
    JoinRequested,
    Link,
    Message,
    ReportResult,
    Room,
    RoomDetails,
    Scheduled,
    Session,
    SessionInfo,
    Status,
    Updates,
    UploadedFile,
    converter,
    structure_event,
)
from .sse import SseDecoder, SseEvent

__all__ = [
    "DEFAULT_SERVER",
    "ApiClient",
    "EventStream",
    "FileChangedError",
    "FileDownload",
    "new_client_id",
    "normalize_server",
]

DEFAULT_SERVER: Final = "http://127.0.0.1:8000"
# Plain requests should answer quickly; a server that does not is as good as down.
REQUEST_TIMEOUT: Final = 10.0
# The server sends a keep-alive comment at least every 15 s (API.md), so three missed ones mean
# the stream is dead even if TCP has not noticed (half-open connection after a crash).
STREAM_READ_TIMEOUT: Final = 45.0
# Error answers that come from a proxy in front of the server rather than from the server.
GATEWAY_STATUSES: Final = frozenset({502, 503, 504})
# Files travel in chunks of this size: memory stays small whatever the file's size.
FILE_CHUNK: Final = 64 * 1024

T = TypeVar("T")


def new_client_id() -> str:
    """A fresh idempotency key for one send or comment (API.md §12: a random UUID)."""
    return str(uuid.uuid4())


def normalize_server(url: str) -> str:
    """``localhost:8000/`` → ``http://localhost:8000``: one spelling per server (the store key)."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


def _causes(exc: BaseException) -> Iterator[str]:
    """Messages along the cause chain, into exception groups: under Trio the useful
    ``ConnectionRefusedError`` sits inside anyio's "all attempts to connect failed" group."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield f"{type(current).__name__} {current}"
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        for nxt in (current.__cause__, current.__context__):
            if nxt is not None:
                todo.append(nxt)


@contextlib.contextmanager
def _translate(server: str, *, streaming: bool = False) -> Iterator[None]:
    try:
        yield
    except httpx.ConnectError as exc:
        text = " ".join(_causes(exc)).lower()
        if "refused" in text:
            reason = "connection refused (is the server running?)"
        elif "name or service" in text or "nodename" in text or "getaddrinfo" in text:
            reason = "unknown host name"
        else:
            reason = str(exc) or "could not connect"
        raise ServerUnreachableError(server, reason) from exc
    except httpx.TimeoutException as exc:
        raise ServerUnreachableError(server, "the server did not answer in time") from exc
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        what = "the live connection" if streaming else "the connection"
        raise ConnectionLostError(server, f"{what} was closed before the server answered") from exc
    except httpx.TransportError as exc:
        raise ServerUnreachableError(server, str(exc) or type(exc).__name__) from exc


class ApiClient:
    """One logged-in (or not yet logged-in) user talking to one server.

    Use as ``async with ApiClient(url) as api:`` so the connection pool is closed.
    ``transport`` lets tests plug in ``httpx.MockTransport``.
    """

    def __init__(
        self,
        server: str = DEFAULT_SERVER,
        token: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = REQUEST_TIMEOUT,
        stream_read_timeout: float = STREAM_READ_TIMEOUT,
    ) -> None:
        self.server = normalize_server(server)
        self.token = token
        self._timeout = timeout
        self._stream_timeout = httpx.Timeout(timeout, read=stream_read_timeout)
        self._http = httpx.AsyncClient(
            base_url=self.server,
            transport=transport,
            timeout=timeout,
            headers={"User-Agent": "trio-chat-client/0.1", "Accept": "application/json"},
        )

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            await self._http.aclose()

    # -- accounts ---------------------------------------------------------------------------

    async def register(self, username: str, password: str, device: str | None = None) -> Session:
        return await self._sign_in("/register", username, password, device)

    async def login(self, username: str, password: str, device: str | None = None) -> Session:
        return await self._sign_in("/login", username, password, device)

    async def _sign_in(
        self, path: str, username: str, password: str, device: str | None
    ) -> Session:
        body = {"username": username, "password": password}
        if device is not None:
            body["device"] = device
        session = await self._call("POST", path, Session, json_body=body, auth=False)
        self.token = session.token
        return session

    async def logout(self) -> None:
        await self._request("POST", "/logout")
        self.token = None

    async def sessions(self) -> list[SessionInfo]:
        """This user's sessions (devices), newest first; ``current`` marks this one."""
        response = await self._request("GET", "/sessions")
        return self._field(response, "sessions", list[SessionInfo])

    async def revoke_session(self, session_id: str) -> None:
        """End one of this user's sessions: its token stops working, its streams end."""
        await self._request("DELETE", f"/sessions/{quote(session_id, safe='')}")

    # -- chat -------------------------------------------------------------------------------

    async def connect(self) -> ConnectResult:
        return await self._call("POST", "/connect", ConnectResult, json_body={})

    async def status(self) -> Status:
        return await self._call("GET", "/status", Status)

    async def send(
        self,
        text: str,
        to: str | None = None,
        *,
        chat: str | None = None,
        client_id: str | None = None,
        files: Sequence[str] = (),
    ) -> Message:
        """Send to the common chat, to user ``to``, or to ``chat`` (a room); with the
        uploaded ``files`` (ids) attached. Once, even across a lost answer: see :meth:`_write`."""
        body = _send_body(text, to, chat, client_id, files)
        response = await self._write("/send", body)
        return self._field(response, "message", Message)

    async def schedule(
        self,
        text: str,
        send_at: datetime,
        to: str | None = None,
        *,
        chat: str | None = None,
        client_id: str | None = None,
        files: Sequence[str] = (),
    ) -> Scheduled:
        """Have the server send the message at ``send_at`` (aware; sent as RFC 3339 with its
        offset). Scheduling itself is idempotent through the ``client_id``, as a send is."""
        if send_at.tzinfo is None:
            raise ValueError("send_at must carry its offset")
        body = _send_body(text, to, chat, client_id, files)
        body["send_at"] = send_at.isoformat()
        response = await self._write("/send", body)
        return self._field(response, "scheduled", Scheduled)

    async def scheduled(self) -> list[Scheduled]:
        """Our messages still waiting for their time, soonest first."""
        response = await self._request("GET", "/scheduled")
        return self._field(response, "scheduled", list[Scheduled])

    async def unschedule(self, scheduled_id: str) -> None:
        await self._request("DELETE", f"/scheduled/{quote(scheduled_id, safe='')}")

    async def messages(
        self,
        *,
        with_user: str | None = None,
        chat: str = GENERAL,
        before: str | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        """The common chat (default) or the private conversation ``with_user``, oldest first."""
        params: dict[str, str] = {"with": with_user} if with_user else {"chat": chat}
        if before is not None:
            params["before"] = before
        if limit is not None:
            params["limit"] = str(limit)
        response = await self._request("GET", "/messages", params=params)
        return self._field(response, "messages", list[Message])

    async def comment(self, message_id: str, text: str, *, client_id: str | None = None) -> Comment:
        body = {"message_id": message_id, "text": text, "client_id": client_id or new_client_id()}
        response = await self._write("/comment", body)
        return self._field(response, "comment", Comment)

    async def mark_read(self, chat: str, up_to: str) -> None:
        """Tell the server (and so our other devices) that ``chat`` is read up to ``up_to``."""
        await self._request("POST", "/read", json_body={"chat": chat, "up_to": up_to})

    async def report(self, username: str, reason: str | None = None) -> ReportResult:
        body: dict[str, Any] = {"username": username}
        if reason:
            body["reason"] = reason
        return await self._call("POST", "/report", ReportResult, json_body=body)

    # -- rooms ------------------------------------------------------------------------------

    async def rooms(self) -> list[Room]:
        response = await self._request("GET", "/rooms")
        return self._field(response, "rooms", list[Room])

    async def create_room(self, name: str) -> Room:
        response = await self._request("POST", "/rooms", json_body={"name": name})
        return self._field(response, "room", Room)

    async def room(self, room_id: str) -> RoomDetails:
        """The room; for its owner with the pending requests to join."""
        return await self._call("GET", f"/rooms/{_segment(room_id)}", RoomDetails)

    async def delete_room(self, room_id: str) -> None:
        await self._request("DELETE", f"/rooms/{_segment(room_id)}")

    async def add_member(self, room_id: str, username: str) -> Room:
        path = f"/rooms/{_segment(room_id)}/members"
        response = await self._request("POST", path, json_body={"username": username})
        return self._field(response, "room", Room)

    async def remove_member(self, room_id: str, username: str) -> None:
        """Remove ``username`` (the owner), or leave (``username`` is oneself)."""
        await self._request("DELETE", f"/rooms/{_segment(room_id)}/members/{_segment(username)}")

    async def create_link(
        self, room_id: str, expires_in: str | None = None, max_uses: int | None = None
    ) -> Link:
        body: dict[str, Any] = {}
        if expires_in is not None:
            body["expires_in"] = expires_in
        if max_uses is not None:
            body["max_uses"] = max_uses
        path = f"/rooms/{_segment(room_id)}/links"
        response = await self._request("POST", path, json_body=body)
        return self._field(response, "link", Link)

    async def links(self, room_id: str) -> list[Link]:
        """The room's live invite links (for its owner), without their tokens."""
        response = await self._request("GET", f"/rooms/{_segment(room_id)}/links")
        return self._field(response, "links", list[Link])

    async def revoke_link(self, room_id: str, link_id: str) -> None:
        """Stop an invite link: whoever holds it can no longer ask to join with it."""
        await self._request("DELETE", f"/rooms/{_segment(room_id)}/links/{_segment(link_id)}")

    async def join(self, token_or_url: str) -> JoinRequested:
        """Ask to join a room through an invite link (its token or the whole URL)."""
        response = await self._request("POST", "/join", json_body={"token": token_or_url})
        return self._field(response, "request", JoinRequested)

    async def decide(self, room_id: str, username: str, approve: bool) -> Room | None:
        """Approve (the room as it is now) or refuse (None) a request to join."""
        path = f"/rooms/{_segment(room_id)}/requests/{_segment(username)}"
        response = await self._request("POST", path, json_body={"approve": approve})
        if not approve or response.status_code == 204:
            return None
        return self._field(response, "room", Room)

    # -- files ------------------------------------------------------------------------------

    async def upload(
        self,
        path: Path,
        *,
        name: str | None = None,
        content_type: str = "application/octet-stream",
        progress: Callable[[int, int], None] | None = None,
    ) -> UploadedFile:
        """Stream the file at ``path`` as the body of ``POST /files?name=…``, a chunk at a
        time (never the whole file in memory); ``progress(sent, total)`` after each chunk.

        Not retried: a repeat would only leave an unattached upload (the server drops those
        after a day), but a large file should not silently go twice.
        """
        size = (await trio.Path(path).stat()).st_size

        async def body() -> AsyncIterator[bytes]:
            sent = 0
            async with await trio.open_file(path, "rb") as f:
                while sent < size:
                    chunk = await f.read(min(FILE_CHUNK, size - sent))
                    if not chunk:
                        raise FileChangedError(path, "it got shorter")
                    sent += len(chunk)
                    yield chunk
                    if progress is not None:
                        progress(sent, size)  # that much was handed to the connection

        headers = {
            "Content-Type": content_type,
            "Content-Length": str(size),  # so an over-large file is refused before it is sent
            **self._auth_headers(),
        }
        request = self._http.build_request(
            "POST", "/files", params={"name": name or path.name}, headers=headers, content=body()
        )
        with _translate(self.server):
            response = await self._http.send(request)
        if response.status_code >= 400:
            raise self._error(response)
        return self._field(response, "file", UploadedFile)

    @contextlib.asynccontextmanager
    async def download(self, file_id: str) -> AsyncGenerator[FileDownload, None]:
        """``GET /files/<id>``, open: the caller reads its name, size and chunks."""
        request = self._http.build_request(
            "GET",
            f"/files/{_segment(file_id)}",
            headers={"Accept": "*/*", **self._auth_headers()},
            timeout=self._stream_timeout,
        )
        with _translate(self.server):
            response = await self._http.send(request, stream=True)
        try:
            if response.status_code >= 400:
                with _translate(self.server):
                    await response.aread()
                raise self._error(response)
            yield FileDownload(response, self.server, file_id)
        finally:
            with trio.CancelScope(shield=True):
                await response.aclose()

    async def healthz(self) -> bool:
        response = await self._request("GET", "/healthz", auth=False)
        return bool(self._json(response).get("status") == "ok")

    # -- live updates -----------------------------------------------------------------------

    async def updates(self, since: str | None = None, timeout: float | None = None) -> Updates:
        """Long-poll. ``timeout=0`` answers at once: the cheap way to learn the present cursor."""
        params: dict[str, str] = {}
        if since is not None:
            params["since"] = since
        if timeout is not None:
            params["timeout"] = f"{timeout:g}"
        wait = httpx.Timeout(self._timeout + (timeout if timeout is not None else 30.0))
        response = await self._request("GET", "/updates", params=params, timeout=wait)
        return self._decode(response, Updates)

    @contextlib.asynccontextmanager
    async def events(self, since: str | None = None) -> AsyncGenerator[EventStream, None]:
        """Open the SSE stream, resuming after cursor ``since`` (``Last-Event-ID``).

        A context manager rather than a bare async generator so the HTTP response is always
        closed, even when the caller is cancelled mid-iteration.
        """
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if since is not None:
            headers["Last-Event-ID"] = since
        headers.update(self._auth_headers())
        request = self._http.build_request(
            "GET", "/events", headers=headers, timeout=self._stream_timeout
        )
        with _translate(self.server, streaming=True):
            response = await self._http.send(request, stream=True)
        stream = EventStream(response, self.server)
        try:
            if response.status_code >= 400:
                with _translate(self.server, streaming=True):
                    await response.aread()
                raise self._error(response)
            kind = response.headers.get("content-type", "")
            if not kind.startswith("text/event-stream"):
                raise ProtocolViolationError(
                    f"GET /events answered {kind!r}, not text/event-stream"
                )
            yield stream
        finally:
            await stream.aclose()

    # -- plumbing ---------------------------------------------------------------------------

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, str] | None = None,
        auth: bool = True,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        headers = self._auth_headers() if auth else {}
        with _translate(self.server):
            response = await self._http.request(
                method,
                path,
                json=json_body,
                params=params,
                headers=headers,
                timeout=timeout if timeout is not None else self._timeout,
            )
        if response.status_code >= 400:
            raise self._error(response)
        return response

    async def _write(self, path: str, body: dict[str, Any]) -> httpx.Response:
        """POST a write that carries a ``client_id``, retrying once after a network error.

        The first request may have been carried out with only its answer lost; the server
        answers a repeat of the same ``client_id`` and body with the original (200), so the
        retry cannot make a second message. A second network error is reported as usual.
        """
        try:
            return await self._request("POST", path, json_body=body)
        except ServerUnreachableError:
            return await self._request("POST", path, json_body=body)

    async def _call(
        self, method: str, path: str, cls: type[T], *, json_body: Any = None, auth: bool = True
    ) -> T:
        response = await self._request(method, path, json_body=json_body, auth=auth)
        return self._decode(response, cls)

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            value = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ProtocolViolationError(
                f"{response.request.method} {response.request.url.path} answered "
                f"{response.status_code} with a body that is not JSON"
            ) from exc
        if not isinstance(value, dict):
            raise ProtocolViolationError(f"{response.request.url.path}: expected a JSON object")
        return value

    def _decode(self, response: httpx.Response, cls: type[T]) -> T:
        value = self._json(response)
        try:
            return converter.structure(value, cls)
        except Exception as exc:  # cattrs raises several exception types; all mean "bad shape"
            raise ProtocolViolationError(
                f"{response.request.url.path}: unexpected answer shape ({exc})"
            ) from exc

    def _field(self, response: httpx.Response, name: str, cls: type[T]) -> T:
        value = self._json(response)
        if name not in value:
            raise ProtocolViolationError(f"{response.request.url.path}: answer lacks {name!r}")
        try:
            return converter.structure(value[name], cls)
        except Exception as exc:
            raise ProtocolViolationError(
                f"{response.request.url.path}: unexpected {name!r} shape ({exc})"
            ) from exc

    def _error(self, response: httpx.Response) -> ClientError:
        code = f"http_{response.status_code}"
        message = response.reason_phrase or "error"
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if not (isinstance(body, dict) and isinstance(body.get("error"), dict)):
            if response.status_code in GATEWAY_STATUSES:
                # A proxy in front of a server that is down or restarting: try again later.
                return error_for_status(response.status_code, code, message, {}, {})
            # Every error of a trio-chat server has the {"error": {...}} body (API.md §1.3).
            return NotTrioChatError(
                f"the server at {self.server} does not look like a trio-chat server: "
                f"{response.request.method} {response.request.url.path} answered "
                f"{response.status_code} {message} (check --server)"
            )
        error = dict(body["error"])
        code = str(error.pop("code", code))
        message = str(error.pop("message", message))
        return error_for_status(
            response.status_code, code, message, error, dict(response.headers.items())
        )


def _segment(value: str) -> str:
    """One path segment, whatever it holds (a room id has a colon; a name anything)."""
    return quote(value, safe=":")


def _send_body(
    text: str, to: str | None, chat: str | None, client_id: str | None, files: Sequence[str]
) -> dict[str, Any]:
    body: dict[str, Any] = {"text": text, "client_id": client_id or new_client_id()}
    if to is not None:
        body["to"] = to
    if chat is not None:
        body["chat"] = chat
    if files:
        body["files"] = list(files)
    return body


class FileChangedError(ClientError):
    """The file being uploaded changed size while it was read."""

    def __init__(self, path: Path, how: str) -> None:
        super().__init__(f"{path} changed while it was being sent ({how}); nothing was sent")


class FileDownload:
    """One open ``GET /files/<id>`` answer: what the server calls the file, and its bytes."""

    def __init__(self, response: httpx.Response, server: str, file_id: str) -> None:
        self._response = response
        self._server = server
        self.file_id = file_id
        # A label from whoever uploaded it: see files.safe_name before using it as a path.
        self.name = name_from_disposition(response.headers.get("content-disposition"))
        length = response.headers.get("content-length")
        self.size = int(length) if length is not None and length.isdigit() else None
        self.content_type = response.headers.get("content-type", "application/octet-stream")

    async def chunks(self) -> AsyncIterator[bytes]:
        with _translate(self._server, streaming=True):
            async for chunk in self._response.aiter_bytes(FILE_CHUNK):
                yield chunk


class EventStream:
    """Async iterator of :data:`~.models.Event` read from one open ``GET /events`` response."""

    def __init__(self, response: httpx.Response, server: str) -> None:
        self._response = response
        self._server = server
        self._decoder = SseDecoder()
        self._pending: deque[SseEvent] = deque()
        self._chunks: AsyncIterator[str] | None = None

    @property
    def last_event_id(self) -> str | None:
        """The resume cursor: the ``id`` of the last complete frame."""
        return self._decoder.last_event_id

    @property
    def keepalives(self) -> int:
        return self._decoder.comments

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        while not self._pending:
            if self._chunks is None:
                self._chunks = self._response.aiter_text()
            try:
                with _translate(self._server, streaming=True):
                    chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                self._pending.extend(self._decoder.close())
                if not self._pending:
                    raise
                break
            self._pending.extend(self._decoder.feed(chunk))
        frame = self._pending.popleft()
        try:
            event = structure_event(json.loads(frame.data))
        except Exception as exc:
            raise ProtocolViolationError(f"GET /events sent an unreadable event ({exc})") from exc
        return event

    async def aclose(self) -> None:
        # Shielded: closing must complete even when we are here because of a cancellation.
        with trio.CancelScope(shield=True), trio.move_on_after(2):
            if self._chunks is not None:
                await cast(AsyncGenerator[str, None], self._chunks).aclose()
            await self._response.aclose()
