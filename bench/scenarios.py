"""The benchmark scenarios: each starts its servers, drives them and returns its rows.

A scenario never raises for a server that is missing or broken: it records the reason in
``ScenarioResult.errors`` (shown under the table) and measures whatever it still can, so the
reference half of a comparison is reported even while trio-chat does not start.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bench.procstat import rss_kib, status_kib
from bench.report import Row, ScenarioResult, at_most, exactly_zero
from bench.servers import (
    PYTHON,
    REPO,
    BenchError,
    ServerProcess,
    call,
    login,
    register_users,
    run_loadgen,
    start_reference,
    start_trio_chat,
    time_requests,
    wait_healthy,
)

RESULTS: Final = REPO / "bench" / "results"
CACHE: Final = RESULTS / "cache"
SEND_TEXT: Final = "Hello from the benchmark: a chat message of an ordinary length."


@dataclass
class Settings:
    """Sizes and durations of every scenario; ``quick()`` shrinks them for a smoke run."""

    pin: bool = True
    quick: bool = False
    send_connections: int = 64
    send_warmup: float = 1.0
    send_duration: float = 4.0
    send_rounds: int = 3
    fanout_users: int = 50
    fanout_streams: int = 1000
    fanout_messages: int = 100
    fanout_interval: float = 0.1
    idle_users: int = 50
    idle_streams: int = 10_000
    cold_small: int = 1_000
    cold_big: int = 1_000_000
    cold_users: int = 10
    connect_samples: int = 30

    @classmethod
    def quick_run(cls, *, pin: bool) -> Settings:
        return cls(
            pin=pin,
            quick=True,
            send_connections=16,
            send_warmup=0.3,
            send_duration=1.0,
            send_rounds=1,
            fanout_users=4,
            fanout_streams=100,
            fanout_messages=10,
            idle_users=4,
            idle_streams=500,
            cold_big=10_000,
            connect_samples=10,
        )


@contextlib.contextmanager
def _tokens_file(tokens: Sequence[str]) -> Iterator[Path]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="bench-tokens-") as f:
        json.dump(list(tokens), f)
        f.flush()
        yield Path(f.name)


@contextlib.contextmanager
def _data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="trio-chat-bench-") as tmp:
        yield Path(tmp) / "data"


def _ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or not reference:
        return None
    return value / reference


def _attempt(result: ScenarioResult, label: str, fn: Callable[[], Any]) -> Any:
    """Run one half of a scenario; a BenchError becomes a recorded error and None."""
    try:
        return fn()
    except BenchError as exc:
        result.errors.append(f"{label}: {exc}")
        return None


def _progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- 1. send


def send(s: Settings) -> ScenarioResult:
    result = ScenarioResult("send", f"POST /send on {s.send_connections} keep-alive connections")
    args = [
        "http",
        "--connections",
        str(s.send_connections),
        "--warmup",
        str(s.send_warmup),
        "--duration",
        str(s.send_duration),
        "--method",
        "POST",
        "--path",
        "/send",
        "--body",
        json.dumps({"text": SEND_TEXT}),
        "--expect-status",
        "201",
    ]
    timeout = s.send_warmup + s.send_duration + 60
    # Both servers stay up (idle one costs nothing) and the rounds alternate between them, so
    # that a slow patch of the machine hits both; each side reports its median round.
    runs: dict[str, list[dict[str, Any]]] = {"reference": [], "trio-chat": []}
    exit_status: int | None = None
    with contextlib.ExitStack() as stack:
        targets: dict[str, tuple[ServerProcess, Path]] = {}

        def reference() -> None:
            server = stack.enter_context(start_reference(pin=s.pin))
            targets["reference"] = (server, stack.enter_context(_tokens_file(["unused"])))

        def trio_chat() -> None:
            server = stack.enter_context(
                start_trio_chat(stack.enter_context(_data_dir()), pin=s.pin)
            )
            names = [f"send{i}" for i in range(s.send_connections)]
            tokens = register_users(server.wait_port(), names)
            targets["trio-chat"] = (server, stack.enter_context(_tokens_file(tokens)))

        _attempt(result, "reference", reference)
        _attempt(result, "trio-chat", trio_chat)
        for round_no in range(1, s.send_rounds + 1):
            for label, (server, tokens_path) in list(targets.items()):
                out = _attempt(
                    result,
                    label,
                    functools.partial(
                        run_loadgen,
                        server.wait_port(),
                        args,
                        server_pid=server.pid,
                        tokens_file=tokens_path,
                        pin=s.pin,
                        timeout=timeout,
                    ),
                )
                if out is None:
                    del targets[label]
                    continue
                runs[label].append(out)
                _progress(f"round {round_no} {label}: {out['requests_per_s']:,.0f} req/s")
        if "trio-chat" in targets:
            exit_status = targets["trio-chat"][0].stop()

    def median_run(label: str) -> dict[str, Any] | None:
        by_rps = sorted(runs[label], key=lambda r: float(r["requests_per_s"]))
        return by_rps[len(by_rps) // 2] if by_rps else None

    ref, chat = median_run("reference"), median_run("trio-chat")
    result.details = {
        "reference": ref,
        "trio_chat": chat,
        "rounds_requests_per_s": {k: [r["requests_per_s"] for r in v] for k, v in runs.items()},
        "trio_chat_exit_status": exit_status,
    }

    ref_rps = ref["requests_per_s"] if ref else None
    chat_rps = chat["requests_per_s"] if chat else None
    result.info("reference throughput", ref_rps, "req/s")
    ratio = _ratio(chat_rps, ref_rps)
    result.add(
        Row(
            "trio-chat throughput",
            chat_rps,
            "req/s",
            target="≥ 0.5x reference",
            ok=None if ratio is None else ratio >= 0.5,
            ratio=ratio,
        )
    )
    ref_cpu = ref["server_cpu_us_per_request"] if ref else None
    chat_cpu = chat["server_cpu_us_per_request"] if chat else None
    result.info("reference server CPU", ref_cpu, "µs/req")
    result.info("trio-chat server CPU", chat_cpu, "µs/req", _ratio(chat_cpu, ref_cpu))
    for pct in ("p50", "p99"):
        ref_lat = ref["latency"][f"{pct}_ms"] if ref else None
        chat_lat = chat["latency"][f"{pct}_ms"] if chat else None
        result.info(f"trio-chat latency {pct}", chat_lat, "ms", _ratio(chat_lat, ref_lat))
    if chat:
        errors = sum(chat["errors"].values())
        result.add(exactly_zero("trio-chat errors (non-201 or I/O)", errors))
        result.info("trio-chat RSS after run", chat["server_rss_kib"] / 1024, "MiB")
    _load_rows(result, [r for v in runs.values() for r in v], "load generator CPU (max)")
    return result


def _load_rows(result: ScenarioResult, runs: Sequence[dict[str, Any]], label: str) -> None:
    """How busy the load process and everything else on the machine were (noise check)."""
    if runs:
        result.info(label, max(r["loadgen_cpu_pct"] for r in runs), "% of a core")
        other = max(r["other_cpu_pct"] for r in runs)
        result.info("other processes' CPU (max)", other, "% of a core")
        interrupts = max(r["interrupts_cpu_pct"] for r in runs)
        result.info("kernel interrupts/softirq (max)", interrupts, "% of a core")
        if other > 10:
            busiest = max(runs, key=lambda r: float(r["other_cpu_pct"]))
            elapsed = busiest.get("duration_s") or busiest.get("window_s") or 1.0
            names = ", ".join(
                f"{n} {100 * s / elapsed:.0f}%" for n, s in busiest["other_top"].items()
            )
            result.notes.append(
                f"other processes used up to {other:.0f}% of a core during the measured "
                f"windows ({names}); these numbers are noisy"
            )


# --------------------------------------------------------------------------- 2. fan-out


def fanout(s: Settings) -> ScenarioResult:
    result = ScenarioResult(
        "fanout",
        f"1 sender, {s.fanout_streams} GET /events streams, {s.fanout_messages} messages "
        f"every {s.fanout_interval * 1000:g} ms",
    )
    args = [
        "fanout",
        "--streams",
        str(s.fanout_streams),
        "--messages",
        str(s.fanout_messages),
        "--interval",
        str(s.fanout_interval),
    ]
    timeout = s.fanout_messages * s.fanout_interval + 120

    def reference() -> dict[str, Any]:
        with start_reference(pin=s.pin) as server, _tokens_file(["unused"]) as tokens:
            return run_loadgen(
                server.wait_port(),
                [*args, "--sender-token", "unused"],
                server_pid=server.pid,
                tokens_file=tokens,
                pin=s.pin,
                timeout=timeout,
            )

    def trio_chat() -> dict[str, Any]:
        with _data_dir() as data, start_trio_chat(data, pin=s.pin) as server:
            port = server.wait_port()
            names = [f"fan{i}" for i in range(s.fanout_users)]
            *tokens, sender = register_users(port, [*names, "fan-sender"])
            with _tokens_file(tokens) as tokens_path:
                out = run_loadgen(
                    port,
                    [*args, "--sender-token", sender],
                    server_pid=server.pid,
                    tokens_file=tokens_path,
                    pin=s.pin,
                    timeout=timeout,
                )
            out["exit_status"] = server.stop()
            return out

    ref = _attempt(result, "reference", reference)
    if ref:
        _progress(f"reference: p99 {ref['latency']['p99_ms']:.1f} ms")
    chat = _attempt(result, "trio-chat", trio_chat)
    if chat:
        _progress(f"trio-chat: p99 {chat['latency']['p99_ms']:.1f} ms")
    result.details = {"reference": ref, "trio_chat": chat}

    for pct in ("p50", "p99"):
        ref_lat = ref["latency"][f"{pct}_ms"] if ref else None
        chat_lat = chat["latency"][f"{pct}_ms"] if chat else None
        result.info(f"reference send→receive {pct}", ref_lat, "ms")
        if pct == "p99":
            result.add(
                at_most(
                    f"trio-chat send→receive {pct}",
                    chat_lat,
                    "ms",
                    100,
                    ratio=_ratio(chat_lat, ref_lat),
                )
            )
        else:
            result.info(f"trio-chat send→receive {pct}", chat_lat, "ms", _ratio(chat_lat, ref_lat))
    if chat:
        result.info("trio-chat POST /send p50 (sender)", chat["send_latency"]["p50_ms"], "ms")
        result.add(exactly_zero("trio-chat missing/duplicate events", sum(chat["errors"].values())))
        if chat["server_cpu_s"] is not None:
            busy = 100 * chat["server_cpu_s"] / chat["window_s"]
            result.info("trio-chat server CPU during run", busy, "% of a core")
    _load_rows(result, [r for r in (ref, chat) if r], "load process CPU (max)")
    return result


# --------------------------------------------------------------------------- 3. idle streams


def idle(s: Settings) -> ScenarioResult:
    result = ScenarioResult("idle", f"{s.idle_streams:,} open, idle GET /events streams")
    args = ["hold", "--streams", str(s.idle_streams)]
    timeout = 300.0

    def reference() -> dict[str, Any]:
        with start_reference(pin=s.pin) as server, _tokens_file(["unused"]) as tokens:
            return run_loadgen(
                server.wait_port(),
                args,
                server_pid=server.pid,
                tokens_file=tokens,
                pin=s.pin,
                timeout=timeout,
            )

    def trio_chat() -> dict[str, Any]:
        with _data_dir() as data, start_trio_chat(data, pin=s.pin) as server:
            port = server.wait_port()
            tokens = register_users(port, [f"idle{i}" for i in range(s.idle_users)])
            with _tokens_file(tokens) as tokens_path:
                out = run_loadgen(
                    port,
                    args,
                    server_pid=server.pid,
                    tokens_file=tokens_path,
                    pin=s.pin,
                    timeout=timeout,
                )
            out["exit_status"] = server.stop()
            return out

    ref = _attempt(result, "reference", reference)
    chat = _attempt(result, "trio-chat", trio_chat)
    if chat:
        _progress(f"trio-chat: {chat['rss_per_stream_kib']:.1f} KiB/stream")
    result.details = {"reference": ref, "trio_chat": chat}
    ref_kib = ref["rss_per_stream_kib"] if ref else None
    chat_kib = chat["rss_per_stream_kib"] if chat else None
    result.info("reference RSS per stream", ref_kib, "KiB")
    result.add(
        at_most("trio-chat RSS per stream", chat_kib, "KiB", 16, ratio=_ratio(chat_kib, ref_kib))
    )
    if chat:
        result.info("trio-chat RSS before", chat["rss_before_kib"] / 1024, "MiB")
        result.info("trio-chat RSS with streams", chat["rss_after_kib"] / 1024, "MiB")
        result.info("trio-chat time to open all", chat["open_s"], "s")
        result.add(exactly_zero("trio-chat streams failed/closed", sum(chat["errors"].values())))
    return result


# --------------------------------------------------------------------------- 4. cold start

SEED_SCRIPT: Final = """
import json, pathlib, sys
from trio_chat.storage.seed import seed_messages
seed_messages(pathlib.Path(sys.argv[1]), count=int(sys.argv[2]), authors=json.loads(sys.argv[3]))
"""


def _storage_fingerprint() -> str:
    """Changes whenever the storage code does, so that a stale cache is rebuilt."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "trio_chat" / "storage").rglob("*.py")):
        digest.update(path.relative_to(REPO).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def seeded_data(count: int, users: int, *, pin: bool) -> tuple[Path, list[str]]:
    """A data directory holding ``count`` messages (cached); returns it and its usernames.

    Users are registered through HTTP on a real server, which is then stopped; the messages are
    written by ``trio_chat.storage.seed.seed_messages``.
    """
    entry = CACHE / f"messages-{count}"
    meta_path = entry / "meta.json"
    fingerprint = _storage_fingerprint()
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") == fingerprint:
            return entry / "data", list(meta["users"])
        _progress(f"cache {entry.name}: storage code changed, rebuilding")
    shutil.rmtree(entry, ignore_errors=True)
    entry.mkdir(parents=True)
    data = entry / "data"
    authors = [f"cold{i}" for i in range(users)]
    names = [*authors, "cold-reader"]
    _progress(f"cache {entry.name}: registering {len(names)} users")
    with start_trio_chat(data, pin=pin) as server:
        register_users(server.wait_port(), names)
        status = server.stop()
    if status != 0:
        raise BenchError(f"trio-chat exited with status {status} after registering users")
    _progress(f"cache {entry.name}: seeding {count:,} messages")
    t0 = time.perf_counter()
    try:
        done = subprocess.run(
            [PYTHON, "-c", SEED_SCRIPT, str(data), str(count), json.dumps(authors)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"seeding {count:,} messages took over 15 minutes") from None
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-6:])
        raise BenchError(f"seeding with trio_chat.storage.seed.seed_messages failed:\n{tail}")
    seconds = time.perf_counter() - t0
    _progress(f"cache {entry.name}: seeded in {seconds:.1f} s")
    meta = {"count": count, "users": names, "fingerprint": fingerprint, "seed_s": seconds}
    meta_path.write_text(json.dumps(meta, indent=2))
    return data, names


