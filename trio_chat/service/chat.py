"""ChatService: the one object the handlers talk to, a thin facade over the jobs.

Each job is a module of its own that uses only the core (``core.py``) and the domain:
``accounts`` (sessions), ``messaging`` (chats, messages, the rate limit), ``moderation``
(reports, bans), ``delivery`` (long-poll, streams, replay), ``rooms`` (members, links,
requests), ``scheduling`` (messages sent later) and ``files`` (uploads, downloads).
No job imports another; what two jobs share lives in the core.
"""

from __future__ import annotations

import itertools

import trio

from trio_chat.clock import Clock
from trio_chat.config import Config
from trio_chat.domain import chats
from trio_chat.domain.models import Event, EventType, Message
from trio_chat.service.accounts import Accounts
from trio_chat.service.core import Core
from trio_chat.service.delivery import Delivery
from trio_chat.service.files import FileKeeping
from trio_chat.service.messaging import Messaging
from trio_chat.service.moderation import Moderation
from trio_chat.service.rooms import RoomManagement
from trio_chat.service.scheduling import Scheduling
from trio_chat.storage import ServiceStore, Snapshot, records


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

    async def warm_up(self) -> list[Message]:
        """Before the server says it is ready: run what the first ``/connect`` would run first.

        Reads the newest page of the common chat, as every ``/connect`` does -- through the
        store's reader (SQLite's pages, the event records' converter) into the cache of recent
        events -- and turns the records a first ``/connect`` writes (the user's state, a
        ``read`` event) into their stored form. Writes nothing. cattrs generates a converter
        function per class on first use, and generating one can drop others it had cached:
        the records go round until none is new. Returns the page, for the caller to warm its
        own path (the views). Without it the first ``/connect`` after start took 6-9x another
        user's first one (bench coldstart).
        """
        size = self.config.history_size
        head = self.core.committed_heads.get(chats.GENERAL, 0)
        page = await self.core.messages(chats.GENERAL, range(max(1, head - size + 1), head + 1))
        samples: list[object] = [
            Event(cursor=0, type=EventType.READ, chat=chats.GENERAL, user="", up_to=0),
            *page[-1:],
        ]
        for table in (self.state.users, self.state.sessions, self.state.user_states):
            samples.extend(itertools.islice(table.values(), 1))
        for _ in range(3):
            for sample in samples:
                records.dump(sample)
        return page

    async def run_read_flusher(self) -> None:
        await self.core.run_read_flusher()

    async def run_expiry(self) -> None:
        await self.core.run_expiry()

    async def run_hourly(self) -> None:
        await self.core.run_hourly()

    async def flush_reads(self) -> None:
        await self.core.flush_reads()
