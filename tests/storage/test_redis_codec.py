"""What a Redis commit sends (and the change log carries) decodes to the batch it came from."""

from __future__ import annotations

import orjson

from tests.storage.test_shelf import full_batch
from trio_chat.domain.idempotency import ClientRequest
from trio_chat.domain.lifetime import Delivered
from trio_chat.domain.state import UserState
from trio_chat.storage import records
from trio_chat.storage.redis_store import decode_batch, encode_batch


def test_every_kind_of_change_survives_the_log() -> None:
    batch = full_batch()
    batch.sessions["gone"] = None
    batch.client_requests["alice/c1"] = ClientRequest("message", 1, "d" * 64, 5)
    batch.client_requests["alice/old"] = None
    batch.rooms["r_gone"] = None
    batch.drop_events |= {7, 8}
    batch.drop_index |= {("general", 4), ("dm:alice:bob", 2)}
    batch.floors["general"] = 4
    batch.user_states["bob"] = UserState(
        delivered={"general": Delivered(2, ((3, 10), (5, 20))), "dm:alice:bob": Delivered()}
    )
    decoded = decode_batch(encode_batch(batch))
    assert decoded == batch
    assert decoded.user_states["bob"].delivered["general"].steps == ((3, 10), (5, 20))


def test_heads_and_the_cursor_only_ever_move_up_in_the_script() -> None:
    # They travel as "max" operations, never as plain sets: a comment's rewrite of an old
    # message must not move its chat's head back (issue 18's bug, now on Redis too).
    batch = full_batch()
    ops = orjson.loads(encode_batch(batch))
    maxed = {op[1] for op in ops if op[0] == 1}
    assert maxed == {"head/general", "head/dm:alice:bob", "cursor"}
    assert not any(op[0] == 0 and str(op[2]).startswith("head/") for op in ops)


def test_delivery_records_keep_their_stored_form() -> None:
    # Hand-written hooks (for speed) must store what cattrs stored: data directories
    # written before them load, and those written after load in older code.
    assert records.dump(Delivered(2, ((3, 10), (5, 20)))) == {
        "gone": 2,
        "steps": [(3, 10), (5, 20)],
    }
    assert records.dump(Delivered()) == {}
    assert records.dump(Delivered(0, ((1, 2),))) == {"steps": [(1, 2)]}
    for record in (Delivered(), Delivered(4), Delivered(2, ((3, 10), (5, 20)))):
        assert records.load(records.dump(record), Delivered) == record
        assert records.load(orjson.loads(orjson.dumps(records.dump(record))), Delivered) == record
