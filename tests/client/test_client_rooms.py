"""Rooms end to end: a real server, clients on pipes (the line console), as people use them."""

from __future__ import annotations

import re

import httpx

from tests.client.conftest import ensure_account
from tests.client.test_client_e2e import out

CONNECTED = "* connected to "


async def login(url: str, user: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=url) as http:
        answer = await http.post("/login", json={"username": user, "password": "password1"})
        return {"Authorization": f"Bearer {answer.json()['token']}"}


async def test_a_room_made_joined_by_invitation_and_by_link_and_talked_in(
    start_server, start_client, run_client
):
    server = await start_server()
    alice = await start_client(server, "alice")
    bob = await start_client(server, "bob")
    carol = await start_client(server, "carol")
    dave = await start_client(server, "dave")
    for client in (alice, bob, carol, dave):
        await client.expect(CONNECTED)

    await alice.say("/room new book club")
    await alice.expect("* made the room book club; you own it and talk there now.")
    await alice.say("/invite bob")
    await alice.expect("* added bob to book club")
    # Bob is let in live: a new conversation, named, that he can switch to.
    await bob.expect("* alice added you to the room book club (/switch book club talks there)")

    await alice.say("/link 2d")
    await alice.expect("* invite link to book club, valid until ")
    url = (await alice.wait_for(r"^\*   (http://\S+/join/\S+)$"))[1]
    await carol.say(f"/join {url}")
    await carol.expect("* asked to join book club; its owner decides, and you will be told here")
    await alice.expect("* carol asks to join book club: /approve carol or /refuse carol")
    await alice.say("/requests")
    await alice.expect("* waiting to join book club (oldest first):")
    await alice.wait_for(r"^\*   carol  asked at \d\d:\d\d$")
    await alice.say("/approve carol")
    await alice.expect("* let carol into book club")
    await carol.expect("* your request to join book club was approved (/switch book club talks")
    await bob.expect("* carol joined book club")

    # Dave asks too, with the token alone, and is turned away.
    await dave.say(f"/join {url.rsplit('/', 1)[1]}")
    await dave.expect("* asked to join book club")
    await alice.expect("* dave asks to join book club")
    await alice.say("/refuse dave")
    await alice.expect("* turned dave away from book club; they are told")
    await dave.expect("* the owner of book club turned down your request to join")

    # Plain lines go to the conversation in view: the room, once switched to.
    await carol.say("/switch book")
    await carol.expect("* talking in the room book club")
    await carol.say("hello room")
    await carol.expect("carol → book club (room): hello room")
    for member in (alice, bob):
        await member.expect("carol → book club (room): hello room")
    await carol.say("/switch general")
    await carol.expect("* talking in the common chat")
    await carol.say("hello everyone")
    for client in (alice, bob, dave):
        await client.expect("carol: hello everyone")
    assert not any("hello room" in line for line in dave.out), dave.transcript()
    common = await run_client(server.url, "dave", "read")
    assert "hello room" not in out(common) and "hello everyone" in out(common)

    await alice.say("/rooms")
    await alice.expect("* your rooms (1):")
    listed = await alice.wait_for(r"^\*   \d+:book club  you own it, 3 member\(s\)  (room:\S+)")
    room_id = listed[1]
    await bob.say("/rooms")
    await bob.wait_for(rf"^\*   \d+:book club  owner alice, 3 member\(s\)  {room_id}$")

    # Removed: told so, and the room cannot be written to any more.
    await alice.say("/switch book club")
    await alice.say("/kick bob")
    await alice.expect("* removed bob from book club")
    await bob.expect("* you are no longer in book club: its owner removed you or deleted it")
    await carol.expect("* bob is no longer in book club")
    await bob.say(f"/switch {room_id}")
    await bob.expect("* talking in the room book club (you are no longer in it: read-only)")
    await bob.say("still here?")
    assert await bob.expect("error: ") == (
        "error: you are no longer in book club; nothing was sent (/switch to another conversation)"
    )
    # Leaving by oneself; the owner cannot (and is told what to do instead).
    await carol.say("/switch book club")
    await carol.say("/leave")
    await carol.expect("* you left book club; what was said there stays in view, read-only")
    await alice.expect("* carol is no longer in book club")
    await alice.say("/leave")
    assert await alice.expect("error: ") == (
        "error: you own this room, and its owner cannot leave it; /room delete NAME deletes it "
        "for everyone"
    )
    await alice.say("/room delete book")
    assert (await alice.expect("error: ")).startswith(
        "error: the room in view is book club: type /room delete book club to delete it"
    )
    await alice.say("/room delete Book Club")
    await alice.expect("* deleted the room book club; its members were told")
    await alice.say("/rooms")
    await alice.expect("* you are in no room; /room new NAME makes one, /join LINK asks into one")
    for client in (alice, bob, carol, dave):
        assert await client.quit() == 0
    # Nothing was said twice: each change was told once to each.
    assert sum("carol joined" in line for line in alice.out) == 0  # alice let her in herself
    assert sum(" asks to join book club: " in line for line in alice.out) == 2


