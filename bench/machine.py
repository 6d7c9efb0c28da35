"""The machine, software and commit a benchmark ran on, printed and stored with every result."""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Every library on trio-chat's request path, and the profiler the budget is measured with.
PACKAGES = ("trio", "h11", "orjson", "cattrs", "attrs", "coredis", "py-spy")


@dataclass
class Machine:
    nproc: int
    cpu_model: str
    ram_mib: int
    kernel: str
    python: str
    trio: str
    h11: str
    taskset: bool
    packages: dict[str, str] = field(default_factory=dict)
    commit: str = "unknown"
    dirty: bool = False  # uncommitted changes under trio_chat/ or bench/ when the run started
    started_at: str = ""  # UTC, ISO 8601

    def describe(self) -> str:
        pinning = "server on CPU 0, load on CPU 1" if self.pinned else "UNPINNED"
        versions = ", ".join(f"{name} {v}" for name, v in self.packages.items())
        return "\n".join(
            [
                f"machine:  {self.nproc} CPUs, {self.cpu_model}, {self.ram_mib} MiB RAM, "
                f"Linux {self.kernel}",
                f"versions: python {self.python}, {versions}",
                f"commit:   {self.commit}" + (" + uncommitted changes" if self.dirty else ""),
                f"pinning:  {pinning}" + ("" if self.taskset else " (taskset not found)"),
            ]
        )

    @property
    def pinned(self) -> bool:
        return self.taskset and self.nproc >= 2


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _ram_mib() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_commit() -> tuple[str, bool]:
    """The checked-out commit (short hash and subject) and whether the code measured differs
    from it: uncommitted changes to the server or the benchmark."""
    commit = _git("log", "-1", "--format=%h %s") or "unknown"
    status = _git("status", "--porcelain", "--", "trio_chat", "bench", "pyproject.toml")
    return commit, bool(status)


def current() -> Machine:
    commit, dirty = git_commit()
    return Machine(
        nproc=os.cpu_count() or 1,
        cpu_model=_cpu_model(),
        ram_mib=_ram_mib(),
        kernel=platform.release(),
        python=platform.python_version(),
        trio=_version("trio"),
        h11=_version("h11"),
        taskset=shutil.which("taskset") is not None,
        packages={name: _version(name) for name in PACKAGES},
        commit=commit,
        dirty=dirty,
        started_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
