"""Batch schedulers (Slurm, LSF, PBS) as an engine: size arrays, render their scripts, and the
four calls production makes: ``submit(script) -> id``, ``states(id)``, ``cancel(id)``, ``extend(id)``.

``slurm.py``/``lsf.py``/``pbs.py`` only know argv and answers. This module never opens the store,
takes no lock and writes no campaign file: the campaign side (:mod:`s2l2a.campaign.cluster`)
writes the manifests, scripts and array records, marks jobs running and folds what comes back.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s2l2a.campaign.failures import FailureClass
from s2l2a.campaign.jobspec import JobSpec
from s2l2a.campaign.layout import CLUSTER_DIR, LOGS_DIR
from s2l2a.clock import stamp
from s2l2a.engines.directives import (
    MAX_NODE_CORES,
    MAX_NODE_MEMORY_MB,
    MAX_RUN_LIMIT_S,
    check_job_size,
    check_options,
    check_path,
    check_seconds,
)
from s2l2a.engines.scheduler import ClusterOptions, ElementState, Scheduler, SchedulerError, hms
from s2l2a.engines.site import SiteInfo
from s2l2a.engines.sizing import ArrayPlan, Placement, plan_arrays
from s2l2a.errors import ConfigError
from s2l2a.registry import get_scheduler, scheduler_names
from s2l2a.units import parse_duration as parse_seconds

#: where each element's own scheduler output goes (relative to the campaign directory)
LOG_DIR = f"{LOGS_DIR}/{CLUSTER_DIR}"

#: every scheduler: s2l2a's and installed plug-ins' (s2l2a.registry)
SCHEDULERS = scheduler_names()

#: what a scheduler's answer may say before s2l2a takes it for unreadable (directives.py's ceilings)
_CEILINGS = {"run_limit_s": MAX_RUN_LIMIT_S, "node_cores": MAX_NODE_CORES, "node_memory_mb": MAX_NODE_MEMORY_MB}


def make_scheduler(name: str, options: ClusterOptions) -> Scheduler:
    """The registered scheduler ``name`` (imported on demand), built with ``options``."""
    return get_scheduler(name)(options)


def cluster_options(table: dict[str, Any] | None, scheduler: str | None = None, **overrides: Any) -> ClusterOptions:
    """ClusterOptions from the campaign's ``[cluster]`` table, then command-line overrides (None = unset).

    ``run_limit`` may be given as a duration string ("4h", "90m") as well as ``run_limit_s``.
    Every value is checked here (directives.check_options, with ``scheduler``'s name rules when
    given), so a bad one is refused in one line naming ``[cluster] key`` or ``--option`` before
    anything is written or submitted.
    """
    if table is not None and not isinstance(table, dict):
        raise ConfigError(f"[cluster]: must be a table, not {type(table).__name__}")
    from s2l2a.engines.scheduler import cluster_section

    spec = cluster_section()  # the shared keys and every scheduler's own, each with its option
    known = set(spec.keys())
    values: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for key, value in dict(table or {}).items():
        if key not in known:
            raise ConfigError(f"[cluster] {key}: unknown key (known: {', '.join(sorted(known))})")
        if key in ("run_limit", "run_limit_s"):
            labels["run_limit_s"] = f"[cluster] {key}"
            key, value = "run_limit_s", parse_duration(value, f"[cluster] {key}")
        values[key] = value
        labels.setdefault(key, f"[cluster] {key}")
    for key, value in overrides.items():
        if value is None:
            continue
        setting = spec.get(key)
        if setting is None:
            raise ConfigError(f"unknown cluster option {key!r}")
        values[key] = value
        labels[key] = setting.option or "--" + key.replace("_", "-")
    opts = ClusterOptions(**values)
    check_options(scheduler, opts, labels)
    opts.sources = dict(labels)  # what was set overrides what the scheduler says (ClusterEngine.plan)
    return opts


def parse_duration(value: Any, label: str = "run limit") -> int:
    """Whole seconds of a run limit in the one duration grammar (:mod:`s2l2a.units`), at most
    s2l2a's ceiling for a run limit and at least one second."""
    seconds = check_seconds(label, parse_seconds(value, label))
    if seconds < 1:
        raise ConfigError(f"{label}: {seconds} s is less than one second")
    return int(seconds)


