"""The benchmark scenarios: each starts its servers, drives them and returns its rows.

A scenario never raises for a server that is missing or broken: it records the reason in
``ScenarioResult.errors`` (shown under the table) and measures whatever it still can, so the
reference half of a comparison is reported even while trio-chat does not start.

Every scenario repeats its measurement (``Settings.*_rounds``) and reports the median and the
spread; where trio-chat is compared with the reference, the runs alternate between the two, and
each round's ratio is taken between runs next to each other in time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from bench.loadgen import expand_ranges, marked_text
from bench.procstat import cpu_seconds, rss_kib, status_kib, system_busy_seconds
from bench.report import (
    ScenarioResult,
    Stat,
    at_most,
    exactly_zero,
    ratio_at_least,
    ratio_at_most,
)
from bench.servers import (
    PYTHON,
    REDIS_SERVER,
    REPO,
    BenchError,
    RedisProcess,
    ServerProcess,
    call,
    login,
    read_all_messages,
    register_users,
    run_loadgen,
    start_reference,
    start_trio_chat,
    time_first_requests,
    time_requests,
    wait_healthy,
)

RESULTS: Final = REPO / "bench" / "results"
CACHE: Final = RESULTS / "cache"
SEND_TEXT: Final = "Hello from the benchmark: a chat message of an ordinary length."
NO_RATE_LIMIT: Final = ("--rate-limit-count", "0")
DEFAULT_MAX_CONNECTIONS: Final = 10_000
MIB: Final = 1024 * 1024


@dataclass
class FanoutSize:
    streams: int
    messages: int
    interval: float  # seconds between two messages
    p99_target_ms: float


@dataclass
class Settings:
    """Sizes, durations and repetitions of every scenario; ``quick_run`` shrinks them."""

    pin: bool = True
    quick: bool = False
    send_connections: int = 64
    send_warmup: float = 1.0
    send_duration: float = 4.0
    send_rounds: int = 5
    send_crash_after: float = 1.5  # the crash round: SIGKILL this long into the load
    fanout_users: int = 50
    fanout_sizes: list[FanoutSize] = field(
        default_factory=lambda: [
            FanoutSize(streams=1_000, messages=100, interval=0.1, p99_target_ms=50),
            FanoutSize(streams=10_000, messages=10, interval=1.0, p99_target_ms=250),
        ]
    )
    fanout_rounds: int = 3
    idle_users: int = 50
    idle_streams: int = 10_000
    idle_rounds: int = 3
    cold_small: int = 1_000
    cold_big: int = 1_000_000
    cold_users: int = 10
    cold_rounds: int = 5
    connect_samples: int = 30
    upload_count: int = 20
    upload_size: int = 5 * MIB  # trio-chat's default --max-file-size: the largest allowed
    upload_rounds: int = 3
    redis_connections: int = 64
    redis_warmup: float = 1.0
    redis_duration: float = 4.0
    redis_rounds: int = 5
    redis_fanout: FanoutSize = field(
        default_factory=lambda: FanoutSize(
            streams=1_000, messages=100, interval=0.1, p99_target_ms=50
        )
    )
    redis_fanout_rounds: int = 3

    @classmethod
    def quick_run(cls, *, pin: bool) -> Settings:
        return cls(
            pin=pin,
            quick=True,
            send_connections=16,
            send_warmup=0.3,
            send_duration=1.0,
            send_rounds=2,
            send_crash_after=0.5,
            fanout_users=4,
            fanout_sizes=[
                FanoutSize(streams=100, messages=10, interval=0.1, p99_target_ms=50),
                FanoutSize(streams=500, messages=5, interval=0.2, p99_target_ms=250),
            ],
            fanout_rounds=2,
            idle_users=4,
            idle_streams=500,
            idle_rounds=2,
            cold_big=10_000,
            cold_rounds=2,
            connect_samples=10,
            upload_count=4,
            upload_size=1 * MIB,
            upload_rounds=2,
            redis_connections=16,
            redis_warmup=0.3,
            redis_duration=1.0,
            redis_rounds=2,
            redis_fanout=FanoutSize(streams=100, messages=10, interval=0.1, p99_target_ms=50),
            redis_fanout_rounds=2,
        )

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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


def _ratios(values: Sequence[float | None], references: Sequence[float | None]) -> Stat | None:
    """Each round's ratio, between the runs next to each other in time."""
    return Stat.of([_ratio(v, r) for v, r in zip(values, references, strict=False)])


def _attempt(result: ScenarioResult, label: str, fn: Callable[[], Any]) -> Any:
    """Run one half of a scenario; a BenchError becomes a recorded error and None."""
    try:
        return fn()
    except BenchError as exc:
        result.errors.append(f"{label}: {exc}")
        return None


def _progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def _get(runs: Sequence[dict[str, Any] | None], *keys: str) -> list[float | None]:
    """``run[k1][k2]...`` of each run (None for a run that did not happen)."""
    out: list[float | None] = []
    for run in runs:
        value: Any = run
        for key in keys:
            value = None if value is None else value.get(key)
        out.append(value)
    return out


def _mib(kib: Sequence[float | None]) -> list[float | None]:
    return [None if k is None else k / 1024 for k in kib]


def _load_rows(
    result: ScenarioResult, runs: Sequence[dict[str, Any]], label: str | None, prefix: str = ""
) -> None:
    """How busy the load process (``label``, if there is one) and everything else on the
    machine were (noise check)."""
    if runs:
        if label is not None:
            result.info(prefix + label, max(r["loadgen_cpu_pct"] for r in runs), "% of a core")
        other = max(r["other_cpu_pct"] for r in runs)
        result.info(prefix + "other processes' CPU (max)", other, "% of a core")
        interrupts = max(r["interrupts_cpu_pct"] for r in runs)
        result.info(prefix + "kernel interrupts/softirq (max)", interrupts, "% of a core")
        result.details["other_cpu_pct_max"] = max(
            other, float(result.details.get("other_cpu_pct_max", 0))
        )
        if other > 10:
            busiest = max(runs, key=lambda r: float(r["other_cpu_pct"]))
            elapsed = (
                busiest.get("duration_s") or busiest.get("window_s") or busiest.get("seconds") or 1
            )
            names = ", ".join(
                f"{n} {100 * s / elapsed:.0f}%" for n, s in busiest["other_top"].items()
            )
            result.notes.append(
                f"other processes used up to {other:.0f}% of a core during the measured "
                f"windows{f' ({names})' if names else ''}; these numbers are noisy"
            )


