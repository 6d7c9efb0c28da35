"""Several devices per user: device names, sessions ended elsewhere, /sessions and /revoke,
one's own messages from another device, and sends that survive a lost answer (client_id)."""

from __future__ import annotations

import re
import socket
from typing import Any

import httpx
import trio

from tests.client.test_client_e2e import CONNECTED, out
from trio_chat_client.api import ApiClient
from trio_chat_client.auth import default_device_name

PASSWORD = "password1"


class Device:
    """Another device of a user, talking to the server directly."""

    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {token}"}

    async def sessions(self) -> list[dict[str, Any]]:
        response = await self.http.get("/sessions", headers=self.headers)
        assert response.status_code == 200, response.text
        sessions: list[dict[str, Any]] = response.json()["sessions"]
        return sessions

    async def revoke(self, device: str) -> None:
        (target,) = [s for s in await self.sessions() if s["device"] == device]
        response = await self.http.delete(f"/sessions/{target['id']}", headers=self.headers)
        assert response.status_code == 204, response.text

    async def send(self, text: str) -> None:
        response = await self.http.post("/send", json={"text": text}, headers=self.headers)
        assert response.status_code == 201, response.text


async def sign_in(http: httpx.AsyncClient, user: str, device: str) -> Device:
    body = {"username": user, "password": PASSWORD, "device": device}
    response = await http.post("/login", json=body)
    assert response.status_code == 200, response.text
    return Device(http, response.json()["token"])


def test_the_default_device_name_is_the_host_name():
    assert default_device_name() == socket.gethostname()[:64]
    assert default_device_name("  build-42\x07.example  ") == "build-42.example"
    assert default_device_name("x" * 100) == "x" * 64
    assert default_device_name("\x1b") == "trio-chat-client"


async def test_a_session_ended_elsewhere_asks_for_the_password_in_place(
    start_server, start_client, run_client
):
    server = await start_server()
    alice = await start_client(server, "alice", "--device", "laptop")
    await alice.expect(CONNECTED)
    async with httpx.AsyncClient(base_url=server.url) as http:
        phone = await sign_in(http, "alice", "phone")
        await phone.revoke("laptop")

        # The live stream ends and the client asks, in place, instead of dying.
        await alice.expect("the server ended this session")
        await alice.expect(f"password for alice at {server.url}:")
        await alice.say("not-the-password")
        assert await alice.expect("error: ") == "error: wrong username or password"
        await alice.expect(f"password for alice at {server.url}:")
        await alice.say(PASSWORD)
        await alice.expect("* logged in again; carrying on")

        # It carries on: live messages arrive, and it sends with its new session.
        assert (await run_client(server.url, "bob", "send", "still there?")).returncode == 0
        await alice.expect("bob: still there?")
        await alice.say("yes")
        await alice.expect("alice: yes")
        devices = sorted(s["device"] for s in await phone.sessions())
        assert devices == ["laptop", "phone"]  # a new session, under the same device name
    assert await alice.quit() == 0
    # Neither password attempt was taken for a chat message.
    read = await run_client(server.url, "bob", "read")
    assert "not-the-password" not in out(read) and PASSWORD not in out(read)
    assert [line for line in alice.out if PASSWORD in line] == []


async def test_a_command_refused_for_the_session_logs_in_again_and_is_carried_out(
    start_server, start_client, run_client
):
    # A long reconnect delay keeps the live stream from noticing first: the send does.
    server = await start_server()
    alice = await start_client(server, "alice", "--device", "laptop", "--reconnect-delay", "60")
    await alice.expect(CONNECTED)
    async with httpx.AsyncClient(base_url=server.url) as http:
        await (await sign_in(http, "alice", "phone")).revoke("laptop")
    await alice.expect("lost the live connection")
    await alice.say("sent after all")
    await alice.expect(f"password for alice at {server.url}:")
    await alice.say(PASSWORD)
    await alice.expect("* logged in again; carrying on")
    await alice.expect("alice: sent after all")
    assert await alice.quit() == 0
    read = await run_client(server.url, "bob", "read")
    assert out(read).count("alice: sent after all") == 1


async def test_no_new_password_ends_the_interactive_client_with_the_auth_status(
    start_server, start_client
):
    server = await start_server()
    alice = await start_client(server, "alice", "--device", "laptop")
    await alice.expect(CONNECTED)
    async with httpx.AsyncClient(base_url=server.url) as http:
        await (await sign_in(http, "alice", "phone")).revoke("laptop")
    await alice.expect(f"password for alice at {server.url}:")
    await alice.say("")
    with trio.fail_after(30):
        assert await alice.process.wait() == 2
    assert any("no password was given to log in again" in line for line in alice.err)


