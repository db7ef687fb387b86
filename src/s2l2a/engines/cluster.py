"""Campaigns on batch schedulers (Slurm, LSF, PBS): submit job arrays, reconcile what came back.

The flow is the same for every scheduler; ``slurm.py``/``lsf.py``/``pbs.py`` only know argv and
answers. Submitting writes, per array:

- ``manifests/<array>.json``: element N runs these JobSpecs (read by ``s2l2a worker``),
- ``cluster/<array>.sh``: the rendered script, submitted from the campaign directory,
- ``cluster/<array>.json``: the scheduler's array id, which job sits in which element and with
  which attempt number (an :class:`ArrayRecord`),

and marks each job ``running`` with an attempt whose host is the scheduler's element id
(``slurm:1234[3]``): the state machine needs no extra state, and a job on the cluster is visibly
not a stale local one. Reconciling folds result files first (they are the truth: queues forget
finished jobs) and asks the scheduler second, only for jobs that have no result file: an element
that ended without one failed, with the class the scheduler's state, exit code or reason gives.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from s2l2a.campaign.execute import fold_outcome, fold_results, job_log_path
from s2l2a.campaign.failures import FailureClass
from s2l2a.campaign.jobspec import (
    MANIFESTS_DIR,
    JobOutcome,
    JobSpec,
    result_path,
    write_json_atomic,
    write_manifest,
)
from s2l2a.clock import stamp, utcnow
from s2l2a.engines.directives import check_job_size, check_options, check_path, check_seconds
from s2l2a.engines.scheduler import ClusterOptions, ElementState, Scheduler, SchedulerError
from s2l2a.engines.sizing import ArrayPlan, Placement, estimate_duration, plan_arrays
from s2l2a.errors import CampaignError, ConfigError
from s2l2a.units import parse_duration as parse_seconds

CLUSTER_DIR = "cluster"
LOG_DIR = "logs/cluster"

def _registered() -> tuple[str, ...]:
    from s2l2a.registry import scheduler_names

    return scheduler_names()


#: every scheduler: s2l2a's and installed plug-ins' (s2l2a.registry)
SCHEDULERS = _registered()


def make_scheduler(name: str, options: ClusterOptions) -> Scheduler:
    """The registered scheduler ``name`` (imported on demand), built with ``options``."""
    from s2l2a.registry import get_scheduler

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
    return opts


def parse_duration(value: Any, label: str = "run limit") -> int:
    """Whole seconds of a run limit in the one duration grammar (:mod:`s2l2a.units`), at most
    s2l2a's ceiling for a run limit and at least one second."""
    seconds = check_seconds(label, parse_seconds(value, label))
    if seconds < 1:
        raise ConfigError(f"{label}: {seconds} s is less than one second")
    return int(seconds)


# -- records of submitted arrays ----------------------------------------------------------------

@dataclass
class ArrayRecord:
    """One submitted array, as ``cluster/<name>.json``: enough to reconcile after the submitting
    process has gone and after the scheduler has forgotten the array."""

    name: str
    scheduler: str
    job_id: str | None
    manifest: str                               # relative to the campaign directory
    script: str
    elements: list[list[int]]                   # element index - 1 -> campaign job ids
    attempts: dict[str, int] = field(default_factory=dict)   # job id -> attempt number
    submitted: str = ""
    closed: bool = False                        # every job's attempt is folded
    walltime_s: int = 0
    campaign_dir: Path | None = field(default=None, repr=False, compare=False)

    def element_of(self, job_id: int) -> int:
        for i, jobs in enumerate(self.elements, start=1):
            if job_id in jobs:
                return i
        raise KeyError(job_id)

    def element_id(self, index: int) -> str:
        """How the scheduler names one element (for messages)."""
        return f"{self.scheduler}:{self.job_id}[{index}]"

    def host(self, index: int) -> str:
        """The attempt's host: known before submission, mapped to the job id by this record."""
        return f"{self.scheduler}:{self.name}[{index}]"

    def save(self, campaign_dir: Path) -> Path:
        data = {k: v for k, v in asdict(self).items() if k != "campaign_dir"}
        return write_json_atomic(Path(campaign_dir) / CLUSTER_DIR / f"{self.name}.json", data)

    @classmethod
    def load(cls, path: Path) -> ArrayRecord:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            names = {f.name for f in fields(cls)} - {"campaign_dir"}
            rec = cls(**{k: v for k, v in data.items() if k in names})
            # its name becomes file names and its job id the scheduler commands' arguments
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", str(rec.name)) or rec.scheduler not in SCHEDULERS:
                raise ValueError(f"bad array name or scheduler {str(rec.name)[:40]!r}/{str(rec.scheduler)[:10]!r}")
            if rec.job_id is not None and not re.fullmatch(r"[0-9][A-Za-z0-9_.\[\]-]*", str(rec.job_id)):
                raise ValueError(f"bad job id {str(rec.job_id)[:40]!r}")
        except (OSError, ValueError, TypeError) as e:
            raise CampaignError(f"unreadable cluster record: {e}", path) from None
        rec.campaign_dir = Path(path).parent.parent
        return rec


