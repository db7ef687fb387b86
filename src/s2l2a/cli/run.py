"""``s2l2a run DIR``: convert every queued product of a campaign on this machine.

Safe to re-run at any time: the run lock guarantees a single run per campaign, so whatever a
killed run left behind (jobs marked running, staging directories, unfolded result files) is
recognisably stale and is cleaned up before new work starts.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import click

from s2l2a.cli._common import campaign_argument, environment_error, human_duration, user_errors
from s2l2a.cli._engines import dispatch, engine_options, local_engine_factory, pop_engine_options
from s2l2a.cli.check import skip_check_option, symbols
from s2l2a.errors import CampaignError
from s2l2a.registry import processor_names

EXIT_FAILURES = 3      # the run finished but some jobs failed
EXIT_LOW_DISK = 4      # the run stopped starting jobs: too little free space (the rest stay queued)
EXIT_INTERRUPTED = 130


class _Stop(Exception):
    """SIGTERM arrived: stop like on Ctrl-C."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Stop()


@click.command("run")
@campaign_argument
@click.option("--processor", type=click.Choice(processor_names()), default=None,
              help="Processor for this run (default: the campaign's setting; installed plug-ins are listed too).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="At most this many conversions at once (default: as many as cores and memory allow).")
@click.option("--memory-mb", type=click.IntRange(min=256), default=None,
              help="Memory per conversion in MB (default: [resources] memory_mb).")
@click.option("--job", "job_ids", type=int, multiple=True, metavar="ID", help="Only this job (repeatable).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Run at most N jobs.")
@click.option("--derive", "derive_indices", default=None, metavar="INDICES",
              help="Derive these indices (e.g. ndvi,ndwi) + SCL as COGs right after each L2A is verified "
                   "(default: the [derive] section of s2l2a.toml, else nothing).")
@click.option("--formula", "formulas", multiple=True, metavar="NAME=EXPR",
              help="Also derive a formula over band names, e.g. 'ndmi=(B8A-B11)/(B8A+B11)' (repeatable).")
@click.option("--derive-resolution", type=click.Choice(["10", "20", "60"]), default=None,
              help="Resolution of derived outputs in m (default 10).")
@click.option("--clear-classes", default=None, metavar="CLASSES",
              help="Also write a clear-sky mask of these SCL classes, e.g. 4,5,6.")
@click.option("--keep", type=click.Choice(["all", "derived", "l2a"]), default=None,
              help="After deriving: keep all (default), only the derived outputs (deletes the verified "
                   "L2A), or only the L2A.")
@click.option("--delete-l1c", is_flag=True, default=False,
              help="Delete each L1C once its L2A is verified (never without this flag).")
@skip_check_option
@engine_options
@user_errors
def cmd(campaign: Path, processor: str | None, workers: int | None, memory_mb: int | None,
        job_ids: tuple[int, ...], limit: int | None, derive_indices: str | None, formulas: tuple[str, ...],
        derive_resolution: str | None, clear_classes: str | None, keep: str | None, delete_l1c: bool,
        skip_checks: tuple[str, ...], **engine_kw: Any) -> None:
    """Run the campaign's queued jobs, in parallel on this machine unless --engine says otherwise.

    The checks of 's2l2a check' run first; a failed one (✗) stops the run before any job starts.
    Ctrl-C stops cleanly (running jobs go back to the queue). Re-running continues where a
    run stopped, even after a crash. Exit status: 0 all done, 3 finished with failed jobs
    (see 's2l2a status'), 4 stopped starting jobs for lack of disk space, 130 interrupted,
    1 error (e.g. nothing planned, a failed check, another run holds the campaign).
    """
    from s2l2a.campaign.lock import RunLock

    campaign = campaign.resolve()
    from s2l2a.campaign.settings import CampaignSettings
    from s2l2a.campaign.store import CampaignStore

    settings = CampaignSettings.load(campaign)  # not a campaign: one line, before taking a lock
    engine = pop_engine_options(engine_kw)
    derive = _derive_settings(settings, derive_indices, formulas, derive_resolution, clear_classes, keep,
                              delete_l1c)
    lock = RunLock(campaign).acquire()
    try:
        with CampaignStore.open(campaign) as store:
            _preflight(campaign, store, settings, engine, processor=processor, memory_mb=memory_mb,
                       workers=workers, job_ids=job_ids, limit=limit, skip=skip_checks)
            code = dispatch(campaign, store, settings, engine, processor=processor, memory_mb=memory_mb,
                            job_ids=job_ids, limit=limit, derive=derive)
            if code is None:
                code = _run(campaign, store, settings, processor, workers, memory_mb, job_ids, limit,
                            make_engine=local_engine_factory(engine, campaign), derive=derive)
    except (OSError, sqlite3.OperationalError) as e:
        line = environment_error(e)
        if line is None:
            raise
        # jobs this run marked running are requeued by the next run (it holds the lock, they are stale)
        raise CampaignError(f"{line}; then 's2l2a run {campaign}' continues where this one stopped") from None
    finally:
        lock.release()
    sys.exit(code)


def _preflight(campaign: Path, store: Any, settings: Any, engine: dict[str, Any], *, processor: str | None,
               memory_mb: int | None, workers: int | None, job_ids: tuple[int, ...], limit: int | None,
               skip: tuple[str, ...]) -> None:
    """Refuse a run with nothing planned or a failed check, before any job starts (notes go to stderr).

    A dry run (nothing submitted) only prints what failed, so its scripts can still be read.
    """
    from s2l2a.campaign.check import FAIL, WARN, RunPlan, run_checks

    counts = store.counts()
    if not any(counts.values()):
        raise CampaignError(f"nothing planned yet; add L1C products with 's2l2a plan {campaign} FOLDER'")
    if not counts["queued"] + counts["running"]:
        return  # nothing will start ('nothing to run' follows)
    plan = RunPlan(engine=engine.get("engine") or "local", processor=processor, memory_mb=memory_mb,
                   workers=workers, node_cores=engine.get("node_cores"),
                   node_memory_mb=engine.get("node_memory_mb"), max_concurrent=engine.get("max_concurrent"),
                   job_ids=job_ids, limit=limit, skip=skip)
    results = run_checks(campaign, settings, store, plan)
    marks = symbols()
    for r in results:
        if r.status == WARN or (r.status == FAIL and engine.get("dry_run")):
            click.echo(f"note: {r.line(marks)}", err=True)
    failed = [r for r in results if r.status == FAIL]
    if failed and not engine.get("dry_run"):
        what = "; ".join(r.text for r in failed)
        names = " ".join(f"--skip-check {r.name}" for r in failed)
        raise CampaignError(f"check failed: {what} ('s2l2a check {campaign}' shows every check; {names} "
                            "runs anyway)")


def _derive_settings(settings: Any, indices: str | None, formulas: tuple[str, ...], resolution: str | None,
                     clear_classes: str | None, keep: str | None, delete_l1c: bool) -> dict[str, Any] | None:
    """What to derive per product: the campaign's ``[derive]`` section, overridden by options.

    Checked here (formulas parsed, classes and resolution valid) so a typo stops the run before
    the first conversion, not after it.
    """
    from s2l2a.errors import ConfigError
    from s2l2a.outputs.derive import DeriveSpec

    d: dict[str, Any] = dict(settings.extra.get("derive", {}) or {})
    if indices is not None:
        d["indices"] = [i.strip().lower() for i in indices.split(",") if i.strip()]
    if formulas:
        d["formulas"] = list(formulas)
    if resolution:
        d["resolution"] = int(resolution)
    if clear_classes:
        try:
            d["clear_classes"] = [int(c) for c in clear_classes.split(",") if c.strip()]
        except ValueError:
            raise ConfigError(f"--clear-classes {clear_classes!r}: give SCL class numbers like 4,5,6") from None
    if keep:
        d["keep"] = keep
    if delete_l1c:
        d["delete_l1c"] = True
    if not (d.get("indices") or d.get("formulas")):
        if d.get("keep") == "derived" or d.get("delete_l1c"):
            raise ConfigError("--keep derived / --delete-l1c need something to derive (--derive ndvi ...)")
        return None
    try:
        DeriveSpec(indices=tuple(d.get("indices") or ()), formulas=tuple(d.get("formulas") or ()),
                   resolution=int(d.get("resolution") or 10),
                   clear_classes=tuple(d["clear_classes"]) if d.get("clear_classes") else None).parsed()
    except Exception as e:  # noqa: BLE001 - DeriveError/FormulaError: one line before any work
        raise ConfigError(f"derive settings: {e}") from None
    return d


def _run(campaign: Path, store: Any, settings: Any, processor: str | None, workers: int | None,
         memory_mb: int | None, job_ids: tuple[int, ...], limit: int | None, make_engine: Any = None,
         derive: dict[str, Any] | None = None) -> int:
    from s2l2a.campaign.execute import (
        build_specs,
        campaign_staging_root,
        clean_leftovers,
        fold_outcome,
        fold_results,
        mark_folded,
    )
    from s2l2a.campaign.jobspec import JobSpec, result_path
    from s2l2a.campaign.layout import PROGRESS_FILE
    from s2l2a.campaign.progress import ProgressLog, ProgressTicker, progress_interval_s
    from s2l2a.engines.base import plan_capacity
    from s2l2a.errors import CampaignError

    staging, output = campaign_staging_root(campaign, settings), settings.output_root(campaign)
    # 1. recovery: we hold the lock, so nothing else runs jobs of this campaign right now
    folded = fold_results(campaign, store)
    stale = store.requeue_stale("the run driving this attempt stopped (found at the next run's start)")
    from s2l2a.campaign.layout import claim_output

    claim_output(output, campaign)  # an output root holding only tile folders becomes s2l2a's
    cleaned = clean_leftovers(campaign, staging, output)
    if folded or stale or cleaned:
        click.echo(f"recovered from an earlier run: {folded} finished result(s) recorded, "
                   f"{len(stale)} interrupted job(s) requeued, {len(cleaned)} leftover(s) removed", err=True)
    from s2l2a.campaign.manifest import requeue_vanished

    vanished = requeue_vanished(campaign, store)  # names and sizes only; 'status --verify' opens rasters
    if vanished:
        click.echo(f"{len(vanished)} done output(s) gone or incomplete, requeued (first: job {vanished[0][0]}: "
                   f"{vanished[0][1]})", err=True)

    # 2. what to run (resolved the same way for every engine)
    jobs = store.jobs(states="queued", job_ids=job_ids or None)
    if job_ids:
        missing = set(job_ids) - {j.id for j in jobs}
        for jid in sorted(missing):
            store.job(jid)  # unknown id: one-line error
            click.echo(f"job {jid}: not queued; left alone (use 's2l2a retry' for failed jobs)", err=True)
    if limit:
        jobs = jobs[:limit]
    if not jobs:
        counts = store.counts()
        click.echo(f"nothing to run: {counts['done']} done, {counts['failed']} failed, "
                   f"{counts['skipped']} skipped; L2A products are in {output}")
        return 0
    resolved, job_settings, specs = build_specs(campaign, settings, jobs, processor=processor,
                                                memory_mb=memory_mb, derive=derive)
    cap = plan_capacity(job_settings.cores, job_settings.memory_mb,
                        workers=workers or settings.workers or None, n_jobs=len(specs))
    click.echo(f"running {len(specs)} job(s) with {resolved}, {cap.describe()}", err=True)

    # 3. run, folding each outcome as it arrives (this process is the store's only writer)
    from s2l2a.campaign.check import disk_floor_mb, free_mb
    from s2l2a.engines.local import LocalEngine

    host, pid = socket.gethostname(), os.getpid()
    done = failed = 0
    t0 = time.monotonic()

    started: list[int] = []
    floor = disk_floor_mb(settings, store.jobs(states="done"), resolved)
    low_disk: list[str] = []

    def on_start(spec: JobSpec) -> bool:
        if low_disk:
            return False
        for role, path in (("output", output), ("scratch", staging)):
            free = free_mb(path)
            if free < floor:  # the job would fill the disk: it and the rest stay queued
                low_disk.append(f"{free} MB free on the {role} file system ({path}), below the {floor} MB "
                                "floor (one product's outputs, or [resources] min_free_mb)")
                click.echo(f"stopped starting jobs: {low_disk[0]}; running jobs finish, the rest stay queued",
                           err=True)
                return False
        try:
            spec.attempt = store.start_attempt(int(spec.job_id), host, pid, store.log_path(int(spec.job_id)))
        except CampaignError as e:  # e.g. re-planned as a duplicate meanwhile: leave it alone
            click.echo(f"job {spec.job_id}: not started: {e}", err=True)
            return False
        started.append(int(spec.job_id))
        return True

    previous_term = signal.signal(signal.SIGTERM, _on_sigterm)
    engine = make_engine(cap) if make_engine else LocalEngine(cap, log_file=campaign / "logs" / "engine.log")
    interrupted = False
    def summary() -> str:
        finished = done + failed
        running = max(len(started) - finished, 0)
        elapsed = time.monotonic() - t0
        rate = finished / elapsed * 3600 if elapsed > 0 else 0.0
        eta = human_duration((len(specs) - finished) / rate * 3600) if rate > 0 else "-"
        return (f"{done} done, {failed} failed, {running} running, "
                f"{len(specs) - finished - running} queued of {len(specs)} after {human_duration(elapsed)}; "
                f"{rate:.1f} jobs/h; ETA {eta}")

    ticker = ProgressTicker(summary, progress_interval_s(), log=ProgressLog(campaign / PROGRESS_FILE),
                            echo=None if sys.stderr.isatty() else lambda line: click.echo(line, err=True))
    try:
        with _Progress(len(specs)) as bar, ticker:
            engine.start()
            for outcome in engine.run(campaign, specs, on_start=on_start):
                fold_outcome(store, outcome)
                rp = result_path(campaign, outcome.job_id)
                if rp.exists():
                    mark_folded(rp)
                if outcome.derive_error:
                    click.echo(outcome.derive_error, err=True)
                if outcome.ok:
                    done += 1
                else:
                    failed += 1
                bar.update(done, failed, outcome)
    except (KeyboardInterrupt, _Stop):
        interrupted = True
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        try:
            engine.close()
            if interrupted:
                # every job this run started whose outcome did not arrive goes back to the queue;
                # result files its killed attempt may still have written are ignored later (the
                # attempt is closed), so a program killed by the stop never counts as a failure
                store.requeue_stale("interrupted (Ctrl-C or SIGTERM)", job_ids=started)
                clean_leftovers(campaign, staging, output)
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, previous_term)
    took = human_duration(time.monotonic() - t0)
    counts = store.counts()
    if interrupted:
        click.echo(f"interrupted after {took}: {done} done, {failed} failed in this run; "
                   f"{counts['queued']} queued for the next 's2l2a run {campaign}'", err=True)
        return EXIT_INTERRUPTED
    where = f"L2A products are in {output}"
    if low_disk:
        click.echo(f"run stopped starting jobs after {took}: {done} done, {failed} failed; {counts['queued']} "
                   f"left queued: {low_disk[0]}; free some space, then 's2l2a run {campaign}' continues",
                   err=True)
        return EXIT_LOW_DISK
    tail = f"; see 's2l2a status {campaign}'" if failed else ""
    click.echo(f"run finished in {took}: {done} done, {failed} failed of {len(specs)}; {where}{tail}")
    return EXIT_FAILURES if failed else 0


class _Progress:
    """A rich progress bar on a terminal; off a terminal the ProgressTicker's lines stand in for it."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]converting"), BarColumn(), MofNCompleteColumn(),
                TextColumn("[green]{task.fields[done]} done[/] [red]{task.fields[failed]} failed[/]"),
                TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True), transient=False)
            self._progress.start()
            self._task = self._progress.add_task("run", total=self.total, done=0, failed=0)
        return self

    def update(self, done: int, failed: int, outcome: Any) -> None:
        if self._progress is None:
            return
        if not outcome.ok:
            from rich.markup import escape

            self._progress.console.print(f"[red]failed[/] ({outcome.failure_class}) {escape(outcome.message)}",
                                         highlight=False)
        self._progress.update(self._task, completed=done + failed, done=done, failed=failed)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
