"""One run of a campaign, whatever the engine: the only place jobs are started from.

    lock -> recover -> preflight checks -> select jobs -> build specs -> engine -> fold -> progress

- **recover**: we hold the run lock, so whatever an earlier run left is stale: result files are
  folded, jobs still marked running requeued (not those out on a cluster), half-written leftovers
  removed, done outputs that vanished requeued;
- **preflight**: the checks of ``s2l2a check`` (a failed one stops the run before any job starts);
- **select / specs**: the queued jobs (``job_ids``, ``limit``), turned into JobSpecs once for
  every engine (``campaign.execute.build_specs``);
- **engine**: local and Dask engines run specs and yield outcomes
  (:class:`s2l2a.engines.local.LocalEngine`); schedulers get job arrays
  (:func:`s2l2a.campaign.cluster.submit_arrays`), whose outcomes come back as result files;
- **fold**: outcomes reach the store here and nowhere else (this process is its only writer);
  transient failures are retried while a job has attempts left (``[resources] max_attempts``);
- **progress**: :class:`~s2l2a.campaign.progress.RunEvent` objects go to a reporter (a bar on a
  terminal, lines off it, a notebook's callback), a summary line goes to progress.log on a clock.

:func:`run_campaign` returns a :class:`RunSummary`; user mistakes raise S2L2AError subclasses.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from s2l2a.campaign.failures import FailureClass
from s2l2a.campaign.progress import RunEvent, human_duration, reporter_for
from s2l2a.errors import CampaignError, ConfigError, environment_error

EXIT_FAILURES = 3      # the run finished but some jobs failed
EXIT_LOW_DISK = 4      # the run stopped starting jobs: too little free space (the rest stay queued)
EXIT_INTERRUPTED = 130

#: engines that run jobs from this process (the others are batch schedulers)
LOCAL_ENGINES = ("local", "dask")

#: failure classes a run retries by itself while a job has attempts left ([resources] max_attempts):
#: a worker or node that died under a job (OOM killer, a signal, a lost node) and a full disk (only
#: started again while the free-space floor allows). Not timeout or out_of_memory: the same limits
#: give the same end, at the cost of another full attempt; 's2l2a retry --class' after raising them.
RETRY_CLASSES = (FailureClass.KILLED.value, FailureClass.DISK_FULL.value)

#: the options that override the campaign's [cluster] section for one run
CLUSTER_OVERRIDES = ("queue", "account", "run_limit_s", "max_concurrent", "placement", "node_cores",
                     "node_memory_mb", "exclusive")


@dataclass
class RunOptions:
    """How to run: the engine and what overrides the campaign's settings for this run."""

    engine: str = "local"                 # local | dask | slurm | lsf | pbs
    processor: str | None = None          # overrides [campaign] processor
    workers: int | None = None            # local: at most this many conversions at once
    memory_mb: int | None = None          # overrides [resources] memory_mb
    job_ids: Sequence[int] = ()
    limit: int | None = None
    skip_checks: Sequence[str] = ()
    # what to derive right after each conversion (overrides the [derive] section)
    derive: Sequence[str] | None = None   # built-in indices, e.g. ["ndvi", "ndwi"]
    formulas: Sequence[str] = ()          # "name=expr"
    derive_resolution: int | None = None
    clear_classes: Sequence[int] | None = None
    keep: str | None = None               # all | derived | l2a
    delete_l1c: bool = False
    # Dask
    scheduler_address: str | None = None
    # batch schedulers
    dry_run: bool = False
    wait: bool = False
    poll_interval_s: float = 10.0
    cluster: dict[str, Any] = field(default_factory=dict)   # CLUSTER_OVERRIDES, None = unset


