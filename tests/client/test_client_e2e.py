"""End to end: real server processes, real client processes driven through their stdin/stdout."""

from __future__ import annotations

import re
import signal
import stat
from datetime import UTC, datetime, timedelta

import trio

from tests.client.zones import clock_readings, zone_where_it_is

CONNECTED = "* connected to "
HOUR = timedelta(hours=1)


def out(result) -> str:
    return result.stdout.decode()


def err(result) -> str:
    return result.stderr.decode()


async def test_two_clients_chat_live_in_common_and_private(start_server, start_client):
    server = await start_server()
    alice = await start_client(server, "alice")
    bob = await start_client(server, "bob")
    carol = await start_client(server, "carol")
    for client in (alice, bob, carol):
        await client.expect(CONNECTED)

    await alice.say("hello everyone")
    own = await alice.expect("alice: hello everyone")  # her own message, shown once sent
    line = await bob.expect("alice: hello everyone")
    ref = re.search(r"#(\S+)", line).group(1)
    await carol.expect("alice: hello everyone")
    # Everyone refers to a message the same way.
    assert re.search(r"#(\S+)", own).group(1) == ref

    await bob.say("/msg alice just between us")
    await bob.expect("bob → alice (private): just between us")
    await alice.expect("bob → alice (private): just between us")

    await bob.say(f"/comment #{ref} welcome!")
    await alice.expect(f"↳ bob on #{ref}: welcome!")
    await carol.expect(f"↳ bob on #{ref}: welcome!")

    await carol.say("carol here")
    for client in (alice, bob):
        await client.expect("carol: carol here")
    # Carol saw everything up to her own message, but never the private one: events arrive in
    # log order, so had it been delivered it would be in her output before this line.
    await carol.expect("carol: carol here")
    assert not any("just between us" in line for line in carol.out), carol.transcript()

    await alice.say("/users")
    users = await alice.expect("users seen in this session:")
    assert "alice (you)" in users and "bob" in users and "carol" in users

    for client in (alice, bob, carol):
        assert await client.quit() == 0
    # Each message was shown exactly once to each client (no echo of our own send twice).
    assert sum("hello everyone" in line for line in alice.out) == 1
    assert sum("hello everyone" in line for line in bob.out) == 1


async def test_history_and_unread_on_connect(start_server, start_client, run_client):
    server = await start_server()
    assert (await run_client(server.url, "alice", "send", "first")).returncode == 0
    bob = await start_client(server, "bob")
    await bob.expect("── history ──")
    await bob.expect("alice: first")
    await bob.expect("── no unread messages ──")
    assert await bob.quit() == 0

    assert (await run_client(server.url, "alice", "send", "while you were out")).returncode == 0
    pm = await run_client(server.url, "alice", "send", "--to", "bob", "a secret")
    assert pm.returncode == 0

    bob = await start_client(server, "bob")
    await bob.expect("── history ──")
    await bob.expect("alice: first")
    await bob.expect("── unread ──")
    await bob.expect("alice: while you were out")
    await bob.expect("alice → bob (private): a secret")
    await bob.expect("── end of unread ──")
    await bob.expect(CONNECTED)
    assert await bob.quit() == 0

    # Third start: everything was read.
    bob = await start_client(server, "bob")
    await bob.expect("── no unread messages ──")
    assert not any("── unread ──" in line for line in bob.out)
    assert await bob.quit() == 0


async def test_server_restart_is_survived(start_server, start_client, run_client):
    server = await start_server()
    # A long first retry delay keeps the clients away while carol sends (below), so resuming
    # from the cursor is what brings them her message. (Too slow a machine only makes this
    # test weaker, never wrong.)
    alice = await start_client(server, "alice", "--reconnect-delay", "8")
    bob = await start_client(server, "bob", "--reconnect-delay", "8")
    await alice.expect(CONNECTED)
    await bob.expect(CONNECTED)
    await alice.say("before the restart")
    await bob.expect("alice: before the restart")

    assert await server.stop() == 0, server.transcript()  # API.md: SIGTERM → exit status 0
    for client in (alice, bob):
        await client.expect("lost the live connection to the server")

    # A send during the outage says so; it is not silently dropped or queued.
    await alice.say("during the outage")
    line = await alice.expect("error: cannot reach the server")
    assert "your message was NOT sent" in line

    server = await start_server(port=server.port, data_dir=server.data_dir)
    # Sent by a third user right after the restart, maybe before the clients reconnect:
    # they resume from their last cursor, so they must get it anyway, exactly once.
    assert (await run_client(server.url, "carol", "send", "right after")).returncode == 0
    for client in (alice, bob):
        await client.expect("reconnected to the server; live updates resumed")

    await alice.say("after the restart")
    await bob.expect("alice: after the restart")
    await bob.say("/quit")
    with trio.fail_after(30):
        assert await bob.process.wait() == 0
    assert await alice.quit() == 0

    for client in (alice, bob):
        text = "\n".join(client.out)
        assert text.count("carol: right after") == 1, client.transcript()
        assert text.count("alice: before the restart") == 1, client.transcript()
    assert not any("alice: during the outage" in line for line in bob.out)


