"""The chat endpoints over HTTP: send, connect (history and unread), messages, status."""

from __future__ import annotations

import re

import pytest

from tests.conftest import register

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


async def test_send_returns_the_message(make_user):
    alice = await make_user("alice")
    response = await alice.post("/send", {"text": "hello"})
    assert response.status_code == 201
    message = response.json()["message"]
    assert set(message) == {
        "id",
        "chat",
        "author",
        "to",
        "text",
        "sent_at",
        "comments",
        "client_id",
        "scheduled_at",
        "expires_at",
        "files",
    }
    assert message["chat"] == "general" and message["to"] is None
    assert message["author"] == "alice" and message["text"] == "hello"
    assert TIMESTAMP.fullmatch(message["sent_at"]) and message["comments"] == []
    assert response.headers["x-ratelimit-limit"] == "20"
    assert response.headers["x-ratelimit-remaining"] == "19"
    assert response.headers["x-ratelimit-reset"] == "3600"


async def test_send_errors(make_user):
    alice = await make_user("alice")
    for body, status, code in [
        ({"text": ""}, 400, "invalid_request"),
        ({"text": "x" * 4097}, 400, "invalid_request"),
        ({"text": "hi", "to": "nobody"}, 404, "user_not_found"),
        ({"text": "hi", "to": "alice"}, 400, "invalid_request"),
        ({"txt": "hi"}, 400, "invalid_request"),
        ({"text": 1}, 400, "invalid_request"),
    ]:
        response = await alice.post("/send", body)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), body
        assert "x-ratelimit-remaining" in response.headers
    status = (await alice.get("/status")).json()
    assert status["rate_limit"]["remaining"] == 20  # refused sends changed nothing


@pytest.mark.config(rate_limit_count=0)
async def test_first_connect_and_reconnect(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    sent = [await alice.send(f"m{i}") for i in range(25)]
    first = (await bob.post("/connect")).json()
    assert first["chat"] == "general"
    assert [m["id"] for m in first["history"]] == [m["id"] for m in sent[-20:]]
    assert first["unread"] == []

    later = [await alice.send(f"n{i}") for i in range(3)]
    private = await alice.send("psst", to="bob")
    await bob.send("my own")  # a user's own messages are never unread
    again = (await bob.post("/connect", json={})).json()
    # History: what bob had seen, plus his own message (seen by definition), last 20.
    assert [m["text"] for m in again["history"]] == [m["text"] for m in sent[-19:]] + ["my own"]
    assert [m["id"] for m in again["unread"]] == [m["id"] for m in [*later, private]]
    # After the call they count as read; history now ends with the newest common message.
    third = (await bob.post("/connect")).json()
    assert third["unread"] == []
    assert [m["text"] for m in third["history"]][-4:] == ["n0", "n1", "n2", "my own"]


async def test_history_and_unread_never_share_and_history_holds_own_messages(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    await bob.post("/connect")
    a = await alice.send("a")
    b = await bob.send("b")
    body = (await bob.post("/connect")).json()
    assert [m["id"] for m in body["unread"]] == [a["id"]]
    body = (await bob.post("/connect")).json()
    assert [m["id"] for m in body["history"]] == [a["id"], b["id"]]
    assert body["unread"] == []


async def test_never_polled_user_gets_private_messages_as_unread(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    dm = await alice.send("welcome!", to="bob")
    public = await alice.send("hi all")
    body = (await bob.post("/connect")).json()
    assert [m["id"] for m in body["unread"]] == [dm["id"]]
    assert [m["id"] for m in body["history"]] == [public["id"]]


async def test_connect_is_idempotent_and_rejects_bodies_with_fields(make_user):
    alice = await make_user("alice")
    assert (await alice.post("/connect")).status_code == 200
    assert (await alice.post("/connect", json={})).status_code == 200
    bad = await alice.post("/connect", json={"x": 1})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"
    status = (await alice.get("/status")).json()
    assert status["chats"] == ["general"]


@pytest.mark.config(rate_limit_count=0)
async def test_messages_paging_without_gaps_or_overlaps(make_user):
    alice = await make_user("alice")
    sent = [(await alice.send(f"m{i}"))["id"] for i in range(120)]
    first = (await alice.get("/messages", params={"chat": "general"})).json()["messages"]
    assert [m["id"] for m in first] == sent[-50:]  # default limit 50, oldest first
    seen: list[str] = []
    before = None
    while True:
        params = {"limit": "17"} | ({"before": before} if before else {})
        page = (await alice.get("/messages", params=params)).json()["messages"]
        if not page:
            break
        seen = [m["id"] for m in page] + seen
        before = page[0]["id"]
    assert seen == sent


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"limit": "0"}, 400, "invalid_request"),
        ({"limit": "101"}, 400, "invalid_request"),
        ({"limit": "ten"}, 400, "invalid_request"),
        ({"limit": "9" * 5000}, 400, "invalid_request"),
        ({"chat": "general", "with": "bob"}, 400, "invalid_request"),
        ({"bogus": "1"}, 400, "invalid_request"),
        ({"with": "nobody"}, 404, "user_not_found"),
        ({"chat": "nowhere"}, 404, "chat_not_found"),
        ({"before": "m999999"}, 404, "message_not_found"),
        ({"before": "garbage"}, 404, "message_not_found"),
    ],
)
async def test_messages_errors(make_user, params, status, code):
    alice = await make_user("alice")
    await make_user("bob")
    response = await alice.get("/messages", params=params)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


