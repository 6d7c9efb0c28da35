"""Rate limit, reports and bans over HTTP, in virtual time (``mock_clock``).

The server runs inside the test's Trio run, so jumping the MockClock moves the server's
clock too: an hour passes instantly and exactly.
"""

from __future__ import annotations

import httpx
import trio
import trio.testing

from tests.conftest import register, start_server
from trio_chat.clock import TrioClock

HOUR = 3600


async def settle(server) -> None:
    """Let timers that are due run and their writes land."""
    await trio.testing.wait_all_tasks_blocked()
    await server.service.store.settled()
    await trio.testing.wait_all_tasks_blocked()


async def test_rate_limit_20_per_hour_then_reset(mock_clock, chat_server, http):
    alice = await register(http, "alice")
    await register(http, "bob")
    for i in range(20):
        response = await alice.post("/send", {"text": f"m{i}"})
        assert response.status_code == 201
        assert response.headers["x-ratelimit-remaining"] == str(19 - i)
        # The first counted message arms the timer that ends the period.
        assert ("window", "alice") in chat_server.service.timers
        mock_clock.jump(10)  # 20 messages over 200 s
    refused = await alice.post("/send", {"text": "one too many"})
    assert refused.status_code == 429
    body = refused.json()["error"]
    assert body["code"] == "rate_limited"
    # The window opened with the first message, 200 s ago: 3400 s remain.
    assert refused.headers["retry-after"] == "3400" and body["retry_after"] == 3400
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert refused.headers["x-ratelimit-reset"] == "3400"
    # A refused send changed nothing; private messages are not counted.
    assert (await alice.post("/send", {"text": "psst", "to": "bob"})).status_code == 201
    page = (await alice.get("/messages")).json()["messages"]
    assert len(page) == 20 and page[-1]["text"] == "m19"

    mock_clock.jump(3400 - 0.5)
    almost = await alice.post("/send", {"text": "not yet"})
    assert almost.status_code == 429 and almost.headers["retry-after"] == "1"
    mock_clock.jump(0.5)  # exactly the period end
    await settle(chat_server)
    # The timer fired (not merely went away): the window is gone from the state.
    assert ("window", "alice") not in chat_server.service.timers
    assert chat_server.service.state.state_of("alice").window is None
    status = (await alice.get("/status")).json()
    assert status["rate_limit"] == {"limit": 20, "remaining": 20, "reset_at": None}
    again = await alice.post("/send", {"text": "new period"})
    assert again.status_code == 201 and again.headers["x-ratelimit-remaining"] == "19"


async def test_three_reports_ban_for_four_hours(mock_clock, chat_server, http):
    mallory = await register(http, "mallory")
    reporters = [await register(http, name) for name in ("a", "b", "c")]
    message = await reporters[0].send("report-worthy")

    self_report = await mallory.post("/report", {"username": "mallory"})
    assert self_report.status_code == 400
    unknown = await reporters[0].post("/report", {"username": "nobody"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "user_not_found"

    first = await reporters[0].post("/report", {"username": "Mallory", "reason": "spam"})
    assert first.status_code == 201
    assert first.json() == {
        "username": "mallory",
        "reports": 1,
        "threshold": 3,
        "banned_until": None,
    }
    twice = await reporters[0].post("/report", {"username": "mallory"})
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "already_reported"
    assert (await reporters[1].post("/report", {"username": "mallory"})).json()["reports"] == 2
    third = (await reporters[2].post("/report", {"username": "mallory"})).json()
    assert third["reports"] == 3 and third["banned_until"] is not None

    for path, body in (
        ("/send", {"text": "x"}),
        ("/comment", {"message_id": message["id"], "text": "x"}),
    ):
        response = await mallory.post(path, body)
        assert response.status_code == 403, path
        error = response.json()["error"]
        assert error["code"] == "banned" and error["banned_until"] == third["banned_until"]
    # Reading still works.
    assert (await mallory.get("/messages")).status_code == 200
    assert (await mallory.post("/connect")).status_code == 200
    assert (await mallory.get("/status")).json()["banned_until"] == third["banned_until"]

    mock_clock.jump(4 * HOUR - 1)
    assert (await mallory.post("/send", {"text": "x"})).status_code == 403
    mock_clock.jump(1)
    await settle(chat_server)
    assert (await mallory.get("/status")).json()["banned_until"] is None
    assert len(chat_server.service.timers) == 0  # lifted: no timer task left behind
    assert (await mallory.post("/send", {"text": "back"})).status_code == 201
    # The count started again at 0.
    assert (await reporters[0].post("/report", {"username": "mallory"})).json()["reports"] == 1


async def test_ban_events_reach_the_banned_user(mock_clock, chat_server, http):
    mallory = await register(http, "mallory")
    others = [await register(http, n) for n in ("a", "b", "c")]
    start = (await mallory.post("/connect")).json()["cursor"]
    for other in others:
        await other.post("/report", {"username": "mallory"})
    banned = (await mallory.get("/updates", params={"since": start, "timeout": "0"})).json()
    assert [e["type"] for e in banned["events"]] == ["banned"]
    # Nobody else sees it.
    for other in others:
        seen = (await other.get("/updates", params={"since": start, "timeout": "0"})).json()
        assert seen["events"] == []
    mock_clock.jump(4 * HOUR)
    await settle(chat_server)
    lifted = await mallory.get("/updates", params={"since": banned["cursor"], "timeout": "0"})
    assert [e["type"] for e in lifted.json()["events"]] == ["unbanned"]


async def test_ban_and_rate_window_survive_a_restart(mock_clock, nursery, config):
    # One wall clock across both runs, as the real one would be.
    clock = TrioClock()
    server = await start_server(nursery, config, clock)

    async with httpx.AsyncClient(base_url=server.url) as client:
        mallory = await register(client, "mallory")
        for i in range(5):
            await mallory.send(f"m{i}")
        for name in ("a", "b", "c"):
            await (await register(client, name)).post("/report", {"username": "mallory"})
        until = (await mallory.get("/status")).json()["banned_until"]
        token = mallory.token
    await server.stop()

    mock_clock.jump(HOUR / 2)
    server = await start_server(nursery, config, clock)
    async with httpx.AsyncClient(base_url=server.url) as client:
        headers = {"Authorization": f"Bearer {token}"}
        status = (await client.get("/status", headers=headers)).json()
        assert status["banned_until"] == until
        assert status["rate_limit"]["remaining"] == 15
        assert ("ban", "mallory") in server.service.timers
        assert ("window", "mallory") in server.service.timers
        # The window (opened at t=0) ends on time after the restart...
        mock_clock.jump(HOUR / 2)
        await settle(server)
        assert ("window", "mallory") not in server.service.timers
        status = (await client.get("/status", headers=headers)).json()
        assert status["rate_limit"]["remaining"] == 20
        # ...and so does the ban.
        mock_clock.jump(3 * HOUR)
        await settle(server)
        status = (await client.get("/status", headers=headers)).json()
        assert status["banned_until"] is None
        assert len(server.service.timers) == 0
    await server.stop()
