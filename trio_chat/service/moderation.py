"""Moderation: reports, and bans that end by themselves."""

from __future__ import annotations

import logging

from trio_chat import errors
from trio_chat.clock import format_ms
from trio_chat.domain.models import User
from trio_chat.domain.state import ReportResult
from trio_chat.service.core import RETRY_TIMER_AFTER, Core, writes
from trio_chat.storage import Batch

log = logging.getLogger("trio_chat.service")


class Moderation:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.state = core.state
        core.remote_hooks.append(self._rearm_bans)

    def arm_persisted_timers(self) -> None:
        """At start-up: re-arm ban timers from their stored ends."""
        for key, until in list(self.state.bans()):
            self.arm_ban(key, until)

    @writes
    async def report(self, reporter: User, target: str, reason: str | None = None) -> ReportResult:
        target_user = self.state.require_user(target)
        key = target_user.key
        previous = self.state.state_of(key)
        result = self.state.report(reporter, target, self.core.now())
        events = [result.event] if result.event is not None else []
        await self.core.commit(
            Batch(user_states={key: self.state.state_of(key)}),
            events=events,
            undo=lambda: self.state.restore({key: previous}),
        )
        log.info(
            "report user=%s by=%s reports=%d reason=%r",
            result.target.name,
            reporter.name,
            result.reports,
            reason,
        )
        if result.banned_until is not None and result.event is not None:
            self.arm_ban(key, result.banned_until)
            log.info("banned user=%s until=%s", result.target.name, format_ms(result.banned_until))
        return result

    def _rearm_bans(self, batch: Batch) -> None:
        """Another process banned or let go of someone: this one's timer follows."""
        for key, user_state in batch.user_states.items():
            until = user_state.standing.banned_until
            if until is None:
                self.core.timers.cancel(("ban", key))
            else:
                self.arm_ban(key, until)

    def arm_ban(self, key: str, until_ms: int) -> None:
        self.core.timers.arm(("ban", key), until_ms / 1000, lambda: self._lift_ban(key))

    @writes
    async def _lift_ban(self, key: str) -> None:
        previous = self.state.state_of(key)
        event = self.state.lift_ban(key, self.core.now())
        if event is None:
            return
        try:
            await self.core.commit(
                Batch(user_states={key: self.state.state_of(key)}),
                events=[event],
                undo=lambda: self.state.restore({key: previous}),
            )
        except errors.ChatError:
            self.core.timers.arm(
                ("ban", key), self.core.clock.now() + RETRY_TIMER_AFTER, lambda: self._lift_ban(key)
            )
            return
        log.info("ban lifted user=%s", key)
