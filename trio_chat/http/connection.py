"""One HTTP/1.1 connection: a Trio task driving one ``h11.Connection``.

Theory of operation
-------------------
The loop waits for a request to start (the keep-alive wait, which shutdown may interrupt),
then receives its head, finds its route, receives the whole body -- or, for a route with a
body limit of its own (uploads), hands the handler the body as it arrives -- and answers it.
A connection runs in its own nursery, whose cancel scope is the connection's one scope, for
its whole life. Its deadline follows the phase (see ``_Phase``): keep-alive while idle, the
request deadline once a request is arriving in pieces (408 when it runs out, which is what
cuts off a slowloris), none while a handler runs -- a request once begun is answered, the
server's shutdown deadline bounds it -- and a write deadline for the answer.

A long-poll or stream is watched for its client hanging up while its handler waits: by the
server's one ``HangupWatch`` (an epoll instance of its own, ``hangups.py``), or, without one
(not Linux, not a socket), by a disconnect-watcher task that reads meanwhile. Every task a
request starts runs in that nursery and is cancelled when its request ends; the socket is read
again only once it is gone. A client that goes away cancels the scope, and the connection's
end ends everything it started.

Shutdown cancels the scope only while the connection waits idle. A request can arrive in the
same instant (its bytes are read, the task has not yet run): the cancellation is then for a
wait that is over, and the request is served in a fresh nursery -- a write it commits is
answered. Size limits are ours: the head limit (431) through h11's
``max_incomplete_event_size`` and our own count for a head that arrived whole; the body
limit against Content-Length before any of the body is read, and against the running total
for chunked bodies (413). A request framed both ways (Content-Length and Transfer-Encoding)
could be smuggling a second one: it is refused (400) and the connection closed, as is a
request line whose version is not HTTP/1.x (505). Pipelined requests wait in h11's buffer
and are answered in order. Every answer carries a Date; one to HEAD is GET's without the
body (a streamed body is not even started).

h11 frames what it reads and keeps the protocol's state; the commonest answers (a whole body
on a keep-alive HTTP/1.1 connection) and the chunks of a stream we frame ourselves, moving
h11's state as its ``send`` would (see "answers written without h11's writer" below). A
stream's chunks can also be written by the publisher while the stream's task waits
(``send_now``, for live fan-out).

We read from the socket only when h11 says ``NEED_DATA``; if a send fails we tell h11
(``send_failed``) and give up on the connection. A protocol error is answered with h11's
status hint and ``connection: close``, but only while a response can still be started.
Handler exceptions never escape: a ``ChatError`` becomes its JSON error, anything else a
logged 500.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from enum import Enum
from http import HTTPStatus
from typing import Protocol

import h11
import trio

from trio_chat import errors
from trio_chat.config import Config
from trio_chat.http.hangups import HangupWatch
from trio_chat.http.messages import JSON_TYPE, Request, Response, http_date
from trio_chat.http.routing import Route, Router
from trio_chat.logs import AccessLog

log = logging.getLogger("trio_chat.http")
access_log = AccessLog(logging.getLogger("trio_chat.access"))

READ_SIZE = 64 * 1024
CLOSE_DRAIN_TIMEOUT = 1.0


class Lifecycle(Protocol):
    """What a connection needs to know about the server around it."""

    @property
    def shutting_down(self) -> bool: ...

    def idle(self, scope: trio.CancelScope) -> None:
        """The connection waits between requests; at shutdown, cancel ``scope``."""
        ...

    def busy(self, scope: trio.CancelScope) -> None:
        """The connection is working on a request again."""
        ...

    @property
    def hangups(self) -> HangupWatch | None:
        """Where long-lived requests watch for their client hanging up; None: a task each."""
        ...


class _ClientGone(Exception):
    """The peer closed the connection or it broke; nothing more can be sent."""


class _Phase(Enum):
    """Where a connection is, and so which deadline it is under.

    Moving a deadline costs about 3 µs (POST /send costs ~155 µs of server CPU), so a request
    that arrives whole costs two moves: none for it to be read (the keep-alive deadline the
    wait was under is still good), one to lift the deadline for its handler, and one for its
    answer, whose write deadline is keepalive_timeout -- the deadline the next wait needs,
    so the wait moves nothing. A request that trickles in or was pipelined moves to the
    request deadline, and its answer has request_timeout to be written.
    """

    IDLE = "waiting for a request"  # keepalive_timeout (from the last answer's start)
    RECEIVING = "receiving a request"  # request_timeout from the start of the request
    HANDLING = "handling"  # no deadline: a handler runs as long as it needs
    ANSWERING = "answering"  # writing an answer: keepalive_timeout, or request_timeout
    SENDING = "sending"  # writing a stream: stream_send_timeout from its last write


class HTTPConnection:
    # Thousands of these live for hours (one per open event stream): no per-instance dict.
    __slots__ = (
        "_chunked",
        "_client_address",
        "_deadline",
        "_drain_on_close",
        "_gone",
        "_head_request",
        "_phase",
        "_received",
        "_started",
        "_tasks",
        "_unsent",
        "_watched_request",
        "config",
        "conn",
        "lifecycle",
        "router",
        "stream",
    )

    def __init__(
        self, stream: trio.abc.Stream, router: Router, config: Config, lifecycle: Lifecycle
    ) -> None:
        self.stream = stream
        self.router = router
        self.config = config
        self.lifecycle = lifecycle
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=config.max_head_size)
        # The connection's nursery, and its cancel scope: the one scope of the connection,
        # whose deadline follows the phase it is in -- cheaper than a scope per wait, and what
        # ran out is known from the phase. (Both are replaced only when a request arrives just
        # as its wait is cancelled: see run.) Set by run.
        self._tasks: trio.Nursery
        self._deadline: trio.CancelScope
        self._phase = _Phase.IDLE
        self._gone = False  # the client went away while a long-lived handler ran
        self._started = 0.0  # when the current request began, for the access log
        # A response to HEAD carries its headers only: h11 refuses body bytes for it.
        self._head_request = False
        # After an error answer the peer may still be sending; draining before closing keeps
        # its unread bytes from turning our close into a reset that eats the answer.
        self._drain_on_close = False
        self._received = 0  # bytes read while receiving the current request
        self._chunked = False  # a streamed body being sent in chunks we frame ourselves
        self._unsent = b""  # what send_now could not write: it goes out first next time
        self._watched_request: Request | None = None  # in the server's hang-up watch
        self._client_address = _peer_address(stream)

    def _enter(self, phase: _Phase, timeout: float | None) -> None:
        self._phase = phase
        self._deadline.deadline = math.inf if timeout is None else trio.current_time() + timeout

    # -- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        deadline = trio.current_time() + self.config.keepalive_timeout
        try:
            while True:
                arrived_as_cancelled = False
                # Each task a request starts is cancelled when the request ends, and any
                # exception cancels the rest: nothing is left running when this nursery closes.
                async with trio.open_nursery() as tasks:
                    self._tasks, self._deadline = tasks, tasks.cancel_scope
                    self._deadline.deadline = deadline
                    try:  # noqa: SIM105 (contextlib.suppress: an object more per idle stream)
                        arrived_as_cancelled = await self._serve()
                    except _ClientGone:
                        pass
                if self._deadline.cancelled_caught and not self._gone:
                    await self._deadline_passed()
                if not arrived_as_cancelled:
                    break
                # Nothing had checkpointed since the cancellation, so nothing saw it; the
                # request it raced with is in h11's buffer and is served as a pipelined one.
                deadline = math.inf
        finally:
            self.lifecycle.busy(self._deadline)
            await self._close()

    async def _serve(self) -> bool:
        """Answer requests until the connection is to close.

        True if a request arrived just as the wait for it was cancelled (by shutdown, or by
        the keep-alive deadline in the same instant): the caller serves it in a new nursery.
        """
        while True:
            if self.conn.trailing_data[0] or self.conn.trailing_data[1]:
                # Pipelined: the next request is already here, so its deadline starts now.
                self._enter(_Phase.RECEIVING, self.config.request_timeout)
            else:
                if self.lifecycle.shutting_down:
                    return False
                if self._phase is not _Phase.IDLE:  # else the last answer set it already
                    self._enter(_Phase.IDLE, self.config.keepalive_timeout)
                self.lifecycle.idle(self._deadline)
                data = await self._receive()
                self.lifecycle.busy(self._deadline)
                self.conn.receive_data(data)
                if self._deadline.cancel_called:
                    return bool(data)
            if not await self._serve_one():
                return False
            if self.conn.our_state is not h11.DONE or self.lifecycle.shutting_down:
                return False
            self.conn.start_next_cycle()

    async def _deadline_passed(self) -> None:
        """The connection's deadline ran out (or shutdown ended its wait): say so, or not."""
        if self._phase is _Phase.RECEIVING:
            with trio.move_on_after(CLOSE_DRAIN_TIMEOUT):
                await self._send_error_and_close_for(errors.RequestTimeout(), quiet=True)
        elif self._phase in (_Phase.SENDING, _Phase.ANSWERING):
            log.info("closing a connection whose peer stopped reading")

    async def _serve_one(self) -> bool:
        """Receive one request and answer it; False if the connection must close."""
        self._started = time.perf_counter()
        try:
            request = await self._read_head()
            route: Route | None = None
            refused: errors.ChatError | None = None
            if request is not None:
                try:
                    route = self.router.match(request.method, request.path)
                except errors.ChatError as exc:
                    refused = exc
                if route is not None and route.body_limit is not None:
                    # Streamed to the handler as it arrives, under the route's own limit.
                    self._check_length(request, route.body_limit)
                    request.body_stream = self._body_stream(route.body_limit)
                elif not await self._read_body(request):
                    request = None
        except h11.RemoteProtocolError as exc:
            await self._send_error_and_close(exc.error_status_hint, str(exc))
            return False
        except errors.ChatError as exc:
            await self._send_error_and_close_for(exc)
            return False
        if request is None:  # the client closed the connection
            return False
        # Read in the wait's one read: still under the keep-alive deadline, untouched.
        whole = self._phase is _Phase.IDLE
        if route is None:
            assert refused is not None
            await self._send(Response.error(refused), request, whole)
            return True
        self._enter(_Phase.HANDLING, None)
        response = await self._call(route, request)
        if self.conn.their_state is not h11.DONE:
            # The handler did not take the whole body (it refused the request first): the
            # rest cannot be told from a next request, so this answer is the last.
            response.headers.append(("connection", "close"))
            self._drain_on_close = True
            await self._send(response, request, whole=False)
            return False
        await self._send(response, request, whole)
        return True

    # -- receiving ------------------------------------------------------------------------

    async def _receive(self) -> bytes:
        try:
            return bytes(await self.stream.receive_some(READ_SIZE))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""

    async def _next_event(self) -> h11.Event | type[h11.PAUSED]:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]
            if self._phase is not _Phase.RECEIVING:
                # The request did not arrive whole: the rest has request_timeout to come.
                self._enter(_Phase.RECEIVING, self.config.request_timeout)
            data = await self._receive()
            self._received += len(data)
            self.conn.receive_data(data)

    async def _read_head(self) -> Request | None:
        # h11's max_incomplete_event_size bounds a head still arriving; one that comes whole
        # in a single read is never "incomplete", so measure what parsing it consumed.
        buffered = len(self.conn.trailing_data[0])
        self._received = 0
        event = await self._next_event()
        if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None
        if not isinstance(event, h11.Request):
            raise h11.RemoteProtocolError(f"unexpected {type(event).__name__}", 400)
        head_size = buffered + self._received - len(self.conn.trailing_data[0])
        if head_size > self.config.max_head_size:
            raise errors.HeadTooLarge(
                f"the request head is {head_size} bytes; the limit is {self.config.max_head_size}"
            )
        if not event.http_version.startswith(b"1."):
            # h11 parses any digit.digit and would speak HTTP/1.1 to it.
            raise errors.HTTPVersionNotSupported(
                f"HTTP/{event.http_version.decode('ascii')} is not supported; use HTTP/1.1"
            )
        self._head_request = event.method == b"HEAD"
        request = Request(
            method=event.method.decode("ascii", "replace"),
            target=event.target.decode("ascii", "replace"),
            headers=list(event.headers),
            client_address=self._client_address,
        )
        if (
            request.header(b"content-length") is not None
            and request.header(b"transfer-encoding") is not None
        ):
            # h11 frames such a request by Transfer-Encoding; a proxy in front of us might
            # have framed it by Content-Length, so whatever follows could be a request
            # smuggled past it. RFC 9112 §6.1: close after answering; we refuse it too.
            raise h11.RemoteProtocolError("both Content-Length and Transfer-Encoding", 400)
        return request

    def _check_length(self, request: Request, limit: int) -> None:
        """413 from a declared Content-Length, before any of the body is read (and before
        ``100 Continue``, so a client that waits for it never sends the body at all)."""
        length = request.header(b"content-length")
        if length is not None and int(length) > limit:
            raise errors.PayloadTooLarge(f"the body is {int(length)} bytes; the limit is {limit}")

    async def _continue(self) -> None:
        if self.conn.they_are_waiting_for_100_continue:
            await self._send_bytes(
                self.conn.send(h11.InformationalResponse(status_code=100, headers=[]))
            )

    async def _read_body(self, request: Request) -> bool:
        """Read a whole (JSON-sized) body into ``request.body``; False if the peer left."""
        limit = self.config.max_body_size
        self._check_length(request, limit)
        await self._continue()
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    raise errors.PayloadTooLarge(f"the body is over the limit of {limit} bytes")
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                request.body = b"".join(chunks)
                return True
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return False
            else:  # pragma: no cover - h11 only yields the above here
                raise h11.RemoteProtocolError("unexpected event in body", 400)

    async def _body_stream(self, limit: int) -> AsyncIterator[bytes]:
        """The body as it arrives, for a handler that stores it as it goes (uploads).

        Memory is bounded by one read, whatever the body's size. Each chunk gets
        ``request_timeout`` to arrive (a slow upload is fine, a stalled one is not); past
        ``limit`` bytes the handler gets a 413 to answer."""
        await self._continue()
        size = 0
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    raise errors.PayloadTooLarge(f"the body is over the limit of {limit} bytes")
                self._enter(_Phase.RECEIVING, self.config.request_timeout)
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._enter(_Phase.HANDLING, None)
                return
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                raise _ClientGone
            else:  # pragma: no cover - h11 only yields the above here
                raise h11.RemoteProtocolError("unexpected event in body", 400)

    # -- handling -------------------------------------------------------------------------

    async def _call(self, route: Route, request: Request) -> Response:
        if not route.long_lived:
            return await _answer(route.handler, request)
        # Watch the socket while the handler waits: if the client goes away, stop at once
        # rather than at the next write (which for a long-poll may be a minute away).
        tasks = self._watch(request)
        try:
            response = await _answer(route.handler, request)
        finally:
            tasks.cancel()
        await self._request_tasks_gone()
        return response

    def _watch(self, request: Request) -> _Unwatch | trio.CancelScope:
        """Watch for the client hanging up while the request runs; ``cancel()`` what is
        returned when it ends. The server's one watch if there is one (a socket), else a
        disconnect watcher task of the request's own."""
        hangups = self.lifecycle.hangups
        if hangups is not None and isinstance(self.stream, trio.SocketStream):
            fd = self.stream.socket.fileno()
            if hangups.watch(fd, self):
                self._watched_request = request
                return _Unwatch(self, hangups, fd)
        scope = trio.CancelScope()
        self._tasks.start_soon(self._watch_for_disconnect, request, scope)
        return scope

    def hung_up(self) -> None:
        """The server's hang-up watch: the client of the watched request hung up."""
        if self._watched_request is not None:
            self._peer_left(self._watched_request)

    def _peer_left(self, request: Request) -> None:
        """The client went away: so does the connection, and all it runs."""
        self._log(request, 499)
        self._gone = True
        self._deadline.cancel()

    async def _request_tasks_gone(self) -> None:
        """Wait until the request's tasks, cancelled, are gone; each takes a step or two.

        Until then the socket is not read: only one task may read it at a time, and bytes the
        watcher has read must reach h11 before any read after them. (An Event to wait on
        would cost each idle event stream ~260 bytes more.)
        """
        while self._tasks.child_tasks:
            await trio.lowlevel.checkpoint()

    async def _watch_for_disconnect(self, request: Request, scope: trio.CancelScope) -> None:
        with scope:
            # Whatever arrives meanwhile (a pipelined request) is kept in h11's buffer, up to
            # a bound; past that we stop reading and let TCP push back.
            while len(self.conn.trailing_data[0]) <= self.config.max_head_size:
                data = await self._receive()
                if not data:
                    self._peer_left(request)
                    return
                self.conn.receive_data(data)
            await trio.sleep_forever()

    # -- sending --------------------------------------------------------------------------

    def _head(self, response: Response, length: int | None, *, close: bool = False) -> h11.Response:
        """The response head; ``close`` (or shutdown) adds ``connection: close``, once."""
        headers: list[tuple[bytes, bytes]] = [(b"date", http_date())]
        if response.content_type is not None:
            headers.append((b"content-type", response.content_type.encode("ascii")))
        # No length for 204 and 304: RFC 9110 §8.6 forbids one on 204, and on 304 allows only
        # the length the 200 would have had -- which a 304 does not know.
        if length is not None and response.status not in (204, 304):
            headers.append((b"content-length", str(length).encode("ascii")))
        for name, value in response.headers:
            headers.append((name.encode("ascii"), value.encode("latin-1")))
        if close or self.lifecycle.shutting_down:
            headers.append((b"connection", b"close"))
        return h11.Response(
            status_code=response.status, headers=headers, reason=_reason(response.status)
        )

    async def _send(self, response: Response, request: Request, whole: bool) -> None:
        if response.stream is None or self._head_request:  # (HEAD: never run the stream)
            data = self._whole_answer(response)
            # The answer to a request that came whole has the keep-alive time to go out, which
            # is then the deadline of the wait for the next request; other answers have the
            # request time.
            if whole:
                self._enter(_Phase.ANSWERING, self.config.keepalive_timeout)
                await self._send_bytes(data)
                self._phase = _Phase.IDLE
            else:
                self._enter(_Phase.ANSWERING, self.config.request_timeout)
                await self._send_bytes(data)
            self._log(request, response.status)
            return
        await self._send_bytes(self.conn.send(self._head(response, response.length)))
        # h11 frames a body of unknown length in chunks for an HTTP/1.1 peer (else it ends
        # the body by closing the connection).
        self._chunked = response.length is None and self.conn.their_http_version == b"1.1"
        stream = response.stream
        status = response.status
        finished = False
        tasks = self._watch(request)
        try:
            await stream(self)
            finished = True
        except errors.SlowConsumer:
            log.info("cut off a slow consumer: %s user=%s", request.path, request.user)
        except _ClientGone:
            pass  # a write failed: the peer vanished
        except Exception:
            # Headers are out; all we can do is end the stream and log why. A body of
            # announced length cannot end early: the connection is closed instead.
            log.exception("stream failed: %s", request.path)
            status = 500
            finished = response.length is None
        finally:
            tasks.cancel()
        await self._request_tasks_gone()
        if not finished:  # cut off
            self._log(request, 499)
            raise _ClientGone
        await self._send_bytes(self.conn.send(h11.EndOfMessage()))
        self._log(request, status)

    def _whole_answer(self, response: Response) -> bytes:
        """A whole answer (head and body) in bytes, with h11's state moved past it."""
        if (
            response.stream is None
            and not self._head_request
            and response.status not in (204, 304)
            and not self.lifecycle.shutting_down
            and _can_write_ourselves(self.conn)
        ):
            data = _plain_answer(response)
            if data is not None:
                _answer_sent(self.conn, response.status, len(response.body))
                return data
        length = len(response.body) if response.stream is None else response.length
        data = self.conn.send(self._head(response, length))
        data += self._body(response.body)
        data += self.conn.send(h11.EndOfMessage())
        return data

    async def __call__(self, chunk: bytes) -> None:
        """The sender a streamed body is given (a ``ChunkSender``, with ``send_now``)."""
        await self._send_chunk(chunk)

    def send_now(self, chunk: bytes) -> int | None:
        """Write a streamed body's next chunk without waiting, from outside its task.

        For live fan-out, which hands a waiting stream its event from the publisher (the
        stream's task is then waiting for events, never in the middle of a write). Only for
        chunks we frame ourselves, on a socket. None if nothing was written (the socket would
        block, or failed: the task's own write finds out); else how many bytes are still
        owed (0: all written), which the next awaited write sends first.
        """
        stream = self.stream
        if not self._chunked or self._unsent or not isinstance(stream, trio.SocketStream):
            return None
        if not chunk:
            return 0
        data = _framed(chunk)
        try:
            written = os.write(stream.socket.fileno(), data)
        except OSError:
            return None
        if written < len(data):
            self._unsent = data[written:]
        timeout = self.config.stream_send_timeout
        if self._deadline.deadline - trio.current_time() < timeout / 2:
            self._enter(_Phase.SENDING, timeout)  # as _send_bytes does for each write
        return len(self._unsent)

    async def _send_chunk(self, chunk: bytes) -> None:
        """A streamed body's next chunk.

        Chunked framing we write ourselves: it is what h11's chunked writer writes (h11 keeps
        no state for it, and a ``Data`` event changes none), at a fraction of the cost --
        which fan-out pays once per stream per event. Other framings go through h11."""
        if not self._chunked:
            await self._send_bytes(self.conn.send(h11.Data(data=chunk)))
        elif chunk:  # (an empty chunk would end the body: h11 skips it too)
            await self._send_bytes(_framed(chunk))

    def _body(self, body: bytes) -> bytes:
        if not body or self._head_request:
            return b""
        return self.conn.send(h11.Data(data=body)) or b""

    async def _send_bytes(self, data: bytes | None) -> None:
        """Write under the current deadline; a stream's writes push their own.

        Each write of a stream moves the deadline to ``stream_send_timeout`` from now and
        leaves it there: the stream's next write (an event, or the hub's keep-alive tick,
        which comes sooner) moves it on, and a peer that stops reading runs it out.
        """
        if self._unsent:  # what send_now owes the stream goes first
            data, self._unsent = self._unsent + (data or b""), b""
        if not data:
            return
        timeout = self.config.stream_send_timeout
        if self._phase is _Phase.HANDLING or (
            # Moving a deadline costs more than reading the clock: move it only once half
            # of it has run (a stalled peer is then cut off within 1/2 to 1 timeout).
            self._phase is _Phase.SENDING
            and self._deadline.deadline - trio.current_time() < timeout / 2
        ):
            self._enter(_Phase.SENDING, timeout)
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.conn.send_failed()
            raise _ClientGone from None

    async def _send_error_and_close(self, status: int, detail: str) -> None:
        error: errors.ChatError
        if status == 431:
            error = errors.HeadTooLarge()
        else:
            error = errors.ChatError(f"malformed HTTP request: {detail}")
            # The client's fault is a 4xx: h11 hints 501 for a transfer coding it does not
            # know, which would let any client raise the server's error rate at will.
            error.status = status if 400 <= status < 500 else 400  # type: ignore[misc]
            error.code = "bad_request"  # type: ignore[misc]
        await self._send_error_and_close_for(error)

    async def _send_error_and_close_for(
        self, error: errors.ChatError, *, quiet: bool = False
    ) -> None:
        """Answer an error that ends the connection, if a response can still be started."""
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        if quiet and self.conn.their_state is h11.IDLE and not self.conn.trailing_data[0]:
            return  # nothing of a request arrived: just close
        response = Response.error(error)
        data = self.conn.send(self._head(response, len(response.body), close=True))
        data += self._body(response.body)
        data += self.conn.send(h11.EndOfMessage())
        self._drain_on_close = True
        try:
            await self._send_bytes(data)
        except _ClientGone:
            return
        elapsed = (time.perf_counter() - self._started) * 1000
        access_log.line("-", "-", error.status, elapsed, None)

    def _log(self, request: Request, status: int) -> None:
        access_log.line(
            request.method,
            request.path,
            status,
            (time.perf_counter() - self._started) * 1000,
            request.user,
        )

    async def _close(self) -> None:
        """Close; after an error answer, half-close and drain briefly first."""
        with trio.CancelScope(shield=True):
            try:
                if isinstance(self.stream, trio.SocketStream) and self._drain_on_close:
                    await self.stream.send_eof()
                    with trio.move_on_after(CLOSE_DRAIN_TIMEOUT):
                        while await self.stream.receive_some(READ_SIZE):
                            pass
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
            await self.stream.aclose()


