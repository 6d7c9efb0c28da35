"""Message lifetime, in virtual time: a message lives --message-ttl after it was delivered to
each reader (after it was sent, for its author), never expires for someone who has not
received it, and leaves the disk once expired for everyone it concerned."""

from __future__ import annotations

import time

import attrs
import httpx
import trio
import trio.testing

from tests.conftest import register, start_server
from tests.sse_client import open_events
from trio_chat.clock import TrioClock, format_ms
from trio_chat.domain.lifetime import STEPS, Delivered

TTL = 2560  # seconds: a slice of the lifetime (TTL / STEPS) is then exactly 10 s
WALL = 1_800_000_000.0  # a start on a slice boundary, so expiry times are exact
SLICE = TTL / STEPS


async def settle(server) -> None:
    """Let due timers run, their reads (in worker threads) finish and their writes land."""
    for _ in range(5):
        await trio.testing.wait_all_tasks_blocked()
        await server.service.store.settled()
        await trio.to_thread.run_sync(time.sleep, 0.002)
    await trio.testing.wait_all_tasks_blocked()


def test_delivery_steps_round_late_never_early_and_stay_few() -> None:
    ttl = 2_560_000
    record = Delivered()
    for i in range(1, 10_000):
        record = record.moved(i, now=i * 1000, ttl=ttl)
    assert len(record.steps) <= STEPS + 1
    # Delivered at 4.5 s: recorded at the next 10 s boundary, so it expires no earlier.
    record = Delivered().moved(7, now=4_500, ttl=ttl)
    assert record.delivered_at(7) == 10_000
    assert not record.expired(7, now=4_500 + ttl, ttl=ttl)
    assert record.expired(7, now=10_000 + ttl, ttl=ttl)
    assert record.delivered_at(8) is None and not record.expired(8, now=10**12, ttl=ttl)
    # Old steps fold into `gone`; a position never moves back.
    later = record.moved(9, now=20_000 + ttl, ttl=ttl)
    assert later.gone == 7 and later.moved(3, now=10**9, ttl=ttl) is later


async def test_a_message_lives_ttl_after_each_reader_received_it(mock_clock, nursery, config):
    config = attrs.evolve(config, message_ttl=TTL)
    clock = TrioClock(wall_start=WALL)
    server = await start_server(nursery, config, clock)
    async with httpx.AsyncClient(base_url=server.url) as client:
        alice, bob, carol = [await register(client, n) for n in ("alice", "bob", "carol")]
        for user in (alice, bob, carol):
            await user.post("/connect")
        sent = await alice.send("short-lived")
        t0 = server.service.now()
        assert sent["expires_at"] == format_ms(t0 + TTL * 1000)  # the author: from sending

        mock_clock.jump(600)  # bob reads 10 minutes later; carol not yet
        (unread,) = (await bob.post("/connect")).json()["unread"]
        t_bob = server.service.now()
        assert unread["expires_at"] == format_ms(t_bob + TTL * 1000)
        shown = (await carol.get("/messages")).json()["messages"][0]
        assert shown["id"] == sent["id"] and shown["expires_at"] is None  # not delivered yet
        token = (alice.token, bob.token, carol.token)
    await server.stop()  # a restart in between changes nothing

    mock_clock.jump(TTL - 600 - 1)
    server = await start_server(nursery, config, clock)
    async with httpx.AsyncClient(base_url=server.url) as client:
        alice.client = bob.client = carol.client = client
        assert [m["id"] for m in (await bob.get("/messages")).json()["messages"]] == [sent["id"]]
        mock_clock.jump(1)  # t0 + TTL: gone for its author, not for bob
        assert (await alice.get("/messages")).json()["messages"] == []
        assert (await bob.get("/messages")).json()["messages"] != []
        mock_clock.jump(600)  # t_bob + TTL: gone for bob, on every endpoint
        assert (await bob.get("/messages")).json()["messages"] == []
        assert (await bob.post("/connect")).json()["history"] == []
        gone = await bob.post("/comment", {"message_id": sent["id"], "text": "?"})
        assert gone.status_code == 404
        replay = (await bob.get("/updates", params={"since": "0", "timeout": "0"})).json()
        assert sent["id"] not in str(replay["events"])
        # Carol never received it: it waits for her, however long she is away.
        mock_clock.jump(10 * TTL)
        await settle(server)
        (kept,) = (await carol.post("/connect")).json()["unread"]
        assert kept["id"] == sent["id"]
        assert (token[0], token[1]) == (alice.token, bob.token)
    await server.stop()


