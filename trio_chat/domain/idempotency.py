"""Idempotent writes: a ``client_id`` names one request of one user for a day.

A retry with the same ``client_id`` and the same body gets what the first one made; the same
``client_id`` with another body is a conflict. What a key made is stored in the same
transaction as what it made, so a crash between the write and the answer changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import attrs

CLIENT_ID_MAX = 64
KEPT_MS = 24 * 3600 * 1000


@attrs.frozen
class ClientRequest:
    kind: str  # "message", "comment" or "scheduled"
    cursor: int  # of the event that holds what it made (0 for a scheduled message)
    digest: str  # of the request's body
    at: int  # when
    ref: str | None = None  # the scheduled message's id


def client_key(user: str, client_id: str) -> str:
    return f"{user}/{client_id}"


def client_id_problem(client_id: str) -> str | None:
    if not 1 <= len(client_id) <= CLIENT_ID_MAX or not client_id.isprintable():
        return f"client_id must be 1 to {CLIENT_ID_MAX} printable characters"
    return None


def digest(kind: str, body: dict[str, Any]) -> str:
    """A fingerprint of a request's body (key order and spacing do not matter)."""
    canonical = json.dumps([kind, body], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def still_kept(made: ClientRequest, now: int) -> bool:
    return now - made.at < KEPT_MS
