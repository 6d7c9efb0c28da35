"""The lifetime of delivered messages.

Theory of operation
-------------------
A message lives ``ttl`` after it was *delivered* to a reader (the reader's read position
passed it), and ``ttl`` after it was sent for its author. Nothing is kept per message and
reader: a read position only moves forward, so each user keeps, per chat, the steps by which
it moved (position, time) -- a message of seq ``s`` was delivered at the time of the first
step that reached ``s``. Steps older than ``ttl`` fold into ``gone``: every message at or
below it has expired for that user. A step's time is rounded *up* to a multiple of
``ttl / STEPS`` and steps of one such slice merge, so a user holds at most ``STEPS + 1``
steps per chat however much it reads, and a message lives at most ``ttl / STEPS`` longer
than ``ttl`` (never shorter).

A chat's messages can be deleted from disk up to its *floor*: the lowest ``gone`` among the
users they concern (its members; for the common chat, every user registered before them).
Someone who never reads holds the floor down: nobody loses an unread message.
"""

from __future__ import annotations

import attrs

STEPS = 256  # steps kept per user and chat, at most (plus one)


@attrs.frozen
class Delivered:
    """How one user's read position in one chat moved, as far as lifetimes still care."""

    gone: int = 0  # every seq <= gone has expired for the user
    steps: tuple[tuple[int, int], ...] = ()  # (position, when), both increasing

    def delivered_at(self, seq: int) -> int | None:
        """When message ``seq`` was delivered, or None if not yet (or long gone)."""
        for position, at in self.steps:
            if position >= seq:
                return at
        return None

    def expired(self, seq: int, now: int, ttl: int) -> bool:
        if seq <= self.gone:
            return True
        at = self.delivered_at(seq)
        return at is not None and at + ttl <= now

    def moved(self, position: int, now: int, ttl: int) -> Delivered:
        """The record once the position reached ``position`` at ``now``."""
        if (self.steps and self.steps[-1][0] >= position) or position <= self.gone:
            return self
        slice_ = max(1, ttl // STEPS)
        at = -(-now // slice_) * slice_  # rounded up: a lifetime may run late, never early
        steps = list(self.steps)
        if steps and steps[-1][1] == at:
            steps[-1] = (position, at)
        else:
            steps.append((position, at))
        return Delivered(self.gone, tuple(steps)).pruned(now, ttl)

    def pruned(self, now: int, ttl: int) -> Delivered:
        """Fold the steps that have expired into ``gone``."""
        gone = self.gone
        keep = []
        for position, at in self.steps:
            if at + ttl <= now:
                gone = max(gone, position)
            else:
                keep.append((position, at))
        if gone == self.gone and len(keep) == len(self.steps):
            return self
        return Delivered(gone, tuple(keep))

    def next_expiry(self, ttl: int) -> int | None:
        return None if not self.steps else self.steps[0][1] + ttl
