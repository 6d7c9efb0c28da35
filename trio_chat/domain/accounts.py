"""Accounts: username and password rules, password hashing, tokens, login throttling."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections import deque

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


@attrs.define
class LoginThrottle:
    """At most ``limit`` failed logins per username per sliding ``window`` (seconds)."""

    limit: int
    window_ms: int
    _failures: dict[str, deque[int]] = attrs.field(factory=dict)
    # Failures for names nobody asks about again would pile up: sweep when the table grows.
    _sweep_at: int = 1024

    def retry_after_ms(self, user: str, now: int) -> int:
        """0 if a login attempt may go ahead, else how long until it may."""
        failures = self._prune(user, now)
        if self.limit <= 0 or failures is None or len(failures) < self.limit:
            return 0
        return failures[0] + self.window_ms - now

    def record_failure(self, user: str, now: int) -> None:
        if self.limit <= 0:
            return
        failures = self._failures.setdefault(user, deque())
        failures.append(now)
        if len(failures) > self.limit:
            failures.popleft()  # only the newest `limit` failures matter
        if len(self._failures) >= self._sweep_at:
            for name in list(self._failures):
                self._prune(name, now)
            self._sweep_at = max(1024, 2 * len(self._failures))

    def __len__(self) -> int:
        return len(self._failures)

    def record_success(self, user: str) -> None:
        self._failures.pop(user, None)

    def _prune(self, user: str, now: int) -> deque[int] | None:
        failures = self._failures.get(user)
        if failures is None:
            return None
        while failures and failures[0] + self.window_ms <= now:
            failures.popleft()
        if not failures:
            del self._failures[user]
            return None
        return failures
