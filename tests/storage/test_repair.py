"""Opening a store: only whole stores of ours are opened, and damage from a known bug is
repaired from the event log (the log is the truth; heads and the chat index derive from it)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from tests.storage.test_shelf import message
from trio_chat.domain.models import Event, EventType, Session, User
from trio_chat.domain.state import UserState
from trio_chat.storage import Batch, ShelfStore, records
from trio_chat.storage.records import SCHEMA_VERSION
from trio_chat.storage.shelf import FILENAME, StoreDamaged, StoreVersionError


def test_a_rewritten_message_moves_no_head() -> None:
    batch = Batch()
    batch.update_event(message(1, 1))
    assert batch.heads == {} and batch.chat_index == {} and batch.cursor == 0
    later = Batch()
    later.add_event(message(7, 3))
    later.update_event(message(1, 1))
    assert later.heads == {"general": 3} and later.cursor == 7


def test_the_store_never_moves_a_head_back(tmp_path: Path) -> None:
    store = ShelfStore(tmp_path)
    batch = Batch()
    for cursor in (1, 2, 3):
        batch.add_event(message(cursor, cursor))
    store.write(batch)
    # A batch that (wrongly) carries an older head and cursor cannot lower them.
    store.write(Batch(heads={"general": 1}, cursor=1))
    snap = store.load()
    assert snap.heads == {"general": 3} and snap.cursor == 3
    store.close()


def damaged_store(path: Path, *, schema: int) -> None:
    """What the comment bug left behind, written as it wrote it.

    m1..m3 (cursors 1-3, seqs 1-3); a comment on m1 (cursor 4) stored the chat head as 1;
    after a restart the next send (cursor 5) took seq 2, m2's place in the index. Bob had
    read up to that new message (seq 2 then).
    """
    store = ShelfStore(path)
    batch = Batch(
        users={"bob": User("Bob", "scrypt$x", 1)},
        sessions={"h": Session("bob", 1)},
        user_states={"bob": UserState(read={"general": 2})},
    )
    for cursor in (1, 2, 3):
        batch.add_event(message(cursor, cursor))
    batch.add_event(Event(cursor=4, type=EventType.COMMENT, chat="general"))
    store.write(batch)
    # Written record by record, as the damaged store has it (each put is its own commit).
    meta, index, events = (store._writer[t] for t in ("meta", "chat_index", "events"))
    meta["head/general"] = 2
    meta["cursor"] = 5
    index["general/2"] = 5
    events["5"] = records.dump(message(5, 2, text="after the restart"))
    meta["schema"] = schema
    store.close()


@pytest.mark.parametrize("schema", [1, SCHEMA_VERSION])
def test_a_store_damaged_by_the_comment_bug_is_repaired_at_start(
    tmp_path: Path, schema: int, caplog: pytest.LogCaptureFixture
) -> None:
    # Schema 1 stores are always checked; a current one is caught by a record past its head.
    damaged_store(tmp_path, schema=schema)
    with caplog.at_level(logging.WARNING, logger="trio_chat.storage"):
        store = ShelfStore(tmp_path)
    assert any("repaired" in r.getMessage() for r in caplog.records)
    snap = store.load()
    assert snap.heads == {"general": 4} and snap.cursor == 5
    # Every message is reachable again, in log order, under numbers without duplicates.
    cursors = store.read_chat_index("general", [1, 2, 3, 4, 5])
    assert cursors == [1, 2, 3, 5, None]
    found = store.read_events([1, 2, 3, 5])
    assert [e.message.seq for e in found if e and e.message] == [1, 2, 3, 4]
    assert found[3] is not None and found[3].message is not None
    assert found[3].message.text == "after the restart"
    # Bob's read position still names the message it named (now seq 4).
    assert snap.user_states["bob"].read == {"general": 4}
    store.close()

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="trio_chat.storage"):
        store = ShelfStore(tmp_path)  # repaired once: a healthy store is opened as it is
    assert not caplog.records
    assert store._writer["meta"]["schema"] == SCHEMA_VERSION
    store.close()


def test_a_zero_length_database_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / FILENAME).write_bytes(b"")
    with pytest.raises(StoreDamaged, match="not a trio-chat store"):
        ShelfStore(tmp_path)
    assert (tmp_path / FILENAME).stat().st_size == 0  # left as found, for its owner


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    store = ShelfStore(tmp_path)
    store._transaction(lambda: store._writer["meta"].__setitem__("schema", SCHEMA_VERSION + 1))
    store.close()
    with pytest.raises(StoreVersionError):
        ShelfStore(tmp_path)


def test_a_new_data_dir_gets_a_whole_store(tmp_path: Path) -> None:
    # A creation interrupted earlier leaves only a file aside, which is started over.
    (tmp_path / (FILENAME + ".new")).write_bytes(b"half")
    store = ShelfStore(tmp_path)
    assert store.load().cursor == 0
    store.close()
    assert not (tmp_path / (FILENAME + ".new")).exists()
    ShelfStore(tmp_path).close()  # and it opens again


def test_the_server_refuses_a_zero_length_store_in_one_line(tmp_path: Path) -> None:
    (tmp_path / FILENAME).write_bytes(b"")
    result = subprocess.run(
        [sys.executable, "-m", "trio_chat", "serve", "--port", "0", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert [line for line in lines if "cannot start" in line] == lines[-1:], result.stderr
    assert "not a trio-chat store" in lines[-1] and "Traceback" not in result.stderr
