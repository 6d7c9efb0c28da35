"""Every setting of the server in one frozen object, with its default.

Limits and timeouts live here as named values (as hypercorn's ``Config`` does), so the HTTP
layer, the service and the CLI all read the same numbers.
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs

KIB = 1024
MIB = 1024 * KIB

_DURATION = re.compile(r"(\d+(?:\.\d+)?|\.\d+)([smhd]?)")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> float:
    """``3600``, ``2.5``, ``90s``, ``15m``, ``4h``, ``1d`` -> seconds (the one duration syntax
    of the command line and the API); ValueError saying what is accepted otherwise."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(
            f"invalid duration {text!r}: use seconds (3600, 2.5) or a number with s, m, h or d"
        )
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


@attrs.frozen
class Config:
    # Where and what.
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("storage")
    log_level: str = "info"
    public_url: str | None = None  # how clients reach us (room links); default: where we listen

    # Chat behaviour.
    history_size: int = 20
    rate_limit_count: int = 20  # common-chat messages per period; 0 turns the limit off
    rate_limit_period: float = 3600.0
    ban_threshold: int = 3
    ban_duration: float = 4 * 3600.0
    # Failed logins per window -> 429: per username from one address, and per address.
    login_failure_limit: int = 5
    login_address_failure_limit: int = 30
    login_failure_window: float = 60.0
    login_throttle_memory: int = 4 * MIB  # bounds the failure counts an attacker can make us keep
    # A delivered message lives this long for each reader (for its author, from sending);
    # once expired for everyone it concerned, it leaves the disk. 0 keeps messages forever.
    message_ttl: float = 3600.0

    # HTTP limits.
    max_head_size: int = 16 * KIB
    max_body_size: int = 64 * KIB  # JSON bodies
    max_file_size: int = 5 * MIB  # uploads (POST /files), streamed to disk
    max_connections: int = 10_000
    request_timeout: float = 10.0  # to receive one whole request once it has started
    keepalive_timeout: float = 75.0  # idle time allowed between requests
    shutdown_timeout: float = 10.0  # in-flight requests get this long at shutdown

    # Live delivery.
    longpoll_max_timeout: float = 60.0
    longpoll_default_timeout: float = 30.0
    sse_keepalive_interval: float = 10.0  # the contract asks for one at least every 15 s
    stream_buffer_events: int = 1024  # per stream; a consumer further behind is cut off
    # A stream not written to for this long is cut off; keep-alive ticks (every
    # sse_keepalive_interval, which must be shorter) write to every healthy stream.
    stream_send_timeout: float = 30.0

    # Storage: None keeps it in data_dir (SQLite); "redis://host:port/db" shares it with other
    # processes (files still go to data_dir, which they must then share too).
    store: str | None = None
    allow_unsafe_store: bool = False  # start on a Redis that does not fsync every write
    read_flush_interval: float = 1.0  # how often delivered-read positions are persisted
    # Recent events (and the chat index) kept in memory in front of the store, in bytes.
    cache_size: int = 32 * MIB

    # Password hashing (scrypt). Tests may lower the cost; the default is the stdlib's
    # recommendation for interactive logins.
    scrypt_n: int = 2**14
