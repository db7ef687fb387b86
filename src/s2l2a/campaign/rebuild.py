"""``s2l2a rebuild``: a new store for a campaign whose ``campaign.sqlite`` is damaged, empty or lost.

Nothing the campaign made is lost with the store, because every committed change is also a line
of ``progress.log`` (see :mod:`.progress`): a planned product's line names its job id and path,
every attempt's start and end, every skip and requeue follow. Rebuilding

1. takes the run lock (no run may write meanwhile) and moves the old store aside as
   ``campaign.sqlite.broken-<time>`` (with its ``-wal``/``-shm``): never deleted;
2. replays progress.log into jobs (same ids), attempts and rejected inputs;
3. checks the replay against the outputs: a job recorded done whose output is gone is queued
   again (unless its derived folder is there: ``--keep derived`` deleted or never wrote the L2A),
   and a job whose output exists (its ``.source`` marker names the job's L1C) is done even when
   the line recording it was lost;
4. with ROOT folders, also re-reads the products there: this fills in the paths of products
   planned by an older s2l2a (whose log lines did not carry them) and plans new ones;
5. folds unread result files (``results/*.json``) and requeues what was left running, the same
   recovery a ``run`` does at its start.

Products the log names without a path, and that no ROOT holds, cannot be restored; they are
listed, and planning their folder again adds them (skipped at once when their output exists).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from s2l2a.campaign.layout import DB_FILE, LOGS_DIR, PROGRESS_FILE, CampaignLayout
from s2l2a.campaign.lock import RunLock
from s2l2a.campaign.progress import ProgressEvent, parse_line
from s2l2a.campaign.states import JobState
from s2l2a.campaign.store import (
    FROM,
    MOVED_TO,
    PLANNED_AS,
    REJECTED,
    Attempt,
    CampaignStore,
    Job,
    Rejection,
)
from s2l2a.clock import iso, stamp
from s2l2a.errors import CampaignError, S2L2AError

BROKEN_SUFFIX = ".broken-"

_RUNNING = re.compile(r"^attempt (\d+) on (\S*) pid (-?\d+)")
_DONE = re.compile(r"^attempt (\d+)(?: -> (.*))?$")
_FAILED = re.compile(r"^attempt (\d+) (\S+): (.*)$")


@dataclass
class RebuildReport:
    """What a rebuild did, for one line per fact on the terminal."""

    moved_aside: list[Path] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    events: int = 0
    done_from_outputs: int = 0
    requeued_missing_output: int = 0
    requeued_running: int = 0
    folded: int = 0
    rejections: int = 0
    planned_from_roots: int = 0
    unknown_path: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        c = self.counts
        out = [f"moved aside: {p}" for p in self.moved_aside]
        out.append(f"rebuilt from {self.events} progress.log line(s): {sum(c.values())} job(s): "
                   + ", ".join(f"{n} {s}" for s, n in c.items()))
        if self.done_from_outputs:
            out.append(f"{self.done_from_outputs} job(s) done by their output on disk (their log line was lost)")
        if self.requeued_missing_output:
            out.append(f"{self.requeued_missing_output} job(s) recorded done whose output is gone: queued again")
        if self.requeued_running or self.folded:
            out.append(f"{self.folded} unread result(s) recorded, {self.requeued_running} interrupted job(s) requeued")
        if self.rejections:
            out.append(f"{self.rejections} rejected input(s) restored")
        if self.planned_from_roots:
            out.append(f"{self.planned_from_roots} product(s) planned from the given folders")
        if self.unknown_path:
            out.append(f"{len(self.unknown_path)} product(s) without a known path were not restored (first: "
                       f"{self.unknown_path[0]}); plan their folder again: s2l2a plan DIR ROOT")
        return out


@dataclass
class _Entry:
    """One product as the log replays it."""

    name: str
    tile: str
    order: int
    job_id: int | None = None
    path: str | None = None
    added_at: str = ""
    updated_at: str = ""
    state: JobState = JobState.QUEUED
    skip_reason: str | None = None
    failure_class: str | None = None
    message: str | None = None
    output_path: str | None = None
    attempts: dict[int, Attempt] = field(default_factory=dict)


def move_aside(campaign_dir: Path) -> list[Path]:
    """Rename ``campaign.sqlite`` (and its -wal/-shm) to ``*.broken-<UTC time>``; never deletes."""
    when = stamp()
    moved: list[Path] = []
    for suffix in ("", "-wal", "-shm"):
        src = campaign_dir / f"{DB_FILE}{suffix}"
        if not os.path.lexists(src):
            continue
        dst = campaign_dir / f"{DB_FILE}{BROKEN_SUFFIX}{when}{suffix}"
        n = 1
        while os.path.lexists(dst):
            n += 1
            dst = campaign_dir / f"{DB_FILE}{BROKEN_SUFFIX}{when}.{n}{suffix}"
        os.rename(src, dst)
        moved.append(dst)
    return moved


def read_events(campaign_dir: Path) -> list[ProgressEvent]:
    """progress.log's events; a torn or foreign line is skipped (a rebuild takes what it can)."""
    try:
        text = (campaign_dir / PROGRESS_FILE).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        try:
            ev = parse_line(line)
        except ValueError:
            continue
        if ev.state in {s.value for s in JobState} or ev.state == REJECTED:
            out.append(ev)
    return out


