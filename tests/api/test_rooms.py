"""Rooms over HTTP: invitations, links, the owner's approval, and who sees what when."""

from __future__ import annotations

import httpx
import trio
import trio.testing

from tests.conftest import register, start_server
from tests.sse_client import open_events

DAY = 24 * 3600


async def wait_subscribed(server, count: int) -> None:
    while server.service.hub.subscriber_count < count:
        await trio.sleep(0.001)


async def new_room(owner, name: str = "book club") -> dict:
    response = await owner.post("/rooms", {"name": name})
    assert response.status_code == 201, response.text
    return response.json()["room"]


async def new_link(owner, room_id: str, **body) -> dict:
    response = await owner.post(f"/rooms/{room_id}/links", body)
    assert response.status_code == 201, response.text
    return response.json()["link"]


def code(response: httpx.Response) -> str:
    return response.json()["error"]["code"]


async def test_create_list_show_and_invite(http):
    alice, bob, carol = [await register(http, n) for n in ("alice", "bob", "carol")]
    room = await new_room(alice)
    assert room["id"].startswith("room:") and room["owner"] == "alice"
    assert room["members"] == ["alice"] and room["name"] == "book club"
    assert (await alice.get("/rooms")).json()["rooms"] == [room]
    assert (await bob.get("/rooms")).json()["rooms"] == []
    invited = await alice.post(f"/rooms/{room['id']}/members", {"username": "Bob"})
    assert invited.status_code == 201 and invited.json()["room"]["members"] == ["alice", "bob"]
    # Members see the room; the owner also sees pending requests.
    shown = (await bob.get(f"/rooms/{room['id']}")).json()
    assert shown == {"room": invited.json()["room"]}
    assert (await alice.get(f"/rooms/{room['id']}")).json()["requests"] == []
    # Owner-only calls are 403 to a member and 404 to anyone else.
    for who, status in ((bob, 403), (carol, 404)):
        response = await who.post(f"/rooms/{room['id']}/members", {"username": "carol"})
        assert response.status_code == status, response.text
    assert code(await alice.post(f"/rooms/{room['id']}/members", {"username": "bob"})) == (
        "already_member"
    )
    assert code(await alice.post(f"/rooms/{room['id']}/members", {"username": "nobody"})) == (
        "user_not_found"
    )
    for name in ("", " ", "x" * 101):
        assert (await alice.post("/rooms", {"name": name})).status_code == 400
    # The room is one more chat: /status, messages and comments work there.
    status = (await bob.get("/status")).json()
    assert status["chats"] == ["general", room["id"]] and status["unread"][room["id"]] == 0
    sent = await bob.post("/send", {"chat": room["id"], "text": "first chapter?"})
    assert sent.status_code == 201 and sent.json()["message"]["chat"] == room["id"]
    assert (await alice.get("/status")).json()["unread"][room["id"]] == 1
    comment = await alice.post(
        "/comment", {"message_id": sent.json()["message"]["id"], "text": "yes"}
    )
    assert comment.status_code == 201
    assert (
        await carol.post("/comment", {"message_id": sent.json()["message"]["id"], "text": "x"})
    ).status_code == 404
    both = await alice.post("/send", {"chat": room["id"], "to": "bob", "text": "x"})
    assert both.status_code == 400