def load_records(campaign_dir: Path, open_only: bool = False) -> list[ArrayRecord]:
    """Every array record of the campaign, oldest first."""
    cdir = Path(campaign_dir) / CLUSTER_DIR
    if not cdir.is_dir():
        return []
    recs = [ArrayRecord.load(p) for p in sorted(cdir.glob("*.json"))]
    recs.sort(key=lambda r: (r.submitted, r.name))
    return [r for r in recs if not (open_only and r.closed)]


# -- classification of elements that ended without a result file ----------------------------------

_MEMORY_WORDS = ("exceeded job memory limit", "exceeded memory limit", "oom-kill", "out of memory",
                 "term_memlimit", "memory usage limit", "mem limit", "exceeded resource mem", "exceeded resource pmem")
_TIME_WORDS = ("due to time limit", "term_runlimit", "walltime", "run limit")


def classify_element(st: ElementState | None, scheduler: str, output_tail: str = "") -> tuple[FailureClass, str]:
    """Failure class and a one-line why for an element that left no result file.

    ``output_tail`` is the end of the element's own scheduler output file: where Slurm's
    slurmstepd and LSF's sbatchd say why they killed it when the state alone is ambiguous
    (a batch shell that outlives its killed worker exits 137 and reads like any SIGKILL).
    """
    reason = (st.reason or "") if st is not None else ""
    tail = f"{output_tail} {reason}".lower()  # PBS says it in the job's comment
    if st is not None and st.state in ("failed", "cancelled"):
        said = " ".join(x for x in (st.raw_state, st.exit_code or "", reason) if x)
        if any(w in tail for w in _MEMORY_WORDS):
            return FailureClass.OUT_OF_MEMORY, (f"{scheduler} killed it for exceeding its memory limit "
                                                f"({said}; see its output file)")
        if any(w in tail for w in _TIME_WORDS) and st.state != "cancelled":
            return FailureClass.TIMEOUT, f"{scheduler} stopped it at its run limit ({said}; see its output file)"
    if st is None:
        return FailureClass.KILLED, (f"{scheduler} no longer knows the element and it left no result file "
                                     "(killed before the worker could write one, or the node failed)")
    raw, code, reason = st.raw_state, st.exit_code or "", st.reason or ""
    text = f"{raw} {code} {reason}".strip()
    upper = f"{raw} {reason}".upper()
    if "OUT_OF_MEMORY" in upper or "OUTOFMEMORY" in upper or "MEMLIMIT" in upper or "MEMORY" in upper:
        return FailureClass.OUT_OF_MEMORY, f"{scheduler} killed it for exceeding its memory limit ({text})"
    if raw == "FAILED" and (code.endswith(":9") or code.split(":")[0] == "137"):
        # Slurm's over-memory kill (JobAcctGatherParams=OverMemoryKill) shows as SIGKILL
        return FailureClass.OUT_OF_MEMORY, f"killed by SIGKILL, Slurm's memory enforcement ({text})"
    if "TIMEOUT" in upper or "RUNLIMIT" in upper or "DEADLINE" in upper or "WALLTIME" in upper:
        return FailureClass.TIMEOUT, f"{scheduler} stopped it at its run limit ({text})"
    if st.state == "cancelled" or "TERM_OWNER" in upper or "TERM_ADMIN" in upper:
        return FailureClass.KILLED, f"cancelled through {scheduler} ({text})"
    if st.state == "done":
        return FailureClass.OTHER, f"the element ended ({text}) without writing a result file"
    return FailureClass.KILLED, f"the element failed ({text}) before writing a result file"


# -- the engine -----------------------------------------------------------------------------------

