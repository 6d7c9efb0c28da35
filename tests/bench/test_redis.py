"""The ``redis`` scenario's figures, rows and verdicts, from made-up raw results (no server)."""

from __future__ import annotations

from typing import Any

from bench.loadgen import port_of
from bench.report import ScenarioResult, format_table
from bench.scenarios import EMBEDDED, REDIS_1, REDIS_2, redis_rows, redis_run_figures
from bench.servers import parse_commandstats


def _send_run(rps: float, server_cpu_us: float, redis_cpu_s: float = 0.0) -> dict[str, Any]:
    requests = int(rps * 4)
    return {
        "requests": requests,
        "requests_per_s": rps,
        "server_cpu_s": server_cpu_us * requests / 1e6,
        "server_cpu_us_per_request": server_cpu_us,
        "watched_cpu_s": {"4242": redis_cpu_s},
        "acknowledged_count": requests,
        "latency": {"p50_ms": 10.0, "p99_ms": 40.0},
        "errors": {},
        "duration_s": 4.0,
        "loadgen_cpu_pct": 30.0,
        "other_cpu_pct": 0.0,
        "interrupts_cpu_pct": 2.0,
        "other_top": {},
    }


def _fan_run(p99: float, errors: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "latency": {"p50_ms": p99 / 2, "p99_ms": p99},
        "pairs_received": 100_000,
        "server_cpu_s": 5.0,
        "watched_cpu_s": {"4242": 1.0},
        "errors": errors or {},
        "window_s": 11.0,
        "loadgen_cpu_pct": 20.0,
        "other_cpu_pct": 0.0,
        "interrupts_cpu_pct": 2.0,
        "other_top": {},
    }


def _read_back(missing: int = 0, twice: int = 0) -> dict[str, Any]:
    return {
        "acknowledged": 1000,
        "missing": missing,
        "stored_twice": twice,
        "wrong_author_or_chat": 0,
        "unknown_texts": 0,
    }


def _results(
    *, missing: int = 0, fan_p99: float = 30.0, fan_errors: dict[str, int] | None = None
) -> ScenarioResult:
    redis_1 = _send_run(2000, 400, redis_cpu_s=0.4)
    redis_1.update(redis_run_figures(redis_1, {"xadd": 1000, "rpush": 80}))
    send = {
        "runs": {
            EMBEDDED: [_send_run(3000, 300), _send_run(3200, 310)],
            REDIS_1: [redis_1],
            REDIS_2: [],
        },
        "read_back": {
            EMBEDDED: _read_back(),
            REDIS_1: _read_back(missing=missing),
        },
    }
    fan = {
        "settings": {"streams": 1000, "messages": 100, "interval": 0.1, "p99_target_ms": 50},
        "runs": {
            EMBEDDED: [_fan_run(20.0)],
            REDIS_2: [_fan_run(fan_p99, fan_errors)],
        },
    }
    result = ScenarioResult("redis", "t")
    redis_rows(result, send, fan)
    return result


def _row(result: ScenarioResult, metric: str) -> Any:
    (row,) = [r for r in result.rows if r.metric == metric]
    return row


def test_figures_add_redis_cpu_and_count_commits_and_hand_overs() -> None:
    run = _send_run(1000, 500, redis_cpu_s=0.4)  # 4,000 requests

    figures = redis_run_figures(run, {"xadd": 500, "rpush": 40, "set": 60, "get": 3})

    assert figures["redis_cpu_us_per_request"] == 100.0
    assert figures["total_cpu_us_per_request"] == 600.0
    assert figures["requests_per_commit"] == 8.0
    assert figures["lease_holdings_per_1k_requests"] == 10.0
    assert figures["lease_tries_per_1k_requests"] == 15.0


def test_the_embedded_store_has_no_redis_figures() -> None:
    figures = redis_run_figures(_send_run(1000, 500), None)

    assert figures["redis_cpu_us_per_request"] is None
    assert figures["total_cpu_us_per_request"] == 500.0
    assert figures["requests_per_commit"] is None


def test_rows_compare_with_the_embedded_store_and_pass_when_all_is_well() -> None:
    result = _results()

    throughput = _row(result, f"{REDIS_1}: throughput")
    assert throughput.measured == 2000
    assert throughput.ratio == 2000 / 3000  # the round next to it in time: the first
    assert _row(result, f"{REDIS_1}: redis-server CPU").measured == 50.0  # 0.4 s / 8,000
    total = _row(result, f"{REDIS_1}: server + redis-server CPU")
    assert (total.measured, total.ratio) == (450.0, 1.5)  # ÷ the embedded store's 300
    assert _row(result, f"{REDIS_1}: requests per commit").measured == 8.0
    assert result.failed_checks == []
    fan = _row(result, "1,000 streams on process B, sender on A: send→receive p99")
    assert (fan.target, fan.verdict) == ("≤ 50 ms", "PASS")
    assert "redis, 1 process: redis-server CPU" in format_table([result])


def test_a_missing_message_or_a_lost_event_fails_and_a_slow_fan_out_misses() -> None:
    result = _results(missing=1, fan_p99=80.0, fan_errors={"missing_events": 3})

    failed = {row.metric for row in result.failed_checks}
    assert failed == {
        f"{REDIS_1}: acknowledged, missing",
        "1,000 streams on process B, sender on A: events missing or repeated",
    }
    fan = _row(result, "1,000 streams on process B, sender on A: send→receive p99")
    assert fan.verdict == "MISS"


def test_commandstats_counts_calls_per_command() -> None:
    info = (
        "# Commandstats\r\n"
        "cmdstat_xadd:calls=12,usec=340,usec_per_call=28.33,rejected_calls=0,failed_calls=0\r\n"
        "cmdstat_config|get:calls=2,usec=10,usec_per_call=5.00,rejected_calls=0,failed_calls=0\r\n"
    )

    assert parse_commandstats(info) == {"xadd": 12, "config|get": 2}


def test_connections_are_spread_evenly_over_the_processes() -> None:
    ports = [port_of([8001, 8002], i) for i in range(64)]

    assert ports.count(8001) == ports.count(8002) == 32
    assert port_of(8001, 5) == 8001
