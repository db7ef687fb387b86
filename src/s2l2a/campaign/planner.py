"""Planning: turn folders of L1C products into campaign jobs, safely re-runnable.

``plan`` may be run again and again on the same or growing roots (new downloads arrive): known
paths are not re-read, the same product found twice is one job, reprocessings of one acquisition
are reduced to one (:mod:`.dedup`), products whose verified L2A already sits in
``<output>/<tile>/`` are skipped, and every broken input costs one report line, never the plan.

Inputs a plan cannot use are kept in the store (path, one-line reason, time) and in progress.log,
so ``status`` and the report list them. Zipped products, as CDSE delivers them
(``S2*_MSIL1C_*.SAFE.zip``), are unpacked with the checked extraction of :mod:`s2l2a.archive`
into ``<campaign>/inputs/`` (a folder s2l2a owns; the zip itself is left alone) and planned from
there. AWS tile folders (``tileInfo.json``) are refused in one line.

A newer reprocessing of an acquisition whose older product is done replaces it: the older job is
skipped as a duplicate and its output is handed over (its ``.source`` claim removed) so the newer
job's publication may replace it. While the older job is *running*, the newer one waits (skipped,
"waits for job N"); the next ``plan`` after that run queues it.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from s2l2a.campaign.dedup import DUPLICATE_PREFIX, duplicate_reason
from s2l2a.campaign.layout import INPUTS_DIR  # where zipped inputs are unpacked
from s2l2a.campaign.progress import one_line
from s2l2a.campaign.settings import CampaignSettings
from s2l2a.campaign.states import SKIP_DONE, SKIP_WAITING, JobState
from s2l2a.campaign.store import CampaignStore, JobKey, ProductRecord, StateChange
from s2l2a.errors import CampaignError, ProductError, S2L2AError
from s2l2a.safe.acquisition import AcquisitionKey, acquisition_key, acquisition_of, pick_winners

DONE_PREFIX = SKIP_DONE


UNPACK_PREFIX = ".unpack-"


@dataclass
class PlanReport:
    """What one ``plan`` did; ``rejected`` holds one "path: what" line per unusable input and
    ``rejections`` the same as (path, reason) pairs, as the store keeps them."""

    found: int = 0
    added: int = 0
    already_planned: int = 0
    skipped_duplicate: int = 0
    skipped_done: int = 0
    requeued_winner: int = 0
    waiting: int = 0
    unpacked: int = 0
    rejected: list[str] = field(default_factory=list)
    rejections: list[tuple[str, str]] = field(default_factory=list)
    waiting_lines: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"found": self.found, "added": self.added, "already_planned": self.already_planned,
                "skipped_duplicate": self.skipped_duplicate, "skipped_done": self.skipped_done,
                "requeued_winner": self.requeued_winner, "waiting": self.waiting, "unpacked": self.unpacked,
                "rejected": len(self.rejected), "rejected_lines": list(self.rejected),
                "waiting_lines": list(self.waiting_lines)}

    @property
    def changed(self) -> bool:
        """Whether this plan added or changed any job (else it had nothing new to do)."""
        return bool(self.added or self.requeued_winner or self.skipped_duplicate or self.skipped_done)

    def summary_line(self) -> str:
        """One line for the terminal."""
        extra = (f", {self.waiting} waiting" if self.waiting else "") + \
                (f", {self.unpacked} unpacked from zip" if self.unpacked else "")
        return (f"{self.added} added, {self.already_planned} already planned, "
                f"{self.skipped_duplicate} skipped duplicate, {self.skipped_done} skipped done, "
                f"{len(self.rejected)} rejected{extra}")


def _reject(report: PlanReport, path: Path | str, what: str | BaseException) -> None:
    text = str(what)
    if isinstance(what, S2L2AError) and what.path is not None:
        line = text                        # already "path: message"
        reason = what.message if str(what.path) == str(path) else text
    else:
        line = f"{path}: {text}"
        reason = text
    report.rejected.append(one_line(line))
    report.rejections.append((str(Path(path).absolute()), one_line(reason)))


def _reject_line(report: PlanReport, path: str, line: str) -> None:
    """A rejection already formatted as "path: what" (from a worker process)."""
    prefix = f"{one_line(path)}: "
    report.rejected.append(line)
    report.rejections.append((str(Path(path).absolute()), line[len(prefix):] if line.startswith(prefix) else line))


#: new products are committed once at least BATCH are read and COMMIT_S seconds passed since the
#: last commit (a killed plan keeps what it read but the last seconds; each commit re-reads the
#: campaign's jobs for the duplicate rule, so a fixed small batch would make 100,000 quadratic)
BATCH = 500
COMMIT_S = 2.0
#: below this many new candidates, opening them in this process is faster than starting workers
POOL_THRESHOLD = 64


def _open_one(path: str) -> tuple[str, ProductRecord | None, str | None]:
    """Open one candidate: (path, record, None) or (path, None, "path: what") — picklable for workers.

    Product metadata only: the tile metadata (angle grids) is left to the job that converts it."""
    from s2l2a import safe  # heavy (lxml, shapely): only when planning

    try:
        return path, ProductRecord.from_l1c(safe.open_l1c(path, metadata_only=True)), None
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


def discover(roots: Iterable[Path | str], store: CampaignStore | None, report: PlanReport,
             inputs_dir: Path | None = None, own: Iterable[Path] = ()) -> list[str]:
    """Candidate product paths under ``roots`` not yet in the store (known paths are counted, not re-read).

    Zip files are unpacked into ``inputs_dir`` first (without one they are refused: unzip them);
    AWS tile folders and other files are kept as candidates so opening them says what is wrong.
    Anything inside the ``own`` folders (the campaign and its output folder: a root such as ``.``
    may hold them) is the campaign's own and never an input, except what lies in ``inputs_dir``.
    """
    from s2l2a.safe.find import find_inputs_resolved

    own_real = [os.path.realpath(o) for o in own]
    inputs_real = os.path.realpath(inputs_dir) if inputs_dir is not None else None

    def within(real: str, folder: str) -> bool:
        return real == folder or real.startswith(folder.rstrip(os.sep) + os.sep)

    def campaigns_own(real: str) -> bool:
        if inputs_real is not None and within(real, inputs_real):
            return False
        return any(within(real, o) for o in own_real)

    known = {j.path for j in store.job_keys()} if store is not None else set()
    seen: set[str] = set()
    todo: list[str] = []
    for root in roots:
        root = Path(root)
        if not root.exists():
            _reject(report, root, "does not exist")
            continue
        try:
            candidates = list(find_inputs_resolved([root]))
        except (S2L2AError, OSError) as e:
            _reject(report, root, e)
            continue
        for cand, key in candidates:
            if campaigns_own(key):
                continue
            if cand.name.lower().endswith(".zip") and cand.is_file():
                if inputs_dir is None:
                    _reject(report, cand, "a zipped product; unzip it first")
                    continue
                try:
                    unpacked, fresh = unpack_zip(cand, inputs_dir)
                except (S2L2AError, OSError) as e:
                    _reject(report, cand, e if isinstance(e, S2L2AError) else
                            f"cannot unpack into {inputs_dir}: {getattr(e, 'strerror', None) or e}")
                    continue
                report.unpacked += fresh
                cand, key = unpacked, os.path.realpath(unpacked)
            if key in seen:
                continue
            seen.add(key)
            report.found += 1
            if key in known:
                report.already_planned += 1
            else:
                todo.append(str(cand))
    return todo


def zip_product_name(archive: Path) -> str:
    """The L1C product a zip holds (its one top-level ``<name>.SAFE/`` folder), read from the
    zip's directory without extracting anything; ProductError when it is not a zipped L1C."""
    import zipfile

    from s2l2a import safe

    try:
        with zipfile.ZipFile(archive) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise ProductError(f"not a readable zip ({one_line(str(e))})", archive) from None
    tops = {n.replace("\\", "/").lstrip("/").split("/", 1)[0] for n in names if n.strip("/")}
    products = sorted(t for t in tops if t.upper().endswith(".SAFE"))
    if len(products) != 1:
        what = "no .SAFE folder" if not products else f"{len(products)} .SAFE folders"
        raise ProductError(f"not a zipped Sentinel-2 product: {what} at the top of the zip", archive)
    try:
        parsed = safe.parse_product_name(products[0])
    except S2L2AError:
        raise ProductError(f"zip holds {products[0]!r}, not a Sentinel-2 product name", archive) from None
    if parsed.level != "L1C":
        raise ProductError(f"zip holds {products[0]}, an {parsed.level} product, expected L1C", archive)
    return parsed.name


