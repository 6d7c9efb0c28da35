"""``python -m bench.profile``: where the server's CPU goes per ``POST /send`` (py-spy).

It runs the send scenario's load (64 keep-alive connections, marked bodies, rate limit off)
against one server, attaches ``py-spy record`` for the measured window and sorts every sample
into one step of a request by the innermost frame that names one (see ``STEPS``). Each step's
share of the samples times the server CPU per request the load generator measured over the
same window is that step's budget in µs per request.

    .venv/bin/python -m bench.profile                      # trio-chat as it ships (log level info)
    .venv/bin/python -m bench.profile --log-level warning  # without the access log line
    .venv/bin/python -m bench.profile --reference          # the reference server
    .venv/bin/python -m bench.profile --out bench/results/profile/send-info.json

py-spy must be installed (``.venv/bin/pip install py-spy``) and may need root to attach. It
samples without stopping the server (``--nonblocking``), on the load generator's CPU, and counts
only threads that are running (idle threads are left out), so the samples follow CPU time.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from bench import machine
from bench.procstat import raise_nofile_limit, thread_cpu_seconds
from bench.scenarios import NO_RATE_LIMIT, SEND_TEXT
from bench.servers import (
    LOAD_CPU,
    PYTHON,
    REPO,
    ServerProcess,
    pinned,
    register_users,
    run_loadgen,
    start_reference,
    start_trio_chat,
)


def _any(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(patterns))


# (step, pattern on one frame "function (file:line)"). A sample belongs to the step of its
# innermost frame that matches any pattern; the order below only breaks ties within a frame.
STEPS: Final[list[tuple[str, re.Pattern[str]]]] = [
    # The access log line: formatting it in the request, and the thread that writes it.
    ("log", _any(r"\(logging/", r"\(trio_chat/logs", r"\._log \(trio_chat/http/connection")),
    # The store: the commit path's hand-off, the writer thread (SQLite, fsync), the cache.
    (
        "store",
        _any(
            r"\(trio_chat/storage/",
            r"^(Core\.)?commit \(trio_chat/service/core",
            r"\(sqlite3/",
            r"_work \(trio/_core/_thread_cache",
        ),
    ),
    # Building the answer: the views, the JSON encoding, the rate-limit headers.
    (
        "encode",
        _any(
            r"\(trio_chat/api/views",
            r"dump_json ",
            r"^(Response\.)?json \(trio_chat/http/messages",
            r"_message \(trio_chat/api/handlers",
            r"_rate_headers ",
        ),
    ),
    # Decoding the body into a SendRequest (orjson + cattrs) and checking it.
    ("decode", _any(r"\(trio_chat/api/schemas", r"\(cattrs/", r"check_client_id ")),
    (
        "auth",
        _any(
            r"authenticate ",
            r"bearer_token ",
            r"\(trio_chat/service/accounts",
            r"\(trio_chat/domain/accounts",
        ),
    ),
    ("route", _any(r"\(trio_chat/http/routing")),
    # Receiving and parsing the request: socket reads, h11's parser, the Request object.
    (
        "parse",
        _any(
            r"_read_head ",
            r"_read_body ",
            r"_next_event ",
            r"_receive ",
            r"receive_some ",
            r"\(trio_chat/http/messages",
        ),
    ),
    # Writing the answer: h11's writer, the response head, the socket write.
    (
        "write",
        _any(
            r"_send ",
            r"_send_bytes ",
            r"_head ",
            r"_body ",
            r"_respond ",
            r"send_all ",
            r"_whole_answer ",
            r"_plain_answer ",
            r"_answer_sent ",
            r"_send_chunk ",
            r"send_now \(trio_chat/http/connection",
            r"_framed ",
        ),
    ),
    # The chat itself: posting the message, state, the hub that publishes it.
    (
        "domain",
        _any(r"\(trio_chat/service/", r"\(trio_chat/domain/", r"send \(trio_chat/api/handlers"),
    ),
    # The rest of the connection loop (ours, or the reference's).
    # (Not the reference's module frame, which is under every one of its samples.)
    ("connection", _any(r"\(trio_chat/http/", r"handle \(bench/reference_server")),
]
OTHER: Final = "event loop"  # no frame of ours: Trio's scheduler, epoll, task switches


def classify(stack: list[str]) -> str:
    """The step of one sample; ``stack`` is outermost first, as py-spy writes it."""
    for frame in reversed(stack):
        for step, pattern in STEPS:
            if pattern.search(frame):
                return step
    return OTHER


# A thread whose innermost frame is one of these is waiting, not working: py-spy cannot always
# tell (it counts a thread blocked on a lock as active), so such samples are left out.
WAITING: Final = _any(
    r"^EpollIOManager\.get_events \(trio/",  # the event loop, waiting for I/O
    r"^LogWriter\._run \(trio_chat/logs",  # the log writer thread, waiting for a record
    r"^WorkerThread\._work \(trio/",  # a worker thread, waiting for a job
    r"^Condition\.wait \(threading",
)
THREAD: Final = re.compile(r"^thread \((\d+)\)")


def _sample(line: str) -> tuple[int | None, list[str], int]:
    """(thread id, frames outermost first, count) of one line of py-spy's raw output."""
    stack, _, count = line.rpartition(" ")
    parts = stack.split(";")
    tid = None
    if parts and (match := THREAD.match(parts[0])):
        tid = int(match[1])
    frames = [f for f in parts if f and not f.startswith(("process ", "thread "))]
    return tid, frames, int(count)


