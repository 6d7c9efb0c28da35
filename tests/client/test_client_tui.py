"""The full-screen client in a pseudo-terminal, asserted on the screen a person would see."""

from __future__ import annotations

import json
import signal

import httpx

from tests.client.conftest import ensure_account
from tests.client.test_client_e2e import out

CONNECTED = r"\* connected to "
PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"


async def test_the_layout_a_message_and_the_status_line(start_server, start_tui):
    server = await start_server()
    tui = await start_tui(server, "alice", rows=12, cols=50)
    await tui.expect(CONNECTED)
    await tui.expect(r"^ \[1:general\] │ live │ alice@127\.0\.0\.1:\d+$")
    tui.send("hello there\r")
    await tui.expect(r"^\[\d\d:\d\d\] #m1 alice: hello there$")
    rows = tui.rows()
    assert rows[-1] == "general>"  # the input line is empty again, at the bottom
    assert (tui.screen.cursor.y, tui.screen.cursor.x) == (11, len("general> "))
    tui.send("/quit\r")
    assert await tui.exit_status() == 0


async def test_a_line_longer_than_the_terminal_wraps_and_leaves_no_stale_rows(
    start_server, start_tui
):
    server = await start_server()
    tui = await start_tui(server, "alice", rows=12, cols=40)
    await tui.expect(CONNECTED)
    text = "0123456789" * 8 + "and-that-is-the-end!"  # 100 characters, no spaces
    tui.send(text)
    prompt = "general> "
    # 9 + 100 = 109 columns: three rows of 40, the cursor after the last character.
    await tui.wait(lambda: tui.rows()[-3:] == [
        (prompt + text)[:40], (prompt + text)[40:80], (prompt + text)[80:]
    ], "the input on three rows")  # fmt: skip
    assert (tui.screen.cursor.y, tui.screen.cursor.x) == (11, 109 - 80)
    assert tui.rows()[-4].startswith(" [1:general]")  # the status line moved up for room
    tui.send("\r")
    await tui.wait(lambda: tui.rows()[-1] == "general>", "the input line emptied")
    await tui.expect(r"end!$")
    rows = tui.rows()
    assert rows[-1] == prompt.rstrip() and rows[-2].startswith(" [1:general]")
    # The message is in the scrollback once, wrapped; nothing of the old input rows is left.
    shown = "".join(row.strip() for row in rows[:-2])
    assert shown.count(text) == 1 and shown.count("general>") == 0, tui.dump()
    assert (tui.screen.cursor.y, tui.screen.cursor.x) == (11, len(prompt))


async def test_wide_characters_take_two_columns_and_the_cursor_follows(start_server, start_tui):
    server = await start_server()
    tui = await start_tui(server, "alice", rows=10, cols=40)
    await tui.expect(CONNECTED)
    tui.send("你好世界 ok")
    await tui.expect(r"^general> 你好世界 ok$")
    # Four wide characters are eight columns: the cursor stands after "ok".
    assert (tui.screen.cursor.y, tui.screen.cursor.x) == (9, 9 + 8 + 3)
    tui.send("\x1b[D\x1b[D\x1b[D")  # three times left: before the space
    await tui.wait(lambda: tui.screen.cursor.x == 9 + 8, "the cursor after 界")
    tui.send("!\r")
    await tui.expect(r"#m1 alice: 你好世界! ok$")
    tui.send("emoji 😀 too")
    await tui.expect(r"^general> emoji 😀 too$")
    assert tui.screen.cursor.x == 9 + len("emoji ") + 2 + len(" too")


async def test_a_multi_line_paste_is_one_message_to_the_chat_it_was_typed_for(
    start_server, start_tui, run_client
):
    server = await start_server()
    assert (await run_client(server.url, "bob", "send", "hi")).returncode == 0
    tui = await start_tui(server, "alice", rows=14, cols=50)
    await tui.expect(CONNECTED)
    tui.send("/msg bob ")
    tui.send(f"{PASTE_START}first line\nsecond line{PASTE_END}")
    await tui.wait(
        lambda: tui.rows()[-2:] == ["general> /msg bob first line", "second line"],
        "the paste on two input rows, not sent",
    )
    tui.send("\r")
    await tui.expect(r"sent privately to bob")
    # A terminal without bracketed paste: the lines arrive in one read.
    tui.send("one\rtwo\r")
    await tui.expect(r"#m\d+ alice: one$")
    read = await run_client(server.url, "bob", "read", "--json")
    texts = [json.loads(line)["message"]["text"] for line in out(read).splitlines()]
    assert texts == ["hi", "one\ntwo"]  # the private message did not spill into the common chat
    private = await run_client(server.url, "bob", "read", "--with", "alice", "--json")
    assert [json.loads(line)["message"]["text"] for line in out(private).splitlines()] == [
        "first line\nsecond line"
    ]


