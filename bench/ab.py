"""``python -m bench.ab``: the ``send`` load on several builds of trio-chat, in turns.

For measuring a change before it lands: check the change out in a second worktree and run
both against each other (and the reference) on the same machine, in the same minutes::

    git worktree add ../try HEAD          # then make the change in ../try
    .venv/bin/python -m bench.ab --rounds 6 ref . ../try

A TREE is a checkout of this repository -- its ``trio_chat`` package is the one run; the
load generator, the reference server and this script come from the checkout this runs in --
or ``ref``, the reference server. Each round runs every tree once, in the order given, each
on a fresh server and data directory: the ``send`` scenario's load (64 keep-alive
connections, one user each, ``POST /send``, 1 s of warm-up and 4 s measured, rate limit off,
default logging), server on CPU 0 and load on CPU 1 as in ``python -m bench``.

Per tree it prints the median server CPU per request with its spread, requests/s, the median
ratio of the first tree's CPU per request to this tree's (per round: runs next to each other
in time; above 1 means this tree is cheaper), where the CPU went by thread (the event loop's
thread, Trio's worker threads -- the store's writes and reads --, and the rest: the log
writer), and the group commit's size (writes per commit, from the server's shutdown line).
Differences of a few µs need several rounds: compare medians, and look at the spread.
JSON with every run goes to ``bench/results/ab/`` (or ``--json``).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import machine
from bench.procstat import thread_cpu_seconds
from bench.scenarios import NO_RATE_LIMIT, SEND_TEXT
from bench.servers import (
    PYTHON,
    REPO,
    ServerProcess,
    register_users,
    run_loadgen,
    start_reference,
)

RESULTS = REPO / "bench" / "results" / "ab"
COMMITS = re.compile(r"(\d+) writes in (\d+) commits")
REFERENCE = "ref"


def server_command(tree: Path, data_dir: Path) -> list[str]:
    """trio-chat as it ships, run from ``tree``'s ``trio_chat`` package."""
    argv = ["trio-chat", "serve", "--host", "127.0.0.1", "--port", "0"]
    argv += ["--data-dir", str(data_dir), *NO_RATE_LIMIT]
    code = (
        f"import sys; sys.path.insert(0, {str(tree)!r}); sys.argv = {argv!r}; "
        "from trio_chat.cli import main; sys.exit(main())"
    )
    return [PYTHON, "-c", code]