def budget(
    collapsed: str, thread_cpu: dict[int, float], cpu_us_per_request: float
) -> dict[str, Any]:
    """µs per request of each step, and the hottest frames.

    py-spy's samples say *what* each thread was doing; how much CPU each thread used comes
    from the kernel (``thread_cpu``: seconds per thread id over the same window). A thread's
    CPU is shared out over its working samples; the whole is scaled to ``cpu_us_per_request``
    (the load generator's measurement over its window)."""
    per_thread: dict[int | None, Counter[tuple[str, str]]] = {}
    waiting: Counter[int | None] = Counter()
    total_samples = 0
    for line in collapsed.splitlines():
        if not line.strip():
            continue
        tid, frames, count = _sample(line)
        total_samples += count
        if frames and WAITING.search(frames[-1]):
            waiting[tid] += count
            continue
        leaf = re.sub(r":\d+\)$", ")", frames[-1]) if frames else "?"
        per_thread.setdefault(tid, Counter())[(classify(frames), leaf)] += count
    cpu_total = sum(thread_cpu.values()) or 1.0
    steps: defaultdict[str, float] = defaultdict(float)
    leaves: defaultdict[str, float] = defaultdict(float)
    unsampled = 0.0  # CPU of threads py-spy caught only waiting (or not at all)
    for tid, cpu in thread_cpu.items():
        counts = per_thread.get(tid)
        weight = cpu / cpu_total
        if not counts:
            unsampled += weight
            continue
        n = sum(counts.values())
        for (step, leaf), k in counts.items():
            steps[step] += weight * k / n
            leaves[leaf] += weight * k / n
    if unsampled:
        steps["unsampled threads"] += unsampled

    def shares(found: dict[str, float], limit: int | None = None) -> dict[str, dict[str, float]]:
        ranked = sorted(found.items(), key=lambda item: -item[1])[:limit]
        return {name: {"share": share, "us": share * cpu_us_per_request} for name, share in ranked}

    return {
        "samples": total_samples,
        "waiting_samples": sum(waiting.values()),
        "cpu_us_per_request": cpu_us_per_request,
        "thread_cpu_share": {str(t): c / cpu_total for t, c in thread_cpu.items()},
        "steps": shares(steps),
        "hottest_frames": shares(leaves, 25),
    }


@contextlib.contextmanager
def _server(
    reference: bool, log_level: str | None, users: int, streams: int | None = None
) -> Iterator[tuple[ServerProcess, list[str]]]:
    with contextlib.ExitStack() as stack:
        if reference:
            yield stack.enter_context(start_reference(pin=True)), ["unused"]
            return
        data = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-profile-")))
        options = [*NO_RATE_LIMIT] + ([] if log_level is None else ["--log-level", log_level])
        if streams is not None:
            options += ["--max-connections", str(streams + 100)]
        server = stack.enter_context(start_trio_chat(data / "data", *options, pin=True))
        tokens = register_users(server.wait_port(), [f"p{i}" for i in range(users)])
        yield server, tokens


