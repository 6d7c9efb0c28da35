"""Faults: the server process killed mid-storm, storage errors, clients vanishing."""

from __future__ import annotations

import logging
import random
import re
import shutil
import signal
import sqlite3
import threading

import httpx
import pytest
import trio
import trio.testing

from tests.conftest import PASSWORD, register
from tests.hardening.helpers import Conn, page_all, request, server_process, wait_until
from trio_chat import errors
from trio_chat.storage import ShelfStore

# -- SIGKILL during a send storm ------------------------------------------------------------


KILL_ROUNDS = 3
ACKS_PER_ROUND = 300


async def storm_until_killed(server, tokens, acked, comments, attempted) -> None:
    """Six clients send and comment (on the oldest, a middle and the newest messages) until
    ``ACKS_PER_ROUND`` more answers arrived; then the server is SIGKILLed mid-storm."""
    enough = trio.Event()
    target = len(acked) + len(comments) + ACKS_PER_ROUND

    async def storm(name: str, rng: random.Random) -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            headers = {"Authorization": f"Bearer {tokens[name]}"}
            for n in range(100_000):
                text = f"{name} #{n} {rng.random()}"
                attempted.add(text)
                ids = list(acked)
                if n % 2 and ids:
                    on = rng.choice([ids[0], ids[len(ids) // 2], ids[-1], rng.choice(ids)])
                    path, body = "/comment", {"message_id": on, "text": text}
                else:
                    path, body = "/send", {"text": text}
                try:
                    response = await client.post(path, json=body, headers=headers)
                except httpx.TransportError:
                    return  # the server is gone
                assert response.status_code == 201, response.text
                if path == "/send":
                    acked[response.json()["message"]["id"]] = text
                else:
                    comments[response.json()["comment"]["id"]] = (on, text)
                if len(acked) + len(comments) >= target:
                    enough.set()

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for i, name in enumerate(tokens):
                nursery.start_soon(storm, name, random.Random(f"{name}{target}{i}"))
            await enough.wait()
            server.process.kill()  # SIGKILL, mid-storm: requests are in flight
            await server.process.wait()
    assert server.process.returncode == -9


async def check_nothing_acknowledged_was_lost(client, token, acked, comments, attempted):
    messages = await page_all(client, token)
    ids = [m["id"] for m in messages]
    assert len(ids) == len(set(ids)), "duplicated messages"
    found = {m["id"]: m["text"] for m in messages}
    lost = {i: t for i, t in acked.items() if found.get(i) != t}
    assert not lost, f"{len(lost)} acknowledged messages lost: {list(lost.items())[:5]}"
    # Nothing appears that nobody sent.
    assert set(found.values()) <= attempted
    stored_comments = {
        c["id"]: (c["message_id"], c["text"]) for m in messages for c in m["comments"]
    }
    lost_comments = {i: c for i, c in comments.items() if stored_comments.get(i) != c}
    assert not lost_comments, f"{len(lost_comments)} acknowledged comments lost"
    return messages


@pytest.mark.slow
async def test_sigkill_during_a_send_and_comment_storm_loses_nothing_acknowledged(tmp_path):
    data_dir = tmp_path / "data"
    acked: dict[str, str] = {}  # message id -> text, for every 201
    comments: dict[str, tuple[str, str]] = {}  # comment id -> (message id, text)
    attempted: set[str] = set()  # every text sent (some may have landed without an answer)
    tokens: dict[str, str] = {}

    for _ in range(KILL_ROUNDS):
        async with server_process(data_dir, "--rate-limit-count", "0") as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                if not tokens:
                    for i in range(6):
                        tokens[f"storm{i}"] = (await register(client, f"storm{i}")).token
                else:  # everything from the rounds before is still there
                    token = tokens["storm0"]
                    await check_nothing_acknowledged_was_lost(
                        client, token, acked, comments, attempted
                    )
            await storm_until_killed(server, tokens, acked, comments, attempted)

    # The database is consistent as the crash left it (checked on a copy, so the server
    # below opens the original untouched).
    copy = tmp_path / "copy"
    shutil.copytree(data_dir, copy)
    with sqlite3.connect(copy / "trio-chat.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)

    async with server_process(data_dir, "--rate-limit-count", "0") as server:
        ready = next(line for line in server.log if "ready in" in line)
        assert not [line for line in server.log if re.search(r"ERROR|WARNING|repair", line)]
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            token = tokens["storm0"]  # sessions survived too
            messages = await check_nothing_acknowledged_was_lost(
                client, token, acked, comments, attempted
            )
            ids = [m["id"] for m in messages]
            # At most the requests in flight at each kill landed without an answer.
            assert len(messages) - len(acked) <= len(tokens) * KILL_ROUNDS
            # The replay agrees with the paging.
            updates = await client.get(
                "/updates",
                params={"since": "0", "timeout": "0"},
                headers={"Authorization": f"Bearer {token}"},
            )
            events = [e for e in updates.json()["events"] if e["type"] == "message"]
            assert [e["message"]["id"] for e in events][: len(ids)] == ids[: len(events)]
            # And the server takes new writes.
            sent = await client.post(
                "/send", json={"text": "after"}, headers={"Authorization": f"Bearer {token}"}
            )
            assert sent.status_code == 201
    print(
        f"{len(acked)} messages and {len(comments)} comments acknowledged, "
        f"{len(messages)} messages stored; {ready.split(': ', 1)[1]}"
    )


SIGTERM_ROUNDS = 6


async def storm_until_stopped(server, tokens, answered: set[str]) -> None:
    """Six clients send until 200 more are answered; then SIGTERM, mid-storm."""
    enough = trio.Event()
    target = len(answered) + 200

    async def storm(name: str) -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            headers = {"Authorization": f"Bearer {tokens[name]}"}
            for n in range(100_000):
                text = f"{name} #{n} of {target}"
                try:
                    response = await client.post("/send", json={"text": text}, headers=headers)
                except httpx.TransportError:
                    return  # closed without an answer: must not have been stored
                if response.status_code == 503:
                    assert response.json()["error"]["code"] == "shutting_down"
                    return
                assert response.status_code == 201, response.text
                answered.add(text)
                if len(answered) >= target:
                    enough.set()

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for name in tokens:
                nursery.start_soon(storm, name)
            await enough.wait()
            server.process.send_signal(signal.SIGTERM)
            assert await server.process.wait() == 0


@pytest.mark.slow
async def test_sigterm_answers_every_write_it_committed(tmp_path):
    """A graceful stop mid-storm: a write is either answered or not stored, never stored
    silently (which a client could only find out by reading everything back)."""
    data_dir = tmp_path / "data"
    answered: set[str] = set()  # texts answered 201
    tokens: dict[str, str] = {}
    for _ in range(SIGTERM_ROUNDS):
        async with server_process(data_dir, "--rate-limit-count", "0") as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                for i in range(6):
                    if f"term{i}" not in tokens:
                        tokens[f"term{i}"] = (await register(client, f"term{i}")).token
            await storm_until_stopped(server, tokens, answered)

    async with (
        server_process(data_dir) as server,
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
    ):
        stored = {m["text"] for m in await page_all(client, tokens["term0"])}
    assert answered <= stored
    unanswered = stored - answered
    assert not unanswered, f"{len(unanswered)} stored but never answered: {sorted(unanswered)[:5]}"


# -- storage errors --------------------------------------------------------------------------


class FlakyWrites:
    """Make the store's ``write`` raise while ``failing`` is set (the AsyncStore calls it
    from a worker thread, so the switch is a plain attribute)."""

    def __init__(self, store: ShelfStore) -> None:
        self.store = store
        self.real = store.write
        self.failing = False
        self.refused = 0

    def write(self, batch) -> None:
        if self.failing:
            self.refused += 1
            raise sqlite3.OperationalError("disk I/O error")
        self.real(batch)

    def __enter__(self) -> FlakyWrites:
        self.store.write = self.write  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        self.store.write = self.real  # type: ignore[method-assign]


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "storage_unavailable"


class ScriptedWrites:
    """Script the store's next writes (called from a worker thread): a step ``hold`` waits
    for ``release`` and then writes, ``fail`` raises a disk error, ``hold-fail`` does both;
    writes past the script go through. ``entered`` is set when a held write waits."""

    def __init__(self, store: ShelfStore, *steps: str) -> None:
        self.store = store
        self.real = store.write
        self.steps = list(steps)
        self.entered, self.release = threading.Event(), threading.Event()

    def write(self, batch) -> None:
        step = self.steps.pop(0) if self.steps else "write"
        if step.startswith("hold"):
            self.entered.set()
            self.release.wait(10)
        if step.endswith("fail"):
            raise sqlite3.OperationalError("disk I/O error")
        self.real(batch)

    def __enter__(self) -> ScriptedWrites:
        self.store.write = self.write  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        self.store.write = self.real  # type: ignore[method-assign]


async def test_storage_errors_are_503_and_change_nothing(chat_server, http, make_user, caplog):
    service = chat_server.service
    alice, bob = await make_user("alice"), await make_user("bob")
    assert (await bob.post("/connect")).status_code == 200
    first = await alice.send("before the failure")
    await bob.send("private before", to="alice")
    status_before = (await alice.get("/status")).json()
    messages_before = (await alice.get("/messages")).json()["messages"]
    private_before = (await alice.get("/messages?with=bob")).json()["messages"]
    cursor_before = service.committed_cursor

    with FlakyWrites(service.store._store) as flaky, caplog.at_level(logging.CRITICAL):
        flaky.failing = True
        assert_unavailable(await alice.post("/send", {"text": "lost"}))
        assert_unavailable(await alice.post("/send", {"text": "lost", "to": "bob"}))
        assert_unavailable(await alice.post("/comment", {"message_id": first["id"], "text": "c"}))
        assert_unavailable(await alice.post("/report", {"username": "bob"}))
        assert_unavailable(
            await http.post("/register", json={"username": "carol", "password": PASSWORD})
        )
        assert_unavailable(
            await http.post("/login", json={"username": "alice", "password": PASSWORD})
        )
        assert_unavailable(await bob.post("/connect"))
        # Reads still work meanwhile, and show none of the failed writes.
        assert (await alice.get("/status")).json() == status_before
        assert (await alice.get("/messages")).json()["messages"] == messages_before
        assert (await alice.get("/messages?with=bob")).json()["messages"] == private_before
        assert service.committed_cursor == cursor_before
        flaky.failing = False
    assert flaky.refused >= 7

    # Nothing half-written: the store on disk holds what it held before.
    snapshot = await trio.to_thread.run_sync(
        lambda: (lambda s: (s.load(), s.close()))(ShelfStore(chat_server.server.config.data_dir))[0]
    )
    assert snapshot.cursor == cursor_before
    assert set(snapshot.users) == {"alice", "bob"}

    # Everything works again, as if the failed attempts never happened.
    carol = await http.post("/register", json={"username": "carol", "password": PASSWORD})
    assert carol.status_code == 201
    report = await alice.post("/report", {"username": "bob"})
    assert report.status_code == 201 and report.json()["reports"] == 1
    comment = await alice.post("/comment", {"message_id": first["id"], "text": "c"})
    assert comment.status_code == 201
    after = await alice.send("after the failure")
    status = (await alice.get("/status")).json()
    assert status["rate_limit"]["remaining"] == status_before["rate_limit"]["remaining"] - 1
    page = (await alice.get("/messages")).json()["messages"]
    assert [m["text"] for m in page] == ["before the failure", "after the failure"]
    assert after["id"] != first["id"]
    connect = (await bob.post("/connect")).json()
    # The failed /connect marked nothing read.
    assert [m["text"] for m in connect["unread"]] == ["before the failure", "after the failure"]


async def test_a_failed_send_leaves_no_hole_in_paging(chat_server, make_user, caplog):
    alice = await make_user("alice")
    first = await alice.send("before the failure")
    with FlakyWrites(chat_server.service.store._store) as flaky, caplog.at_level(50):
        flaky.failing = True
        assert_unavailable(await alice.post("/send", {"text": "lost"}))
    after = await alice.send("after the failure")
    page = (await alice.get(f"/messages?before={after['id']}&limit=1")).json()["messages"]
    assert [m["id"] for m in page] == [first["id"]]


# -- clients that vanish mid-response ----------------------------------------------------------


async def test_vanishing_clients_free_their_tasks(chat_server, make_user, caplog):
    http_server = chat_server.server.http
    hub = chat_server.service.hub
    alice = await make_user("alice")
    await wait_until(lambda: http_server.active <= 1)  # httpx's pooled connection at most
    baseline = http_server.active
    with caplog.at_level(logging.WARNING, logger="trio_chat"):
        for target in ("/events", "/updates?timeout=60", "/events?since=0"):
            conns = []
            for _ in range(5):
                conn = await Conn.open(chat_server.host, chat_server.port)
                await conn.send(request("GET", target, token=alice.token))
                conns.append(conn)
            await wait_until(lambda: hub.subscriber_count == 5)
            if target.startswith("/events"):
                # Mid-stream: headers are out, events are flowing.
                await alice.send(f"to {target}")
                for conn in conns:
                    with trio.fail_after(5):
                        while b"event: message" not in conn.buf:
                            conn.buf += await conn.stream.receive_some(65536)
            for conn in conns:
                await conn.aclose()
            await wait_until(lambda: hub.subscriber_count == 0)
            await wait_until(lambda: http_server.active == baseline)
        # A request whose client left before the answer (a normal one): no trace either.
        conn = await Conn.open(chat_server.host, chat_server.port)
        await conn.send(request("GET", "/openapi.json"))
        await conn.aclose()
        await wait_until(lambda: http_server.active == baseline)
        await alice.send("nobody is listening")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_file_whose_deletion_failed_is_still_served(chat_server, make_user, caplog):
    alice = await make_user("alice")
    upload = await alice.client.post("/files?name=a.txt", content=b"kept", headers=alice.auth)
    file_id = upload.json()["file"]["id"]
    core = chat_server.service.core
    record = core.files.records[file_id]
    with FlakyWrites(chat_server.service.store._store) as flaky, caplog.at_level(50):
        flaky.failing = True
        with pytest.raises(errors.StorageUnavailable):
            await core.forget_files([record])  # as the hourly sweep of unattached files does
    # Still on disk as a record, so still in memory and served: nothing half-forgotten.
    download = await alice.get(f"/files/{file_id}")
    assert download.status_code == 200 and download.content == b"kept"
    await core.forget_files([record])
    assert (await alice.get(f"/files/{file_id}")).status_code == 404


async def test_a_failed_comment_does_not_ride_along_with_a_later_one(
    chat_server, make_user, caplog
):
    """Two comments on one message, the second made while the first is being written: each
    builds on the one before (so neither overwrites the other). When the first's write fails,
    the second must be stored without it."""
    service = chat_server.service
    alice = await make_user("alice")
    message = await alice.send("hello")
    answers: dict[str, int] = {}

    async def comment(text: str) -> None:
        response = await alice.post("/comment", {"message_id": message["id"], "text": text})
        answers[text] = response.status_code

    with (
        ScriptedWrites(service.store._store, "hold-fail") as writes,
        caplog.at_level(logging.CRITICAL),
        trio.fail_after(10),
    ):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(comment, "lost")
            await trio.to_thread.run_sync(writes.entered.wait, 10)
            nursery.start_soon(comment, "kept")
            while not service.store._pending:  # "kept" waits for the next commit
                await trio.sleep(0.001)
            writes.release.set()
    assert answers == {"lost": 503, "kept": 201}
    (shown,) = (await alice.get("/messages")).json()["messages"]
    assert [c["text"] for c in shown["comments"]] == ["kept"]
    # And so on disk.
    on_disk = await trio.to_thread.run_sync(
        lambda: (lambda s: (s.read_events([int(message["id"][1:])]), s.close()))(
            ShelfStore(chat_server.server.config.data_dir)
        )[0]
    )
    assert [c.text for c in on_disk[0].message.comments] == ["kept"]


async def test_comments_that_failed_together_leave_nothing_behind(chat_server, make_user, caplog):
    """Both comments in one failed commit: neither is stored, and the next one builds on the
    message as stored."""
    service = chat_server.service
    alice = await make_user("alice")
    message = await alice.send("hello")
    answers: dict[str, int] = {}

    async def post(path: str, body: dict) -> None:
        answers[body["text"]] = (await alice.post(path, body)).status_code

    # An unrelated send is held while both comments queue up behind it; their one commit fails.
    with (
        ScriptedWrites(service.store._store, "hold", "fail") as writes,
        caplog.at_level(logging.CRITICAL),
        trio.fail_after(10),
    ):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(post, "/send", {"text": "meanwhile"})
            await trio.to_thread.run_sync(writes.entered.wait, 10)
            for text in ("first", "second"):
                nursery.start_soon(post, "/comment", {"message_id": message["id"], "text": text})
            while len(service.store._pending) < 2:
                await trio.sleep(0.001)
            writes.release.set()
    assert answers == {"meanwhile": 201, "first": 503, "second": 503}
    assert service.core.latest == {}  # no overlay left to build on
    third = await alice.post("/comment", {"message_id": message["id"], "text": "third"})
    assert third.status_code == 201
    shown = (await alice.get("/messages")).json()["messages"][0]
    assert [c["text"] for c in shown["comments"]] == ["third"]