async def test_errors_read_as_sentences(start_server, start_client, run_client, client_zone):
    # The client runs where it is about noon (client_zone), so the times below, up to 4 h
    # ahead, are on the same day: a clock without a date.
    server = await start_server("--rate-limit-count", "1", "--ban-threshold", "1")
    alice = await start_client(server, "alice")
    await alice.expect(CONNECTED)

    await alice.say("/msg nobody hello?")
    line = await alice.expect("error: ")
    assert line == "error: there is no user 'nobody'; your message was not sent"

    await alice.say("/comment #m42 what?")
    line = await alice.expect("error: ")
    assert line == (
        "error: there is no message #m42 (or it is not visible to you); your message was not sent"
    )

    first_sent = datetime.now(UTC)
    await alice.say("one")
    await alice.expect("alice: one")
    await alice.say("two")
    line = await alice.expect("error: ")
    found = re.fullmatch(
        r"error: rate limit reached: 1 message to the common chat per period; you can send "
        r"again in 1 h \(at (\d\d:\d\d)\); private messages are not limited; "
        r"your message was not sent",
        line,
    )
    assert found, line
    # The period began with "one": it ends an hour later, shown in the client's zone.
    assert found[1] in clock_readings(client_zone, first_sent + HOUR, datetime.now(UTC) + HOUR)

    await alice.say("/status")
    await alice.expect("common chat: 0 of 1 messages left")

    # Bob reports alice: with a threshold of 1 she is banned at once, and told so live.
    assert (await run_client(server.url, "bob", "send", "--to", "alice", "hi")).returncode == 0
    bob = await start_client(server, "bob")
    await bob.expect(CONNECTED)
    reported = datetime.now(UTC)
    await bob.say("/report alice spamming")
    await bob.expect("* reported alice; they are now banned until")
    await alice.expect("* you are banned from sending until")
    await alice.say("/msg bob sorry")
    line = await alice.expect("error: ")
    found = re.fullmatch(
        r"error: you are banned from sending until (\d\d:\d\d) \(4 h from now\) because other "
        r"users reported you; you can still read; your message was not sent",
        line,
    )
    assert found, line
    assert found[1] in clock_readings(
        client_zone, reported + 4 * HOUR, datetime.now(UTC) + 4 * HOUR
    )
    await alice.say("/report alice")
    line = await alice.expect("error: ")
    assert line == "error: the server rejected the request: username: you cannot report yourself"
    await alice.say("/bogus")
    assert await alice.expect("error: ") == "error: unknown command /bogus; type /help for the list"
    assert await alice.quit() == 0
    assert await bob.quit() == 0


async def test_late_in_the_evening_times_hours_ahead_carry_their_date(
    start_server, start_client, run_client
):
    # At 22:xx local a 4 h ban or rate-limit period ends tomorrow, so the client says which day;
    # a bare clock would read as earlier today. (Pinned times: test_client_render.py.)
    late = zone_where_it_is(22)
    server = await start_server(
        "--rate-limit-count", "1", "--rate-limit-period", "4h", "--ban-threshold", "1"
    )
    first_sent = datetime.now(UTC)
    assert (await run_client(server.url, "alice", "send", "one", zone=late)).returncode == 0
    limited = await run_client(server.url, "alice", "send", "two", zone=late)
    found = re.fullmatch(
        r"trio-chat-client: rate limit reached: 1 message to the common chat per period; you "
        r"can send again in 4 h \(at (\w{3} \d\d \d\d:\d\d)\); private messages are not "
        r"limited\n",
        err(limited),
    )
    assert limited.returncode == 4 and found, err(limited)
    ends = clock_readings(
        late, first_sent + 4 * HOUR, datetime.now(UTC) + 4 * HOUR, fmt="%b %d %H:%M"
    )
    assert found[1] in ends

    bob = await start_client(server, "bob", zone=late)
    await bob.expect(CONNECTED)
    reported = datetime.now(UTC)
    await bob.say("/report alice spamming")
    line = await bob.expect("* reported alice; they are now banned until ")
    ends = clock_readings(late, reported + 4 * HOUR, datetime.now(UTC) + 4 * HOUR, "%b %d %H:%M")
    assert line.removeprefix("* reported alice; they are now banned until ") in ends, line
    assert await bob.quit() == 0