def _record(pid: int, seconds: float, rate: int, out: Path) -> dict[int, float]:
    """py-spy on ``pid`` for ``seconds`` (collapsed stacks to ``out``); each thread's CPU
    seconds over the same time, from the kernel."""
    py_spy = shutil.which("py-spy") or str(Path(PYTHON).with_name("py-spy"))
    argv = [py_spy, "record", "--pid", str(pid), "--rate", str(rate)]
    argv += ["--duration", str(round(seconds)), "--format", "raw", "--threads"]
    before = thread_cpu_seconds(pid)
    done = subprocess.run(
        pinned(LOAD_CPU, [*argv, "--output", str(out)], pin=True),
        capture_output=True,
        text=True,
        check=False,
    )
    after = thread_cpu_seconds(pid)
    if done.returncode != 0 or not out.exists():
        raise SystemExit(f"py-spy failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    return {t: after[t] - before.get(t, 0.0) for t in after}


def profile_send(
    server: ServerProcess,
    tokens_path: Path,
    *,
    marked: bool,
    connections: int,
    seconds: float,
    rate: int,
    raw: Path,
) -> tuple[dict[int, float], dict[str, Any], float]:
    """The send load; py-spy over the measured window. Thread CPU, the load generator's
    result and the server CPU per request."""
    warmup = 2.0
    spy: dict[str, Any] = {}

    def run_spy() -> None:
        threading.Event().wait(warmup)
        spy["threads"] = _record(server.pid, seconds, rate, raw)

    thread = threading.Thread(target=run_spy)
    thread.start()
    args = ["http", "--connections", str(connections), "--warmup", str(warmup)]
    args += ["--duration", str(seconds), "--body", json.dumps({"text": SEND_TEXT})]
    args += ["--expect-status", "201", *(["--mark", "profile"] if marked else [])]
    out = run_loadgen(
        server.wait_port(),
        args,
        server_pid=server.pid,
        tokens_file=tokens_path,
        pin=True,
        timeout=seconds + 120,
    )
    thread.join()
    if "threads" not in spy:
        raise SystemExit("py-spy did not run")
    return spy["threads"], out, float(out["server_cpu_us_per_request"])


def profile_fanout(
    server: ServerProcess,
    tokens_path: Path,
    sender: str,
    *,
    streams: int,
    seconds: float,
    interval: float,
    rate: int,
    raw: Path,
) -> tuple[dict[int, float], dict[str, Any], float]:
    """The fan-out load; py-spy while the messages go out. Thread CPU, the load
    generator's result and the server CPU per delivered event."""
    messages = round(seconds / interval) + 3
    argv = [PYTHON, "-m", "bench.loadgen", "--port", str(server.wait_port())]
    argv += ["--server-pid", str(server.pid), "--tokens", str(tokens_path), "fanout"]
    argv += ["--streams", str(streams), "--messages", str(messages)]
    argv += ["--interval", str(interval), f"--sender-token={sender}"]
    load = subprocess.Popen(
        pinned(LOAD_CPU, argv, pin=True),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=raise_nofile_limit,
    )
    assert load.stderr is not None
    for line in load.stderr:
        if line.startswith("sending to"):
            break
    threads = _record(server.pid, seconds, rate, raw)
    stdout, stderr = load.communicate(timeout=seconds + 300)
    if load.returncode != 0:
        raise SystemExit(f"load generator failed: {stderr[-800:]}")
    out: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    events = streams * seconds / interval  # delivered while py-spy recorded
    return threads, out, sum(threads.values()) / events * 1e6


def profile(
    *,
    reference: bool,
    log_level: str | None,
    connections: int,
    seconds: float,
    rate: int,
    keep_stacks: Path | None = None,
    fanout: int | None = None,
    interval: float = 1.0,
) -> dict[str, Any]:
    users = connections if fanout is None else 51
    with (
        _server(reference, log_level, users, fanout) as (server, tokens),
        tempfile.TemporaryDirectory() as tmp,
    ):
        tokens_path = Path(tmp) / "tokens.json"
        raw = Path(tmp) / "stacks.txt"
        if fanout is None:
            tokens_path.write_text(json.dumps(tokens))
            threads, out, cpu_us = profile_send(
                server,
                tokens_path,
                marked=not reference,
                connections=connections,
                seconds=seconds,
                rate=rate,
                raw=raw,
            )
            unit = "request"
        else:
            *streams_tokens, sender = tokens if not reference else ["unused", "unused"]
            tokens_path.write_text(json.dumps(streams_tokens))
            threads, out, cpu_us = profile_fanout(
                server,
                tokens_path,
                sender,
                streams=fanout,
                seconds=seconds,
                interval=interval,
                rate=rate,
                raw=raw,
            )
            unit = "event"
        collapsed = raw.read_text()
    if keep_stacks is not None:
        keep_stacks.parent.mkdir(parents=True, exist_ok=True)
        if keep_stacks.suffix == ".gz":
            keep_stacks.write_bytes(gzip.compress(collapsed.encode(), 9, mtime=0))
        else:
            keep_stacks.write_text(collapsed)
    result = budget(collapsed, threads, cpu_us)
    name = "reference" if reference else f"trio-chat, log level {log_level or 'info (default)'}"
    result.update(
        {
            "server": name,
            "load": f"send, {connections} connections"
            if fanout is None
            else f"fan-out, {fanout:,} streams, a message every {interval:g} s",
            "unit": unit,
            "requests_per_s": out.get("requests_per_s"),
            "fanout_p99_ms": out["latency"]["p99_ms"] if fanout is not None else None,
            "errors": out["errors"],
            "other_cpu_pct": out["other_cpu_pct"],
            "loadgen_cpu_pct": out["loadgen_cpu_pct"],
            "seconds": seconds,
            "rate_hz": rate,
            "machine": machine.current().__dict__,
        }
    )
    return result


def format_budget(result: dict[str, Any]) -> str:
    unit = result["unit"]
    rate = (
        f"{result['requests_per_s']:,.0f} req/s"
        if unit == "request"
        else f"p99 {result['fanout_p99_ms']:.0f} ms"
    )
    lines = [
        f"{result['server']}, {result['load']}: {rate}, "
        f"{result['cpu_us_per_request']:.1f} µs of server CPU per {unit}, "
        f"{result['samples']:,} samples ({result['waiting_samples']:,} waiting); "
        f"other processes {result['other_cpu_pct']:.0f}% of a core",
        "",
        f"{'step':<18} {'share':>6} {'µs/' + unit:>10}",
    ]
    for step, v in result["steps"].items():
        lines.append(f"{step:<18} {100 * v['share']:>5.1f}% {v['us']:>10.1f}")
    lines += ["", "hottest frames (innermost):"]
    for frame, v in list(result["hottest_frames"].items())[:15]:
        lines.append(f"  {100 * v['share']:>5.1f}% {v['us']:>6.1f} µs  {frame}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--reference", action="store_true", help="profile the reference server")
    parser.add_argument("--log-level", help="trio-chat's --log-level (default: as it ships, info)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--fanout",
        type=int,
        metavar="STREAMS",
        help="profile fan-out to this many /events streams instead (µs per delivered event)",
    )
    parser.add_argument("--interval", type=float, default=1.0, help="fan-out: between messages")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=500, help="py-spy samples per second")
    parser.add_argument("--out", type=Path, help="write the budget as JSON here")
    parser.add_argument(
        "--stacks",
        type=Path,
        help="keep py-spy's collapsed stacks here (flamegraph input; gzipped if it ends in .gz)",
    )
    args = parser.parse_args(argv)
    result = profile(
        reference=args.reference,
        log_level=args.log_level,
        connections=args.connections,
        seconds=args.seconds,
        rate=args.rate,
        keep_stacks=args.stacks,
        fanout=args.fanout,
        interval=args.interval,
    )
    print(format_budget(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwritten to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
