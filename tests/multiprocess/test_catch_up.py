"""Two servers on one Redis in one test, with the change log's followers switched off: what
one server wrote reaches the other only by catching up (when it takes the write lease, or
when a read would fail). So these pass only if catching up does its job, with no timing."""

from __future__ import annotations

import logging
import time

import attrs
import httpx
import pytest
import trio

from tests.conftest import PASSWORD, User, register, start_server
from tests.redis_server import RedisServer
from trio_chat.storage import redis_store
from trio_chat.storage.redis_store import RedisStore


@pytest.fixture
async def two_servers(nursery, config, redis_url, monkeypatch):
    monkeypatch.setattr(RedisStore, "_follow", lambda self: trio.sleep_forever())
    shared = attrs.evolve(config, store=redis_url, rate_limit_count=20)
    a = await start_server(nursery, shared)
    b = await start_server(nursery, shared)
    async with httpx.AsyncClient(base_url=a.url) as on_a, httpx.AsyncClient(base_url=b.url) as on_b:
        yield on_a, on_b
    a.server.shutdown()
    b.server.shutdown()


async def test_a_token_or_user_made_on_one_process_works_at_once_on_another(two_servers):
    on_a, on_b = two_servers
    alice = await register(on_a, "alice")
    status = await on_b.get("/status", headers=alice.auth)
    assert status.status_code == 200, status.text
    login = await on_b.post("/login", json={"username": "alice", "password": PASSWORD})
    assert login.status_code == 200, login.text
    assert (await on_b.get("/status", headers={"Authorization": "Bearer nope"})).status_code == 401


async def test_writes_are_made_on_the_latest_state(two_servers):
    on_a, on_b = two_servers
    alice = await register(on_a, "alice")
    for i in range(19):
        await alice.send(f"m{i}")
    on_b_alice = User("alice", alice.token, on_b)
    twentieth = await on_b_alice.send("m19")  # B knows the first 19 only by catching up
    response = await alice.post("/send", {"text": "m20"})  # and A the 20th
    assert response.status_code == 429, response.text
    # One order, one numbering: B's message follows A's, whichever process asks.
    page = (await on_b_alice.get("/messages", params={"limit": "100"})).json()["messages"]
    assert [m["text"] for m in page] == [f"m{i}" for i in range(20)]
    assert page[-1]["id"] == twentieth["id"]
    # A comment through A on B's message: A catches up before it looks the message up.
    comment = await alice.post("/comment", {"message_id": twentieth["id"], "text": "+1"})
    assert comment.status_code == 201, comment.text
    # Names are unique across processes.
    taken = await on_b.post("/register", json={"username": "ALICE", "password": PASSWORD})
    assert taken.status_code == 409


@pytest.mark.config(rate_limit_count=0)
async def test_both_processes_keep_writing_under_load_with_the_lease_handed_over(
    nursery, config, redis_url
):
    # Followers on, both servers busy at once: the lease goes back and forth (a process
    # that held it for 50 ms while the other waits gives it up). A write nested in a write
    # (send -> post) once waited for that hand-over, i.e. for itself: everything stopped.
    shared = attrs.evolve(config, store=redis_url)
    a = await start_server(nursery, shared)
    b = await start_server(nursery, shared)
    async with httpx.AsyncClient(base_url=a.url) as on_a, httpx.AsyncClient(base_url=b.url) as on_b:
        users = [await register(on_a, f"u{i}") for i in range(8)]
        sent: list[str] = []

        async def storm(i: int) -> None:
            client = on_a if i % 2 else on_b
            for k in range(60):
                text = f"u{i} #{k}"
                response = await client.post("/send", json={"text": text}, headers=users[i].auth)
                assert response.status_code == 201, response.text
                sent.append(text)

        with trio.fail_after(60):
            async with trio.open_nursery() as storms:
                for i in range(8):
                    storms.start_soon(storm, i)
        assert len(sent) == 480
        page = await on_a.get("/messages", params={"limit": "100"}, headers=users[0].auth)
        assert page.json()["messages"][-1]["text"] in sent
        assert a.service.core.committed_cursor == b.service.core.committed_cursor
    a.server.shutdown()
    b.server.shutdown()


# When its server goes away, coredis leaves things of its own for the collector to complain
# about (anyio memory streams of the broken connections, once a script-reload error):
# warnings about its internals, raised in no task of ours.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_while_redis_is_away_writes_answer_503_and_nothing_changes(
    nursery, config, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(redis_store, "LEASE_TTL_MS", 500)  # a lease left behind expires soon
    redis = RedisServer(tmp_path / "redis")
    port = redis.port
    try:
        server = await start_server(nursery, attrs.evolve(config, store=redis.url))
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            alice = await register(client, "alice")
            first = await alice.send("before")
            redis.stop()
            with caplog.at_level(logging.CRITICAL):
                response = await alice.post("/send", {"text": "while away"})
                assert response.status_code == 503, response.text
                assert response.json()["error"]["code"] == "storage_unavailable"
                # Reads of what this process holds still work, without the failed write.
                page = await alice.get("/messages")
                assert [m["text"] for m in page.json()["messages"]] == ["before"]
            redis = RedisServer(tmp_path / "redis", port=port)  # back, from its append-only file
            with trio.fail_after(20):
                while True:
                    response = await alice.post("/send", {"text": "after"})
                    if response.status_code == 201:
                        break
                    assert response.status_code == 503, response.text
                    await trio.to_thread.run_sync(time.sleep, 0.2)
            page = await alice.get("/messages")
            assert [m["text"] for m in page.json()["messages"]] == ["before", "after"]
            assert response.json()["message"]["id"] != first["id"]
        server.server.shutdown()
    finally:
        redis.stop()
