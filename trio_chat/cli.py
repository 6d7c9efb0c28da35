"""``trio-chat serve``: the command line, environment variables and logging."""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import re
import resource
import signal
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import trio

from trio_chat.app import ChatServer
from trio_chat.config import Config, duration_seconds
from trio_chat.logs import LogWriter, setup_logging
from trio_chat.storage.shelf import StoreError

ENV_PREFIX = "TRIO_CHAT_"


def parse_duration(text: str) -> float:
    """``3600``, ``2.5``, ``90s``, ``15m``, ``4h``, ``1d`` -> seconds."""
    try:
        return duration_seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_SIZE = re.compile(r"(\d+)\s*(|b|kib|mib|gib)")
_SIZE_UNITS = {"": 1, "b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3}


def parse_size(text: str) -> int:
    """``65536``, ``64KiB``, ``5MiB`` -> bytes."""
    match = _SIZE.fullmatch(text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"invalid size {text!r}: use bytes (65536) or a number with KiB, MiB or GiB"
        )
    return int(match.group(1)) * _SIZE_UNITS[match.group(2)]


def _size(value: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if value >= size and value % size == 0:
            return f"{value // size}{unit}"
    return str(value)


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _port(text: str) -> int:
    value = _non_negative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a port: {text}")
    return value


def _store_url(text: str) -> str | None:
    if text in ("", "embedded"):
        return None
    if not text.startswith("redis://"):
        raise argparse.ArgumentTypeError(
            f"invalid store {text!r}: use 'embedded' or redis://host:port/db"
        )
    return text


def _flag(text: str) -> bool:
    """An on/off option's environment value."""
    if text.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if text.strip().lower() in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"invalid switch {text!r}: use 1 or 0")


def _seconds(value: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if value >= size and value % size == 0:
            return f"{value / size:g}{unit}"
    return f"{value:g}s"


LOG_LEVELS = ("debug", "info", "warning", "error")

# flag -> (Config field, parser, help). Defaults come from Config itself.
OPTIONS: list[tuple[str, str, Callable[[str], Any], str]] = [
    ("--host", "host", str, "address to listen on"),
    ("--port", "port", _port, "port to listen on; 0 picks a free one (logged)"),
    ("--data-dir", "data_dir", Path, "where state is kept (files too, with --store redis)"),
    (
        "--store",
        "store",
        _store_url,
        "'embedded' (SQLite in --data-dir) or redis://host:port/db to share state with other "
        "server processes (they must share --data-dir too, for files)",
    ),
    (
        "--allow-unsafe-store",
        "allow_unsafe_store",
        _flag,
        "start on a Redis that does not fsync every write (acknowledged data may be lost)",
    ),
    (
        "--public-url",
        "public_url",
        str,
        "the server's address as clients reach it, for room links (default: where it listens)",
    ),
    (
        "--history-size",
        "history_size",
        _non_negative_int,
        "common-chat messages in /connect history",
    ),
    (
        "--rate-limit-count",
        "rate_limit_count",
        _non_negative_int,
        "common-chat messages per user per period; 0 turns the limit off",
    ),
    ("--rate-limit-period", "rate_limit_period", parse_duration, "the rate-limit period"),
    ("--ban-threshold", "ban_threshold", _positive_int, "distinct reporters that ban a user"),
    ("--ban-duration", "ban_duration", parse_duration, "how long a ban lasts"),
    (
        "--message-ttl",
        "message_ttl",
        parse_duration,
        "how long a message lives once delivered to a reader; 0 keeps messages forever",
    ),
    ("--log-level", "log_level", str, "one of " + ", ".join(LOG_LEVELS)),
    (
        "--max-connections",
        "max_connections",
        _positive_int,
        "simultaneous connections; more are answered 503",
    ),
    ("--max-body-size", "max_body_size", _positive_int, "largest JSON request body, bytes (413)"),
    ("--max-file-size", "max_file_size", parse_size, "largest file upload (413)"),
    ("--max-head-size", "max_head_size", _positive_int, "largest request head, bytes (431)"),
    (
        "--request-timeout",
        "request_timeout",
        parse_duration,
        "time to receive a whole request once started (408)",
    ),
    ("--keepalive-timeout", "keepalive_timeout", parse_duration, "idle time between requests"),
    (
        "--shutdown-timeout",
        "shutdown_timeout",
        parse_duration,
        "how long in-flight requests may run on at shutdown",
    ),
    (
        "--cache-size",
        "cache_size",
        parse_size,
        "memory for recent messages kept in front of the store",
    ),
    (
        "--login-failure-limit",
        "login_failure_limit",
        _non_negative_int,
        "failed logins per username from one address per minute before 429; 0 turns it off",
    ),
    (
        "--login-address-failure-limit",
        "login_address_failure_limit",
        _non_negative_int,
        "failed logins from one address per minute (any usernames) before 429; 0 turns it off",
    ),
]


def _env_name(flag: str) -> str:
    return ENV_PREFIX + flag.removeprefix("--").replace("-", "_").upper()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trio-chat",
        description="trio-chat: a small, durable chat server.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the server",
        description="Run the chat server. Every option can also be set with an environment "
        f"variable {ENV_PREFIX}<OPTION> (e.g. {ENV_PREFIX}PORT=9000); a flag wins over the "
        "environment. Durations take seconds (3600, 2.5) or a number with s, m, h or d.",
    )
    defaults = Config()
    for flag, field, parse, text in OPTIONS:
        default = getattr(defaults, field)
        shown = (
            _seconds(default)
            if parse is parse_duration
            else _size(default)
            if parse is parse_size
            else default
        )
        if parse is _flag:
            serve.add_argument(
                flag,
                dest=field,
                action="store_const",
                const=True,
                default=None,
                help=f"{text} (env {_env_name(flag)}=1)",
            )
            continue
        serve.add_argument(
            flag,
            dest=field,
            type=parse,
            default=None,
            metavar=field.split("_")[-1].upper(),
            help=f"{text} ({'' if default is None else f'default: {shown}; '}env "
            f"{_env_name(flag)})",
        )
    migrate = commands.add_parser(
        "migrate",
        help="copy an embedded store into Redis",
        description="Copy every record of an embedded store (a --data-dir) into an empty "
        "Redis database, for servers started with --store redis://... . Files stay where they "
        "are: point the servers' --data-dir at the same directory.",
    )
    migrate.add_argument("--from", dest="source", type=Path, required=True, metavar="DATA_DIR")
    migrate.add_argument("--to", dest="target", type=_store_url, required=True, metavar="URL")
    migrate.add_argument(
        "--allow-unsafe-store",
        action="store_true",
        help="copy into a Redis that does not fsync every write",
    )
    return parser


def config_from(args: argparse.Namespace, environ: dict[str, str]) -> Config:
    values: dict[str, Any] = {}
    for flag, field, parse, _ in OPTIONS:
        value = getattr(args, field)
        if value is None and _env_name(flag) in environ:
            try:
                value = parse(environ[_env_name(flag)])
            except (argparse.ArgumentTypeError, ValueError) as exc:
                raise SystemExit(f"trio-chat: {_env_name(flag)}: {exc}") from None
        if value is not None:
            values[field] = value
    config = attrs.evolve(Config(), **values)
    if config.log_level.lower() not in LOG_LEVELS:
        raise SystemExit(f"trio-chat: --log-level must be one of {', '.join(LOG_LEVELS)}")
    return config


def raise_open_file_limit() -> None:
    """Every connection is a file descriptor; the soft default (often 1024) is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else 1 << 20
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def serve(config: Config) -> None:
    server = ChatServer(config)
    # The receiver outlives the nursery: a signal is ours until the server has stopped.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def stop_on_signal() -> None:
                async for signum in signals:
                    name = signal.Signals(signum).name
                    logging.getLogger("trio_chat.lifecycle").info("received %s", name)
                    server.shutdown()

            async def run(task_status: trio.TaskStatus[tuple[str, int]]) -> None:
                await server.run(task_status=task_status)
                nursery.cancel_scope.cancel()  # stopped: stop watching for signals too

            nursery.start_soon(stop_on_signal)
            await nursery.start(run)
            tune_gc_for_a_long_lived_server()


def tune_gc_for_a_long_lived_server() -> None:
    """Keep the cyclic garbage collector from dominating a busy server.

    Everything loaded at start-up lives as long as the process, so it is frozen out of
    collection, and young collections run less often (reference counting frees almost all
    garbage anyway). Measured with ``python -m bench``: fan-out p99 from about 100 ms to
    about 45 ms, and half the CPU. Done here, at the edge: it is the process's business,
    not the server object's (tests run servers inside pytest's process).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "migrate":
        from trio_chat.storage.migrate import migrate

        if args.target is None:
            raise SystemExit("trio-chat migrate: --to must be a redis://host:port/db address")
        listener = setup_logging("info")
        return _run("migrate", listener, migrate, args.source, args.target, args.allow_unsafe_store)
    config = config_from(args, dict(os.environ))
    listener = setup_logging(config.log_level)
    raise_open_file_limit()
    return _run("start", listener, serve, config)


def _run(
    what: str,
    listener: LogWriter,
    fn: Callable[..., Awaitable[object]],
    *args: object,
) -> int:
    """``trio.run`` a command; 1 and one line saying why when it cannot be done."""
    status = 0
    try:
        trio.run(fn, *args)
    except* (OSError, sqlite3.Error, StoreError) as group:
        # Arrives wrapped in nurseries' ExceptionGroups, nested; say it as one sentence.
        first: BaseException = group
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        logging.getLogger("trio_chat.lifecycle").error("cannot %s: %s", what, first)
        status = 1
    finally:
        listener.stop()  # writes out what is queued
    return status
