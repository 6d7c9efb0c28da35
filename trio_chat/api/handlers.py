"""The endpoints. Each handler decodes, calls the service, and encodes; nothing more."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from urllib.parse import quote

import trio

from trio_chat import errors
from trio_chat.api import openapi, views
from trio_chat.api.schemas import (
    REPORT_REASON_MAX,
    CommentRequest,
    Credentials,
    DecisionRequest,
    Empty,
    JoinRequest,
    LinkRequest,
    MemberRequest,
    ReadRequest,
    ReportRequest,
    RoomRequest,
    SendRequest,
    check_client_id,
    check_device,
    decode,
    parse_timestamp,
)
from trio_chat.clock import format_ms, format_optional_ms
from trio_chat.config import duration_seconds
from trio_chat.domain import accounts, chats, rooms
from trio_chat.domain.files import served_type
from trio_chat.domain.models import Event, Message, User, session_id
from trio_chat.domain.ratelimit import RateStatus
from trio_chat.http.messages import ChunkSender, Request, Response, dump_json
from trio_chat.http.routing import Route, Router, is_pattern, path_params
from trio_chat.service.chat import ChatService
from trio_chat.service.live import SentNow
from trio_chat.web import web_client

MESSAGES_DEFAULT_LIMIT = 50
MESSAGES_MAX_LIMIT = 100

AuthedHandler = Callable[..., Awaitable[Response]]  # (request, user, token hash, **params)


class Api:
    def __init__(self, service: ChatService) -> None:
        self.service = service
        self.config = service.config
        self._openapi: bytes | None = None

    async def warm_up(self) -> None:
        """The first ``/connect``'s and ``/send``'s code paths, run once before listening:
        the service's reads, the views and the request decoders (cattrs generates each
        converter function on first use)."""
        page = await self.service.warm_up()
        dump_json([views.message(m, None) for m in page])
        decode(b"", Empty, allow_empty=True)
        decode(b'{"text": "warm-up"}', SendRequest)

    def authed(self, handler: AuthedHandler, path: str) -> Callable[[Request], Awaitable[Response]]:
        """The handler behind authentication; a pattern's named segments become keywords."""
        named = is_pattern(path)

        async def wrapper(request: Request) -> Response:
            try:
                user, token_hash = self.service.accounts.authenticate(request.bearer_token())
            except errors.Unauthorized:
                # Perhaps a session another process opened a moment ago: look once more.
                user, token_hash = await self.service.accounts.authenticate_fresh(
                    request.bearer_token()
                )
            request.user = user.name
            if named:
                return await handler(request, user, token_hash, **path_params(path, request.path))
            return await handler(request, user, token_hash)

        return wrapper

    # -- accounts -------------------------------------------------------------------------

    async def register(self, request: Request) -> Response:
        body = decode(request.body, Credentials)
        device = check_device(body.device)
        user, token = await self.service.accounts.register(body.username, body.password, device)
        request.user = user.name
        return Response.json(201, _signed_in(user, token))

    async def login(self, request: Request) -> Response:
        body = decode(request.body, Credentials)
        device = check_device(body.device)
        user, token = await self.service.accounts.login(
            body.username, body.password, request.client_address, device
        )
        request.user = user.name
        return Response.json(200, _signed_in(user, token))

    async def sessions(self, request: Request, user: User, token_hash: str) -> Response:
        _no_query(request)
        found = self.service.accounts.sessions(user)
        return Response.json(
            200,
            {
                "sessions": [
                    views.session(session_id(h), s, current=h == token_hash) for h, s in found
                ]
            },
        )

    async def revoke(
        self, request: Request, user: User, token_hash: str, *, session: str
    ) -> Response:
        await self.service.accounts.revoke(user, session)
        return Response.empty(204)

    async def logout(self, request: Request, user: User, token_hash: str) -> Response:
        decode(request.body, Empty, allow_empty=True)
        await self.service.accounts.logout(token_hash)
        return Response.empty(204)

    # -- chat -----------------------------------------------------------------------------

    async def connect(self, request: Request, user: User, token_hash: str) -> Response:
        decode(request.body, Empty, allow_empty=True)
        result = await self.service.messaging.connect(user, token_hash)
        return Response.json(
            200,
            {
                "chat": chats.GENERAL,
                "history": [self._message(user, m) for m in result.history],
                "unread": [self._message(user, m) for m in result.unread],
                "cursor": str(result.cursor),
            },
        )

    async def status(self, request: Request, user: User, token_hash: str) -> Response:
        _no_query(request)
        status = self.service.messaging.status(user)
        rate = status.rate
        return Response.json(
            200,
            {
                "username": user.name,
                "chats": status.chats,
                "rate_limit": {
                    "limit": rate.limit if rate else None,
                    "remaining": rate.remaining if rate else None,
                    "reset_at": format_optional_ms(rate.reset_at) if rate else None,
                },
                "banned_until": format_optional_ms(status.banned_until),
                "unread": self.service.messaging.unread(user),
            },
        )

    async def send(self, request: Request, user: User, token_hash: str) -> Response:
        try:
            body = decode(request.body, SendRequest)
            check_client_id(body.client_id)
            files = () if body.files is None else await self.service.files.refs(user, body.files)
            if body.send_at is not None:
                send_at = parse_timestamp(body.send_at, "$.send_at")
                item = await self.service.scheduling.create(
                    user, body.text, body.to, body.chat, send_at, body.client_id, files
                )
                return Response.json(202, {"scheduled": views.scheduled(item)})
            result = await self.service.messaging.send(
                user, body.text, body.to, body.client_id, body.chat, files
            )
        except errors.ChatError as exc:
            response = Response.error(exc)
            response.headers += self._rate_headers(self.service.messaging.rate_status(user))
            return response
        return Response.json(
            200 if result.repeated else 201,
            {"message": self._message(user, result.message)},
            self._rate_headers(result.rate),
        )

    def _rate_headers(self, rate: RateStatus | None) -> list[tuple[str, str]]:
        if rate is None:
            return []
        now = self.service.now()
        reset = 0 if rate.reset_at is None else max(0, math.ceil((rate.reset_at - now) / 1000))
        return [
            ("X-RateLimit-Limit", str(rate.limit)),
            ("X-RateLimit-Remaining", str(rate.remaining)),
            ("X-RateLimit-Reset", str(reset)),
        ]

    async def messages(self, request: Request, user: User, token_hash: str) -> Response:
        query = _query(request, {"chat", "with", "before", "limit"})
        if "chat" in query and "with" in query:
            raise errors.InvalidRequest.field("$.with", "give either chat or with, not both")
        if "with" in query:
            chat = self.service.messaging.private_chat_with(user, query["with"])
        else:
            chat = query.get("chat", chats.GENERAL)
        limit = _int_param(query, "limit", MESSAGES_DEFAULT_LIMIT, 1, MESSAGES_MAX_LIMIT)
        found = await self.service.messaging.messages(user, chat, query.get("before"), limit)
        return Response.json(200, {"messages": [self._message(user, m) for m in found]})

    def _message(self, user: User, message: Message) -> dict[str, object]:
        return views.message(message, self.service.messaging.expires_at(user, message))

    async def comment(self, request: Request, user: User, token_hash: str) -> Response:
        body = decode(request.body, CommentRequest)
        check_client_id(body.client_id)
        comment, repeated = await self.service.messaging.comment(
            user, body.message_id, body.text, body.client_id
        )
        return Response.json(200 if repeated else 201, {"comment": views.comment(comment)})

    async def read(self, request: Request, user: User, token_hash: str) -> Response:
        body = decode(request.body, ReadRequest)
        await self.service.messaging.read(user, token_hash, body.chat, body.up_to)
        return Response.empty(204)

    async def report(self, request: Request, user: User, token_hash: str) -> Response:
        body = decode(request.body, ReportRequest)
        if body.reason is not None and len(body.reason) > REPORT_REASON_MAX:
            raise errors.InvalidRequest.field(
                "$.reason", f"reason must be at most {REPORT_REASON_MAX} characters"
            )
        result = await self.service.moderation.report(user, body.username, body.reason)
        return Response.json(
            201,
            {
                "username": result.target.name,
                "reports": result.reports,
                "threshold": self.config.ban_threshold,
                "banned_until": format_optional_ms(result.banned_until),
            },
        )

    # -- files ----------------------------------------------------------------------------

    async def upload(self, request: Request, user: User, token_hash: str) -> Response:
        query = _query(request, {"name"})
        name = query.get("name")
        if name is None:
            raise errors.InvalidRequest.field("$.name", "the file's name is required: ?name=")
        content_type = request.header(b"content-type")
        assert request.body_stream is not None  # the route streams its body
        record = await self.service.files.upload(
            user,
            name,
            None if content_type is None else content_type.decode("latin-1"),
            request.body_stream,
            self.config.max_file_size,
        )
        return Response.json(201, {"file": views.file(record)})

    async def download(
        self, request: Request, user: User, token_hash: str, *, file: str
    ) -> Response:
        _no_query(request)
        record, path = await self.service.files.find(user, file)
        etag = f'"{record.sha256}"'
        headers = [
            ("ETag", etag),
            ("Content-Disposition", "attachment; filename*=UTF-8''" + quote(record.name, safe="")),
            ("X-Content-Type-Options", "nosniff"),
            ("Accept-Ranges", "bytes"),
            ("Cache-Control", "private, no-cache"),
        ]
        wanted = request.header(b"if-none-match")
        if wanted is not None and (
            wanted.strip() == b"*" or etag.encode() in [t.strip() for t in wanted.split(b",")]
        ):
            return Response(status=304, content_type=None, headers=headers)
        first, last = 0, record.size - 1
        status = 200
        asked = request.header(b"range")
        if asked is not None:
            span = byte_range(asked.decode("latin-1"), record.size)
            if span is None:
                error = errors.RangeNotSatisfiable(f"the file has {record.size} bytes")
                response = Response.error(error)
                response.headers.append(("Content-Range", f"bytes */{record.size}"))
                return response
            if span is not WHOLE:
                first, last = span
                status = 206
                headers.append(("Content-Range", f"bytes {first}-{last}/{record.size}"))

        async def body(send_chunk: ChunkSender) -> None:
            async with await trio.open_file(path, "rb") as f:
                await f.seek(first)
                left = last - first + 1
                while left > 0:
                    chunk = await f.read(min(FILE_CHUNK, left))
                    if not chunk:
                        raise OSError(f"{path} is shorter than its record says")
                    left -= len(chunk)
                    await send_chunk(chunk)

        return Response(
            status=status,
            content_type=served_type(record.content_type),
            headers=headers,
            stream=body,
            length=last - first + 1,
        )

    async def list_scheduled(self, request: Request, user: User, token_hash: str) -> Response:
        _no_query(request)
        found = self.service.scheduling.pending(user)
        return Response.json(200, {"scheduled": [views.scheduled(s) for s in found]})

    async def cancel_scheduled(
        self, request: Request, user: User, token_hash: str, *, scheduled: str
    ) -> Response:
        await self.service.scheduling.cancel(user, scheduled)
        return Response.empty(204)

    # -- rooms ----------------------------------------------------------------------------

    async def create_room(self, request: Request, user: User, token_hash: str) -> Response:
        body = decode(request.body, RoomRequest)
        room = await self.service.rooms.create(user, body.name)
        return Response.json(201, {"room": views.room(room)})

    async def list_rooms(self, request: Request, user: User, token_hash: str) -> Response:
        _no_query(request)
        return Response.json(200, {"rooms": [views.room(r) for r in self.service.rooms.mine(user)]})

    async def show_room(
        self, request: Request, user: User, token_hash: str, *, room: str
    ) -> Response:
        _no_query(request)
        shown = self.service.rooms.show(user, room)
        out: dict[str, object] = {"room": views.room(shown.room)}
        if shown.requests is not None:
            out["requests"] = [
                {"username": name, "requested_at": format_ms(at)} for name, at in shown.requests
            ]
        return Response.json(200, out)

    async def delete_room(
        self, request: Request, user: User, token_hash: str, *, room: str
    ) -> Response:
        await self.service.rooms.delete(user, room)
        return Response.empty(204)

    async def add_member(
        self, request: Request, user: User, token_hash: str, *, room: str
    ) -> Response:
        body = decode(request.body, MemberRequest)
        updated = await self.service.rooms.add_member(user, room, body.username)
        return Response.json(201, {"room": views.room(updated)})

    async def remove_member(
        self, request: Request, user: User, token_hash: str, *, room: str, username: str
    ) -> Response:
        await self.service.rooms.remove_member(user, room, username)
        return Response.empty(204)

    async def create_link(
        self, request: Request, user: User, token_hash: str, *, room: str
    ) -> Response:
        body = decode(request.body, LinkRequest, allow_empty=True)
        lifetime_ms = rooms.LINK_DEFAULT_LIFETIME_MS
        if body.expires_in is not None:
            try:
                lifetime_ms = round(duration_seconds(body.expires_in) * 1000)
            except ValueError as exc:
                raise errors.InvalidRequest.field("$.expires_in", str(exc)) from None
        new = await self.service.rooms.create_link(user, room, lifetime_ms, body.max_uses)
        url = self.service.rooms.link_url(new.token)
        return Response.json(201, {"link": views.link(new.link, url, new.token)})

    async def list_links(
        self, request: Request, user: User, token_hash: str, *, room: str
    ) -> Response:
        _no_query(request)
        found = self.service.rooms.links(user, room)
        return Response.json(200, {"links": [views.link(lk) for lk in found]})

    async def revoke_link(
        self, request: Request, user: User, token_hash: str, *, room: str, link: str
    ) -> Response:
        await self.service.rooms.revoke_link(user, room, link)
        return Response.empty(204)

    async def join(self, request: Request, user: User, token_hash: str) -> Response:
        body = decode(request.body, JoinRequest)
        room = await self.service.rooms.join(user, body.token)
        return Response.json(
            202, {"request": {"room": room.id, "name": room.name, "status": "pending"}}
        )

    async def decide(
        self, request: Request, user: User, token_hash: str, *, room: str, username: str
    ) -> Response:
        body = decode(request.body, DecisionRequest)
        updated = await self.service.rooms.decide(user, room, username, body.approve)
        if not body.approve:
            return Response.empty(204)
        return Response.json(200, {"room": views.room(updated)})

    # -- live -----------------------------------------------------------------------------

    async def updates(self, request: Request, user: User, token_hash: str) -> Response:
        query = _query(request, {"since", "timeout"})
        since = self.service.delivery.parse_cursor(query.get("since"))
        timeout = _number_param(
            query,
            "timeout",
            self.config.longpoll_default_timeout,
            0,
            self.config.longpoll_max_timeout,
        )
        events, cursor = await self.service.delivery.updates(user, token_hash, since, timeout)
        return Response.json(
            200, {"events": [views.event(e) for e in events], "cursor": str(cursor)}
        )

    async def events(self, request: Request, user: User, token_hash: str) -> Response:
        query = _query(request, {"since"})
        # The header wins: a reconnecting browser sends it along with its original URL.
        header = request.header(b"last-event-id")
        raw = header.decode("latin-1").strip() if header is not None else None
        since = self.service.delivery.parse_cursor(raw or query.get("since"))

        return Response(
            status=200,
            content_type="text/event-stream; charset=utf-8",
            headers=[("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no")],
            stream=_EventStream(self.service, user, token_hash, since),
        )

    # -- operations -----------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return Response.json(200, {"status": "ok"})

    async def openapi_json(self, request: Request) -> Response:
        if self._openapi is None:
            self._openapi = dump_json(openapi.document(self.config))
        return Response(status=200, body=self._openapi)


