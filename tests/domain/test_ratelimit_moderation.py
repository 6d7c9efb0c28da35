from __future__ import annotations

import pytest

from trio_chat.domain import moderation, ratelimit

POLICY = ratelimit.RatePolicy(limit=2, period_ms=100)


def test_window_opens_with_first_message_and_counts() -> None:
    w = ratelimit.consume(None, POLICY, 10)
    assert w == ratelimit.RateWindow(10, 1)
    w = ratelimit.consume(w, POLICY, 50)
    assert w == ratelimit.RateWindow(10, 2)
    assert ratelimit.consume(w, POLICY, 109) is None
    assert ratelimit.consume(w, POLICY, 110) == ratelimit.RateWindow(110, 1)
    assert ratelimit.status(w, POLICY, 109) == ratelimit.RateStatus(2, 0, 110)
    assert ratelimit.status(w, POLICY, 110) == ratelimit.RateStatus(2, 2, None)


def test_report_round() -> None:
    policy = moderation.BanPolicy(threshold=2, duration_ms=100)
    standing = moderation.Standing()
    out = moderation.report(standing, "a", policy, 0)
    assert (out.reports, out.banned_now) == (1, False)
    with pytest.raises(moderation.AlreadyReportedError):
        moderation.report(out.standing, "a", policy, 1)
    out = moderation.report(out.standing, "b", policy, 5)
    assert out.banned_now and out.standing.banned_until == 105
    assert out.standing.reporters == frozenset()
    assert out.standing.ban_at(104) == 105 and out.standing.ban_at(105) is None
