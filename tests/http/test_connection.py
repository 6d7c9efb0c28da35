"""The HTTP layer on its own: a router of test handlers behind the real connection loop,
talked to over real sockets."""

from __future__ import annotations

import json
import logging

import pytest
import trio
import trio.testing

from tests.http.helpers import (
    BareLifecycle,
    make_router,
    post,
    read_responses,
    read_until_closed,
    start,
)
from trio_chat.config import Config
from trio_chat.http import HTTPServer, Request, Response, Route, Router


async def test_keep_alive_and_pipelining_answer_in_order(server):
    stream = await server.connect()
    requests = b"".join(post("/echo", f"request {i}".encode()) for i in range(5))
    await stream.send_all(requests)
    responses = await read_responses(stream, 5)
    assert [json.loads(body)["body"] for _, _, body in responses] == [
        f"request {i}" for i in range(5)
    ]
    # And the connection is still good for more.
    await stream.send_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
    ((status, headers, _),) = await read_responses(stream, 1)
    assert status == 200 and headers["content-type"] == "application/json"
    await stream.aclose()


async def test_handler_exception_is_a_logged_500_and_the_server_lives(server, caplog):
    stream = await server.connect()
    with caplog.at_level(logging.ERROR, logger="trio_chat.http"):
        await stream.send_all(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
        ((status, _, body),) = await read_responses(stream, 1)
    assert status == 500
    assert json.loads(body) == {
        "error": {"code": "internal_error", "message": "internal server error"}
    }
    (record,) = [r for r in caplog.records if r.exc_info]
    assert "handler failed: GET /boom" in record.getMessage()
    assert "handler bug" in str(record.exc_info[1])
    # Same connection, next request: fine.
    await stream.send_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await read_responses(stream, 1))[0][0] == 200


async def test_chat_errors_become_their_json_answers(server):
    stream = await server.connect()
    await stream.send_all(
        b"GET /refuse HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
        b"DELETE /echo HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    (banned, missing, wrong) = await read_responses(stream, 3)
    assert banned[0] == 403 and json.loads(banned[2])["error"]["banned_until"]
    assert missing[0] == 404 and json.loads(missing[2])["error"]["code"] == "not_found"
    assert wrong[0] == 405 and wrong[1]["allow"] == "GET, HEAD, POST"


async def test_head_too_large_is_431_and_closes(server):
    stream = await server.connect()
    await stream.send_all(b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4000 + b"\r\n\r\n")
    data = await read_until_closed(stream)
    assert data.startswith(b"HTTP/1.1 431 ")
    assert b"connection: close" in data.lower()


async def test_declared_body_over_the_limit_is_413_before_reading_it(server):
    stream = await server.connect()
    # Declare 1 MB but send none of it: the answer must not wait for the body.
    await stream.send_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
    data = await read_until_closed(stream)
    assert data.startswith(b"HTTP/1.1 413 ")
    assert b'"payload_too_large"' in data


async def test_chunked_body_over_the_limit_is_413(server):
    stream = await server.connect()
    chunk = b"200\r\n" + b"x" * 0x200 + b"\r\n"
    await stream.send_all(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 3
    )
    data = await read_until_closed(stream)
    assert data.startswith(b"HTTP/1.1 413 ")


async def test_malformed_request_gets_h11s_status_and_close(server):
    stream = await server.connect()
    await stream.send_all(b"GET /echo HTTP/1.1\r\nBad Header Line\r\n\r\n")
    data = await read_until_closed(stream)
    assert data.startswith(b"HTTP/1.1 400 ")
    assert b"connection: close" in data.lower()


async def test_streamed_body_is_chunked(server):
    stream = await server.connect()
    await stream.send_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    ((status, headers, body),) = await read_responses(stream, 1)
    assert status == 200 and headers["transfer-encoding"] == "chunked"
    assert body == b"chunk 0\nchunk 1\nchunk 2\n"


async def test_request_deadline_cuts_off_a_slow_request(mock_clock, nursery):
    server = await start(nursery, Config(port=0, request_timeout=10, keepalive_timeout=1000))
    slow = await server.connect()
    await slow.send_all(b"POST /echo HTTP/1.1\r\nHost: x\r\n")  # ...and nothing more
    await trio.testing.wait_all_tasks_blocked()
    mock_clock.jump(9)
    # Others are served meanwhile.
    other = await server.connect()
    await other.send_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await read_responses(other, 1))[0][0] == 200
    await trio.testing.wait_all_tasks_blocked()
    mock_clock.jump(1)
    data = b""
    while chunk := await slow.receive_some(65536):
        data += chunk
    assert data.startswith(b"HTTP/1.1 408 ")
    await server.close()


