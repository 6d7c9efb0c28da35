"""``trio-chat migrate``: copy an embedded store into an empty Redis database.

Every record is copied as it is stored (the same plain data, as JSON), so nothing passes
through the domain and nothing is renumbered: cursors, chat numbers, read positions and
idempotency keys mean the same after the move. The source is opened as a server would open
it (checked, repaired, upgraded first) and only read.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson
import trio

from trio_chat.storage import redis_store
from trio_chat.storage.shelf import ShelfStore, StoreError

log = logging.getLogger("trio_chat.lifecycle")

CHUNK = 1000
# embedded table -> Redis hash
TABLES = {
    "users": "users",
    "sessions": "sessions",
    "user_states": "user_states",
    "client_ids": "client_requests",
    "rooms": "rooms",
    "scheduled": "scheduled",
    "files": "files",
    "events": "events",
    "chat_index": "chat_index",
}


async def migrate(source: Path, target: str, allow_unsafe: bool = False) -> dict[str, int]:
    """Copy the store in ``source`` into Redis at ``target``; returns records per table."""
    if not (source / "trio-chat.sqlite3").exists():
        raise StoreError(f"{source} holds no trio-chat store")
    store = await trio.to_thread.run_sync(ShelfStore, source)
    outcome: dict[str, int] | StoreError
    try:
        async with redis_store.client(target) as redis:
            # coredis's client wraps whatever is raised inside it in an ExceptionGroup: a
            # refusal is carried out as a value and raised as itself.
            try:
                await redis_store.check_durable(redis, target, allow_unsafe=allow_unsafe)
                outcome = await _copy(store, redis, target)
            except StoreError as refused:
                outcome = refused
    finally:
        await trio.to_thread.run_sync(store.close)
    if isinstance(outcome, StoreError):
        raise outcome
    counts = outcome
    log.info(
        "copied %s into %s: %s",
        source,
        target,
        ", ".join(f"{n} {t}" for t, n in counts.items()),
    )
    return counts


def _value(table: str, value: Any) -> str:
    if table == "chat_index":
        return str(int(value))
    return orjson.dumps(value).decode("utf-8")


async def _copy(store: ShelfStore, redis: Any, target: str) -> dict[str, int]:
    taken = [k for k in redis_store.KEYS[2:] if await redis.exists([k])]
    if taken or await redis.hexists(redis_store.PREFIX + "meta", "cursor"):
        raise StoreError(f"{target} already holds a trio-chat store: migrate into an empty one")
    await redis_store.check_schema(redis, target)
    counts: dict[str, int] = {}
    for table, hash_name in TABLES.items():
        rows = await trio.to_thread.run_sync(store.export, table)
        counts[hash_name] = len(rows)
        key = redis_store.PREFIX + hash_name
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            await redis.hset(key, {k: _value(table, v) for k, v in chunk})
    meta = await trio.to_thread.run_sync(store.export, "meta")
    values = {k: str(int(v)) for k, v in meta if k != "schema"}
    if values:
        await redis.hset(redis_store.PREFIX + "meta", values)
    return counts