async def test_a_stranger_gets_in_only_by_link_and_approval(chat_server, http):
    alice, bob, stranger = [await register(http, n) for n in ("alice", "bob", "stranger")]
    room = await new_room(alice)
    rid = room["id"]
    await alice.post(f"/rooms/{rid}/members", {"username": "bob"})
    before = await bob.post("/send", {"chat": rid, "text": "said before you came"})
    link = await new_link(alice, rid, expires_in="1d", max_uses=5)
    assert link["url"].endswith(f"/join/{link['token']}") and link["uses_left"] == 5
    assert len(link["token"]) >= 32  # 192 random bits, url-safe

    with trio.fail_after(10):
        async with (
            open_events(chat_server.host, chat_server.port, stranger.token) as outside,
            open_events(chat_server.host, chat_server.port, alice.token) as owner,
        ):
            await wait_subscribed(chat_server, 2)
            joined = await stranger.post("/join", {"token": link["url"]})  # the whole URL works
            assert joined.status_code == 202
            assert joined.json() == {
                "request": {"room": rid, "name": "book club", "status": "pending"}
            }
            again = await stranger.post("/join", {"token": link["token"]})
            assert again.status_code == 202  # harmless, and uses the link once only
            (request,) = await owner.read(1)
            assert request == {
                "type": "join_request",
                "cursor": request["cursor"],
                "room": rid,
                "username": "stranger",
            }
            # Pending is not in: the room and everything in it do not exist for the stranger.
            for path in (f"/rooms/{rid}", f"/rooms/{rid}/links"):
                assert (await stranger.get(path)).status_code == 404
            assert (await stranger.get("/messages", params={"chat": rid})).status_code == 404
            assert (
                code(await stranger.post("/send", {"chat": rid, "text": "let me in"}))
                == "chat_not_found"
            )
            assert (
                code(
                    await stranger.post(
                        "/read", {"chat": rid, "up_to": before.json()["message"]["id"]}
                    )
                )
                == "chat_not_found"
            )
            await bob.post("/send", {"chat": rid, "text": "said while you waited"})
            public = await bob.send("public marker")
            (first,) = await outside.read(1)
            assert first["message"]["id"] == public["id"]  # nothing of the room came before it

            shown = (await alice.get(f"/rooms/{rid}")).json()
            assert [r["username"] for r in shown["requests"]] == ["stranger"]
            assert (await alice.get(f"/rooms/{rid}/links")).json()["links"][0]["uses_left"] == 4
            approved = await alice.post(f"/rooms/{rid}/requests/stranger", {"approve": True})
            assert approved.status_code == 200
            assert approved.json()["room"]["members"] == ["alice", "bob", "stranger"]
            (welcome,) = await outside.read(1)
            assert welcome["type"] == "room_joined" and welcome["room"]["id"] == rid
            live = await bob.post("/send", {"chat": rid, "text": "welcome!"})
            (live_event,) = await outside.read(1)
    assert live_event["message"]["id"] == live.json()["message"]["id"]
    # The whole history is theirs to read, and none of it floods them as unread.
    history = (await stranger.get("/messages", params={"chat": rid})).json()["messages"]
    assert [m["text"] for m in history] == [
        "said before you came",
        "said while you waited",
        "welcome!",
    ]
    assert (await stranger.get("/status")).json()["unread"][rid] == 0
    assert (
        code(await alice.post(f"/rooms/{rid}/requests/stranger", {"approve": True}))
        == "request_not_found"
    )
    assert code(await stranger.post("/join", {"token": link["token"]})) == "already_member"


async def test_refused_expired_revoked_and_used_up_links_admit_nobody(
    mock_clock, chat_server, http
):
    alice = await register(http, "alice")
    users = [await register(http, f"u{i}") for i in range(6)]
    rid = (await new_room(alice))["id"]

    refused_link = await new_link(alice, rid)
    assert (await users[0].post("/join", {"token": refused_link["token"]})).status_code == 202
    refused = await alice.post(f"/rooms/{rid}/requests/u0", {"approve": False})
    assert refused.status_code == 204
    assert (await users[0].get(f"/rooms/{rid}")).status_code == 404
    updates = (await users[0].get("/updates", params={"since": "0", "timeout": "0"})).json()
    assert [e["type"] for e in updates["events"]] == ["join_refused"]

    once = await new_link(alice, rid, max_uses=1)
    assert (await users[1].post("/join", {"token": once["token"]})).status_code == 202
    used_up = await users[2].post("/join", {"token": once["token"]})
    assert used_up.status_code == 404 and code(used_up) == "link_not_found"

    revoked = await new_link(alice, rid)
    assert (
        await alice.client.delete(f"/rooms/{rid}/links/{revoked['token']}", headers=alice.auth)
    ).status_code == 204
    assert code(await users[3].post("/join", {"token": revoked["token"]})) == "link_not_found"
    by_id = await new_link(alice, rid)
    assert (
        await alice.client.delete(f"/rooms/{rid}/links/{by_id['id']}", headers=alice.auth)
    ).status_code == 204
    assert code(await users[3].post("/join", {"token": by_id["token"]})) == "link_not_found"

    short = await new_link(alice, rid, expires_in="1h")
    mock_clock.jump(3600)
    assert code(await users[4].post("/join", {"token": short["token"]})) == "link_not_found"
    assert code(await users[4].post("/join", {"token": "x" * 32})) == "link_not_found"
    live = (await alice.get(f"/rooms/{rid}/links")).json()["links"]
    assert [lk["id"] for lk in live] == [refused_link["id"]]  # the only one still good
    assert "token" not in live[0]  # kept hashed: never shown again
    for body in (
        {"expires_in": "31d"},
        {"expires_in": "0"},
        {"expires_in": "soon"},
        {"max_uses": 0},
        {"max_uses": 1001},
    ):
        assert (await alice.post(f"/rooms/{rid}/links", body)).status_code == 400, body
    # Nobody got in but the one the owner approved... and nobody was approved.
    assert (await alice.get(f"/rooms/{rid}")).json()["room"]["members"] == ["alice"]
    pending = (await alice.get(f"/rooms/{rid}")).json()["requests"]
    assert [r["username"] for r in pending] == ["u1"]  # still waiting for the owner


