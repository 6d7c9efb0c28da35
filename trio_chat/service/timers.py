"""Timers as cancellable tasks in one scoped nursery.

Each timer is a task sleeping until a wall-clock deadline (through the injected clock) in its
own cancel scope. Arming a timer under a key that already has one cancels the old one, so at
most one task per key exists; cancelled timers leave no task behind.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Hashable

import trio

from trio_chat.clock import Clock

log = logging.getLogger("trio_chat.timers")


class Timers:
    def __init__(self, nursery: trio.Nursery, clock: Clock) -> None:
        self._nursery = nursery
        self._clock = clock
        self._scopes: dict[Hashable, trio.CancelScope] = {}

    def arm(self, key: Hashable, deadline: float, action: Callable[[], Awaitable[None]]) -> None:
        """Run ``action`` at wall-clock ``deadline`` (seconds), replacing any timer ``key``."""
        self.cancel(key)
        scope = trio.CancelScope()
        self._scopes[key] = scope
        self._nursery.start_soon(self._run, key, scope, deadline, action)

    def cancel(self, key: Hashable) -> None:
        scope = self._scopes.pop(key, None)
        if scope is not None:
            scope.cancel()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._scopes

    def __len__(self) -> int:
        return len(self._scopes)

    async def _run(
        self,
        key: Hashable,
        scope: trio.CancelScope,
        deadline: float,
        action: Callable[[], Awaitable[None]],
    ) -> None:
        with scope:
            await self._clock.sleep_until(deadline)
            # The action runs outside the timer's identity: arming the same key from inside
            # it (to re-arm) must not cancel the action itself.
            if self._scopes.get(key) is scope:
                del self._scopes[key]
        if scope.cancelled_caught:
            return
        try:
            await action()
        except Exception:
            log.exception("timer %r failed", key)