def _measure_cold(count: int, s: Settings) -> dict[str, Any]:
    source, names = seeded_data(count, s.cold_users, pin=s.pin)
    with tempfile.TemporaryDirectory(prefix="trio-chat-bench-") as tmp:
        data = Path(tmp) / "data"
        shutil.copytree(source, data)
        with start_trio_chat(data, pin=s.pin) as server:
            healthy = wait_healthy(server.wait_port())
            startup = healthy - server.started_at
            rss_start = rss_kib(server.pid)
            port = server.wait_port()
            token = login(port, names[-1])
            t0 = time.perf_counter()
            status, body = call(port, "POST", "/connect", None, token)
            first = time.perf_counter() - t0
            if status != 200 or not body.get("history"):
                raise BenchError(
                    f"first POST /connect answered {status} without the seeded history: "
                    f"{str(body)[:300]}"
                )
            times = sorted(time_requests(port, "POST", "/connect", token, count=s.connect_samples))
            out: dict[str, Any] = {
                "messages": count,
                "startup_s": startup,
                "rss_at_healthz_kib": rss_start,
                "rss_after_connect_kib": rss_kib(server.pid),
                "rss_peak_kib": status_kib(server.pid, "VmHWM"),
                "first_connect_ms": first * 1e3,
                "first_connect_history": len(body["history"]),
                "connect_p50_ms": times[len(times) // 2] * 1e3,
                "connect_min_ms": times[0] * 1e3,
                "connect_max_ms": times[-1] * 1e3,
            }
            out["exit_status"] = server.stop()
    return out


def coldstart(s: Settings) -> ScenarioResult:
    result = ScenarioResult(
        "coldstart", f"start and POST /connect with {s.cold_big:,} vs {s.cold_small:,} messages"
    )
    small = _attempt(result, f"{s.cold_small:,} messages", lambda: _measure_cold(s.cold_small, s))
    big = _attempt(result, f"{s.cold_big:,} messages", lambda: _measure_cold(s.cold_big, s))
    result.details = {"small": small, "big": big}
    n = f"{s.cold_big:,} msgs"
    result.info(f"start → /healthz, {s.cold_small:,} msgs", small and small["startup_s"], "s")
    result.add(at_most(f"start → /healthz, {n}", big and big["startup_s"], "s", 2))
    big_rss = big and max(big["rss_at_healthz_kib"], big["rss_after_connect_kib"]) / 1024
    result.add(at_most(f"RSS, {n}", big_rss, "MiB", 150))
    if big:
        result.info(f"RSS peak (VmHWM), {n}", big["rss_peak_kib"] / 1024, "MiB")
    small_ms = small and small["connect_p50_ms"]
    big_ms = big and big["connect_p50_ms"]
    result.info(f"POST /connect p50, {s.cold_small:,} msgs", small_ms, "ms")
    ratio = _ratio(big_ms, small_ms)
    result.add(
        Row(
            f"POST /connect p50, {n}",
            big_ms,
            "ms",
            target="≤ 1.5x the small store",
            ok=None if ratio is None else ratio <= 1.5,
            ratio=ratio,
        )
    )
    if big:
        result.info(f"first POST /connect, {n}", big["first_connect_ms"], "ms")
    return result


SCENARIOS: Final[dict[str, Callable[[Settings], ScenarioResult]]] = {
    "send": send,
    "fanout": fanout,
    "idle": idle,
    "coldstart": coldstart,
}
