"""Walltime-aware sizing of job arrays.

A queue kills an array element at its run limit, so every element must carry only as many
products as fit in that limit with a margin, and no more than a few hours' work (a lost element
must cost little): the campaign is spread over the nodes at hand rather than packed into the
fewest elements. Durations come from the campaign's history (p90 of finished attempts, scaled
up by a safety factor) once there is some, before that from a configured estimate, the
processor's declared upper bound or the job timeout.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from s2l2a import defaults
from s2l2a.errors import ConfigError

#: the longest an element is planned for whatever the queue allows: an element lost to a node
#: failure, a preemption or a wrong estimate costs at most this much of one node's work
ELEMENT_CAP_S = 4 * 3600
#: nodes a whole-node campaign is spread over when neither --max-concurrent nor the scheduler says
DEFAULT_NODES = 10
#: measured durations needed before they replace the processor's figure or the job timeout
MIN_MEASURED = 3
#: the worker stops a product at its job timeout; this covers stopping it and writing its result
TIMEOUT_GRACE_S = 120
#: per product when nothing else is known (no history, estimate, processor figure or timeout)
DEFAULT_ESTIMATE_S = 1800.0


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
    campaign_s: float = 0.0               # expected campaign wall time of this shape (queue waits not counted)
    alternative: str = ""                 # another shape and its expected wall time, for --dry-run

    @property
    def n_elements(self) -> int:
        return sum(len(a) for a in self.arrays)


def estimate_duration(history_s: list[float], configured_s: float | None = None, safety: float = 1.25, *,
                      timeout_s: float | None = None, processor_s: float | None = None,
                      processor: str = "") -> tuple[float, str]:
    """Per-product duration to plan with, and where it came from.

    With at least :data:`MIN_MEASURED` measured durations: their p90 times ``safety`` (runs vary
    with the scene's cloud and land cover). Before that, the first arrays must not kill slow
    products at the walltime: ``configured_s`` ([cluster] estimate_s) when set, else the
    processor's declared upper bound (``processor_s``, ProcessorPlugin.max_duration_s), else the
    job timeout, which no product outlives (the worker stops it). Nothing is planned longer
    than the job timeout.
    """
    usable = [d for d in history_s if d and d > 0]
    cap = f"; capped at the job timeout {timeout_s:.0f} s" if timeout_s else ""
    if len(usable) >= MIN_MEASURED:
        med = statistics.median(usable)
        p90 = sorted(usable)[max(0, math.ceil(0.9 * len(usable)) - 1)]
        est = min(p90 * safety, timeout_s) if timeout_s else p90 * safety
        return est, (f"measured: median {med:.0f} s, p90 {p90:.0f} s over {len(usable)} runs; planned p90 x "
                     f"{safety:g} = {est:.0f} s" + (cap if timeout_s and p90 * safety > timeout_s else ""))
    few = f"{len(usable)} of {MIN_MEASURED} measured runs so far"
    if configured_s:
        return float(configured_s), f"configured estimate {configured_s:.0f} s ([cluster] estimate_s; {few})"
    if processor_s:
        est = min(processor_s, timeout_s) if timeout_s else processor_s
        return float(est), (f"{processor or 'the processor'}'s declared upper bound {processor_s:.0f} s per product "
                            f"({few})" + (cap if timeout_s and processor_s > timeout_s else ""))
    if timeout_s:
        return float(timeout_s), f"the job timeout {timeout_s:.0f} s ([resources] timeout_s; {few})"
    return DEFAULT_ESTIMATE_S, f"s2l2a's default estimate {DEFAULT_ESTIMATE_S:.0f} s ({few})"


def duration_text(seconds: float) -> str:
    """``36 min``, ``4.1 h``, ``8.2 d``: campaign and element times as people read them."""
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _shape(n: int, k: int, rounds: int, at_once: int, per_product_s: float, startup_s: float) -> tuple[int, float, float]:
    """(elements, seconds per element, campaign seconds) of ``n`` products, ``k`` at once per
    element for ``rounds`` rounds, ``at_once`` elements at a time (queue waits not counted)."""
    per_element = max(1, min(k * rounds, n))
    elements = math.ceil(n / per_element) if n else 0
    element_s = startup_s + math.ceil(per_element / k) * per_product_s
    return elements, element_s, math.ceil(elements / max(at_once, 1)) * element_s


def plan_arrays(job_ids: list[int], per_product_s: float, run_limit_s: float, *,
                cores_per_job: int = defaults.CORES_PER_JOB, memory_mb_per_job: int = defaults.MEMORY_MB,
                placement: Placement | None = None, max_array_size: int = 1000,
                margin: float = 0.85, startup_s: float = 60.0, spread: int = 0, nodes: int = 0,
                element_cap_s: float = ELEMENT_CAP_S, timeout_s: float = 0.0) -> ArrayPlan:
    """Split ``job_ids`` into arrays whose elements each fit the queue's run limit, shaped for
    the shortest campaign rather than the fewest elements.

    ``margin`` keeps each element's expected work under that fraction of the limit;
    ``startup_s`` covers node start, Python import and result folding per element.
    Whole-node placement spreads the products over ``spread`` nodes (--max-concurrent, the %K
    throttle) when given, else over the ``nodes`` the scheduler reports for the queue, else over
    :data:`DEFAULT_NODES`; no element is planned for more than ``element_cap_s`` (nor the run
    limit), so a failed or preempted element costs little. ``timeout_s`` (the job timeout):
    no product needs more than that in an element.
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
    n = len(job_ids)
    # what one round of products may take in the walltime: the estimate with its margin, never
    # more than the job timeout (the worker stops a product there) and the time to write its result
    round_s = per_product_s / margin
    if timeout_s:
        round_s = min(round_s, timeout_s + TIMEOUT_GRACE_S)
    width = spread or nodes or DEFAULT_NODES
    width_from = ("--max-concurrent" if spread else "the queue's nodes, as the scheduler reports them" if nodes
                  else f"s2l2a's default {DEFAULT_NODES}; neither --max-concurrent nor the scheduler said")
    if placement.mode == "per_product" and not spread and nodes and placement.node_cores and placement.node_memory_mb:
        # per product, the scheduler packs elements onto the nodes by cores and memory
        width = nodes * max(1, min(placement.node_cores // max(cores_per_job, 1),
                                   placement.node_memory_mb // max(memory_mb_per_job, 1)))
        width_from = f"{nodes} node(s) of the queue, as many as fit each"
    rounds_fill = max(1, int(budget // per_product_s))   # the fewest elements: fill the run limit
    rounds_cap = 1
    if placement.mode == "whole_node":
        cap_budget = min(run_limit_s, element_cap_s) * margin - startup_s
        rounds_cap = max(1, int(cap_budget // per_product_s))
        # as few waves of elements over the nodes as the cap allows, each wave as short as it can be
        total = math.ceil(n / k)
        waves_needed = max(1, math.ceil(total / (width * rounds_cap)))
        rounds = max(1, min(rounds_cap, math.ceil(total / (width * waves_needed))))
    else:
        rounds = 1
    per_element = k * rounds
    elements = [job_ids[i:i + per_element] for i in range(0, n, per_element)]
    arrays = [elements[i:i + max_array_size] for i in range(0, len(elements), max_array_size)]
    per_element = min(per_element, max(n, 1))
    used_rounds = math.ceil(per_element / k)
    walltime = int(math.ceil(min(run_limit_s, startup_s + used_rounds * round_s)))
    # the expected campaign wall time of this shape, next to one alternative
    _, element_s, campaign_s = _shape(n, k, rounds, width, per_product_s, startup_s)
    waves = math.ceil(len(elements) / width) if elements else 0
    if placement.mode == "whole_node" and k * rounds_fill > per_element < n:
        alt_n, alt_el, alt_s = _shape(n, k, rounds_fill, width, per_product_s, startup_s)
        alternative = (f"the fewest elements (fill the run limit, {min(k * rounds_fill, n)} products each): {alt_n} "
                       f"element(s) of ~{duration_text(alt_el)} -> ~{duration_text(alt_s)}")
    elif placement.mode == "whole_node":
        alt_rounds = max(1, min(rounds_cap, math.ceil(math.ceil(n / k) / (2 * width))))
        alt_n, alt_el, alt_s = _shape(n, k, alt_rounds, 2 * width, per_product_s, startup_s)
        alternative = (f"twice the nodes ({2 * width}): {alt_n} element(s) of ~{duration_text(alt_el)} "
                       f"-> ~{duration_text(alt_s)}")
    else:
        _, _, alt_s = _shape(n, k, 1, 2 * width, per_product_s, startup_s)
        alternative = f"twice as many elements at once ({2 * width}) -> ~{duration_text(alt_s)}"
    expl = [
        f"{n} products, ~{per_product_s:.0f} s each, queue run limit {run_limit_s:.0f} s (margin {margin:.0%})",
        (f"placement per product: 1 product per element, {cores_per_job} cores and {memory_mb_per_job} MB each"
         if placement.mode == "per_product" else
         f"placement whole node: {k} products at once per node (min of {placement.node_cores} cores / "
         f"{cores_per_job} and {placement.node_memory_mb} MB / {memory_mb_per_job} MB); spread over {width} "
         f"node(s) ({width_from}), at most {rounds_cap} round(s) per element (element walltime at most "
         f"{duration_text(min(run_limit_s, element_cap_s))}: a lost element costs little)"),
        f"{per_element} products per element -> {len(elements)} elements in {len(arrays)} array(s) "
        f"of at most {max_array_size}; element walltime {walltime} s",
        f"expected campaign wall time ~{duration_text(campaign_s)}: {len(elements)} element(s), up to {width} at once "
        f"({width_from}), {waves} wave(s) of ~{duration_text(element_s)} (queue waits not counted)",
        f"alternative: {alternative}",
    ]
    return ArrayPlan(arrays=arrays, element_walltime_s=walltime, per_product_s=per_product_s,
                     parallel=k, products_per_element=per_element, explanation=expl,
                     campaign_s=campaign_s, alternative=alternative)


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
