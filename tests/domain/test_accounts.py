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


def test_failure_window() -> None:
    window = accounts.FailureWindow(limit=5, window_ms=60_000, max_keys=100)
    for i in range(5):
        assert window.retry_after_ms("alice", i) == 0
        window.record_failure("alice", i)
    assert window.retry_after_ms("alice", 10) == 60_000 - 10
    assert window.retry_after_ms("bob", 10) == 0
    assert window.retry_after_ms("alice", 60_000) == 0  # the first failure has aged out
    window.forget("alice")
    assert window.retry_after_ms("alice", 60_001) == 0
    for _ in range(50):
        window.record_failure("carol", now=100)
    assert len(window._failures["carol"]) == 5  # only the newest `limit` are kept


def test_failures_told_late_by_another_process_count_in_time_order() -> None:
    window = accounts.FailureWindow(limit=3, window_ms=1000, max_keys=10)
    window.record_failure("k", 500)
    window.record_failure("k", 100)  # made earlier elsewhere, told now
    window.record_failure("k", 300)
    assert window.failures("k", 600) == 3
    assert window.retry_after_ms("k", 600) == 500  # the oldest, at 100, leaves at 1100
    assert window.failures("k", 1100) == 2  # 100 has left; 300 and 500 are still in
    window.record_failure("k", 50)  # older than all: the newest three are kept
    assert window.failures("k", 1100) == 2 and window.failures("k", 1500) == 0


def test_failure_window_memory_is_bounded_by_its_keys() -> None:
    window = accounts.FailureWindow(limit=5, window_ms=60_000, max_keys=1000)
    window.record_failure("victim", now=0)
    for i in range(5000):  # a flood of distinct keys, all inside the window
        window.record_failure(f"user{i}", now=i)
        assert len(window) <= 1000
    # The least recently failed went first.
    assert window.retry_after_ms("victim", 5000) == 0 and "user4999" in window._failures


LOCAL, OTHER = "203.0.113.7", "198.51.100.9"


def make_throttle(**kw) -> accounts.LoginThrottle:
    args = {"per_user": 5, "per_address": 30, "window_ms": 60_000, "memory_bytes": 1 << 20}
    return accounts.LoginThrottle(**{**args, **kw})


def test_a_locked_username_is_locked_only_for_the_guessing_address() -> None:
    throttle = make_throttle()
    for i in range(5):
        assert throttle.check("alice", LOCAL, i) is None
        throttle.record_failure("alice", LOCAL, i)
    refused = throttle.check("alice", LOCAL, 10)
    assert refused == accounts.LoginRefused(60_000 - 10, by_address=False)
    # Its owner, from an address with no failures, is not locked out.
    assert throttle.check("alice", OTHER, 10) is None
    # The guesser may still log in as someone else (under the address limit).
    assert throttle.check("bob", LOCAL, 10) is None


def test_one_address_cannot_guess_across_many_usernames() -> None:
    throttle = make_throttle()
    for i in range(30):
        assert throttle.check(f"user{i}", LOCAL, i) is None
        throttle.record_failure(f"user{i}", LOCAL, i)
    refused = throttle.check("fresh", LOCAL, 100)
    assert refused is not None and refused.by_address
    assert refused.retry_after_ms == 60_000 - 100
    assert throttle.check("fresh", OTHER, 100) is None
    # A success does not wipe the address's record.
    throttle.record_success("user0", LOCAL)
    assert throttle.check("fresh", LOCAL, 100) is not None
    assert throttle.check("anyone", LOCAL, 60_029) is None  # all 30 aged out


def test_zero_limits_turn_throttling_off() -> None:
    throttle = make_throttle(per_user=0, per_address=0)
    for i in range(100):
        throttle.record_failure("alice", LOCAL, i)
    assert throttle.check("alice", LOCAL, 100) is None and len(throttle) == 0


def test_login_throttle_memory_is_bounded_in_bytes() -> None:
    throttle = make_throttle(memory_bytes=1 << 20)
    for i in range(50_000):
        throttle.record_failure(f"user{i}", f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}", i)
    keys_budget = (1 << 20) // 2
    assert len(throttle.by_user) * accounts.failure_key_bytes(5) <= keys_budget
    assert len(throttle.by_address) * accounts.failure_key_bytes(30) <= keys_budget