async def test_a_resize_redraws_at_the_new_size(start_server, start_tui):
    server = await start_server()
    tui = await start_tui(server, "alice", rows=16, cols=60)
    await tui.expect(CONNECTED)
    tui.send("a message wide enough to need two rows on a narrow window\r")
    await tui.expect(r"#m1 alice: a message wide enough")
    tui.send("typing")
    tui.resize(10, 30)
    await tui.wait(
        lambda: tui.rows()[-1] == "general> typing" and tui.rows()[-2].startswith(" [1:gen"),
        "the status and input lines at the bottom of the smaller screen",
    )
    assert any(row.startswith("[") and "#m1 alice: a" in row for row in tui.rows())
    assert all(len(row) <= 30 for row in tui.rows())
    assert (tui.screen.cursor.y, tui.screen.cursor.x) == (9, len("general> typing"))


async def test_a_message_arriving_while_typing_leaves_the_input_alone(
    start_server, start_tui, run_client
):
    server = await start_server()
    tui = await start_tui(server, "alice", rows=12, cols=50)
    await tui.expect(CONNECTED)
    tui.send("half typ")
    await tui.expect("^general> half typ$")
    assert (await run_client(server.url, "bob", "send", "hello alice")).returncode == 0
    await tui.expect(r"#m1 bob: hello alice$")
    assert tui.rows()[-1] == "general> half typ"
    assert (tui.screen.cursor.y, tui.screen.cursor.x) == (11, len("general> half typ"))
    assert tui.screen.bells == 1  # her name was mentioned
    tui.send("ed\r")
    await tui.expect(r"#m2 alice: half typed$")


async def test_private_messages_ring_and_wait_in_their_own_view(
    start_server, start_tui, run_client
):
    server = await start_server()
    tui = await start_tui(server, "alice", rows=12, cols=60)
    await tui.expect(CONNECTED)
    assert (await run_client(server.url, "bob", "send", "--to", "alice", "psst")).returncode == 0
    await tui.expect(r"^ \[1:general\] 2:bob\(1\) │")
    assert tui.screen.bells == 1
    assert "psst" not in tui.text()  # it waits in bob's view
    tui.send("\x1b2")  # Alt-2
    await tui.expect(r"#m1 bob: psst$")
    await tui.expect(r"^ 1:general \[2:bob\] │")
    assert tui.rows()[-1] == "bob>"
    tui.send("see you\r")  # typed in bob's view: to bob
    await tui.expect(r"#m2 alice: see you$")
    private = await run_client(server.url, "bob", "read", "--with", "alice")
    assert out(private).splitlines()[-1].endswith("alice -> bob: see you")


async def test_tab_completes_commands_and_names_and_ctrl_c_clears_the_line(
    start_server, start_tui, run_client
):
    server = await start_server()
    assert (await run_client(server.url, "bobby", "send", "hi")).returncode == 0
    tui = await start_tui(server, "alice", rows=10, cols=50)
    await tui.expect(r"#m1 bobby: hi")
    tui.send("/ms\t")
    await tui.expect("^general> /msg$")
    tui.send("bo\t")
    await tui.expect("^general> /msg bobby$")
    tui.send("hey")
    await tui.expect("^general> /msg bobby hey$")  # the completion added the space
    tui.send("\x03")  # Ctrl-C
    await tui.expect("^general>$")
    tui.send("\x03")  # on an empty line: a hint, not an exit
    await tui.expect(r"^\* Ctrl-C clears ")
    tui.send("\x04")  # Ctrl-D
    assert await tui.exit_status() == 0


async def test_no_color_means_no_colours(start_server, start_tui, run_client):
    server = await start_server()
    assert (await run_client(server.url, "bob", "send", "hi")).returncode == 0
    coloured = await start_tui(server, "alice", rows=8, cols=40)
    await coloured.expect(r"#m1 bob: hi")
    plain = await start_tui(server, "carol", rows=8, cols=40, env={"NO_COLOR": "1"})
    await plain.expect(r"#m1 bob: hi")

    def colours(terminal):
        return {
            (char.fg, char.bg) for row in terminal.screen.buffer.values() for char in row.values()
        }

    assert len(colours(coloured)) > 2
    assert colours(plain) == {("default", "default")}


