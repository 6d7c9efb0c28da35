"""Live delivery: long-poll (/updates) and server-sent events (/events) over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from tests.sse_client import EventStream, open_events
from trio_chat.domain import accounts
from trio_chat.errors import SlowConsumer


@asynccontextmanager
async def sse(user, server, **kw) -> AsyncIterator[EventStream]:
    async with open_events(server.host, server.port, user.token, **kw) as stream:
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["transfer-encoding"] == "chunked"
        yield stream


async def test_long_poll_answers_when_a_message_arrives(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    start = (await bob.post("/connect")).json()["cursor"]
    result: dict = {}

    async def poll() -> None:
        response = await bob.get("/updates", params={"since": start, "timeout": "60"})
        result.update(response.json())

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(poll)
            await trio.testing.wait_all_tasks_blocked()
            sent = await alice.send("wake up")
    assert [e["message"]["id"] for e in result["events"]] == [sent["id"]]
    assert result["cursor"] == result["events"][0]["cursor"]


async def test_long_poll_timeout_and_validation(make_user):
    alice = await make_user("alice")
    empty = await alice.get("/updates", params={"timeout": "0"})
    assert empty.status_code == 200 and empty.json()["events"] == []
    cursor = empty.json()["cursor"]
    for params, code in [
        ({"since": "abc"}, "invalid_cursor"),
        ({"since": "-1"}, "invalid_cursor"),
        ({"since": str(int(cursor) + 5)}, "invalid_cursor"),
        ({"timeout": "61"}, "invalid_request"),
        ({"timeout": "-1"}, "invalid_request"),
        ({"timeout": "nan"}, "invalid_request"),
    ]:
        response = await alice.get("/updates", params=params)
        assert response.status_code == 400, params
        assert response.json()["error"]["code"] == code, params


@pytest.mark.config(rate_limit_count=0)
async def test_updates_resume_loses_nothing_and_repeats_nothing(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    cursor = (await bob.get("/updates", params={"timeout": "0"})).json()["cursor"]
    sent = [await alice.send(f"m{i}") for i in range(7)]
    got: list[str] = []
    while len(got) < 7:
        body = (await bob.get("/updates", params={"since": cursor, "timeout": "1"})).json()
        got += [e["message"]["id"] for e in body["events"]]
        cursor = body["cursor"]
    assert got == [m["id"] for m in sent]
    again = (await bob.get("/updates", params={"since": cursor, "timeout": "0"})).json()
    assert again["events"] == []


async def test_sse_frames_and_resume_with_last_event_id(chat_server, make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    start = (await bob.post("/connect")).json()["cursor"]
    with trio.fail_after(10):
        async with sse(bob, chat_server, since=start) as stream:
            first = await alice.send("one")
            (event,) = await stream.read(1)
    assert event["type"] == "message" and event["message"]["id"] == first["id"]
    # Disconnected: three more messages; resuming from the last id gives exactly those.
    missed = [await alice.send(f"missed {i}") for i in range(3)]
    with trio.fail_after(10):
        async with sse(bob, chat_server, last_event_id=event["cursor"]) as stream:
            events = await stream.read(3)
            live = await alice.send("live")
            (after,) = await stream.read(1)
    assert [e["message"]["id"] for e in events] == [m["id"] for m in missed]
    assert after["message"]["id"] == live["id"]
    # Cursors are one space: the SSE id works for long-poll too.
    body = (await bob.get("/updates", params={"since": after["cursor"], "timeout": "0"})).json()
    assert body["events"] == []


async def test_comment_events(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    message = await alice.send("hi")
    cursor = (await bob.get("/updates", params={"timeout": "0"})).json()["cursor"]
    await alice.post("/comment", {"message_id": message["id"], "text": "+1"})
    body = (await bob.get("/updates", params={"since": cursor, "timeout": "0"})).json()
    (event,) = body["events"]
    assert event["type"] == "comment" and event["comment"]["message_id"] == message["id"]


async def test_a_third_user_never_sees_private_events(chat_server, make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    carol = await make_user("carol")
    carol_cursor = (await carol.get("/updates", params={"timeout": "0"})).json()["cursor"]
    polled: dict = {}

    async def poll() -> None:
        response = await carol.get("/updates", params={"since": carol_cursor, "timeout": "30"})
        polled.update(response.json())

    with trio.fail_after(10):
        # Carol listens live on both transports *before* anything private happens.
        async with sse(carol, chat_server) as live, trio.open_nursery() as nursery:
            nursery.start_soon(poll)
            await wait_until_subscribed(chat_server, 2)
            dm = await alice.send("secret", to="bob")
            await bob.post("/comment", {"message_id": dm["id"], "text": "secret reply"})
            public = await alice.send("public")
            (first_live,) = await live.read(1)
    # Each transport's first event is the public one: nothing private came before it.
    assert first_live["message"]["id"] == public["id"]
    assert [e["message"]["id"] for e in polled["events"]] == [public["id"]]
    body = (await carol.get("/updates", params={"since": carol_cursor, "timeout": "0"})).json()
    assert [e["message"]["id"] for e in body["events"]] == [public["id"]]
    with trio.fail_after(10):
        async with sse(carol, chat_server, since=carol_cursor) as stream:
            (only,) = await stream.read(1)
    assert only["message"]["id"] == public["id"]
    seen = (await bob.get("/updates", params={"since": carol_cursor, "timeout": "0"})).json()
    assert [e["type"] for e in seen["events"]] == ["message", "comment", "message"]


async def wait_until_subscribed(chat_server, count: int) -> None:
    while chat_server.service.hub.subscriber_count < count:
        await trio.sleep(0.001)


async def test_logout_ends_the_sessions_streams_and_polls_at_once(chat_server, make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    login = await bob.client.post("/login", json={"username": "bob", "password": "correct horse"})
    other = {"Authorization": f"Bearer {login.json()['token']}"}
    polled: list = []

    async def poll() -> None:
        polled.append(await bob.get("/updates", params={"timeout": "60"}))

    with trio.fail_after(10):
        async with (
            sse(bob, chat_server) as doomed,
            open_events(chat_server.host, chat_server.port, login.json()["token"]) as kept,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(poll)
            await wait_until_subscribed(chat_server, 3)
            assert (await bob.post("/logout")).status_code == 204
            # Ended at once, without waiting for any event or keep-alive.
            await doomed.read_to_end()
            await wait_until_subscribed_at_most(chat_server, 1)
            sent = await alice.send("for bob's other session only", to="bob")
            (event,) = await kept.read(1)
    assert event["message"]["id"] == sent["id"]
    assert polled[0].status_code == 401
    assert (await bob.get("/status")).status_code == 401
    assert (await bob.client.get("/status", headers=other)).status_code == 200


async def wait_until_subscribed_at_most(chat_server, count: int) -> None:
    while chat_server.service.hub.subscriber_count > count:
        await trio.sleep(0.001)


async def test_delivery_checks_the_session_not_only_the_token_it_started_with(
    chat_server, make_user
):
    # Even if a revocation did not reach the hub, a stream of an ended session gets nothing.
    alice = await make_user("alice")
    bob = await make_user("bob")
    with trio.fail_after(10):
        async with sse(bob, chat_server) as stream:
            await wait_until_subscribed(chat_server, 1)
            del chat_server.service.state.sessions[accounts.token_hash(bob.token)]
            await alice.send("too late for this session", to="bob")
            await stream.read_to_end()
    assert stream.comments == 0


async def test_delivered_events_count_as_read(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    cursor = (await bob.post("/connect")).json()["cursor"]
    sent = await alice.send("seen live")
    body = (await bob.get("/updates", params={"since": cursor, "timeout": "0"})).json()
    assert body["events"][0]["message"]["id"] == sent["id"]
    connect = (await bob.post("/connect")).json()
    assert connect["unread"] == []
    assert connect["history"][-1]["id"] == sent["id"]


async def test_fan_out_to_several_streams_of_one_user(chat_server, make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    other_session = await bob.client.post(
        "/login", json={"username": "bob", "password": "correct horse"}
    )
    tokens = [bob.token, other_session.json()["token"]]
    results: list[list[dict]] = []

    async def listen(token: str, ready: trio.Event) -> None:
        async with open_events(chat_server.host, chat_server.port, token) as stream:
            ready.set()
            results.append(await stream.read(1))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for token in tokens:
                ready = trio.Event()
                nursery.start_soon(listen, token, ready)
                await ready.wait()
            await trio.testing.wait_all_tasks_blocked()
            sent = await alice.send("to every tab")
    assert [r[0]["message"]["id"] for r in results] == [sent["id"], sent["id"]]


@pytest.mark.config(stream_buffer_events=4, rate_limit_count=0)
async def test_slow_consumer_is_cut_off_without_delaying_others(chat_server, make_user):
    """A stream that falls more than its buffer behind (its writes are stuck) is cut off
    once it gets going again; other streams get every event meanwhile."""
    service = chat_server.service
    alice = await make_user("alice")
    bob = await make_user("bob")
    user = service.state.find_user("bob")
    stuck, release = trio.Event(), trio.Event()
    outcome: list[Exception] = []

    async def stuck_writer(events) -> None:
        stuck.set()
        await release.wait()

    async def slow_stream() -> None:
        try:
            session = accounts.token_hash(bob.token)
            await service.delivery.stream(user, session, service.committed_cursor, stuck_writer)
        except Exception as exc:
            outcome.append(exc)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(slow_stream)
            async with sse(bob, chat_server) as stream:
                await trio.testing.wait_all_tasks_blocked()
                sent = [await alice.send(f"m{i}") for i in range(10)]
                events = await stream.read(10)
                release.set()
                await trio.testing.wait_all_tasks_blocked()
                assert service.hub.subscriber_count == 1  # the slow one is gone
    assert [e["message"]["id"] for e in events] == [m["id"] for m in sent]
    assert stuck.is_set()
    assert len(outcome) == 1 and isinstance(outcome[0], SlowConsumer)


async def test_streams_end_cleanly_at_shutdown(chat_server, make_user):
    bob = await make_user("bob")
    with trio.fail_after(10):
        async with sse(bob, chat_server) as stream:
            await trio.testing.wait_all_tasks_blocked()
            chat_server.server.shutdown()
            await stream.read_to_end()
    assert stream.ended  # the chunked body was ended properly, not cut
    await chat_server.stopped.wait()


async def test_empty_cursor_is_invalid_on_both_transports(chat_server, make_user):
    bob = await make_user("bob")
    polled = await bob.get("/updates", params={"since": "", "timeout": "0"})
    assert polled.status_code == 400 and polled.json()["error"]["code"] == "invalid_cursor"
    async with open_events(chat_server.host, chat_server.port, bob.token, since="") as stream:
        assert stream.status == 400
        assert b"invalid_cursor" in await stream.body()


async def test_idle_streams_get_a_keep_alive_comment_at_least_every_15_s(
    mock_clock, chat_server, make_user
):
    bob = await make_user("bob")
    config = chat_server.service.config
    assert config.sse_keepalive_interval <= 15
    async with sse(bob, chat_server) as stream:
        # Well past the send timeout: the keep-alive writes keep the stream alive.
        for _ in range(int(config.stream_send_timeout / config.sse_keepalive_interval) + 3):
            await trio.testing.wait_all_tasks_blocked()
            mock_clock.jump(config.sse_keepalive_interval)
            await stream.read_comment()
        assert chat_server.service.hub.subscriber_count == 1
        sent = await (await make_user("alice")).send("still there?")
        (event,) = await stream.read(1)
    assert event["message"]["id"] == sent["id"]


async def test_replay_shows_messages_as_they_were_sent_then_their_comments(make_user):
    alice = await make_user("alice")
    start = (await alice.get("/updates", params={"timeout": "0"})).json()["cursor"]
    message = await alice.send("hi")
    await alice.post("/comment", {"message_id": message["id"], "text": "first!"})
    body = (await alice.get("/updates", params={"since": start, "timeout": "0"})).json()
    sent, commented = body["events"]
    assert sent["message"]["id"] == message["id"] and sent["message"]["comments"] == []
    assert commented["type"] == "comment" and commented["comment"]["text"] == "first!"
    # /messages shows the message as it is now.
    (now,) = (await alice.get("/messages")).json()["messages"]
    assert [c["text"] for c in now["comments"]] == ["first!"]


@pytest.mark.parametrize("writes", ["whole", "in part", "not at all"])
async def test_live_events_go_out_from_the_publisher_in_order(
    writes, chat_server, make_user, monkeypatch
):
    # A waiting stream is handed each event by the publisher, which writes it at once
    # without waking the stream's task; a write that takes part of it leaves the rest to the
    # task's next write (a keep-alive), and one that takes nothing hands the event to the task.
    from trio_chat.http import connection
    from trio_chat.service.live import Subscriber

    real_write = connection.os.write
    woken = 0
    real_wake = Subscriber._wake

    def wake(self: Subscriber) -> None:
        nonlocal woken
        woken += self._waiter is not None
        real_wake(self)

    def write(fd: int, data: bytes) -> int:
        if writes == "in part":
            return real_write(fd, data[:7])
        if writes == "not at all":
            raise BlockingIOError
        return real_write(fd, data)

    monkeypatch.setattr(Subscriber, "_wake", wake)
    monkeypatch.setattr(connection.os, "write", write)
    alice = await make_user("alice")
    bob = await make_user("bob")
    with trio.fail_after(10):
        async with sse(bob, chat_server) as stream:
            await trio.testing.wait_all_tasks_blocked()
            woken = 0
            sent = []
            for i in range(5):
                sent.append(await alice.send(f"m{i} ✓"))
                await trio.testing.wait_all_tasks_blocked()
            events = await stream.read(5)
    assert [e["message"]["id"] for e in events] == [m["id"] for m in sent]
    assert [e["message"]["text"] for e in events] == [f"m{i} ✓" for i in range(5)]
    # Woken: never when the publisher wrote it all; once per event otherwise.
    assert woken == {"whole": 0, "in part": 5, "not at all": 5}[writes]
    if writes == "in part":
        assert stream.comments >= 4  # each debt paid with a keep-alive (the last unread yet)
