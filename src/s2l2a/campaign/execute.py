"""Running one job, the same way everywhere: the local engine and ``s2l2a worker`` both call
:func:`run_job`, so a product converted on a laptop and one converted on a cluster node went
through exactly the same staging, verification and publication steps.

Publication is the only step that makes an output visible, and it is a rename: a product in
``L2A/`` is always complete and verified (with a manifest of its files, see
:mod:`s2l2a.outputs.manifest`); anything half-written lives in a marked job folder under
``staging/`` or under a hidden ``.partial-*`` / ``.replaced-*`` name in a marked output root, which
:func:`clean_leftovers` removes. Nothing unmarked is ever deleted (see :mod:`s2l2a.campaign.layout`).

This module never opens the SQLite store (cluster nodes must not write it); the submitting side
folds outcomes into the store, see :func:`fold_results`.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from s2l2a.campaign.failures import FailureClass
from s2l2a.campaign.jobspec import (
    RESULTS_DIR,
    JobOutcome,
    JobSpec,
    read_result,
    write_result,
)
from s2l2a.campaign.layout import (
    DERIVED_DIR,
    LOGS_DIR,
    OUTPUT_DIR,
    PARTIAL_PREFIX,
    REPLACED_PREFIX,
    SOURCE_SUFFIX,
    STAGING_DIR,
    TMP_SUFFIX,
    CampaignLayout,
    claim_output,
    is_owned,
    make_job_staging,
    staging_is_ours,
)
from s2l2a.campaign.usage import Meter
from s2l2a.clock import utcnow
from s2l2a.diskspace import says_disk_full, short_of_space
from s2l2a.errors import CampaignError, ProductError, exception_chain
from s2l2a.fsutil import fsync_dir, write_text_atomic
from s2l2a.processors.base import JobSettings, ProcessingFailed
from s2l2a.safe.acquisition import same_acquisition

__all__ = ["LOGS_DIR", "OUTPUT_DIR", "PARTIAL_PREFIX", "REPLACED_PREFIX", "SOURCE_SUFFIX", "STAGING_DIR",
           "build_specs", "campaign_staging_root", "clean_leftovers", "fold_outcome", "fold_results",
           "job_log_path", "mark_folded", "output_root", "publish", "run_job", "source_marker"]

FOLDED_DIR = "folded"
#: a job's message is at most this long in the store and the result file; the log keeps it whole
MESSAGE_CAP = 500
_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def _one_line(text: str) -> str:
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _capped(text: str, cap: int = MESSAGE_CAP) -> str:
    return text if len(text) <= cap else text[:cap - 1] + "\u2026"


def staging_root(campaign_dir: Path, spec: JobSpec | None = None) -> Path:
    if spec is not None and spec.staging_dir:
        return Path(spec.staging_dir)
    return Path(campaign_dir) / STAGING_DIR


def campaign_staging_root(campaign_dir: Path | str, settings: Any) -> Path:
    """Where this campaign's jobs stage: ``[campaign] scratch_dir`` (default ``<campaign>/staging``).

    A scratch directory outside the campaign may be shared by several campaigns (e.g.
    ``/scratch/$USER``) whose job ids overlap, so there each campaign gets its own subfolder:
    a job never clears another campaign's staging, and recovery only cleans its own.
    """
    return CampaignLayout.of(campaign_dir, settings).staging


def output_root(campaign_dir: Path, spec: JobSpec | None = None) -> Path:
    if spec is not None and spec.output_dir:
        return Path(spec.output_dir)
    return Path(campaign_dir) / OUTPUT_DIR


def job_log_path(campaign_dir: Path, job_id: int | str) -> Path:
    return Path(campaign_dir) / LOGS_DIR / f"{job_id}.log"


def _rmtree(path: Path) -> None:
    """Remove a directory tree (or a file or link) if present; never follows a link out.

    Callers decide what may be removed (only what :mod:`s2l2a.campaign.layout` calls s2l2a's).
    """
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path)


def _remove_job_staging(staging: Path, campaign_dir: Path) -> None:
    """Remove a job's staging folder if s2l2a made it; refuse (job failure) if something else is there."""
    if not os.path.lexists(staging):
        return
    default = staging.parent.resolve() == Path(campaign_dir).resolve() / STAGING_DIR
    if not staging_is_ours(staging, default_staging=default):
        raise ProcessingFailed(f"{staging} exists and was not made by s2l2a; left alone (remove it yourself)",
                               FailureClass.OTHER)
    _rmtree(staging)


def _append_log(log_path: Path, text: str) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as f:
        f.write(text)


def build_specs(campaign_dir: Path | str, settings: Any, jobs: Any, *, processor: str | None = None,
                memory_mb: int | None = None, derive: dict[str, Any] | None = None,
                next_attempt: bool = False) -> tuple[str, JobSettings, list[JobSpec]]:
    """The JobSpecs of ``jobs``, resolved once for every engine: (processor, settings, specs).

    ``processor`` overrides the campaign's; "auto" becomes the processor it resolves to here, on
    the submitting side, so every element of a run uses the same one. ``next_attempt`` numbers
    each spec with the attempt the store will open for it (cluster engines mark jobs running at
    submit time; the local engine sets the attempt when a job really starts).
    """
    from s2l2a.processors import ProcessingFailed, resolve_processor

    campaign_dir = Path(campaign_dir)
    name = processor or settings.processor
    options = settings.processor_options(name)
    try:
        resolved = resolve_processor(name, settings.sen2cor if name == "auto" else options)
    except ProcessingFailed as e:
        from s2l2a.errors import ConfigError

        raise ConfigError(str(e)) from None
    if name == "auto":
        options = settings.processor_options(resolved)
    if resolved == "builtin":  # the campaign's own DEM unless [builtin] dem names another (or false)
        dem = CampaignLayout.of(campaign_dir, settings).processor_dem(options.get("dem"))
        options = {**options, "dem": str(dem) if dem is not None else None}
    job_settings = settings.job_settings(resolved)
    job_settings.extra = options
    if memory_mb:
        job_settings.memory_mb = memory_mb
    staging, output = campaign_staging_root(campaign_dir, settings), settings.output_root(campaign_dir)
    specs = [JobSpec(job_id=j.id, product_path=str(j.path), tile=j.tile, product_name=j.name,
                     processor=resolved, processor_options=options, settings=asdict(job_settings),
                     output_dir=str(output), staging_dir=str(staging), derive=derive,
                     attempt=int(j.attempts) + 1 if next_attempt else 1)
             for j in jobs]
    return resolved, job_settings, specs


def _verify_resolutions(settings: JobSettings, details: dict[str, Any] | None = None) -> tuple[int, ...] | None:
    """Which resolutions a finished product must have (Sen2Cor at 20 m writes no R10m).

    The processor knows best (a ``resolution`` under ``[sen2cor]`` is its option, not the job's
    setting): its ``details["resolutions"]`` wins over ``settings.resolution``.
    """
    declared = (details or {}).get("resolutions")
    if declared:
        res = tuple(sorted(int(r) for r in declared))
        return None if res == (10, 20, 60) else res
    if settings.resolution in (None, 10):
        return None
    return tuple(r for r in (20, 60) if r >= int(settings.resolution))


@dataclass
class _Phase:
    """Which step is running, so a ProductError can be blamed on the input or the output."""

    name: str = "prepare"


_STDERR_LOCK = threading.Lock()
_stderr_users = 0  # jobs of this process inside _stderr_into (only the first one redirects)


@contextmanager
def _stderr_into(log_path: Path) -> Iterator[None]:
    """The process's stderr (file descriptor 2) into the job's own log while the job runs.

    Native libraries print there themselves: on a full disk GDAL's libtiff wrote
    "_tiffWriteProc: No space left on device." eight times per attempt, on the user's terminal
    under the local engine, around run's one-line failure. Here they land in the job log, where
    the failure's context belongs. A process running several jobs at once (a Dask worker with
    threads) redirects for the first only: one descriptor cannot point at two logs."""
    global _stderr_users
    with _STDERR_LOCK:
        first = _stderr_users == 0
        _stderr_users += 1
    saved = None
    if first:
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                sys.stderr.flush()
                saved = os.dup(2)
                os.dup2(fd, 2)
            finally:
                os.close(fd)
        except (OSError, ValueError):  # no log to write (a full disk), or no stderr: leave it as it is
            saved = None
    try:
        yield
    finally:
        if saved is not None:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
        with _STDERR_LOCK:
            _stderr_users -= 1


def run_job(campaign_dir: Path | str, spec: JobSpec) -> JobOutcome:
    """Run one conversion end to end and return (and write) its outcome; never raises for a job
    failure: every exception becomes a failed outcome with a FailureClass and a one-line message.
    """
    with _stderr_into(job_log_path(Path(campaign_dir), spec.job_id)):
        return _run_job(Path(campaign_dir), spec)


def _run_job(campaign_dir: Path, spec: JobSpec) -> JobOutcome:
    t0 = time.monotonic()
    log_path = job_log_path(campaign_dir, spec.job_id)
    staging = staging_root(campaign_dir, spec) / str(spec.job_id)
    label = spec.product_name or Path(spec.product_path).name
    outcome = JobOutcome(job_id=spec.job_id, state="failed", attempt=spec.attempt, start=utcnow(),
                         log_path=str(log_path), processor=spec.processor, host=socket.gethostname(),
                         pid=os.getpid())
    settings = spec.job_settings()
    phase = _Phase()
    meter = Meter.start()
    try:
        _append_log(log_path, f"==== {outcome.start} attempt {spec.attempt} of job {spec.job_id}: {label} "
                              f"(processor {spec.processor}, host {outcome.host}, pid {outcome.pid}) ====\n")
        from s2l2a import safe
        from s2l2a.processors import get_processor

        phase.name = "open L1C"
        product = safe.open_l1c(Path(spec.product_path))
        label = str(product.name)
        phase.name = "start processor"
        processor = get_processor(spec.processor, spec.processor_options)
        outcome.processor = processor.name
        outcome.processor_version = processor.version()
        _remove_job_staging(staging, campaign_dir)  # a previous attempt's debris is not output
        make_job_staging(staging, campaign_dir)
        phase.name = f"{processor.name} processing"
        if _delivers_only(spec, processor):  # --keep derived: no L2A, the derived outputs from memory
            _deliver(campaign_dir, spec, product, processor, staging, settings, log_path, outcome)
        else:
            result = processor.process(product, staging, settings, log_path)
            outcome.processor_version = result.processor_version or outcome.processor_version
            outcome.gipp_sha256 = (result.details or {}).get("gipp_sha256") or None
            product_dir = Path(result.product_dir)
            phase.name = "verify L2A"
            if staging.resolve() not in product_dir.resolve().parents:
                raise ProcessingFailed(f"processor returned {product_dir}, which is not inside {staging}",
                                       FailureClass.OTHER)
            if not product_dir.is_dir():
                raise ProcessingFailed(f"processor reported {product_dir.name} but wrote no such directory",
                                       FailureClass.EMPTY_OUTPUT)
            if settings.extra.get("verify", True):
                resolutions = _verify_resolutions(settings, result.details)
                if resolutions is None:
                    safe.verify_l2a(product_dir)
                else:
                    safe.verify_l2a(product_dir, resolutions=resolutions)
            phase.name = "publish"
            from s2l2a.outputs.manifest import write_manifest

            write_manifest(product_dir)
            tile = spec.tile or product.tile
            final = publish(product_dir, output_root(campaign_dir, spec) / tile, tag=str(spec.job_id),
                            source=str(product.name))
            outcome.state = "done"
            outcome.output_path = str(final)
            outcome.message = f"{label} -> {final}"
            if spec.derive:
                _derive(campaign_dir, spec, tile, final, outcome, log_path, settings.cores)
    except Exception as e:  # noqa: BLE001 - every failure must become an outcome, not a dead worker
        outcome.state = "failed"
        outcome.failure_class, outcome.exit_status = _classify(e, phase.name)
        full = None
        if outcome.failure_class in (FailureClass.OTHER.value, FailureClass.EMPTY_OUTPUT.value):
            full = _disk_full(e, log_path, (staging, output_root(campaign_dir, spec)))
            if full is not None:
                outcome.failure_class = FailureClass.DISK_FULL.value
        # a short write ("192721 requested and 161792 written") does not say why: the space left does
        why = f" (disk full: {full})" if full and not says_disk_full(str(e)) else ""
        outcome.message = _one_line(f"{phase.name} failed for {label}: {e}{why}")
    finally:
        keep = outcome.state != "done" and settings.extra.get("keep_failed_staging", False)
        if not keep or outcome.failure_class == FailureClass.DISK_FULL.value:  # never keep the space
            try:
                if is_owned(staging):
                    _rmtree(staging)
            except OSError:
                pass  # removed at the next run's start
        outcome.end = utcnow()
        outcome.duration_s = round(time.monotonic() - t0, 3)
        outcome.cpu_s, outcome.peak_mb = meter.read()
    full_message = outcome.message
    outcome.message = _capped(full_message)
    try:
        _append_log(log_path, f"==== {outcome.end} job {spec.job_id} {outcome.state}"
                              f"{' (' + outcome.failure_class + ')' if outcome.failure_class else ''}: "
                              f"{full_message} ====\n")
    except OSError:
        pass
    try:
        write_result(campaign_dir, outcome)
    except OSError as e:  # e.g. the disk is full: the engine still gets the outcome returned
        outcome.message = _capped(f"{outcome.message}; result file not written: {e.strerror or e}")
    return outcome


def _delivers_only(spec: JobSpec, processor: Any) -> bool:
    """Whether the job keeps only its derived outputs and the processor can make them without
    writing the L2A (the built-in's deliverable-only run; Sen2Cor cannot). The L1C is deleted only
    after its L2A verified, so --delete-l1c keeps the full path."""
    d = spec.derive or {}
    return d.get("keep") == "derived" and not d.get("delete_l1c") and hasattr(processor, "deliver")


def _deliver(campaign_dir: Path, spec: JobSpec, product: Any, processor: Any, staging: Path, settings: Any,
             log_path: Path, outcome: JobOutcome) -> None:
    """The derived folder into ``<campaign>/derived/<tile>/`` without an L2A. The outcome records the
    L2A path it stands for (as after ``--keep derived`` deleted it), so status, report, stac and the
    vanished-output check treat the product as done and kept derived."""
    from s2l2a.outputs.derive import DeriveSpec, publisher

    tile = spec.tile or product.tile
    derive_spec = DeriveSpec.from_settings(dict(spec.derive or {}), default_indices=("ndvi",))
    res = processor.deliver(product, staging, settings, log_path, derive_spec, output_root(campaign_dir, spec) / tile,
                            publisher(Path(campaign_dir) / DERIVED_DIR / tile, derive_spec, settings.cores))
    outcome.gipp_sha256 = res.details.get("gipp_sha256") or None
    outcome.processor_version = res.processor_version or outcome.processor_version
    outcome.state = "done"
    outcome.output_path = str(output_root(campaign_dir, spec) / tile / f"{res.derived.product}.SAFE")
    outcome.derived_path = str(res.derived.out_dir)
    outcome.message = f"{product.name} -> {outcome.derived_path} (derived only)"
    _append_log(log_path, f"derive: {outcome.derived_path} (the L2A was not written: --keep derived)\n")


def _derive(campaign_dir: Path, spec: JobSpec, tile: str, l2a: Path, outcome: JobOutcome,
            log_path: Path, threads: int = 1) -> None:
    """Indices + SCL into ``<campaign>/derived/<tile>/`` as soon as the L2A is published.

    Done on the worker so derived outputs come at the pace of conversions (also on cluster
    nodes). A failure here never fails the conversion: the L2A stays (keep policies delete only
    what is verified) and the error is recorded with the outcome.
    """
    from s2l2a.outputs.derive import DeriveSpec
    from s2l2a.outputs.keep import derive_then_keep

    d = dict(spec.derive or {})
    derive_spec = DeriveSpec.from_settings(d, default_indices=("ndvi",))
    res = derive_then_keep(l2a, Path(campaign_dir) / DERIVED_DIR / tile, derive_spec, d.get("keep", "all"),
                           l1c_path=spec.product_path, delete_l1c=bool(d.get("delete_l1c", False)),
                           threads=threads)
    if res.derived_dir:
        outcome.derived_path = str(res.derived_dir)
    if res.error:
        outcome.derive_error = _one_line(f"derive failed for {outcome.output_path}: {res.error}")
    _append_log(log_path, f"derive: {outcome.derived_path or '-'}"
                          f"{'; removed ' + ', '.join(map(str, res.removed)) if res.removed else ''}"
                          f"{'; ' + outcome.derive_error if outcome.derive_error else ''}\n")


def _disk_full(e: BaseException, log_path: Path, folders: tuple[Path, ...]) -> str | None:
    """Why a failure that did not name its class came from a full disk (None: it did not): the text
    of the failure says so, a folder the job writes to is (nearly) full, or the end of the job log
    says so (a native library's message, written there by :func:`_stderr_into`)."""
    if any(says_disk_full(str(x)) for x in exception_chain(e)):
        return "no space left on device"
    if (short := short_of_space(folders)) is not None:
        return short
    try:
        with open(log_path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 65536))
            if says_disk_full(f.read().decode("utf-8", "replace")):
                return "the job log says no space left on device"
    except OSError:
        pass
    return None


