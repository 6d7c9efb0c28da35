"""Results: one row per measured metric, printed as a table and written as JSON."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.machine import Machine


@dataclass
class Row:
    """One metric. ``ok`` is None for information only (no target).

    ``measured`` is the median over ``runs`` repetitions and ``spread`` their lowest and
    highest; the same for ``ratio`` (trio-chat / reference, each repetition's ratio taken
    between runs next to each other in time) and ``ratio_spread``. A ``check`` row is a
    correctness check (nothing acknowledged lost, no error answers): missing it is a FAIL,
    and makes ``python -m bench`` exit 1; a missed performance target is a MISS.
    """

    metric: str
    measured: float | None
    unit: str
    target: str = ""
    ok: bool | None = None
    ratio: float | None = None
    spread: tuple[float, float] | None = None
    runs: int = 1
    ratio_spread: tuple[float, float] | None = None
    check: bool = False

    @property
    def verdict(self) -> str:
        if self.measured is None or (
            isinstance(self.measured, float) and math.isnan(self.measured)
        ):
            return "FAIL" if self.target else "-"
        if self.ok is None:
            return ""
        if self.ok:
            return "PASS"
        return "FAIL" if self.check else "MISS"


@dataclass(frozen=True)
class Stat:
    """Repetitions of one measurement: their median, lowest and highest."""

    median: float
    low: float
    high: float
    runs: int

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Stat | None:
        """None when no repetition measured anything."""
        found = [v for v in values if v is not None and not math.isnan(v)]
        if not found:
            return None
        return cls(statistics.median(found), min(found), max(found), len(found))


Measured = float | Stat | None


def make_row(
    metric: str,
    measured: Measured,
    unit: str,
    *,
    target: str = "",
    ok: bool | None = None,
    ratio: Measured = None,
    check: bool = False,
) -> Row:
    """A row from a single value or from repetitions (``Stat``) of it and of its ratio."""
    out = Row(metric, None, unit, target=target, ok=ok, check=check)
    if isinstance(measured, Stat):
        out.measured, out.spread, out.runs = (
            measured.median,
            (measured.low, measured.high),
            measured.runs,
        )
    else:
        out.measured = measured
    if isinstance(ratio, Stat):
        out.ratio = ratio.median
        if ratio.runs > 1:
            out.ratio_spread = (ratio.low, ratio.high)
    else:
        out.ratio = ratio
    return out


def _median(value: Measured) -> float | None:
    return value.median if isinstance(value, Stat) else value


def at_most(metric: str, measured: Measured, unit: str, limit: float, **kw: Any) -> Row:
    """Passes when the median is at most ``limit``."""
    value = _median(measured)
    ok = None if value is None else value <= limit
    return make_row(metric, measured, unit, target=f"≤ {limit:g} {unit}", ok=ok, **kw)


def ratio_at_least(
    metric: str, measured: Measured, unit: str, ratio: Measured, limit: float
) -> Row:
    """Passes when the median ratio to the reference is at least ``limit``."""
    value = _median(ratio)
    ok = None if value is None else value >= limit
    return make_row(metric, measured, unit, target=f"≥ {limit:g}x reference", ok=ok, ratio=ratio)


def ratio_at_most(
    metric: str, measured: Measured, unit: str, ratio: Measured, limit: float, what: str
) -> Row:
    """Passes when the median ratio (to ``what``) is at most ``limit``."""
    value = _median(ratio)
    ok = None if value is None else value <= limit
    return make_row(metric, measured, unit, target=f"≤ {limit:g}x {what}", ok=ok, ratio=ratio)


def exactly_zero(metric: str, measured: float | None) -> Row:
    """A correctness check: anything but 0 is a FAIL."""
    ok = None if measured is None else measured == 0
    return make_row(metric, measured, "", target="0", ok=ok, check=True)


@dataclass
class ScenarioResult:
    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # the scenario (or a half of it) did not run
    notes: list[str] = field(default_factory=list)  # it ran, but read its numbers with care
    seconds: float = 0.0

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def info(self, metric: str, measured: Measured, unit: str, ratio: Measured = None) -> None:
        self.rows.append(make_row(metric, measured, unit, ratio=ratio))

    @property
    def failed_checks(self) -> list[Row]:
        return [row for row in self.rows if row.verdict == "FAIL"]


def _number(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def format_table(results: Sequence[ScenarioResult]) -> str:
    header = ("scenario", "metric", "target", "measured", "spread (runs)", "ratio", "result")
    lines: list[tuple[str, ...]] = []
    for result in results:
        if not result.rows and result.errors:
            lines.append((result.name, "(did not run)", "", "", "", "", "FAIL"))
        for i, row in enumerate(result.rows):
            measured = (
                "n/a" if row.measured is None else f"{_number(row.measured)} {row.unit}".rstrip()
            )
            ratio = "" if row.ratio is None else f"{row.ratio:.2f}x"
            if row.ratio_spread is not None:
                low, high = row.ratio_spread
                ratio += f" ({low:.2f}-{high:.2f})"
            spread = ""
            if row.spread is not None and row.runs > 1:
                spread = f"{_number(row.spread[0])}-{_number(row.spread[1])} ({row.runs})"
            lines.append(
                (
                    result.name if i == 0 else "",
                    row.metric,
                    row.target,
                    measured,
                    spread,
                    ratio,
                    row.verdict,
                )
            )
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]

    def fmt(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in (3, 4, 5) else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [fmt(header), fmt(tuple("-" * w for w in widths))]
    previous = ""
    for cells in lines:
        if cells[0] and previous:
            out.append("")
        previous = cells[0] or previous
        out.append(fmt(cells))
    for result in results:
        for error in result.errors:
            out.append(f"\n{result.name}: ERROR: {error}")
        for note in result.notes:
            out.append(f"\n{result.name}: note: {note}")
    return "\n".join(out)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def write_json(
    path: Path, machine: Machine, results: Sequence[ScenarioResult], settings: dict[str, Any]
) -> None:
    document = {
        "machine": asdict(machine),
        "settings": settings,
        "scenarios": [
            {
                "name": r.name,
                "title": r.title,
                "seconds": r.seconds,
                "rows": [dict(asdict(row), verdict=row.verdict) for row in r.rows],
                "errors": r.errors,
                "notes": r.notes,
                "details": r.details,
            }
            for r in results
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(document), indent=2) + "\n")
