"""Several devices per user: sessions, shared read state, idempotent writes (issue: devices).

Alice has two sessions (A and B); Carol is a third user who must see none of it.
"""

from __future__ import annotations

import time

import httpx
import pytest
import trio
import trio.testing

from tests.conftest import PASSWORD, User, register
from tests.sse_client import open_events

HOUR = 3600


async def login(client: httpx.AsyncClient, name: str, device: str | None = None) -> User:
    body = {"username": name, "password": PASSWORD}
    if device is not None:
        body["device"] = device
    response = await client.post("/login", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["session"].startswith("s")
    return User(name, response.json()["token"], client)


async def wait_subscribed(server, count: int) -> None:
    while server.service.hub.subscriber_count < count:
        await trio.sleep(0.001)


async def test_sessions_are_listed_per_device_newest_first(http):
    a = await register(http, "alice")
    b = await login(http, "alice", device="laptop")
    await register(http, "carol")
    listed = (await b.get("/sessions")).json()["sessions"]
    assert [s["device"] for s in listed] == ["laptop", "unnamed"]
    assert [s["current"] for s in listed] == [True, False]
    assert all(s["created_at"] <= s["last_seen_at"] for s in listed)
    assert (await a.get("/sessions")).json()["sessions"][1]["current"] is True
    for device in ("", "x" * 65, "tab\there"):
        response = await http.post(
            "/login", json={"username": "alice", "password": PASSWORD, "device": device}
        )
        assert response.status_code == 400 and response.json()["error"]["fields"][0]["path"] == (
            "$.device"
        )


async def test_a_send_from_one_device_reaches_the_other_live_with_its_client_id(chat_server, http):
    a = await register(http, "alice")
    b = await login(http, "alice")
    carol = await register(http, "carol")
    with trio.fail_after(10):
        async with open_events(chat_server.host, chat_server.port, b.token) as on_b:
            await wait_subscribed(chat_server, 1)
            sent = await a.post("/send", {"text": "from A", "to": "carol", "client_id": "c-1"})
            assert sent.status_code == 201
            (event,) = await on_b.read(1)
    assert event["message"]["id"] == sent.json()["message"]["id"]
    assert event["message"]["client_id"] == "c-1" and event["message"]["author"] == "alice"
    # Carol got it too, of course; and her unread count shows it.
    assert (await carol.get("/status")).json()["unread"] == {"general": 0, "dm:alice:carol": 1}


async def test_read_on_one_device_moves_every_device_and_is_told_to_the_others(chat_server, http):
    a = await register(http, "alice")
    b = await login(http, "alice")
    bob = await register(http, "bob")
    carol = await register(http, "carol")
    for user in (a, carol):
        await user.post("/connect")
    sent = [(await bob.send(f"m{i}")) for i in range(3)]
    private = await bob.send("psst", to="alice")
    assert (await a.get("/status")).json()["unread"] == {"general": 3, "dm:alice:bob": 1}

    with trio.fail_after(10):
        async with (
            open_events(chat_server.host, chat_server.port, a.token) as on_a,
            open_events(chat_server.host, chat_server.port, b.token) as on_b,
            open_events(chat_server.host, chat_server.port, carol.token) as on_carol,
        ):
            await wait_subscribed(chat_server, 3)
            response = await a.post("/read", {"chat": "general", "up_to": sent[1]["id"]})
            assert response.status_code == 204
            (read,) = await on_b.read(1)
            # A (the reader) and Carol get nothing of it: the next event each sees is this.
            marker = await bob.send("marker")
            assert (await on_a.read(1))[0]["message"]["id"] == marker["id"]
            assert (await on_carol.read(1))[0]["message"]["id"] == marker["id"]
            assert (await on_b.read(1))[0]["message"]["id"] == marker["id"]
    assert read["type"] == "read" and read["chat"] == "general" and read["up_to"] == sent[1]["id"]
    status_a = (await a.get("/status")).json()["unread"]
    status_b = (await b.get("/status")).json()["unread"]
    # m2 and the marker were not read by /read (the marker went out live to both: delivered).
    assert status_a == status_b == {"general": 0, "dm:alice:bob": 1}
    # It never moves back; a message of another chat, or one you cannot see, is 404.
    assert (await b.post("/read", {"chat": "general", "up_to": sent[0]["id"]})).status_code == 204
    assert (await a.get("/status")).json()["unread"]["general"] == 0
    wrong = await a.post("/read", {"chat": "general", "up_to": private["id"]})
    assert wrong.status_code == 404
    assert (
        await carol.post("/read", {"chat": "dm:alice:bob", "up_to": private["id"]})
    ).status_code == 404
    assert (
        await a.post("/read", {"chat": "dm:alice:bob", "up_to": private["id"]})
    ).status_code == 204
    assert (await b.get("/status")).json()["unread"] == {"general": 0, "dm:alice:bob": 0}
    # And /connect agrees: nothing unread.
    assert (await b.post("/connect")).json()["unread"] == []


async def test_own_messages_are_never_unread_on_any_device(http):
    a = await register(http, "alice")
    b = await login(http, "alice")
    bob = await register(http, "bob")
    await a.post("/connect")
    await bob.send("before")
    await a.send("mine")  # sent while "before" is unread: "before" stays unread, "mine" not
    await a.send("mine too", to="bob")
    assert (await b.get("/status")).json()["unread"] == {"general": 1, "dm:alice:bob": 0}
    assert [m["text"] for m in (await b.post("/connect")).json()["unread"]] == ["before"]


async def test_revoking_a_device_ends_its_stream_within_a_second(chat_server, http):
    a = await register(http, "alice")
    b = await login(http, "alice", device="phone")
    bob = await register(http, "bob")
    phone = next(s for s in (await a.get("/sessions")).json()["sessions"] if not s["current"])
    assert phone["device"] == "phone"
    with trio.fail_after(10):
        async with (
            open_events(chat_server.host, chat_server.port, b.token) as on_b,
            open_events(chat_server.host, chat_server.port, a.token) as on_a,
        ):
            await wait_subscribed(chat_server, 2)
            assert (
                await a.client.delete(f"/sessions/{phone['id']}", headers=a.auth)
            ).status_code == 204
            with trio.fail_after(1):
                await on_b.read_to_end()
            sent = await bob.send("to whoever is left", to="alice")
            assert (await on_a.read(1))[0]["message"]["id"] == sent["id"]
    assert (await b.get("/status")).status_code == 401
    assert [s["device"] for s in (await a.get("/sessions")).json()["sessions"]] == ["unnamed"]
    # Unknown, already ended, or someone else's: 404 all the same.
    other = await register(http, "mallory")
    mine = (await a.get("/sessions")).json()["sessions"][0]["id"]
    for who, session in ((a, phone["id"]), (a, "nope"), (other, mine)):
        response = await who.client.delete(f"/sessions/{session}", headers=who.auth)
        assert response.status_code == 404 and response.json()["error"]["code"] == (
            "session_not_found"
        )
    assert (await a.get("/status")).status_code == 200


async def test_a_device_logging_out_leaves_the_others_working(http):
    a = await register(http, "alice")
    b = await login(http, "alice")
    assert (await b.post("/logout")).status_code == 204
    assert (await b.get("/status")).status_code == 401
    assert (await a.get("/status")).status_code == 200
    assert (await a.post("/send", {"text": "still here"})).status_code == 201


async def test_a_repeated_client_id_returns_the_original_and_changes_nothing(chat_server, http):
    a = await register(http, "alice")
    b = await login(http, "alice")
    await register(http, "bob")
    first = await a.post("/send", {"text": "once", "client_id": "k"})
    assert first.status_code == 201
    limit = first.headers["x-ratelimit-remaining"]
    cursor = chat_server.service.committed_cursor
    # The same body from another device of the same user: the same message, 200.
    again = await b.post("/send", {"client_id": "k", "text": "once"})
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers["x-ratelimit-remaining"] == limit  # counted once
    assert chat_server.service.committed_cursor == cursor  # no event, nothing written
    conflict = await a.post("/send", {"text": "other", "client_id": "k"})
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "client_id_conflict"
    assert (
        await a.post("/send", {"text": "once", "to": "bob", "client_id": "k"})
    ).status_code == 409
    # Comments too, and a key is per kind of request.
    message_id = first.json()["message"]["id"]
    c1 = await a.post("/comment", {"message_id": message_id, "text": "+1", "client_id": "c"})
    c2 = await b.post("/comment", {"message_id": message_id, "text": "+1", "client_id": "c"})
    assert (c1.status_code, c2.status_code) == (201, 200) and c1.json() == c2.json()
    assert (
        await a.post("/comment", {"message_id": message_id, "text": "+1", "client_id": "k"})
    ).status_code == 409
    messages = (await a.get("/messages")).json()["messages"]
    assert [m["text"] for m in messages] == ["once"] and len(messages[0]["comments"]) == 1
    # Another user's key of the same name is theirs alone.
    bob = await login(http, "bob")
    assert (await bob.post("/send", {"text": "once", "client_id": "k"})).status_code == 201
    for bad in ("", "x" * 65):
        response = await a.post("/send", {"text": "hi", "client_id": bad})
        assert response.status_code == 400


async def test_concurrent_repeats_make_one_message(chat_server, http):
    a = await register(http, "alice")
    answers: list[httpx.Response] = []

    async def send() -> None:
        answers.append(await a.post("/send", {"text": "twice at once", "client_id": "same"}))

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(send)
    assert sorted(r.status_code for r in answers) == [200, 200, 200, 200, 201]
    assert len({r.json()["message"]["id"] for r in answers}) == 1
    assert len((await a.get("/messages")).json()["messages"]) == 1


async def test_a_client_id_is_forgotten_after_24_hours(mock_clock, chat_server, http):
    a = await register(http, "alice")
    first = await a.post("/send", {"text": "daily", "client_id": "d"})
    mock_clock.jump(24 * HOUR - 1)
    assert (await a.post("/send", {"text": "daily", "client_id": "d"})).status_code == 200
    mock_clock.jump(1)
    later = await a.post("/send", {"text": "daily", "client_id": "d"})
    assert later.status_code == 201
    assert later.json()["message"]["id"] != first.json()["message"]["id"]
    # The hourly sweep deletes the day-old record from the store.
    store = chat_server.service.store
    assert await store.client_requests_before(chat_server.service.now() + 1) == ["alice/d"]
    mock_clock.jump(25 * HOUR)
    for _ in range(400):  # the sweep reads in a worker thread: let it run (real time)
        await trio.testing.wait_all_tasks_blocked()
        await store.settled()
        if not await store.client_requests_before(chat_server.service.now() + 1):
            break
        await trio.to_thread.run_sync(time.sleep, 0.005)
    assert await store.client_requests_before(chat_server.service.now() + 1) == []


@pytest.mark.config(rate_limit_count=1)
async def test_a_repeat_is_answered_even_once_the_limit_would_refuse_a_new_send(http):
    a = await register(http, "alice")
    assert (await a.post("/send", {"text": "one", "client_id": "r"})).status_code == 201
    assert (await a.post("/send", {"text": "two"})).status_code == 429
    assert (await a.post("/send", {"text": "one", "client_id": "r"})).status_code == 200
