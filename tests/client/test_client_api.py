import json
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from tests.client.client_fakes import T0, FakeServer, comment, error, message, sse
from trio_chat_client.api import ApiClient
from trio_chat_client.errors import (
    BadRequestError,
    BannedError,
    ConflictError,
    ConnectionLostError,
    NotFoundError,
    NotTrioChatError,
    ProtocolViolationError,
    RateLimitedError,
    ServerFailureError,
    ServerUnreachableError,
    UnauthorizedError,
)
from trio_chat_client.models import (
    BannedEvent,
    CommentEvent,
    MessageEvent,
    UnbannedEvent,
    UnknownEvent,
    structure_event,
)


async def test_login_stores_the_token_and_later_calls_send_it():
    fake = FakeServer()
    fake.on("POST", "/login", httpx.Response(200, json={"username": "alice", "token": "T1"}))
    fake.on("POST", "/send", httpx.Response(201, json={"message": message("m1", "yo")}))
    async with fake.client(token=None) as api:
        session = await api.login("alice", "password1")
        sent = await api.send("yo", to="bob")
    assert (session.username, session.token, api.token) == ("alice", "T1", "T1")
    login, send = fake.requests
    assert "authorization" not in login.headers
    assert json.loads(login.content) == {"username": "alice", "password": "password1"}
    assert send.headers["authorization"] == "Bearer T1"
    body = json.loads(send.content)
    assert body == {"text": "yo", "to": "bob", "client_id": body["client_id"]}
    assert uuid.UUID(body["client_id"]).version == 4
    assert sent.id == "m1" and sent.sent_at == datetime(2026, 11, 26, 13, 53, tzinfo=UTC)


async def test_connect_status_messages_comment_report_updates_parse():
    fake = FakeServer()
    fake.on("POST", "/connect", httpx.Response(200, json={
        "chat": "general", "history": [message("m1")], "unread": [message("m2", to="me")],
    }))  # fmt: skip
    fake.on("GET", "/status", httpx.Response(200, json={
        "username": "me", "chats": ["general"],
        "rate_limit": {"limit": 20, "remaining": 19, "reset_at": T0}, "banned_until": None,
    }))  # fmt: skip
    fake.on("GET", "/messages", httpx.Response(200, json={"messages": [message("m1")]}))
    fake.on("POST", "/comment", httpx.Response(201, json={"comment": comment("c1", "m1")}))
    fake.on("POST", "/report", httpx.Response(201, json={
        "username": "eve", "reports": 3, "threshold": 3, "banned_until": T0,
    }))  # fmt: skip
    fake.on("GET", "/updates", httpx.Response(200, json={
        "events": [{"type": "unbanned", "cursor": "9"}], "cursor": "9",
    }))  # fmt: skip
    async with fake.client() as api:
        connected = await api.connect()
        status = await api.status()
        history = await api.messages(with_user="bob", before="m9", limit=5)
        made = await api.comment("m1", "+1")
        report = await api.report("eve", "spam")
        updates = await api.updates(since="3", timeout=0)
    assert [m.id for m in connected.history] == ["m1"]
    assert connected.unread[0].to == "me" and connected.unread[0].is_private
    assert connected.cursor is None
    assert status.rate_limit.remaining == 19 and status.chats == ("general",)
    assert [m.id for m in history] == ["m1"]
    assert made.message_id == "m1"
    assert report.banned_until is not None
    assert updates.events == (UnbannedEvent(cursor="9"),)
    params = {r.url.path: dict(r.url.params) for r in fake.requests}
    assert params["/messages"] == {"with": "bob", "before": "m9", "limit": "5"}
    assert params["/updates"] == {"since": "3", "timeout": "0"}
    assert json.loads(fake.sent("POST", "/report")[0].content) == {
        "username": "eve",
        "reason": "spam",
    }


async def test_common_chat_history_query():
    fake = FakeServer()
    fake.on("GET", "/messages", httpx.Response(200, json={"messages": []}))
    async with fake.client() as api:
        assert await api.messages(limit=3) == []
    assert dict(fake.requests[0].url.params) == {"chat": "general", "limit": "3"}


