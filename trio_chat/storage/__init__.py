"""Durable storage behind one interface.

``base.Store`` is the interface (synchronous, called from worker threads);
``shelf.ShelfStore`` implements it with ``shelve`` over SQLite tables (``sqlite_mapping``);
``async_store.ServiceStore`` is what the service talks to: one writer task with group
commit, and a cache of recent events in front of the reads; ``AsyncStore`` runs a ``Store``
under it in worker threads. ``redis_store.RedisStore`` is the second backend, a store several
server processes share.
"""

from trio_chat.storage.async_store import AsyncStore, ServiceStore
from trio_chat.storage.base import Batch, Note, Snapshot, Store
from trio_chat.storage.shelf import ShelfStore

__all__ = ["AsyncStore", "Batch", "Note", "ServiceStore", "ShelfStore", "Snapshot", "Store"]
