"""State survives a restart: same users, tokens, messages, ids, comments and read positions
-- on either store (with Redis: every process stopped and started again)."""

from __future__ import annotations

import attrs
import httpx
import pytest

from tests.conftest import STORES, either_store, register, start_server


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> str | None:
    return either_store(request)


async def test_restart_keeps_everything(nursery, config):
    server = await start_server(nursery, config)
    async with httpx.AsyncClient(base_url=server.url) as client:
        alice = await register(client, "alice")
        bob = await register(client, "bob")
        await bob.post("/connect")
        public = await alice.send("before restart")
        private = await alice.send("private", to="bob")
        comment = (await bob.post("/comment", {"message_id": public["id"], "text": "+1"})).json()
        before = (await bob.get("/messages")).json()
        tokens = (alice.token, bob.token)
    await server.stop()

    server = await start_server(nursery, config)
    async with httpx.AsyncClient(base_url=server.url) as client:
        alice_h = {"Authorization": f"Bearer {tokens[0]}"}
        bob_h = {"Authorization": f"Bearer {tokens[1]}"}
        assert (await client.get("/messages", headers=bob_h)).json() == before
        connect = (await client.post("/connect", headers=bob_h)).json()
        assert [m["id"] for m in connect["unread"]] == [public["id"], private["id"]]
        assert connect["unread"][0]["comments"] == [comment["comment"]]
        # Ids keep counting where they were; nothing is reused.
        response = await client.post("/send", headers=alice_h, json={"text": "after"})
        assert response.status_code == 201
        new_id = response.json()["message"]["id"]
        assert new_id not in {public["id"], private["id"], comment["comment"]["id"]}
        login = await client.post("/login", json={"username": "alice", "password": "correct horse"})
        assert login.status_code == 200
        taken = await client.post("/register", json={"username": "Bob", "password": "x" * 8})
        assert taken.status_code == 409
    await server.stop()

    # What /connect marked as read stays read.
    server = await start_server(nursery, config)
    async with httpx.AsyncClient(base_url=server.url) as client:
        again = (await client.post("/connect", headers=bob_h)).json()
        assert again["unread"] == [response.json()["message"]]
        assert public["id"] in [m["id"] for m in again["history"]]
    await server.stop()


async def test_comments_on_the_oldest_and_middle_messages_survive_a_restart(nursery, config):
    # A comment rewrites its message in the log; that must not move the chat's head back to
    # the commented message (which lost every newer message at the next start).
    server = await start_server(nursery, config)
    async with httpx.AsyncClient(base_url=server.url) as client:
        alice = await register(client, "alice")
        sent = [await alice.send(f"m{i}") for i in range(1, 5)]
        for target in (sent[0], sent[1]):  # the oldest and a middle one
            response = await alice.post("/comment", {"message_id": target["id"], "text": "re"})
            assert response.status_code == 201
        before = (await alice.get("/messages")).json()["messages"]
        token = alice.token
    assert [m["id"] for m in before] == [m["id"] for m in sent]
    await server.stop()

    for round_ in range(2):
        server = await start_server(nursery, config)
        async with httpx.AsyncClient(base_url=server.url) as client:
            auth = {"Authorization": f"Bearer {token}"}
            after = (await client.get("/messages", headers=auth)).json()["messages"]
            assert after == before
            # A send after the restart takes a new place; it overwrites nobody's.
            response = await client.post("/send", headers=auth, json={"text": f"new {round_}"})
            assert response.status_code == 201
            before = [*before, response.json()["message"]]
            assert (await client.get("/messages", headers=auth)).json()["messages"] == before
        await server.stop()


async def test_devices_read_state_and_client_ids_survive_a_restart(nursery, config):
    server = await start_server(nursery, config)
    async with httpx.AsyncClient(base_url=server.url) as client:
        reply = await client.post(
            "/register", json={"username": "alice", "password": "correct horse", "device": "desk"}
        )
        desk = {"Authorization": f"Bearer {reply.json()['token']}"}
        reply = await client.post(
            "/login", json={"username": "alice", "password": "correct horse", "device": "phone"}
        )
        phone = {"Authorization": f"Bearer {reply.json()['token']}"}
        bob = await register(client, "bob")
        await client.post("/connect", headers=desk)
        first, second = await bob.send("one"), await bob.send("two")
        read = await client.post(
            "/read", headers=phone, json={"chat": "general", "up_to": first["id"]}
        )
        assert read.status_code == 204
        sent = await client.post(
            "/send", headers=desk, json={"text": "idempotent", "client_id": "k1"}
        )
        sessions = (await client.get("/sessions", headers=desk)).json()
        unread = (await client.get("/status", headers=phone)).json()["unread"]
    assert unread == {"general": 1}
    await server.stop()

    server = await start_server(nursery, config)
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.get("/sessions", headers=desk)).json() == sessions
        assert (await client.get("/status", headers=desk)).json()["unread"] == unread
        again = await client.post(
            "/send", headers=phone, json={"text": "idempotent", "client_id": "k1"}
        )
        assert again.status_code == 200 and again.json() == sent.json()
        connect = (await client.post("/connect", headers=phone)).json()
        assert [m["id"] for m in connect["unread"]] == [second["id"]]
    await server.stop()


async def test_a_restarted_server_reads_the_newest_page_before_it_is_ready(nursery, config):
    # The first /connect after start must not pay for cold code paths (bench coldstart): the
    # newest page of the common chat is read into the cache before listening, writing nothing.
    config = attrs.evolve(config, history_size=3)
    server = await start_server(nursery, config)
    async with httpx.AsyncClient(base_url=server.url) as client:
        alice = await register(client, "alice")
        for i in range(5):
            await alice.send(f"m{i}")
    await server.stop()

    server = await start_server(nursery, config)
    store = server.service.store
    assert store.commits == 0
    head = server.service.core.committed_heads["general"]
    cursors = await store.chat_cursors("general", range(head - 2, head + 1))
    assert [store._events.get(c).message.text for c in cursors] == ["m2", "m3", "m4"]
    assert store._events.get((await store.chat_cursors("general", [head - 3]))[0]) is None
    await server.stop()