@pytest.mark.parametrize(
    ("response", "cls", "code"),
    [
        (error(400, "invalid_request", fields=[{"path": "$.text", "message": "too long"}]),
         BadRequestError, "invalid_request"),
        (error(401, "unauthorized"), UnauthorizedError, "unauthorized"),
        (error(403, "banned", banned_until=T0), BannedError, "banned"),
        (error(404, "user_not_found"), NotFoundError, "user_not_found"),
        (error(409, "already_reported"), ConflictError, "already_reported"),
        (error(429, "rate_limited", retry_after=12), RateLimitedError, "rate_limited"),
        (error(503, "storage_unavailable"), ServerFailureError, "storage_unavailable"),
        (httpx.Response(502, text="<html>bad gateway</html>"), ServerFailureError, "http_502"),
    ],
)  # fmt: skip
async def test_errors_map_to_the_hierarchy(response, cls, code):
    fake = FakeServer()
    fake.on("POST", "/send", response)
    async with fake.client() as api:
        with pytest.raises(cls) as info:
            await api.send("x")
    assert info.value.code == code
    assert info.value.status == response.status_code


async def test_error_extras_are_typed():
    fake = FakeServer()
    fake.on(
        "POST",
        "/send",
        error(429, "rate_limited", retry_after=720, headers={"X-RateLimit-Limit": "20"}),
        error(403, "banned", banned_until=T0),
        error(400, "invalid_request", fields=[{"path": "$.text", "message": "empty"}]),
    )
    async with fake.client() as api:
        with pytest.raises(RateLimitedError) as limited:
            await api.send("x")
        with pytest.raises(BannedError) as banned:
            await api.send("x")
        with pytest.raises(BadRequestError) as invalid:
            await api.send("")
    assert (limited.value.retry_after, limited.value.limit) == (720.0, 20)
    assert banned.value.banned_until == datetime(2026, 11, 26, 13, 53, tzinfo=UTC)
    assert invalid.value.fields == [("$.text", "empty")]


async def test_transport_failures_become_server_unreachable():
    fake = FakeServer()
    fake.on("GET", "/status", httpx.ConnectError("[Errno 111] Connection refused"))
    fake.on("POST", "/send", httpx.RemoteProtocolError("Server disconnected"))
    async with fake.client() as api:
        with pytest.raises(ServerUnreachableError) as refused:
            await api.status()
        with pytest.raises(ConnectionLostError):
            await api.send("x")
    assert refused.value.reason == "connection refused (is the server running?)"
    assert str(refused.value).startswith("cannot reach the server at http://chat.test")


async def test_answers_that_break_the_contract_are_protocol_violations():
    fake = FakeServer()
    fake.on("GET", "/status", httpx.Response(200, text="not json"))
    fake.on("POST", "/connect", httpx.Response(200, json={"chat": "general"}))
    async with fake.client() as api:
        with pytest.raises(ProtocolViolationError):
            await api.status()
        with pytest.raises(ProtocolViolationError):
            await api.connect()


async def test_events_stream_parses_frames_and_sends_last_event_id():
    events = [
        {"type": "message", "cursor": "5", "message": message("m5")},
        {"type": "comment", "cursor": "6", "comment": comment("c1", "m5")},
        {"type": "banned", "cursor": "7", "until": T0},
        {"type": "unbanned", "cursor": "8"},
        {"type": "typing", "cursor": "9"},
    ]
    body = sse(*events)

    async def chunks():
        # Byte-sized pieces: frames and even UTF-8 sequences are split between reads.
        for i in range(len(body)):
            yield body[i : i + 1]

    fake = FakeServer()
    fake.on(
        "GET",
        "/events",
        lambda r: httpx.Response(200, headers={"content-type": "text/event-stream"},
                                 content=chunks()),
    )  # fmt: skip
    async with fake.client() as api, api.events(since="4") as stream:
        got = [e async for e in stream]
        assert stream.last_event_id == "9"
        assert stream.keepalives == 1
    assert [type(e) for e in got] == [
        MessageEvent,
        CommentEvent,
        BannedEvent,
        UnbannedEvent,
        UnknownEvent,
    ]
    assert [e.cursor for e in got] == ["5", "6", "7", "8", "9"]
    request = fake.requests[0]
    assert request.headers["last-event-id"] == "4"
    assert request.headers["authorization"] == "Bearer tok"


async def test_events_errors():
    fake = FakeServer()

    async def broken():
        yield b": keep-alive\n\n"
        raise httpx.ReadError("connection reset")

    fake.on(
        "GET",
        "/events",
        error(401, "unauthorized"),
        httpx.Response(200, json={"not": "sse"}),
        lambda r: httpx.Response(200, headers={"content-type": "text/event-stream"},
                                 content=broken()),
    )  # fmt: skip
    async with fake.client() as api:
        with pytest.raises(UnauthorizedError):
            async with api.events():
                pass
        with pytest.raises(ProtocolViolationError):
            async with api.events():
                pass
        with pytest.raises(ConnectionLostError):
            async with api.events() as stream:
                async for _ in stream:
                    pass
    assert "last-event-id" not in fake.requests[0].headers


