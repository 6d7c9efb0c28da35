"""The benchmark's verdicts and its read-back check, without running any server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.loadgen import marked_text
from bench.report import (
    ScenarioResult,
    Stat,
    at_most,
    exactly_zero,
    format_table,
    ratio_at_least,
)
from bench.scenarios import SEND_TEXT, _SendTarget, _verify_stored


def test_stat_is_median_and_spread_of_what_was_measured() -> None:
    assert Stat.of([3.0, None, 1.0, 2.0]) == Stat(2.0, 1.0, 3.0, 3)
    assert Stat.of([None]) is None


def test_targets_judge_the_median_and_checks_fail() -> None:
    assert at_most("p99", Stat.of([40.0, 45.0, 90.0]), "ms", 50).verdict == "PASS"
    assert at_most("p99", Stat.of([40.0, 60.0, 90.0]), "ms", 50).verdict == "MISS"
    assert ratio_at_least("rps", 5.0, "req/s", Stat.of([0.7, 0.8, 0.9]), 0.75).verdict == "PASS"
    assert exactly_zero("lost", 1).verdict == "FAIL"
    assert exactly_zero("lost", 0).verdict == "PASS"
    assert at_most("p99", None, "ms", 50).verdict == "FAIL"  # could not be measured


def test_table_shows_spread_runs_and_ratio_spread() -> None:
    result = ScenarioResult("send", "t")
    result.add(
        ratio_at_least(
            "rps", Stat.of([90.0, 100.0, 110.0]), "req/s", Stat.of([0.5, 0.6, 0.7]), 0.75
        )
    )

    table = format_table([result])

    assert "90.0-110 (3)" in table
    assert "0.60x (0.50-0.70)" in table
    assert "MISS" in table
    assert result.failed_checks == []


def _target(acked: dict[str, list[list[int]]], unacked: list[list[int]]) -> _SendTarget:
    out: dict[str, Any] = {"acknowledged": acked, "unacknowledged": unacked}
    return _SendTarget("trio-chat", None, Path(), ["ann", "bob"], marked=[("r1", out)])  # type: ignore[arg-type]


def _stored(connection: int, seq: int, author: str, **changes: str) -> dict[str, str]:
    message = {"text": marked_text(SEND_TEXT, "r1", connection, seq), "author": author}
    return {"chat": "general", **message, **changes}


def test_read_back_finds_every_acknowledged_message() -> None:
    target = _target({"0": [[0, 1]], "1": [[0, 0]]}, [[1, 1]])
    stored = [
        _stored(0, 0, "ann"),
        _stored(0, 1, "ann"),
        _stored(1, 0, "bob"),
        _stored(1, 1, "bob"),
    ]

    verdict = _verify_stored(target, stored)

    assert verdict["acknowledged"] == 3
    assert verdict["missing"] == verdict["stored_twice"] == verdict["unknown_texts"] == 0
    assert verdict["unacknowledged_stored"] == 1  # in flight at the end: may or may not be kept


def test_read_back_reports_lost_doubled_and_altered_messages() -> None:
    target = _target({"0": [[0, 2]], "1": [[0, 0]]}, [])
    stored = [
        _stored(0, 0, "ann"),
        _stored(0, 0, "ann"),  # twice
        _stored(0, 1, "bob"),  # wrong author
        _stored(1, 0, "bob", text="[bench r1 c=1 s=0] mangled"),  # altered: so also missing
    ]

    verdict = _verify_stored(target, stored)

    assert verdict["missing"] == 2  # 0/2 never stored, 1/0 not with its text
    assert verdict["stored_twice"] == 1
    assert verdict["wrong_author_or_chat"] == 1
    assert verdict["unknown_texts"] == 1
