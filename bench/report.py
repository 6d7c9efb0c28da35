"""Results: one row per measured metric, printed as a table and written as JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.machine import Machine


@dataclass
class Row:
    """One metric. ``ok`` is None for information only (no target)."""

    metric: str
    measured: float | None
    unit: str
    target: str = ""
    ok: bool | None = None
    ratio: float | None = None  # trio-chat / reference, where the metric has a reference

    @property
    def verdict(self) -> str:
        if self.measured is None or (
            isinstance(self.measured, float) and math.isnan(self.measured)
        ):
            return "FAIL" if self.target else "-"
        if self.ok is None:
            return ""
        return "PASS" if self.ok else "MISS"


def check(
    metric: str,
    measured: float | None,
    unit: str,
    *,
    limit: float,
    target: str,
    passes: Callable[[float, float], bool],
    ratio: float | None = None,
) -> Row:
    ok = None if measured is None else passes(measured, limit)
    return Row(metric, measured, unit, target=target, ok=ok, ratio=ratio)


def at_most(metric: str, measured: float | None, unit: str, limit: float, **kw: Any) -> Row:
    return check(
        metric, measured, unit, limit=limit, target=f"≤ {limit:g} {unit}", passes=_le, **kw
    )


def _le(value: float, limit: float) -> bool:
    return value <= limit


def _ge(value: float, limit: float) -> bool:
    return value >= limit


def exactly_zero(metric: str, measured: float | None) -> Row:
    return check(metric, measured, "", limit=0, target="0", passes=_le)


def at_least(metric: str, measured: float | None, unit: str, limit: float, **kw: Any) -> Row:
    return check(
        metric, measured, unit, limit=limit, target=f"≥ {limit:g} {unit}", passes=_ge, **kw
    )


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

    def info(
        self, metric: str, measured: float | None, unit: str, ratio: float | None = None
    ) -> None:
        self.rows.append(Row(metric, measured, unit, ratio=ratio))


def _number(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def format_table(results: Sequence[ScenarioResult]) -> str:
    header = ("scenario", "metric", "target", "measured", "ratio", "result")
    lines: list[tuple[str, ...]] = []
    for result in results:
        if not result.rows and result.errors:
            lines.append((result.name, "(did not run)", "", "", "", "FAIL"))
        for i, row in enumerate(result.rows):
            measured = (
                "n/a" if row.measured is None else f"{_number(row.measured)} {row.unit}".rstrip()
            )
            ratio = "" if row.ratio is None else f"{row.ratio:.2f}x"
            lines.append(
                (
                    result.name if i == 0 else "",
                    row.metric,
                    row.target,
                    measured,
                    ratio,
                    row.verdict,
                )
            )
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]

    def fmt(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in (3, 4) else c.ljust(w)
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
