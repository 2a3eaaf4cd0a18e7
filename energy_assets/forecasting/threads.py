"""How many threads a LightGBM fit or prediction can use without waiting on other work."""

from __future__ import annotations

import os
from pathlib import Path


def free_cores() -> int:
    """Cores this process may use that no other process's task is running on now; at least 1.

    On Linux, the runnable tasks of /proc/loadavg less this process's own (read at the moment of the
    call, so a fit started while other work runs takes fewer threads); elsewhere the 1-minute load average.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        busy = _runnable_tasks() - _own_runnable_tasks()
    except (OSError, ValueError, IndexError):
        busy = round(os.getloadavg()[0])
    return max(1, min(cores, cores - busy))


def _runnable_tasks() -> int:
    # Fourth field: "runnable/total" scheduling entities, this process's running threads included.
    return int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])


def _own_runnable_tasks() -> int:
    running = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            # The state follows the command name, which is in parentheses and may hold spaces.
            running += (task / "stat").read_text().rsplit(")", 1)[1].split()[0] == "R"
        except OSError:  # the thread ended while we looked
            continue
    return running
