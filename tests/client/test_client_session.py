from datetime import UTC, datetime, timedelta

import httpx
import trio

from tests.client.client_fakes import FakeServer, comment, error, message
from tests.client.zones import BAKER_ISLAND, local_zone
from trio_chat_client.models import (
    BannedEvent,
    Comment,
    CommentEvent,
    MessageEvent,
    ReadEvent,
    converter,
)
from trio_chat_client.models import Message as MessageObj
from trio_chat_client.session import ChatSession

NOW = datetime(2026, 11, 26, 13, 53, tzinfo=UTC)


class FakeConsole:
    shows_everything = True  # as the line console

    def __init__(self, lines):
        self.inputs = list(lines)
        self.output: list[str] = []

    def show(self, line):
        self.output.append(line.text)

    def show_older(self, chat, lines):
        self.output.extend(line.text for line in lines)

    def changed(self):
        pass

    async def read_password(self, prompt):
        return None

    async def read_line(self):
        await trio.sleep(0)
        return self.inputs.pop(0) if self.inputs else None


def hanging_stream(request):
    async def body():
        await trio.sleep_forever()
        yield b""

    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())


def session_with(fake, lines):
    console = FakeConsole(lines)
    api = fake.client()
    return ChatSession(api, "me", console, clock=lambda: NOW, tz=UTC), console


def msg(mid, **kw):
    return converter.structure(message(mid, **kw), MessageObj)


async def test_start_shows_history_then_marked_unread_then_chats():
    fake = FakeServer()
    fake.on("POST", "/connect", httpx.Response(200, json={
        "chat": "general", "cursor": "10",
        "history": [message("m1", "old")],
        "unread": [message("m2", "new"), message("m3", "psst", author="bob", to="me")],
    }))  # fmt: skip
    fake.on("GET", "/events", hanging_stream)
    fake.on("POST", "/send", httpx.Response(201, json={"message": message("m4", "yo", "me")}))
    session, console = session_with(fake, ["yo", "/users"])
    async with session.api:
        with trio.fail_after(5):
            await session.run()
    assert console.output == [
        "── history ──",
        "[13:53] #m1 alice: old",
        "── unread ──",
        "[13:53] #m2 alice: new",
        "[13:53] #m3 bob → me (private): psst",
        "── end of unread ──",
        "* connected to http://chat.test as me; type /help for commands",
        "[13:53] #m4 me: yo",
        "* users seen in this session: me (you), alice, bob (the server has no user list)",
    ]
    # The cursor came with /connect, so no extra /updates call was needed.
    assert fake.sent("GET", "/events")[0].headers["last-event-id"] == "10"
    assert fake.sent("GET", "/updates") == []


async def test_without_a_connect_cursor_the_present_is_asked_for():
    fake = FakeServer()
    fake.on("POST", "/connect", httpx.Response(200, json={
        "chat": "general", "history": [], "unread": []}))  # fmt: skip
    fake.on("GET", "/updates", httpx.Response(200, json={"events": [], "cursor": "77"}))
    fake.on("GET", "/events", hanging_stream)
    session, console = session_with(fake, [])
    async with session.api:
        with trio.fail_after(5):
            await session.run()
    assert "── no unread messages ──" in console.output
    assert dict(fake.sent("GET", "/updates")[0].url.params) == {"timeout": "0"}


async def test_each_message_and_comment_is_shown_once_whoever_delivers_it():
    session, console = session_with(FakeServer(), [])
    session.show_message(msg("m1", text="hi"))  # e.g. the answer to our own /send
    session.on_event(MessageEvent("5", msg("m1", text="hi")))  # the same, via the stream
    c = converter.structure(comment("c1", "m1"), Comment)
    session.on_event(CommentEvent("6", c))
    # The server may also re-send the message with its comments: nothing new to show.
    session.on_event(MessageEvent("6", msg("m1", text="hi", comments=[comment("c1", "m1")])))
    session.on_event(
        MessageEvent(
            "7",
            msg("m1", text="hi", comments=[comment("c1", "m1"), comment("c2", "m1", "wow")]),
        )
    )
    assert console.output == [
        "[13:53] #m1 alice: hi",
        "[13:53]   ↳ bob on #m1: +1",
        "[13:53]   ↳ bob on #m1: wow",
    ]
    await session.api.aclose()


