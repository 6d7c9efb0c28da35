"""The machine and software a benchmark ran on, printed with every result."""

from __future__ import annotations

import os
import platform
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path


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

    def describe(self) -> str:
        pinning = "server on CPU 0, load on CPU 1" if self.pinned else "UNPINNED"
        return "\n".join(
            [
                f"machine:  {self.nproc} CPUs, {self.cpu_model}, {self.ram_mib} MiB RAM, "
                f"Linux {self.kernel}",
                f"versions: python {self.python}, trio {self.trio}, h11 {self.h11}",
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


def current() -> Machine:
    return Machine(
        nproc=os.cpu_count() or 1,
        cpu_model=_cpu_model(),
        ram_mib=_ram_mib(),
        kernel=platform.release(),
        python=platform.python_version(),
        trio=_version("trio"),
        h11=_version("h11"),
        taskset=shutil.which("taskset") is not None,
    )
