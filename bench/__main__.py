"""``python -m bench``: run the benchmark scenarios, print a table, write JSON.

See bench/README.md for what each scenario measures and how to read the table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench import machine
from bench.procstat import system_busy_seconds
from bench.report import ScenarioResult, format_table, write_json
from bench.scenarios import RESULTS, SCENARIOS, Settings
from bench.servers import trio_chat_available


def _names(values: list[str]) -> list[str]:
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    unknown = sorted(set(names) - SCENARIOS.keys())
    if unknown:
        raise SystemExit(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    return names


def _background_cpu_pct(seconds: float = 1.0) -> float:
    """How busy the machine is before we start anything: percent of one CPU."""
    before = sum(system_busy_seconds())
    time.sleep(seconds)
    return 100 * (sum(system_busy_seconds()) - before) / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run with small sizes")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only these scenarios (repeatable or comma-separated): {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="where to write the results (default: bench/results/<UTC time>-<commit>.json for "
        "a full run, with -noisy when the machine was busy; bench/results/quick/latest.json "
        "for --quick)",
    )
    args = parser.parse_args(argv)
    names = _names(args.only) or list(SCENARIOS)

    info = machine.current()
    settings = Settings.quick_run(pin=info.pinned) if args.quick else Settings(pin=info.pinned)
    print(info.describe())
    if not info.pinned:
        print(
            "WARNING: running UNPINNED: "
            + ("taskset is not installed" if not info.taskset else "fewer than 2 CPUs")
            + "; server and load share the CPUs and the numbers are noisier."
        )
    if args.quick:
        print("QUICK run: reduced sizes and durations; verdicts do not reflect the real targets.")
    background = _background_cpu_pct()
    print(f"background CPU before start: {background:.0f}% of one core (all CPUs together)")
    if background > NOISE_PCT:
        print("WARNING: something else is running on this machine; the numbers will be noisy.")
    if reason := trio_chat_available():
        print(f"NOTE: {reason}; trio-chat halves will fail, references still run.")
    print(flush=True)

    results: list[ScenarioResult] = []
    started = time.perf_counter()
    for name in names:
        print(f"[{name}] running...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        result = SCENARIOS[name](settings)
        result.seconds = time.perf_counter() - t0
        print(f"[{name}] done in {result.seconds:.0f} s", file=sys.stderr, flush=True)
        results.append(result)

    for result in results:
        print(f"{result.name}: {result.title}")
    print()
    print(format_table(results))
    total = time.perf_counter() - started
    other = max((float(r.details.get("other_cpu_pct_max", 0)) for r in results), default=0.0)
    noisy = background > NOISE_PCT or other > NOISE_PCT
    if noisy:
        print(
            f"\nNOISY: other processes used {background:.0f}% of a core before the start and up "
            f"to {other:.0f}% during the measured windows; do not read these numbers as the "
            "truth (rerun on a quiet machine)."
        )
    path = args.json or _default_path(info, quick=args.quick, noisy=noisy)
    run = {
        "quick": args.quick,
        "noisy": noisy,
        "total_s": total,
        "background_cpu_pct": background,
        "other_cpu_pct_max": other,
    }
    write_json(path, info, results, {**run, **settings.as_json()})
    print(f"\ntotal {total:.0f} s; JSON written to {path}")
    failed = [f"{r.name}: {row.metric}" for r in results for row in r.failed_checks]
    if failed:
        print("FAILED checks: " + "; ".join(failed))
    return 1 if failed or any(r.errors for r in results) else 0


NOISE_PCT = 10.0  # % of a core used by other processes past which a run is labelled noisy


def _default_path(info: machine.Machine, *, quick: bool, noisy: bool) -> Path:
    if quick:
        return RESULTS / "quick" / "latest.json"
    stamp = info.started_at[:19].replace("-", "").replace(":", "") + "Z"  # 20261130T023637Z
    commit = info.commit.split()[0] + ("-dirty" if info.dirty else "")
    return RESULTS / f"{stamp}-{commit}{'-noisy' if noisy else ''}.json"


if __name__ == "__main__":
    sys.exit(main())
