"""The campaign side of job arrays (Slurm, LSF, PBS): records of submitted arrays, submission,
reconciliation, waiting, the status view and what one array element runs.

Submitting writes, per array:

- ``manifests/<array>.json``: element N runs these JobSpecs (read by ``s2l2a worker``),
- ``cluster/<array>.sh``: the rendered script, submitted from the campaign directory,
- ``cluster/<array>.json``: the scheduler's array id, which job sits in which element and with
  which attempt number (an :class:`ArrayRecord`),

and marks each job ``running`` with an attempt whose host is the scheduler's element id
(``slurm:1234[3]``): the state machine needs no extra state, and a job on the cluster is visibly
not a stale local one. Reconciling folds result files first (they are the truth: queues forget
finished jobs) and asks the scheduler second, only for jobs that have no result file: an element
that ended without one failed, with the class the scheduler's state, exit code or reason gives.

The scheduler itself is reached only through :class:`s2l2a.engines.cluster.ClusterEngine`
(``submit``, ``states``, ``cancel``, ``extend``); this module is where the store is written.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from s2l2a.campaign.execute import fold_outcome, fold_results, job_log_path
from s2l2a.campaign.failures import FailureClass
from s2l2a.campaign.jobspec import JobOutcome, JobSpec, result_path, write_json_atomic, write_manifest
from s2l2a.campaign.layout import CLUSTER_DIR, MANIFESTS_DIR
from s2l2a.clock import utcnow
from s2l2a.engines.cluster import LOG_DIR, classify_element, element_output_tail, node_failed
from s2l2a.engines.scheduler import ElementState, SchedulerError
from s2l2a.errors import CampaignError, S2L2AError
from s2l2a.registry import scheduler_names

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
    status_form: str = ""                       # the scheduler's status form its site answers ("text")
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

    @property
    def job_ids(self) -> list[int]:
        return [j for el in self.elements for j in el]

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
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", str(rec.name)) or \
                    rec.scheduler not in scheduler_names():
                raise ValueError(f"bad array name or scheduler {str(rec.name)[:40]!r}/{str(rec.scheduler)[:10]!r}")
            if rec.job_id is not None and not re.fullmatch(r"[0-9][A-Za-z0-9_.\[\]-]*", str(rec.job_id)):
                raise ValueError(f"bad job id {str(rec.job_id)[:40]!r}")
            if not isinstance(rec.status_form, str) or not re.fullmatch(r"[a-z]{0,20}", rec.status_form):
                raise ValueError(f"bad status form {str(rec.status_form)[:40]!r}")
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


def has_arrays(campaign_dir: Path | str) -> bool:
    """Whether arrays were ever submitted for this campaign."""
    return (Path(campaign_dir) / CLUSTER_DIR).is_dir()


def engine_for(scheduler: str, engines: dict[str, Any] | None = None) -> Any:
    """The ClusterEngine for ``scheduler`` from ``engines`` (made with default options if absent)."""
    from s2l2a.engines.cluster import ClusterEngine, make_scheduler
    from s2l2a.engines.scheduler import ClusterOptions

    if engines is not None and scheduler in engines:
        return engines[scheduler]
    eng = ClusterEngine(make_scheduler(scheduler, ClusterOptions()))
    if engines is not None:
        engines[scheduler] = eng
    return eng


# -- submission -----------------------------------------------------------------------------------

def submit_arrays(campaign_dir: Path, store: Any, engine: Any, specs: Sequence[JobSpec], *,
                  per_product_s: float | None = None, upper_bound: bool = False,
                  campaign_name: str = "") -> list[ArrayRecord]:
    """Write manifests and scripts, mark the jobs running, submit every array, record them.

    Order matters for a submitter killed half-way: the record (without job id) is written and
    the jobs marked running *before* the scheduler sees the array, then the job id is added. A
    record left without job id means "maybe submitted": its jobs are requeued, and result files
    of a twin that did run carry an attempt number nobody folds. An array the scheduler refuses
    is closed and its jobs go back to the queue (the SchedulerError is raised on).
    The caller holds the run lock.
    """
    campaign_dir = Path(campaign_dir).resolve()
    if not specs:
        return []
    if per_product_s:
        plan = engine.plan(specs, per_product_s, upper_bound=upper_bound)
    else:
        seconds, _, bound = plan_duration(store, engine.options, specs)
        plan = engine.plan(specs, seconds, upper_bound=bound)
    (campaign_dir / LOG_DIR).mkdir(parents=True, exist_ok=True)
    records = []
    for arr in engine.prepare(campaign_dir, specs, plan, campaign_name, log_dir=LOG_DIR):
        write_manifest(campaign_dir, arr.name, arr.elements, parallel=plan.parallel)
        script = campaign_dir / CLUSTER_DIR / f"{arr.name}.sh"
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(arr.script, encoding="utf-8")
        rec = ArrayRecord(name=arr.name, scheduler=engine.name, job_id=None,
                          manifest=f"{MANIFESTS_DIR}/{arr.name}.json", script=f"{CLUSTER_DIR}/{arr.name}.sh",
                          elements=[[int(s.job_id) for s in el] for el in arr.elements],
                          attempts={str(s.job_id): int(s.attempt) for el in arr.elements for s in el},
                          submitted=utcnow(), walltime_s=arr.walltime_s, campaign_dir=campaign_dir,
                          status_form=engine.scheduler.status_form or "")
        rec.save(campaign_dir)
        for index, el in enumerate(arr.elements, start=1):
            for s in el:
                n = store.start_attempt(int(s.job_id), rec.host(index), 0, store.log_path(int(s.job_id)))
                if n != s.attempt:  # cannot happen under the run lock; say so loudly if it does
                    raise CampaignError(f"job {s.job_id}: submitted as attempt {s.attempt}, store opened {n}")
        try:
            rec.job_id = engine.submit(script, cwd=campaign_dir)
        except SchedulerError:
            rec.closed = True
            rec.save(campaign_dir)
            store.requeue_stale("the scheduler refused the array", job_ids=rec.job_ids)
            raise
        rec.save(campaign_dir)
        records.append(rec)
    return records


# -- reconciliation (the submitting side: the only writer of the store) ----------------------------

@dataclass
class Reconciled:
    """What one reconciliation did."""

    folded: int = 0                 # outcomes from result files
    lost: list[tuple[int, str, str]] = field(default_factory=list)   # (job, class, message)
    in_flight: int = 0              # jobs still on the cluster
    unreachable: list[str] = field(default_factory=list)             # arrays whose scheduler did not answer
    views: dict[str, dict[int, ElementState] | None] = field(default_factory=dict)
    requeued: list[int] = field(default_factory=list)                # node failures queued again


def reconcile(campaign_dir: Path, store: Any, engines: dict[str, Any] | None = None, *,
              max_attempts: int | None = None) -> Reconciled:
    """Fold result files, then fail the jobs whose elements ended without one; close finished arrays.

    Jobs are only touched while the store still runs the very attempt the array record holds, so
    reconciling twice (or after a local run took over) changes nothing. ``engines`` maps scheduler
    names to ClusterEngines (default ones are made for the others). With ``max_attempts``, a job
    whose node failed (:func:`node_failed`) is queued again while it has attempts left (its
    attempt is still recorded as killed), for the next submission.
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
        states = array_states(engine_for(rec.scheduler, engines), rec, remember=True)
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
            cls, why = classify_element(st, rec.scheduler,
                                        element_output_tail(campaign_dir, rec.name, rec.job_id, index))
            message = f"{rec.element_id(index)}: {why}"
            outcome = JobOutcome(job_id=job_id, state="failed", attempt=rec.attempts[str(job_id)],
                                 failure_class=cls.value, message=message, end=utcnow(),
                                 log_path=str(job_log_path(campaign_dir, job_id)),
                                 exit_status=_exit_int(st.exit_code if st else None))
            _append_job_log(campaign_dir, job_id, message, rec)
            if not fold_outcome(store, outcome):
                continue
            if max_attempts and node_failed(st, rec.scheduler) and attempts_left(store, job_id, max_attempts):
                store.requeue(job_ids=[job_id])
                out.requeued.append(job_id)
            else:
                out.lost.append((job_id, cls.value, message))
        if not _live_jobs(store, rec):
            rec.closed = True
            rec.save(campaign_dir)
    return out


