"""The server put together: store, service, HTTP, timers -- and the order they stop in."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from trio_chat.api import build_router
from trio_chat.clock import Clock, TrioClock
from trio_chat.config import Config
from trio_chat.http import HTTPServer
from trio_chat.service.chat import ChatService
from trio_chat.storage import AsyncStore, ServiceStore, ShelfStore, Snapshot
from trio_chat.storage.blobs import BlobStore

log = logging.getLogger("trio_chat.lifecycle")


class ChatServer:
    """``await nursery.start(server.run)`` gives the bound ``(host, port)``;
    ``server.shutdown()`` stops it gracefully and ``run`` returns."""

    def __init__(self, config: Config, *, clock: Clock | None = None) -> None:
        self.config = config
        self._clock = clock
        self._shutdown = trio.Event()
        self.service: ChatService | None = None
        self.http: HTTPServer | None = None

    def shutdown(self) -> None:
        self._shutdown.set()

    async def run(
        self, *, task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        config = self.config
        started = trio.current_time()
        async with open_store(config) as (astore, snapshot, where):
            if config.store is None:
                # Uploads a crash cut short left only temporary files: never a record. (With
                # a shared directory another process may be uploading: left alone.)
                left = await trio.to_thread.run_sync(BlobStore(config.data_dir).clean_temp)
                if left:
                    log.info("removed %d unfinished upload(s) left by an earlier run", left)
            clock = self._clock or TrioClock()
            async with trio.open_nursery() as writer:
                await writer.start(astore.run_writer)
                await writer.start(astore.run)
                async with trio.open_nursery() as background:
                    service = ChatService(config, clock, astore, snapshot, background)
                    self.service = service
                    service.arm_persisted_timers()
                    background.start_soon(service.run_read_flusher)
                    background.start_soon(service.run_hourly)
                    background.start_soon(service.run_expiry)
                    background.start_soon(service.hub.run_keepalive, config.sse_keepalive_interval)
                    self.http = http = HTTPServer(build_router(service), config)
                    async with trio.open_nursery() as serving:
                        address = await serving.start(http.serve)
                        service.core.public_url = config.public_url or _url(address)
                        log.info(
                            "ready in %.0f ms: %d users, %d messages in the log, data in %s",
                            (trio.current_time() - started) * 1000,
                            len(snapshot.users),
                            snapshot.cursor,
                            where,
                        )
                        task_status.started(address)
                        await self._shutdown.wait()
                        log.info("shutting down: no new connections, finishing requests")
                        http.shutdown()
                        service.hub.close()
                    await service.flush_reads()
                    background.cancel_scope.cancel()
                await astore.drain()
                writer.cancel_scope.cancel()
                log.info("%d writes in %d commits", astore.batches, astore.commits)
        log.info("stopped; storage closed")


@asynccontextmanager
async def open_store(config: Config) -> AsyncIterator[tuple[ServiceStore, Snapshot, str]]:
    """The store the configuration names, loaded: (store, snapshot, where it is)."""
    if config.store is not None:
        # Imported only when used: coredis costs ~14 MiB of memory and 0.2 s to import.
        from trio_chat.storage.redis_store import RedisStore

        async with RedisStore.open(
            config.store, allow_unsafe=config.allow_unsafe_store, cache_bytes=config.cache_size
        ) as redis_store:
            snapshot = await redis_store.load()
            yield redis_store, snapshot, f"{config.store} (files in {config.data_dir})"
        return
    store = await trio.to_thread.run_sync(ShelfStore, config.data_dir)
    try:
        snapshot = await AsyncStore.load(store)
        yield AsyncStore(store, cache_bytes=config.cache_size), snapshot, str(config.data_dir)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(store.close)


def _url(address: tuple[str, int]) -> str:
    host, port = address
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
