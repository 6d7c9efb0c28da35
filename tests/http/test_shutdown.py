"""Graceful shutdown against the real server: what was begun is answered."""

from __future__ import annotations

import json

import trio
import trio.testing

from tests.hardening.helpers import Conn, parse_all, receive_all, request
from tests.http.helpers import connection_tasks, start
from trio_chat.config import Config


class ShutdownAsItWakes(trio.abc.Instrument):
    """Start the server's shutdown just before ``task`` next runs.

    The task is waiting for a request; it runs next because the request's bytes arrived.
    Shutting down at that moment is the race of SIGTERM with a request: the connection was
    idle when shutdown looked, and is not any more by the time it runs.
    """

    def __init__(self, task: trio.lowlevel.Task, shutdown) -> None:
        self.task = task
        self.shutdown = shutdown
        self.fired = False

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task and not self.fired:
            self.fired = True
            self.shutdown()


async def test_a_request_arriving_as_shutdown_begins_is_answered(chat_server):
    conn = await Conn.open(chat_server.host, chat_server.port)
    credentials = json.dumps({"username": "alice", "password": "correct horse"}).encode()
    await conn.send(request("POST", "/register", body=credentials))
    registered = await conn.response()
    assert registered is not None and registered.status == 201
    token = registered.json()["token"]
    await trio.testing.wait_all_tasks_blocked()  # the connection waits for its next request
    (task,) = connection_tasks()
    race = ShutdownAsItWakes(task, chat_server.server.http.shutdown)
    trio.lowlevel.add_instrument(race)
    try:
        body = json.dumps({"text": "sent as the server stops"}).encode()
        await conn.send(request("POST", "/send", body=body, token=token))
        with trio.fail_after(10):
            answer = await conn.response()
    finally:
        trio.lowlevel.remove_instrument(race)
    assert race.fired
    # The message was stored: it is answered, and the connection then closes.
    assert answer is not None and answer.status == 201, answer
    assert answer.json()["message"]["text"] == "sent as the server stops"
    assert answer.headers["connection"] == ["close"]
    assert await conn.closed()
    await conn.aclose()


async def test_a_408_at_shutdown_says_connection_close_once(mock_clock, nursery):
    server = await start(nursery, Config(port=0, request_timeout=10, shutdown_timeout=100))
    try:
        stream = await server.connect()
        await stream.send_all(b"POST /echo HTTP/1.1\r\nHost: x\r\n")  # ...and nothing more
        await trio.testing.wait_all_tasks_blocked()
        server.http.shutdown()  # the request is under way: it keeps its own deadline
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(10)
        await trio.testing.wait_all_tasks_blocked()
        data = await receive_all(stream)
    finally:
        # (Closing our end also ends the server's drain, which waits in mock time.)
        await server.close()
    (answer,), rest = parse_all(data)
    assert rest == b""
    assert answer.check().status == 408 and answer.code == "request_timeout"
    assert answer.headers["connection"] == ["close"]