# --------------------------------------------------------------------------- 1. send


@dataclass
class _SendTarget:
    label: str
    server: ServerProcess
    tokens: Path
    names: list[str] = field(default_factory=list)
    data: Path | None = None
    options: tuple[str, ...] = ()
    runs: list[dict[str, Any]] = field(default_factory=list)  # measured rounds
    marked: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (tag, loadgen out)


def _send_args(s: Settings, *, warmup: float, duration: float, tag: str | None) -> list[str]:
    args = [
        "http",
        "--connections",
        str(s.send_connections),
        "--warmup",
        str(warmup),
        "--duration",
        str(duration),
        "--method",
        "POST",
        "--path",
        "/send",
        "--body",
        json.dumps({"text": SEND_TEXT}),
        "--expect-status",
        "201",
    ]
    return args if tag is None else [*args, "--mark", tag]


def _verify_stored(target: _SendTarget, stored: list[dict[str, Any]]) -> dict[str, Any]:
    """Every acknowledged message stored once, with the text and author it was sent with."""
    expected: dict[str, str] = {}  # text -> author
    unacknowledged: set[str] = set()
    for tag, out in target.marked:
        for connection, ranges in out["acknowledged"].items():
            c = int(connection)
            author = target.names[c % len(target.names)]
            for seq in expand_ranges(ranges):
                expected[marked_text(SEND_TEXT, tag, c, seq)] = author
        for c, seq in out["unacknowledged"]:
            unacknowledged.add(marked_text(SEND_TEXT, tag, c, seq))
    copies = Counter(m["text"] for m in stored)
    by_text = {m["text"]: m for m in stored}
    missing = [t for t in expected if t not in by_text]
    wrong = [
        t
        for t, author in expected.items()
        if t in by_text and (by_text[t]["author"] != author or by_text[t]["chat"] != "general")
    ]
    twice = [t for t in expected if copies[t] > 1]
    # Anything else with a marker of ours: an unacknowledged request that made it (allowed),
    # or a text the server changed (not allowed).
    strays = [t for t in copies if t not in expected and "[bench " in t]
    return {
        "acknowledged": len(expected),
        "stored_messages": len(stored),
        "missing": len(missing),
        "wrong_author_or_chat": len(wrong),
        "stored_twice": len(twice),
        "unacknowledged_stored": sum(t in unacknowledged for t in strays),
        "unacknowledged": len(unacknowledged),
        "unknown_texts": sum(t not in unacknowledged for t in strays),
        "missing_examples": missing[:5],
        "unknown_examples": [t for t in strays if t not in unacknowledged][:5],
    }


def _crash_and_read_back(s: Settings, target: _SendTarget, timeout: float) -> dict[str, Any]:
    """One more round with SIGKILL in the middle of the load, a restart on the same data,
    and every message read back over HTTP and matched with what was acknowledged."""
    server = target.server
    tag = "crash"
    args = _send_args(s, warmup=0.0, duration=s.send_crash_after + 1.0, tag=tag)
    args += ["--kill-pid", str(server.pid), "--kill-after", str(s.send_crash_after)]
    out = run_loadgen(
        server.wait_port(),
        args,
        server_pid=None,  # it will be gone before the end: nothing to read in /proc
        tokens_file=target.tokens,
        pin=s.pin,
        timeout=timeout,
    )
    server.kill()  # reaps it
    target.marked.append((tag, out))
    assert target.data is not None
    with start_trio_chat(target.data, *target.options, pin=s.pin) as again:
        token = login(again.wait_port(), target.names[0])
        t0 = time.perf_counter()
        stored = read_all_messages(again.wait_port(), token)
        read_s = time.perf_counter() - t0
        exit_status = again.stop()
    verdict = _verify_stored(target, stored)
    verdict.update(
        {
            "crash_round_acknowledged": out["acknowledged_count"],
            "read_back_s": read_s,
            "restarted_exit_status": exit_status,
        }
    )
    return verdict


