import httpx
import pytest
import trio

from tests.client.client_fakes import FakeServer, error, message, sse
from trio_chat_client.errors import UnauthorizedError
from trio_chat_client.live import Backoff, LiveFollower


def stream_response(*events, end=True):
    async def body():
        yield sse(*events)
        if not end:
            await trio.sleep_forever()

    return lambda r: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=body()
    )


def test_backoff_doubles_caps_and_resets():
    b = Backoff(initial=0.5, maximum=10)
    assert [b.next_delay() for _ in range(7)] == [0.5, 1, 2, 4, 8, 10, 10]
    b.reset()
    assert b.next_delay() == 0.5


def ev(cursor, mid):
    return {"type": "message", "cursor": cursor, "message": message(mid)}


async def test_reconnects_with_backoff_and_resumes_from_the_last_cursor(autojump_clock):
    fake = FakeServer()
    fake.on(
        "GET",
        "/events",
        stream_response(ev("5", "m5"), ev("6", "m6")),  # then the server goes away
        httpx.ConnectError("Connection refused"),
        httpx.ConnectError("Connection refused"),
        stream_response(ev("7", "m7"), end=False),
    )
    seen, notices = [], []
    async with fake.client() as api:
        with trio.CancelScope() as scope:

            def on_event(event):
                seen.append(event.message.id)
                if event.cursor == "7":
                    scope.cancel()

            follower = LiveFollower(api, "4", on_event, notices.append)
            start = trio.current_time()
            await follower.run()
        elapsed = trio.current_time() - start
    assert seen == ["m5", "m6", "m7"]
    assert [r.headers.get("last-event-id") for r in fake.requests] == ["4", "6", "6", "6"]
    # 0.5 s after the stream ended, then 1 s and 2 s after each refused connection.
    assert elapsed == 3.5
    assert len(notices) == 2  # one "lost" and one "resumed", not one per attempt
    assert notices[0].startswith("lost the live connection to the server (the server closed")
    assert notices[1] == "reconnected to the server; live updates resumed"
    assert follower.opened == 2 and follower.cursor == "7"


async def test_long_outage_waits_at_most_the_cap(autojump_clock):
    fake = FakeServer()
    fake.on("GET", "/events", *[httpx.ConnectError("refused")] * 8, stream_response(end=False))
    async with fake.client() as api:
        follower = LiveFollower(api, "1", lambda e: None, lambda t: None)
        with trio.fail_after(100):
            start = trio.current_time()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(follower.run)
                while follower.opened == 0:
                    await trio.sleep(0.1)
                elapsed = trio.current_time() - start
                nursery.cancel_scope.cancel()
    # 0.5 + 1 + 2 + 4 + 8 + 10 + 10 + 10 = 45.5 s, then (polling granularity) up to 0.1 s.
    assert 45.5 <= elapsed < 45.7


async def test_unauthorized_without_a_way_to_log_in_again_is_raised():
    fake = FakeServer()
    fake.on("GET", "/events", error(401, "unauthorized"))
    async with fake.client() as api:
        with trio.fail_after(5), pytest.raises(UnauthorizedError):
            await LiveFollower(api, "1", lambda e: None, lambda t: None).run()
    assert len(fake.requests) == 1


async def test_unauthorized_logs_in_again_and_resumes_at_once_from_the_same_cursor(
    autojump_clock,
):
    fake = FakeServer()
    fake.on(
        "GET",
        "/events",
        stream_response(ev("5", "m5")),  # the session is revoked: the server ends the stream
        error(401, "unauthorized"),
        stream_response(ev("6", "m6"), end=False),
    )
    seen, relogins = [], []
    async with fake.client(token="old") as api:

        async def relogin(failed_token):
            relogins.append((failed_token, trio.current_time()))
            api.token = "new"

        with trio.CancelScope() as scope:

            def on_event(event):
                seen.append(event.message.id)
                if event.cursor == "6":
                    scope.cancel()

            await LiveFollower(api, "4", on_event, lambda t: None, reauthenticate=relogin).run()
        done = trio.current_time()
    assert seen == ["m5", "m6"]
    assert [t for t, _ in relogins] == ["old"]
    assert relogins[0][1] == done  # no back-off wait after logging in again
    assert [r.headers.get("last-event-id") for r in fake.requests] == ["4", "5", "5"]
    assert [r.headers["authorization"] for r in fake.requests] == [
        "Bearer old",
        "Bearer old",
        "Bearer new",
    ]


async def test_unknown_cursor_restarts_from_the_present(autojump_clock):
    fake = FakeServer()
    fake.on("GET", "/events", error(400, "invalid_cursor"), stream_response(end=False))
    notices = []
    async with fake.client() as api:
        follower = LiveFollower(api, "99", lambda e: None, notices.append)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(follower.run)
            while follower.opened == 0:
                await trio.sleep(0.1)
            nursery.cancel_scope.cancel()
    assert [r.headers.get("last-event-id") for r in fake.requests] == ["99", None]
    assert "does not know our position" in notices[0]
