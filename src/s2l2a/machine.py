"""What this machine offers a run: the cores this process may use and its memory.

Settings warn when one job asks for more, the preflight check refuses a local run that cannot
fit, and the local engine sizes its worker pool from it; all three must agree, so they ask here.
Batch systems confine a job with CPU affinity and cgroups, so both are respected.
"""

from __future__ import annotations

import os
from pathlib import Path


def machine_resources() -> tuple[int, int]:
    """Cores this process may use and total memory in MB (cgroup limits respected where set)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    import psutil

    memory_mb = int(psutil.virtual_memory().total // 2**20)
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            memory_mb = min(memory_mb, int(text) // 2**20)
        break
    return max(cores, 1), max(memory_mb, 1)
