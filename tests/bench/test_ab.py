"""bench.ab: which package a tree's server runs, and how its runs are summed up."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from bench.ab import server_command, summarize
from bench.servers import REPO


def test_a_trees_server_is_its_own_package_not_the_checkout_it_runs_from(
    tmp_path: Path,
) -> None:
    tree = tmp_path / "tree"
    (tree / "trio_chat").mkdir(parents=True)
    (tree / "trio_chat" / "__init__.py").write_text("")
    (tree / "trio_chat" / "cli.py").write_text(
        "import sys\n\ndef main():\n    print(__file__, sys.argv[1:4])\n    return 3\n"
    )
    # Run where the bench runs servers: the repository, whose own trio_chat is importable.
    done = subprocess.run(
        server_command(tree, tmp_path / "data"), cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout.startswith(str(tree / "trio_chat" / "cli.py"))
    assert "['serve', '--host', '127.0.0.1']" in done.stdout


def _run(cpu: float, loop: float, writes: float | None = None) -> dict[str, Any]:
    run: dict[str, Any] = {
        "server_cpu_us_per_request": cpu,
        "requests_per_s": 1e6 / cpu,
        "threads_us_per_request": {
            "event loop": loop,
            "worker threads": cpu - loop,
            "other threads": 0.0,
        },
    }
    if writes is not None:
        run["writes_per_commit"] = writes
    return run


def test_ratios_are_taken_per_round_and_everything_else_is_a_median() -> None:
    runs = {
        "ref": [_run(100, 100), _run(80, 80), _run(90, 90)],
        ".": [_run(150, 130, 30), _run(200, 180, 20), _run(300, 270, 31)],
    }
    table = summarize(["ref", "."], runs).splitlines()
    ref, this = table[1].split(), table[2].split()
    assert ref[:5] == ["ref", "90.0", "80.0-100.0", "11111", "1.00x"]
    # Per round 0.67, 0.40 and 0.30: the median is 0.40 (the ratio of the medians, 0.45,
    # would compare runs minutes apart).
    assert this[:5] == [".", "200.0", "150.0-300.0", "5000", "0.40x"]
    assert "event loop 180.0, worker threads 20.0" in table[2]
    assert this[-1] == "30.0"
    assert "other threads" not in table[2]  # nothing spent there: not shown
