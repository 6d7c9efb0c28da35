"""A nursery per connection: every task a request starts lives in the connection's one
nursery, ends with its request, and nothing of a connection outlives it. A long-lived
request starts none: the server's one hang-up watch holds its socket while it runs."""

from __future__ import annotations

import logging

import trio
import trio.testing

from tests.http.helpers import (
    BareLifecycle,
    all_tasks,
    connection_tasks,
    read_responses,
    running,
    start,
)
from trio_chat.config import Config
from trio_chat.http import Request, Response, Route, Router


class Handlers:
    def __init__(self) -> None:
        self.release_poll = trio.Event()
        self.stream_cancelled = trio.Event()

    async def echo(self, request: Request) -> Response:
        return Response.json(200, {"ok": True})

    async def poll(self, request: Request) -> Response:  # a long-poll
        await self.release_poll.wait()
        return Response.json(200, {"events": []})

    async def stream(self, request: Request) -> Response:  # an event stream
        async def body(send) -> None:
            try:
                await send(b"data: first\n\n")
                await trio.sleep_forever()
            finally:
                self.stream_cancelled.set()

        return Response(200, content_type="text/event-stream", stream=body)

    def router(self) -> Router:
        router = Router()
        router.add(Route("GET", "/echo", self.echo))
        router.add(Route("GET", "/poll", self.poll, long_lived=True))
        router.add(Route("GET", "/stream", self.stream, long_lived=True))
        return router


def watched(server) -> int:
    """Sockets in the server's hang-up watch."""
    return len(server.http.hangups)


async def test_request_tasks_live_and_end_in_the_connections_one_nursery(
    mock_clock, nursery, caplog
):
    handlers = Handlers()
    server = await start(nursery, Config(port=0, shutdown_timeout=5), handlers.router())
    await trio.testing.wait_all_tasks_blocked()
    before = set(all_tasks())

    stream = await server.connect()
    await stream.send_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await read_responses(stream, 1))[0][0] == 200
    await trio.testing.wait_all_tasks_blocked()
    (connection,) = connection_tasks()
    # Idle between requests, the connection already has its nursery, and nothing in it.
    (own,) = connection.child_nurseries
    assert own.child_tasks == frozenset()

    # A long-poll: no task of its own; its socket is watched while it runs, and no longer.
    await stream.send_all(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
    await trio.testing.wait_all_tasks_blocked()
    assert connection.child_nurseries == [own] and own.child_tasks == frozenset()
    assert watched(server) == 1
    handlers.release_poll.set()
    assert (await read_responses(stream, 1))[0][0] == 200
    await trio.testing.wait_all_tasks_blocked()
    assert connection.child_nurseries == [own] and own.child_tasks == frozenset()
    assert watched(server) == 0

    # A stream: the same; then the client goes away mid-stream.
    await stream.send_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    assert await stream.receive_some(65536)  # the head and the first event
    await trio.testing.wait_all_tasks_blocked()
    assert connection.child_nurseries == [own] and own.child_tasks == frozenset()
    assert watched(server) == 1
    await stream.aclose()
    await trio.testing.wait_all_tasks_blocked()  # no time passes: seen at once, not at a write
    assert handlers.stream_cancelled.is_set()
    assert watched(server) == 0
    assert set(all_tasks()) == before  # nothing of the connection is left

    # A long-poll whose client goes away: the handler is cancelled at once, nothing is left.
    handlers.release_poll = trio.Event()
    polling = await server.connect()
    await polling.send_all(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
    await trio.testing.wait_all_tasks_blocked()
    (connection,) = connection_tasks()
    assert watched(server) == 1
    with caplog.at_level(logging.INFO, logger="trio_chat.access"):
        await polling.aclose()
        await trio.testing.wait_all_tasks_blocked()  # no time passes: seen at once
    assert "GET /poll 499" in caplog.text
    assert set(all_tasks()) == before

    # At shutdown, a stream that does not end is cut at the shutdown deadline, and again
    # nothing of its connection is left running.
    handlers.stream_cancelled = trio.Event()
    other = await server.connect()
    await other.send_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    assert await other.receive_some(65536)
    await trio.testing.wait_all_tasks_blocked()
    (connection,) = connection_tasks()
    assert watched(server) == 1
    server.http.shutdown()
    await trio.testing.wait_all_tasks_blocked()
    mock_clock.jump(5)
    await trio.testing.wait_all_tasks_blocked()
    assert handlers.stream_cancelled.is_set()
    assert connection_tasks() == [] and not [t for t in all_tasks() if t not in before]
    await server.close()


async def test_without_a_hang_up_watch_a_long_poll_watches_with_a_task_of_its_own(caplog):
    # Not a socket (or not Linux): the request's own task reads until the client leaves.
    from trio_chat.http.connection import HTTPConnection

    handlers = Handlers()
    server_end, client_end = trio.testing.memory_stream_pair()
    connection = HTTPConnection(server_end, handlers.router(), Config(), BareLifecycle())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(connection.run)
        await client_end.send_all(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
        await trio.testing.wait_all_tasks_blocked()
        watchers = [t for t in all_tasks() if running(t, "HTTPConnection._watch_for_disconnect")]
        assert len(watchers) == 1
        with caplog.at_level(logging.INFO, logger="trio_chat.access"):
            await client_end.aclose()
            await trio.testing.wait_all_tasks_blocked()
    assert "GET /poll 499" in caplog.text