def build_router(service: ChatService) -> Router:
    api = Api(service)
    router = Router(warm_up=api.warm_up)
    plain = [
        ("POST", "/register", api.register),
        ("POST", "/login", api.login),
        ("GET", "/healthz", api.healthz),
        ("GET", "/openapi.json", api.openapi_json),
    ]
    authed: list[tuple[str, str, AuthedHandler, bool]] = [
        ("POST", "/logout", api.logout, False),
        ("GET", "/sessions", api.sessions, False),
        ("DELETE", "/sessions/{session}", api.revoke, False),
        ("POST", "/read", api.read, False),
        ("POST", "/connect", api.connect, False),
        ("GET", "/status", api.status, False),
        ("POST", "/send", api.send, False),
        ("GET", "/messages", api.messages, False),
        ("POST", "/comment", api.comment, False),
        ("POST", "/report", api.report, False),
        ("GET", "/files/{file}", api.download, True),
        ("GET", "/scheduled", api.list_scheduled, False),
        ("DELETE", "/scheduled/{scheduled}", api.cancel_scheduled, False),
        ("POST", "/rooms", api.create_room, False),
        ("GET", "/rooms", api.list_rooms, False),
        ("GET", "/rooms/{room}", api.show_room, False),
        ("DELETE", "/rooms/{room}", api.delete_room, False),
        ("POST", "/rooms/{room}/members", api.add_member, False),
        ("DELETE", "/rooms/{room}/members/{username}", api.remove_member, False),
        ("POST", "/rooms/{room}/links", api.create_link, False),
        ("GET", "/rooms/{room}/links", api.list_links, False),
        ("DELETE", "/rooms/{room}/links/{link}", api.revoke_link, False),
        ("POST", "/rooms/{room}/requests/{username}", api.decide, False),
        ("POST", "/join", api.join, False),
        ("GET", "/updates", api.updates, True),
        ("GET", "/events", api.events, True),
    ]
    for method, path, handler in plain:
        router.add(Route(method, path, handler))
    for method, path, authed_handler, long_lived in authed:
        router.add(Route(method, path, api.authed(authed_handler, path), long_lived=long_lived))
    router.add(
        Route(
            "POST",
            "/files",
            api.authed(api.upload, "/files"),
            body_limit=service.config.max_file_size,
        )
    )
    for route in web_client().routes():  # the browser client: /, /join/<token>, /static/...
        router.add(route)
    return router


