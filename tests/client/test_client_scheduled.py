"""Scheduled messages end to end, in virtual time: the server runs in this test's Trio run on
``MockClock`` (tests/conftest.py), the chat session too, its clock the server's. Hours pass
with ``mock_clock.jump``; the session is driven through a scripted console."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
import trio
import trio.testing

from tests.client.client_fakes import ScriptedConsole
from tests.client.zones import fixed_zone
from tests.conftest import RunningServer, register
from trio_chat_client.api import ApiClient
from trio_chat_client.render import format_clock
from trio_chat_client.session import ChatSession

HOUR = 3600
# A jump of virtual time is no stalled reader: the live stream's write deadline (30 s, in Trio
# time) would otherwise cut the stream at every jump, as the keep-alive between never runs.
LIVE_JUMPS = {"stream_send_timeout": 10**7}
pytestmark = pytest.mark.config(**LIVE_JUMPS)
# The session's zone, not the process's (tests/conftest.py pins UTC+05:45 for that): a client
# that mixed the two up shows and schedules wrong times here.
ZONE = fixed_zone(timedelta(hours=-3))
# A time on the client's clock face: "18:30", or "Dec 01 01:00" on another day.
CLOCK = r"(?:\w{3} \d\d )?\d\d:\d\d"


def server_clock(server: RunningServer) -> Callable[[], datetime]:
    """The server's wall clock (virtual under MockClock), as the client's "now"."""
    return lambda: datetime.fromtimestamp(server.service.now() / 1000, tz=UTC)


async def settle(server: RunningServer) -> None:
    """Let timers that are due run and their writes land (as tests/api/test_scheduled.py)."""
    for _ in range(3):
        await trio.testing.wait_all_tasks_blocked()
        await server.service.store.settled()


@asynccontextmanager
async def chatting(
    server: RunningServer, token: str, me: str
) -> AsyncIterator[tuple[ChatSession, ScriptedConsole]]:
    console = ScriptedConsole()
    # No timeouts in virtual time: a jump of hours must not look like a silent server.
    async with ApiClient(server.url, token, timeout=10**6, stream_read_timeout=10**6) as api:
        session = ChatSession(api, me, console, clock=server_clock(server), tz=ZONE.tzinfo)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(session.run)
            await console.expect(r"^\* connected to ")
            yield session, console
            console.close()
    # Everything came over one live stream, as it happened: nothing was resumed.
    assert not any("lost the live connection" in line for line in console.lines), console.lines


async def test_in_sends_at_the_servers_time_and_unschedule_cancels(mock_clock, chat_server, http):
    alice = await register(http, "alice")
    bob = await register(http, "bob")
    async with chatting(chat_server, alice.token, "alice") as (_, console):
        start = server_clock(chat_server)()
        console.type("/in 2h call mum")
        found = await console.expect(
            rf"^\* (q[0-9a-f]{{6}}) will be sent at ({CLOCK}) \(in 2 h\) to the common chat "
            r"\(/unschedule q[0-9a-f]{6} cancels it\)$"
        )
        first = found[1]
        # Two hours from the server's now (virtual time stands still), on the client's clock.
        assert found[2] == format_clock(start + timedelta(hours=2), start, ZONE.tzinfo)
        console.type("/msg bob /in 1h30m is for later")  # an ordinary message, for contrast
        await console.expect(r"alice → bob \(private\): /in 1h30m is for later$")
        console.type("/query bob")
        await console.expect(r"talking privately with bob")
        console.type("/in 1h never mind")
        second = (await console.expect(r"^\* (q[0-9a-f]{6}) will be sent .* to bob "))[1]
        console.type("/scheduled")
        await console.expect(r"^\* 2 message\(s\) waiting to be sent, soonest first:$")
        await console.expect(rf"^\*   {second}  at {CLOCK} \(in 1 h\)  to bob: never mind$")
        await console.expect(rf"^\*   {first}  at {CLOCK} \(in 2 h\)  to the common chat: ")

        console.type(f"/unschedule {second[:4]}")  # a prefix will do
        await console.expect(rf"^\* cancelled {second}; it will not be sent$")
        console.type("/unschedule qzzz")
        await console.expect(r"^error: you have no waiting message matching 'qzzz'")

        mock_clock.jump(HOUR + 1)
        await settle(chat_server)
        mock_clock.jump(HOUR - 2)
        await settle(chat_server)
        assert (await bob.get("/messages")).json()["messages"] == []  # not yet, not ever early
        mock_clock.jump(1)
        await settle(chat_server)
        # It arrives live, marked as scheduled, with the time it was scheduled for.
        line = (await console.expect(rf"#m\d+ alice \(scheduled ({CLOCK})\): call mum$")).string
        assert f"(scheduled {found[2].split()[-1]})" in line
        assert not any("never mind" in shown for shown in console.lines if "#m" in shown)
        console.type("/scheduled")
        await console.expect(r"^\* no messages are waiting to be sent$")

    messages = (await bob.get("/messages")).json()["messages"]
    assert [m["text"] for m in messages] == ["call mum"]
    private = (await bob.get("/messages", params={"with": "alice"})).json()["messages"]
    assert [m["text"] for m in private] == ["/in 1h30m is for later"]  # and never "never mind"


async def test_at_is_the_clients_local_time_sent_with_its_offset(mock_clock, chat_server, http):
    alice = await register(http, "alice")
    async with chatting(chat_server, alice.token, "alice") as (session, console):
        now = session.now().astimezone(ZONE.tzinfo)
        target = (now + timedelta(hours=3)).strftime("%H:%M")  # maybe tomorrow's
        console.type(f"/at {target} stand-up")
        await console.expect(rf"^\* q[0-9a-f]{{6}} will be sent at (?:\w{{3}} \d\d )?{target} \(in")
        (waiting,) = (await alice.get("/scheduled")).json()["scheduled"]
        sent_at = datetime.fromisoformat(waiting["send_at"])
        assert sent_at.astimezone(ZONE.tzinfo).strftime("%H:%M") == target
        assert 2 * HOUR < (sent_at - session.now()).total_seconds() <= 3 * HOUR
        console.type("/at 25:00 nope")
        await console.expect(r"^error: '25:00' is not a time of day; nothing was scheduled$")
        console.type("/at 2020-01-01T09:00 too late")
        await console.expect(r"^error: 2020-01-01T09:00 has passed: give a time in the future")


@pytest.mark.config(ban_threshold=1, **LIVE_JUMPS)
async def test_a_scheduled_message_refused_at_its_time_is_an_error_saying_why(
    mock_clock, chat_server, http
):
    alice = await register(http, "alice")
    bob = await register(http, "bob")
    async with chatting(chat_server, alice.token, "alice") as (_, console):
        console.type("/in 30m good morning")
        await console.expect(rf"will be sent at {CLOCK} \(in 30 min\) to the common chat")
        assert (await bob.post("/report", {"username": "alice"})).status_code == 201
        await console.expect(r"^\* you are banned from sending until ")
        mock_clock.jump(30 * 60)
        await settle(chat_server)
        line = (await console.expect(r"^error: your message for the common chat")).string
        assert line.endswith(
            "was not sent: you were banned from sending at that time (it said: good morning)"
        )