def sent_bodies(fake, path):
    return [json.loads(r.content) for r in fake.sent("POST", path)]


async def test_login_and_register_name_the_device_and_return_the_session_id():
    fake = FakeServer()
    answer = {"username": "alice", "token": "T", "session": "s1"}
    fake.on("POST", "/login", httpx.Response(200, json=answer))
    fake.on("POST", "/register", httpx.Response(201, json=answer))
    async with fake.client(token=None) as api:
        assert (await api.login("alice", "pw", device="laptop")).session == "s1"
        await api.register("alice", "pw", device="laptop")
        await api.login("alice", "pw")
    assert [b.get("device") for b in sent_bodies(fake, "/login")] == ["laptop", None]
    assert sent_bodies(fake, "/register")[0]["device"] == "laptop"


async def test_every_send_and_comment_has_a_fresh_client_id():
    fake = FakeServer()
    fake.on("POST", "/send", httpx.Response(201, json={"message": message("m1")}))
    fake.on("POST", "/comment", httpx.Response(201, json={"comment": comment("c1", "m1")}))
    async with fake.client() as api:
        await api.send("a")
        await api.send("a")
        await api.comment("m1", "b")
        await api.comment("m1", "b", client_id="mine")
    ids = [b["client_id"] for b in sent_bodies(fake, "/send") + sent_bodies(fake, "/comment")]
    assert len(set(ids)) == 4 and ids[3] == "mine"


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadError("connection reset"), httpx.ConnectError("Connection refused"),
     httpx.ReadTimeout("timed out")],
)  # fmt: skip
async def test_a_send_is_retried_once_with_the_same_client_id_after_a_network_error(failure):
    fake = FakeServer()
    # The repeat is answered 200 with the original (API.md §12): that is success too.
    fake.on("POST", "/send", failure, httpx.Response(200, json={"message": message("m1")}))
    fake.on("POST", "/comment", failure, httpx.Response(200, json={"comment": comment("c1", "m1")}))
    async with fake.client() as api:
        assert (await api.send("hello")).id == "m1"
        assert (await api.comment("m1", "+1")).id == "c1"
    for path in ("/send", "/comment"):
        first, second = sent_bodies(fake, path)
        assert first == second  # same client_id, same body


async def test_a_second_network_error_is_reported_and_an_answer_is_never_retried():
    fake = FakeServer()
    fake.on("POST", "/send", *[httpx.ReadError("reset")] * 3)
    fake.on("POST", "/comment", error(404, "message_not_found"), httpx.Response(201))
    async with fake.client() as api:
        with pytest.raises(ConnectionLostError):
            await api.send("hello")
        with pytest.raises(NotFoundError):
            await api.comment("m9", "+1")
    assert len(fake.sent("POST", "/send")) == 2
    assert len(fake.sent("POST", "/comment")) == 1


async def test_sessions_revoke_and_read():
    fake = FakeServer()
    fake.on("GET", "/sessions", httpx.Response(200, json={"sessions": [
        {"id": "s2", "device": "phone", "created_at": T0, "last_seen_at": T0, "current": True},
        {"id": "s/1", "device": "laptop", "created_at": T0, "last_seen_at": T0, "current": False},
    ]}))  # fmt: skip
    fake.on("DELETE", "/sessions/s/1", httpx.Response(204))  # the fake matches decoded paths
    fake.on("POST", "/read", httpx.Response(204))
    async with fake.client() as api:
        found = await api.sessions()
        await api.revoke_session("s/1")
        await api.mark_read("dm:alice:bob", "m7")
    assert [(s.id, s.device, s.current) for s in found] == [
        ("s2", "phone", True),
        ("s/1", "laptop", False),
    ]
    assert fake.requests[1].url.raw_path == b"/sessions/s%2F1"
    assert sent_bodies(fake, "/read") == [{"chat": "dm:alice:bob", "up_to": "m7"}]


