"""``Request.client_address``: the peer's IP address, as the connection saw it."""

from __future__ import annotations

import json

import trio
import trio.testing

from tests.http.helpers import BareLifecycle, read_responses, start
from trio_chat.config import Config
from trio_chat.http import Request, Response, Route, Router
from trio_chat.http.connection import HTTPConnection


async def whoami(request: Request) -> Response:
    return Response.json(200, {"client_address": request.client_address})


def router() -> Router:
    routes = Router()
    routes.add(Route("GET", "/whoami", whoami))
    return routes


async def test_every_request_carries_the_peers_address(nursery):
    server = await start(nursery, Config(port=0), router())
    stream = await server.connect()
    # Twice on one connection: the address is the connection's, read once, given to each.
    await stream.send_all(b"GET /whoami HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
    answers = await read_responses(stream, 2)
    assert [json.loads(body) for _, _, body in answers] == [{"client_address": "127.0.0.1"}] * 2
    await server.close()


async def test_a_stream_that_is_not_a_socket_has_no_address():

    server_end, client_end = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(HTTPConnection(server_end, router(), Config(), BareLifecycle()).run)
        await client_end.send_all(b"GET /whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := await client_end.receive_some():
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b'{"client_address":null}')