async def test_scripts_send_and_read_with_meaningful_exit_codes(start_server, run_client, tmp_path):
    server = await start_server("--rate-limit-count", "1")
    sent = await run_client(
        server.url, "alice", "--register", "send", "hello", "from", "a", "script"
    )
    assert sent.returncode == 0, err(sent)
    message_id = out(sent).strip()
    assert message_id and "\n" not in message_id
    assert "registered a new account 'alice'" in err(sent)

    # The token was saved (owner-only) and is reused: no password needed any more.
    token_file = tmp_path / "config" / "alice" / "tokens.json"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    read = await run_client(server.url, "alice", "read", "--limit", "5", password=None)
    assert read.returncode == 0, err(read)
    assert re.fullmatch(
        rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z {re.escape(message_id)} alice: "
        r"hello from a script\n",
        out(read),
    ), out(read)

    pm = await run_client(server.url, "bob", "send", "--to", "alice", "psst")
    assert pm.returncode == 0
    conv = await run_client(server.url, "alice", "read", "--with", "bob", password=None)
    assert out(conv).endswith("bob -> alice: psst\n")

    # 4: rejected (rate limit; unknown recipient)
    limited = await run_client(server.url, "alice", "send", "again")
    assert limited.returncode == 4
    assert "rate limit reached" in err(limited) and "you can send again in" in err(limited)
    unknown = await run_client(server.url, "alice", "send", "--to", "nobody", "x")
    assert (unknown.returncode, err(unknown).strip()) == (
        4,
        "trio-chat-client: there is no user 'nobody'",
    )
    # 2: authentication failed (wrong password for an existing user; no password at all)
    (tmp_path / "config" / "bob" / "tokens.json").unlink()  # bob must log in again
    wrong = await run_client(server.url, "bob", "send", "x", password="not-bobs-password")
    assert (wrong.returncode, err(wrong).strip()) == (
        2,
        "trio-chat-client: wrong username or password (a new account is made with --register)",
    )
    nopw = await run_client(server.url, "carol", "read", password=None)
    assert nopw.returncode == 2 and "TRIO_CHAT_PASSWORD" in err(nopw)
    # 1: usage
    usage = await run_client(server.url, "alice", "read", "--limit", "0")
    assert usage.returncode == 1 and "must be a whole number" in err(usage)
    # 3: unreachable (the server is gone)
    assert await server.stop() == 0
    down = await run_client(server.url, "alice", "send", "anyone?")
    assert down.returncode == 3
    assert err(down).strip() == (
        f"trio-chat-client: cannot reach the server at {server.url}: connection refused "
        "(is the server running?)"
    )


async def test_revoked_saved_token_falls_back_to_login(start_server, start_client, run_client):
    server = await start_server()
    assert (await run_client(server.url, "alice", "send", "hi")).returncode == 0
    alice = await start_client(server, "alice")
    await alice.expect(CONNECTED)
    await alice.say("/logout")
    await alice.expect("* logged out")
    with trio.fail_after(30):
        assert await alice.process.wait() == 0
    # The token was revoked and forgotten: without a password this cannot work ...
    assert (await run_client(server.url, "alice", "read", password=None)).returncode == 2
    # ... and with one it logs in again.
    again = await run_client(server.url, "alice", "read")
    assert again.returncode == 0 and "alice: hi" in out(again)


async def test_tail_prints_new_messages_for_scripts(start_server, start_client, run_client):
    server = await start_server()
    assert (await run_client(server.url, "bob", "send", "old news")).returncode == 0
    tail = await start_client(server, "bob", "tail")
    await tail.wait_for(r"^\* following new messages on .* from cursor \S+", stream="err")
    sent = await run_client(server.url, "alice", "send", "fresh")
    line = await tail.expect("alice: fresh")
    assert line.split(" ")[1] == out(sent).strip()  # the real message id, as `send` printed
    pm = await run_client(server.url, "alice", "send", "--to", "bob", "for bob")
    assert (await tail.expect("alice -> bob: for bob")).split(" ")[1] == out(pm).strip()
    assert not any("old news" in line for line in tail.out)
    assert await tail.stop() == -signal.SIGTERM  # runs until stopped; SIGTERM ends it
