"""Accounts: username and password rules, password hashing, tokens, login throttling."""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import re
import secrets
from collections.abc import Hashable

import attrs

USERNAME_RE = re.compile(r"[A-Za-z0-9_.\-]{1,32}")
PASSWORD_MIN = 8
PASSWORD_MAX = 256

_SCRYPT_R = 8
_SCRYPT_P = 1


def username_problem(username: str) -> str | None:
    if USERNAME_RE.fullmatch(username) is None:
        return "username must be 1 to 32 characters of A-Z a-z 0-9 _ . -"
    return None


def password_problem(password: str) -> str | None:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return f"password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters"
    return None


def hash_password(password: str, *, n: int = 2**14) -> str:
    """A salted scrypt hash, self-describing: ``scrypt$n$r$p$salt$hash``.

    CPU-heavy on purpose (tens of milliseconds): callers run it in a worker thread.
    """
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, n, _SCRYPT_R, _SCRYPT_P)
    return "$".join(["scrypt", str(n), str(_SCRYPT_R), str(_SCRYPT_P), _b64(salt), _b64(digest)])


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        actual = _scrypt(password, _unb64(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, _unb64(digest))


# A fixed hash to verify against when the username does not exist, so that a login for an
# unknown user costs the same time as one with a wrong password.
def dummy_hash(n: int) -> str:
    return "$".join(["scrypt", str(n), str(_SCRYPT_R), str(_SCRYPT_P), _b64(b"\0" * 16), _b64(b"")])


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r, dklen=32
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_token() -> str:
    """A random 256-bit bearer token."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the server stores instead of the token.

    Tokens carry 256 random bits, so a fast hash is enough: nobody can invert it, and a
    copied data directory gives no one a working token.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class FailureWindow:
    """Failures per key over a sliding window, in memory bounded by ``max_keys``.

    Only the newest ``limit`` failures of a key matter, so a key costs at most that many
    timestamps. Past ``max_keys`` the keys with no failure left in the window go first, then
    the least recently failed ones: memory stays bounded whatever an attacker sends, at the
    price of forgetting the oldest counts under a flood of distinct keys.
    """

    def __init__(self, limit: int, window_ms: int, max_keys: int) -> None:
        self.limit = limit
        self.window_ms = window_ms
        self.max_keys = max_keys
        self._failures: dict[Hashable, list[int]] = {}  # oldest-updated first

    def retry_after_ms(self, key: Hashable, now: int) -> int:
        """0 if ``key`` is under its limit at ``now``, else how long until it is."""
        failures = self._prune(key, now)
        if self.limit <= 0 or failures is None or len(failures) < self.limit:
            return 0
        return failures[0] + self.window_ms - now

    def record_failure(self, key: Hashable, now: int) -> None:
        if self.limit <= 0:
            return
        failures = self._failures.pop(key, None) or []
        # In time order, whatever order they come in (another process's arrive a moment late).
        bisect.insort(failures, now)
        del failures[: -self.limit]  # only the newest `limit` failures matter
        self._failures[key] = failures  # to the end: the most recently failed
        if len(self._failures) > self.max_keys:
            for name in list(self._failures):
                self._prune(name, now)
            while len(self._failures) > self.max_keys:
                del self._failures[next(iter(self._failures))]

    def failures(self, key: Hashable, now: int) -> int:
        """How many of ``key``'s failures are still in the window at ``now`` (up to limit)."""
        found = self._prune(key, now)
        return 0 if found is None else len(found)

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)

    def _prune(self, key: Hashable, now: int) -> list[int] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] + self.window_ms <= now:
            del failures[0]
        if not failures:
            del self._failures[key]
            return None
        return failures


def failure_key_bytes(limit: int) -> int:
    """What one key of a FailureWindow costs, about: its dict slot, the key (a username and an
    address), a list of up to ``limit`` timestamps. Measured with tracemalloc: 573 bytes at
    limit 5 with (username, IPv6 address) keys, 1,512 at limit 30 with address keys."""
    return 384 + 40 * max(1, limit)


@attrs.frozen
class LoginRefused:
    retry_after_ms: int
    by_address: bool  # the address is over its limit, not only this username from it


class LoginThrottle:
    """Failed logins, counted per username *from one address* and per address.

    - ``per_user`` failures for one username from one address lock that username out for that
      address only: its owner, logging in from elsewhere, is not locked out by a guesser.
    - ``per_address`` failures from one address, whatever the usernames, lock the address
      out: one client cannot try passwords across many usernames.

    The trade-off: a guesser with many addresses gets ``per_user`` tries per address per window.
    A request with no known address counts under the address ``None`` (all such together).
    """

    def __init__(
        self, *, per_user: int, per_address: int, window_ms: int, memory_bytes: int
    ) -> None:
        # Half the memory each.
        self.by_user = FailureWindow(
            per_user, window_ms, max(1, memory_bytes // 2 // failure_key_bytes(per_user))
        )
        self.by_address = FailureWindow(
            per_address, window_ms, max(1, memory_bytes // 2 // failure_key_bytes(per_address))
        )

    def check(self, user: str, address: str | None, now: int) -> LoginRefused | None:
        """Whether a login attempt may go ahead (None), or when it may."""
        wait = self.by_address.retry_after_ms(address, now)
        if wait > 0:
            return LoginRefused(wait, by_address=True)
        wait = self.by_user.retry_after_ms((user, address), now)
        return LoginRefused(wait, by_address=False) if wait > 0 else None

    def record_failure(self, user: str, address: str | None, now: int) -> None:
        self.by_user.record_failure((user, address), now)
        self.by_address.record_failure(address, now)

    def record_success(self, user: str, address: str | None) -> None:
        # The address's count stays: a guesser's own account must not wipe its record.
        self.by_user.forget((user, address))

    def __len__(self) -> int:
        return len(self.by_user) + len(self.by_address)