def describe_tree(tree: str) -> str:
    """The commit a tree is at, and whether its server code differs from it."""
    if tree == REFERENCE:
        return "the reference server (bench/reference_server.py)"
    git = ["git", "-C", tree]
    commit = subprocess.run(
        [*git, "log", "-1", "--format=%h %s"], capture_output=True, text=True, check=False
    ).stdout.strip()
    changed = subprocess.run(
        [*git, "status", "--porcelain", "--", "trio_chat"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"{commit or 'not a git checkout'}" + (" + uncommitted changes" if changed else "")


def _thread_names(pid: int) -> dict[int, str]:
    names: dict[int, str] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            names[int(task.name)] = (task / "comm").read_text().strip()
        except (OSError, ValueError):  # the thread is gone meanwhile
            continue
    return names


def _by_thread(
    pid: int, before: dict[int, float], after: dict[int, float], requests: int
) -> dict[str, float]:
    """µs per request by kind of thread (from the kernel's counts over the load's run)."""
    names = _thread_names(pid)
    out = {"event loop": 0.0, "worker threads": 0.0, "other threads": 0.0}
    for tid, seconds in after.items():
        if tid == pid:
            kind = "event loop"
        elif names.get(tid, "").startswith("Trio thread"):
            kind = "worker threads"
        else:
            kind = "other threads"
        out[kind] += (seconds - before.get(tid, 0.0)) / max(requests, 1) * 1e6
    return out


def run_once(tree: str, connections: int, seconds: float) -> dict[str, Any]:
    """One round of the load on one tree: the load generator's result, and more."""
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
        if tree == REFERENCE:
            server = start_reference(pin=True)
            tokens = ["unused"] * connections
        else:
            command = server_command(Path(tree).resolve(), Path(tmp) / "data")
            server = ServerProcess("trio-chat", command, pin=True)
        with server:
            port = server.wait_port()
            if tree != REFERENCE:
                tokens = register_users(port, [f"ab{i}" for i in range(connections)])
            tokens_file = Path(tmp) / "tokens.json"
            tokens_file.write_text(json.dumps(tokens))
            args = ["http", "--connections", str(connections), "--warmup", "1"]
            args += ["--duration", str(seconds), "--body", json.dumps({"text": SEND_TEXT})]
            args += ["--expect-status", "201"]
            before = thread_cpu_seconds(server.pid)
            out = run_loadgen(
                port,
                args,
                server_pid=server.pid,
                tokens_file=tokens_file,
                pin=True,
                timeout=seconds + 120,
            )
            after = thread_cpu_seconds(server.pid)
            # Warm-up included: the whole load generator's run, over every answer it got.
            out["threads_us_per_request"] = _by_thread(
                server.pid, before, after, int(out["acknowledged_count"])
            )
            server.stop()
            found = COMMITS.findall(server.log_path.read_text(errors="replace"))
            if found:
                writes, commits = (int(n) for n in found[-1])
                out["writes_per_commit"] = writes / max(commits, 1)
    return out


def summarize(trees: list[str], runs: dict[str, list[dict[str, Any]]]) -> str:
    first = trees[0]
    lines = [
        f"{'tree':<28} {'µs/request':>10} {'spread':>13} {'req/s':>7} "
        f"{f'{first} ÷ this':>12}  {'by thread (µs/request)':<58} writes/commit"
    ]
    for tree in trees:
        cpu = [r["server_cpu_us_per_request"] for r in runs[tree]]
        rate = [r["requests_per_s"] for r in runs[tree]]
        ratios = [
            a["server_cpu_us_per_request"] / b["server_cpu_us_per_request"]
            for a, b in zip(runs[first], runs[tree], strict=True)
        ]
        threads = {
            kind: statistics.median(r["threads_us_per_request"][kind] for r in runs[tree])
            for kind in runs[tree][0]["threads_us_per_request"]
        }
        split = ", ".join(f"{kind} {us:.1f}" for kind, us in threads.items() if us >= 0.05)
        group = [r["writes_per_commit"] for r in runs[tree] if "writes_per_commit" in r]
        lines.append(
            f"{tree:<28} {statistics.median(cpu):>10.1f} "
            f"{f'{min(cpu):.1f}-{max(cpu):.1f}':>13} {statistics.median(rate):>7.0f} "
            f"{statistics.median(ratios):>11.2f}x  {split:<58} "
            + (f"{statistics.median(group):.1f}" if group else "-")
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ab", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("trees", nargs="+", metavar="TREE", help="a checkout, or 'ref'")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=4.0, help="measured, per run")
    parser.add_argument("--json", type=Path, help="where the results go")
    args = parser.parse_args(argv)
    info = machine.current()
    print(info.describe())
    for tree in args.trees:
        print(f"  {tree}: {describe_tree(tree)}")
    runs: dict[str, list[dict[str, Any]]] = {tree: [] for tree in args.trees}
    for round_ in range(1, args.rounds + 1):
        for tree in args.trees:
            out = run_once(tree, args.connections, args.seconds)
            runs[tree].append(out)
            print(
                f"round {round_}: {tree}: {out['server_cpu_us_per_request']:.1f} µs/request, "
                f"{out['requests_per_s']:.0f} req/s, other processes "
                f"{out['other_cpu_pct']:.0f}% of a core",
                flush=True,
            )
    print()
    print(summarize(args.trees, runs))
    stamp = info.started_at[:19].replace("-", "").replace(":", "") + "Z"
    path = args.json or RESULTS / f"{stamp}-{info.commit.split()[0]}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "machine": info.__dict__,
        "trees": {tree: describe_tree(tree) for tree in args.trees},
        "settings": {"connections": args.connections, "seconds": args.seconds},
        "runs": runs,
    }
    path.write_text(json.dumps(record, indent=1, default=str) + "\n")
    print(f"\nJSON written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