async def test_command_errors_become_sentences_and_the_session_goes_on():
    fake = FakeServer()
    fake.on("POST", "/connect", httpx.Response(200, json={
        "chat": "general", "cursor": "1", "history": [], "unread": []}))  # fmt: skip
    fake.on("GET", "/events", hanging_stream)
    fake.on("POST", "/send", error(404, "user_not_found", "there is no user 'zed'"),
            httpx.ConnectError("Connection refused"))  # fmt: skip
    fake.on("POST", "/comment", error(404, "message_not_found", "there is no message 'x'"))
    session, console = session_with(
        fake, ["/msg zed hi", "/comment #m9 +1", "/history 0", "offline?", "/quit", "never"]
    )
    async with session.api:
        with trio.fail_after(5):
            await session.run()
    errors = [line for line in console.output if line.startswith("error:")]
    assert errors == [
        "error: there is no user 'zed'; your message was not sent",
        "error: there is no message #m9 (or it is not visible to you); your message was not sent",
        "error: usage: /history [N], with N from 1 to 100",
        "error: cannot reach the server at http://chat.test: connection refused (is the server "
        "running?); your message was NOT sent (try again when the server is back)",
    ]
    # The refused connection was tried twice (the retry with the same client_id); "never" was
    # not sent at all.
    assert [r.url.path for r in fake.requests].count("/send") == 3


async def test_a_live_ban_at_22_00_shows_tomorrows_date_in_the_process_zone():
    now = BAKER_ISLAND.at(2026, 11, 26, 22, 0).astimezone(UTC)  # Nov 27 10:00 in UTC
    console = FakeConsole([])
    # No tz, as the CLI builds it: times are shown in the process's zone.
    session = ChatSession(FakeServer().client(), "me", console, clock=lambda: now)
    with local_zone(BAKER_ISLAND):
        session.on_event(BannedEvent("7", until=now + timedelta(hours=4)))
    assert console.output == [
        "* you are banned from sending until Nov 27 02:00 (4 h from now) because other users "
        "reported you; you can still read"
    ]
    await session.api.aclose()


class ScreenConsole(FakeConsole):
    shows_everything = False  # as the full-screen console: one conversation in view

    def __init__(self, lines):
        super().__init__(lines)
        self.changes = 0

    def changed(self):
        self.changes += 1


async def test_unread_marks_per_conversation_cleared_by_viewing_or_another_device():
    fake = FakeServer()
    fake.on("POST", "/read", httpx.Response(204))
    console = ScreenConsole([])
    session = ChatSession(fake.client(), "Me", console, clock=lambda: NOW, tz=UTC)
    views = session.views
    session.on_event(MessageEvent("1", msg("m1", author="bob", to="me", chat="dm:bob:me")))
    session.on_event(MessageEvent("2", msg("m2", author="bob", to="me", chat="dm:bob:me")))
    session.on_event(MessageEvent("3", msg("m3", author="carol", text="hi all")))
    session.on_event(MessageEvent("4", msg("m4", author="ME", to="bob", chat="dm:bob:me")))
    private = views.get("dm:bob:me")
    assert (private.title, private.unread, private.alert) == ("bob", 2, True)
    assert views.get("general").unread == 0  # in view
    # Another device read up to m1: only m2 is left (m4 is ours, never unread).
    session.on_event(ReadEvent("5", chat="dm:bob:me", up_to="m1"))
    assert (private.unread, private.alert) == (1, True)
    session.on_event(ReadEvent("6", chat="dm:bob:me", up_to="m4"))
    assert (private.unread, private.alert) == (0, False)
    # Viewing a conversation clears its marks and tells the server, for the other devices.
    session.on_event(MessageEvent("7", msg("m5", author="bob", to="me", chat="dm:bob:me")))
    assert private.unread == 1
    session.focus("dm:bob:me")
    # (general was in view when carol wrote: seen at once.)
    assert private.unread == 0 and session._reads == {"general": "m3", "dm:bob:me": "m5"}
    await session.api.aclose()