@dataclass
class RunSummary:
    """What a run did (also what ``c.run()`` returns in Python)."""

    campaign: Path
    engine: str
    processor: str | None = None          # the processor the jobs ran with ("auto" resolved)
    total: int = 0                        # jobs this run started or submitted
    done: int = 0                         # of those, ended done (schedulers: known with wait only)
    failed: int = 0
    retried: int = 0                      # automatic retries of transient failures
    interrupted: bool = False
    low_disk: str | None = None           # why the run stopped starting jobs
    nothing_to_run: bool = False
    elapsed_s: float = 0.0
    output_root: Path | None = None
    capacity: str | None = None           # local/Dask: how many at once, and why
    recovered: dict[str, int] = field(default_factory=dict)
    arrays: list[dict[str, Any]] = field(default_factory=list)     # submitted arrays
    scripts: list[tuple[str, str]] = field(default_factory=list)   # dry run: (file, script text)
    explanation: list[str] = field(default_factory=list)           # how arrays were sized
    on_cluster: int = 0                   # jobs still out on a cluster at the end
    counts: dict[str, int] = field(default_factory=dict)           # the campaign's counts at the end
    exit_code: int = 0                    # the command's exit status

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        d = asdict(self)
        d["campaign"] = str(self.campaign)
        d["output_root"] = str(self.output_root) if self.output_root else None
        return d


