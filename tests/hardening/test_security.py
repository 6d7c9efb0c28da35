"""Security: private data stays private on every endpoint, tokens guard every endpoint but
four, secrets stay out of the logs, login guessing is throttled, names are unique
case-insensitively."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
import trio
import trio.testing

from tests.conftest import PASSWORD, register
from tests.hardening.helpers import Conn, request, wait_until

PUBLIC = {("POST", "/register"), ("POST", "/login"), ("GET", "/healthz"), ("GET", "/openapi.json")}
# The web client's page and files (tests/web checks them): public, as a web page must be.
WEB_CLIENT = {("GET", "/"), ("GET", "/join/{token}"), ("GET", "/static/{version}/{name}")}
SECRET = "psst-only-for-bob"
REPLY = "psst-reply-for-alice"
COMMENT = "psst-comment-on-private"


async def sse_until(conn: Conn, marker: bytes) -> bytes:
    with trio.fail_after(5):
        while marker not in conn.buf:
            chunk = await conn.stream.receive_some(65536)
            assert chunk, "stream closed"
            conn.buf += chunk
    return bytes(conn.buf)


@pytest.mark.config(ban_threshold=2)
async def test_private_messages_and_events_never_reach_a_third_user(chat_server, make_user):
    alice, bob, carol, dave = [await make_user(n) for n in ("alice", "bob", "carol", "dave")]
    await carol.post("/connect")  # carol has polled: anything new would be unread for her
    # Carol listens live on both transports before anything private happens.
    live = await Conn.open(chat_server.host, chat_server.port)
    await live.send(request("GET", "/events", token=carol.token))
    poll = await Conn.open(chat_server.host, chat_server.port)
    await poll.send(request("GET", "/updates?timeout=30", token=carol.token))
    await wait_until(lambda: chat_server.service.hub.subscriber_count == 2)

    secret = await alice.send(SECRET, to="bob")
    reply = await bob.send(REPLY, to="alice")
    comment = await bob.post("/comment", {"message_id": secret["id"], "text": COMMENT})
    assert comment.status_code == 201
    # A ban is a private event of the banned user.
    for reporter in (alice, dave):
        assert (await reporter.post("/report", {"username": "bob"})).status_code == 201
    sentinel = await alice.send("public sentinel")
    private_ids = {secret["id"], reply["id"], comment.json()["comment"]["id"]}

    def assert_clean(blob: bytes | str, where: str) -> None:
        text = blob if isinstance(blob, str) else blob.decode("utf-8", "replace")
        for needle in (SECRET, REPLY, COMMENT, "dm:", '"banned"', *private_ids):
            assert needle not in text, f"{needle!r} leaked through {where}: {text[:300]}"

    seen: list[tuple[str, bytes]] = []
    # The long-poll answered with the first event after it started; it must be the sentinel
    # (or nothing private, at least).
    seen.append(("/updates (waiting)", (await poll.response()).body))
    seen.append(("/events (live)", await sse_until(live, sentinel["id"].encode())))
    replay = await Conn.open(chat_server.host, chat_server.port)
    await replay.send(request("GET", "/events?since=0", token=carol.token))
    seen.append(("/events?since=0", await sse_until(replay, sentinel["id"].encode())))
    resumed = await Conn.open(chat_server.host, chat_server.port)
    await resumed.send(
        request("GET", "/events", token=carol.token, headers=[("Last-Event-ID", "0")])
    )
    seen.append(("/events Last-Event-ID", await sse_until(resumed, sentinel["id"].encode())))
    for conn in (live, poll, replay, resumed):
        await conn.aclose()

    gets = [
        "/updates?since=0&timeout=0",
        "/messages",
        "/messages?chat=general&limit=100",
        "/messages?with=alice",
        "/messages?with=bob",
        "/status",
    ]
    for path in gets:
        response = await carol.get(path)
        assert response.status_code == 200, (path, response.text)
        seen.append((path, response.content))
    connect = await carol.post("/connect")
    # (Live delivery counted the sentinel as read, so it is history now, not unread.)
    assert [m["text"] for m in connect.json()["history"]] == ["public sentinel"]
    assert connect.json()["unread"] == []
    seen.append(("/connect", connect.content))
    for where, blob in seen:
        assert_clean(blob, where)
    assert b"public sentinel" in seen[0][1] + seen[1][1]

    # Naming the private chat or its messages directly: as if they did not exist.
    for chat in ("dm:alice:bob", "dm:bob:alice", "DM:alice:bob", "dm:alice:bob:carol"):
        response = await carol.get("/messages", params={"chat": chat})
        assert response.status_code == 404, (chat, response.text)
        assert_clean(response.content.replace(chat.encode(), b""), chat)  # echo is no leak
    for message_id in (secret["id"], reply["id"]):
        response = await carol.post("/comment", {"message_id": message_id, "text": "hi"})
        assert response.status_code == 404 and response.json()["error"]["code"] == (
            "message_not_found"
        )
        response = await carol.get("/messages", params={"before": message_id})
        assert response.status_code == 404
        assert_clean(response.content.replace(message_id.encode(), b""), message_id)
    # The parties themselves do see it all (the test above would pass on a mute server).
    mine = (await alice.get("/messages?with=bob")).json()["messages"]
    assert [m["text"] for m in mine] == [SECRET, REPLY]
    assert mine[0]["comments"][0]["text"] == COMMENT


async def test_every_api_endpoint_but_four_requires_a_token(chat_server, http):
    user = await register(http, "tokenholder")
    revoked = await register(http, "revoked")
    assert (await revoked.post("/logout")).status_code == 204
    routes = {(r.method, r.path) for r in chat_server.server.http.router.routes()}
    document = (await http.get("/openapi.json")).json()
    documented = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    assert routes == documented
    assert routes >= PUBLIC | WEB_CLIENT and len(routes) > len(PUBLIC | WEB_CLIENT)
    bad_headers = [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Basic {user.token}"},
        {"Authorization": user.token},
        {"Authorization": f"Bearer {revoked.token}"},
        {"Authorization": f"Bearer {user.token[:-1]}"},
    ]
    for method, path in sorted(routes - PUBLIC - WEB_CLIENT):
        for headers in bad_headers:
            response = await http.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.json()["error"]["code"] == "unauthorized"
            assert response.headers["www-authenticate"].startswith("Bearer")
    for method, path in sorted(PUBLIC):
        body = {"username": "tokenholder", "password": PASSWORD} if method == "POST" else None
        response = await http.request(method, path, json=body)
        assert response.status_code in (200, 201, 409), (method, path, response.text)


async def test_tokens_and_passwords_never_reach_the_logs(http, caplog):
    password = "s3cret-Pa55word-xyz"
    wrong = "wr0ng-Pa55word-abc"
    with caplog.at_level(logging.DEBUG):
        registered = await http.post("/register", json={"username": "logme", "password": password})
        tokens = [registered.json()["token"]]
        login = await http.post("/login", json={"username": "logme", "password": password})
        tokens.append(login.json()["token"])
        auth = {"Authorization": f"Bearer {tokens[0]}"}
        assert (await http.post("/send", json={"text": "hi"}, headers=auth)).status_code == 201
        assert (await http.get("/status", headers=auth)).status_code == 200
        failed = await http.post("/login", json={"username": "logme", "password": wrong})
        assert failed.status_code == 401
        unknown = await http.post("/login", json={"username": "nobody", "password": wrong})
        assert unknown.status_code == 401
        bad = await http.post("/register", json={"username": "bad name", "password": password})
        assert bad.status_code == 400
        assert (await http.post("/logout", headers=auth)).status_code == 204
        # A revoked token and a malformed body carrying a password: still nothing.
        assert (await http.get("/status", headers=auth)).status_code == 401
        await http.post("/login", content=b'{"username": "logme", "password": "' + wrong.encode())
    records = caplog.records
    assert records, "nothing was logged at all: the check below would be empty"
    assert any("logme" in r.getMessage() for r in records)
    for record in records:
        text = record.getMessage() + repr(record.args) + (record.exc_text or "")
        for secret in (password, wrong, *tokens):
            assert secret not in text, f"{record.name}: {text}"


async def test_login_guessing_is_throttled_then_allowed_again(http, mock_clock):
    await register(http, "victim")
    await register(http, "bystander")
    for _ in range(5):
        response = await http.post("/login", json={"username": "victim", "password": "guess-123"})
        assert response.status_code == 401
    for name, password in (("victim", "guess-123"), ("victim", PASSWORD), ("VICTIM", PASSWORD)):
        throttled = await http.post("/login", json={"username": name, "password": password})
        assert throttled.status_code == 429, throttled.text
        error = throttled.json()["error"]
        assert error["code"] == "too_many_attempts"
        assert 1 <= int(throttled.headers["retry-after"]) <= 60
        assert error["retry_after"] == int(throttled.headers["retry-after"])
    # Another user is not affected.
    other = await http.post("/login", json={"username": "bystander", "password": PASSWORD})
    assert other.status_code == 200
    mock_clock.jump(30)
    still = await http.post("/login", json={"username": "victim", "password": PASSWORD})
    assert still.status_code == 429
    mock_clock.jump(31)  # a minute after the failures
    again = await http.post("/login", json={"username": "victim", "password": PASSWORD})
    assert again.status_code == 200


@pytest.mark.parametrize("second", ["Alice", "ALICE", "aLiCe"])
async def test_usernames_are_unique_case_insensitively(http, second):
    first = await register(http, "alice")
    response = await http.post("/register", json={"username": second, "password": PASSWORD})
    assert response.status_code == 409 and response.json()["error"]["code"] == "username_taken"
    # Still one account: the other spelling logs into it.
    login = await http.post("/login", json={"username": second, "password": PASSWORD})
    assert login.status_code == 200 and login.json()["username"] == first.name
    # Look-alikes outside the allowed alphabet are not names at all.
    lookalike = await http.post("/register", json={"username": "al\u0456ce", "password": PASSWORD})
    assert lookalike.status_code == 400
    assert json.loads(lookalike.content)["error"]["code"] == "invalid_request"


async def test_a_username_that_cannot_exist_never_reaches_a_table(chat_server, http):
    throttle = chat_server.service.accounts.throttle
    for name in ("x" * 60_000, "no spaces", ""):
        response = await http.post("/login", json={"username": name, "password": "whatever1"})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_request" and error["fields"][0]["path"] == "$.username"
    assert len(throttle) == 0


async def test_one_address_cannot_guess_passwords_across_usernames(chat_server, http):
    await register(http, "owner")
    for i in range(30):
        name = f"target{i}"
        response = await http.post("/login", json={"username": name, "password": "guess-123"})
        assert response.status_code == 401
    refused = await http.post("/login", json={"username": "owner", "password": PASSWORD})
    assert refused.status_code == 429
    assert "address" in refused.json()["error"]["message"]
    assert 1 <= refused.json()["error"]["retry_after"] <= 60


async def test_a_locked_out_username_still_logs_in_from_another_address(chat_server, http):
    await register(http, "owner")
    for _ in range(5):
        response = await http.post("/login", json={"username": "owner", "password": "guess-123"})
        assert response.status_code == 401
    assert (
        await http.post("/login", json={"username": "owner", "password": PASSWORD})
    ).status_code == 429
    # The owner, on another address (127.0.0.2 is loopback too), is not locked out.
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=chat_server.url, transport=transport) as elsewhere:
        response = await elsewhere.post("/login", json={"username": "owner", "password": PASSWORD})
        assert response.status_code == 200, response.text
