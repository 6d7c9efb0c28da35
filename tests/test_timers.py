"""Timers are tasks in a scoped nursery; re-arming or cancelling leaves no task behind."""

from __future__ import annotations

import trio
import trio.testing

from trio_chat.clock import TrioClock


async def test_arm_fire_rearm_cancel(mock_clock):
    from trio_chat.service.timers import Timers

    clock = TrioClock(wall_start=1000.0)
    fired: list[str] = []

    async def fire(name: str) -> None:
        fired.append(name)

    async with trio.open_nursery() as nursery:
        timers = Timers(nursery, clock)
        timers.arm("a", 1010.0, lambda: fire("a1"))
        timers.arm("a", 1020.0, lambda: fire("a2"))  # replaces a1
        timers.arm("b", 1005.0, lambda: fire("b"))
        await trio.testing.wait_all_tasks_blocked()
        assert len(nursery.child_tasks) == 2 and len(timers) == 2
        mock_clock.jump(5)
        await trio.testing.wait_all_tasks_blocked()
        assert fired == ["b"] and len(nursery.child_tasks) == 1
        mock_clock.jump(10)  # t = 1015: a1 would have fired
        await trio.testing.wait_all_tasks_blocked()
        assert fired == ["b"]
        timers.cancel("a")
        await trio.testing.wait_all_tasks_blocked()
        assert len(nursery.child_tasks) == 0 and len(timers) == 0
        mock_clock.jump(100)
        await trio.testing.wait_all_tasks_blocked()
        assert fired == ["b"]
        # A deadline in the past fires at once.
        timers.arm("c", 0.0, lambda: fire("c"))
        await trio.testing.wait_all_tasks_blocked()
        assert fired == ["b", "c"] and len(nursery.child_tasks) == 0