class _Stop(Exception):
    """SIGTERM arrived: stop like on Ctrl-C."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Stop()


# -- settings of one run ----------------------------------------------------------------------------

def derive_settings(settings: Any, options: RunOptions | None = None) -> dict[str, Any] | None:
    """What to derive per product: the campaign's ``[derive]`` section, overridden by ``options``;
    None when nothing is to be derived.

    Checked here (formulas parsed, classes and resolution valid) so a typo stops the run before
    the first conversion, not after it.
    """
    from s2l2a.outputs.derive import DeriveSpec

    o = options or RunOptions()
    d: dict[str, Any] = dict(settings.extra.get("derive", {}) or {})
    if o.derive is not None:
        d["indices"] = [str(i).strip().lower() for i in o.derive if str(i).strip()]
    if o.formulas:
        d["formulas"] = list(o.formulas)
    if o.derive_resolution:
        d["resolution"] = int(o.derive_resolution)
    if o.clear_classes:
        d["clear_classes"] = [int(c) for c in o.clear_classes]
    if o.keep:
        d["keep"] = o.keep
    if o.delete_l1c:
        d["delete_l1c"] = True
    if not (d.get("indices") or d.get("formulas")):
        if d.get("keep") == "derived" or d.get("delete_l1c"):
            raise ConfigError("--keep derived / --delete-l1c need something to derive (--derive ndvi ...)")
        return None
    try:
        DeriveSpec.from_settings(d).parsed()
    except Exception as e:  # noqa: BLE001 - DeriveError/FormulaError: one line before any work
        raise ConfigError(f"derive settings: {e}") from None
    return d


def _check_engine(o: RunOptions) -> None:
    """Engine options that cannot work, refused before the lock is taken."""
    from s2l2a.engines.cluster import SCHEDULERS

    if o.engine not in (*LOCAL_ENGINES, *SCHEDULERS):
        raise ConfigError(f"unknown engine {o.engine!r}; choose one of {', '.join((*LOCAL_ENGINES, *SCHEDULERS))}")
    if o.engine in LOCAL_ENGINES and o.dry_run:
        raise ConfigError("--dry-run is for cluster engines (--engine slurm|lsf|pbs)")
    if o.engine == "dask" and not o.scheduler_address:
        raise ConfigError("--engine dask needs --scheduler-address tcp://HOST:PORT")


# -- the run ------------------------------------------------------------------------------------------

def run_campaign(campaign_dir: Path | str, options: RunOptions | None = None,
                 progress: Any = None) -> RunSummary:
    """Run the campaign's queued jobs on ``options.engine``; see the module docstring.

    ``progress``: a reporter (see :func:`s2l2a.campaign.progress.reporter_for`): None for a bar on
    a terminal and lines off it, or a callable receiving every RunEvent. Safe to call again at
    any time: it continues where a run stopped, even after a crash. Raises CampaignLocked while
    another run holds the campaign, ConfigError/CampaignError for mistakes (nothing planned, a
    failed check, a bad option), before any job starts.
    """
    from s2l2a.campaign.lock import RunLock
    from s2l2a.campaign.settings import CampaignSettings
    from s2l2a.campaign.store import CampaignStore

    o = options or RunOptions()
    report = reporter_for(progress)
    campaign = Path(campaign_dir).resolve()
    try:
        settings = CampaignSettings.load(campaign)  # not a campaign: one line, before taking a lock
        _check_engine(o)
        derive = derive_settings(settings, o)
        lock = RunLock(campaign).acquire()
        try:
            with CampaignStore.open(campaign) as store:
                run = _Run(campaign, store, settings, o, derive, report)
                summary = run.local() if o.engine in LOCAL_ENGINES else run.on_cluster()
                summary.counts = store.counts()
        except (OSError, sqlite3.OperationalError) as e:
            line = environment_error(e)
            if line is None:
                raise
            # jobs this run marked running are requeued by the next run (it holds the lock, they are stale)
            raise CampaignError(f"{line}; then 's2l2a run {campaign}' continues where this one stopped") from None
        finally:
            lock.release()
        report(RunEvent("end", done=summary.done, failed=summary.failed, total=summary.total))
        return summary
    finally:
        getattr(report, "close", lambda: None)()


class _Run:
    """The state of one run (the lock is held and the store open while it lives)."""

    def __init__(self, campaign: Path, store: Any, settings: Any, options: RunOptions,
                 derive: dict[str, Any] | None, report: Callable[[RunEvent], None]) -> None:
        from s2l2a.campaign.layout import CampaignLayout

        self.campaign, self.store, self.settings, self.o = campaign, store, settings, options
        self.derive, self.report = derive, report
        self.layout = CampaignLayout.of(campaign, settings)
        self.summary = RunSummary(campaign=campaign, engine=options.engine, output_root=self.layout.output)
        self.submitted: set[int] = set()   # jobs this run sent to a scheduler

    def note(self, text: str) -> None:
        self.report(RunEvent("note", text))

    def info(self, text: str) -> None:
        self.report(RunEvent("info", text))

    def derive_done(self) -> None:
        """``run --derive`` with no conversion left: the per-job hook never sees the done products, so
        derive now those lacking the requested outputs (issue 14; what ``s2l2a derive DIR`` does)."""
        if not self.derive or self.o.dry_run or not self.store.counts()["done"]:
            return
        from s2l2a.campaign.exports import derive_campaign
        from s2l2a.outputs.derive import DeriveSpec

        d = self.derive
        spec = DeriveSpec.from_settings(d)
        outcomes = derive_campaign(self.campaign, spec, d.get("keep", "all"),
                                   delete_l1c=bool(d.get("delete_l1c", False)))
        made = sum(1 for o in outcomes if o.derived_dir and not o.skipped and not o.error)
        had = sum(1 for o in outcomes if o.skipped)
        self.info(f"derived {made} done product(s) into {self.layout.derived}"
                  + (f"; {had} already had these outputs" if had else ""))
        for o in outcomes:
            if o.error:
                self.note(f"derive failed for {o.l2a}: {o.error}")

    # -- steps shared by every engine ---------------------------------------------------------------

    def require_planned(self) -> None:
        if not any(self.store.counts().values()):
            raise CampaignError(f"nothing planned yet; add L1C products with 's2l2a plan {self.campaign} FOLDER'")

    def where_outputs(self) -> str:
        """Where the user finds what this run kept: under ``--keep derived`` the L2A is gone (or,
        with the built-in processor, never written), so pointing at the L2A folder would mislead."""
        if (self.derive or {}).get("keep") == "derived":
            return f"derived outputs are in {self.layout.derived} (L2A not kept: --keep derived)"
        return f"L2A products are in {self.layout.output}"

    def recover(self, keep_running: set[int] | None = None) -> None:
        """Fold, requeue stale attempts (not ``keep_running``: jobs out on a cluster), remove
        leftovers (only when nothing runs anywhere), requeue vanished outputs."""
        from s2l2a.campaign.execute import clean_leftovers, fold_results
        from s2l2a.campaign.layout import claim_output
        from s2l2a.campaign.manifest import requeue_vanished

        folded = fold_results(self.campaign, self.store)
        keep = keep_running or set()
        running = [j.id for j in self.store.jobs(states="running") if j.id not in keep]
        stale = self.store.requeue_stale("the run driving this attempt stopped (found at the next run's start)",
                                         job_ids=running) if running else []
        claim_output(self.layout.output, self.campaign)  # an output root holding only tile folders becomes s2l2a's
        cleaned = [] if keep else clean_leftovers(self.campaign, self.layout.staging, self.layout.output)
        self.summary.recovered = {"folded": folded, "requeued": len(stale), "cleaned": len(cleaned)}
        if folded or stale or cleaned:
            self.note(f"recovered from an earlier run: {folded} finished result(s) recorded, "
                      f"{len(stale)} interrupted job(s) requeued, {len(cleaned)} leftover(s) removed")
        vanished = requeue_vanished(self.campaign, self.store)  # names and sizes only; 'status --verify' opens rasters
        self.summary.recovered["vanished"] = len(vanished)
        if vanished:
            self.note(f"{len(vanished)} done output(s) gone or incomplete, requeued (first: job {vanished[0][0]}: "
                      f"{vanished[0][1]})")

    def preflight(self) -> None:
        """Refuse a run with a failed check, before any job starts (warnings become notes).

        A dry run (nothing submitted) only notes what failed, so its scripts can still be read.
        """
        from s2l2a.campaign.check import FAIL, WARN, RunPlan, run_checks, symbols

        counts = self.store.counts()
        if not counts["queued"] + counts["running"]:
            return  # nothing will start ('nothing to run' follows)
        o = self.o
        plan = RunPlan(engine=o.engine, processor=o.processor, memory_mb=o.memory_mb, workers=o.workers,
                       node_cores=o.cluster.get("node_cores"), node_memory_mb=o.cluster.get("node_memory_mb"),
                       max_concurrent=o.cluster.get("max_concurrent"), job_ids=tuple(o.job_ids), limit=o.limit,
                       skip=tuple(o.skip_checks))
        results = run_checks(self.campaign, self.settings, self.store, plan)
        marks = symbols()
        for r in results:
            if r.status == WARN or (r.status == FAIL and o.dry_run):
                self.note(f"note: {r.line(marks)}")
        failed = [r for r in results if r.status == FAIL]
        if failed and not o.dry_run:
            what = "; ".join(r.text for r in failed)
            names = " ".join(f"--skip-check {r.name}" for r in failed)
            raise CampaignError(f"check failed: {what} ('s2l2a check {self.campaign}' shows every check; {names} "
                                "runs anyway)")

    def select(self) -> list[Any]:
        """The queued jobs this run takes (``job_ids`` not queued are left alone, with a note)."""
        o = self.o
        jobs = self.store.jobs(states="queued", job_ids=list(o.job_ids) or None)
        if o.job_ids:
            for jid in sorted(set(o.job_ids) - {j.id for j in jobs}):
                self.store.job(jid)  # unknown id: one-line error
                self.note(f"job {jid}: not queued; left alone (use 's2l2a retry' for failed jobs)")
        return jobs[:o.limit] if o.limit else jobs

    def specs(self, jobs: Sequence[Any], next_attempt: bool = False,
              memory_mb: int | None = None) -> tuple[str, Any, list[Any]]:
        from s2l2a.campaign.execute import build_specs

        resolved, job_settings, specs = build_specs(self.campaign, self.settings, jobs, processor=self.o.processor,
                                                    memory_mb=memory_mb or self.o.memory_mb, derive=self.derive,
                                                    next_attempt=next_attempt)
        self.summary.processor = resolved
        return resolved, job_settings, specs

    def low_disk(self, roles: Sequence[tuple[str, Path]], floor: int) -> str | None:
        """Why the free space is below ``floor`` MB on one of ``roles`` (role, path); None if it is not."""
        from s2l2a.campaign.check import free_mb

        for role, path in roles:
            free = free_mb(path)
            if free < floor:
                return (f"{free} MB free on the {role} file system ({path}), below the {floor} MB floor "
                        "(one product's outputs, or [resources] min_free_mb)")
        return None

    def should_retry(self, outcome: Any) -> bool:
        """Whether a failed outcome just folded is retried in this run (transient, attempts left)."""
        if outcome.ok or outcome.failure_class not in RETRY_CLASSES:
            return False
        tries = [a for a in self.store.attempts(int(outcome.job_id)) if a.failure_class != "interrupted"]
        return len(tries) < int(self.settings.max_attempts)

    # -- local and Dask ---------------------------------------------------------------------------

    def local(self) -> RunSummary:
        from s2l2a.campaign.cluster import cluster_job_ids, has_arrays, reconcile

        s = self.summary
        if has_arrays(self.campaign) and cluster_job_ids(self.campaign, self.store):
            reconcile(self.campaign, self.store, max_attempts=self.settings.max_attempts)
            left = cluster_job_ids(self.campaign, self.store)
            if left:
                raise CampaignError(f"{len(left)} job(s) are still out on a cluster; follow them with "
                                    "'s2l2a run DIR --engine <scheduler>' or cancel them with "
                                    "'s2l2a cluster cancel DIR' before running locally", self.campaign)
        self.require_planned()
        self.recover()
        self.preflight()
        jobs = self.select()
        if not jobs:
            counts = self.store.counts()
            s.nothing_to_run = True
            self.info(f"nothing to run: {counts['done']} done, {counts['failed']} failed, "
                      f"{counts['skipped']} skipped; {self.where_outputs()}")
            self.derive_done()
            return s
        from s2l2a.engines.base import plan_capacity, with_spare_cores

        resolved, job_settings, specs = self.specs(jobs)
        cap = plan_capacity(job_settings.cores, job_settings.memory_mb,
                            workers=self.o.workers or self.settings.workers or None, n_jobs=len(specs))
        if self.o.engine != "dask":  # a Dask cluster's workers have their own cores
            cap = with_spare_cores(cap)
            _give_cores(specs, cap.job_cores)
        s.total, s.capacity = len(specs), cap.describe()
        self.note(f"running {len(specs)} job(s) with {resolved}, {cap.describe()}")
        self._drive(self._make_engine(cap), specs, resolved)
        return s

    def _make_engine(self, cap: Any) -> Any:
        log = self.layout.logs / "engine.log"
        if self.o.engine == "dask":
            from s2l2a.engines.dask import DaskEngine

            return DaskEngine(str(self.o.scheduler_address), cap, log_file=log)
        from s2l2a.engines.local import LocalEngine

        return LocalEngine(cap, log_file=log)

    def _drive(self, engine: Any, specs: list[Any], resolved: str) -> None:
        """Hand ``specs`` to ``engine`` and fold each outcome as it arrives; retry transient failures
        in further rounds; stop cleanly on Ctrl-C/SIGTERM (running jobs back to the queue)."""
        from s2l2a.campaign.check import disk_floor_mb
        from s2l2a.campaign.execute import clean_leftovers, fold_outcome, mark_folded
        from s2l2a.campaign.jobspec import result_path
        from s2l2a.campaign.progress import ProgressLog, ProgressTicker, progress_interval_s

        s, store = self.summary, self.store
        host, pid = socket.gethostname(), os.getpid()
        started: list[int] = []
        finished = 0
        t0 = time.monotonic()
        floor = disk_floor_mb(self.settings, store.jobs(states="done"), resolved)
        roles = (("output", self.layout.output), ("scratch", self.layout.staging))

        def counters() -> dict[str, int]:
            running = max(len(started) - finished, 0)
            return {"done": s.done, "failed": s.failed, "running": running, "total": s.total}

        def on_start(spec: Any) -> bool:
            if s.low_disk:
                return False
            why = self.low_disk(roles, floor)
            if why:  # the job would fill the disk: it and the rest stay queued
                s.low_disk = why
                self.note(f"stopped starting jobs: {why}; running jobs finish, the rest stay queued")
                return False
            try:
                spec.attempt = store.start_attempt(int(spec.job_id), host, pid, store.log_path(int(spec.job_id)))
            except CampaignError as e:  # e.g. re-planned as a duplicate meanwhile: leave it alone
                self.note(f"job {spec.job_id}: not started: {e}")
                return False
            started.append(int(spec.job_id))
            self.report(RunEvent("start", job_id=int(spec.job_id), **counters()))
            return True

        def line() -> str:
            c = counters()
            ended = s.done + s.failed
            elapsed = time.monotonic() - t0
            rate = ended / elapsed * 3600 if elapsed > 0 else 0.0
            eta = human_duration((s.total - ended) / rate * 3600) if rate > 0 else "-"
            return (f"{s.done} done, {s.failed} failed, {c['running']} running, "
                    f"{max(s.total - ended - c['running'], 0)} queued of {s.total} after {human_duration(elapsed)}; "
                    f"{rate:.1f} jobs/h; ETA {eta}")

        ticker = ProgressTicker(line, progress_interval_s(), log=ProgressLog(self.layout.progress_log),
                                echo=lambda text: self.report(RunEvent("tick", text, **counters())))
        in_main = threading.current_thread() is threading.main_thread()
        previous_term = signal.signal(signal.SIGTERM, _on_sigterm) if in_main else None
        self.report(RunEvent("begin", total=s.total))
        try:
            with ticker:
                engine.start()
                todo = specs
                while todo:
                    again: list[int] = []
                    for outcome in engine.run(self.campaign, todo, on_start=on_start):
                        finished += 1
                        recorded = fold_outcome(store, outcome)
                        rp = result_path(self.campaign, outcome.job_id)
                        if rp.exists():
                            mark_folded(rp)
                        if outcome.derive_error:
                            self.note(outcome.derive_error)
                        if recorded and self.should_retry(outcome):
                            store.requeue(job_ids=[int(outcome.job_id)])
                            again.append(int(outcome.job_id))
                            s.retried += 1
                            self.note(f"job {outcome.job_id}: {outcome.failure_class}, tried again "
                                      f"(attempt {outcome.attempt} of at most {self.settings.max_attempts}): "
                                      f"{outcome.message}")
                        elif outcome.ok:
                            s.done += 1
                        else:
                            s.failed += 1
                        self.report(RunEvent("outcome", job_id=int(outcome.job_id), outcome=outcome, **counters()))
                    if s.low_disk or not again:
                        break
                    todo = _give_cores(self.specs(store.jobs(states="queued", job_ids=again))[2],
                                       engine.capacity.job_cores)
        except (KeyboardInterrupt, _Stop):
            s.interrupted = True
        finally:
            if in_main:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
            try:
                engine.close()
                if s.interrupted:
                    # every job this run started whose outcome did not arrive goes back to the queue;
                    # result files its killed attempt may still have written are ignored later (the
                    # attempt is closed), so a program killed by the stop never counts as a failure
                    store.requeue_stale("interrupted (Ctrl-C or SIGTERM)", job_ids=started)
                    clean_leftovers(self.campaign, self.layout.staging, self.layout.output)
            finally:
                if in_main:
                    signal.signal(signal.SIGINT, signal.default_int_handler)
                    signal.signal(signal.SIGTERM, previous_term)
        s.elapsed_s = time.monotonic() - t0
        took, counts = human_duration(s.elapsed_s), store.counts()
        if s.interrupted:
            s.exit_code = EXIT_INTERRUPTED
            self.note(f"interrupted after {took}: {s.done} done, {s.failed} failed in this run; "
                      f"{counts['queued']} queued for the next 's2l2a run {self.campaign}'")
        elif s.low_disk:
            s.exit_code = EXIT_LOW_DISK
            self.note(f"run stopped starting jobs after {took}: {s.done} done, {s.failed} failed; "
                      f"{counts['queued']} left queued: {s.low_disk}; free some space, then "
                      f"'s2l2a run {self.campaign}' continues")
        else:
            s.exit_code = EXIT_FAILURES if s.failed else 0
            tail = f"; see 's2l2a status {self.campaign}'" if s.failed else ""
            self.info(f"run finished in {took}: {s.done} done, {s.failed} failed of {s.total}; "
                      f"{self.where_outputs()}{tail}")

    # -- batch schedulers ---------------------------------------------------------------------------

    def on_cluster(self) -> RunSummary:
        """Reconcile and recover, then submit the queued jobs as arrays (or print them: dry run);
        with ``wait``, stay until every array has ended, resubmitting jobs a node failure requeued."""
        from s2l2a.campaign.cluster import cluster_job_ids, reconcile
        from s2l2a.engines.cluster import ClusterEngine, cluster_options, make_scheduler

        o, s, store = self.o, self.summary, self.store
        table = self.settings.extra.get("cluster", {})
        if isinstance(table, dict):
            # what one product asks a node for: --memory-mb, else [cluster] memory_mb, else [resources]
            # (the same for cores), so the node-size checks see what will be submitted
            table = {"memory_mb": int(o.memory_mb or self.settings.memory_mb),
                     "cores_per_job": int(self.settings.cores_per_job), **table}
            if o.memory_mb:
                table["memory_mb"] = int(o.memory_mb)
        opts = cluster_options(table, o.engine, **o.cluster)
        engine = ClusterEngine(make_scheduler(o.engine, opts), opts)
        engines = {o.engine: engine}
        self.require_planned()
        if not o.dry_run:
            r = reconcile(self.campaign, store, engines, max_attempts=self.settings.max_attempts)
            on_cluster = cluster_job_ids(self.campaign, store)
            stale = [j.id for j in store.jobs(states="running") if j.id not in on_cluster]
            if stale:
                store.requeue_stale("the local run driving this attempt stopped", job_ids=stale)
            if r.folded or r.lost or stale:
                self.note(f"reconciled: {r.folded} result file(s) recorded, {len(r.lost)} element(s) ended "
                          f"without one, {len(stale)} stale local attempt(s) requeued")
            for job_id, cls, msg in r.lost:
                self.note(f"  job {job_id} failed ({cls}): {msg}")
            for job_id in r.requeued:
                self.note(f"  job {job_id}: its node failed; queued again (at most "
                          f"{self.settings.max_attempts} attempts)")
            self.recover(keep_running=on_cluster)
        self.preflight()
        while True:
            self._submit(engine)
            if not o.wait or o.dry_run or s.exit_code or s.interrupted:
                break
            again = self._wait(engines)
            if not again or s.interrupted:
                break
            self.note(f"{again} job(s) queued again after a node failure; submitting them")
        return s

    def _submit(self, engine: Any) -> None:
        """Submit (or, dry, render) the selected queued jobs as arrays."""
        from s2l2a.campaign.check import disk_floor_mb
        from s2l2a.campaign.cluster import (
            CLUSTER_DIR,
            LOG_DIR,
            cluster_job_ids,
            plan_duration,
            plan_memory,
            submit_arrays,
        )

        o, s, store = self.o, self.summary, self.store
        jobs = self.select()
        if not jobs:
            s.on_cluster = len(cluster_job_ids(self.campaign, store)) if not o.dry_run else 0
            counts = store.counts()
            s.nothing_to_run = not s.arrays
            if not s.arrays:
                self.info(f"nothing to submit: {counts['done']} done, {counts['failed']} failed, "
                          f"{s.on_cluster} on the cluster")
            return
        resolved, _, specs = self.specs(jobs, next_attempt=True, memory_mb=engine.options.memory_mb)
        per_product_s, why, bound = plan_duration(store, engine.options, specs)
        plan = engine.plan(specs, per_product_s, upper_bound=bound)
        s.explanation = [f"duration per product: {why}", *plan.explanation]
        s.explanation += engine.scheduler.explain()  # e.g. LSF's memory unit and where it comes from
        s.explanation += plan_memory(store, engine.options.memory_mb)  # measured peaks propose memory_mb
        if o.dry_run:
            for line in s.explanation:
                self.info(f"# {line}")
            for arr in engine.prepare(self.campaign, specs, plan, self.settings.name, log_dir=LOG_DIR):
                s.scripts.append((f"{CLUSTER_DIR}/{arr.name}.sh", arr.script))
                self.info(f"# ---- {CLUSTER_DIR}/{arr.name}.sh (not submitted; {len(arr.elements)} element(s)) ----")
                self.info(arr.script.rstrip("\n"))
            return
        # the output file system is shared with the nodes: below the floor, submitting only fills it
        # (node-local scratch cannot be seen from here)
        why_low = self.low_disk((("output", self.layout.output),),
                                disk_floor_mb(self.settings, store.jobs(states="done"), resolved))
        if why_low:
            s.low_disk, s.exit_code = why_low, EXIT_LOW_DISK
            self.note(f"nothing submitted: {why_low}; free some space, then "
                      f"'s2l2a run {self.campaign} --engine {o.engine}' submits the {len(specs)} queued job(s)")
            return
        for line in s.explanation:
            self.note(line)
        records = submit_arrays(self.campaign, store, engine, specs, per_product_s=per_product_s, upper_bound=bound,
                                campaign_name=self.settings.name)
        s.total += len(specs)
        self.submitted.update(int(sp.job_id) for sp in specs)
        for rec in records:
            n_jobs = sum(len(e) for e in rec.elements)
            s.arrays.append({"array": rec.name, "scheduler": rec.scheduler, "job_id": rec.job_id,
                             "elements": len(rec.elements), "jobs": n_jobs, "script": rec.script})
            self.info(f"submitted {o.engine} array {rec.job_id} ({rec.name}): {len(rec.elements)} element(s), "
                      f"{n_jobs} job(s); script {rec.script}")
        s.on_cluster = len(cluster_job_ids(self.campaign, store))
        if not o.wait:
            self.info(f"follow with 's2l2a status {self.campaign}'; "
                      f"'s2l2a run {self.campaign} --engine {o.engine}' folds results")

    def _wait(self, engines: dict[str, Any]) -> int:
        """Reconcile until nothing is in flight; returns how many jobs a node failure requeued."""
        from s2l2a.campaign.cluster import cluster_job_ids, wait_for

        s, store = self.summary, self.store
        requeued: list[int] = []
        try:
            wait_for(self.campaign, store, engines, interval_s=self.o.poll_interval_s, echo=self.info,
                     max_attempts=self.settings.max_attempts, requeued=requeued)
        except KeyboardInterrupt:
            s.interrupted = True
            s.exit_code = EXIT_INTERRUPTED
            self.info("stopped waiting; the arrays keep running on the cluster")
            return 0
        s.retried += len(requeued)
        s.on_cluster = len(cluster_job_ids(self.campaign, store))
        ours = store.jobs(job_ids=sorted(self.submitted)) if self.submitted else []
        s.done = sum(1 for j in ours if str(j.state) == "done")
        s.failed = sum(1 for j in ours if str(j.state) == "failed")
        s.exit_code = EXIT_FAILURES if store.counts()["failed"] else 0
        return len(requeued)


def _give_cores(specs: list[Any], cores: int) -> list[Any]:
    """The cores each job may use (:func:`s2l2a.engines.base.with_spare_cores`), into its settings."""
    for spec in specs:
        spec.settings["cores"] = int(cores)
    return specs