async def test_tail_exits_with_the_auth_status_when_its_session_is_ended(
    start_server, start_client
):
    server = await start_server()
    tail = await start_client(server, "alice", "tail", "--device", "tailer")
    await tail.wait_for(r"^\* following new messages", stream="err")
    async with httpx.AsyncClient(base_url=server.url) as http:
        await (await sign_in(http, "alice", "phone")).revoke("tailer")
    with trio.fail_after(30):
        assert await tail.process.wait() == 2, tail.transcript()
    assert "does not accept this session any more" in tail.err[-1]


async def test_devices_are_named_after_the_host_unless_told(start_server, run_client):
    server = await start_server()
    assert (await run_client(server.url, "carol", "send", "hi")).returncode == 0
    named = await run_client(server.url, "dave", "send", "--device", "ci box", "hi")
    assert named.returncode == 0
    async with httpx.AsyncClient(base_url=server.url) as http:
        carol = await sign_in(http, "carol", "checker")
        dave = await sign_in(http, "dave", "checker")
        assert [s["device"] for s in await carol.sessions()] == ["checker", socket.gethostname()]
        assert [s["device"] for s in await dave.sessions()] == ["checker", "ci box"]


async def test_sessions_lists_devices_and_revoke_signs_one_out(start_server, start_client):
    server = await start_server()
    laptop = await start_client(server, "alice", "--device", "laptop")
    await laptop.expect(CONNECTED)
    desk = await start_client(server, "alice", "--device", "desk", "--config-dir", "/nonexistent/x")
    await desk.expect(CONNECTED)

    await laptop.say("/sessions")
    await laptop.expect("* you are signed in on 2 device(s), newest first:")
    first = await laptop.wait_for(r"^\*   (s\S+)  desk  signed in \d\d:\d\d, last seen \d\d:\d\d$")
    mine = await laptop.wait_for(r"^\*   (s\S+)  laptop  signed in .*  ← this one$")
    await laptop.expect("* /revoke ID signs one of them out")

    await laptop.say(f"/revoke {mine[1]}")
    assert await laptop.expect("error: ") == "error: that is this session; /logout ends it"
    await laptop.say("/revoke zz")
    assert await laptop.expect("error: ") == (
        "error: you have no session matching 'zz'; /sessions lists them"
    )
    await laptop.say(f"/revoke {first[1][:6]}")  # a prefix will do
    await laptop.expect(f"* signed out desk (session {first[1]})")
    await desk.expect("the server ended this session")
    await desk.expect("password for alice at")
    await desk.say("")
    with trio.fail_after(30):
        assert await desk.process.wait() == 2
    assert await laptop.quit() == 0


async def test_own_messages_from_another_device_look_like_own_messages(start_server, start_client):
    server = await start_server()
    alice = await start_client(server, "alice")
    await alice.expect(CONNECTED)
    await alice.say("from the laptop")
    own = await alice.expect("from the laptop")
    async with httpx.AsyncClient(base_url=server.url) as http:
        await (await sign_in(http, "alice", "phone")).send("from the phone")
    other = await alice.expect("from the phone")
    shape = r"\[\d\d:\d\d\] #\S+ alice: from the "
    assert re.fullmatch(shape + "laptop", own) and re.fullmatch(shape + "phone", other)
    assert await alice.quit() == 0


async def test_the_client_starts_against_a_server_without_a_rate_limit(start_server, start_client):
    server = await start_server("--rate-limit-count", "0")
    for _ in range(2):  # the second start checks its saved session with /status
        alice = await start_client(server, "alice")
        await alice.expect(CONNECTED)
        await alice.say("/status")
        await alice.expect("* common chat: no rate limit on this server")
        await alice.expect("* unread: nothing")
        assert await alice.quit() == 0


class DropFirstAnswer(httpx.AsyncBaseTransport):
    """Passes requests to the real server, but loses the answer to the first one to ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.inner = httpx.AsyncHTTPTransport()
        self.dropped: list[int] = []
        self.statuses: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path != self.path:
            return response
        if not self.dropped:
            await response.aread()
            await response.aclose()
            self.dropped.append(response.status_code)
            raise httpx.ReadError("the connection broke before the answer arrived")
        self.statuses.append(response.status_code)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_send_whose_answer_was_lost_is_sent_once(chat_server, make_user):
    alice = await make_user("alice")
    for path in ("/send", "/comment"):
        transport = DropFirstAnswer(path)
        async with ApiClient(chat_server.url, alice.token, transport=transport) as api:
            if path == "/send":
                made = await api.send("exactly once")
            else:
                (target,) = await api.messages(limit=1)
                made = await api.comment(target.id, "also once")
        # The server made it on the first request; the retry got the original back with 200.
        assert (transport.dropped, transport.statuses) == ([201], [200]), path
        assert made.client_id is not None
    messages = (await alice.get("/messages")).json()["messages"]
    assert [m["text"] for m in messages] == ["exactly once"]
    assert [c["text"] for c in messages[0]["comments"]] == ["also once"]