def replay(events: Iterable[ProgressEvent]) -> tuple[dict[str, _Entry], dict[str, Rejection]]:
    """Jobs (by product name) and rejected inputs (by path) as the events leave them."""
    entries: dict[str, _Entry] = {}
    rejected: dict[str, Rejection] = {}
    for ev in events:
        if ev.state == REJECTED:
            path, _, reason = ev.detail.partition(": ")
            first = rejected[path].first_seen if path in rejected else ev.time
            rejected[path] = Rejection(path, reason, first, ev.time)
            continue
        e = entries.get(ev.product)
        if e is None:
            e = entries[ev.product] = _Entry(name=ev.product, tile=ev.tile, order=len(entries), added_at=ev.time)
        e.updated_at = ev.time
        state = JobState(ev.state)
        d = ev.detail
        if d.startswith(PLANNED_AS) and FROM in d:
            jid, _, path = d[len(PLANNED_AS):].partition(FROM)
            e.job_id = int(jid) if jid.isdigit() else None
            e.path = path
            rejected.pop(path, None)   # rejected once, planned since
            continue
        if d.startswith(MOVED_TO):
            e.path = d[len(MOVED_TO):]
            continue
        e.state = state
        if state is JobState.RUNNING and (m := _RUNNING.match(d)):
            n = int(m.group(1))
            e.attempts[n] = Attempt(0, n, "running", ev.time, None, None, None, None, None, m.group(2) or None,
                                    int(m.group(3)))
            e.failure_class = e.message = None
        elif state is JobState.DONE and (m := _DONE.match(d)):
            e.output_path = m.group(2) or e.output_path
            _close(e, int(m.group(1)), "done", ev.time)
            e.failure_class = e.message = None
        elif state is JobState.FAILED and (m := _FAILED.match(d)):
            e.failure_class, e.message = m.group(2), m.group(3)
            _close(e, int(m.group(1)), "failed", ev.time, m.group(2), m.group(3))
        elif state is JobState.QUEUED:
            if d.startswith("interrupted: ") and e.attempts:
                _close(e, max(e.attempts), "failed", ev.time, "interrupted", d.removeprefix("interrupted: "))
            e.failure_class = e.message = e.skip_reason = None
        elif state is JobState.SKIPPED:
            e.skip_reason = d or None
            if d.startswith("output exists: "):
                e.output_path = d.removeprefix("output exists: ")
    return entries, rejected


def _close(e: _Entry, n: int, state: str, end: str, fc: str | None = None, message: str | None = None) -> None:
    a = e.attempts.get(n)
    if a is not None and a.end is None:
        a.state, a.end, a.failure_class, a.message = state, end, fc, message


def outputs_by_source(output_root: Path) -> dict[str, Path]:
    """L1C name -> its published L2A, from the ``.source`` markers beside the outputs."""
    from s2l2a.campaign.execute import source_marker

    out: dict[str, Path] = {}
    if not output_root.is_dir():
        return out
    for tile_dir in sorted(output_root.iterdir()):
        if not tile_dir.is_dir() or tile_dir.is_symlink():
            continue
        for p in sorted(tile_dir.iterdir()):
            if p.name.startswith(".") or not p.name.endswith(".SAFE") or not p.is_dir():
                continue
            try:
                owner = source_marker(tile_dir, p.name).read_text(encoding="utf-8").strip()
            except OSError:
                continue
            if owner:
                out[owner.removesuffix(".SAFE")] = p
    return out


def _job(e: _Entry, job_id: int) -> Job:
    from s2l2a import safe

    sensing, baseline, generation, mission = e.added_at, None, None, None
    try:
        n = safe.parse_product_name(e.name)
        sensing = iso(n.sensing_time)
        baseline = n.baseline
        generation = iso(n.generation_time) if n.generation_time else None
        mission = n.mission
    except S2L2AError:
        pass
    return Job(id=job_id, product_id=job_id, path=Path(e.path or ""), name=e.name, tile=e.tile,
               sensing_time=sensing, baseline=baseline, generation_time=generation, mission=mission,
               cloud_cover=None, added_at=e.added_at, state=e.state, skip_reason=e.skip_reason,
               attempts=max(e.attempts, default=0), failure_class=e.failure_class, message=e.message,
               output_path=Path(e.output_path) if e.output_path else None, processor=None,
               processor_version=None, updated_at=e.updated_at)