async def test_an_owner_lists_the_rooms_links_and_stops_one(start_server, start_client):
    server = await start_server()
    alice = await start_client(server, "alice")
    bob = await start_client(server, "bob")
    for client in (alice, bob):
        await client.expect(CONNECTED)
    await alice.say("/room new attic")
    await alice.expect("* made the room attic")
    await alice.say("/links")
    await alice.expect("* attic has no invite link still valid; /link makes one")
    await alice.say("/link 2d")
    first = (await alice.wait_for(r"^\*   (http://\S+/join/\S+)$"))[1]
    await alice.say("/link 12h")
    second = (await alice.wait_for(r"^\*   (http://\S+/join/\S+)$"))[1]

    await alice.say("/links")
    await alice.expect("* invite links to attic still valid (2), soonest to end first:")
    # Soonest to end first: the 12-hour link, then the 2-day one.
    soon = (await alice.wait_for(r"^\*   (\S+)  valid until .* \(in 1[12] h\b.*\)$"))[1]
    later = (await alice.wait_for(r"^\*   (\S+)  valid until .* \(in [12] d\b.*\)$"))[1]
    await alice.expect("* /unlink ID stops one (the link itself is shown only once, when made)")
    assert soon != later and soon not in second and later not in first  # ids, not tokens

    await alice.say(f"/unlink {later[:6]}")
    await alice.expect(f"* stopped the invite link {later} to attic: it lets nobody ask")
    await bob.say(f"/join {first}")
    assert await bob.expect("error: ") == (
        "error: this link is not valid (unknown, revoked, expired or used up)"
    )
    await bob.say(f"/join {second}")  # the other one still works
    await bob.expect("* asked to join attic")
    await alice.say(f"/unlink {later}")
    assert await alice.expect("error: ") == (
        f"error: attic has no invite link matching {later!r}; /links lists them"
    )
    for client in (alice, bob):
        assert await client.quit() == 0


async def test_room_commands_outside_a_room_and_bad_links_say_so(start_server, start_client):
    server = await start_server()
    alice = await start_client(server, "alice")
    await alice.expect(CONNECTED)
    for command in (
        "/invite bob",
        "/link",
        "/links",
        "/unlink x",
        "/requests",
        "/leave",
        "/kick bob",
        "/room",
    ):
        await alice.say(command)
        assert await alice.expect("error: ") == (
            "error: the conversation in view is not a room: /switch to one first (/rooms lists "
            "them)"
        )
    await alice.say("/join http://127.0.0.1/join/not-a-real-token")
    assert await alice.expect("error: ") == (
        "error: this link is not valid (unknown, revoked, expired or used up)"
    )
    await alice.say("/switch nowhere")
    assert await alice.expect("error: ") == (
        "error: there is no conversation called 'nowhere' (/rooms lists your rooms; /query "
        "USER talks with someone)"
    )
    await alice.say("/room new a")
    await alice.say("/room new ab")
    await alice.expect("* made the room ab")
    await alice.say("/switch A")  # exactly a's name: no ambiguity with ab
    await alice.expect("* talking in the room a")
    # Only the owner may invite: bob, a member, is told so.
    await ensure_account(server.url, "bob", "password1")
    headers = await login(server.url, "alice")
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
        rooms = (await http.get("/rooms")).json()["rooms"]
        room = next(r for r in rooms if r["name"] == "a")
        added = await http.post(f"/rooms/{room['id']}/members", json={"username": "bob"})
        assert added.status_code == 201, added.text
    bob = await start_client(server, "bob")
    await bob.expect(CONNECTED)
    await bob.say("/switch a")
    await bob.expect("* talking in the room a")
    await bob.say("/invite carol")
    assert await bob.expect("error: ") == "error: only the room's owner can do that"
    await bob.say("/requests")
    assert await bob.expect("error: ") == "error: only the room's owner sees who asks to join"
    await bob.say("/room")
    found = await bob.wait_for(r"^\* a \(room:\S+\): owner alice; 2 member\(s\): alice, bob$")
    assert re.search(room["id"], found.string)
    assert await alice.quit() == 0
    assert await bob.quit() == 0