async def test_guessing_links_is_throttled(http):
    mallory = await register(http, "mallory")
    for i in range(10):
        assert (await mallory.post("/join", {"token": f"guess{i}"})).status_code == 404
    throttled = await mallory.post("/join", {"token": "one more"})
    assert throttled.status_code == 429 and code(throttled) == "too_many_attempts"


async def test_a_removed_member_gets_nothing_more(chat_server, http):
    alice, bob, carol = [await register(http, n) for n in ("alice", "bob", "carol")]
    rid = (await new_room(alice))["id"]
    for name in ("bob", "carol"):
        await alice.post(f"/rooms/{rid}/members", {"username": name})
    old = await alice.post("/send", {"chat": rid, "text": "old news"})
    with trio.fail_after(10):
        async with open_events(chat_server.host, chat_server.port, bob.token) as on_bob:
            await wait_subscribed(chat_server, 1)
            removed = await alice.client.delete(f"/rooms/{rid}/members/bob", headers=alice.auth)
            assert removed.status_code == 204
            (left,) = await on_bob.read(1)
            assert left == {
                "type": "room_left",
                "cursor": left["cursor"],
                "room": rid,
                "username": "bob",
            }
            await alice.post("/send", {"chat": rid, "text": "after bob left"})
            marker = await alice.send("public marker")
            (next_event,) = await on_bob.read(1)
    assert next_event["message"]["id"] == marker["id"]
    for path, params in ((f"/rooms/{rid}", None), ("/messages", {"chat": rid})):
        assert (await bob.get(path, params=params)).status_code == 404
    assert (
        await bob.post("/comment", {"message_id": old.json()["message"]["id"], "text": "x"})
    ).status_code == 404
    replay = (await bob.get("/updates", params={"since": "0", "timeout": "0"})).json()
    assert "after bob left" not in str(replay) and "old news" not in str(replay)
    # Leaving by oneself; the owner cannot leave; others cannot remove.
    assert (
        await carol.client.delete(f"/rooms/{rid}/members/alice", headers=carol.auth)
    ).status_code == 403
    assert (
        await carol.client.delete(f"/rooms/{rid}/members/carol", headers=carol.auth)
    ).status_code == 204
    owner_leaves = await alice.client.delete(f"/rooms/{rid}/members/alice", headers=alice.auth)
    assert owner_leaves.status_code == 409 and code(owner_leaves) == "owner_cannot_leave"
    # Deleting the room: gone for everyone.
    await alice.post(f"/rooms/{rid}/members", {"username": "carol"})
    assert (await carol.client.delete(f"/rooms/{rid}", headers=carol.auth)).status_code == 403
    assert (await alice.client.delete(f"/rooms/{rid}", headers=alice.auth)).status_code == 204
    for who in (alice, carol):
        assert (await who.get(f"/rooms/{rid}")).status_code == 404
        assert (await who.get("/rooms")).json()["rooms"] == []


async def test_rooms_survive_a_restart(nursery, config):
    server = await start_server(nursery, config)
    async with httpx.AsyncClient(base_url=server.url) as client:
        alice, bob, carol = [await register(client, n) for n in ("alice", "bob", "carol")]
        rid = (await new_room(alice))["id"]
        await alice.post(f"/rooms/{rid}/members", {"username": "bob"})
        link = await new_link(alice, rid, max_uses=2)
        assert (await carol.post("/join", {"token": link["token"]})).status_code == 202
        sent = await bob.post("/send", {"chat": rid, "text": "kept"})
        room = (await alice.get(f"/rooms/{rid}")).json()
        links = (await alice.get(f"/rooms/{rid}/links")).json()
    await server.stop()

    server = await start_server(nursery, config)
    async with httpx.AsyncClient(base_url=server.url) as client:
        alice.client = bob.client = carol.client = client
        assert (await alice.get(f"/rooms/{rid}")).json() == room
        assert (await alice.get(f"/rooms/{rid}/links")).json() == links
        assert (await carol.get(f"/rooms/{rid}")).status_code == 404
        messages = (await bob.get("/messages", params={"chat": rid})).json()["messages"]
        assert messages == [sent.json()["message"]]
        # The link (hash) still works; the request is still pending and can be approved.
        dave = await register(client, "dave")
        assert (await dave.post("/join", {"token": link["token"]})).status_code == 202
        assert (
            await alice.post(f"/rooms/{rid}/requests/carol", {"approve": True})
        ).status_code == 200
        assert (await carol.get("/messages", params={"chat": rid})).status_code == 200
    await server.stop()