@dataclass
class PreparedArray:
    """A rendered array before submission (what ``--dry-run`` prints)."""

    name: str
    elements: list[list[JobSpec]]
    script: str
    walltime_s: int


class ClusterEngine:
    """Job arrays on a batch scheduler; the Engine contract plus reconciliation helpers.

    The engine does not open the store: :meth:`submit` calls ``on_submitted(spec, host)`` for each
    job once its array is accepted, and :func:`reconcile` is where outcomes reach the store.
    """

    def __init__(self, scheduler: Scheduler, options: ClusterOptions | None = None,
                 python: str | None = None) -> None:
        self.scheduler = scheduler
        self.options = options or scheduler.options
        self.name = scheduler.name
        self.python = python or sys.executable

    # planning and rendering (no side effects)

    def plan(self, specs: Sequence[JobSpec], per_product_s: float) -> ArrayPlan:
        o = self.options
        memory = max(s.job_settings().memory_mb for s in specs) if specs else o.memory_mb
        cores = max(s.job_settings().cores for s in specs) if specs else o.cores_per_job
        # the nodes' size, not this machine's, bounds a job: a login node is often smaller
        cores, memory = check_job_size(cores, memory, node_cores=o.node_cores, node_memory_mb=o.node_memory_mb,
                                       cores_label="cores per job ([resources] cores_per_job)",
                                       memory_label="memory per job (--memory-mb or [resources] memory_mb)")
        o.memory_mb, o.cores_per_job = memory, cores
        placement = Placement(o.placement, o.node_cores, o.node_memory_mb)
        return plan_arrays([int(s.job_id) for s in specs], per_product_s, o.run_limit_s,
                           cores_per_job=cores, memory_mb_per_job=memory, placement=placement,
                           max_array_size=o.max_array_size, startup_s=o.startup_s, spread=o.max_concurrent)

    def prepare(self, campaign_dir: Path, specs: Sequence[JobSpec], plan: ArrayPlan,
                campaign_name: str = "") -> list[PreparedArray]:
        by_id = {int(s.job_id): s for s in specs}
        when = stamp()
        # array names: ASCII letters, digits, '_', '.', '-' whatever the campaign is called
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", campaign_name or Path(campaign_dir).name)[:40].strip("._-")
        base = base or "campaign"
        camp = check_path("campaign directory", str(Path(campaign_dir).resolve()))
        python = check_path("python (the interpreter the worker runs with)", self.python)
        out = []
        for i, array in enumerate(plan.arrays, start=1):
            name = f"s2l2a_{base}_{when}_{i}"
            worker = [python, "-m", "s2l2a", "worker", "--campaign", camp, "--manifest", name]
            script = self.scheduler.render(
                campaign_name=campaign_name or base, array_name=name, n_elements=len(array),
                products_per_element=plan.products_per_element, parallel=plan.parallel,
                walltime_s=plan.element_walltime_s, log_dir=LOG_DIR, worker_argv=worker)
            out.append(PreparedArray(name, [[by_id[j] for j in el] for el in array], script,
                                     plan.element_walltime_s))
        return out

    # Engine contract

    def submit(self, campaign_dir: Path, specs: Sequence[JobSpec], *, per_product_s: float | None = None,
               campaign_name: str = "",
               on_submitted: Callable[[JobSpec, str], None] | None = None,
               on_failed: Callable[[list[JobSpec]], None] | None = None) -> list[ArrayRecord]:
        """Write manifests and scripts, submit every array from the campaign directory, record them.

        Order matters for a submitter killed half-way: the record (without job id) is written and
        ``on_submitted(spec, host)`` called *before* the scheduler sees the array, then the job id
        is added. A record left without job id means "maybe submitted": its jobs are requeued,
        and result files of a twin that did run carry an attempt number nobody folds.
        ``on_failed(specs)`` is called when the scheduler refuses an array.
        """
        campaign_dir = Path(campaign_dir).resolve()
        if not specs:
            return []
        plan = self.plan(specs, per_product_s or self.options.estimate_s)
        (campaign_dir / LOG_DIR).mkdir(parents=True, exist_ok=True)
        records = []
        for arr in self.prepare(campaign_dir, specs, plan, campaign_name):
            write_manifest(campaign_dir, arr.name, arr.elements, parallel=plan.parallel)
            script = campaign_dir / CLUSTER_DIR / f"{arr.name}.sh"
            script.parent.mkdir(parents=True, exist_ok=True)
            script.write_text(arr.script, encoding="utf-8")
            rec = ArrayRecord(name=arr.name, scheduler=self.name, job_id=None,
                              manifest=f"{MANIFESTS_DIR}/{arr.name}.json", script=f"{CLUSTER_DIR}/{arr.name}.sh",
                              elements=[[int(s.job_id) for s in el] for el in arr.elements],
                              attempts={str(s.job_id): int(s.attempt) for el in arr.elements for s in el},
                              submitted=utcnow(), walltime_s=arr.walltime_s, campaign_dir=campaign_dir)
            rec.save(campaign_dir)
            if on_submitted is not None:
                for index, el in enumerate(arr.elements, start=1):
                    for s in el:
                        on_submitted(s, rec.host(index))
            try:
                rec.job_id = self.scheduler.submit(script, cwd=campaign_dir)
            except SchedulerError:
                rec.closed = True
                rec.save(campaign_dir)
                if on_failed is not None:
                    on_failed([s for el in arr.elements for s in el])
                raise
            rec.save(campaign_dir)
            records.append(rec)
        return records

    def element_states(self, rec: ArrayRecord) -> dict[int, ElementState] | None:
        """The scheduler's view of an array; None when the scheduler could not be asked."""
        if not rec.job_id:
            return {}
        try:
            return self.scheduler.status(rec.job_id)
        except SchedulerError:
            return None

    def poll(self, handle: Iterable[ArrayRecord]) -> dict[int | str, str]:
        """``{job_id: queued|running|done|failed}``: result files first, the scheduler second."""
        out: dict[int | str, str] = {}
        for rec in handle:
            camp = Path(rec.campaign_dir or ".")
            states = self.element_states(rec)
            for index, jobs in enumerate(rec.elements, start=1):
                for job_id in jobs:
                    res = _result_of(camp, job_id, rec.attempts.get(str(job_id), 0))
                    if res is not None:
                        out[job_id] = res.state
                        continue
                    st = None if states is None else states.get(index)
                    if states is None or (st is not None and st.state == "running"):
                        out[job_id] = "running"
                    elif st is not None and st.state == "pending":
                        out[job_id] = "queued"
                    else:
                        out[job_id] = "failed"
        return out

    def cancel(self, handle: Iterable[ArrayRecord]) -> None:
        """Cancel whole arrays (their elements then reconcile as killed)."""
        for rec in handle:
            if rec.job_id and not rec.closed:
                self.scheduler.cancel(rec.job_id)

    def extend(self, handle: Iterable[ArrayRecord], walltime_s: int) -> list[str]:
        """Raise the run limit of unfinished arrays (``bmod -W`` / ``scontrol update TimeLimit``)."""
        from s2l2a.engines.scheduler import run_command

        done = []
        for rec in handle:
            if rec.job_id and not rec.closed:
                run_command(self.scheduler.extend_argv(rec.job_id, walltime_s))
                done.append(rec.job_id)
        return done


