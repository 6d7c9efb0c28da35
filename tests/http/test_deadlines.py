"""Which deadline a connection is under: a request once begun is answered, however long its
handler takes; waiting for a request and writing an answer stay bounded."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from tests.http.helpers import read_responses, start
from trio_chat.config import Config
from trio_chat.http import Request, Response, Route, Router


@pytest.mark.parametrize("arrives", ["whole, late in the keep-alive window", "in pieces"])
async def test_a_handler_may_run_past_the_deadline_its_request_came_under(
    arrives, mock_clock, nursery, caplog
):
    entered = trio.Event()
    release = trio.Event()

    async def slow(request: Request) -> Response:
        entered.set()
        await release.wait()  # the store, say, taking its time
        return Response.json(200, {"done": True})

    router = Router()
    router.add(Route("POST", "/slow", slow))
    server = await start(nursery, Config(port=0, keepalive_timeout=10, request_timeout=5), router)
    stream = await server.connect()
    head = b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n"
    await trio.testing.wait_all_tasks_blocked()
    if arrives == "in pieces":  # under the request deadline (5 s) from its first byte
        await stream.send_all(head)
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(4)
        await stream.send_all(b"{}")
    else:  # under the keep-alive deadline (10 s) from when the connection began waiting
        mock_clock.jump(9)
        await stream.send_all(head + b"{}")
    await entered.wait()
    await trio.testing.wait_all_tasks_blocked()
    with caplog.at_level(logging.INFO, logger="trio_chat.http"):
        mock_clock.jump(60)  # far past either deadline
        await trio.testing.wait_all_tasks_blocked()
        release.set()
        with trio.move_on_after(1) as never:  # mock time: only a bug would make this fire
            ((status, _, body),) = await read_responses(stream, 1)
    assert not never.cancelled_caught
    assert status == 200 and body == b'{"done":true}'
    assert "stopped reading" not in caplog.text
    # The connection is good for more.
    await stream.send_all(head + b"{}")
    assert (await read_responses(stream, 1))[0][0] == 200
    await server.close()
