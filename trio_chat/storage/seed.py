"""Fill a data directory with common-chat messages directly (for benchmarks and tests).

Much faster than sending them over HTTP; the result is exactly what the server would have
written. The authors must already be registered in that data directory, and no server may
be running on it.
"""

from __future__ import annotations

import time
from pathlib import Path

from trio_chat.domain import chats
from trio_chat.domain.models import Event, EventType, Message, message_id, user_key
from trio_chat.storage.base import Batch
from trio_chat.storage.shelf import ShelfStore

BATCH = 20_000


def seed_messages(data_dir: Path, *, count: int, authors: list[str]) -> None:
    store = ShelfStore(data_dir)
    try:
        snapshot = store.load()
        users = [snapshot.users[user_key(name)] for name in authors]
        cursor = snapshot.cursor
        seq = snapshot.heads.get(chats.GENERAL, 0)
        now = int(time.time() * 1000)
        written = 0
        while written < count:
            batch = Batch()
            for _ in range(min(BATCH, count - written)):
                cursor += 1
                seq += 1
                author = users[written % len(users)]
                message = Message(
                    id=message_id(cursor),
                    chat=chats.GENERAL,
                    seq=seq,
                    cursor=cursor,
                    author=author.name,
                    author_key=author.key,
                    to=None,
                    text=f"seeded message {seq}",
                    sent_at=now,
                )
                batch.add_event(
                    Event(
                        cursor=cursor, type=EventType.MESSAGE, chat=chats.GENERAL, message=message
                    )
                )
                written += 1
            store.write(batch)
    finally:
        store.close()
