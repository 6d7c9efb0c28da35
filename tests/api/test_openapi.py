"""/openapi.json is kept true: it lists exactly the router's routes, and real answers
validate against the schemas it names."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import jsonschema
import pytest
import referencing
from referencing.jsonschema import DRAFT202012

from tests.conftest import register
from trio_chat.api.handlers import build_router


@pytest.fixture
async def spec(http):
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


async def test_lists_exactly_the_routes_served(spec, chat_server):
    assert spec["openapi"].startswith("3.1")
    documented = {(m.upper(), path) for path, ops in spec["paths"].items() for m in ops}
    served = {(r.method, r.path) for r in build_router(chat_server.service).routes()}
    assert documented == served


async def test_public_and_authenticated_routes_match_the_spec(spec, http):
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            concrete = re.sub(r"\{[a-z_]+\}", "x", path)
            response = await http.request(method.upper(), concrete)
            if "security" in op:
                assert response.status_code == 401, path
            else:
                assert response.status_code != 401, path


def validator(spec, name):
    resource = DRAFT202012.create_resource(spec)
    registry = referencing.Registry().with_resource("urn:spec", resource)
    schema = {"$ref": f"urn:spec#/components/schemas/{name}"}
    return jsonschema.Draft202012Validator(schema, registry=registry)


async def test_real_answers_validate(spec, http):
    alice = await register(http, "alice")
    bob = await register(http, "bob")
    register_again = await http.post(
        "/login", json={"username": "alice", "password": "correct horse"}
    )
    validator(spec, "Session").validate(register_again.json())
    message = await alice.send("hello")
    await alice.send("psst", to="bob")
    comment = await bob.post("/comment", {"message_id": message["id"], "text": "+1"})
    validator(spec, "CommentResponse").validate(comment.json())
    validator(spec, "SendResponse").validate((await alice.post("/send", {"text": "x"})).json())
    validator(spec, "ConnectResponse").validate((await bob.post("/connect")).json())
    validator(spec, "Status").validate((await bob.get("/status")).json())
    validator(spec, "Sessions").validate((await alice.get("/sessions")).json())
    read = await alice.post("/read", {"chat": "general", "up_to": message["id"]})
    assert read.status_code == 204
    repeated = await alice.post("/send", {"text": "once", "client_id": "k1"})
    again = await alice.post("/send", {"text": "once", "client_id": "k1"})
    assert (repeated.status_code, again.status_code) == (201, 200)
    validator(spec, "SendResponse").validate(again.json())
    validator(spec, "Messages").validate((await bob.get("/messages")).json())
    updates = (await bob.get("/updates", params={"since": "0", "timeout": "0"})).json()
    assert {e["type"] for e in updates["events"]} == {"message", "comment"}
    other_session = {"Authorization": f"Bearer {register_again.json()['token']}"}
    mine = (
        await http.get("/updates", params={"since": "0", "timeout": "0"}, headers=other_session)
    ).json()
    assert "read" in {e["type"] for e in mine["events"]}  # the /read above, from another session
    validator(spec, "Updates").validate(mine)
    validator(spec, "Updates").validate(updates)
    report = await bob.post("/report", {"username": "alice"})
    validator(spec, "ReportResponse").validate(report.json())
    validator(spec, "Health").validate((await http.get("/healthz")).json())
    room = await alice.post("/rooms", {"name": "den"})
    validator(spec, "RoomResponse").validate(room.json())
    rid = room.json()["room"]["id"]
    link = await alice.post(f"/rooms/{rid}/links", {"max_uses": 2})
    validator(spec, "LinkResponse").validate(link.json())
    validator(spec, "Links").validate((await alice.get(f"/rooms/{rid}/links")).json())
    joined = await bob.post("/join", {"token": link.json()["link"]["token"]})
    validator(spec, "JoinResponse").validate(joined.json())
    validator(spec, "RoomResponse").validate((await alice.get(f"/rooms/{rid}")).json())
    approved = await alice.post(f"/rooms/{rid}/requests/bob", {"approve": True})
    validator(spec, "RoomResponse").validate(approved.json())
    validator(spec, "Rooms").validate((await bob.get("/rooms")).json())
    await alice.client.delete(f"/rooms/{rid}/members/bob", headers=alice.auth)
    room_events = (await alice.get("/updates", params={"since": "0", "timeout": "0"})).json()
    assert {"join_request", "room_joined", "room_left"} <= {
        e["type"] for e in room_events["events"]
    }
    validator(spec, "Updates").validate(room_events)
    sent_at = datetime.fromisoformat(message["sent_at"])
    later = await alice.post(
        "/send", {"text": "later", "send_at": (sent_at + timedelta(hours=1)).isoformat()}
    )
    validator(spec, "ScheduledResponse").validate(later.json())
    validator(spec, "ScheduledList").validate((await alice.get("/scheduled")).json())
    await alice.post("/report", {"username": "bob"})
    for response in (
        await http.get("/nowhere"),
        await http.get("/send"),
        await alice.post("/send", {"text": ""}),
        await alice.post("/report", {"username": "bob"}),
    ):
        assert response.status_code >= 400
        validator(spec, "Error").validate(response.json())
    # A schema that would accept anything proves nothing: check it rejects a wrong shape.
    with pytest.raises(jsonschema.ValidationError):
        validator(spec, "Message").validate({**message, "extra": 1})
