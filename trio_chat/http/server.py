"""Listening, accepting, the connection cap and graceful shutdown.

``trio.serve_listeners`` accepts; each connection runs in a separate handler nursery so that
shutdown can stop accepting first and then give in-flight requests a deadline
(``shutdown_timeout``), as hypercorn's ``graceful_timeout`` does. Connections waiting idle
between requests are closed at once; long-lived streams end through the service.
"""

from __future__ import annotations

import contextlib
import logging

import trio

from trio_chat import errors
from trio_chat.config import Config
from trio_chat.http.connection import HTTPConnection
from trio_chat.http.hangups import HangupWatch
from trio_chat.http.messages import dump_json, http_date
from trio_chat.http.routing import Router

log = logging.getLogger("trio_chat.http")
lifecycle = logging.getLogger("trio_chat.lifecycle")


def _overloaded_response() -> tuple[bytes, bytes]:
    """The 503 for a connection over the cap, around its Date header (added when sent)."""
    body = dump_json(errors.Overloaded().body())
    return (
        b"HTTP/1.1 503 Service Unavailable\r\ndate: ",
        b"\r\ncontent-type: application/json\r\nconnection: close\r\nretry-after: 1\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body,
    )


class HTTPServer:
    def __init__(self, router: Router, config: Config) -> None:
        self.router = router
        self.config = config
        self.active = 0
        self._shutting_down = False
        self._idle: set[trio.CancelScope] = set()
        self._accept_scope: trio.CancelScope | None = None
        self._overloaded = _overloaded_response()
        self._hangups: HangupWatch | None = None

    # -- Lifecycle protocol, for connections ------------------------------------------------

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def idle(self, scope: trio.CancelScope) -> None:
        if self._shutting_down:
            scope.cancel()
        self._idle.add(scope)

    def busy(self, scope: trio.CancelScope) -> None:
        self._idle.discard(scope)

    @property
    def hangups(self) -> HangupWatch | None:
        return self._hangups

    # -- serving ------------------------------------------------------------------------

    async def serve(
        self, *, task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until ``shutdown``; then finish in-flight requests (bounded) and return."""
        if self.router.warm_up is not None:
            await self.router.warm_up()
        listeners = await trio.open_tcp_listeners(self.config.port, host=self.config.host)
        host, port = listeners[0].socket.getsockname()[:2]
        lifecycle.info("listening on http://%s:%d", _url_host(host), port)
        # The hang-up watch outlives every connection: it ends once the handlers have.
        async with trio.open_nursery() as watching:
            self._hangups = HangupWatch.create()
            if self._hangups is not None:
                watching.start_soon(self._hangups.run)
            async with trio.open_nursery() as handlers:
                with trio.CancelScope() as accept_scope:
                    self._accept_scope = accept_scope
                    if self._shutting_down:
                        accept_scope.cancel()
                    task_status.started((host, port))
                    await trio.serve_listeners(self._handle, listeners, handler_nursery=handlers)
                for listener in listeners:
                    await listener.aclose()
                handlers.cancel_scope.deadline = trio.current_time() + self.config.shutdown_timeout
            self._hangups = None
            watching.cancel_scope.cancel()
        if handlers.cancel_scope.cancelled_caught:
            log.warning("shutdown deadline passed; open connections were cut")

    def shutdown(self) -> None:
        """Stop accepting, close idle connections; in-flight requests may finish."""
        self._shutting_down = True
        if self._accept_scope is not None:
            self._accept_scope.cancel()
        for scope in self._idle:
            scope.cancel()

    async def _handle(self, stream: trio.SocketStream) -> None:
        # Every exception stops here: serve_listeners would let one crash the server.
        if self.active >= self.config.max_connections:
            await self._refuse(stream)
            return
        self.active += 1
        try:
            await HTTPConnection(stream, self.router, self.config, self).run()
        except Exception:
            log.exception("connection failed")
        finally:
            self.active -= 1

    async def _refuse(self, stream: trio.SocketStream) -> None:
        with trio.move_on_after(1):
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                head, rest = self._overloaded
                await stream.send_all(head + http_date() + rest)
        await stream.aclose()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