def _result_of(campaign_dir: Path, job_id: int, attempt: int) -> JobOutcome | None:
    """The result file of this attempt, pending or already folded."""
    from s2l2a.campaign.jobspec import read_result

    candidates = [result_path(campaign_dir, job_id)]
    folded = result_path(campaign_dir, job_id).parent / "folded"
    if folded.is_dir():
        candidates += sorted(folded.glob(f"{job_id}.*json"), reverse=True)
    for p in candidates:
        try:
            res = read_result(p)
        except CampaignError:
            continue
        if int(res.attempt) == int(attempt):
            return res
    return None


# -- reconciliation (the submitting side: the only writer of the store) ----------------------------

@dataclass
class Reconciled:
    """What one reconciliation did."""

    folded: int = 0                 # outcomes from result files
    lost: list[tuple[int, str, str]] = field(default_factory=list)   # (job, class, message)
    in_flight: int = 0              # jobs still on the cluster
    unreachable: list[str] = field(default_factory=list)             # arrays whose scheduler did not answer
    views: dict[str, dict[int, ElementState] | None] = field(default_factory=dict)


def reconcile(campaign_dir: Path, store: Any, engines: dict[str, ClusterEngine] | None = None) -> Reconciled:
    """Fold result files, then fail the jobs whose elements ended without one; close finished arrays.

    Jobs are only touched while the store still runs the very attempt the array record holds, so
    reconciling twice (or after a local run took over) changes nothing.
    """
    campaign_dir = Path(campaign_dir)
    out = Reconciled(folded=fold_results(campaign_dir, store))
    engines = dict(engines or {})
    for rec in load_records(campaign_dir, open_only=True):
        live = _live_jobs(store, rec)
        if not live:
            rec.closed = True
            rec.save(campaign_dir)
            continue
        if not rec.job_id:  # the submitter died between writing the record and the scheduler's answer
            store.requeue_stale(f"submission of {rec.scheduler} array {rec.name} did not complete", job_ids=live)
            rec.closed = True
            rec.save(campaign_dir)
            continue
        eng = engines.get(rec.scheduler) or ClusterEngine(make_scheduler(rec.scheduler, ClusterOptions()))
        engines[rec.scheduler] = eng
        states = eng.element_states(rec)
        out.views[rec.name] = states
        if states is None:
            out.unreachable.append(f"{rec.scheduler} array {rec.job_id}")
            out.in_flight += len(live)
            continue
        out.folded += fold_results(campaign_dir, store)  # results written while we asked the scheduler
        live = _live_jobs(store, rec)
        for job_id in live:
            index = rec.element_of(job_id)
            st = states.get(index)
            if st is not None and st.state in ("pending", "running"):
                out.in_flight += 1
                continue
            if result_path(campaign_dir, job_id).exists():
                continue  # written in the last instant; the next reconciliation folds it
            cls, why = classify_element(st, rec.scheduler, _output_tail(campaign_dir, rec, index))
            message = f"{rec.element_id(index)}: {why}"
            outcome = JobOutcome(job_id=job_id, state="failed", attempt=rec.attempts[str(job_id)],
                                 failure_class=cls.value, message=message, end=utcnow(),
                                 log_path=str(job_log_path(campaign_dir, job_id)),
                                 exit_status=_exit_int(st.exit_code if st else None))
            _append_job_log(campaign_dir, job_id, message, rec)
            if fold_outcome(store, outcome):
                out.lost.append((job_id, cls.value, message))
        if not _live_jobs(store, rec):
            rec.closed = True
            rec.save(campaign_dir)
    return out