# -- classification of elements that ended without a result file ----------------------------------

#: scheduler states of an element lost with its node (never a user's cancel), unless the scheduler
#: declares its own ``node_failure_states``: such a job is queued again while it has attempts left
NODE_FAILURE_STATES = ("NODE_FAIL", "BOOT_FAIL", "PREEMPTED")


def _scheduler_classes(scheduler: str) -> list[Any]:
    """The registered scheduler ``scheduler``; every registered one for a name not registered here
    (a record from another installation: any scheduler's words are better than none)."""
    if scheduler in scheduler_names():
        return [get_scheduler(scheduler)]
    return [get_scheduler(n) for n in scheduler_names()]


def node_failed(st: ElementState | None, scheduler: str = "") -> bool:
    """Whether the scheduler says the element ended because its node failed or was taken away."""
    if st is None:
        return False
    words = {w for cls in _scheduler_classes(scheduler)
             for w in getattr(cls, "node_failure_states", NODE_FAILURE_STATES)}
    return str(st.raw_state).upper() in words


def classify_element(st: ElementState | None, scheduler: str, output_tail: str = "") -> tuple[FailureClass, str]:
    """Failure class and a one-line why for an element that left no result file: the scheduler's
    own words first (``Scheduler.classify_end``: its states, reasons and the end of the element's
    output file, ``output_tail``), then the state alone."""
    if st is None:
        return FailureClass.KILLED, (f"{scheduler} no longer knows the element and it left no result file "
                                     "(killed before the worker could write one, or the node failed)")
    for cls in _scheduler_classes(scheduler):
        said = cls.classify_end(st, output_tail)
        if said is not None:
            return said
    text = f"{st.raw_state} {st.exit_code or ''} {st.reason or ''}".strip()
    if st.state == "cancelled":
        return FailureClass.KILLED, f"cancelled through {scheduler} ({text})"
    if st.state == "done":
        return FailureClass.OTHER, f"the element ended ({text}) without writing a result file"
    return FailureClass.KILLED, f"the element failed ({text}) before writing a result file"


def element_output_tail(folder: Path, array_name: str, job_id: str | None, index: int, size: int = 4096) -> str:
    """The end of an element's scheduler output files (``<folder>/logs/cluster/<array>_<id>_<index>.*``)."""
    base = str(job_id or "").split(".")[0].split("[")[0]
    text = []
    for p in sorted((Path(folder) / LOG_DIR).glob(f"{array_name}_{base}_{index}.*")):
        try:
            with open(p, "rb") as f:
                f.seek(max(0, p.stat().st_size - size))
                text.append(f.read().decode("utf-8", "replace"))
        except OSError:
            continue
    return "\n".join(text)


# -- the engine -----------------------------------------------------------------------------------

def _unused_stamp(campaign_dir: Path, base: str) -> str:
    """The time part of new array names, unique in the campaign: a second submission within the
    same second (a node failure resubmitted by --wait) must not overwrite the first array's
    record, manifest and script while its elements may still read them."""
    when = stamp()
    cluster = Path(campaign_dir) / CLUSTER_DIR
    candidate, n = when, 1
    while any(cluster.glob(f"s2l2a_{base}_{candidate}_*")):
        n += 1
        candidate = f"{when}-{n}"
    return candidate


@dataclass
class PreparedArray:
    """A rendered array before submission (what ``--dry-run`` prints)."""

    name: str
    elements: list[list[JobSpec]]
    script: str
    walltime_s: int