def _classify(e: BaseException, phase: str) -> tuple[str, int | None]:
    """FailureClass value and exit status for an exception raised in ``phase``."""
    for x in exception_chain(e):
        if (isinstance(x, OSError) and x.errno in _DISK_FULL_ERRNOS) or (
                not isinstance(x, ProcessingFailed) and says_disk_full(str(x))):
            return FailureClass.DISK_FULL.value, getattr(e, "exit_status", None)
    if isinstance(e, ProcessingFailed):
        return e.failure_class.value, e.exit_status
    if isinstance(e, MemoryError):
        return FailureClass.OUT_OF_MEMORY.value, None
    try:
        from s2l2a.safe import IncompleteProductError
    except ImportError:  # pragma: no cover - safe is part of the package
        IncompleteProductError = ()  # type: ignore[assignment]  # noqa: N806
    if isinstance(e, IncompleteProductError) or (isinstance(e, ProductError) and phase == "verify L2A"):
        return FailureClass.EMPTY_OUTPUT.value, None
    if isinstance(e, ProductError):
        return FailureClass.BAD_INPUT.value, None
    return FailureClass.OTHER.value, None


# -- publication ---------------------------------------------------------------------------------

def source_marker(tile_dir: Path, name: str) -> Path:
    """Hidden file beside an output naming the L1C it was made from (``.<name>.source``)."""
    return tile_dir / f".{name}{SOURCE_SUFFIX}"


