"""How domain records become stored values: cattrs-unstructured primitives.

Values are plain dicts, lists, strings and numbers (pickled by ``shelve``), never pickled
classes, so renaming or moving a class never breaks a data directory.
"""

from __future__ import annotations

from typing import Any, TypeVar, get_origin

import cattrs

from trio_chat.domain.lifetime import Delivered
from trio_chat.domain.models import EventType

# 2: same records as 1; a schema 1 store is checked and repaired once (see shelf.py).
# 3: the client_ids table; sessions, messages and comments gain optional fields.
# 4: the rooms table; events gain optional fields.
# 5: the scheduled table; messages gain scheduled_at.
# 6: the files table; messages gain files.
SCHEMA_VERSION = 6

_converter = cattrs.Converter(omit_if_default=True)


# Sets are stored as sorted lists: plain data, and stable from one write to the next.
def _is_frozenset(cls: Any) -> bool:
    return cls is frozenset or get_origin(cls) is frozenset


_converter.register_unstructure_hook_func(_is_frozenset, sorted)
# A StrEnum is a str, so cattrs would store the member itself (a pickled class): store its value.
_converter.register_unstructure_hook(EventType, lambda member: member.value)


# A delivery record holds up to ~256 (position, when) pairs and travels with every message its
# author sends (the author's state changes): cattrs' generic structuring of the pairs took
# half of the 96 µs a process sharing a Redis store spent decoding another's sent message.
def _structure_delivered(raw: Any, _: type) -> Delivered:
    return Delivered(raw.get("gone", 0), tuple((p, at) for p, at in raw.get("steps", ())))


def _unstructure_delivered(record: Delivered) -> dict[str, Any]:
    raw: dict[str, Any] = {}  # as cattrs made it: defaults left out, steps a list of pairs
    if record.gone:
        raw["gone"] = record.gone
    if record.steps:
        raw["steps"] = list(record.steps)
    return raw


_converter.register_structure_hook(Delivered, _structure_delivered)
_converter.register_unstructure_hook(Delivered, _unstructure_delivered)

T = TypeVar("T")


def dump(record: object) -> Any:
    return _converter.unstructure(record)


def load(raw: Any, cls: type[T]) -> T:
    return _converter.structure(raw, cls)


__all__ = ["SCHEMA_VERSION", "dump", "load"]
