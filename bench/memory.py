"""``python -m bench.memory``: what an idle ``GET /events`` stream holds in trio-chat's memory.

Starts trio-chat (as it ships) under ``tracemalloc``, registers 10 users, opens and closes 10
streams (to warm the code), takes a snapshot, opens N more streams, waits, takes another, and
prints per stream: the Python heap growth by allocating line, and the objects the garbage
collector tracks, by type (coroutines by name: each is one frame of an awaiting task).

    .venv/bin/python -m bench.memory --streams 2000

The numbers are Python's own (``tracemalloc``, ``sys.getsizeof``); ``python -m bench --only
idle`` measures the RSS, which they should roughly add up to. Tracing slows the server; it
is a tool for finding where the memory goes, not for measuring how much.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import trio

from bench.loadgen import open_streams
from bench.procstat import rss_kib
from bench.scenarios import NO_RATE_LIMIT
from bench.servers import PYTHON, BenchError, ServerProcess, register_users

SNAPSHOT_SIGNAL = signal.SIGUSR1


def _inventory() -> tuple[collections.Counter[str], collections.Counter[str]]:
    """Count and size of the GC-tracked objects by type. Tuples are left out: tracemalloc's
    own snapshot is made of them."""
    count: collections.Counter[str] = collections.Counter()
    size: collections.Counter[str] = collections.Counter()
    for obj in gc.get_objects():
        kind = type(obj)
        if kind is tuple:
            continue
        name = f"{kind.__module__}.{kind.__qualname__}"
        if kind.__name__ == "coroutine":
            name = f"coroutine {obj.__qualname__}"
        count[name] += 1
        size[name] += sys.getsizeof(obj)
    return count, size


def _serve(out: Path, argv: list[str]) -> None:
    """The server side: trio-chat's own ``serve``, with a snapshot on each SIGUSR1."""
    from trio_chat import cli

    snapshots: list[tuple[tracemalloc.Snapshot, Any]] = []

    def snapshot(signum: int, frame: object) -> None:
        gc.collect()
        snapshots.append((tracemalloc.take_snapshot(), _inventory()))
        if len(snapshots) == 2:
            (before, (c0, s0)), (after, (c1, s1)) = snapshots
            lines = after.compare_to(before, "lineno")
            report = {
                "heap_bytes": sum(s.size_diff for s in lines),
                "by_line": [[str(s.traceback), s.size_diff, s.count_diff] for s in lines[:30]],
                "objects": [[name, (s1 - s0)[name], (c1 - c0)[name]] for name in (s1 - s0)],
            }
            out.write_text(json.dumps(report))

    tracemalloc.start(1)
    signal.signal(SNAPSHOT_SIGNAL, snapshot)
    args = cli.build_parser().parse_args(argv)
    config = cli.config_from(args, dict(os.environ))
    listener = cli.setup_logging(config.log_level)
    try:
        trio.run(cli.serve, config)
    finally:
        listener.stop()


def measure(streams: int) -> dict[str, Any]:

    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        out = Path(tmp) / "report.json"
        argv = [PYTHON, "-m", "bench.memory", "--serve", str(out), "serve", "--host", "127.0.0.1"]
        argv += ["--port", "0", "--data-dir", str(Path(tmp) / "data"), *NO_RATE_LIMIT]
        with ServerProcess("trio-chat under tracemalloc", argv, pin=True) as server:
            port = server.wait_port()
            tokens = register_users(port, [f"m{i}" for i in range(10)])

            async def run() -> tuple[int, int]:
                warm, _ = await open_streams("127.0.0.1", port, tokens, 10)
                for stream in warm:
                    stream.conn.close()
                await trio.sleep(1)
                rss_before = rss_kib(server.pid)
                os.kill(server.pid, SNAPSHOT_SIGNAL)
                await trio.sleep(2)
                opened, errors = await open_streams("127.0.0.1", port, tokens, streams)
                if errors or len(opened) != streams:
                    raise BenchError(f"opened {len(opened)} of {streams} streams: {errors}")
                await trio.sleep(2)
                rss_after = rss_kib(server.pid)
                os.kill(server.pid, SNAPSHOT_SIGNAL)
                deadline = time.monotonic() + 60
                while not out.exists() and time.monotonic() < deadline:
                    await trio.sleep(0.2)
                for stream in opened:
                    stream.conn.close()
                return rss_before, rss_after

            rss_before, rss_after = trio.run(run)
        if not out.exists():
            raise BenchError("the server wrote no snapshot report")
        report: dict[str, Any] = json.loads(out.read_text())
    report["streams"] = streams
    report["rss_per_stream_bytes"] = (rss_after - rss_before) * 1024 / streams
    return report


def format_report(report: dict[str, Any]) -> str:
    n = report["streams"]
    lines = [
        f"{n:,} idle streams; per stream: RSS {report['rss_per_stream_bytes']:,.0f} B "
        f"(traced: slower and larger than in production), Python heap "
        f"{report['heap_bytes'] / n:,.0f} B",
        "",
        "heap growth per stream by allocating line:",
    ]
    for where, size, count in report["by_line"][:20]:
        lines.append(f"  {size / n:7.0f} B  {count / n:5.2f} blocks  {where}")
    objects = sorted(report["objects"], key=lambda o: -o[1])
    total = sum(o[1] for o in objects)
    lines += ["", f"GC-tracked objects per stream (sys.getsizeof, {total / n:,.0f} B in all):"]
    for name, size, count in objects[:30]:
        lines.append(f"  {size / n:7.0f} B  {count / n:5.2f}  {name}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve"]:
        _serve(Path(argv[1]), argv[2:])
        return
    parser = argparse.ArgumentParser(
        prog="python -m bench.memory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--out", type=Path, help="write the report as JSON here")
    args = parser.parse_args(argv)
    report = measure(args.streams)
    print(format_report(report))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