async def test_private_messages_are_visible_only_to_their_parties(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    carol = await make_user("carol")
    dm = await alice.send("for bob only", to="bob")
    for reader, other in ((alice, "bob"), (bob, "alice")):
        page = (await reader.get("/messages", params={"with": other})).json()["messages"]
        assert [m["id"] for m in page] == [dm["id"]]
    assert (await carol.get("/messages", params={"with": "alice"})).json()["messages"] == []
    hidden = await carol.get("/messages", params={"chat": dm["chat"]})
    assert hidden.status_code == 404
    assert (await carol.get("/messages")).json()["messages"] == []
    assert (await carol.post("/connect")).json()["unread"] == []
    response = await carol.post("/comment", {"message_id": dm["id"], "text": "hi"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "message_not_found"
    before = await carol.get("/messages", params={"before": dm["id"]})
    assert before.status_code == 404


async def test_status(make_user):
    alice = await make_user("alice")
    await make_user("bob")
    await alice.send("hi")
    await alice.send("psst", to="bob")
    status = (await alice.get("/status")).json()
    assert status["username"] == "alice"
    assert status["chats"] == ["general", "dm:alice:bob"]
    assert status["rate_limit"]["limit"] == 20 and status["rate_limit"]["remaining"] == 19
    assert TIMESTAMP.fullmatch(status["rate_limit"]["reset_at"])
    assert status["banned_until"] is None


async def test_unknown_path_and_wrong_method(http):
    missing = await http.get("/nowhere")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = await http.get("/send")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"
    assert wrong.json()["error"]["code"] == "method_not_allowed"


async def test_healthz(http):
    response = await http.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_comments_appear_inside_messages(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    message = await alice.send("comment on me")
    ids = []
    for text in ("first", "second"):
        response = await bob.post("/comment", {"message_id": message["id"], "text": text})
        assert response.status_code == 201
        comment = response.json()["comment"]
        assert comment["message_id"] == message["id"] and comment["author"] == "bob"
        assert TIMESTAMP.fullmatch(comment["sent_at"])
        ids.append(comment["id"])
    page = (await alice.get("/messages")).json()["messages"]
    assert [c["id"] for c in page[0]["comments"]] == ids
    history = (await alice.post("/connect")).json()["history"]
    assert [c["text"] for c in history[-1]["comments"]] == ["first", "second"]
    for body, status in [
        ({"message_id": message["id"], "text": ""}, 400),
        ({"message_id": "m424242", "text": "x"}, 404),
        ({"message_id": message["id"]}, 400),
    ]:
        assert (await bob.post("/comment", body)).status_code == status


async def test_concurrent_comments_are_all_kept(make_user, nursery):
    import trio

    alice = await make_user("alice")
    message = await alice.send("popular")
    async with trio.open_nursery() as inner:
        for i in range(30):
            inner.start_soon(alice.post, "/comment", {"message_id": message["id"], "text": f"c{i}"})
    page = (await alice.get("/messages")).json()["messages"]
    assert sorted(c["text"] for c in page[0]["comments"]) == sorted(f"c{i}" for i in range(30))


async def test_private_chat_comments_by_parties(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    dm = await alice.send("psst", to="bob")
    response = await bob.post("/comment", {"message_id": dm["id"], "text": "ok"})
    assert response.status_code == 201


async def test_register_helper_roundtrip(http):
    user = await register(http, "zed")
    assert (await user.get("/status")).json()["username"] == "zed"


async def test_own_messages_since_the_last_poll_are_history(make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    await bob.post("/connect")
    theirs = await alice.send("from alice")
    mine = await bob.send("from bob")
    body = (await bob.post("/connect")).json()
    assert [m["id"] for m in body["unread"]] == [theirs["id"]]
    assert [m["id"] for m in body["history"]] == [mine["id"]]


async def test_private_chat_ids_must_be_canonical_and_real(make_user):
    alice = await make_user("alice")
    await make_user("bob")
    await alice.send("psst", to="bob")
    for chat in ("dm:bob:alice", "dm:alice:ghost", "dm:alice:alice", "dm:alice", "dm:a:b:c"):
        response = await alice.get("/messages", params={"chat": chat})
        assert response.status_code == 404, chat
    assert (await alice.get("/messages", params={"chat": "dm:alice:bob"})).status_code == 200


async def test_lone_surrogates_are_refused_and_nothing_is_stored(make_user):
    alice = await make_user("alice")
    for body in (b'{"text": "\\ud800"}', b'{"text": "ok", "to": "\\udfff"}'):
        response = await alice.post("/send", content=body)
        assert response.status_code == 400, body
        # "\ud800" is no character and has no UTF-8 form: not JSON text we accept.
        assert response.json()["error"]["code"] == "malformed_json"
    assert (await alice.get("/messages")).json()["messages"] == []
    assert (await alice.get("/status")).json()["rate_limit"]["remaining"] == 20


@pytest.mark.config(rate_limit_count=0)
async def test_status_with_the_rate_limit_off(make_user):
    alice = await make_user("alice")
    response = await alice.post("/send", {"text": "hi"})
    assert "x-ratelimit-limit" not in response.headers
    status = (await alice.get("/status")).json()
    assert status["rate_limit"] == {"limit": None, "remaining": None, "reset_at": None}