_last_framed: tuple[bytes, bytes] = (b"", b"")


def _framed(chunk: bytes) -> bytes:
    """``chunk`` in chunked framing. Fan-out frames the same chunk object for every stream
    in a row: the last one framed is kept."""
    global _last_framed
    last, framed = _last_framed
    if chunk is not last:
        framed = b"%x\r\n%b\r\n" % (len(chunk), chunk)
        _last_framed = (chunk, framed)
    return framed


class _Unwatch:
    """Ends a socket's watch in the server's ``HangupWatch``."""

    __slots__ = ("_connection", "_fd", "_hangups")

    def __init__(self, connection: HTTPConnection, hangups: HangupWatch, fd: int) -> None:
        self._connection = connection
        self._hangups = hangups
        self._fd = fd

    def cancel(self) -> None:
        self._hangups.unwatch(self._fd)
        self._connection._watched_request = None


def _peer_address(stream: trio.abc.Stream) -> str | None:
    """The peer's IP address, or None if the stream is not a TCP socket (or already gone)."""
    if not isinstance(stream, trio.SocketStream):
        return None
    try:
        address = stream.socket.getpeername()
    except OSError:  # the peer reset the connection before we looked
        return None
    # (host, port) for IPv4, (host, port, flowinfo, scope_id) for IPv6; a path for AF_UNIX.
    return address[0] if isinstance(address, tuple) else None


