"""``trio-chat migrate``: an embedded store copied into Redis serves the same chat."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs
import httpx
import pytest

from tests.conftest import User, register, start_server
from trio_chat import cli
from trio_chat.storage.migrate import migrate
from trio_chat.storage.shelf import StoreError


async def what_they_see(alice: User, bob: User, room: str) -> dict[str, Any]:
    return {
        "general": (await bob.get("/messages")).json(),
        "private": (await bob.get("/messages", params={"with": "alice"})).json(),
        "room": (await bob.get("/messages", params={"chat": room})).json(),
        "status": (await bob.get("/status")).json(),
        "scheduled": (await alice.get("/scheduled")).json(),
        "sessions": (await alice.get("/sessions")).json(),
    }


async def test_a_migrated_store_serves_the_same_chat(nursery, config, redis_url):
    server = await start_server(nursery, config)
    async with httpx.AsyncClient(base_url=server.url) as client:
        alice = await register(client, "alice")
        bob = await register(client, "bob")
        first = await alice.send("the oldest")
        await alice.send("to bob", to="bob")
        await bob.post("/comment", {"message_id": first["id"], "text": "+1"})
        await bob.post("/connect")  # bob's read position
        late = await alice.send("unread by bob")
        room = (await alice.post("/rooms", {"name": "team"})).json()["room"]
        await alice.post(f"/rooms/{room['id']}/members", {"username": "bob"})
        upload = await alice.client.post("/files?name=a.txt", content=b"hello", headers=alice.auth)
        file_id = upload.json()["file"]["id"]
        await alice.post("/send", {"chat": room["id"], "text": "see file", "files": [file_id]})
        tomorrow = datetime.fromtimestamp(server.service.now() / 1000 + 86400, tz=UTC)
        scheduled = await alice.post("/send", {"text": "later", "send_at": tomorrow.isoformat()})
        assert scheduled.status_code == 202, scheduled.text
        before = await what_they_see(alice, bob, room["id"])
    await server.stop()

    counts = await migrate(config.data_dir, redis_url)
    assert counts["users"] == 2 and counts["rooms"] == 1 and counts["files"] == 1

    server = await start_server(nursery, attrs.evolve(config, store=redis_url))
    async with httpx.AsyncClient(base_url=server.url) as client:
        alice.client = bob.client = client  # the same tokens, on the Redis-backed server
        after = await what_they_see(alice, bob, room["id"])
        for key in ("general", "private", "room", "scheduled", "sessions"):
            assert after[key] == before[key], key
        assert after["status"]["unread"] == before["status"]["unread"]
        # Bob's read positions came along: only what came after his /connect is unread.
        unread = (await bob.post("/connect")).json()["unread"]
        assert [m["id"] for m in unread] == [late["id"], after["room"]["messages"][0]["id"]]
        # The files are where they were (the same --data-dir).
        download = await client.get(f"/files/{file_id}", headers=bob.auth)
        assert download.content == b"hello"
        # Numbering goes on after the copied log: nothing is reused.
        new = await alice.send("after the move")
        assert new["id"] not in {m["id"] for m in after["general"]["messages"]}
    await server.stop()


async def test_migrate_refuses_a_database_that_holds_a_store(nursery, config, redis_url):
    server = await start_server(nursery, config)
    async with httpx.AsyncClient(base_url=server.url) as client:
        await register(client, "alice")
    await server.stop()
    await migrate(config.data_dir, redis_url)
    with pytest.raises(StoreError, match="already holds a trio-chat store"):
        await migrate(config.data_dir, redis_url)


def test_migrate_refuses_a_directory_without_a_store(tmp_path, redis_url, capsys):
    assert cli.main(["migrate", "--from", str(tmp_path), "--to", redis_url]) == 1
    assert "holds no trio-chat store" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["http://x", "redis-ish"])
def test_migrate_wants_a_redis_address(tmp_path, url):
    with pytest.raises(SystemExit):
        cli.main(["migrate", "--from", str(tmp_path), "--to", url])