def send(s: Settings) -> ScenarioResult:
    result = ScenarioResult(
        "send",
        f"POST /send on {s.send_connections} keep-alive connections, "
        f"{s.send_rounds} rounds of {s.send_duration:g} s",
    )
    timeout = s.send_warmup + s.send_duration + 60
    with contextlib.ExitStack() as stack:
        targets: list[_SendTarget] = []

        def reference() -> None:
            server = stack.enter_context(start_reference(pin=s.pin))
            tokens = stack.enter_context(_tokens_file(["unused"]))
            targets.append(_SendTarget("reference", server, tokens))

        def trio_chat(label: str, *options: str) -> None:
            data = stack.enter_context(_data_dir())
            server = stack.enter_context(start_trio_chat(data, *options, pin=s.pin))
            names = [f"send{i}" for i in range(s.send_connections)]
            tokens = register_users(server.wait_port(), names)
            path = stack.enter_context(_tokens_file(tokens))
            targets.append(_SendTarget(label, server, path, names, data, options))

        _attempt(result, "reference", reference)
        _attempt(result, "trio-chat", lambda: trio_chat("trio-chat", *NO_RATE_LIMIT))
        _attempt(
            result,
            "trio-chat --log-level warning",
            lambda: trio_chat("warning", *NO_RATE_LIMIT, "--log-level", "warning"),
        )
        # All servers stay up (an idle one costs nothing) and the rounds alternate between
        # them, so that a slow patch of the machine hits all of them.
        for round_no in range(1, s.send_rounds + 1):
            for target in targets:
                if target.runs and target.runs[-1] is None:
                    continue  # it failed: do not try again
                tag = f"r{round_no}" if target.data is not None else None
                args = _send_args(s, warmup=s.send_warmup, duration=s.send_duration, tag=tag)
                out = _attempt(
                    result,
                    target.label,
                    functools.partial(
                        run_loadgen,
                        target.server.wait_port(),
                        args,
                        server_pid=target.server.pid,
                        tokens_file=target.tokens,
                        pin=s.pin,
                        timeout=timeout,
                    ),
                )
                target.runs.append(out)
                if out is None:
                    continue
                if tag is not None:
                    target.marked.append((tag, out))
                _progress(f"round {round_no} {target.label}: {out['requests_per_s']:,.0f} req/s")
        log_lines = {t.label: t.server.log_lines() for t in targets if t.data is not None}
        checks: dict[str, Any] = {}
        for target in targets:
            if target.data is None or not any(target.runs):
                continue
            verdict = _attempt(
                result,
                f"{target.label} read-back",
                functools.partial(_crash_and_read_back, s, target, timeout),
            )
            checks[target.label] = verdict
            if verdict:
                _progress(
                    f"{target.label}: {verdict['acknowledged']:,} acknowledged, "
                    f"{verdict['missing']} missing after kill -9 and restart"
                )

    by_label = {t.label: t for t in targets}
    ref_runs = by_label["reference"].runs if "reference" in by_label else []
    result.details = {
        "runs": {t.label: t.runs for t in targets},
        "read_back": checks,
        "log_lines": log_lines,
        "servers": {t.label: t.server.argv for t in targets},
    }
    for label in ("acknowledged", "unacknowledged"):  # bulky, and summarised in read_back
        for run in (r for t in targets for r in t.runs if r):
            run.pop(label, None)

    ref_rps = _get(ref_runs, "requests_per_s")
    ref_cpu = _get(ref_runs, "server_cpu_us_per_request")
    result.info("reference throughput", Stat.of(ref_rps), "req/s")
    result.info("reference server CPU", Stat.of(ref_cpu), "µs/req")
    for label, title in (("trio-chat", "trio-chat"), ("warning", "trio-chat (log warning)")):
        chat = by_label.get(label)
        runs = chat.runs if chat else []
        rps = _get(runs, "requests_per_s")
        cpu = _get(runs, "server_cpu_us_per_request")
        if label == "trio-chat":
            result.add(
                ratio_at_least(
                    f"{title} throughput", Stat.of(rps), "req/s", _ratios(rps, ref_rps), 0.75
                )
            )
        else:
            result.info(f"{title} throughput", Stat.of(rps), "req/s", _ratios(rps, ref_rps))
        result.info(f"{title} server CPU", Stat.of(cpu), "µs/req", _ratios(cpu, ref_cpu))
        if label == "trio-chat":
            for pct in ("p50", "p99"):
                lat = _get(runs, "latency", f"{pct}_ms")
                ref_lat = _get(ref_runs, "latency", f"{pct}_ms")
                result.info(f"{title} latency {pct}", Stat.of(lat), "ms", _ratios(lat, ref_lat))
            if chat and any(runs):
                lines = log_lines.get(label)
                answered = sum(r["acknowledged_count"] for t, r in chat.marked if t != "crash")
                result.info("trio-chat log lines per request", _ratio(lines, answered), "")
        if any(runs):
            errors = sum(sum(r["errors"].values()) for r in runs if r)
            result.add(exactly_zero(f"{title}: errors (non-201, I/O)", errors))
        verdict = checks.get(label)
        if chat and chat.data is not None:
            result.info(
                f"{title}: acknowledged, crash round included",
                verdict and verdict["acknowledged"],
                "messages",
            )
            result.add(
                exactly_zero(
                    f"{title}: acknowledged, missing after kill -9",
                    verdict and verdict["missing"],
                )
            )
            result.add(
                exactly_zero(
                    f"{title}: stored twice or altered",
                    verdict
                    and verdict["stored_twice"]
                    + verdict["wrong_author_or_chat"]
                    + verdict["unknown_texts"],
                )
            )
    chat = by_label.get("trio-chat")
    if chat and any(chat.runs):
        rss = _get(chat.runs, "server_rss_kib")
        result.info("trio-chat RSS after a round", Stat.of(_mib(rss)), "MiB")
    _load_rows(result, [r for t in targets for r in t.runs if r], "load generator CPU (max)")
    return result


# --------------------------------------------------------------------------- 2. fan-out


def _fanout_command(size: FanoutSize) -> tuple[list[str], float]:
    """The load generator's fan-out arguments for ``size``, and how long to give it."""
    args = ["fanout", "--streams", str(size.streams), "--messages", str(size.messages)]
    args += ["--interval", str(size.interval)]
    return args, size.messages * size.interval + 300