def unpack_zip(archive: Path, inputs_dir: Path) -> tuple[Path, bool]:
    """``(<inputs_dir>/<name>.SAFE, freshly unpacked)`` for a zipped L1C; unpacked once.

    Extraction goes through :func:`s2l2a.archive.safe_extract` (names, links, sizes checked) into a
    hidden ``.unpack-<name>`` folder that is renamed into place only when complete, so a killed or
    failed unpack never looks like a product; s2l2a removes only its own ``.unpack-*`` folders.
    """
    from s2l2a.archive import safe_extract
    from s2l2a.campaign.layout import is_owned, mark_owned

    name = zip_product_name(archive)
    final = inputs_dir / f"{name}.SAFE"
    if final.is_dir():
        return final, False
    inputs_dir.mkdir(parents=True, exist_ok=True)
    if not is_owned(inputs_dir):
        mark_owned(inputs_dir, "unpacked inputs", inputs_dir.parent)
    tmp = inputs_dir / f"{UNPACK_PREFIX}{name}"
    if tmp.is_symlink():
        raise ProductError(f"{tmp} is a link; not unpacking there", archive)
    shutil.rmtree(tmp, ignore_errors=True)   # a killed plan's half unpack, in the folder s2l2a owns
    try:
        safe_extract(archive, tmp)
        src = tmp / f"{name}.SAFE"
        if not src.is_dir() or src.is_symlink():
            raise ProductError(f"zip holds no {name}.SAFE folder", archive)
        os.rename(src, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final, True


def add_records(store: CampaignStore, records: Iterable[ProductRecord], report: PlanReport, *,
                whole_campaign: bool = True) -> None:
    """Add records as jobs (one transaction) and apply the reprocessing rule to the whole campaign,
    or (``whole_campaign=False``, a plan's intermediate commits) to the acquisitions of these
    records only: the plan's last commit applies it to all, and reports who waits."""
    records = list(records)
    for _, created in store.add_products(records):
        if created:
            report.added += 1
        else:
            report.already_planned += 1
    if whole_campaign:
        store.set_states(dedup_changes(store.job_keys(), report))
        return
    part = PlanReport()
    store.set_states(dedup_changes(store.job_keys_of({acquisition_key(r.tile, r.sensing_time) for r in records}),
                                   part))
    report.skipped_duplicate += part.skipped_duplicate
    report.requeued_winner += part.requeued_winner


def skip_done(store: CampaignStore, output_root: Path, report: PlanReport) -> None:
    """Skip queued jobs whose verified L2A is already in ``output_root`` (and not another job's)."""
    store.set_states(done_changes(store.job_keys([JobState.QUEUED]), output_root, report,
                                  claims=store.output_claims()))


def plan_records(store: CampaignStore, records: Iterable[ProductRecord], output_root: Path | None,
                 report: PlanReport | None = None) -> PlanReport:
    """Add records as jobs, then apply the duplicate rule and the done-output check."""
    report = report or PlanReport()
    add_records(store, records, report)
    if output_root is not None:
        skip_done(store, output_root, report)
    release_superseded(store)
    return report


def waiting_reason(loser: JobKey) -> str:
    """The skip reason of a newer reprocessing waiting for its running older one."""
    return f"{SKIP_WAITING}job {loser.id} ({loser.name}, an older reprocessing) to finish running"


def dedup_changes(jobs: list[JobKey], report: PlanReport) -> list[StateChange]:
    """State changes that make each acquisition keep one job (see :mod:`s2l2a.safe.acquisition`).

    Losers that are queued, failed or done are skipped as duplicates (a done one's output stays
    until the winner's replaces it). A winner whose older reprocessing is running right now
    waits (skipped, "waits for job N") rather than run beside it: the two would publish over
    each other. A later plan queues it once that job has ended.
    """
    winners = pick_winners(jobs, order=lambda j: j.id)
    groups: dict[AcquisitionKey, list[JobKey]] = defaultdict(list)
    for j in jobs:
        groups[acquisition_of(j)].append(j)
    changes: list[StateChange] = []
    for key, members in groups.items():
        w = winners[key]
        running = [j for j in members if j.id != w.id and j.state is JobState.RUNNING]
        reason_w = w.skip_reason or ""
        displaced = w.state is JobState.SKIPPED and reason_w.startswith((DUPLICATE_PREFIX, SKIP_WAITING))
        if running and (w.state is JobState.QUEUED or displaced):
            wait = waiting_reason(running[0])
            if reason_w != wait:
                changes.append(StateChange(w.id, JobState.SKIPPED, wait))
            report.waiting += 1
            report.waiting_lines.append(one_line(
                f"{w.name}: waits for job {running[0].id} ({running[0].name}, an older reprocessing) that is "
                "running; plan again after that run to queue it"))
        elif displaced:
            changes.append(StateChange(w.id, JobState.QUEUED, "winner of its duplicates"))
            report.requeued_winner += 1
        reason = duplicate_reason(w)
        for j in members:
            if j.id == w.id:
                continue
            if j.state in (JobState.QUEUED, JobState.FAILED, JobState.DONE):
                changes.append(StateChange(j.id, JobState.SKIPPED, reason))
                report.skipped_duplicate += 1
            elif j.state is JobState.SKIPPED and (j.skip_reason or "").startswith((DUPLICATE_PREFIX, SKIP_WAITING)) \
                    and j.skip_reason != reason:
                changes.append(StateChange(j.id, JobState.SKIPPED, reason))  # a newer winner arrived
    return changes


def release_superseded(store: CampaignStore) -> int:
    """Hand the outputs of superseded reprocessings over to their winner.

    Publication never replaces an output whose ``.source`` marker names another L1C. When a
    newer reprocessing wins an acquisition and is about to run, the older job's output (kept
    until then) loses that claim: its marker is removed, but only when it still names that
    older product. Idempotent; returns the number of markers removed.
    """
    from s2l2a.campaign.execute import source_marker

    jobs = store.job_keys()
    by_id = {j.id: j for j in jobs}
    winners = pick_winners(jobs, order=lambda j: j.id)
    outputs: dict[int, str] = {}
    for path, jid in store.output_claims().items():
        outputs[jid] = path
    removed = 0
    for j in jobs:
        w = winners[acquisition_of(j)]
        if j.id == w.id or w.state not in (JobState.QUEUED, JobState.FAILED) or j.id not in outputs:
            continue
        out = Path(outputs[j.id])
        marker = source_marker(out.parent, out.name)
        try:
            owner = marker.read_text(encoding="utf-8").strip().removesuffix(".SAFE")
        except OSError:
            continue
        if owner == by_id[j.id].name.removesuffix(".SAFE") and not marker.is_symlink():
            marker.unlink(missing_ok=True)
            removed += 1
    return removed


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


def done_changes(jobs: Iterable[JobKey], output_root: Path, report: PlanReport,
                 claims: dict[str, int] | None = None) -> list[StateChange]:
    """Skip queued jobs whose L2A (the same acquisition) exists and verifies, unless
    ``claims`` (output path -> job id) says another job of the campaign made it: that is an older
    reprocessing's output, which this job is to replace."""
    if not output_root.is_dir():
        return []
    from s2l2a import safe

    owners = {os.path.realpath(p): jid for p, jid in (claims or {}).items()}
    cache: dict[str, list[tuple[Any, Path]]] = {}
    changes: list[StateChange] = []
    for j in jobs:
        for name, path in _l2a_index(output_root, j.tile, cache):
            if getattr(name, "level", "L2A") != "L2A" or \
                    acquisition_key(name.tile, name.sensing_time) != acquisition_of(j):
                continue
            if owners.get(os.path.realpath(path), j.id) != j.id:
                continue  # another (superseded) job's output: this job replaces it
            try:
                safe.verify_l2a(path)
            except S2L2AError:
                continue  # incomplete output: the job runs again and replaces it
            changes.append(StateChange(j.id, JobState.SKIPPED, f"{DONE_PREFIX}{path}", output_path=path))
            report.skipped_done += 1
            break
    return changes


def check_roots(roots: Iterable[Path | str]) -> list[Path]:
    """The roots, or one CampaignError line for the first that does not exist (a typo must not
    pass as "nothing found")."""
    out = [Path(r) for r in roots]
    for r in out:
        if not os.path.lexists(r):
            raise CampaignError(f"{one_line(str(r))}: does not exist; give the folder holding the L1C products "
                                "(S2*_MSIL1C_*.SAFE folders or their .zip)")
        if not r.exists():
            raise CampaignError(f"{one_line(str(r))}: is a broken link")
    return out


def plan(campaign_dir: Path | str, roots: Iterable[Path | str], workers: int | None = None,
         on_progress: Callable[[int, int], None] | None = None) -> PlanReport:
    """Plan the L1C products under ``roots`` into the campaign at ``campaign_dir``.

    New products are committed every few seconds (BATCH, COMMIT_S), so a plan of thousands that
    is killed keeps what it read and the next plan continues from there. ``workers``: processes opening
    products (default one per core, up to 8); ``on_progress(done, total)`` after each product.
    A root that does not exist is one rejected line here; ``s2l2a plan`` refuses it first
    (:func:`check_roots`).
    """
    campaign_dir = Path(campaign_dir)
    settings = CampaignSettings.load(campaign_dir)
    report = PlanReport()
    from s2l2a.sen2cor.installs import plan_refusal

    unreadable = plan_refusal(settings.processor, settings.sen2cor)  # a product no Sen2Cor of ours reads
    with CampaignStore.open(campaign_dir, create=True) as store:
        try:
            todo = discover(roots, store, report, inputs_dir=campaign_dir / INPUTS_DIR,
                            own=(campaign_dir, settings.output_root(campaign_dir)))
            batch: list[ProductRecord] = []
            last_commit = time.monotonic()
            for i, (path, record, error) in enumerate(_open_all(todo, workers), 1):
                why = unreadable(record.path) if record is not None and unreadable is not None else None
                if why is not None:
                    _reject(report, path, why)
                elif record is not None:
                    batch.append(record)
                else:
                    _reject_line(report, path, error or f"{path}: unreadable")
                if len(batch) >= BATCH and time.monotonic() - last_commit >= COMMIT_S:
                    add_records(store, batch, report, whole_campaign=False)
                    batch, last_commit = [], time.monotonic()
                if on_progress is not None:
                    on_progress(i, len(todo))
            add_records(store, batch, report)
            skip_done(store, settings.output_root(campaign_dir), report)
            release_superseded(store)
        finally:  # also when interrupted: what was rejected so far is kept
            store.record_rejections(report.rejections)
    return report