class _EventStream:
    """An event stream's body: the service's events as server-sent events.

    An object, not a pair of closures: thousands of idle streams each hold one, and its
    slots cost less than two functions with their cells."""

    __slots__ = ("_send_chunk", "_send_chunk_now", "_service", "_session", "_since", "_user")

    def __init__(self, service: ChatService, user: User, session: str, since: int | None):
        self._service = service
        self._user = user
        self._session = session
        self._since = since

    async def __call__(self, send_chunk: ChunkSender) -> None:
        self._send_chunk = send_chunk
        # The connection's sender can also write without waiting (see HTTPConnection).
        self._send_chunk_now: Callable[[bytes], int | None] | None = getattr(
            send_chunk, "send_now", None
        )
        await self._service.delivery.stream(
            self._user,
            self._session,
            self._since,
            self._send,
            None if self._send_chunk_now is None else self._send_now,
        )

    async def _send(self, events: list[Event] | None) -> None:
        await self._send_chunk(_sse(events))

    def _send_now(self, events: list[Event] | None) -> SentNow:
        assert self._send_chunk_now is not None
        owed = self._send_chunk_now(_sse(events))
        if owed is None:
            return SentNow.NOT_SENT
        return SentNow.OWED if owed else SentNow.SENT


def _sse(events: list[Event] | None) -> bytes:
    """Server-sent events, or a keep-alive comment for None."""
    if events is None:
        return b": keep-alive\n\n"
    if len(events) == 1:  # live fan-out: one event, the same frame object for every stream
        return views.sse_frame(events[0])
    return b"".join(views.sse_frame(e) for e in events)