def _fanout_size(s: Settings, size: FanoutSize, result: ScenarioResult) -> None:
    args, timeout = _fanout_command(size)
    options: list[str] = list(NO_RATE_LIMIT)
    if size.streams + 1 > DEFAULT_MAX_CONNECTIONS:
        # The streams and the sender's connection: one more than the default allows.
        options += ["--max-connections", str(size.streams + 100)]
    label = f"{size.streams:,} streams"

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
        with _data_dir() as data, start_trio_chat(data, *options, pin=s.pin) as server:
            names = [f"fan{i}" for i in range(s.fanout_users)]
            *tokens, sender = register_users(server.wait_port(), [*names, "fan-sender"])
            with _tokens_file(tokens) as tokens_path:
                out = run_loadgen(
                    server.wait_port(),
                    [*args, f"--sender-token={sender}"],
                    server_pid=server.pid,
                    tokens_file=tokens_path,
                    pin=s.pin,
                    timeout=timeout,
                )
            out["exit_status"] = server.stop()
            return out

    # A fresh server for each round: the reference notices a closed stream only when it next
    # writes to it, so 10,000 streams of the last round would still hold its descriptors.
    halves: dict[str, Callable[[], dict[str, Any]]] = {
        "reference": reference,
        "trio-chat": trio_chat,
    }
    runs: dict[str, list[dict[str, Any] | None]] = {name: [] for name in halves}
    for round_no in range(1, s.fanout_rounds + 1):
        for name, half in halves.items():
            if runs[name] and runs[name][-1] is None:
                continue  # it failed in an earlier round: do not spend the time again
            out = _attempt(result, f"{name}, {label}", half)
            runs[name].append(out)
            if out is not None:
                p99 = out["latency"]["p99_ms"]
                _progress(f"{label}, round {round_no}, {name}: p99 {p99:.1f} ms")

    ref, chat = runs["reference"], runs["trio-chat"]
    result.details[label] = {"settings": dataclasses.asdict(size), **runs}
    ref_p99, chat_p99 = _get(ref, "latency", "p99_ms"), _get(chat, "latency", "p99_ms")
    ref_p50, chat_p50 = _get(ref, "latency", "p50_ms"), _get(chat, "latency", "p50_ms")
    result.info(f"{label}: reference send→receive p99", Stat.of(ref_p99), "ms")
    result.info(f"{label}: reference send→receive p50", Stat.of(ref_p50), "ms")
    result.add(
        at_most(
            f"{label}: trio-chat send→receive p99",
            Stat.of(chat_p99),
            "ms",
            size.p99_target_ms,
            ratio=_ratios(chat_p99, ref_p99),
        )
    )
    result.info(
        f"{label}: trio-chat send→receive p50", Stat.of(chat_p50), "ms", _ratios(chat_p50, ref_p50)
    )

    def per_event(run: dict[str, Any] | None) -> float | None:
        if not run or run["server_cpu_s"] is None or not run["pairs_received"]:
            return None
        return float(run["server_cpu_s"]) / float(run["pairs_received"]) * 1e6

    ref_ev = [per_event(r) for r in ref]
    chat_ev = [per_event(r) for r in chat]
    result.info(f"{label}: reference server CPU per event", Stat.of(ref_ev), "µs")
    result.info(
        f"{label}: trio-chat server CPU per event", Stat.of(chat_ev), "µs", _ratios(chat_ev, ref_ev)
    )
    result.info(
        f"{label}: trio-chat POST /send p50 (sender)",
        Stat.of(_get(chat, "send_latency", "p50_ms")),
        "ms",
    )
    if any(chat):
        errors = sum(sum(r["errors"].values()) for r in chat if r)
        result.add(exactly_zero(f"{label}: trio-chat events missing or repeated", errors))
    _load_rows(result, [r for r in (*ref, *chat) if r], "load process CPU (max)", f"{label}: ")


def fanout(s: Settings) -> ScenarioResult:
    sizes = ", ".join(f"{z.streams:,}" for z in s.fanout_sizes)
    result = ScenarioResult(
        "fanout",
        f"1 sender, {sizes} GET /events streams; "
        + "; ".join(
            f"{z.streams:,}: {z.messages} messages every {z.interval * 1000:g} ms"
            for z in s.fanout_sizes
        ),
    )
    for size in s.fanout_sizes:
        _fanout_size(s, size, result)
    return result


# --------------------------------------------------------------------------- 3. idle streams