def _source_of(tile_dir: Path, name: str) -> str | None:
    try:
        return source_marker(tile_dir, name).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def publish(product_dir: Path, tile_dir: Path, tag: str, source: str | None = None) -> Path:
    """Move a verified product into ``tile_dir`` so that it appears complete or not at all.

    Earlier outputs of the same acquisition (a previous attempt's product, possibly under another
    generation-time name; the planner's rule: same mission, tile, orbit and sensing time) are
    renamed aside first, the new product renamed in, then the old ones deleted: at every instant
    at most one complete product of that acquisition is visible. An earlier output that its
    ``.source`` marker says was made from a *different* L1C is never replaced (the job fails
    instead of destroying another job's result). Across file systems the product is first copied
    under a hidden ``.partial-`` name (removed again if the copy fails, e.g. on a full disk).
    The output root is created with (or, when it holds only tile folders, given) s2l2a's marker.
    """
    owned = claim_output(tile_dir.parent)
    tile_dir.mkdir(parents=True, exist_ok=True)
    name = product_dir.name if product_dir.name.endswith(".SAFE") else f"{product_dir.name}.SAFE"
    final = tile_dir / name
    previous = [p for p in tile_dir.iterdir()
                if not p.name.startswith(".") and p.name.endswith(".SAFE") and same_acquisition(p.name, name)]
    for old in previous:
        owner = _source_of(tile_dir, old.name)
        if source and owner and owner != source:
            raise ProcessingFailed(f"{old} holds the product of another L1C ({owner}); not replaced",
                                   FailureClass.OTHER)
    src = product_dir
    if os.stat(product_dir).st_dev != os.stat(tile_dir).st_dev:
        partial = tile_dir / f"{PARTIAL_PREFIX}{tag}-{name}"
        if owned:
            _rmtree(partial)
        try:
            shutil.copytree(product_dir, partial, symlinks=True)
        except BaseException:
            _rmtree(partial)  # made by this very call: never keep half a copy (or the space)
            raise
        src = partial
    if source:  # written before the product appears: a crash in between leaves only a stray marker
        write_text_atomic(source_marker(tile_dir, name), source + "\n")
    aside: list[Path] = []
    for old in previous:
        target = tile_dir / f"{REPLACED_PREFIX}{tag}-{old.name}"
        if owned:
            _rmtree(target)
        os.rename(old, target)
        aside.append(target)
    os.rename(src, final)
    fsync_dir(tile_dir)
    for old in aside:
        _rmtree(old)
        orig = old.name.removeprefix(f"{REPLACED_PREFIX}{tag}-")
        if orig != name:
            source_marker(tile_dir, orig).unlink(missing_ok=True)
    if src is not product_dir:
        _rmtree(product_dir)
    return final