def _output_tail(campaign_dir: Path, rec: ArrayRecord, index: int, size: int = 4096) -> str:
    """The end of an element's scheduler output files (``logs/cluster/<array>_<id>_<index>.*``)."""
    base = str(rec.job_id or "").split(".")[0].split("[")[0]
    text = []
    for p in sorted((campaign_dir / LOG_DIR).glob(f"{rec.name}_{base}_{index}.*")):
        try:
            with open(p, "rb") as f:
                f.seek(max(0, p.stat().st_size - size))
                text.append(f.read().decode("utf-8", "replace"))
        except OSError:
            continue
    return "\n".join(text)


def _live_jobs(store: Any, rec: ArrayRecord) -> list[int]:
    """Jobs of the array still running the attempt it submitted."""
    ids = [j for el in rec.elements for j in el]
    return [j.id for j in store.jobs(states="running", job_ids=ids)
            if int(j.attempts) == int(rec.attempts.get(str(j.id), -1))]


def _exit_int(code: str | None) -> int | None:
    if not code:
        return None
    m = re.match(r"\d+", code)
    return int(m[0]) if m else None


def _append_job_log(campaign_dir: Path, job_id: int, message: str, rec: ArrayRecord) -> None:
    """Point the job log at the scheduler's own output files, where a killed worker's last words are."""
    try:
        log = job_log_path(campaign_dir, job_id)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"==== {utcnow()} job {job_id} failed on the cluster: {message}; scheduler output in "
                    f"{LOG_DIR}/{rec.name}_{rec.job_id}_* ====\n")
    except OSError:
        pass


def cluster_job_ids(campaign_dir: Path, store: Any) -> set[int]:
    """Jobs the store shows running because an open array holds them (not stale local attempts)."""
    ids: set[int] = set()
    for rec in load_records(campaign_dir, open_only=True):
        ids.update(_live_jobs(store, rec))
    return ids


def history_durations(store: Any, limit: int = 500) -> list[float]:
    """Durations of the campaign's successful attempts (seconds), newest first."""
    out = []
    for a in reversed(store.attempts()):
        if a.state == "done" and a.start and a.end:
            try:
                t0 = datetime.fromisoformat(a.start.replace("Z", "+00:00"))
                t1 = datetime.fromisoformat(a.end.replace("Z", "+00:00"))
            except ValueError:
                continue
            out.append((t1 - t0).total_seconds())
            if len(out) >= limit:
                break
    return out