async def test_a_session_ended_elsewhere_asks_for_the_password_on_the_input_line(
    start_server, start_tui
):
    server = await start_server()
    tui = await start_tui(server, "alice", "--device", "laptop", rows=12, cols=70)
    await tui.expect(CONNECTED)
    async with httpx.AsyncClient(base_url=server.url) as http:
        login = {"username": "alice", "password": "password1", "device": "phone"}
        headers = {
            "Authorization": f"Bearer {(await http.post('/login', json=login)).json()['token']}"
        }
        (laptop,) = [s for s in (await http.get("/sessions", headers=headers)).json()["sessions"]
                     if s["device"] == "laptop"]  # fmt: skip
        await http.delete(f"/sessions/{laptop['id']}", headers=headers)
    await tui.expect(r"^password for alice at http://127\.0\.0\.1:\d+:$")
    tui.send("password1")
    await tui.expect(r"^password for alice at .*: \*{9}$")  # masked
    tui.send("\r")
    await tui.expect(r"logged in again; carrying on")
    await tui.expect(r"^general>$")
    tui.send("back\r")
    await tui.expect(r"#m1 alice: back$")
    assert "password1" not in tui.text()


async def test_the_terminal_is_restored_on_sigterm_and_sighup(start_server, start_tui):
    server = await start_server()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        # stty runs after the client, in the same terminal: it shows the modes left behind.
        tui = await start_tui(server, "alice", rows=24, cols=100)
        await tui.expect(CONNECTED)
        # The client changed the modes: no echo, no line editing, Ctrl-C a key.
        tui.child.kill(signum)
        assert await tui.exit_status() == 128 + signum
        assert "\x1b[?1049l" in tui.output  # left the alternate screen
        assert "\x1b[?2004l" in tui.output  # bracketed paste off again
        assert not tui.screen.cursor.hidden


async def test_ctrl_c_and_ctrl_d_at_the_password_prompt_end_cleanly(start_server, start_tui):
    server = await start_server()
    for key, status in (("\x03", 130), ("\x04", 2)):
        tui = await start_tui(server, "alice", password=None)
        await tui.expect(r"^password for alice at http://127\.0\.0\.1:\d+:")
        tui.send(key)
        assert await tui.exit_status() == status
        assert "Traceback" not in tui.output
        assert "Error" not in tui.output


async def test_register_asks_for_the_new_password_twice(start_server, start_tui):
    server = await start_server()
    tui = await start_tui(server, "zoe", "--register", password=None)
    await tui.expect(r"^new password for zoe at http://127\.0\.0\.1:\d+:")
    tui.send("correct horse\r")
    await tui.expect(r"^the same password again:")
    tui.send("correct horse\r")
    await tui.expect(r"registered a new account 'zoe'")
    await tui.expect(CONNECTED)
    tui.send("/quit\r")
    assert await tui.exit_status() == 0


async def test_a_room_is_one_more_conversation_with_its_name_on_the_tab(start_server, start_tui):
    server = await start_server()
    await ensure_account(server.url, "bob", "password1")
    tui = await start_tui(server, "alice", rows=12, cols=60)
    await tui.expect(CONNECTED)
    async with httpx.AsyncClient(base_url=server.url) as http:
        login = await http.post("/login", json={"username": "bob", "password": "password1"})
        bob = {"Authorization": f"Bearer {login.json()['token']}"}
        room = (await http.post("/rooms", json={"name": "book club"}, headers=bob)).json()["room"]
        await http.post(f"/rooms/{room['id']}/members", json={"username": "alice"}, headers=bob)
        # Added while the chat is on screen: a new tab, live, and a word about it.
        await tui.expect(r"^ \[1:general\] 2:book club │ live │")
        await tui.expect(r"^\* bob added you to the room book club; it is view 2")
        body = {"chat": room["id"], "text": "welcome, alice"}
        await http.post("/send", json=body, headers=bob)
        await tui.expect(r"^ \[1:general\] 2:book club\(1\) │")
        assert "welcome" not in tui.text()  # it waits in the room's view
        tui.send("/switch Book c\t")  # Tab completes the room's name, spaces and all
        await tui.expect(r"^general> /switch book club$")
        tui.send("\r")
        await tui.expect(r"^ 1:general \[2:book club\] │")
        await tui.expect(r"#m\d+ bob: welcome, alice$")
        assert tui.rows()[-1] == "book club>"  # the prompt names the chat lines go to
        tui.send("thanks!\r")
        await tui.expect(r"#m\d+ alice: thanks!$")
        said = await http.get("/messages", params={"chat": room["id"]}, headers=bob)
        assert [m["text"] for m in said.json()["messages"]] == ["welcome, alice", "thanks!"]
        # Removed from it: the tab stays, marked, and nothing more can be sent there.
        await http.delete(f"/rooms/{room['id']}/members/alice", headers=bob)
        await tui.expect(r"^ 1:general \[2:book club\(left\)\] │")
        await tui.expect(r"^\* you are no longer in book club: its owner removed you")
        tui.send("anyone?\r")
        await tui.expect(r"^error: you are no longer in book club; nothing was sent")
    tui.send("/quit\r")
    assert await tui.exit_status() == 0