def store_is_healthy(campaign_dir: Path) -> int | None:
    """The number of jobs of a store that opens and checks fine, else None."""
    try:
        with CampaignStore.open(campaign_dir) as store:
            return sum(store.counts().values())
    except CampaignError:
        return None


def rebuild(campaign_dir: Path | str, roots: Iterable[Path | str] = (), force: bool = False) -> RebuildReport:
    """Move the campaign's store aside and rebuild it (see the module docstring)."""
    from s2l2a.campaign.execute import fold_results
    from s2l2a.campaign.planner import INPUTS_DIR, PlanReport, _open_all, check_roots, discover, plan_records
    from s2l2a.campaign.settings import CampaignSettings
    from s2l2a.outputs.derive import find_derived

    d = Path(campaign_dir)
    settings = CampaignSettings.load(d)   # not a campaign: one line before anything moves
    roots = check_roots(roots)
    report = RebuildReport()
    with RunLock(d):
        n = store_is_healthy(d) if (d / DB_FILE).exists() else None
        if n is not None and not force:
            raise CampaignError(f"the campaign store is healthy ({n} job(s)); nothing to rebuild "
                                "(--force rebuilds it anyway, keeping the current one aside)", d / DB_FILE)
        events = read_events(d)
        report.events = len(events)
        entries, rejected = replay(events)

        found: list = []
        if roots:   # paths for products planned by an older s2l2a, and products not planned yet
            plan_report = PlanReport()
            todo = discover(roots, None, plan_report, inputs_dir=d / INPUTS_DIR,
                            own=(d, settings.output_root(d)))
            found = [r for _, r, _ in _open_all(todo, None) if r is not None]
            for r in found:
                e = entries.get(r.name)
                if e is not None and (not e.path or not Path(e.path).exists()):
                    e.path = str(r.path)

        output_root = settings.output_root(d)
        by_source = outputs_by_source(output_root)
        kept_derived = find_derived(CampaignLayout.of(d).derived)
        ordered = sorted(entries.values(), key=lambda e: e.order)
        used = {e.job_id for e in ordered if e.job_id is not None}
        next_id = 1   # ids an older log did not record: planning order, around the recorded ones
        jobs: list[Job] = []
        attempts: list[Attempt] = []
        assigned: set[int] = set()
        for e in ordered:
            if not e.path:
                report.unknown_path.append(e.name)
                continue
            if e.job_id is None or e.job_id in assigned:   # an older log without ids: planning order
                while next_id in used:
                    next_id += 1
                e.job_id = next_id
                used.add(next_id)
            assigned.add(e.job_id)
            out = by_source.get(e.name)
            if e.state is JobState.DONE and not (e.output_path and Path(e.output_path).is_dir()):
                if out is not None:
                    e.output_path = str(out)
                elif e.output_path and Path(e.output_path).name.removesuffix(".SAFE") in kept_derived:
                    pass  # --keep derived: its L2A was deleted (or never written) on purpose
                else:
                    e.state, e.message = JobState.QUEUED, None
                    report.requeued_missing_output += 1
            elif e.state in (JobState.QUEUED, JobState.FAILED, JobState.RUNNING) and out is not None:
                if e.state is JobState.RUNNING:
                    _close(e, max(e.attempts), "done", e.updated_at)
                e.state, e.output_path, e.failure_class, e.message = JobState.DONE, str(out), None, None
                report.done_from_outputs += 1
            job = _job(e, e.job_id)
            jobs.append(job)
            attempts += [Attempt(job.id, a.n, a.state, a.start, a.end, a.exit_status, a.failure_class,
                                 a.message, str(d / LOGS_DIR / f"{job.id}.log"), a.host, a.pid)
                         for a in e.attempts.values()]
        report.moved_aside = move_aside(d)
        store = CampaignStore(d / DB_FILE, campaign_dir=d)
        try:
            store.restore(jobs, attempts, rejected.values())
            report.rejections = len(rejected)
            if found:
                known = {j.name for j in jobs}
                new = [r for r in found if r.name not in known]
                plan_report = plan_records(store, new, output_root)
                report.planned_from_roots = plan_report.added
            # the recovery every run does first: unread results, then what was left running
            report.folded = fold_results(d, store)
            report.requeued_running = len(store.requeue_stale("the campaign store was rebuilt"))
            report.counts = {k: v for k, v in store.counts().items()}
        finally:
            store.close()
    return report