def plan_duration(store: Any, options: ClusterOptions) -> tuple[float, str]:
    """Per-product duration to size arrays with, from history or the configured estimate."""
    return estimate_duration(history_durations(store), options.estimate_s)


def wait_for(campaign_dir: Path, store: Any, engines: dict[str, ClusterEngine], *, interval_s: float = 10.0,
             timeout_s: float | None = None, echo: Callable[[str], None] = print) -> Reconciled:
    """Reconcile every ``interval_s`` until no job of an open array is left in flight."""
    t0 = time.monotonic()
    last = ""
    while True:
        r = reconcile(campaign_dir, store, engines)
        counts = store.counts()
        line = (f"{counts['done']} done, {counts['failed']} failed, {r.in_flight} on the cluster"
                + (f" (no answer from {', '.join(r.unreachable)})" if r.unreachable else ""))
        if line != last:
            echo(line)
            last = line
        if not cluster_job_ids(campaign_dir, store):
            return r
        if timeout_s is not None and time.monotonic() - t0 > timeout_s:
            return r
        time.sleep(interval_s)


# -- the `s2l2a run --engine slurm|lsf|pbs` flow ---------------------------------------------------

def build_specs(campaign: Path, store: Any, settings: Any, processor: str | None, memory_mb: int | None,
                jobs: Sequence[Any], derive: dict[str, Any] | None = None) -> list[JobSpec]:
    """JobSpecs of queued jobs, resolved the way ``s2l2a run`` resolves them; attempt = next one."""
    from s2l2a.campaign.execute import build_specs as make_specs

    return make_specs(campaign, settings, jobs, processor=processor, memory_mb=memory_mb, derive=derive,
                      next_attempt=True)[2]


def run_on_cluster(campaign: Path, store: Any, settings: Any, engine_name: str, overrides: dict[str, Any], *,
                   processor: str | None = None, memory_mb: int | None = None, job_ids: Sequence[int] = (),
                   limit: int | None = None, dry_run: bool = False, wait: bool = False,
                   poll_s: float = 10.0, echo: Callable[[str], None] = print,
                   err: Callable[[str], None] = print, derive: dict[str, Any] | None = None) -> int:
    """Reconcile, requeue stale local attempts, then submit the queued jobs as arrays (or print them).

    The caller holds the run lock. Returns the exit status: 0, or 3 when ``--wait`` saw failures.
    """
    opts = cluster_options(settings.extra.get("cluster"), engine_name, **overrides)
    engine = ClusterEngine(make_scheduler(engine_name, opts), opts)
    engines = {engine_name: engine}
    if not dry_run:
        r = reconcile(campaign, store, engines)
        on_cluster = cluster_job_ids(campaign, store)
        stale = [j.id for j in store.jobs(states="running") if j.id not in on_cluster]
        if stale:
            store.requeue_stale("the local run driving this attempt stopped", job_ids=stale)
        if r.folded or r.lost or stale:
            err(f"reconciled: {r.folded} result file(s) recorded, {len(r.lost)} element(s) ended without one, "
                f"{len(stale)} stale local attempt(s) requeued")
        for job_id, cls, msg in r.lost:
            err(f"  job {job_id} failed ({cls}): {msg}")
    jobs = store.jobs(states="queued", job_ids=list(job_ids) or None)
    if limit:
        jobs = jobs[:limit]
    if not jobs:
        on_cluster = cluster_job_ids(campaign, store) if not dry_run else set()
        counts = store.counts()
        echo(f"nothing to submit: {counts['done']} done, {counts['failed']} failed, {len(on_cluster)} on the cluster")
        if wait and on_cluster:
            return _wait(campaign, store, engines, poll_s, echo)
        return 0
    specs = build_specs(campaign, store, settings, processor, memory_mb, jobs, derive)
    per_product_s, why = plan_duration(store, opts)
    plan = engine.plan(specs, per_product_s)
    explanation = [f"duration per product: {why}", *plan.explanation]
    if engine_name == "lsf":
        from s2l2a.engines.lsf import detect_unit

        unit, unit_why = (opts.lsf_unit.upper(), "configured lsf_unit") if opts.lsf_unit else detect_unit()
        explanation.append(f"LSF memory unit {unit} ({unit_why})")
    if dry_run:
        for line in explanation:
            echo(f"# {line}")
        for arr in engine.prepare(campaign, specs, plan, settings.name):
            echo(f"# ---- {CLUSTER_DIR}/{arr.name}.sh (not submitted; {len(arr.elements)} element(s)) ----")
            echo(arr.script.rstrip("\n"))
        return 0
    for line in explanation:
        err(line)

    def mark(spec: JobSpec, host: str) -> None:
        n = store.start_attempt(int(spec.job_id), host, 0, store.log_path(int(spec.job_id)))
        if n != spec.attempt:  # cannot happen under the run lock; say so loudly if it does
            raise CampaignError(f"job {spec.job_id}: submitted as attempt {spec.attempt}, store opened {n}")

    def unmark(failed: list[JobSpec]) -> None:
        store.requeue_stale("the scheduler refused the array", job_ids=[int(s.job_id) for s in failed])

    records = engine.submit(campaign, specs, per_product_s=per_product_s, campaign_name=settings.name,
                            on_submitted=mark, on_failed=unmark)
    for rec in records:
        echo(f"submitted {engine_name} array {rec.job_id} ({rec.name}): {len(rec.elements)} element(s), "
             f"{sum(len(e) for e in rec.elements)} job(s); script {rec.script}")
    if wait:
        return _wait(campaign, store, engines, poll_s, echo)
    echo(f"follow with 's2l2a status {campaign}'; 's2l2a run {campaign} --engine {engine_name}' folds results")
    return 0


