"""Planning: turn folders of L1C products into campaign jobs, safely re-runnable.

``plan`` may be run again and again on the same or growing roots (new downloads arrive): known
paths are not re-read, the same product found twice is one job, reprocessings of one acquisition
are reduced to one (:mod:`.dedup`), products whose verified L2A already sits in
``<output>/<tile>/`` are skipped, and every broken input costs one report line, never the plan.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from s2l2a.campaign.dedup import DUPLICATE_PREFIX, duplicate_reason, pick_winners
from s2l2a.campaign.progress import one_line
from s2l2a.campaign.settings import CampaignSettings
from s2l2a.campaign.states import SKIP_DONE, JobState
from s2l2a.campaign.store import CampaignStore, JobKey, ProductRecord, StateChange
from s2l2a.errors import S2L2AError

DONE_PREFIX = SKIP_DONE


@dataclass
class PlanReport:
    """What one ``plan`` did; ``rejected`` holds one "path: what" line per unusable input."""

    found: int = 0
    added: int = 0
    already_planned: int = 0
    skipped_duplicate: int = 0
    skipped_done: int = 0
    requeued_winner: int = 0
    rejected: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"found": self.found, "added": self.added, "already_planned": self.already_planned,
                "skipped_duplicate": self.skipped_duplicate, "skipped_done": self.skipped_done,
                "requeued_winner": self.requeued_winner, "rejected": len(self.rejected),
                "rejected_lines": list(self.rejected)}

    def summary_line(self) -> str:
        """One line for the terminal."""
        return (f"{self.added} added, {self.already_planned} already planned, "
                f"{self.skipped_duplicate} skipped duplicate, {self.skipped_done} skipped done, "
                f"{len(self.rejected)} rejected")


def _reject(report: PlanReport, path: Path | str, what: str | BaseException) -> None:
    text = str(what)
    if isinstance(what, S2L2AError) and what.path is not None:
        line = text                        # already "path: message"
    else:
        line = f"{path}: {text}"
    report.rejected.append(one_line(line))


#: new products committed per transaction while planning (a killed plan keeps what it read)
BATCH = 500
#: below this many new candidates, opening them in this process is faster than starting workers
POOL_THRESHOLD = 64


def _open_one(path: str) -> tuple[str, ProductRecord | None, str | None]:
    """Open one candidate: (path, record, None) or (path, None, "path: what") — picklable for workers."""
    from s2l2a import safe  # heavy (lxml, shapely): only when planning

    try:
        return path, ProductRecord.from_l1c(safe.open_l1c(path)), None
    except S2L2AError as e:
        text = str(e) if e.path is not None else f"{path}: {e}"
    except Exception as e:
        # a reader bug must not stop a 10,000-product plan: report it like a broken input
        text = f"{path}: unreadable ({type(e).__name__}: {e})"
    return path, None, one_line(text)


def _open_all(paths: list[str], workers: int | None) -> Iterator[tuple[str, ProductRecord | None, str | None]]:
    """Open candidates in input order, in worker processes when there are many (metadata parsing
    is CPU-bound: 20-40 ms per product, mostly the tile angle grids)."""
    n = workers if workers is not None else min(os.cpu_count() or 1, 8)
    if n <= 1 or len(paths) < POOL_THRESHOLD:
        yield from map(_open_one, paths)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn: the parent holds an SQLite connection and maybe threads; forking those is unsafe.
    # Workers ignore Ctrl-C: the parent stops them (pending work cancelled, no traceback per worker).
    pool = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"), initializer=_ignore_sigint)
    try:
        yield from pool.map(_open_one, paths, chunksize=max(1, min(32, len(paths) // (4 * n))))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def discover(roots: Iterable[Path | str], store: CampaignStore | None, report: PlanReport) -> list[str]:
    """Candidate product paths under ``roots`` not yet in the store (known paths are counted, not re-read)."""
    from s2l2a import safe

    known = {j.path for j in store.job_keys()} if store is not None else set()
    seen: set[str] = set()
    todo: list[str] = []
    for root in roots:
        root = Path(root)
        if not root.exists():
            _reject(report, root, "does not exist")
            continue
        try:
            candidates = list(safe.find_products([root]))
        except (S2L2AError, OSError) as e:
            _reject(report, root, e)
            continue
        for cand in candidates:
            key = str(Path(cand).resolve())
            if key in seen:
                continue
            seen.add(key)
            report.found += 1
            if key in known:
                report.already_planned += 1
            else:
                todo.append(str(cand))
    return todo


def add_records(store: CampaignStore, records: Iterable[ProductRecord], report: PlanReport) -> None:
    """Add records as jobs (one transaction) and apply the reprocessing rule to the whole campaign."""
    for _, created in store.add_products(records):
        if created:
            report.added += 1
        else:
            report.already_planned += 1
    store.set_states(dedup_changes(store.job_keys(), report))


def skip_done(store: CampaignStore, output_root: Path, report: PlanReport) -> None:
    """Skip queued jobs whose verified L2A is already in ``output_root``."""
    store.set_states(done_changes(store.job_keys([JobState.QUEUED]), output_root, report))


def plan_records(store: CampaignStore, records: Iterable[ProductRecord], output_root: Path | None,
                 report: PlanReport | None = None) -> PlanReport:
    """Add records as jobs, then apply the duplicate rule and the done-output check."""
    report = report or PlanReport()
    add_records(store, records, report)
    if output_root is not None:
        skip_done(store, output_root, report)
    return report


def dedup_changes(jobs: list[JobKey], report: PlanReport) -> list[StateChange]:
    """State changes that make each acquisition keep one job (see :mod:`.dedup`)."""
    winners = pick_winners(jobs, order=lambda j: j.id)
    winner_ids = {w.id for w in winners.values()}
    changes: list[StateChange] = []
    for j in jobs:
        w = winners[(j.tile, j.sensing_time[:19])]
        if j.id in winner_ids:
            if j.state is JobState.SKIPPED and (j.skip_reason or "").startswith(DUPLICATE_PREFIX):
                changes.append(StateChange(j.id, JobState.QUEUED, "winner of its duplicates"))
                report.requeued_winner += 1
            continue
        reason = duplicate_reason(w)
        if j.state in (JobState.QUEUED, JobState.FAILED):
            changes.append(StateChange(j.id, JobState.SKIPPED, reason))
            report.skipped_duplicate += 1
        elif (j.state is JobState.SKIPPED and (j.skip_reason or "").startswith(DUPLICATE_PREFIX)
              and j.skip_reason != reason):
            changes.append(StateChange(j.id, JobState.SKIPPED, reason))  # a newer winner arrived
    return changes


def _l2a_index(output_root: Path, tile: str, cache: dict[str, list[tuple[Any, Path]]]) -> list[tuple[Any, Path]]:
    """Parsed names of the L2A products in ``<output_root>/<tile>/`` (listed once per tile)."""
    if tile not in cache:
        from s2l2a import safe

        entries: list[tuple[Any, Path]] = []
        try:
            with os.scandir(output_root / tile) as it:
                for e in it:
                    if e.name.endswith(".SAFE") and e.is_dir():
                        try:
                            entries.append((safe.parse_product_name(e.name), Path(e.path)))
                        except S2L2AError:
                            continue
        except OSError:
            pass
        cache[tile] = entries
    return cache[tile]


def done_changes(jobs: Iterable[JobKey], output_root: Path, report: PlanReport) -> list[StateChange]:
    """Skip queued jobs whose L2A (same mission, tile, sensing time) exists and verifies."""
    if not output_root.is_dir():
        return []
    from s2l2a import safe

    cache: dict[str, list[tuple[Any, Path]]] = {}
    changes: list[StateChange] = []
    for j in jobs:
        for name, path in _l2a_index(output_root, j.tile, cache):
            if (getattr(name, "level", "L2A") != "L2A" or name.tile != j.tile
                    or (j.mission and name.mission != j.mission)
                    or name.sensing_time.strftime("%Y-%m-%dT%H:%M:%S") != j.sensing_time[:19]):
                continue
            try:
                safe.verify_l2a(path)
            except S2L2AError:
                continue  # incomplete output: the job runs again and replaces it
            changes.append(StateChange(j.id, JobState.SKIPPED, f"{DONE_PREFIX}{path}", output_path=path))
            report.skipped_done += 1
            break
    return changes


def plan(campaign_dir: Path | str, roots: Iterable[Path | str], workers: int | None = None,
         on_progress: Callable[[int, int], None] | None = None) -> PlanReport:
    """Plan the L1C products under ``roots`` into the campaign at ``campaign_dir``.

    New products are committed every BATCH products, so a plan of thousands that is killed
    keeps what it read and the next plan continues from there. ``workers``: processes opening
    products (default one per core, up to 8); ``on_progress(done, total)`` after each product.
    """
    campaign_dir = Path(campaign_dir)
    settings = CampaignSettings.load(campaign_dir)
    report = PlanReport()
    with CampaignStore.open(campaign_dir, create=True) as store:
        todo = discover(roots, store, report)
        batch: list[ProductRecord] = []
        for i, (_path, record, error) in enumerate(_open_all(todo, workers), 1):
            if record is not None:
                batch.append(record)
            else:
                report.rejected.append(error or "")
            if len(batch) >= BATCH:
                add_records(store, batch, report)
                batch = []
            if on_progress is not None:
                on_progress(i, len(todo))
        add_records(store, batch, report)
        skip_done(store, settings.output_root(campaign_dir), report)
    return report
