"""Walltime-aware sizing of job arrays.

A queue kills an array element at its run limit, so every element must carry only as many
products as fit in that limit with a margin. Durations come from the campaign's history
(median of finished attempts, scaled up by a safety factor) or from a configured estimate.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from s2l2a import defaults
from s2l2a.errors import ConfigError


@dataclass(frozen=True)
class Placement:
    """How products are mapped onto array elements.

    ``per_product``: one product per element, the scheduler packs them by memory.
    ``whole_node``: each element owns an exclusive node and runs ``parallel`` products at a
    time with the local engine (the lab's ``-x`` with 16 images per node).
    """

    mode: str = "per_product"  # per_product | whole_node
    node_cores: int = 0
    node_memory_mb: int = 0

    def parallel(self, cores_per_job: int, memory_mb_per_job: int) -> int:
        if self.mode == "per_product":
            return 1
        if self.node_cores <= 0 or self.node_memory_mb <= 0:
            raise ConfigError("whole-node placement needs node_cores and node_memory_mb")
        k = min(self.node_cores // max(cores_per_job, 1), self.node_memory_mb // max(memory_mb_per_job, 1))
        if k < 1:
            raise ConfigError(
                f"a node of {self.node_cores} cores / {self.node_memory_mb} MB cannot hold one job "
                f"of {cores_per_job} cores / {memory_mb_per_job} MB")
        return k


@dataclass
class ArrayPlan:
    """The result of sizing: which jobs go to which element of which array, and why."""

    arrays: list[list[list[int]]]          # array -> element -> job ids
    element_walltime_s: int
    per_product_s: float
    parallel: int
    products_per_element: int
    explanation: list[str] = field(default_factory=list)

    @property
    def n_elements(self) -> int:
        return sum(len(a) for a in self.arrays)


def estimate_duration(history_s: list[float], configured_s: float, safety: float = 1.25) -> tuple[float, str]:
    """Per-product duration to plan with, and where it came from.

    Uses the median of at least 3 measured durations, scaled by ``safety`` (runs vary with
    the scene's cloud and land cover); otherwise the configured estimate.
    """
    usable = [d for d in history_s if d and d > 0]
    if len(usable) >= 3:
        med = statistics.median(usable)
        p90 = sorted(usable)[max(0, math.ceil(0.9 * len(usable)) - 1)]
        est = max(med * safety, p90)
        return est, f"measured: median {med:.0f} s, p90 {p90:.0f} s over {len(usable)} runs, planned {est:.0f} s"
    return float(configured_s), f"configured estimate {configured_s:.0f} s (fewer than 3 measured runs)"


def plan_arrays(job_ids: list[int], per_product_s: float, run_limit_s: float, *,
                cores_per_job: int = defaults.CORES_PER_JOB, memory_mb_per_job: int = defaults.MEMORY_MB,
                placement: Placement | None = None, max_array_size: int = 1000,
                margin: float = 0.85, startup_s: float = 60.0, spread: int = 0) -> ArrayPlan:
    """Split ``job_ids`` into arrays whose elements each fit the queue's run limit.

    ``margin`` keeps each element's expected work under that fraction of the limit;
    ``startup_s`` covers node start, Python import and result folding per element.
    ``spread`` (whole-node mode, e.g. the %K throttle): use at least that many nodes when there
    are enough products, instead of filling a few nodes for the whole run limit.
    """
    placement = placement or Placement()
    if run_limit_s <= 0:
        raise ConfigError("queue run limit must be positive")
    budget = run_limit_s * margin - startup_s
    if per_product_s > budget:
        raise ConfigError(
            f"one product takes ~{per_product_s:.0f} s but the run limit {run_limit_s:.0f} s leaves only "
            f"{budget:.0f} s after margin; ask for a longer queue (-W/--time) or fewer cores per job")
    k = placement.parallel(cores_per_job, memory_mb_per_job)
    rounds = max(1, int(budget // per_product_s)) if placement.mode == "whole_node" else 1
    per_element = k * rounds
    if placement.mode == "whole_node" and spread > 1 and job_ids:
        wanted = min(spread, math.ceil(len(job_ids) / k))  # never less than k products per node
        per_element = min(per_element, max(k, math.ceil(len(job_ids) / wanted)))
    elements = [job_ids[i:i + per_element] for i in range(0, len(job_ids), per_element)]
    arrays = [elements[i:i + max_array_size] for i in range(0, len(elements), max_array_size)]
    per_element = min(per_element, max(len(job_ids), 1))
    used_rounds = math.ceil(per_element / k)
    walltime = int(math.ceil(min(run_limit_s, startup_s + used_rounds * per_product_s / margin)))
    expl = [
        f"{len(job_ids)} products, ~{per_product_s:.0f} s each, queue run limit {run_limit_s:.0f} s (margin {margin:.0%})",
        (f"placement per product: 1 product per element, {cores_per_job} cores and {memory_mb_per_job} MB each"
         if placement.mode == "per_product" else
         f"placement whole node: {k} products at once per node (min of {placement.node_cores} cores / "
         f"{cores_per_job} and {placement.node_memory_mb} MB / {memory_mb_per_job} MB); up to {rounds} rounds fit "
         f"the limit" + (f", spread over up to {spread} nodes at once" if spread > 1 else "")),
        f"{per_element} products per element -> {len(elements)} elements in {len(arrays)} array(s) "
        f"of at most {max_array_size}; element walltime {walltime} s",
    ]
    return ArrayPlan(arrays=arrays, element_walltime_s=walltime, per_product_s=per_product_s,
                     parallel=k, products_per_element=per_element, explanation=expl)


#: proposals never go below this (a Python worker with GDAL loaded), nor are they made from fewer peaks
MEMORY_FLOOR_MB = 1024
MEMORY_MIN_PEAKS = 3


def propose_memory_mb(peaks_mb: list[float], configured_mb: int, *, margin: float = 1.2,
                      step_mb: int = 256, floor_mb: int = MEMORY_FLOOR_MB) -> tuple[int | None, str]:
    """``memory_mb`` for the next arrays from measured peaks (MB per product), and a line saying
    why: the p95 peak times ``margin``, rounded up to ``step_mb``, at least ``floor_mb``. None
    (and why) with fewer than 3 usable peaks. A proposal only: the caller shows it, the user sets
    ``[cluster] memory_mb``."""
    usable = sorted(p for p in peaks_mb if isinstance(p, int | float) and math.isfinite(p) and p > 0)
    if len(usable) < MEMORY_MIN_PEAKS:
        return None, (f"memory per product: {len(usable)} measured peak(s), fewer than {MEMORY_MIN_PEAKS}; "
                      f"memory_mb {configured_mb} as configured")
    p95 = usable[max(0, math.ceil(0.95 * len(usable)) - 1)]
    proposed = max(int(floor_mb), int(math.ceil(p95 * margin / step_mb)) * step_mb)
    peak = f"{p95 / 1024:.1f} GB" if p95 >= 1024 else f"{p95:.0f} MB"
    where = f"from p95 peak {peak} over {len(usable)} products (x{margin:g}, at least {floor_mb} MB)"
    if proposed == int(configured_mb):
        return proposed, f"memory per product: memory_mb {configured_mb} is what the measured peaks propose ({where})"
    return proposed, (f"memory per product: proposed memory_mb {proposed} {where}; configured {configured_mb}; "
                      f"set [cluster] memory_mb (or --memory-mb) to use it")