async def test_status_without_a_rate_limit_and_with_unread_counts():
    fake = FakeServer()
    fake.on("GET", "/status", httpx.Response(200, json={
        "username": "u5", "chats": ["general", "dm:bob:u5"],
        "rate_limit": {"limit": None, "remaining": None, "reset_at": None},
        "banned_until": None, "unread": {"general": 0, "dm:bob:u5": 2},
    }))  # fmt: skip
    async with fake.client() as api:
        status = await api.status()
    assert (status.rate_limit.limit, status.rate_limit.remaining) == (None, None)
    assert status.unread == {"general": 0, "dm:bob:u5": 2}


def test_read_events_and_client_ids_are_read():
    from trio_chat_client.models import ReadEvent

    event = structure_event({"type": "read", "cursor": "3", "chat": "general", "up_to": "m1"})
    assert event == ReadEvent(cursor="3", chat="general", up_to="m1")
    raw = {"type": "message", "cursor": "4", "message": message("m2", client_id="k")}
    with_id = structure_event(raw)
    assert isinstance(with_id, MessageEvent) and with_id.message.client_id == "k"


async def test_an_error_without_a_trio_chat_body_is_not_a_trio_chat_server():
    fake = FakeServer()
    fake.on("POST", "/login", httpx.Response(404, text="<html>Not Found</html>"))
    fake.on("GET", "/status", httpx.Response(501, text="Unsupported method"))
    async with fake.client() as api:
        with pytest.raises(NotTrioChatError, match="does not look like a trio-chat server"):
            await api.login("alice", "pw")
        with pytest.raises(NotTrioChatError, match="answered 501"):
            await api.status()


ROOM = {"id": "room:5eb1", "name": "book club", "owner": "alice", "members": ["alice", "bob"],
        "created_at": T0}  # fmt: skip


async def test_rooms_calls_name_the_room_in_the_path_and_read_the_answers():
    fake = FakeServer()
    fake.on("GET", "/rooms", httpx.Response(200, json={"rooms": [ROOM]}))
    fake.on("POST", "/rooms", httpx.Response(201, json={"room": ROOM}))
    fake.on("GET", "/rooms/room:5eb1", httpx.Response(200, json={
        "room": ROOM, "requests": [{"username": "carol", "requested_at": T0}]}))  # fmt: skip
    fake.on("POST", "/rooms/room:5eb1/members", httpx.Response(201, json={"room": ROOM}))
    fake.on("DELETE", "/rooms/room:5eb1/members/bob x", httpx.Response(204))
    fake.on("POST", "/rooms/room:5eb1/links", httpx.Response(201, json={"link": {
        "token": "TOK", "url": "http://s/join/TOK", "id": "l1", "expires_at": T0,
        "uses_left": None}}))  # fmt: skip
    fake.on("POST", "/join", httpx.Response(202, json={
        "request": {"room": "room:5eb1", "name": "book club", "status": "pending"}}))  # fmt: skip
    fake.on("POST", "/rooms/room:5eb1/requests/carol", httpx.Response(200, json={"room": ROOM}),
            httpx.Response(204))  # fmt: skip
    async with fake.client() as api:
        (listed,) = await api.rooms()
        made = await api.create_room("book club")
        details = await api.room("room:5eb1")
        await api.add_member("room:5eb1", "bob")
        await api.remove_member("room:5eb1", "bob x")
        link = await api.create_link("room:5eb1", "172800")
        asked = await api.join("http://s/join/TOK")
        approved = await api.decide("room:5eb1", "carol", True)
        refused = await api.decide("room:5eb1", "carol", False)
    assert listed == made and listed.members == ("alice", "bob") and listed.name == "book club"
    assert details.requests is not None and details.requests[0].username == "carol"
    assert (link.token, link.url, link.uses_left) == ("TOK", "http://s/join/TOK", None)
    assert (asked.room, asked.name) == ("room:5eb1", "book club")
    assert approved == listed and refused is None
    bodies = [json.loads(r.content) if r.content else None for r in fake.requests]
    assert bodies[1] == {"name": "book club"} and bodies[3] == {"username": "bob"}
    assert bodies[5] == {"expires_in": "172800"} and bodies[6] == {"token": "http://s/join/TOK"}
    assert bodies[7] == {"approve": True} and bodies[8] == {"approve": False}
    assert fake.requests[4].url.raw_path == b"/rooms/room:5eb1/members/bob%20x"


