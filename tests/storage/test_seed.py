from pathlib import Path

from trio_chat.domain.models import User
from trio_chat.storage import Batch, ShelfStore
from trio_chat.storage.seed import seed_messages


def test_seed_appends_numbered_messages(tmp_path: Path) -> None:
    store = ShelfStore(tmp_path)
    store.write(Batch(users={"alice": User("Alice", "h", 0), "bob": User("bob", "h", 0)}))
    store.close()
    seed_messages(tmp_path, count=25, authors=["alice", "bob"])
    seed_messages(tmp_path, count=5, authors=["alice"])
    store = ShelfStore(tmp_path)
    snap = store.load()
    assert snap.cursor == 30 and snap.heads == {"general": 30}
    (last,) = store.read_events([30])
    assert last is not None and last.message is not None and last.message.author == "Alice"
    store.close()
