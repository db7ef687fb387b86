"""Why a job failed: the classes a campaign records, retries by (``retry --class``) and reports.

A leaf module (no imports from s2l2a): processors, engines and schedulers all name failures with it.
"""

from __future__ import annotations

from enum import StrEnum


class FailureClass(StrEnum):
    """Why a job failed; drives ``retry --class`` and the status report."""

    TIMEOUT = "timeout"            # wall-clock limit hit, process group killed
    KILLED = "killed"              # killed by a signal (OOM killer, scheduler, user)
    OUT_OF_MEMORY = "out_of_memory"  # known to be memory (scheduler said so, MemoryError)
    DEM_ERROR = "dem_error"        # elevation model missing/unreadable
    MISSING_AUX = "missing_aux"    # ESA-CCI or other auxiliary data missing
    EMPTY_OUTPUT = "empty_output"  # exit 0 but no/empty/incomplete L2A
    BAD_INPUT = "bad_input"        # the L1C itself is broken
    DISK_FULL = "disk_full"        # no space left (ENOSPC, quota) on scratch, output or the campaign
    INTERRUPTED = "interrupted"    # the run driving it died (stale job requeued)
    OTHER = "other"
