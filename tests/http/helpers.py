"""What the HTTP-layer tests share: test handlers, a server of them on port 0, and readers
for raw responses."""

from __future__ import annotations

import attrs
import h11
import trio

from trio_chat.config import Config
from trio_chat.errors import Banned
from trio_chat.http import HTTPServer, Request, Response, Route, Router


class BareLifecycle:
    """What a connection asks of its server, for one run alone in a test: the server is not
    shutting down, has no hang-up watch, and ignores the connection going idle or busy."""

    shutting_down = False
    hangups = None

    def idle(self, scope: trio.CancelScope) -> None:
        pass

    def busy(self, scope: trio.CancelScope) -> None:
        pass


async def echo(request: Request) -> Response:
    return Response.json(200, {"path": request.path, "body": request.body.decode()})


async def boom(request: Request) -> Response:
    raise RuntimeError("handler bug")


async def refuse(request: Request) -> Response:
    raise Banned("2026-01-01T00:00:00.000Z")


async def stream(request: Request) -> Response:
    async def body(send: object) -> None:
        for i in range(3):
            await send(f"chunk {i}\n".encode())  # type: ignore[operator]

    return Response(200, content_type="text/plain", stream=body)


def make_router() -> Router:
    router = Router()
    router.add(Route("POST", "/echo", echo))
    router.add(Route("GET", "/echo", echo))
    router.add(Route("GET", "/boom", boom))
    router.add(Route("GET", "/refuse", refuse))
    router.add(Route("GET", "/stream", stream))
    return router


@attrs.define
class Server:
    http: HTTPServer
    port: int
    opened: list[trio.SocketStream] = attrs.field(factory=list)

    async def connect(self) -> trio.SocketStream:
        stream = await trio.open_tcp_stream("127.0.0.1", self.port)
        self.opened.append(stream)
        return stream

    async def close(self) -> None:
        self.http.shutdown()
        for stream in self.opened:
            await stream.aclose()


async def start(nursery: trio.Nursery, config: Config, router: Router | None = None) -> Server:
    http = HTTPServer(router or make_router(), config)
    _, port = await nursery.start(http.serve)
    return Server(http, port)


async def read_responses(
    stream: trio.SocketStream, count: int, methods: list[str] | None = None
) -> list[tuple[int, dict, bytes]]:
    """Parse ``count`` responses (Content-Length or chunked) off a raw stream.

    ``methods`` are those of the requests answered (GET by default): a HEAD's answer has no
    body whatever its headers say.
    """
    conn = h11.Connection(h11.CLIENT)
    out = []
    # Pretend we sent those requests, so h11 will parse that many responses.
    for method in methods or ["GET"] * count:
        conn.send(h11.Request(method=method, target="/", headers=[("host", "x")]))
        conn.send(h11.EndOfMessage())
        status, headers, body = 0, {}, b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                headers = {k.decode(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise AssertionError("closed early")
        out.append((status, headers, body))
        if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
            break
        conn.start_next_cycle()
    return out


async def read_until_closed(stream: trio.SocketStream) -> bytes:
    data = b""
    with trio.fail_after(10):
        while chunk := await stream.receive_some(65536):
            data += chunk
    return data


def post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"POST "
        + path.encode()
        + b" HTTP/1.1\r\nHost: x\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n"
        + extra
        + b"\r\n"
        + body
    )


def all_tasks() -> list[trio.lowlevel.Task]:
    """Every task of this Trio run, found from the root task down through its nurseries."""
    found: list[trio.lowlevel.Task] = []
    stack = [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        assert task is not None
        found.append(task)
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return found


def running(task: trio.lowlevel.Task, qualname: str) -> bool:
    """Whether ``qualname`` (a function's ``__qualname__``) is on the task's stack."""
    return any(frame.f_code.co_qualname == qualname for frame, _ in task.iter_await_frames())


def connection_tasks() -> list[trio.lowlevel.Task]:
    """The tasks serving an HTTP connection (``HTTPConnection.run`` on their stack)."""
    return [task for task in all_tasks() if running(task, "HTTPConnection.run")]