_REASONS = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}

# -- answers written without h11's writer ---------------------------------------------------
#
# h11 validates every header of every response twice (the event, then its cleaned-up copy),
# works out the framing, and writes the head piece by piece: ~25 µs of a POST /send's ~290.
# The common answer -- a whole body with its length, on a keep-alive HTTP/1.1 connection that
# stays open -- needs none of that: we write its bytes ourselves, checking the handler's own
# headers as h11 would, and move h11's state machine exactly as ``send`` would have (through
# the one method every event goes through, with a response event that carries the framing).
# Anything else -- HEAD, 204/304, a stream, connection: close, an HTTP/1.0 peer, a pending
# protocol switch -- goes through ``h11.Connection.send``. tests/http/test_answers.py checks
# that both ways give the same bytes and the same state.

_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_FIELD_VALUE = re.compile(rb"([^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?")
# (h11's private methods: if a release renames them, every answer goes through h11.)
_WRITES_OURSELVES = all(
    hasattr(h11.Connection, name) for name in ("_process_event", "_process_error")
)
_STATUS_LINES = {
    code: b"HTTP/1.1 %d %s\r\n" % (code, _REASONS.get(code, b"")) for code in range(200, 600)
}
_JSON_TYPE = b"content-type: " + JSON_TYPE.encode("ascii") + b"\r\n"
_END_OF_MESSAGE = h11.EndOfMessage()


