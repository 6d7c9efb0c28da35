"""Scheduled messages, in virtual time (MockClock): sent at their time, never before, never
twice, not at all once cancelled; refusals reach the author."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
import trio
import trio.testing

from tests.conftest import register, start_server
from trio_chat.clock import TrioClock

HOUR = 3600


async def settle(server) -> None:
    """Let timers that are due run and their writes land."""
    for _ in range(3):
        await trio.testing.wait_all_tasks_blocked()
        await server.service.store.settled()


def at(server, seconds: float) -> str:
    """The server's now plus ``seconds``, as an RFC 3339 timestamp."""
    now = datetime.fromtimestamp(server.service.now() / 1000, tz=UTC)
    return (now + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


async def texts(user, **params) -> list[str]:
    return [m["text"] for m in (await user.get("/messages", params=params)).json()["messages"]]


async def test_sent_at_its_time_and_not_before(mock_clock, chat_server, http):
    alice = await register(http, "alice")
    bob = await register(http, "bob")
    send_at = at(chat_server, HOUR)
    response = await alice.post("/send", {"text": "good morning", "send_at": send_at})
    assert response.status_code == 202, response.text
    scheduled = response.json()["scheduled"]
    assert scheduled["chat"] == "general" and scheduled["to"] is None and scheduled["files"] == []
    assert scheduled["send_at"].startswith(send_at[:19])
    private = await alice.post(
        "/send", {"text": "psst", "to": "bob", "send_at": at(chat_server, 2 * HOUR)}
    )
    assert private.json()["scheduled"]["chat"] == "dm:alice:bob"
    listed = (await alice.get("/scheduled")).json()["scheduled"]
    assert [s["id"] for s in listed] == [scheduled["id"], private.json()["scheduled"]["id"]]
    assert (await bob.get("/scheduled")).json()["scheduled"] == []

    mock_clock.jump(HOUR - 1)
    await settle(chat_server)
    assert await texts(bob) == []
    mock_clock.jump(1)
    await settle(chat_server)
    (message,) = (await bob.get("/messages")).json()["messages"]
    assert message["text"] == "good morning" and message["author"] == "alice"
    assert message["scheduled_at"] == scheduled["send_at"]
    assert message["sent_at"] == scheduled["send_at"]  # on time, to the millisecond
    # Already sent: cannot be cancelled, and it is no longer pending.
    gone = await alice.client.delete(f"/scheduled/{scheduled['id']}", headers=alice.auth)
    assert gone.status_code == 409 and gone.json()["error"]["code"] == "already_sent"
    assert len((await alice.get("/scheduled")).json()["scheduled"]) == 1
    mock_clock.jump(HOUR)
    await settle(chat_server)
    assert await texts(bob, **{"with": "alice"}) == ["psst"]
    assert (await alice.get("/messages")).json()["messages"][0]["scheduled_at"] is not None


async def test_a_cancelled_message_is_never_sent(mock_clock, chat_server, http):
    alice = await register(http, "alice")
    other = await register(http, "mallory")
    scheduled = (
        await alice.post("/send", {"text": "never mind", "send_at": at(chat_server, 60)})
    ).json()
    sid = scheduled["scheduled"]["id"]
    assert (await other.client.delete(f"/scheduled/{sid}", headers=other.auth)).status_code == 404
    assert (await alice.client.delete(f"/scheduled/{sid}", headers=alice.auth)).status_code == 204
    assert ("scheduled", sid) not in chat_server.service.timers
    mock_clock.jump(120)
    await settle(chat_server)
    assert await texts(alice) == []
    again = await alice.client.delete(f"/scheduled/{sid}", headers=alice.auth)
    assert again.status_code == 404 and again.json()["error"]["code"] == "scheduled_not_found"


async def test_due_while_the_server_was_down_it_is_sent_at_start_and_only_once(
    mock_clock, nursery, config
):
    clock = TrioClock()  # one wall clock across the restarts, as a real one would be
    server = await start_server(nursery, config, clock)
    async with httpx.AsyncClient(base_url=server.url) as client:
        alice = await register(client, "alice")
        send_at = at(server, HOUR)
        response = await alice.post("/send", {"text": "while you slept", "send_at": send_at})
        assert response.status_code == 202
        scheduled = response.json()["scheduled"]
    await server.stop()
    mock_clock.jump(3 * HOUR)

    for _ in range(2):  # the second start must not send it again
        server = await start_server(nursery, config, clock)
        await settle(server)
        async with httpx.AsyncClient(base_url=server.url) as client:
            alice.client = client
            messages = (await alice.get("/messages")).json()["messages"]
            assert [m["text"] for m in messages] == ["while you slept"]
            assert messages[0]["scheduled_at"] == scheduled["send_at"]
            assert (await alice.get("/scheduled")).json()["scheduled"] == []
        await server.stop()


@pytest.mark.config(ban_threshold=1)
async def test_a_refusal_at_send_time_reaches_the_author(mock_clock, chat_server, http):
    alice = await register(http, "alice")
    bob = await register(http, "bob")
    cursor = (await alice.get("/updates", params={"timeout": "0"})).json()["cursor"]
    sid = (await alice.post("/send", {"text": "later", "send_at": at(chat_server, 60)})).json()[
        "scheduled"
    ]["id"]
    assert (await bob.post("/report", {"username": "alice"})).status_code == 201  # banned now
    mock_clock.jump(60)
    await settle(chat_server)
    assert await texts(bob) == []
    events = (await alice.get("/updates", params={"since": cursor, "timeout": "0"})).json()[
        "events"
    ]
    failed = [e for e in events if e["type"] == "scheduled_failed"]
    assert len(failed) == 1 and failed[0]["scheduled"]["id"] == sid
    assert failed[0]["error"]["code"] == "banned" and failed[0]["error"]["message"]
    assert (await alice.get("/scheduled")).json()["scheduled"] == []
    # Only the author hears of it.
    theirs = (await bob.get("/updates", params={"since": cursor, "timeout": "0"})).json()["events"]
    assert "scheduled_failed" not in {e["type"] for e in theirs}


async def test_rooms_and_membership_are_checked_when_it_is_sent(mock_clock, chat_server, http):
    alice = await register(http, "alice")
    bob = await register(http, "bob")
    room = (await alice.post("/rooms", {"name": "r"})).json()["room"]["id"]
    await alice.post(f"/rooms/{room}/members", {"username": "bob"})
    ok = await bob.post(
        "/send", {"chat": room, "text": "in the room", "send_at": at(chat_server, 60)}
    )
    late = await bob.post(
        "/send", {"chat": room, "text": "too late", "send_at": at(chat_server, 120)}
    )
    assert ok.status_code == late.status_code == 202
    mock_clock.jump(60)
    await settle(chat_server)
    await bob.client.delete(f"/rooms/{room}/members/bob", headers=bob.auth)  # bob leaves
    mock_clock.jump(60)
    await settle(chat_server)
    assert await texts(alice, chat=room) == ["in the room"]
    events = (await bob.get("/updates", params={"since": "0", "timeout": "0"})).json()["events"]
    (failed,) = [e for e in events if e["type"] == "scheduled_failed"]
    assert failed["error"]["code"] == "chat_not_found"


async def test_scheduling_is_validated(mock_clock, chat_server, http):
    alice = await register(http, "alice")
    for send_at, path in (
        (at(chat_server, -1), "$.send_at"),
        (at(chat_server, 30 * 24 * HOUR + 1), "$.send_at"),
        ("tomorrow", "$.send_at"),
        ("2026-12-01T10:00:00", "$.send_at"),  # no offset: ambiguous
    ):
        response = await alice.post("/send", {"text": "x", "send_at": send_at})
        assert response.status_code == 400, send_at
        assert response.json()["error"]["fields"][0]["path"] == path
    assert (
        await alice.post("/send", {"text": "x", "to": "nobody", "send_at": at(chat_server, 60)})
    ).status_code == 404
    assert (
        await alice.post("/send", {"text": "", "send_at": at(chat_server, 60)})
    ).status_code == 400
    for i in range(100):
        response = await alice.post("/send", {"text": f"n{i}", "send_at": at(chat_server, 60 + i)})
        assert response.status_code == 202
    too_many = await alice.post("/send", {"text": "one more", "send_at": at(chat_server, 60)})
    assert too_many.status_code == 409 and too_many.json()["error"]["code"] == "too_many_scheduled"
    # A retried scheduling (same client_id, same body) makes it once.
    sid = (await alice.get("/scheduled")).json()["scheduled"][0]["id"]
    await alice.client.delete(f"/scheduled/{sid}", headers=alice.auth)
    body = {"text": "once", "send_at": at(chat_server, 90), "client_id": "s1"}
    first, second = await alice.post("/send", body), await alice.post("/send", body)
    assert first.status_code == second.status_code == 202 and first.json() == second.json()
    assert len((await alice.get("/scheduled")).json()["scheduled"]) == 100
