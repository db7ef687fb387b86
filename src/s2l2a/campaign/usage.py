"""What a job and an array element used: CPU seconds and peak memory, measured by the worker.

The worker's own measurement works on every scheduler and locally, so it comes first; a
scheduler's accounting (LSF's ``bjobs``, its output file's summary, Slurm's ``sacct``/``sstat``) is
read beside it where it exists (:meth:`s2l2a.engines.scheduler.Scheduler.usage`), for elements
still running and for those killed before the worker could write anything.

Per job (:class:`Meter`, around :func:`s2l2a.campaign.execute.run_job`): CPU is ``getrusage`` of
the process and its waited-for children, before and after. Peak memory is the process's
high-water mark since the job began (Linux: ``VmHWM`` after resetting it through
``/proc/self/clear_refs``; elsewhere ``ru_maxrss``, the process's lifetime peak), and, when
children ran during the job (Sen2Cor), the children's ``ru_maxrss``: the largest child of the
process so far, exact for an element's first product and an upper bound for later ones.

Per element (:func:`element_meter_done`, by ``s2l2a worker``): the whole process and its
children at the end, written to ``results/elements/<array>.<index>.json``.
"""

from __future__ import annotations

import json
import math
import resource
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from s2l2a.campaign.layout import RESULTS_DIR
from s2l2a.fsutil import write_json_atomic

#: per-element usage records, beside (not among) the per-job result files that are folded
ELEMENTS_DIR = "elements"
#: where the numbers came from, as status shows them
WORKER = "worker"


def _maxrss_mb(who: int) -> float:
    """``ru_maxrss`` in MB: KB on Linux, bytes on macOS."""
    raw = resource.getrusage(who).ru_maxrss
    return raw / 2**20 if sys.platform == "darwin" else raw / 1024


def cpu_seconds() -> tuple[float, float]:
    """(this process, its waited-for children): user + system CPU seconds."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def _vm_hwm_mb() -> float | None:
    """VmHWM of /proc/self/status in MB (None where there is no /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def reset_peak() -> bool:
    """Reset the process's memory high-water mark (Linux 4.0+); whether it could."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_self_mb() -> float:
    """The process's memory high-water mark in MB (since the last :func:`reset_peak` on Linux)."""
    hwm = _vm_hwm_mb()
    return hwm if hwm is not None else _maxrss_mb(resource.RUSAGE_SELF)


@dataclass
class Meter:
    """Started before a job, read after it: (CPU seconds, peak MB) of that job."""

    cpu0: float
    kids0: float

    @classmethod
    def start(cls) -> Meter:
        reset_peak()
        me, kids = cpu_seconds()
        return cls(me, kids)

    def read(self) -> tuple[float, float]:
        me, kids = cpu_seconds()
        peak = peak_self_mb()
        if kids > self.kids0:  # children ran and were waited for during the job
            peak = max(peak, _maxrss_mb(resource.RUSAGE_CHILDREN))
        return round(me - self.cpu0 + kids - self.kids0, 3), round(peak, 1)


# -- per element --------------------------------------------------------------------------------

@dataclass
class ElementUsage:
    """What one array element used, and who measured it (``worker`` or a scheduler's words)."""

    index: int
    cpu_s: float | None = None
    peak_mb: float | None = None
    source: str = WORKER
    state: str | None = None        # the scheduler's state or the jobs' (done, failed, running)
    wall_s: float | None = None
    mem_mb: float | None = None     # memory in use now (a running element, when no peak is known)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def elements_dir(campaign_dir: Path | str) -> Path:
    return Path(campaign_dir) / RESULTS_DIR / ELEMENTS_DIR


def element_path(campaign_dir: Path | str, array: str, index: int) -> Path:
    return elements_dir(campaign_dir) / f"{array}.{int(index)}.json"


def element_meter_done(campaign_dir: Path | str, array: str, index: int, t0: float, state: str) -> Path | None:
    """Write the element's own usage (the whole worker process and its children, ``t0`` its
    monotonic start) as ``results/elements/<array>.<index>.json``; None when it cannot be written."""
    me, kids = cpu_seconds()
    peak = max(peak_self_mb(), _maxrss_mb(resource.RUSAGE_CHILDREN))
    usage = ElementUsage(int(index), round(me + kids, 3), round(peak, 1), WORKER, state,
                         round(time.monotonic() - t0, 3))
    try:
        return write_json_atomic(element_path(campaign_dir, array, index), usage.to_dict(), sort_keys=True,
                                 mkdir=True)
    except OSError:
        return None  # the per-job results matter; this record is a nicety


def read_elements(campaign_dir: Path | str, array: str) -> dict[int, ElementUsage]:
    """The worker-written usage of each element of ``array`` (unreadable records are skipped)."""
    out: dict[int, ElementUsage] = {}
    folder = elements_dir(campaign_dir)
    if not folder.is_dir():
        return out
    for p in folder.glob(f"{array}.*.json"):
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            u = ElementUsage(int(data["index"]), _number(data.get("cpu_s")), _number(data.get("peak_mb")),
                             WORKER, str(data.get("state") or "") or None, _number(data.get("wall_s")))
        except (OSError, ValueError, TypeError, KeyError):
            continue
        if p.name == f"{array}.{u.index}.json":
            out[u.index] = u
    return out


def _number(value: Any) -> float | None:
    """A finite non-negative number, else None (a record is data from a node, not trusted code)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        v = float(value)
    except ValueError:
        return None
    return v if math.isfinite(v) and v >= 0 else None


# -- reading them back ----------------------------------------------------------------------------

def measured_peaks(attempts: list[Any], limit: int = 500) -> list[float]:
    """Peak memory (MB) of the newest ``limit`` successful attempts that carry one."""
    out = []
    for a in reversed(attempts):
        peak = _number(getattr(a, "peak_mb", None))
        if a.state == "done" and peak:
            out.append(peak)
            if len(out) >= limit:
                break
    return out


def mb(value: float | None) -> str:
    """812 -> "812 MB", 2150 -> "2.1 GB", None -> "-"."""
    if value is None:
        return "-"
    return f"{value / 1024:.1f} GB" if value >= 1024 else f"{value:.0f} MB"


def cpu(value: float | None) -> str:
    """CPU seconds as status shows them: "0.8 s", "74 s", "1h 02m"."""
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.1f} s"
    if value < 600:
        return f"{value:.0f} s"
    from s2l2a.campaign.progress import human_duration

    return human_duration(value)


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0 < q <= 1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]