def _wait(campaign: Path, store: Any, engines: dict[str, ClusterEngine], poll_s: float,
          echo: Callable[[str], None]) -> int:
    try:
        wait_for(campaign, store, engines, interval_s=poll_s, echo=echo)
    except KeyboardInterrupt:
        echo("stopped waiting; the arrays keep running on the cluster")
        return 130
    counts = store.counts()
    return 3 if counts["failed"] else 0


def status_view(campaign: Path, store: Any) -> list[dict[str, Any]]:
    """Fold what came back (when no run holds the campaign) and describe every open array both
    ways: the scheduler's states next to the result files. For ``s2l2a status``."""
    from s2l2a.campaign.lock import CampaignLocked, RunLock

    lock = RunLock(campaign)
    try:
        lock.acquire()
    except CampaignLocked:
        lock = None  # a run is folding right now; show what the store has
    views: dict[str, dict[int, ElementState] | None] = {}
    try:
        if lock is not None:
            views = reconcile(campaign, store).views
    finally:
        if lock is not None:
            lock.release()
    rdir = Path(campaign) / "results"
    have = {p.name.split(".")[0] for d in (rdir, rdir / "folded") if d.is_dir() for p in d.glob("*.json")}
    out = []
    for rec in load_records(campaign):
        states = views.get(rec.name)
        if rec.name not in views and not rec.closed:
            states = ClusterEngine(make_scheduler(rec.scheduler, ClusterOptions())).element_states(rec)
        sched: dict[str, int] = {}
        if states is not None:
            for st in states.values():
                sched[st.raw_state] = sched.get(st.raw_state, 0) + 1
        jobs = [j for el in rec.elements for j in el]
        results = sum(1 for j in jobs if str(j) in have)
        out.append({"array": rec.name, "scheduler": rec.scheduler, "job_id": rec.job_id,
                    "elements": len(rec.elements), "jobs": len(jobs), "result_files": results,
                    "open": not rec.closed,
                    "scheduler_states": sched if states is not None else None,
                    "scheduler_knows": bool(states) if states is not None else None})
    return out


def format_status(views: list[dict[str, Any]]) -> list[str]:
    """One line per array for ``s2l2a status``."""
    lines = []
    for v in views:
        if not v["open"] and v["scheduler_states"] is None:
            sched = "not asked (every job folded)"
        elif v["scheduler_states"] is None:
            sched = "scheduler did not answer"
        elif not v["scheduler_knows"]:
            sched = "forgotten by the scheduler (result files are the truth)"
        else:
            sched = ", ".join(f"{k} {n}" for k, n in sorted(v["scheduler_states"].items()))
        lines.append(f"{v['scheduler']} array {v['job_id']} ({v['array']}): {v['elements']} element(s); "
                     f"scheduler: {sched}; result files: {v['result_files']}/{v['jobs']}"
                     )
    return lines
