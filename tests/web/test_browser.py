"""The web client in a real browser (Debian's Chromium, driven by Playwright) against a real
server process, next to a console-client user.

Each test uses fresh usernames on one shared server. The console user runs
``trio-chat-client send`` / ``read`` (script mode); for rooms, which the console client does
not have, it acts through the HTTP API with its own session, as the client would.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import zlib
from pathlib import Path

import httpx
from playwright.sync_api import expect

from tests.web.conftest import BAN_THRESHOLD, PASSWORD, RATE_LIMIT, register, screenshot

XSS = "<img src=x onerror=alert(1)>"


def test_two_browsers_and_a_console_chat_live(tabs, server, console, unique):
    a_name, b_name, c_name = unique("alice"), unique("bob"), unique("carol")
    carol = console(c_name)
    carol.run("read")  # registers carol
    alice = tabs()
    screenshot(alice.page, "login")
    alice.sign_in(a_name)
    bob = tabs().sign_in(b_name)

    # The common chat: live both ways, the console in the middle.
    alice.send("Hello from a browser")
    expect(bob.message("Hello from a browser")).to_be_visible()
    carol.run("send", "Hi from the console")
    expect(alice.message("Hi from the console")).to_be_visible()
    expect(bob.message("Hi from the console")).to_be_visible()
    bob.send("Hello both")
    expect(alice.message("Hello both")).to_be_visible()
    assert "Hello from a browser" in carol.run("read")
    # A comment, live.
    bob.message("Hello from a browser").get_by_role("button", name="Comment").click()
    bob.page.get_by_placeholder("Write a comment").fill("+1 from bob")
    bob.page.get_by_placeholder("Write a comment").press("Enter")
    expect(alice.message("Hello from a browser").locator(".comment")).to_contain_text("+1 from bob")
    screenshot(alice.page, "common-chat")

    # A private chat between the browsers: an unread count until it is opened.
    alice.page.fill("#dm-name", b_name)
    alice.page.press("#dm-name", "Enter")
    expect(alice.page.locator("#chat-title")).to_have_text(b_name)
    alice.send("Just between us")
    expect(bob.chat(a_name).locator(".badge")).to_have_text("1")
    bob.open(a_name)
    expect(bob.message("Just between us")).to_be_visible()
    expect(bob.chat(a_name).locator(".badge")).to_have_count(0)
    bob.send("Sure")
    expect(alice.message("Sure")).to_be_visible()
    # ... and one with the console user.
    carol.run("send", "--to", a_name, "Psst, alice")
    expect(alice.chat(c_name).locator(".badge")).to_have_text("1")
    alice.open(c_name)
    expect(alice.message("Psst, alice")).to_be_visible()
    alice.send("Hi carol")
    assert "Hi carol" in carol.run("read", "--with", a_name)
    expect(bob.message("Psst, alice")).to_have_count(0)  # never anyone else's
    screenshot(alice.page, "private-chat")

    # A room: bob asks through a link, alice approves; the console user joins the same way.
    alice.page.fill("#room-name", "Book club")
    alice.page.press("#room-name", "Enter")
    expect(alice.page.locator("#chat-title")).to_have_text("Book club")
    alice.page.click("#room-info")
    alice.page.get_by_role("button", name="Create a link").click()
    link = alice.page.get_by_label("Invite link").input_value()
    assert link.startswith(f"{server.url}/join/")
    bob.page.fill("#join-token", link)
    bob.page.press("#join-token", "Enter")
    expect(bob.page.locator("#toast")).to_contain_text("You asked to join Book club")
    with httpx.Client(base_url=server.url) as http:
        token = http.post("/login", json={"username": c_name, "password": PASSWORD})
        as_carol = {"Authorization": f"Bearer {token.json()['token']}"}
        assert http.post("/join", json={"token": link}, headers=as_carol).status_code == 202
        expect(alice.page.get_by_role("button", name=f"Approve {b_name}")).to_be_visible()
        expect(alice.page.get_by_role("button", name=f"Approve {c_name}")).to_be_visible()
        screenshot(alice.page, "room-requests")
        alice.page.get_by_role("button", name=f"Approve {b_name}").click()
        expect(bob.page.locator("#toast")).to_contain_text("You are now a member of Book club")
        alice.page.get_by_role("button", name=f"Approve {c_name}").click()
        expect(alice.page.locator("#panel h3", has_text="Members (3)")).to_be_visible()
        alice.page.get_by_role("button", name="Close").click()
        bob.open("Book club")
        bob.send("Glad to be here")
        expect(alice.message("Glad to be here")).to_be_visible()
        room = alice.page.evaluate("sessionStorage.getItem('trio-chat.chat')")
        sent = http.post("/send", json={"chat": room, "text": "Me too"}, headers=as_carol)
        assert sent.status_code == 201, sent.text
        expect(alice.message("Me too")).to_be_visible()
        expect(bob.message("Me too")).to_be_visible()
        alice.send("Welcome")
        page = http.get("/messages", params={"chat": room}, headers=as_carol).json()
        assert [m["text"] for m in page["messages"]] == ["Glad to be here", "Me too", "Welcome"]
    screenshot(alice.page, "room")


def png(width: int, height: int) -> bytes:
    """A small RGB image, made here: a PNG is a signature and three chunks."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\0" + b"".join(bytes((x * 4 % 256, y * 5 % 256, 160)) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_a_file_goes_up_and_comes_down_intact(tabs, unique, tmp_path):
    picture = tmp_path / "sunset.png"
    picture.write_bytes(png(64, 48))
    data = tmp_path / "data.bin"
    data.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    alice = tabs().sign_in(unique("alice"))
    bob = tabs().sign_in(unique("bob"))
    alice.page.set_input_files("#file-input", [str(picture), str(data)])
    attachments = alice.page.locator("#attachments li")
    expect(attachments).to_have_count(2)
    expect(attachments.locator(".ready")).to_have_count(2)  # each uploaded, bar by bar
    alice.send("Two files")
    sent = bob.message("Two files")
    preview = sent.locator("img.preview")
    expect(preview).to_have_attribute("src", re.compile(r"^blob:"))
    assert preview.evaluate("img => img.decode().then(() => img.naturalWidth)") == 64
    screenshot(bob.page, "files")
    for path in (picture, data):
        with bob.page.expect_download() as download:
            sent.get_by_role("button", name=f"Download {path.name}").click()
        assert download.value.suggested_filename == path.name
        got = Path(download.value.path()).read_bytes()
        assert hashlib.sha256(got).digest() == hashlib.sha256(path.read_bytes()).digest()


def test_markup_in_messages_names_and_files_renders_as_text(tabs, console, unique, tmp_path):
    alice = tabs().sign_in(unique("alice"))
    bob = tabs().sign_in(unique("bob"))
    console(unique("carol")).run("send", XSS)
    expect(bob.message(XSS)).to_be_visible()
    alice.send(f"{XSS} <script>alert(2)</script>")
    named = tmp_path / f"{XSS}.txt"
    named.write_text("hello")
    alice.page.set_input_files("#file-input", str(named))
    expect(alice.page.locator("#attachments .ready")).to_have_count(1)
    alice.send("a file")
    alice.message(XSS).get_by_role("button", name="Comment").click()
    alice.page.get_by_placeholder("Write a comment").fill(XSS)
    alice.page.get_by_placeholder("Write a comment").press("Enter")
    alice.page.fill("#room-name", XSS)
    alice.page.press("#room-name", "Enter")
    expect(alice.page.locator("#chat-title")).to_have_text(XSS)
    expect(bob.message(f"{XSS} <script>alert(2)</script>")).to_be_visible()
    expect(bob.message(XSS).locator(".comment .text")).to_have_text(XSS)
    expect(bob.message("a file").locator(".file-name")).to_have_text(f"{XSS}.txt")
    for tab in (alice, bob):
        assert tab.page.locator("img[src='x'], #messages script").count() == 0
        assert tab.dialogs == []


def test_a_revoked_session_is_signed_out(tabs, unique):
    name = unique("alice")
    laptop = tabs().sign_in(name)
    phone = tabs(phone=True)
    # By keyboard alone: the name field has the focus, Enter signs in.
    phone.page.keyboard.type(name)
    phone.page.keyboard.press("Tab")
    phone.page.keyboard.type(PASSWORD)
    phone.page.keyboard.press("Enter")
    expect(phone.page.locator("#conn")).to_have_attribute("data-state", "live")
    phone.page.click("#back")
    phone.page.click("#open-sessions")
    expect(phone.page.locator("#panel .rows li")).to_have_count(2)
    screenshot(phone.page, "sessions-phone")
    phone.page.locator("#panel .rows li", has_text="this tab").wait_for()
    phone.page.locator("#panel .rows li:not(:has-text('this tab')) button").click()
    expect(laptop.page.locator("#login")).to_be_visible()
    expect(laptop.page.locator("#login-note")).to_have_text(
        "Your session has ended: sign in again."
    )
    assert laptop.page.evaluate("sessionStorage.getItem('trio-chat.token')") is None
    expect(phone.page.locator("#panel .rows li")).to_have_count(1)
    expect(phone.page.locator("#conn")).to_have_attribute("data-state", "live")


def test_reload_and_network_drops_resume_without_duplicates(tabs, api, relay, unique):
    b_name = unique("bob")
    bob = register(api, b_name)

    def say(text: str) -> None:
        assert api.post("/send", json={"text": text}, headers=bob).status_code == 201

    alice = tabs(relay.url).sign_in(unique("alice"))
    for text in ("one", "two"):
        say(text)
    alice.send("three")
    expect(alice.message("two")).to_be_visible()
    api.post("/send", json={"to": alice.name, "text": "unseen"}, headers=bob)
    expect(alice.chat(b_name).locator(".badge")).to_have_text("1")
    alice.page.reload(wait_until="commit")
    say("four")  # while the page loads
    expect(alice.page.locator("#conn")).to_have_attribute("data-state", "live")
    say("five")
    expect(alice.message("five")).to_be_visible()
    texts = ["one", "two", "three", "four", "five"]
    assert alice.page.locator(".message > .text").all_inner_texts()[-5:] == texts
    # Delivered live before the reload, the private message is still unread after it.
    expect(alice.chat(b_name).locator(".badge")).to_have_text("1")

    # The network drops; what is said meanwhile arrives once it is back, once.
    relay.down = True
    relay.cut()
    expect(alice.page.locator("#conn")).to_have_attribute("data-state", "reconnecting")
    last = api.get("/messages", params={"limit": "1"}, headers=bob).json()["messages"][0]
    assert last["text"] == "five"
    api.post("/comment", json={"message_id": last["id"], "text": "a comment"}, headers=bob)
    say("six")
    relay.down = False
    expect(alice.message("six")).to_be_visible(timeout=15_000)
    expect(alice.message("five").locator(".comment")).to_have_text(re.compile("a comment"))
    assert alice.page.locator(".message > .text").all_inner_texts()[-6:] == [*texts, "six"]


def test_limits_show_before_they_refuse(tabs, api, unique):
    name = unique("mallory")
    mallory = register(api, name)
    for i in range(RATE_LIMIT - 2):
        api.post("/send", json={"text": f"spam {i}"}, headers=mallory)
    tab = tabs(phone=True).sign_in(name, new=False)
    limits = tab.page.locator("#limits")
    expect(limits).to_contain_text(f"2 of {RATE_LIMIT} common-chat messages left")
    tab.send("almost")
    expect(limits).to_contain_text(f"1 of {RATE_LIMIT}")
    tab.send("the last one")
    expect(limits).to_contain_text(f"You have sent {RATE_LIMIT} messages to the common chat")
    expect(tab.page.locator("#send")).to_be_disabled()
    # Reported by enough users, the tab says so at once, before any send is refused.
    alice = tabs().sign_in(unique("alice"))
    alice.message("the last one").get_by_role("button", name=f"Report {name}").click()
    alice.page.get_by_role("button", name="Report", exact=True).click()
    expect(alice.page.locator("#toast")).to_contain_text(f"Reported {name} (1 of {BAN_THRESHOLD}")
    for _ in range(BAN_THRESHOLD - 1):
        reporter = register(api, unique("reporter"))
        assert api.post("/report", json={"username": name}, headers=reporter).status_code == 201
    expect(tab.page.locator("#banner")).to_contain_text("you cannot send messages or comments")
    screenshot(tab.page, "banned-phone")


def test_scheduled_messages(tabs, unique):
    alice = tabs().sign_in(unique("alice"))
    at = alice.page.evaluate(
        """() => {
            const d = new Date(Date.now() + 3000);
            d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
            return d.toISOString().slice(0, 19);
        }"""
    )
    alice.page.click("#later")
    expect(alice.page.locator("#send")).to_have_text("Schedule")
    alice.page.fill("#send-at", at)
    alice.send("Good morning, later")
    expect(alice.page.locator("#toast")).to_contain_text("Scheduled for")
    alice.page.click("#open-scheduled")
    expect(alice.page.locator("#panel .rows li")).to_contain_text("Good morning, later")
    screenshot(alice.page, "scheduled")
    alice.page.get_by_role("button", name="Close").click()
    sent = alice.message("Good morning, later")
    expect(sent.locator(".tag")).to_have_text("scheduled")
