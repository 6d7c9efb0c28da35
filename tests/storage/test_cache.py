"""The cache in front of the store is bounded in bytes, whatever the size of what it holds."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.storage.test_shelf import message
from trio_chat.storage import AsyncStore, Batch, ShelfStore
from trio_chat.storage.async_store import EVENT_OVERHEAD, event_weight

MIB = 1024 * 1024


def test_an_events_weight_counts_its_text_as_stored_in_memory() -> None:
    small, big = message(1, 1, text="x"), message(2, 2, text="\N{GRINNING FACE}" * 4096)
    assert EVENT_OVERHEAD < event_weight(small) < EVENT_OVERHEAD + 100
    assert event_weight(big) > 4 * 4096  # four bytes a character in memory


async def test_the_event_cache_holds_at_most_its_size_in_bytes(tmp_path: Path) -> None:
    store = ShelfStore(tmp_path)
    astore = AsyncStore(store, cache_bytes=1 * MIB)
    async with trio.open_nursery() as nursery:
        await nursery.start(astore.run_writer)
        for cursor in range(1, 301):  # 300 messages of 16 KiB: about 5 MiB
            batch = Batch()
            batch.add_event(message(cursor, cursor, text="\N{GRINNING FACE}" * 4096))
            await astore.commit(batch)
            assert astore.cache_weight <= 1 * MIB
        # The oldest fell out of the cache and come from disk, whole.
        first, last = await astore.events([1, 300])
        assert first is not None and first.message is not None and len(first.message.text) == 4096
        assert last is not None and last.cursor == 300
        assert astore.cache_weight <= 1 * MIB
        nursery.cancel_scope.cancel()
    store.close()