# -- recovery helpers used by `s2l2a run` --------------------------------------------------------

def clean_leftovers(campaign_dir: Path | str, staging: Path | None = None, output: Path | None = None) -> list[Path]:
    """Remove what a killed run may have left half-done, and nothing else: marked job folders in
    ``staging`` (plus job-id folders of an older s2l2a in the campaign's own ``staging/``), and in
    the tile folders of a *marked* output root the hidden ``.partial-*`` / ``.replaced-*``
    directories, ``.source`` markers without their product and ``.tmp`` files. Links are never
    followed. Only safe while holding the run lock (no job of this campaign is running). Returns
    what was removed.
    """
    campaign_dir = Path(campaign_dir)
    staging = staging or campaign_dir / STAGING_DIR
    output = output or campaign_dir / OUTPUT_DIR
    removed: list[Path] = []
    if staging.is_dir() and not staging.is_symlink():
        default = staging.resolve() == campaign_dir.resolve() / STAGING_DIR
        for p in staging.iterdir():
            if staging_is_ours(p, default_staging=default):
                _rmtree(p)
                removed.append(p)
    if is_owned(output):
        for tile_dir in output.iterdir():
            if not tile_dir.is_dir() or tile_dir.is_symlink():
                continue
            for p in tile_dir.iterdir():
                if not p.name.startswith("."):
                    continue
                stray_marker = (p.name.endswith(SOURCE_SUFFIX)
                                and not (tile_dir / p.name[1:-len(SOURCE_SUFFIX)]).exists())
                if p.name.startswith((PARTIAL_PREFIX, REPLACED_PREFIX)) or stray_marker or p.name.endswith(TMP_SUFFIX):
                    _rmtree(p)
                    removed.append(p)
    return removed