async def test_connection_cap_answers_503(nursery):
    server = await start(nursery, Config(port=0, max_connections=2))
    http = server.http
    held = [await server.connect() for _ in range(2)]
    for stream in held:  # make sure both are being served
        await stream.send_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        await read_responses(stream, 1)
    extra = await server.connect()
    data = await read_until_closed(extra)
    assert data.startswith(b"HTTP/1.1 503 ") and b'"overloaded"' in data
    await held[0].aclose()
    with trio.fail_after(10):
        while http.active > 1:
            await trio.sleep(0.01)
    again = await server.connect()
    await again.send_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await read_responses(again, 1))[0][0] == 200
    await server.close()


async def test_shutdown_finishes_in_flight_and_closes_idle(nursery):
    release = trio.Event()

    async def slow(request: Request) -> Response:
        await release.wait()
        return Response.json(200, {"done": True})

    router = make_router()
    router.add(Route("GET", "/slow", slow))
    http = HTTPServer(router, Config(port=0))
    done = trio.Event()

    async def run(task_status: trio.TaskStatus) -> None:
        await http.serve(task_status=task_status)
        done.set()

    _, port = await nursery.start(run)
    idle = await trio.open_tcp_stream("127.0.0.1", port)
    busy = await trio.open_tcp_stream("127.0.0.1", port)
    opened = [idle, busy]
    await busy.send_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    await trio.testing.wait_all_tasks_blocked()
    http.shutdown()
    assert await read_until_closed(idle) == b""  # idle: closed at once
    release.set()
    ((status, headers, body),) = await read_responses(busy, 1)
    assert status == 200 and headers["connection"] == "close" and json.loads(body) == {"done": True}
    with trio.fail_after(10):
        await done.wait()
    for stream in opened:
        await stream.aclose()
    with pytest.raises(OSError):
        await trio.open_tcp_stream("127.0.0.1", port)


async def test_a_stream_whose_peer_stops_reading_is_cut_off(mock_clock):
    """A long-lived answer's write that stays blocked for stream_send_timeout ends it."""
    sent: list[int] = []

    async def endless(request: Request) -> Response:
        async def body(send) -> None:
            for i in range(10**6):
                await send(b"x" * 1000)
                sent.append(i)

        return Response(200, content_type="text/plain", stream=body)

    router = Router()
    router.add(Route("GET", "/endless", endless, long_lived=True))
    config = Config(stream_send_timeout=30)
    server_end, client_end = trio.testing.lockstep_stream_pair()  # a write waits for a read

    from trio_chat.http.connection import HTTPConnection

    done = trio.Event()

    async def serve() -> None:
        await HTTPConnection(server_end, router, config, BareLifecycle()).run()
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        await client_end.send_all(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
        for _ in range(5):  # the client reads a little, then stops
            await client_end.receive_some(65536)
        await trio.testing.wait_all_tasks_blocked()
        written = len(sent)
        mock_clock.jump(29)
        await trio.testing.wait_all_tasks_blocked()
        assert not done.is_set()
        mock_clock.jump(1)
        await trio.testing.wait_all_tasks_blocked()
        assert done.is_set()
    assert len(sent) == written  # nothing more was written once the peer stopped


async def test_a_pipelined_request_that_stalls_gets_408(mock_clock, nursery):
    server = await start(nursery, Config(port=0, request_timeout=10, keepalive_timeout=1000))
    stream = await server.connect()
    # One whole request, then the start of a second whose body never comes.
    await stream.send_all(
        b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"
    )
    ((status, _, _),) = await read_responses(stream, 1)
    assert status == 200
    await trio.testing.wait_all_tasks_blocked()
    mock_clock.jump(10)
    data = b""
    while chunk := await stream.receive_some(65536):
        data += chunk
    assert data.startswith(b"HTTP/1.1 408 ")
    await server.close()