def _can_write_ourselves(conn: h11.Connection) -> bool:
    """Whether h11 would write an answer as it is given (no framing or closing of its own)."""
    cstate = conn._cstate
    return (
        _WRITES_OURSELVES
        and conn.our_state is h11.SEND_RESPONSE
        and conn.their_http_version == b"1.1"
        and cstate.keep_alive
        and not cstate.pending_switch_proposals
    )


def _plain_answer(response: Response) -> bytes | None:
    """Head and body of a whole answer; None if a header could not be written as it is."""
    status_line = _STATUS_LINES.get(response.status)
    if status_line is None:
        return None
    parts = [status_line, b"date: ", http_date(), b"\r\n"]
    if response.content_type == JSON_TYPE:
        parts.append(_JSON_TYPE)
    elif response.content_type is not None:
        content_type = response.content_type.encode("ascii")
        if not _FIELD_VALUE.fullmatch(content_type):
            return None
        parts += [b"content-type: ", content_type, b"\r\n"]
    parts += [b"content-length: ", b"%d" % len(response.body), b"\r\n"]
    for name, value in response.headers:
        raw_name, raw_value = name.encode("ascii"), value.encode("latin-1")
        lower = raw_name.lower()
        if (
            not _TOKEN.fullmatch(raw_name)
            or not _FIELD_VALUE.fullmatch(raw_value)
            or lower in (b"content-length", b"transfer-encoding", b"connection")
        ):
            return None  # h11 checks it (and refuses what it would refuse)
        parts += [raw_name, b": ", raw_value, b"\r\n"]
    parts += [b"\r\n", response.body]
    return b"".join(parts)


def _answer_sent(conn: h11.Connection, status: int, length: int) -> None:
    """Move h11 past a whole answer of ``length`` body bytes, as ``send`` would have."""
    framing = h11.Response(
        status_code=status,
        headers=[(b"content-length", b"%d" % length)],
        http_version=b"1.1",
        reason=b"",
        _parsed=True,
    )
    try:
        conn._process_event(h11.SERVER, framing)
        conn._process_event(h11.SERVER, _END_OF_MESSAGE)
    except BaseException:
        conn._process_error(h11.SERVER)
        raise


def _reason(status: int) -> bytes:
    return _REASONS.get(status, b"")


async def _answer(handler: Callable[[Request], Awaitable[Response]], request: Request) -> Response:
    try:
        return await handler(request)
    except errors.ChatError as exc:
        return Response.error(exc)
    except _ClientGone:
        raise  # the peer left while the handler read its body: nobody to answer
    except Exception:
        log.exception("handler failed: %s %s", request.method, request.path)
        return Response.error(errors.ChatError())
