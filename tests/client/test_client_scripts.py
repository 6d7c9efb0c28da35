"""Script mode and start-up: JSON lines, one line per message, tail's comments and notices, a
bad cursor, broken pipes, servers that are down or are not trio-chat, password prompts."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import httpx
import trio

from tests.client.client_fakes import T0
from tests.client.conftest import PYTHON, Proc, _env
from tests.client.test_client_api import ROOM
from tests.client.test_client_e2e import err, out
from trio_chat_client.cli import _as_json
from trio_chat_client.models import structure_event


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def comment(url: str, user: str, message_id: str, text: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        login = await http.post("/login", json={"username": user, "password": "password1"})
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        body = {"message_id": message_id, "text": text}
        assert (await http.post("/comment", json=body, headers=headers)).status_code == 201


async def test_read_prints_one_line_per_message_or_as_json(start_server, run_client):
    server = await start_server()
    assert (await run_client(server.url, "alice", "send", "hi")).returncode == 0
    assert (await run_client(server.url, "bob", "read")).returncode == 0  # bob's account
    async with httpx.AsyncClient(base_url=server.url) as http:
        login = await http.post("/login", json={"username": "bob", "password": "password1"})
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        answer = await http.post("/send", json={"text": "two\nlines"}, headers=headers)
        message_id = answer.json()["message"]["id"]
    await comment(server.url, "alice", message_id, "a\\b")

    plain = await run_client(server.url, "alice", "read")
    lines = out(plain).splitlines()
    assert lines[-2].endswith(f" {message_id} bob: two\\nlines")
    assert lines[-1].endswith(f" on {message_id}: a\\\\b")
    assert lines[-1].split(" ")[2] == "alice"

    as_json = await run_client(server.url, "alice", "read", "--json")
    objects = [json.loads(line) for line in out(as_json).splitlines()]
    assert objects[-1]["type"] == "message"
    last = objects[-1]["message"]
    assert (last["id"], last["text"], last["author"]) == (message_id, "two\nlines", "bob")
    assert [c["text"] for c in last["comments"]] == ["a\\b"]
    assert last["sent_at"].endswith("Z") and len(last["sent_at"]) == 24


async def test_tail_shows_messages_comments_and_notices(start_server, start_client, run_client):
    server = await start_server("--ban-threshold", "1")
    plain = await start_client(server, "alice", "tail")
    as_json = await start_client(server, "alice", "tail", "--json")
    await plain.wait_for(r"^\* following new messages", stream="err")
    await as_json.expect('"type": "notice"')
    sent = await run_client(server.url, "bob", "send", "look\nhere")
    message_id = out(sent).strip()
    await comment(server.url, "bob", message_id, "a comment")
    assert (await run_client(server.url, "carol", "send", "hi")).returncode == 0
    async with httpx.AsyncClient(base_url=server.url) as http:
        login = await http.post("/login", json={"username": "carol", "password": "password1"})
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        await http.post("/report", json={"username": "alice"}, headers=headers)

    assert (await plain.expect(f" {message_id} bob: look\\nhere")).count(" ") == 3
    await plain.expect(f" bob on {message_id}: a comment")
    await plain.wait_for(r"^\* you are banned from sending until ", stream="err")

    kinds = []
    while "banned" not in kinds:
        event = json.loads(await as_json.expect('"type": '))
        kinds.append(event["type"])
        if event["type"] == "message" and event["message"]["author"] == "bob":
            assert event["message"]["text"] == "look\nhere"
    assert kinds[:3] == ["message", "comment", "message"]
    await plain.stop()
    await as_json.stop()


async def test_a_cursor_the_server_does_not_know_is_refused(start_server, run_client):
    server = await start_server()
    bad = await run_client(server.url, "alice", "tail", "--since", "99999")
    assert bad.returncode == 4
    assert (
        err(bad)
        .strip()
        .startswith("trio-chat-client: --since 99999 is not a cursor of this server's event log")
    )


async def test_a_broken_pipe_ends_quietly(start_server, run_client, nursery, tmp_path):
    server = await start_server()
    assert (await run_client(server.url, "alice", "send", "warm-up")).returncode == 0
    client = (
        f"{PYTHON} -m trio_chat_client --server {server.url} --user alice "
        f"--config-dir {tmp_path / 'config' / 'alice'} tail"
    )
    process = await trio.lowlevel.open_process(
        ["bash", "-c", f"set -o pipefail; {client} | head -n 1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    pipeline = Proc("pipeline", process, nursery)
    await pipeline.wait_for(r"^\* following new messages", stream="err")
    assert (await run_client(server.url, "bob", "send", "first")).returncode == 0
    await pipeline.expect("bob: first")  # head printed it and is gone
    assert (await run_client(server.url, "bob", "send", "second")).returncode == 0
    with trio.fail_after(30):
        status = await process.wait()
    assert status == 0, pipeline.transcript()
    assert not any("Traceback" in line or "BrokenPipe" in line for line in pipeline.err)


async def test_a_server_that_is_not_trio_chat_is_named_so(tmp_path, nursery):
    port = free_port()
    process = await trio.lowlevel.open_process(
        [sys.executable, "-u", "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    other = Proc("http.server", process, nursery)
    try:
        await other.expect("Serving HTTP on 127.0.0.1")
        url = f"http://127.0.0.1:{port}"
        with trio.fail_after(30):
            result = await trio.run_process(
                [
                    PYTHON,
                    "-m",
                    "trio_chat_client",
                    "--server",
                    url,
                    "--user",
                    "alice",
                    "--config-dir",
                    str(tmp_path / "config"),
                    "read",
                ],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                env=_env(TRIO_CHAT_PASSWORD="password1"),
            )
    finally:
        process.kill()
        await process.wait()
    assert result.returncode == 5
    message = err(result).strip()
    assert message.startswith(
        f"trio-chat-client: the server at {url} does not look like a trio-chat server"
    ), message
    assert "try again later" not in message


async def test_a_saved_session_is_found_whatever_the_case_of_the_name(
    start_server, run_client, tmp_path
):
    server = await start_server()
    assert (await run_client(server.url, "alice", "send", "hi")).returncode == 0
    saved = str(tmp_path / "config" / "alice")
    again = await run_client(server.url, "ALICE", "read", "--config-dir", saved, password=None)
    assert again.returncode == 0 and "alice: hi" in out(again), err(again)


async def test_the_interactive_client_waits_for_a_server_that_is_down(start_server, start_client):
    port = free_port()

    class Down:
        url = f"http://127.0.0.1:{port}"

    alice = await start_client(Down(), "alice", "--plain", "--register")
    await alice.wait_for(
        r"^\* cannot reach the server at .*: connection refused .*; trying again in 2 s",
        stream="err",
    )
    await start_server(port=port)
    await alice.wait_for(r"^\* the server at .* answers", stream="err")
    await alice.expect("* connected to ")
    assert await alice.quit() == 0


def test_new_events_are_read_and_written_back_as_the_api_has_them():
    raw = [
        {"type": "join_request", "cursor": "4", "room": "room:5eb1", "username": "carol"},
        {"type": "room_joined", "cursor": "5", "room": ROOM, "username": "bob"},
        {"type": "join_refused", "cursor": "6", "room": "room:5eb1"},
        {"type": "room_left", "cursor": "7", "room": "room:5eb1", "username": "bob"},
        {
            "type": "scheduled_failed",
            "cursor": "8",
            "error": {"code": "banned", "message": "no"},
            "scheduled": {
                "id": "q1",
                "send_at": T0,
                "chat": "general",
                "to": None,
                "text": "hi",
                "files": [],
            },
        },
    ]
    events = [structure_event(e) for e in raw]
    assert [type(e).__name__ for e in events] == [
        "JoinRequestEvent", "RoomJoinedEvent", "JoinRefusedEvent", "RoomLeftEvent",
        "ScheduledFailedEvent",
    ]  # fmt: skip
    assert [_as_json(e) for e in events] == raw