def idle(s: Settings) -> ScenarioResult:
    result = ScenarioResult(
        "idle", f"{s.idle_streams:,} open, idle GET /events streams, {s.idle_rounds} rounds"
    )
    args = ["hold", "--streams", str(s.idle_streams)]
    timeout = 300.0

    def reference() -> dict[str, Any]:
        return _loadgen_on_reference(s, args, timeout)

    def trio_chat() -> dict[str, Any]:
        return _loadgen_on_trio_chat(s, args, [f"idle{i}" for i in range(s.idle_users)], timeout)

    # A fresh server each round: memory freed by one round's streams would flatter the next.
    refs: list[dict[str, Any] | None] = []
    chats: list[dict[str, Any] | None] = []
    for round_no in range(1, s.idle_rounds + 1):
        refs.append(_attempt(result, "reference", reference))
        chats.append(chat := _attempt(result, "trio-chat", trio_chat))
        if chat:
            _progress(f"round {round_no}: trio-chat {chat['rss_per_stream_kib']:.1f} KiB/stream")
    result.details = {"reference": refs, "trio_chat": chats}
    ref_kib, chat_kib = _get(refs, "rss_per_stream_kib"), _get(chats, "rss_per_stream_kib")
    result.info("reference RSS per stream", Stat.of(ref_kib), "KiB")
    result.add(
        at_most(
            "trio-chat RSS per stream",
            Stat.of(chat_kib),
            "KiB",
            10,
            ratio=_ratios(chat_kib, ref_kib),
        )
    )
    if any(chats):
        before = _mib(_get(chats, "rss_before_kib"))
        after = _mib(_get(chats, "rss_after_kib"))
        result.info("trio-chat RSS before", Stat.of(before), "MiB")
        result.info("trio-chat RSS with streams", Stat.of(after), "MiB")
        result.info("trio-chat time to open all", Stat.of(_get(chats, "open_s")), "s")
        errors = sum(sum(c["errors"].values()) for c in chats if c)
        result.add(exactly_zero("trio-chat streams failed/closed", errors))
    _load_rows(result, [r for r in (*refs, *chats) if r], "load process CPU (max)")
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
        busy_before = system_busy_seconds()
        own_before, t_before = time.process_time(), time.perf_counter()
        with start_trio_chat(data, pin=s.pin) as server:
            healthy = wait_healthy(server.wait_port())
            startup = healthy - server.started_at
            rss_start = rss_kib(server.pid)
            port = server.wait_port()
            tokens = [login(port, name) for name in reversed(names)]  # the reader first
            # Every user's first /connect delivers the history and commits its read position
            # (a durable write); later calls of the same user find nothing to move. So the
            # first call after start (cold) is compared with the first calls of the other
            # users (the same work, warm), and the repeated calls are shown too. Each is
            # timed on a connection opened beforehand, from writing the request to reading
            # the whole answer.
            firsts, body = time_first_requests(port, "POST", "/connect", tokens)
            if not body or not body.get("history"):
                raise BenchError(
                    f"the first POST /connect answered without the seeded history: "
                    f"{str(body)[:300]}"
                )
            repeated, _ = time_requests(
                port, "POST", "/connect", tokens[0], count=s.connect_samples
            )
            first, others, warm = firsts[0], sorted(firsts[1:]), sorted(repeated)
            out: dict[str, Any] = {
                "messages": count,
                "startup_s": startup,
                "rss_at_healthz_kib": rss_start,
                "rss_after_connect_kib": rss_kib(server.pid),
                "rss_peak_kib": status_kib(server.pid, "VmHWM"),
                "first_connect_ms": first * 1e3,
                "first_connect_history": len(body["history"]),
                "other_first_connect_ms": [t * 1e3 for t in firsts[1:]],
                "other_first_connect_p50_ms": others[len(others) // 2] * 1e3,
                "connect_p50_ms": warm[len(warm) // 2] * 1e3,
                "connect_min_ms": warm[0] * 1e3,
                "connect_max_ms": warm[-1] * 1e3,
            }
            # Everything else the machine did meanwhile (no load process here): all CPUs'
            # busy time less the server's whole life and this process's share.
            server_cpu = cpu_seconds(server.pid)
            busy, interrupts = (
                b - a for a, b in zip(busy_before, system_busy_seconds(), strict=True)
            )
            elapsed = time.perf_counter() - t_before
            other = busy - server_cpu - (time.process_time() - own_before)
            out.update(
                {
                    "window_s": elapsed,
                    "loadgen_cpu_pct": 0.0,
                    "other_cpu_pct": max(0.0, 100 * other / elapsed),
                    "other_top": {},
                    "interrupts_cpu_pct": 100 * interrupts / elapsed,
                }
            )
            out["exit_status"] = server.stop()
    return out


def coldstart(s: Settings) -> ScenarioResult:
    result = ScenarioResult(
        "coldstart",
        f"start and POST /connect with {s.cold_big:,} (and {s.cold_small:,}) stored messages, "
        f"{s.cold_rounds} rounds",
    )
    smalls: list[dict[str, Any] | None] = []
    bigs: list[dict[str, Any] | None] = []
    for _ in range(s.cold_rounds):
        smalls.append(
            _attempt(result, f"{s.cold_small:,} messages", lambda: _measure_cold(s.cold_small, s))
        )
        bigs.append(
            _attempt(result, f"{s.cold_big:,} messages", lambda: _measure_cold(s.cold_big, s))
        )
    result.details = {"small": smalls, "big": bigs}
    n = f"{s.cold_big:,} msgs"
    result.add(at_most(f"start → /healthz 200, {n}", Stat.of(_get(bigs, "startup_s")), "s", 1))
    rss = _mib(
        [
            None if b is None else max(b["rss_at_healthz_kib"], b["rss_after_connect_kib"])
            for b in bigs
        ]
    )
    result.info(f"RSS at ready, {n}", Stat.of(_mib(_get(bigs, "rss_at_healthz_kib"))), "MiB")
    result.add(at_most(f"RSS after logins and /connect, {n}", Stat.of(rss), "MiB", 64))
    result.info(f"RSS peak (VmHWM), {n}", Stat.of(_mib(_get(bigs, "rss_peak_kib"))), "MiB")
    first, others = _get(bigs, "first_connect_ms"), _get(bigs, "other_first_connect_p50_ms")
    warm = _get(bigs, "connect_p50_ms")
    result.info(f"POST /connect, other users' first, p50, {n}", Stat.of(others), "ms")
    result.add(
        ratio_at_most(
            f"POST /connect first after start, {n}",
            Stat.of(first),
            "ms",
            _ratios(first, others),
            2,
            "warm",
        )
    )
    result.info(
        f"POST /connect repeated (no write), p50, {n}", Stat.of(warm), "ms", _ratios(first, warm)
    )
    small_n = f"{s.cold_small:,} msgs"
    result.info(f"start → /healthz 200, {small_n}", Stat.of(_get(smalls, "startup_s")), "s")
    small_warm = _get(smalls, "connect_p50_ms")
    result.info(f"POST /connect warm p50, {small_n}", Stat.of(small_warm), "ms")
    result.info(f"POST /connect warm p50, {n} ÷ {small_n}", _ratios(warm, small_warm), "x")
    _load_rows(result, [r for r in (*smalls, *bigs) if r], None)
    return result


# --------------------------------------------------------------------------- 5. uploads


def uploads(s: Settings) -> ScenarioResult:
    mib = s.upload_size / MIB
    result = ScenarioResult(
        "uploads",
        f"{s.upload_count} concurrent {mib:g} MiB uploads (POST /files), {s.upload_rounds} rounds",
    )
    args = ["upload", "--uploads", str(s.upload_count), "--size", str(s.upload_size)]
    timeout = 300.0

    def reference() -> dict[str, Any]:
        return _loadgen_on_reference(s, args, timeout)

    def trio_chat() -> dict[str, Any]:
        names = [f"up{i}" for i in range(s.upload_count)]
        return _loadgen_on_trio_chat(s, args, names, timeout)

    # A fresh server each round, so that every round measures the growth from a server that
    # has not yet seen an upload.
    refs: list[dict[str, Any] | None] = []
    chats: list[dict[str, Any] | None] = []
    for round_no in range(1, s.upload_rounds + 1):
        refs.append(ref := _attempt(result, "reference", reference))
        chats.append(chat := _attempt(result, "trio-chat", trio_chat))
        if ref and chat:
            _progress(
                f"round {round_no}: reference {ref['mb_per_s']:.0f} MB/s, trio-chat "
                f"{chat['mb_per_s']:.0f} MB/s, +{chat['rss_growth_kib'] / 1024:.1f} MiB RSS"
            )
    result.details = {"reference": refs, "trio_chat": chats}
    ref_mbs, chat_mbs = _get(refs, "mb_per_s"), _get(chats, "mb_per_s")
    result.info("reference upload throughput", Stat.of(ref_mbs), "MB/s")
    result.info(
        "trio-chat upload throughput", Stat.of(chat_mbs), "MB/s", _ratios(chat_mbs, ref_mbs)
    )
    ref_growth = _mib(_get(refs, "rss_growth_kib"))
    chat_growth = _mib(_get(chats, "rss_growth_kib"))
    result.info("reference server RSS growth (peak)", Stat.of(ref_growth), "MiB")
    growth = Stat.of(chat_growth)
    row = at_most(
        "trio-chat server RSS growth (peak)",
        growth,
        "MiB",
        16,
        ratio=_ratios(chat_growth, ref_growth),
    )
    row.target = "< 16 MiB"
    row.ok = None if growth is None else growth.median < 16
    result.add(row)
    result.info(
        "trio-chat upload latency p50 (each)", Stat.of(_get(chats, "latency", "p50_ms")), "ms"
    )
    if any(chats):
        # An upload that failed, or whose answer does not give the size and SHA-256 sent.
        failed = sum(c["uploads"] - c["verified"] for c in chats if c)
        result.add(exactly_zero("trio-chat uploads failed or answered wrong", failed))
    _load_rows(result, [r for r in (*refs, *chats) if r], "load process CPU (max)")
    return result


# --------------------------------------------------------------------------- 6. redis

# The configurations compared: the embedded store (SQLite, the reference of this scenario),
# and the Redis store with one and with two server processes, each on its own redis-server.
EMBEDDED: Final = "embedded"
REDIS_1: Final = "redis, 1 process"
REDIS_2: Final = "redis, 2 processes"


@dataclass
class _SharedTarget(_SendTarget):
    """One configuration of the ``redis`` scenario: its server processes (connections are
    spread over them) and its redis-server (None for the embedded store)."""

    servers: list[ServerProcess] = field(default_factory=list)
    redis: RedisProcess | None = None


def redis_run_figures(run: dict[str, Any], commands: dict[str, int] | None) -> dict[str, Any]:
    """What one measured round of the ``redis`` scenario adds to the load generator's result.

    ``commands`` is the change of ``INFO commandstats`` over the whole load-generator run
    (warm-up included, as ``acknowledged_count`` is); commands that the commit and lease
    scripts run are counted there too: every commit appends one ``XADD`` to the change log,
    every try to take the lease is one ``SET NX``, every lease given back one ``RPUSH`` (it
    wakes a waiting process).
    """
    requests = run.get("requests") or 0
    server_cpu = run.get("server_cpu_s")
    redis_cpu = sum(run.get("watched_cpu_s", {}).values()) if commands is not None else None
    out: dict[str, Any] = {
        "redis_cpu_s": redis_cpu,
        "redis_cpu_us_per_request": (
            redis_cpu / requests * 1e6 if redis_cpu is not None and requests else None
        ),
        "total_cpu_us_per_request": (
            (server_cpu + (redis_cpu or 0.0)) / requests * 1e6
            if server_cpu is not None and requests
            else None
        ),
        "redis_commands": commands,
        "commits": None,
        "requests_per_commit": None,
        "lease_holdings_per_1k_requests": None,
        "lease_tries_per_1k_requests": None,
    }
    acknowledged = run.get("acknowledged_count") or 0
    if commands is not None and acknowledged:
        commits = commands.get("xadd", 0)
        out["commits"] = commits
        out["requests_per_commit"] = acknowledged / commits if commits else None
        out["lease_holdings_per_1k_requests"] = 1000 * commands.get("rpush", 0) / acknowledged
        out["lease_tries_per_1k_requests"] = 1000 * commands.get("set", 0) / acknowledged
    return out


def _commandstats(target: _SharedTarget) -> dict[str, int] | None:
    return None if target.redis is None else target.redis.commandstats()


def _delta(before: dict[str, int] | None, after: dict[str, int] | None) -> dict[str, int] | None:
    if before is None or after is None:
        return None
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def _wait_known(port: int, token: str, timeout: float = 10.0) -> None:
    """Until the process on ``port`` knows ``token`` (a session another process created
    reaches it through the change log)."""
    deadline = time.perf_counter() + timeout
    while True:
        status, body = call(port, "GET", "/messages?chat=general&limit=1", token=token)
        if status == 200:
            return
        if time.perf_counter() > deadline:
            raise BenchError(f"the second process does not know a new session: {status} {body}")
        time.sleep(0.01)


def _shared_servers(
    stack: contextlib.ExitStack, data: Path, processes: int, redis: bool, pin: bool
) -> tuple[RedisProcess | None, tuple[str, ...], list[ServerProcess]]:
    """``processes`` trio-chat servers on one store: the embedded one in ``data``, or a
    redis-server of their own (all closed with ``stack``). The store, the servers' options,
    the servers."""
    options: tuple[str, ...] = NO_RATE_LIMIT
    store = None
    if redis:
        store = stack.enter_context(RedisProcess(pin=pin))
        options = (*options, "--store", store.url)
    servers = [
        stack.enter_context(start_trio_chat(data, *options, pin=pin)) for _ in range(processes)
    ]
    return store, options, servers


def _redis_send(s: Settings, result: ScenarioResult) -> dict[str, Any]:
    """POST /send on the three configurations, rounds alternating, then the read-back."""
    timeout = s.redis_warmup + s.redis_duration + 60
    by_label: dict[str, _SharedTarget] = {}
    commands: dict[str, list[dict[str, int] | None]] = {}
    checks: dict[str, Any] = {}
    exit_status: dict[str, list[int | None]] = {}
    with contextlib.ExitStack() as stack:

        def setup(label: str, processes: int, redis: bool) -> None:
            data = stack.enter_context(_data_dir())
            store, options, servers = _shared_servers(stack, data, processes, redis, s.pin)
            names = [f"send{i}" for i in range(s.redis_connections)]
            tokens = register_users(servers[0].wait_port(), names)
            for server in servers[1:]:
                _wait_known(server.wait_port(), tokens[-1])
            path = stack.enter_context(_tokens_file(tokens))
            by_label[label] = _SharedTarget(
                label, servers[0], path, names, data, options, servers=servers, redis=store
            )
            commands[label] = []

        _attempt(result, EMBEDDED, lambda: setup(EMBEDDED, 1, redis=False))
        _attempt(result, REDIS_1, lambda: setup(REDIS_1, 1, redis=True))
        _attempt(result, REDIS_2, lambda: setup(REDIS_2, 2, redis=True))
        targets = list(by_label.values())
        for round_no in range(1, s.redis_rounds + 1):
            for target in targets:
                if target.runs and target.runs[-1] is None:
                    continue  # it failed: do not try again
                tag = f"r{round_no}"
                args = _send_args(s, warmup=s.redis_warmup, duration=s.redis_duration, tag=tag)
                args[args.index("--connections") + 1] = str(s.redis_connections)
                before = _commandstats(target)
                out = _attempt(
                    result,
                    target.label,
                    functools.partial(
                        run_loadgen,
                        [server.wait_port() for server in target.servers],
                        args,
                        server_pid=[server.pid for server in target.servers],
                        watch_pids=[] if target.redis is None else [target.redis.pid],
                        tokens_file=target.tokens,
                        pin=s.pin,
                        timeout=timeout,
                    ),
                )
                delta = _delta(before, _commandstats(target))
                target.runs.append(out)
                commands[target.label].append(delta)
                if out is None:
                    continue
                target.marked.append((tag, out))
                out.update(redis_run_figures(out, delta))
                _progress(
                    f"round {round_no} {target.label}: {out['requests_per_s']:,.0f} req/s, "
                    f"{out['total_cpu_us_per_request'] or 0:.0f} µs/req (server + Redis)"
                )
        # Every acknowledged message, read back through the last process (for two
        # processes: not the one that took half of them).
        for target in targets:
            if not any(target.runs):
                continue

            def read_back(target: _SharedTarget = target) -> dict[str, Any]:
                port = target.servers[-1].wait_port()
                token = login(port, target.names[0])
                t0 = time.perf_counter()
                stored = read_all_messages(port, token)
                verdict = _verify_stored(target, stored)
                verdict["read_back_s"] = time.perf_counter() - t0
                return verdict

            checks[target.label] = verdict = _attempt(
                result, f"{target.label} read-back", read_back
            )
            if verdict:
                _progress(
                    f"{target.label}: {verdict['acknowledged']:,} acknowledged, "
                    f"{verdict['missing']} missing"
                )
        for target in targets:
            exit_status[target.label] = [server.stop() for server in target.servers]
    for target in targets:
        for run in (r for r in target.runs if r):
            run.pop("acknowledged", None)  # bulky, and summarised in read_back
            run.pop("unacknowledged", None)
    return {
        "runs": {t.label: t.runs for t in targets},
        "read_back": checks,
        "servers": {t.label: [server.argv for server in t.servers] for t in targets},
        "redis_servers": {t.label: t.redis.argv for t in targets if t.redis is not None},
        "exit_status": exit_status,
    }


def _redis_fanout(s: Settings, result: ScenarioResult) -> dict[str, Any]:
    """Fan-out across processes: every stream on process B, the sender on process A; the
    embedded store's single process (streams and sender on it) as the reference."""
    size = s.redis_fanout
    args, timeout = _fanout_command(size)

    def one(redis: bool) -> dict[str, Any]:
        with _data_dir() as data, contextlib.ExitStack() as stack:
            store, _, servers = _shared_servers(stack, data, 2 if redis else 1, redis, s.pin)
            sender_side, stream_side = servers[0], servers[-1]
            names = [f"fan{i}" for i in range(s.fanout_users)]
            *tokens, sender = register_users(sender_side.wait_port(), [*names, "fan-sender"])
            if redis:
                _wait_known(stream_side.wait_port(), sender)
            with _tokens_file(tokens) as tokens_path:
                out = run_loadgen(
                    stream_side.wait_port(),
                    [
                        *args,
                        f"--sender-token={sender}",
                        "--sender-port",
                        str(sender_side.wait_port()),
                    ],
                    server_pid=[server.pid for server in servers],
                    watch_pids=[] if store is None else [store.pid],
                    tokens_file=tokens_path,
                    pin=s.pin,
                    timeout=timeout,
                )
            out["exit_status"] = [server.stop() for server in servers]
            out["servers"] = [server.argv for server in servers]
            return out

    runs: dict[str, list[dict[str, Any] | None]] = {EMBEDDED: [], REDIS_2: []}
    label = f"{size.streams:,} streams"
    for round_no in range(1, s.redis_fanout_rounds + 1):
        for name, redis in ((EMBEDDED, False), (REDIS_2, True)):
            if runs[name] and runs[name][-1] is None:
                continue
            out = _attempt(result, f"fan-out {name}, {label}", functools.partial(one, redis))
            runs[name].append(out)
            if out is not None:
                _progress(
                    f"fan-out {label}, round {round_no}, {name}: "
                    f"p99 {out['latency']['p99_ms']:.1f} ms"
                )
    return {"settings": dataclasses.asdict(size), "runs": runs}


def _per_event(run: dict[str, Any] | None, cpu: float | None) -> float | None:
    if not run or cpu is None or not run["pairs_received"]:
        return None
    return float(cpu) / float(run["pairs_received"]) * 1e6


def redis_rows(result: ScenarioResult, send: dict[str, Any], fan: dict[str, Any]) -> None:
    """The ``redis`` scenario's rows from its raw results (no server needed: tested alone).

    Ratios are each configuration ÷ the embedded store, per round."""
    runs: dict[str, list[dict[str, Any] | None]] = send.get("runs", {})
    ref = runs.get(EMBEDDED, [])
    ref_rps, ref_cpu = _get(ref, "requests_per_s"), _get(ref, "server_cpu_us_per_request")
    result.info("embedded (SQLite), 1 process: throughput", Stat.of(ref_rps), "req/s")
    result.info("embedded (SQLite), 1 process: server CPU", Stat.of(ref_cpu), "µs/req")
    for label in (REDIS_1, REDIS_2):
        mine = runs.get(label, [])
        if not mine:
            continue
        rps = _get(mine, "requests_per_s")
        cpu = _get(mine, "server_cpu_us_per_request")
        total = _get(mine, "total_cpu_us_per_request")
        result.info(f"{label}: throughput", Stat.of(rps), "req/s", _ratios(rps, ref_rps))
        result.info(
            f"{label}: server CPU (all processes)", Stat.of(cpu), "µs/req", _ratios(cpu, ref_cpu)
        )
        result.info(
            f"{label}: redis-server CPU", Stat.of(_get(mine, "redis_cpu_us_per_request")), "µs/req"
        )
        result.info(
            f"{label}: server + redis-server CPU", Stat.of(total), "µs/req", _ratios(total, ref_cpu)
        )
        result.info(f"{label}: latency p99", Stat.of(_get(mine, "latency", "p99_ms")), "ms")
        result.info(f"{label}: requests per commit", Stat.of(_get(mine, "requests_per_commit")), "")
        result.info(
            f"{label}: lease holdings per 1,000 requests",
            Stat.of(_get(mine, "lease_holdings_per_1k_requests")),
            "",
        )
        result.info(
            f"{label}: tries to take the lease per 1,000 requests",
            Stat.of(_get(mine, "lease_tries_per_1k_requests")),
            "",
        )
    for label, mine in runs.items():
        if any(mine):
            errors = sum(sum(r["errors"].values()) for r in mine if r)
            result.add(exactly_zero(f"{label}: errors (non-201, I/O)", errors))
    for label, verdict in send.get("read_back", {}).items():
        result.info(f"{label}: acknowledged", verdict and verdict["acknowledged"], "messages")
        result.add(exactly_zero(f"{label}: acknowledged, missing", verdict and verdict["missing"]))
        result.add(
            exactly_zero(
                f"{label}: stored twice or altered",
                verdict
                and verdict["stored_twice"]
                + verdict["wrong_author_or_chat"]
                + verdict["unknown_texts"],
            )
        )

    fan_runs: dict[str, list[dict[str, Any] | None]] = fan.get("runs", {})
    if fan_runs:
        size = fan["settings"]
        streams = f"{size['streams']:,} streams"
        ref_fan, shared = fan_runs.get(EMBEDDED, []), fan_runs.get(REDIS_2, [])
        ref_p99, p99 = _get(ref_fan, "latency", "p99_ms"), _get(shared, "latency", "p99_ms")
        ref_p50, p50 = _get(ref_fan, "latency", "p50_ms"), _get(shared, "latency", "p50_ms")
        where = f"{streams} on process B, sender on A"
        result.info(f"{streams}, embedded: send→receive p99", Stat.of(ref_p99), "ms")
        result.add(
            at_most(
                f"{where}: send→receive p99",
                Stat.of(p99),
                "ms",
                size["p99_target_ms"],
                ratio=_ratios(p99, ref_p99),
            )
        )
        result.info(f"{where}: send→receive p50", Stat.of(p50), "ms", _ratios(p50, ref_p50))
        ref_ev = [_per_event(r, r and r["server_cpu_s"]) for r in ref_fan]
        ev = [_per_event(r, r and r["server_cpu_s"]) for r in shared]
        redis_ev = [_per_event(r, r and sum(r.get("watched_cpu_s", {}).values())) for r in shared]
        result.info(f"{streams}, embedded: server CPU per event", Stat.of(ref_ev), "µs")
        result.info(
            f"{where}: server CPU per event (A + B)", Stat.of(ev), "µs", _ratios(ev, ref_ev)
        )
        result.info(f"{where}: redis-server CPU per event", Stat.of(redis_ev), "µs")
        for label, mine in fan_runs.items():
            if any(mine):
                errors = sum(sum(r["errors"].values()) for r in mine if r)
                name = where if label == REDIS_2 else f"{streams}, embedded"
                result.add(exactly_zero(f"{name}: events missing or repeated", errors))
    all_runs = [r for group in (*runs.values(), *fan_runs.values()) for r in group if r]
    _load_rows(result, all_runs, "load process CPU (max)")


def _redis_version() -> str:
    try:
        done = subprocess.run(
            [REDIS_SERVER, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip()


def redis(s: Settings) -> ScenarioResult:
    size = s.redis_fanout
    result = ScenarioResult(
        "redis",
        f"Redis store: POST /send on {s.redis_connections} connections, 1 and 2 processes vs the "
        f"embedded store, {s.redis_rounds} rounds of {s.redis_duration:g} s; fan-out to "
        f"{size.streams:,} streams on another process, {size.messages} messages every "
        f"{size.interval * 1000:g} ms, {s.redis_fanout_rounds} rounds",
    )
    send_results = _redis_send(s, result)
    fan_results = _redis_fanout(s, result)
    result.details = {
        "redis_server": _redis_version(),
        "send": send_results,
        "fanout": fan_results,
    }
    redis_rows(result, send_results, fan_results)
    return result


SCENARIOS: Final[dict[str, Callable[[Settings], ScenarioResult]]] = {
    "send": send,
    "fanout": fanout,
    "idle": idle,
    "coldstart": coldstart,
    "uploads": uploads,
    "redis": redis,
}


def _loadgen_on_reference(s: Settings, args: list[str], timeout: float) -> dict[str, Any]:
    """One load-generator run against a fresh reference server."""
    with start_reference(pin=s.pin) as server, _tokens_file(["unused"]) as tokens:
        return run_loadgen(
            server.wait_port(),
            args,
            server_pid=server.pid,
            tokens_file=tokens,
            pin=s.pin,
            timeout=timeout,
        )


def _loadgen_on_trio_chat(
    s: Settings, args: list[str], users: list[str], timeout: float
) -> dict[str, Any]:
    """One load-generator run against a fresh trio-chat with ``users`` registered."""
    with _data_dir() as data, start_trio_chat(data, pin=s.pin) as server:
        port = server.wait_port()
        tokens = register_users(port, users)
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
