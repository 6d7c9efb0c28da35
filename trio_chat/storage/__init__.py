"""Durable storage behind one interface.

``base.Store`` is the interface (synchronous, called from worker threads);
``shelf.ShelfStore`` implements it with ``shelve`` over SQLite tables (``sqlite_mapping``);
``async_store.AsyncStore`` puts it behind Trio: one writer task with group commit, reads in a
worker thread, and a cache of recent events in front.
"""

from trio_chat.storage.async_store import AsyncStore
from trio_chat.storage.base import Batch, Snapshot, Store
from trio_chat.storage.shelf import ShelfStore

__all__ = ["AsyncStore", "Batch", "ShelfStore", "Snapshot", "Store"]