def pending_results(campaign_dir: Path | str) -> Iterator[tuple[Path, JobOutcome | None]]:
    """Result files not yet folded, oldest first; an unreadable one comes with ``None``."""
    rdir = Path(campaign_dir) / RESULTS_DIR
    if not rdir.is_dir():
        return
    files = [p for p in rdir.glob("*.json") if p.is_file()]
    for path in sorted(files, key=lambda p: p.stat().st_mtime_ns):
        try:
            yield path, read_result(path)
        except CampaignError:
            yield path, None


def mark_folded(path: Path) -> Path:
    """Move a folded result file to ``results/folded/`` (kept for audit, never folded again)."""
    dest_dir = path.parent / FOLDED_DIR
    dest_dir.mkdir(exist_ok=True)
    dest = dest_dir / path.name
    if dest.exists():
        dest = dest_dir / f"{path.stem}.{int(time.time() * 1000)}{path.suffix}"
    os.replace(path, dest)
    return dest


def fold_outcome(store: Any, outcome: JobOutcome) -> bool:
    """Record one outcome in the store if it is news: the job must still be running the very
    attempt the outcome reports. A repeat (folded before, or the attempt was since closed as
    interrupted) changes nothing. Returns whether it was recorded.
    """
    try:
        job = store.job(int(outcome.job_id))
    except (CampaignError, ValueError):
        return False
    if str(job.state) != "running" or int(job.attempts) != int(outcome.attempt):
        return False
    store.finish_attempt(job.id, outcome)
    return True


def fold_results(campaign_dir: Path | str, store: Any) -> int:
    """Fold every pending ``results/*.json`` into ``store`` (only through its public methods; this
    module never opens SQLite itself), then move each file to ``results/folded/``. Idempotent: a
    crash between the two steps re-reads a file whose attempt is already closed, which
    :func:`fold_outcome` ignores. Unreadable files go to ``results/bad/``. Returns how many
    outcomes were recorded.
    """
    n = 0
    for path, outcome in pending_results(campaign_dir):
        if outcome is None:
            bad = path.parent / "bad"
            bad.mkdir(exist_ok=True)
            os.replace(path, bad / path.name)
            continue
        n += fold_outcome(store, outcome)
        mark_folded(path)
    return n
