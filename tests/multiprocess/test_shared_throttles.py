"""Throttles count across processes on one Redis: failed logins and joins made through one
process count on the others (their notes travel beside the change log), so a guesser behind
a load balancer gets no more tries than against one process."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import httpx
import pytest
import trio

from tests.conftest import PASSWORD, register, start_server
from trio_chat.storage.base import JOIN_FAILED, LOGIN_FAILED, Note
from trio_chat.storage.redis_store import decode_note, encode_note

HERE = "127.0.0.1"  # the address the servers see the test's requests come from


async def _until(condition: Callable[[], bool]) -> None:
    """Wait for another process's notes to arrive (through Redis: bounded, not timed)."""
    with trio.fail_after(10):
        while not condition():
            await trio.sleep(0.005)


async def test_failed_logins_and_joins_count_on_every_process(nursery, config, redis_url):
    shared = attrs.evolve(config, store=redis_url, login_failure_limit=3)
    a = await start_server(nursery, shared)
    b = await start_server(nursery, shared)
    async with httpx.AsyncClient(base_url=a.url) as on_a, httpx.AsyncClient(base_url=b.url) as on_b:
        alice = await register(on_a, "alice")
        wrong = {"username": "alice", "password": "not the password"}
        right = {"username": "alice", "password": PASSWORD}
        logins_a = a.service.accounts.throttle.by_user
        logins_b = b.service.accounts.throttle.by_user

        # Two failures through A, the third through B, which has counted A's: the limit (3)
        # is reached, and the right password is refused on either process for now.
        for _ in range(2):
            assert (await on_a.post("/login", json=wrong)).status_code == 401
        await _until(lambda: logins_b.failures(("alice", HERE), b.service.now()) == 2)
        assert (await on_b.post("/login", json=wrong)).status_code == 401
        assert (await on_b.post("/login", json=right)).status_code == 429
        await _until(lambda: logins_a.failures(("alice", HERE), a.service.now()) == 3)
        assert (await on_a.post("/login", json=right)).status_code == 429

        # Joins through links that are not valid: 10 a minute per user, over both processes.
        joins_a = a.service.rooms.join_failures
        joins_b = b.service.rooms.join_failures
        for i in range(5):
            bad = await on_a.post("/join", json={"token": f"nope{i}"}, headers=alice.auth)
            assert bad.status_code == 404, bad.text
        await _until(lambda: joins_b.failures("alice", b.service.now()) == 5)
        for i in range(5):
            bad = await on_b.post("/join", json={"token": f"nope{i}"}, headers=alice.auth)
            assert bad.status_code == 404, bad.text
        assert (
            await on_b.post("/join", json={"token": "x"}, headers=alice.auth)
        ).status_code == 429
        await _until(lambda: joins_a.failures("alice", a.service.now()) == 10)
        assert (
            await on_a.post("/join", json={"token": "x"}, headers=alice.auth)
        ).status_code == 429
    a.server.shutdown()
    b.server.shutdown()


def test_notes_travel_as_they_were_made_and_anything_else_is_refused() -> None:
    for note in (
        Note(LOGIN_FAILED, "alice", "::1", 1_800_000_000_000),
        Note(JOIN_FAILED, "bob", None, 1),
    ):
        assert decode_note(encode_note(note)) == note
    for bad in (b'["nope", "alice", null, 1]', b'["login_failed", 3, null, 1]', b"[]", b"{}"):
        with pytest.raises((ValueError, TypeError)):
            decode_note(bad)