def array_states(engine: Any, rec: ArrayRecord, *, remember: bool = False) -> dict[int, ElementState] | None:
    """The scheduler's view of one array (``engine.states``), told first which status form the
    array's site answers when its record knows; with ``remember`` (the caller holds the run lock,
    the record's only writer) what the scheduler found out is written into the record, so that
    a later process does not probe again (issue 13: detected once per campaign, not per process)."""
    if rec.status_form:
        engine.scheduler.status_form = rec.status_form
    states = engine.states(rec.job_id)
    found = engine.scheduler.status_form or ""
    if remember and states is not None and found != rec.status_form and rec.campaign_dir is not None:
        rec.status_form = found
        rec.save(rec.campaign_dir)
    return states


def _live_jobs(store: Any, rec: ArrayRecord) -> list[int]:
    """Jobs of the array still running the attempt it submitted."""
    return [j.id for j in store.jobs(states="running", job_ids=rec.job_ids)
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


def attempts_left(store: Any, job_id: int, max_attempts: int) -> bool:
    """Whether a job has had fewer than ``max_attempts`` attempts (interrupted ones not counted:
    they were stopped by a run ending, not by the job)."""
    tries = [a for a in store.attempts(int(job_id)) if a.failure_class != FailureClass.INTERRUPTED.value]
    return len(tries) < int(max_attempts)


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


class PlannedDuration(NamedTuple):
    """What :func:`plan_duration` found: seconds per product, where from, and whether it is an
    upper bound (the processor's figure or the job timeout) rather than measured or configured."""

    seconds: float
    why: str
    upper_bound: bool


def plan_duration(store: Any, options: Any, specs: Sequence[JobSpec] = ()) -> PlannedDuration:
    """Per-product duration to size arrays with: measured durations (p90 with a margin) once
    there are enough, else ``[cluster] estimate_s`` when set, else the processor's declared upper
    bound, else the job timeout of ``specs`` ([resources] timeout_s)."""
    from s2l2a.engines.sizing import MIN_MEASURED, estimate_duration
    from s2l2a.registry import processor_plugin

    history = history_durations(store)
    sources = getattr(options, "sources", {})
    configured = options.estimate_s if ("estimate_s" in sources or options.estimate_s != 1800.0) else None
    timeout = max((s.job_settings().timeout_s for s in specs), default=0.0) or None
    bound, name = None, ""
    for name in sorted({str(s.processor) for s in specs}):
        try:
            figure = processor_plugin(name).max_duration_s
        except S2L2AError:  # "auto" or a processor not installed here: the timeout bounds it
            figure = None
        bound = None if figure is None else max(bound or 0.0, figure)
        if figure is None:
            break
    seconds, why = estimate_duration(history, configured, timeout_s=timeout, processor_s=bound, processor=name)
    measured = len([d for d in history if d and d > 0]) >= MIN_MEASURED
    return PlannedDuration(seconds, why, not measured and configured is None)


def plan_memory(store: Any, configured_mb: int) -> list[str]:
    """The ``run --dry-run`` line proposing ``memory_mb`` from the campaign's measured peaks
    (:func:`s2l2a.engines.sizing.propose_memory_mb`); shown, never applied."""
    from s2l2a.campaign.usage import measured_peaks
    from s2l2a.engines.sizing import propose_memory_mb

    return [propose_memory_mb(measured_peaks(store.attempts()), int(configured_mb))[1]]


def wait_for(campaign_dir: Path, store: Any, engines: dict[str, Any] | None = None, *, interval_s: float = 10.0,
             timeout_s: float | None = None, echo: Callable[[str], None] = print, max_attempts: int | None = None,
             requeued: list[int] | None = None) -> Reconciled:
    """Reconcile every ``interval_s`` until no job of an open array is left in flight; ``echo``
    gets a line each time the counts change; jobs a node failure queued again are appended to
    ``requeued``."""
    t0 = time.monotonic()
    last = ""
    while True:
        r = reconcile(campaign_dir, store, engines, max_attempts=max_attempts)
        if requeued is not None:
            requeued += r.requeued
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


# -- acting on open arrays ------------------------------------------------------------------------

def cancel_arrays(campaign_dir: Path, store: Any, *, settle_s: float = 10.0,
                  on_cancel: Callable[[ArrayRecord], None] | None = None) -> tuple[list[ArrayRecord], Reconciled]:
    """Cancel every unfinished array and record its jobs as killed (the caller holds the run lock).

    Returns the cancelled records and the summed reconciliations (``lost`` are the killed jobs;
    ``in_flight`` what was still ending after ``settle_s``).
    """
    campaign_dir = Path(campaign_dir)
    records = load_records(campaign_dir, open_only=True)
    engines: dict[str, Any] = {}
    for rec in records:
        if rec.job_id:
            engine_for(rec.scheduler, engines).cancel(rec.job_id)
        if on_cancel is not None:
            on_cancel(rec)
    total = Reconciled()
    if not records:
        return records, total
    deadline = time.monotonic() + settle_s
    while True:  # the scheduler needs a moment to move elements to CANCELLED
        r = reconcile(campaign_dir, store, engines)
        total.folded += r.folded
        total.lost += r.lost
        total.in_flight = r.in_flight
        if not r.in_flight or time.monotonic() >= deadline:
            return records, total
        time.sleep(1)


def extend_arrays(campaign_dir: Path, walltime_s: int) -> list[ArrayRecord]:
    """Raise the run limit of every unfinished array; returns the arrays changed."""
    engines: dict[str, Any] = {}
    done = []
    for rec in load_records(campaign_dir, open_only=True):
        if rec.job_id:
            engine_for(rec.scheduler, engines).extend(rec.job_id, int(walltime_s))
            done.append(rec)
    return done


# -- the status view ------------------------------------------------------------------------------

def status_view(campaign: Path, store: Any) -> list[dict[str, Any]]:
    """Fold what came back (when no run holds the campaign) and describe every array both ways:
    the scheduler's states next to the result files. Plain data, as ``status --json`` prints it."""
    from s2l2a.campaign.lock import CampaignLocked, RunLock

    lock: RunLock | None = RunLock(campaign)
    try:
        lock.acquire()  # type: ignore[union-attr]
    except CampaignLocked:
        lock = None  # a run is folding right now; show what the store has
    views: dict[str, dict[int, ElementState] | None] = {}
    try:
        if lock is not None:
            views = reconcile(campaign, store, max_attempts=_max_attempts(campaign)).views
    finally:
        if lock is not None:
            lock.release()
    rdir = result_path(Path(campaign), 0).parent
    have = {p.name.split(".")[0] for d in (rdir, rdir / "folded") if d.is_dir() for p in d.glob("*.json")}
    out = []
    attempts: dict[tuple[int, int], Any] | None = None
    engines: dict[str, Any] = {}
    for rec in load_records(campaign):
        states = views.get(rec.name)
        if rec.name not in views and not rec.closed and rec.job_id:
            states = array_states(engine_for(rec.scheduler, engines), rec)
        sched: dict[str, int] = {}
        if states is not None:
            for st in states.values():
                sched[st.raw_state] = sched.get(st.raw_state, 0) + 1
        jobs = rec.job_ids
        results = sum(1 for j in jobs if str(j) in have)
        asked = None
        if states:  # the scheduler still knows the array: its accounting, for running elements too
            asked = engine_for(rec.scheduler, engines).usage(rec.job_id)
        if attempts is None:
            attempts = {(a.job_id, a.n): a for a in store.attempts()}
        out.append({"array": rec.name, "scheduler": rec.scheduler, "job_id": rec.job_id,
                    "elements": len(rec.elements), "jobs": len(jobs), "result_files": results,
                    "open": not rec.closed,
                    "scheduler_states": sched if states is not None else None,
                    "scheduler_knows": bool(states) if states is not None else None,
                    "usage": usage_view(campaign, rec, states or {}, asked or {}, attempts)})
    return out


def element_usage(campaign: Path, rec: ArrayRecord, states: dict[int, ElementState],
                  asked: dict[int, Any], attempts: dict[tuple[int, int], Any]) -> list[Any]:
    """What each element of ``rec`` used, from the most trusted source that has it: the worker's
    own record of the element, else its jobs' measurements (a worker killed after some products),
    else the scheduler's accounting (``asked``: running elements, elements killed before the
    worker could write anything), else the scheduler's report in the element's output file (LSF)."""
    from s2l2a.campaign.usage import WORKER, ElementUsage, read_elements
    from s2l2a.engines.lsf_text import read_report  # the start of a file (where LSF's job report is)
    from s2l2a.registry import get_scheduler

    worker = read_elements(campaign, rec.name)
    found = []
    for index, jobs in enumerate(rec.elements, start=1):
        tries = [attempts.get((j, int(rec.attempts.get(str(j), -1)))) for j in jobs]
        tries = [a for a in tries if a is not None]
        u = worker.get(index)
        measured = [a for a in tries if a.cpu_s is not None or a.peak_mb is not None]
        if u is None and measured:
            u = ElementUsage(index, sum(a.cpu_s or 0 for a in measured),
                             max((a.peak_mb for a in measured if a.peak_mb is not None), default=None),
                             f"{WORKER} (jobs)")
        if u is None and index in asked:
            u = asked[index]
        st = states.get(index)
        ended = st is None or st.state not in ("pending", "running")
        if (u is None or u.peak_mb is None) and ended and rec.scheduler in scheduler_names() and rec.job_id:
            base = str(rec.job_id).split(".")[0].split("[")[0]
            out = Path(campaign) / LOG_DIR / f"{rec.name}_{base}_{index}.out"
            cpu_s, peak = get_scheduler(rec.scheduler).usage_from_output(read_report(out) if out.is_file() else "")
            if u is None and (cpu_s is not None or peak is not None):
                u = ElementUsage(index, cpu_s, peak, "output file")
            elif u is not None and peak is not None:  # the scheduler's CPU time, its report's peak
                u.peak_mb, u.source = peak, f"{u.source}, output file"
                u.cpu_s = u.cpu_s if u.cpu_s is not None else cpu_s
        u = u or ElementUsage(index, source="-")
        ended = {a.state for a in tries if a.state in ("done", "failed")}
        u.state = (st.state if st is not None else "failed" if "failed" in ended
                   else "done" if ended == {"done"} and len(tries) == len(jobs) else u.state)
        found.append(u)
    return found


def usage_view(campaign: Path, rec: ArrayRecord, states: dict[int, ElementState], asked: dict[int, Any],
               attempts: dict[tuple[int, int], Any]) -> dict[str, Any]:
    """Per element and in sum, what the array used (plain data for ``status --json``)."""
    from s2l2a.campaign.usage import percentile

    elements = element_usage(campaign, rec, states, asked, attempts)
    peaks = [u.peak_mb for u in elements if u.peak_mb is not None]
    cpus = [u.cpu_s for u in elements if u.cpu_s is not None]
    jobs = {}
    for index, ids in enumerate(rec.elements, start=1):
        for j in ids:
            a = attempts.get((j, int(rec.attempts.get(str(j), -1))))
            jobs[str(j)] = {"element": index, "cpu_s": getattr(a, "cpu_s", None), "peak_mb": getattr(a, "peak_mb", None)}
    return {"elements": [{**u.to_dict(), "jobs": ids} for u, ids in zip(elements, rec.elements, strict=True)],
            "jobs": jobs,
            "cpu_s": round(sum(cpus), 3) if cpus else None,
            "peak_mb": max(peaks) if peaks else None,
            "p95_peak_mb": percentile(peaks, 0.95) if peaks else None,
            "measured": len([u for u in elements if u.cpu_s is not None or u.peak_mb is not None]),
            "sources": sorted({u.source for u in elements if u.source != "-"})}


def _max_attempts(campaign: Path) -> int | None:
    from s2l2a.campaign.settings import CampaignSettings

    try:
        return int(CampaignSettings.load(campaign).max_attempts)
    except S2L2AError:  # a broken s2l2a.toml: reconcile without automatic retries
        return None


# -- inside an array element ----------------------------------------------------------------------

def run_element(campaign_dir: Path | str, index: int, manifest: str | None = None) -> list[JobOutcome]:
    """Run the jobs of array element ``index`` (what ``s2l2a worker`` does on a node).

    Reads the manifest written at submit time (``manifest``: its name or path under
    ``manifests/``; default the newest) and runs each job through ``run_job``, which writes
    ``results/<job_id>.json``, and writes the element's own usage (:mod:`s2l2a.campaign.usage`).
    Never opens the store: the submitting side folds the results.
    """
    from s2l2a.campaign.execute import run_job
    from s2l2a.campaign.jobspec import newest_manifest, read_manifest
    from s2l2a.campaign.usage import element_meter_done

    campaign = Path(campaign_dir).resolve()
    if manifest is None:
        path = newest_manifest(campaign)
    else:
        path = Path(manifest)
        if not path.is_absolute():
            path = campaign / MANIFESTS_DIR / (manifest if manifest.endswith(".json") else f"{manifest}.json")
    t0 = time.monotonic()
    m = read_manifest(path)
    specs = m.element(index)
    if m.parallel > 1 and len(specs) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(m.parallel, len(specs))) as pool:
            outcomes = list(pool.map(run_job, [campaign] * len(specs), specs))
    else:
        outcomes = [run_job(campaign, s) for s in specs]
    # the element's own CPU and peak (the pool's processes are its waited-for children)
    element_meter_done(campaign, m.name, index, t0, "done" if all(o.ok for o in outcomes) else "failed")
    return outcomes
