"""The one injectable clock.

All time in trio-chat comes from here. Wall-clock time (what timestamps, bans and rate-limit
periods are expressed in) is derived from Trio's clock plus one anchor taken at start-up, so
under ``trio.testing.MockClock`` the whole server -- timestamps, timers, deadlines -- moves in
virtual time and hours pass instantly in tests.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Protocol

import trio


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock time, seconds since the Unix epoch."""
        ...

    async def sleep_until(self, wall: float) -> None:
        """Sleep until the wall-clock time ``wall`` (returns at once if it has passed)."""
        ...


class TrioClock:
    """Wall time anchored once and then advanced by ``trio.current_time()``.

    Must be created inside ``trio.run``. ``wall_start`` pins the anchor (tests use it to get
    reproducible timestamps).
    """

    def __init__(self, wall_start: float | None = None) -> None:
        self._wall0 = time.time() if wall_start is None else wall_start
        self._trio0 = trio.current_time()

    def now(self) -> float:
        return self._wall0 + (trio.current_time() - self._trio0)

    async def sleep_until(self, wall: float) -> None:
        await trio.sleep_until(self._trio0 + (wall - self._wall0))


def now_ms(clock: Clock) -> int:
    return int(clock.now() * 1000)


def format_ms(ms: int) -> str:
    """RFC 3339 UTC with milliseconds: ``2026-11-26T23:40:29.123Z``."""
    seconds, millis = divmod(ms, 1000)
    return f"{_format_second(seconds)}.{millis:03d}Z"


@lru_cache(maxsize=1024)
def _format_second(seconds: int) -> str:
    # Every message of a busy second shares this prefix: on the hot path, worth a cache.
    return f"{datetime.fromtimestamp(seconds, tz=UTC):%Y-%m-%dT%H:%M:%S}"


def format_optional_ms(ms: int | None) -> str | None:
    return None if ms is None else format_ms(ms)