async def test_expired_for_everyone_it_leaves_the_disk(mock_clock, nursery, config):
    config = attrs.evolve(config, message_ttl=TTL)
    clock = TrioClock(wall_start=WALL)
    server = await start_server(nursery, config, clock)
    async with httpx.AsyncClient(base_url=server.url) as client:
        alice, bob = await register(client, "alice"), await register(client, "bob")
        await bob.post("/connect")
        private = await alice.send("psst", to="bob")
        public = await alice.send("hello")
        comment = await bob.post("/comment", {"message_id": public["id"], "text": "+1"})
        comment_cursor = int(comment.json()["comment"]["id"][1:])
        cursors = [int(m["id"][1:]) for m in (private, public)]
        store = server.service.store

        mock_clock.jump(2 * TTL)  # alice's copies have expired; bob has not read them yet
        await settle(server)
        assert [e is not None for e in await store.events(cursors)] == [True, True]

        await bob.post("/connect")  # delivered to bob now
        await server.stop()
        mock_clock.jump(TTL - SLICE)  # restart while they are still bob's to read
    server = await start_server(nursery, config, clock)
    async with httpx.AsyncClient(base_url=server.url) as client:
        bob.client = client
        await settle(server)
        store = server.service.store
        assert len((await bob.get("/messages", params={"with": "alice"})).json()["messages"]) == 1
        mock_clock.jump(2 * SLICE)  # now expired for everyone it concerned...
        await settle(server)
        mock_clock.jump(SLICE)  # ...and the next expiry pass deletes it
        await settle(server)
        assert await store.events([*cursors, comment_cursor]) == [None, None, None]
        assert await store.chat_cursors("general", [1]) == [None]
        assert (await bob.get("/messages", params={"with": "alice"})).json()["messages"] == []
        # New messages still work, numbered on.
        assert (await bob.post("/send", {"text": "still here"})).status_code == 201
        assert [m["text"] for m in (await bob.get("/messages")).json()["messages"]] == [
            "still here"
        ]
    await server.stop()


async def test_a_messages_comments_expire_with_it_live_and_on_replay(mock_clock, nursery, config):
    config = attrs.evolve(config, message_ttl=TTL)
    clock = TrioClock(wall_start=WALL)
    server = await start_server(nursery, config, clock)
    hub = server.service.hub
    async with httpx.AsyncClient(base_url=server.url) as client:
        alice, bob, carol = [await register(client, n) for n in ("alice", "bob", "carol")]
        for user in (alice, bob, carol):
            await user.post("/connect")
        old = await alice.send("old news")
        await bob.post("/connect")  # delivered to bob now; carol has not read it
        mock_clock.jump(TTL + SLICE)  # expired for bob (and for alice, its author)
        await settle(server)
        start = str(server.service.committed_cursor)

        async with (
            open_events(server.host, server.port, bob.token) as bob_stream,
            open_events(server.host, server.port, carol.token) as carol_stream,
        ):
            while hub.subscriber_count < 2:  # both listen before the comment is made
                await settle(server)
            said = await carol.post("/comment", {"message_id": old["id"], "text": "still?"})
            assert said.status_code == 201
            await alice.send("new")
            # Carol, for whom the message lives, gets the comment; bob only what came next.
            carol_got = await carol_stream.read(2)
            assert [e["type"] for e in carol_got] == ["comment", "message"]
            assert carol_got[0]["comment"]["text"] == "still?"
            (bob_got,) = await bob_stream.read(1)
            assert bob_got["type"] == "message" and bob_got["message"]["text"] == "new"

        # Resuming from before the comment: the same for bob, on both kinds of replay.
        replay = (await bob.get("/updates", params={"since": start, "timeout": "0"})).json()
        assert [e["type"] for e in replay["events"]] == ["message"]
        async with open_events(server.host, server.port, bob.token, since=start) as resumed:
            (again,) = await resumed.read(1)
            assert again["message"]["text"] == "new"
        replay = (await carol.get("/updates", params={"since": start, "timeout": "0"})).json()
        assert [e["type"] for e in replay["events"]] == ["comment", "message"]
    await server.stop()
