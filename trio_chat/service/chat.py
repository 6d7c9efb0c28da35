"""ChatService: the one object the handlers talk to, a thin facade over the jobs.

Each job is a module of its own that uses only the core (``core.py``) and the domain:
``accounts`` (sessions), ``messaging`` (chats, messages, the rate limit), ``moderation``
(reports, bans), ``delivery`` (long-poll, streams, replay), ``rooms`` (members, links,
requests), ``scheduling`` (messages sent later) and ``files`` (uploads, downloads).
No job imports another; what two jobs share lives in the core.
"""

from __future__ import annotations

import trio

from trio_chat.clock import Clock
from trio_chat.config import Config
from trio_chat.service.accounts import Accounts
from trio_chat.service.core import Core
from trio_chat.service.delivery import Delivery
from trio_chat.service.files import FileKeeping
from trio_chat.service.messaging import Messaging
from trio_chat.service.moderation import Moderation
from trio_chat.service.rooms import RoomManagement
from trio_chat.service.scheduling import Scheduling
from trio_chat.storage import ServiceStore, Snapshot


class ChatService:
    def __init__(
        self,
        config: Config,
        clock: Clock,
        store: ServiceStore,
        snapshot: Snapshot,
        timer_nursery: trio.Nursery,
    ) -> None:
        self.core = core = Core(config, clock, store, snapshot, timer_nursery)
        self.accounts = Accounts(core)
        self.messaging = Messaging(core)
        self.moderation = Moderation(core)
        self.delivery = Delivery(core)
        self.rooms = RoomManagement(core)
        self.scheduling = Scheduling(core)
        self.files = FileKeeping(core)
        # For the wiring (app.py) and for tests.
        self.config = config
        self.state = core.state
        self.store = store
        self.hub = core.hub
        self.timers = core.timers

    @property
    def committed_cursor(self) -> int:
        return self.core.committed_cursor

    def now(self) -> int:
        return self.core.now()

    def arm_persisted_timers(self) -> None:
        """At start-up: re-arm ban and rate-window timers from their stored deadlines."""
        self.moderation.arm_persisted_timers()
        self.core.arm_persisted_windows()
        self.scheduling.arm_persisted_timers()

    async def run_read_flusher(self) -> None:
        await self.core.run_read_flusher()

    async def run_expiry(self) -> None:
        await self.core.run_expiry()

    async def run_hourly(self) -> None:
        await self.core.run_hourly()

    async def flush_reads(self) -> None:
        await self.core.flush_reads()
