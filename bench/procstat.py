"""What the kernel says about a process: CPU time and resident memory, read from /proc."""

from __future__ import annotations

import contextlib
import os
import resource
from pathlib import Path
from typing import Final

CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")


def _parse_stat(stat: str) -> tuple[str, float]:
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return name, (utime + stime) / CLOCK_TICKS


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of every thread of ``pid`` so far (10 ms resolution)."""
    return _parse_stat(Path(f"/proc/{pid}/stat").read_text())[1]


def all_cpu_seconds() -> dict[int, tuple[str, float]]:
    """Name and CPU seconds of every process on the machine (kernel threads included)."""
    out: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError):  # the process is gone meanwhile
                out[int(entry.name)] = _parse_stat((entry / "stat").read_text())
    return out


def system_busy_seconds() -> tuple[float, float]:
    """CPU seconds all CPUs together have spent since boot (from /proc/stat): in processes
    (user, system, steal) and in interrupts (irq, softirq: mostly loopback networking, which
    the kernel charges to no process)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + steal) / CLOCK_TICKS, (irq + softirq) / CLOCK_TICKS


def status_kib(pid: int, key: str) -> int:
    """A ``kB`` line of /proc/PID/status, e.g. ``VmRSS`` or ``VmHWM``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == key:
            return int(value.split()[0])
    raise KeyError(f"{key} not in /proc/{pid}/status")


def rss_kib(pid: int) -> int:
    return status_kib(pid, "VmRSS")


def raise_nofile_limit() -> int:
    """Raise this process's open-file soft limit to its hard limit; return the new limit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds so far of each thread of ``pid``, by thread id."""
    out: dict[int, float] = {}
    for entry in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError):  # the thread is gone meanwhile
            out[int(entry.name)] = _parse_stat((entry / "stat").read_text())[1]
    return out
