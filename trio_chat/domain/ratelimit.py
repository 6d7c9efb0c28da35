"""The common-chat rate limit: a fixed window that opens with the first counted message.

At most ``limit`` messages per ``period``; the period starts with the first message counted
and the count resets when it ends. A rejected message changes nothing.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class RatePolicy:
    limit: int  # 0 = no limit
    period_ms: int

    @property
    def enabled(self) -> bool:
        return self.limit > 0


@attrs.frozen
class RateWindow:
    started_at: int
    count: int

    def ends_at(self, policy: RatePolicy) -> int:
        return self.started_at + policy.period_ms


@attrs.frozen
class RateStatus:
    limit: int
    remaining: int
    reset_at: int | None  # when the current window ends; None when none is open


def active_window(window: RateWindow | None, policy: RatePolicy, now: int) -> RateWindow | None:
    if window is None or now >= window.ends_at(policy):
        return None
    return window


def status(window: RateWindow | None, policy: RatePolicy, now: int) -> RateStatus:
    current = active_window(window, policy, now)
    if current is None:
        return RateStatus(policy.limit, policy.limit, None)
    return RateStatus(policy.limit, max(0, policy.limit - current.count), current.ends_at(policy))


def consume(window: RateWindow | None, policy: RatePolicy, now: int) -> RateWindow | None:
    """The window after counting one more message, or None if the message must be refused."""
    current = active_window(window, policy, now)
    if current is None:
        return RateWindow(started_at=now, count=1)
    if current.count >= policy.limit:
        return None
    return attrs.evolve(current, count=current.count + 1)
