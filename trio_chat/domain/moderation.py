"""Reports and bans.

A user reported by ``threshold`` distinct users is banned from sending for ``duration``.
Each reporter may report a target once until the target's next ban; the ban starts a new
round (reporters are forgotten) and, when it ends by itself, the count is 0 again.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class BanPolicy:
    threshold: int
    duration_ms: int


@attrs.frozen
class Standing:
    """What moderation knows about one user."""

    reporters: frozenset[str] = frozenset()
    banned_until: int | None = None

    def ban_at(self, now: int) -> int | None:
        """The end of the ban in force at ``now``, if any."""
        if self.banned_until is not None and now < self.banned_until:
            return self.banned_until
        return None


@attrs.frozen
class ReportOutcome:
    standing: Standing
    reports: int
    banned_now: bool


class AlreadyReportedError(Exception):
    pass


def report(standing: Standing, reporter: str, policy: BanPolicy, now: int) -> ReportOutcome:
    if reporter in standing.reporters:
        raise AlreadyReportedError
    reporters = standing.reporters | {reporter}
    if len(reporters) >= policy.threshold:
        until = now + policy.duration_ms
        return ReportOutcome(Standing(frozenset(), until), len(reporters), banned_now=True)
    return ReportOutcome(attrs.evolve(standing, reporters=reporters), len(reporters), False)


def lift(standing: Standing) -> Standing:
    """The standing once a ban has run out: no ban, no reports."""
    return Standing()
