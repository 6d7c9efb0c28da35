from __future__ import annotations

import pytest

from trio_chat.domain import accounts


@pytest.mark.parametrize("name", ["a", "Alice_1.x-y", "x" * 32])
def test_valid_usernames(name: str) -> None:
    assert accounts.username_problem(name) is None


@pytest.mark.parametrize("name", ["", "x" * 33, "al ice", "ali:ce", "émile", "a/b", "a\n"])
def test_invalid_usernames(name: str) -> None:
    assert accounts.username_problem(name) is not None


@pytest.mark.parametrize(
    ("password", "ok"), [("x" * 7, False), ("x" * 8, True), ("x" * 256, True), ("x" * 257, False)]
)
def test_password_length(password: str, ok: bool) -> None:
    assert (accounts.password_problem(password) is None) is ok


def test_hash_and_verify() -> None:
    stored = accounts.hash_password("hunter22", n=16)
    assert stored.startswith("scrypt$16$") and "hunter22" not in stored
    assert accounts.verify_password("hunter22", stored)
    assert not accounts.verify_password("hunter23", stored)
    assert accounts.hash_password("hunter22", n=16) != stored  # salted
    assert not accounts.verify_password("hunter22", accounts.dummy_hash(16))
    assert not accounts.verify_password("x", "garbage")


def test_tokens_are_random_and_stored_hashed() -> None:
    token = accounts.new_token()
    assert len(token) >= 43 and token != accounts.new_token()
    assert accounts.token_hash(token) != token and len(accounts.token_hash(token)) == 64


def test_login_throttle_window() -> None:
    throttle = accounts.LoginThrottle(limit=5, window_ms=60_000)
    for i in range(5):
        assert throttle.retry_after_ms("alice", i) == 0
        throttle.record_failure("alice", i)
    assert throttle.retry_after_ms("alice", 10) == 60_000 - 10
    assert throttle.retry_after_ms("bob", 10) == 0
    assert throttle.retry_after_ms("alice", 60_000) == 0  # the first failure has aged out
    throttle.record_success("alice")
    assert throttle.retry_after_ms("alice", 60_001) == 0


def test_login_throttle_memory_is_bounded() -> None:
    throttle = accounts.LoginThrottle(limit=5, window_ms=60_000)
    for i in range(5000):
        throttle.record_failure(f"user{i}", now=i)
    # Every name's failures have aged out by now: the next sweep drops them all.
    for i in range(5000):
        throttle.record_failure(f"late{i}", now=10_000_000 + i)
    assert len(throttle) <= 5000
    for _ in range(50):
        throttle.record_failure("alice", now=20_000_000)
    assert len(throttle._failures["alice"]) == 5