class ClusterEngine:
    """Job arrays on a batch scheduler: sizing and rendering, then ``submit``/``states``/
    ``cancel``/``extend`` by the scheduler's id of an array."""

    def __init__(self, scheduler: Scheduler, options: ClusterOptions | None = None,
                 python: str | None = None) -> None:
        self.scheduler = scheduler
        self.options = options or scheduler.options
        self.name = scheduler.name
        self.python = python or sys.executable
        self._site: SiteInfo | None = None

    # planning and rendering (no side effects)

    def site(self) -> SiteInfo:
        """What the scheduler says about the queue and its nodes (asked once per engine; never raises)."""
        if self._site is None:
            self._site = self.scheduler.read_site(self.options.queue)
        return self._site

    def _pick(self, key: str) -> tuple[int, str, bool]:
        """A sizing number, where it comes from, and whether the scheduler said it: the options
        when set there (``--run-limit``, ``[cluster] run_limit``), else the scheduler, else
        s2l2a's default (0: unknown)."""
        o = self.options
        value = getattr(o, key)
        if key in o.sources:
            return int(value), f"from {o.sources[key]}", False
        if value != getattr(ClusterOptions(), key):
            return int(value), "from the cluster options", False
        known = self.site().known(key)
        if known is not None and 0 < known[0] <= _CEILINGS.get(key, MAX_RUN_LIMIT_S):
            return known[0], f"from {known[1]}", True
        return int(value), "s2l2a's default" if value else "unknown", False

    def plan(self, specs: Sequence[JobSpec], per_product_s: float, *, upper_bound: bool = False) -> ArrayPlan:
        """Size the arrays of ``specs``. ``upper_bound``: ``per_product_s`` is a bound, not a
        measurement (the processor's figure or the job timeout before durations are measured):
        a queue shorter than it plans to its run limit instead of refusing."""
        o = self.options
        site = self.site()
        run_limit, run_from, _ = self._pick("run_limit_s")
        node_cores, cores_from, cores_told = self._pick("node_cores")
        node_mem, mem_from, mem_told = self._pick("node_memory_mb")
        queue = site.queue or o.queue or "(default queue)"
        lines = [f"run limit {hms(run_limit)} {run_from}"]
        if (limit := site.known("run_limit_s")) and run_limit > limit[0]:
            lines.append(f"note: that is above queue {queue}'s run limit {hms(limit[0])} ({limit[1]}): the scheduler "
                         "may refuse the array or stop its elements there")
        lines.append(f"node {node_cores or '?'} cores / {node_mem or '?'} MB {cores_from}" if cores_from == mem_from
                     else f"node {node_cores or '?'} cores {cores_from} / {node_mem or '?'} MB {mem_from}")
        nodes = site.known("nodes")
        if nodes:
            lines.append(f"{nodes[0]} usable node(s) in queue {queue} (from {nodes[1]})")
        lines += [f"scheduler: {note}" for note in site.notes]
        memory = max(s.job_settings().memory_mb for s in specs) if specs else o.memory_mb
        cores = max(s.job_settings().cores for s in specs) if specs else o.cores_per_job
        # the nodes' size, not this machine's, bounds a job: a login node is often smaller. What the
        # scheduler reports bounds a one-product job by its largest node (whole nodes: the smallest)
        per_product = o.placement != "whole_node"
        fit_cores = (site.largest_cores or node_cores) if cores_told and per_product else node_cores
        fit_mem = (site.largest_memory_mb or node_mem) if mem_told and per_product else node_mem
        cores, memory = check_job_size(cores, memory, node_cores=0 if cores_told else node_cores,
                                       node_memory_mb=0 if mem_told else node_mem,
                                       cores_label="cores per job ([resources] cores_per_job)",
                                       memory_label="memory per job (--memory-mb or [resources] memory_mb)")
        if (cores_told and cores > fit_cores) or (mem_told and memory > fit_mem):
            raise ConfigError(f"{cores} core(s) and {memory} MB per job do not fit a node of queue {queue}: "
                              f"{'the largest' if per_product else 'the smallest'} has {fit_cores} cores and "
                              f"{fit_mem} MB ({site.sources.get('node_cores', 'the scheduler')}); ask for less "
                              "(--memory-mb, [resources] cores_per_job) or another queue (--queue)")
        mem_limit = site.known("memory_limit_mb")
        if mem_limit and memory > mem_limit[0]:
            raise ConfigError(f"memory per job {memory} MB is above queue {queue}'s memory limit {mem_limit[0]} MB "
                              f"({mem_limit[1]}); ask for less (--memory-mb) or another queue (--queue)")
        if mem_limit:
            lines.append(f"queue memory limit {mem_limit[0]} MB per job (from {mem_limit[1]})")
        usable_mem = min(node_mem, mem_limit[0]) if mem_limit and node_mem else node_mem
        o.memory_mb, o.cores_per_job = memory, cores
        o.run_limit_s = run_limit  # the rendered walltime is checked against it
        budget = run_limit * 0.85 - o.startup_s
        if upper_bound and per_product_s > budget > 0:
            lines.append(f"note: products may take up to {per_product_s:.0f} s but the run limit leaves {budget:.0f} s "
                         "per product: slower ones will meet the run limit until durations are measured")
            per_product_s = budget
        timeout = max((s.job_settings().timeout_s for s in specs), default=0.0)
        placement = Placement(o.placement, node_cores, usable_mem)
        plan = plan_arrays([int(s.job_id) for s in specs], per_product_s, run_limit,
                           cores_per_job=cores, memory_mb_per_job=memory, placement=placement,
                           max_array_size=o.max_array_size, startup_s=o.startup_s, spread=o.max_concurrent,
                           nodes=nodes[0] if nodes else 0, timeout_s=timeout)
        plan.explanation = lines + plan.explanation
        return plan

    def prepare(self, campaign_dir: Path, specs: Sequence[JobSpec], plan: ArrayPlan,
                campaign_name: str = "", *, log_dir: str) -> list[PreparedArray]:
        """One rendered script per array of ``plan``; ``log_dir`` (relative to the campaign
        directory) receives the scheduler's output file of each element. No side effects."""
        by_id = {int(s.job_id): s for s in specs}
        # array names: ASCII letters, digits, '_', '.', '-' whatever the campaign is called
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", campaign_name or Path(campaign_dir).name)[:40].strip("._-")
        base = base or "campaign"
        when = _unused_stamp(Path(campaign_dir), base)
        camp = check_path("campaign directory", str(Path(campaign_dir).resolve()))
        python = check_path("python (the interpreter the worker runs with)", self.python)
        out = []
        for i, array in enumerate(plan.arrays, start=1):
            name = f"s2l2a_{base}_{when}_{i}"
            worker = [python, "-m", "s2l2a", "worker", "--campaign", camp, "--manifest", name]
            script = self.scheduler.render(
                campaign_name=campaign_name or base, array_name=name, n_elements=len(array),
                products_per_element=plan.products_per_element, parallel=plan.parallel,
                walltime_s=plan.element_walltime_s, log_dir=log_dir, worker_argv=worker)
            out.append(PreparedArray(name, [[by_id[j] for j in el] for el in array], script,
                                     plan.element_walltime_s))
        return out

    # what production calls

    def submit(self, script: Path, cwd: Path) -> str:
        """Submit one array script from ``cwd`` (the campaign directory); the scheduler's id."""
        return self.scheduler.submit(Path(script), cwd=Path(cwd))

    def states(self, job_id: str) -> dict[int, ElementState] | None:
        """The scheduler's view of an array's elements; None when the scheduler could not be asked
        ({} when it has forgotten the array)."""
        try:
            return self.scheduler.status(job_id)
        except SchedulerError:
            return None

    def usage(self, job_id: str) -> dict[int, Any] | None:
        """CPU time and peak memory per element as the scheduler's accounting knows them
        (:class:`s2l2a.campaign.usage.ElementUsage`); None when it could not be asked."""
        try:
            return self.scheduler.usage(job_id)
        except SchedulerError:
            return None

    def cancel(self, job_id: str) -> None:
        """Cancel a whole array (its elements then reconcile as killed)."""
        self.scheduler.cancel(job_id)

    def extend(self, job_id: str, walltime_s: int) -> None:
        """Raise an array's run limit (``bmod -W`` / ``scontrol update TimeLimit`` / ``qalter``)."""
        self.scheduler.extend(job_id, int(walltime_s))