def _signed_in(user: User, token: str) -> dict[str, str]:
    return {
        "username": user.name,
        "token": token,
        "session": session_id(accounts.token_hash(token)),
    }


FILE_CHUNK = 64 * 1024  # bytes read from disk and sent at a time


WHOLE = (-1, -1)


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The one range of ``Range: bytes=...`` as (first, last), clamped to the file; None if
    it cannot be satisfied; ``WHOLE`` for what is served as the whole file (several ranges,
    another unit, a malformed header: RFC 9110 lets a server ignore those)."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return WHOLE
    start, dash, end = spec.strip().partition("-")
    if not dash or not (start.isdigit() or end.isdigit()) or (start and not start.isdigit()):
        return WHOLE
    if not start:  # the last N bytes
        n = int(end)
        return None if n == 0 else (max(0, size - n), size - 1)
    first = int(start)
    last = min(int(end), size - 1) if end.isdigit() else size - 1
    if first >= size or last < first:
        return None
    return (first, last)


# -- query parameters ---------------------------------------------------------------------


def _query(request: Request, allowed: set[str]) -> dict[str, str]:
    query = request.query()
    unknown = sorted(set(query) - allowed)
    if unknown:
        raise errors.InvalidRequest(
            f"unknown query parameter(s): {', '.join(unknown)}",
            fields=[{"path": f"$.{name}", "message": "unknown parameter"} for name in unknown],
        )
    return query


def _no_query(request: Request) -> None:
    _query(request, set())


def _int_param(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or not low <= int(raw) <= high:
        raise errors.InvalidRequest.field(f"$.{name}", f"must be an integer from {low} to {high}")
    return int(raw)


def _number_param(
    query: dict[str, str], name: str, default: float, low: float, high: float
) -> float:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (raw.isascii() and math.isfinite(value) and low <= value <= high):
        raise errors.InvalidRequest.field(f"$.{name}", f"must be a number from {low:g} to {high:g}")
    return value