async def test_a_rooms_links_are_listed_and_one_is_revoked_by_id():
    fake = FakeServer()
    listed = [{"id": "lk1", "expires_at": T0, "uses_left": 3},
              {"id": "lk2", "expires_at": T0, "uses_left": None}]  # fmt: skip
    fake.on("GET", "/rooms/room:5eb1/links", httpx.Response(200, json={"links": listed}))
    fake.on("DELETE", "/rooms/room:5eb1/links/lk 2", httpx.Response(204))
    async with fake.client() as api:
        links = await api.links("room:5eb1")
        await api.revoke_link("room:5eb1", "lk 2")
    assert [(lk.id, lk.uses_left, lk.token) for lk in links] == [
        ("lk1", 3, None),
        ("lk2", None, None),
    ]
    assert [(r.method, r.url.raw_path) for r in fake.requests] == [
        ("GET", b"/rooms/room:5eb1/links"),
        ("DELETE", b"/rooms/room:5eb1/links/lk%202"),
    ]


async def test_schedule_sends_the_time_with_its_offset_and_lists_and_cancels():
    fake = FakeServer()
    item = {"id": "q0281aeb96c384f2d", "send_at": "2026-11-30T07:00:00.000Z", "chat": "general",
            "to": None, "text": "good morning", "files": []}  # fmt: skip
    fake.on("POST", "/send", httpx.Response(202, json={"scheduled": item}))
    fake.on("GET", "/scheduled", httpx.Response(200, json={"scheduled": [item]}))
    fake.on("DELETE", "/scheduled/q0281aeb96c384f2d", httpx.Response(204))
    at = datetime.fromisoformat("2026-11-30T08:00:00+01:00")
    async with fake.client() as api:
        scheduled = await api.schedule("good morning", at, chat="room:r1")
        with pytest.raises(ValueError, match="offset"):
            await api.schedule("naive", datetime(2026, 11, 30, 8, 0))
        (listed,) = await api.scheduled()
        await api.unschedule(listed.id)
    body = json.loads(fake.requests[0].content)
    assert body["send_at"] == "2026-11-30T08:00:00+01:00" and body["chat"] == "room:r1"
    assert uuid.UUID(body["client_id"]) and body["text"] == "good morning"
    assert scheduled == listed and scheduled.send_at == at
    assert [r.method for r in fake.requests] == ["POST", "GET", "DELETE"]


async def test_an_upload_streams_the_file_in_chunks_with_its_length_and_type(tmp_path):
    path = tmp_path / "big.bin"
    data = bytes(range(256)) * 4096 * 5 + b"tail"  # 5 MiB and 4 bytes
    path.write_bytes(data)
    chunks: list[int] = []
    progress: list[tuple[int, int]] = []

    requests: list[httpx.Request] = []

    class Streamed(httpx.AsyncBaseTransport):
        """Reads the body as a server does, chunk by chunk (MockTransport reads it whole)."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            requests.append(request)
            received = bytearray()
            async for chunk in request.stream:  # type: ignore[union-attr]
                chunks.append(len(chunk))
                received += chunk
            assert bytes(received) == data
            file = {"id": "f1", "name": "big.bin", "size": len(data),
                    "content_type": "application/x-thing", "sha256": "00"}  # fmt: skip
            return httpx.Response(201, json={"file": file})

    async with ApiClient("http://chat.test", "tok", transport=Streamed()) as api:
        uploaded = await api.upload(
            path, content_type="application/x-thing", progress=lambda *p: progress.append(p)
        )
    (request,) = requests
    assert request.headers["content-length"] == str(len(data))
    assert "transfer-encoding" not in request.headers
    assert request.headers["content-type"] == "application/x-thing"
    assert request.url.params["name"] == "big.bin"
    assert uploaded.id == "f1" and uploaded.size == len(data)
    # Never more than a chunk in memory at once; progress after each.
    assert max(chunks) <= 64 * 1024 and len(chunks) == len(progress) == 81
    assert progress[0] == (64 * 1024, len(data)) and progress[-1] == (len(data), len(data))


async def test_a_download_names_the_file_from_its_disposition():
    fake = FakeServer()
    fake.on("GET", "/files/f1", httpx.Response(200, content=b"x" * 100_000, headers={
        "content-disposition": "attachment; filename*=UTF-8''..%2F..%2Fx",
        "content-type": "text/plain"}))  # fmt: skip
    fake.on("GET", "/files/f2", error(404, "file_not_found", "there is no file 'f2'"))
    async with fake.client() as api:
        async with api.download("f1") as answer:
            got = b"".join([chunk async for chunk in answer.chunks()])
            assert (answer.name, answer.size, answer.content_type) == (
                "../../x",
                100_000,
                "text/plain",
            )
        with pytest.raises(NotFoundError):
            async with api.download("f2"):
                pass
    assert got == b"x" * 100_000
