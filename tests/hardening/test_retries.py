"""A retried send after the server died between its commit and its answer: the same message."""

from __future__ import annotations

import httpx
import trio

from tests.conftest import register
from tests.hardening.helpers import server_process

# `trio-chat serve`, except that the process SIGKILLs itself as soon as a send has committed
# and before it is answered: exactly the crash a client's retry must survive.
KILLED_AFTER_COMMIT = """
import os, signal, sys
from trio_chat import cli
from trio_chat.service.messaging import Messaging

real_send = Messaging.send

async def send(self, *args, **kwargs):
    result = await real_send(self, *args, **kwargs)
    if not result.repeated:
        os.kill(os.getpid(), signal.SIGKILL)
    return result

Messaging.send = send
sys.exit(cli.main(sys.argv[1:]))
"""


async def test_a_send_retried_after_a_crash_between_commit_and_answer_is_stored_once(tmp_path):
    data_dir = tmp_path / "data"
    async with (
        server_process(data_dir) as server,
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
    ):
        token = (await register(client, "alice")).token
    auth = {"Authorization": f"Bearer {token}"}
    body = {"text": "exactly once", "client_id": "retry-me"}

    async with (
        server_process(data_dir, launcher=KILLED_AFTER_COMMIT) as server,
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
    ):
        try:
            await client.post("/send", json=body, headers=auth)
        except httpx.TransportError:
            pass  # no answer: the client cannot know whether it was stored
        else:
            raise AssertionError("the server answered; it was to die first")
        with trio.fail_after(10):
            assert await server.process.wait() == -9

    async with (
        server_process(data_dir) as server,
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
    ):
        retried = await client.post("/send", json=body, headers=auth)
        assert retried.status_code == 200, retried.text
        messages = (await client.get("/messages", headers=auth)).json()["messages"]
    assert [m["text"] for m in messages] == ["exactly once"]
    assert retried.json()["message"] == messages[0]
    assert messages[0]["client_id"] == "retry-me"
