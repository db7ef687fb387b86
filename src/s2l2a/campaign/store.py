"""The campaign store: one SQLite file (``<campaign>/campaign.sqlite``) holding products, jobs and attempts.

Why SQLite: a campaign must survive kills and restarts and be inspected while it runs; WAL mode
lets ``s2l2a status`` read while a run writes, and every state change is one short
``BEGIN IMMEDIATE`` transaction, so a killed process never leaves half a change. Only the
submitting side writes (cluster nodes write result files that it folds in), see DESIGN.md.

API (stable; engines and ``campaign.execute`` code against it)::

    store = CampaignStore.open(campaign_dir)           # CampaignError if not a campaign
    store = CampaignStore.open(campaign_dir, create=True)   # used by `s2l2a init`
    store.add_product(ProductRecord(...)) -> (job_id, created)
    store.add_products(records) -> [(job_id, created), ...]   # bulk, one transaction
    store.jobs(states=None, job_ids=None, tile=None) -> list[Job]   # ordered by job id
    store.job_keys(states=None) -> list[JobKey]        # light tuples for planning many thousands
    store.job(job_id) -> Job                           # CampaignError if unknown
    store.job_by_path(path) -> Job | None
    store.start_attempt(job_id, host, pid, log_path, start=None) -> attempt_no   # queued -> running
    store.finish_attempt(job_id, outcome) -> Job       # running -> done | failed
        # outcome: AttemptOutcome, any object with those attributes (e.g. execute.JobOutcome) or a dict:
        # state ("done"/"failed"), failure_class, message, exit_status, end, output_path,
        # processor, processor_version; optional attempt (StaleOutcome when not the running one)
        # and log_path. Failed stays failed; retrying is explicit (requeue).
    store.requeue(job_ids=None, failure_class=None, max_attempts=None) -> n   # failed -> queued
    store.requeue_stale(reason, job_ids=None) -> [job_id]   # running -> queued; attempt closed "interrupted"
    store.set_states([StateChange(job_id, state, reason, output_path)])   # planner: skip / unskip
    store.attempts(job_id=None) -> list[Attempt]; store.last_attempt(job_id) -> Attempt | None
    store.counts() -> {state: n}   (every state present, 0 when none)
    store.summary(log_tail=5) -> dict   (what `s2l2a status --json` prints)
    store.log_path(job_id) -> <campaign>/logs/<job_id>.log
    store.record_rejections([(path, reason)]); store.rejections() -> [Rejection]   # inputs a plan refused
    store.output_claims() -> {output_path: job_id}
    store.restore(jobs, attempts, rejections)          # `s2l2a rebuild` only, into an empty store
    store.close()  /  with CampaignStore.open(d) as store: ...

Safety: every open checks the file (SQLite header; ``PRAGMA quick_check``, the full
``integrity_check`` when a WAL file shows the last writer did not close) and refuses a damaged
store, or an empty/missing one in a campaign with outputs, with :class:`CorruptStore` naming
``s2l2a rebuild``; every SQLite failure later is one CampaignError line, and a write that fails
on a full disk is retried (``FULL_RETRY_S``) before it gives up.

Every committed state change is appended to ``progress.log`` (see :mod:`.progress`).
Illegal state changes raise :class:`~s2l2a.campaign.states.IllegalTransition`.
"""

from __future__ import annotations

import errno
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from s2l2a.campaign.layout import DB_FILE, LOGS_DIR, PROGRESS_FILE, SETTINGS_FILE
from s2l2a.campaign.progress import (
    ProgressEvent,
    ProgressLog,
    one_line,
    tail_lines,
)
from s2l2a.campaign.states import SKIP_DONE, SKIP_DUPLICATE, SKIP_WAITING, JobState, check_transition
from s2l2a.clock import iso, utcnow
from s2l2a.errors import CampaignError

SCHEMA_VERSION = 3
SQLITE_HEADER = b"SQLite format 3\x00"
#: pauses before retrying a store write that failed on a full disk (then: one CampaignError line)
FULL_RETRY_S = (0.5, 2.0, 5.0)
#: for this long after giving up, writes that meet a full disk again fail without retrying
FULL_QUIET_S = 60.0
#: the progress.log state of a rejected input (not a job state: a plan line that the store keeps)
REJECTED = "rejected"

T = TypeVar("T")

# (version, script): applied in order to bring an older file up to SCHEMA_VERSION
MIGRATIONS: list[tuple[int, str]] = [
    (1, """
    CREATE TABLE products (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL UNIQUE,
        tile TEXT NOT NULL,
        sensing_time TEXT NOT NULL,
        baseline TEXT,
        generation_time TEXT,
        mission TEXT,
        cloud_cover REAL,
        added_at TEXT NOT NULL
    );
    CREATE INDEX products_tile_time ON products (tile, sensing_time);
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        product_id INTEGER NOT NULL UNIQUE REFERENCES products (id) ON DELETE CASCADE,
        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'skipped')),
        skip_reason TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        failure_class TEXT,
        message TEXT,
        output_path TEXT,
        processor TEXT,
        processor_version TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX jobs_state ON jobs (state);
    CREATE TABLE attempts (
        job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        n INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'running',
        start TEXT NOT NULL,
        "end" TEXT,
        exit_status INTEGER,
        failure_class TEXT,
        message TEXT,
        log_path TEXT,
        host TEXT,
        pid INTEGER,
        PRIMARY KEY (job_id, n)
    );
    CREATE INDEX attempts_end ON attempts ("end");
    """),
    # inputs a plan could not use, one row per path (the latest reason), listed by status and report
    (2, """
    CREATE TABLE IF NOT EXISTS rejected (
        path TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL
    );
    """),
    # what each attempt used, as its worker measured it (campaign.usage): status shows it and
    # sizing proposes memory_mb from the peaks
    (3, """
    ALTER TABLE attempts ADD COLUMN cpu_s REAL;
    ALTER TABLE attempts ADD COLUMN peak_mb REAL;
    """),
]


@dataclass(frozen=True)
class ProductRecord:
    """What the store keeps about one L1C product (filled from ``safe.L1CProduct``)."""

    path: Path
    name: str                 # product name without .SAFE
    tile: str                 # "56JMM"
    sensing_time: str         # ISO UTC
    baseline: str | None = None          # "02.06"
    generation_time: str | None = None   # ISO UTC
    mission: str | None = None
    cloud_cover: float | None = None

    @classmethod
    def from_l1c(cls, product: Any) -> ProductRecord:
        """From an opened ``safe.L1CProduct`` (sensing time from the name: same across reprocessings)."""
        pname = getattr(product, "name", None)
        name = getattr(pname, "name", None) or Path(product.path).name.removesuffix(".SAFE")
        sensing = getattr(pname, "sensing_time", None) or product.sensing_time
        gen = product.generation_time or getattr(pname, "generation_time", None)
        if not product.tile or sensing is None:
            raise CampaignError("product has no tile id or sensing time; cannot plan it", product.path)
        return cls(path=Path(product.path).resolve(), name=name, tile=product.tile,
                   sensing_time=_iso(sensing), baseline=product.baseline,
                   generation_time=_iso(gen) if gen is not None else None,
                   mission=product.mission, cloud_cover=product.cloud_cover)


@dataclass
class Job:
    """One job joined with its product."""

    id: int
    product_id: int
    path: Path
    name: str
    tile: str
    sensing_time: str
    baseline: str | None
    generation_time: str | None
    mission: str | None
    cloud_cover: float | None
    added_at: str
    state: JobState
    skip_reason: str | None
    attempts: int
    failure_class: str | None
    message: str | None
    output_path: Path | None
    processor: str | None
    processor_version: str | None
    updated_at: str


class JobKey(NamedTuple):
    """A light view of a job for planning over many thousands (no Path objects, plain strings)."""

    id: int
    path: str
    name: str
    tile: str
    sensing_time: str
    baseline: str | None
    generation_time: str | None
    mission: str | None
    state: JobState
    skip_reason: str | None


@dataclass
class Attempt:
    """One try at running a job."""

    job_id: int
    n: int
    state: str
    start: str
    end: str | None
    exit_status: int | None
    failure_class: str | None
    message: str | None
    log_path: str | None
    host: str | None
    pid: int | None
    cpu_s: float | None = None          # CPU seconds of the attempt and its child processes
    peak_mb: float | None = None        # its peak resident memory, MB


class Rejection(NamedTuple):
    """An input a plan could not use (kept until a later plan reads it as a product)."""

    path: str
    reason: str
    first_seen: str
    last_seen: str


@dataclass
class AttemptOutcome:
    """How an attempt ended (``execute.JobOutcome`` carries the same attributes)."""

    state: str                          # "done" | "failed"
    failure_class: str | None = None
    message: str | None = None
    exit_status: int | None = None
    end: str | datetime | None = None
    output_path: Path | str | None = None
    processor: str | None = None
    processor_version: str | None = None


@dataclass(frozen=True)
class StateChange:
    """A requested state change (planner: skip a duplicate, unskip a winner)."""

    job_id: int
    state: JobState | str
    reason: str | None = None
    output_path: Path | str | None = None


class StaleOutcome(CampaignError):
    """An outcome for an attempt that is no longer the job's running one (e.g. folded twice)."""


_JOB_SELECT = """
SELECT j.id, j.product_id, p.path, p.name, p.tile, p.sensing_time, p.baseline, p.generation_time,
       p.mission, p.cloud_cover, p.added_at, j.state, j.skip_reason, j.attempts, j.failure_class,
       j.message, j.output_path, j.processor, j.processor_version, j.updated_at
FROM jobs j JOIN products p ON p.id = j.product_id
"""


#: progress.log details of a planned product ("planned as job 7 from /data/X.SAFE") and of a
#: product found at a new path: what ``s2l2a rebuild`` restores jobs from
PLANNED_AS = "planned as job "
FROM = " from "
MOVED_TO = "input moved to "


def _nonempty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _disk_nearly_full(path: Path) -> bool:
    """Whether the file system holding ``path`` has (almost) no room left (SQLite reports some
    ENOSPC cases as a plain I/O error)."""
    try:
        st = os.statvfs(path.parent)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 1 << 20


_KEY_SELECT = ("SELECT j.id, p.path, p.name, p.tile, p.sensing_time, p.baseline, p.generation_time, p.mission, "
               "j.state, j.skip_reason FROM jobs j JOIN products p ON p.id = j.product_id")
#: values per ``IN (...)`` (SQLite's bound-parameter limit is 32,766 since 3.32, 999 before)
_IN_CHUNK = 900


def _iso(t: datetime | str) -> str:
    return t if isinstance(t, str) else iso(t)


def _job(row: tuple) -> Job:
    r = list(row)
    r[2] = Path(r[2])
    r[11] = JobState(r[11])
    r[16] = Path(r[16]) if r[16] else None
    return Job(*r)


def _get(outcome: Any, key: str, default: Any = None) -> Any:
    if isinstance(outcome, Mapping):
        return outcome.get(key, default)
    return getattr(outcome, key, default)


def _usage(outcome: Any, key: str) -> float | None:
    """A measured usage number of an outcome (cpu_s, peak_mb): finite and not negative, else None
    (result files come from nodes; a NaN must not reach sizing)."""
    value = _get(outcome, key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


class CorruptStore(CampaignError):
    """The store file is damaged, empty or missing while the campaign has history; nothing was changed."""


def rebuild_hint(campaign_dir: Path) -> str:
    """The way out named in every corrupt-store message."""
    return (f"nothing was changed; run 's2l2a rebuild {campaign_dir}' to rebuild the store from the outputs, "
            "result files and progress.log (a damaged file is kept aside, never deleted)")


def campaign_has_history(campaign_dir: Path) -> bool:
    """Whether a campaign has done work (progress.log lines, result files, outputs in ``L2A/``):
    then an empty or missing store is a lost one, never a new campaign."""
    d = Path(campaign_dir)
    try:
        if (d / PROGRESS_FILE).stat().st_size > 0:
            return True
    except OSError:
        pass
    for pattern in ("results/*.json", "results/folded/*.json", "L2A/*/*.SAFE"):
        if next(iter(d.glob(pattern)), None) is not None:
            return True
    return False


def check_store_file(campaign_dir: Path | str) -> None:
    """Refuse, in one line, a store that cannot be this campaign's: not SQLite, or empty/missing
    while the campaign has history (a truncated store must not read as a new, empty campaign)."""
    d = Path(campaign_dir)
    db = d / DB_FILE
    try:
        with open(db, "rb") as f:
            head = f.read(100)
    except FileNotFoundError:
        head = None
    except OSError as e:
        raise CampaignError(f"cannot read the campaign store: {e.strerror or e}", db) from None
    if not head:
        if campaign_has_history(d):
            what = "is missing" if head is None else "is empty (0 bytes)"
            raise CorruptStore(f"the campaign store {what} although the campaign has outputs and a "
                               f"progress.log; {rebuild_hint(d)}", db)
        return
    if len(head) < 100 or not head.startswith(SQLITE_HEADER):
        raise CorruptStore(f"the campaign store is not an SQLite database (damaged or overwritten); "
                           f"{rebuild_hint(d)}", db)


def _errname(e: sqlite3.Error) -> str:
    return str(getattr(e, "sqlite_errorname", "") or "")


def _is_full(e: BaseException) -> bool:
    return isinstance(e, sqlite3.Error) and (
        _errname(e) == "SQLITE_FULL" or "database or disk is full" in str(e))


def _is_corrupt(e: BaseException) -> bool:
    return isinstance(e, sqlite3.Error) and (
        _errname(e).startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
        or any(t in str(e) for t in ("malformed", "file is not a database", "database corrupt")))


class CampaignStore:
    """Products, jobs and attempts of one campaign; thread-safe (one connection, one lock)."""

    def __init__(self, db_path: Path | str, progress_path: Path | str | None = None,
                 campaign_dir: Path | str | None = None, check: bool = True) -> None:
        self.db_path = Path(db_path)
        self.campaign_dir = Path(campaign_dir) if campaign_dir else self.db_path.parent
        self.progress = ProgressLog(progress_path or self.campaign_dir / PROGRESS_FILE)
        self._lock = threading.RLock()
        self._full_at = float("-inf")   # when a write last gave up on a full disk
        # a WAL file left behind means the last writer did not close (killed, crashed, or running now)
        unclean = _nonempty(self.db_path.with_name(self.db_path.name + "-wal"))
        try:
            self._db = sqlite3.connect(self.db_path, isolation_level=None, timeout=60.0,
                                       check_same_thread=False)
        except sqlite3.Error as e:
            raise self._error(e, "open") from None
        try:
            self._db.execute("PRAGMA busy_timeout = 60000")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            if check:
                self._check(full=unclean)
            self._migrate()
        except sqlite3.Error as e:
            self._db.close()
            raise self._error(e, "open") from None
        except BaseException:
            self._db.close()
            raise

    @classmethod
    def open(cls, campaign_dir: Path | str, create: bool = False) -> CampaignStore:
        """Open the store of a campaign (``create``: make the database if it is missing).

        A store that is not SQLite, is damaged (SQLite's quick_check; the full integrity_check
        when the last writer did not close it), or is empty/missing while the campaign has
        outputs is refused with :class:`CorruptStore`, whose line names ``s2l2a rebuild``.
        """
        d = Path(campaign_dir)
        if not d.is_dir():
            raise CampaignError("campaign directory does not exist", d)
        db = d / DB_FILE
        if not create and not db.exists():
            if not (d / SETTINGS_FILE).exists():
                raise CampaignError("not a campaign (no s2l2a.toml); create one with 's2l2a init'", d)
        check_store_file(d)
        return cls(db, campaign_dir=d)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> CampaignStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log_path(self, job_id: int) -> Path:
        """Where the log of a job goes: ``<campaign>/logs/<job_id>.log``."""
        return self.campaign_dir / LOGS_DIR / f"{job_id}.log"

    # -- internals ----------------------------------------------------------------------------

    def _error(self, e: sqlite3.Error, doing: str = "write") -> CampaignError:
        """One line for an SQLite failure: damaged, disk full, busy, or what SQLite said."""
        if _is_corrupt(e):
            return CorruptStore(f"the campaign store is damaged ({e}); {rebuild_hint(self.campaign_dir)}",
                                self.db_path)
        if self._disk_full(e):
            after = " (jobs left running are requeued by the next 's2l2a run')" if doing == "write" else ""
            return CampaignError(f"cannot {doing} the campaign store: the disk holding it is full ({e}); "
                                 f"free space and run the command again{after}", self.db_path)
        if _errname(e) in ("SQLITE_BUSY", "SQLITE_LOCKED") or "database is locked" in str(e):
            return CampaignError(f"the campaign store stayed locked by another s2l2a process for 60 s ({e}); "
                                 "try again", self.db_path)
        if _errname(e) == "SQLITE_READONLY" or "readonly" in str(e):
            return CampaignError(f"cannot {doing} the campaign store: it is read-only here ({e})", self.db_path)
        return CampaignError(f"cannot {doing} the campaign store: {e}", self.db_path)

    def _disk_full(self, e: sqlite3.Error) -> bool:
        return _is_full(e) or (_errname(e).startswith("SQLITE_IOERR") and _disk_nearly_full(self.db_path))

    def _check(self, full: bool = False) -> None:
        """SQLite's quick_check (every open; milliseconds for 10,000 jobs), the full
        integrity_check after an unclean close; a damaged store is refused before any use."""
        pragma = "integrity_check(1)" if full else "quick_check(1)"
        with self._lock:
            try:
                result = self._db.execute(f"PRAGMA {pragma}").fetchone()
            except sqlite3.DatabaseError as e:
                raise self._error(e, "read") from None
        if not result or result[0] != "ok":
            text = str(result[0] if result else "no answer").replace("*** in database main ***", "")
            detail = one_line(" ".join(text.split()))[:200]
            raise CorruptStore(f"the campaign store is damaged ({pragma.split('(')[0]}: {detail}); "
                               f"{rebuild_hint(self.campaign_dir)}", self.db_path)

    def _write(self, body: Callable[[sqlite3.Cursor], T]) -> T:
        """Run ``body`` in one short ``BEGIN IMMEDIATE`` transaction and return what it returns.

        A full disk ("database or disk is full") rolls back and retries the whole body a few
        times (space is often freed by a job ending); then, like any SQLite failure, it becomes
        one CampaignError line. Errors raised by ``body`` itself (illegal transitions) pass unchanged.
        """
        # after a write gave up on a full disk, the next ones fail at once for a while: a run
        # starting 1,000 jobs must not wait out the retries 1,000 times
        retries = 0 if time.monotonic() - self._full_at < FULL_QUIET_S else len(FULL_RETRY_S)
        for attempt in range(retries + 1):
            try:
                with self._lock:
                    cur = self._db.cursor()
                    cur.execute("BEGIN IMMEDIATE")
                    try:
                        result = body(cur)
                        cur.execute("COMMIT")
                        self._full_at = float("-inf")
                        return result
                    except BaseException:
                        if self._db.in_transaction:
                            try:
                                self._db.execute("ROLLBACK")
                            except sqlite3.Error:
                                pass
                        raise
            except sqlite3.Error as e:
                if self._disk_full(e):
                    if attempt < retries:
                        time.sleep(FULL_RETRY_S[attempt])
                        continue
                    self._full_at = time.monotonic()
                raise self._error(e) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _log(self, events: list[ProgressEvent]) -> None:
        """Append committed changes to progress.log; a full disk is retried, then one line."""
        for attempt in range(len(FULL_RETRY_S) + 1):
            try:
                self.progress.write(events)
                return
            except OSError as e:
                if e.errno == errno.ENOSPC and attempt < len(FULL_RETRY_S):
                    time.sleep(FULL_RETRY_S[attempt])
                    continue
                raise CampaignError(f"the store recorded the change but cannot append to progress.log: "
                                    f"{e.strerror or e}", self.progress.path) from None

    def _migrate(self) -> None:
        with self._lock:  # fast path without a write lock: `status` must work beside a busy run
            try:
                has = self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_version'").fetchone()
                if has and self._db.execute("SELECT max(version) FROM schema_version").fetchone()[0] == \
                        SCHEMA_VERSION:
                    return
            except sqlite3.Error as e:
                raise self._error(e, "read") from None

        def body(cur: sqlite3.Cursor) -> None:
            cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = cur.execute("SELECT max(version) FROM schema_version").fetchone()
            current = row[0] or 0
            if current > SCHEMA_VERSION:
                raise CampaignError(f"database schema {current} is newer than this s2l2a "
                                    f"understands ({SCHEMA_VERSION}); upgrade s2l2a", self.db_path)
            for version, script in MIGRATIONS:
                if version > current:
                    for stmt in script.split(";"):
                        if stmt.strip():
                            cur.execute(stmt)
                    cur.execute("DELETE FROM schema_version")
                    cur.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

        self._write(body)

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, tuple(params)).fetchall()
            except sqlite3.Error as e:
                raise self._error(e, "read") from None

    # -- products and jobs --------------------------------------------------------------------

    def add_product(self, record: ProductRecord) -> tuple[int, bool]:
        """Add one product and its queued job; ``(job_id, created)``, idempotent by path and name."""
        return self.add_products([record])[0]

    def add_products(self, records: Iterable[ProductRecord]) -> list[tuple[int, bool]]:
        """Add products in one transaction. A path or product name already known is not added
        again (same product → same job); when a known product's path vanished and it turns up
        at a new path, the path is updated (data moved). progress.log gets each new product's
        path and job id ("planned as job N from PATH"), so ``s2l2a rebuild`` can restore the store from it."""
        records = list(records)
        now = utcnow()

        def body(cur: sqlite3.Cursor) -> tuple[list[tuple[int, bool]], list[ProgressEvent]]:
            out: list[tuple[int, bool]] = []
            events: list[ProgressEvent] = []
            by_path: dict[str, int] = {}
            by_name: dict[str, tuple[int, str, int, str]] = {}
            # only the rows these records could meet (unique indexes): a commit costs the batch,
            # not the campaign, when a plan of 100,000 commits every few seconds
            sql = "SELECT p.id, p.path, p.name, j.id, j.state FROM products p JOIN jobs j ON j.product_id = p.id WHERE "
            for column, values in (("path", [str(r.path) for r in records]), ("name", [r.name for r in records])):
                for i in range(0, len(values), _IN_CHUNK):
                    chunk = values[i:i + _IN_CHUNK]
                    for pid, path, name, jid, state in cur.execute(
                            f"{sql}p.{column} IN ({','.join('?' * len(chunk))})", chunk):
                        by_path[path] = jid
                        by_name[name] = (pid, path, jid, state)
            next_pid = (cur.execute("SELECT max(id) FROM products").fetchone()[0] or 0) + 1
            next_jid = (cur.execute("SELECT max(id) FROM jobs").fetchone()[0] or 0) + 1
            new_products: list[tuple] = []
            new_jobs: list[tuple] = []
            moved: list[tuple[str, int]] = []
            for r in records:
                path = str(r.path)
                if path in by_path:
                    out.append((by_path[path], False))
                    continue
                known = by_name.get(r.name)
                if known is not None:
                    pid, old_path, jid, state = known
                    if not Path(old_path).exists() and Path(path).exists():
                        moved.append((path, pid))
                        del by_path[old_path]
                        by_path[path] = jid
                        by_name[r.name] = (pid, path, jid, state)
                        events.append(ProgressEvent(now, r.name, r.tile, state, f"{MOVED_TO}{path}"))
                    out.append((jid, False))
                    continue
                pid, jid = next_pid, next_jid
                next_pid += 1
                next_jid += 1
                new_products.append((pid, path, r.name, r.tile, r.sensing_time, r.baseline,
                                     r.generation_time, r.mission, r.cloud_cover, now))
                new_jobs.append((jid, pid, JobState.QUEUED.value, now))
                by_path[path] = jid
                by_name[r.name] = (pid, path, jid, JobState.QUEUED.value)
                out.append((jid, True))
                events.append(ProgressEvent(now, r.name, r.tile, JobState.QUEUED.value,
                                            f"{PLANNED_AS}{jid}{FROM}{path}"))
            cur.executemany("INSERT INTO products (id, path, name, tile, sensing_time, baseline, "
                            "generation_time, mission, cloud_cover, added_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                            new_products)
            cur.executemany("INSERT INTO jobs (id, product_id, state, updated_at) VALUES (?,?,?,?)", new_jobs)
            cur.executemany("UPDATE products SET path = ? WHERE id = ?", moved)
            # an input that was rejected before and now reads as a product is no longer rejected
            cur.executemany("DELETE FROM rejected WHERE path = ?", [(str(r.path),) for r in records])
            return out, events

        out, events = self._write(body)
        self._log(events)
        return out

    def jobs(self, states: Iterable[JobState | str] | JobState | str | None = None,
             job_ids: Iterable[int] | None = None, tile: str | None = None) -> list[Job]:
        """Jobs (with their product), ordered by id, optionally filtered."""
        where, params = [], []
        if states is not None:
            sts = [JobState(states)] if isinstance(states, str) else [JobState(s) for s in states]
            where.append(f"j.state IN ({','.join('?' * len(sts))})")
            params += [s.value for s in sts]
        ids: list[int] | None = None
        if job_ids is not None:
            ids = [int(i) for i in job_ids]
        if tile is not None:
            where.append("p.tile = ?")
            params.append(tile)
        sql = _JOB_SELECT + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY j.id"
        rows = [_job(r) for r in self._read(sql, params)]
        if ids is not None:
            wanted = set(ids)
            rows = [j for j in rows if j.id in wanted]
        return rows

    def job_keys_of(self, acquisitions: Iterable[tuple[str, str]]) -> list[JobKey]:
        """The jobs of these acquisitions ((tile, "YYYY-MM-DDTHH:MM:SS") as
        ``safe.acquisition.acquisition_key`` gives), ordered by id: the duplicate rule for what one
        plan batch touched, through the (tile, sensing_time) index."""
        sql = (_KEY_SELECT + " WHERE p.tile = ? AND p.sensing_time >= ? AND p.sensing_time < ? || char(127)")
        st = {s.value: s for s in JobState}
        rows: dict[int, tuple] = {}
        with self._lock:
            try:
                for tile, second in set(acquisitions):
                    for r in self._db.execute(sql, (tile, second, second)):
                        rows[r[0]] = r
            except sqlite3.Error as e:
                raise self._error(e, "read") from None
        return [JobKey(*r[:8], st[r[8]], r[9]) for _, r in sorted(rows.items())]

    def job_keys(self, states: Iterable[JobState | str] | None = None) -> list[JobKey]:
        """All jobs (or those in ``states``) as light tuples, ordered by id (the planner's view)."""
        sql = _KEY_SELECT
        params: list[str] = []
        if states is not None:
            params = [JobState(s).value for s in states]
            sql += f" WHERE j.state IN ({','.join('?' * len(params))})"
        st = {s.value: s for s in JobState}
        return [JobKey(*r[:8], st[r[8]], r[9]) for r in self._read(sql + " ORDER BY j.id", params)]

    def job(self, job_id: int) -> Job:
        """One job; CampaignError when there is no such job."""
        rows = self._read(_JOB_SELECT + " WHERE j.id = ?", (int(job_id),))
        if not rows:
            raise CampaignError(f"no job {job_id} in this campaign", self.campaign_dir)
        return _job(rows[0])

    def job_by_path(self, path: Path | str) -> Job | None:
        """The job of the product at ``path`` (resolved), or None."""
        rows = self._read(_JOB_SELECT + " WHERE p.path = ?", (str(Path(path).resolve()),))
        return _job(rows[0]) if rows else None

    def attempts(self, job_id: int | None = None) -> list[Attempt]:
        """Attempts of one job (or all), in order."""
        cols = 'job_id, n, state, start, "end", exit_status, failure_class, message, log_path, host, pid, cpu_s, peak_mb'
        if job_id is None:
            rows = self._read(f"SELECT {cols} FROM attempts ORDER BY job_id, n")
        else:
            rows = self._read(f"SELECT {cols} FROM attempts WHERE job_id = ? ORDER BY n", (int(job_id),))
        return [Attempt(*r) for r in rows]

    def last_attempt(self, job_id: int) -> Attempt | None:
        """The latest attempt of a job, or None when it never ran."""
        a = self.attempts(job_id)
        return a[-1] if a else None

    # -- state changes ------------------------------------------------------------------------

    def _state_of(self, cur: sqlite3.Cursor, job_id: int) -> tuple[JobState, int, str, str]:
        row = cur.execute("SELECT j.state, j.attempts, p.name, p.tile FROM jobs j JOIN products p "
                          "ON p.id = j.product_id WHERE j.id = ?", (int(job_id),)).fetchone()
        if row is None:
            raise CampaignError(f"no job {job_id} in this campaign", self.campaign_dir)
        return JobState(row[0]), row[1], row[2], row[3]

    def start_attempt(self, job_id: int, host: str, pid: int, log_path: Path | str | None,
                      start: str | datetime | None = None) -> int:
        """Mark a queued job running and open attempt number ``attempts + 1``; returns that number."""
        now = utcnow()
        start_s = _iso(start) if start is not None else now

        def body(cur: sqlite3.Cursor) -> tuple[int, str, str]:
            state, n, name, tile = self._state_of(cur, job_id)
            check_transition(job_id, state, JobState.RUNNING)
            n += 1
            cur.execute("UPDATE jobs SET state = 'running', attempts = ?, failure_class = NULL, "
                        "message = NULL, updated_at = ? WHERE id = ?", (n, now, job_id))
            cur.execute("INSERT INTO attempts (job_id, n, state, start, log_path, host, pid) "
                        "VALUES (?,?,?,?,?,?,?)",
                        (job_id, n, "running", start_s, str(log_path) if log_path else None, host, pid))
            return n, name, tile

        n, name, tile = self._write(body)
        self._log([ProgressEvent(now, name, tile, "running", f"attempt {n} on {host} pid {pid}")])
        return n

    def finish_attempt(self, job_id: int, outcome: Any) -> Job:
        """Close the running attempt with its outcome: running -> done | failed. When the outcome
        names its ``attempt`` and the job has moved on (requeued, restarted), StaleOutcome is raised
        and nothing changes: checked inside the transaction, so a late result can never close a newer attempt.

        A write that still fails (disk full after the retries) raises CampaignError and leaves the
        job running: the next ``s2l2a run`` folds its result file or requeues it."""
        now = utcnow()
        state = JobState(_get(outcome, "state"))
        if state not in (JobState.DONE, JobState.FAILED):
            raise CampaignError(f"job {job_id}: an attempt ends done or failed, not {state}")
        end = _get(outcome, "end")
        end_s = _iso(end) if end is not None else now
        fc = _get(outcome, "failure_class")
        fc = str(fc.value if hasattr(fc, "value") else fc) if fc is not None else None
        if state is JobState.FAILED and fc is None:
            fc = "other"
        if state is JobState.DONE:
            fc = None
        message = _get(outcome, "message")
        out_path = _get(outcome, "output_path")
        exit_status = _get(outcome, "exit_status")
        attempt = _get(outcome, "attempt")
        log_path = _get(outcome, "log_path")

        def body(cur: sqlite3.Cursor) -> tuple[int, str, str]:
            cur_state, n, name, tile = self._state_of(cur, job_id)
            check_transition(job_id, cur_state, state)
            if attempt is not None and int(attempt) != n:
                raise StaleOutcome(f"job {job_id}: outcome of attempt {attempt}, but the job is at attempt {n}")
            cur.execute("UPDATE jobs SET state = ?, failure_class = ?, message = ?, output_path = ?, "
                        "processor = coalesce(?, processor), processor_version = coalesce(?, processor_version), "
                        "updated_at = ? WHERE id = ?",
                        (state.value, fc, message, str(out_path) if out_path else None,
                         _get(outcome, "processor"), _get(outcome, "processor_version"), now, job_id))
            cur.execute('UPDATE attempts SET state = ?, "end" = ?, exit_status = ?, failure_class = ?, '
                        "message = ?, log_path = coalesce(log_path, ?), cpu_s = ?, peak_mb = ? "
                        "WHERE job_id = ? AND n = ?",
                        (state.value, end_s, exit_status, fc, message, str(log_path) if log_path else None,
                         _usage(outcome, "cpu_s"), _usage(outcome, "peak_mb"), job_id, n))
            return n, name, tile

        n, name, tile = self._write(body)
        detail = f"attempt {n}" + (f" {fc}: {message}" if state is JobState.FAILED else "")
        if state is JobState.DONE and out_path:
            detail += f" -> {out_path}"
        self._log([ProgressEvent(now, name, tile, state.value, detail)])
        return self.job(job_id)

    def requeue(self, job_ids: Iterable[int] | None = None, failure_class: str | None = None,
                max_attempts: int | None = None) -> int:
        """Failed -> queued (explicit retry); filter by ids, failure class, attempts < max_attempts.
        Ids that are not failed are left alone (and not counted)."""
        now = utcnow()
        ids = None if job_ids is None else {int(i) for i in job_ids}

        def body(cur: sqlite3.Cursor) -> list[tuple]:
            rows = cur.execute("SELECT j.id, j.attempts, j.failure_class, p.name, p.tile FROM jobs j "
                               "JOIN products p ON p.id = j.product_id WHERE j.state = 'failed' "
                               "ORDER BY j.id").fetchall()
            picked = [r for r in rows
                      if (ids is None or r[0] in ids)
                      and (failure_class is None or r[2] == failure_class)
                      and (max_attempts is None or r[1] < max_attempts)]
            cur.executemany("UPDATE jobs SET state = 'queued', failure_class = NULL, message = NULL, "
                            "updated_at = ? WHERE id = ?", [(now, r[0]) for r in picked])
            return picked

        picked = self._write(body)
        self._log([ProgressEvent(now, r[3], r[4], "queued", f"retry after {r[2]}") for r in picked])
        return len(picked)

    def requeue_stale(self, reason: str, job_ids: Iterable[int] | None = None) -> list[int]:
        """Running -> queued for jobs whose driver died; their open attempt is closed as
        failure class "interrupted" with ``reason`` as message. Returns the requeued ids."""
        now = utcnow()
        ids = None if job_ids is None else {int(i) for i in job_ids}

        def body(cur: sqlite3.Cursor) -> list[tuple]:
            rows = cur.execute("SELECT j.id, j.attempts, p.name, p.tile FROM jobs j JOIN products p "
                               "ON p.id = j.product_id WHERE j.state = 'running' ORDER BY j.id").fetchall()
            picked = [r for r in rows if ids is None or r[0] in ids]
            cur.executemany("UPDATE jobs SET state = 'queued', updated_at = ? WHERE id = ?",
                            [(now, r[0]) for r in picked])
            cur.executemany('UPDATE attempts SET state = \'failed\', "end" = ?, failure_class = \'interrupted\', '
                            "message = ? WHERE job_id = ? AND n = ?",
                            [(now, reason, r[0], r[1]) for r in picked])
            return picked

        picked = self._write(body)
        self._log([ProgressEvent(now, r[2], r[3], "queued", f"interrupted: {reason}") for r in picked])
        return [r[0] for r in picked]

    def set_states(self, changes: Iterable[StateChange]) -> int:
        """Apply several checked state changes in one transaction (all or none)."""
        changes = list(changes)
        if not changes:
            return 0
        now = utcnow()

        def body(cur: sqlite3.Cursor) -> list[ProgressEvent]:
            events: list[ProgressEvent] = []
            info = {r[0]: r for r in cur.execute(
                "SELECT j.id, j.state, p.name, p.tile FROM jobs j JOIN products p ON p.id = j.product_id")}
            params = []
            for c in changes:
                if c.job_id not in info:
                    raise CampaignError(f"no job {c.job_id} in this campaign", self.campaign_dir)
                _, src, name, tile = info[c.job_id]
                dst = JobState(c.state)
                if src != dst.value or dst is not JobState.SKIPPED:  # skipped->skipped: new reason only
                    check_transition(c.job_id, src, dst)
                info[c.job_id] = (c.job_id, dst.value, name, tile)
                params.append((dst.value, c.reason if dst is JobState.SKIPPED else None,
                               str(c.output_path) if c.output_path else None, now, c.job_id))
                events.append(ProgressEvent(now, name, tile, dst.value, c.reason or ""))
            cur.executemany("UPDATE jobs SET state = ?, skip_reason = ?, output_path = coalesce(?, output_path), "
                            "updated_at = ? WHERE id = ?", params)
            return events

        self._log(self._write(body))
        return len(changes)

    # -- rejected inputs ----------------------------------------------------------------------

    def record_rejections(self, items: Iterable[tuple[Path | str, str]]) -> int:
        """Keep inputs a plan could not use: (path, one-line reason); a path seen again gets the
        new reason and time (one row per path). Each is also a ``rejected`` line in progress.log."""
        now = utcnow()
        rows = [(str(p), one_line(str(r))) for p, r in items]
        if not rows:
            return 0

        def body(cur: sqlite3.Cursor) -> None:
            cur.executemany("INSERT INTO rejected (path, reason, first_seen, last_seen) VALUES (?,?,?,?) "
                            "ON CONFLICT (path) DO UPDATE SET reason = excluded.reason, last_seen = excluded.last_seen",
                            [(p, r, now, now) for p, r in rows])

        self._write(body)
        self._log([ProgressEvent(now, Path(p).name or p, "-", REJECTED, f"{p}: {r}") for p, r in rows])
        return len(rows)

    def rejections(self) -> list[Rejection]:
        """Every input still rejected, in path order."""
        return [Rejection(*r) for r in self._read(
            "SELECT path, reason, first_seen, last_seen FROM rejected ORDER BY path")]

    def output_claims(self) -> dict[str, int]:
        """Output path -> the job that made it (done, or skipped since), for telling a campaign's
        own outputs from foreign ones."""
        return {p: jid for jid, p in self._read("SELECT id, output_path FROM jobs WHERE output_path IS NOT NULL "
                                                "ORDER BY id")}

    # -- rebuild ------------------------------------------------------------------------------

    def restore(self, jobs: Iterable[Job], attempts: Iterable[Attempt] = (),
                rejections: Iterable[Rejection] = ()) -> int:
        """Insert jobs (with their products, ids kept), attempts and rejections into an empty
        store in one transaction: used by ``s2l2a rebuild`` only, so nothing goes to progress.log
        (it is where they come from). Returns the number of jobs."""
        jobs, attempts, rejections = list(jobs), list(attempts), list(rejections)

        def body(cur: sqlite3.Cursor) -> None:
            if cur.execute("SELECT count(*) FROM jobs").fetchone()[0]:
                raise CampaignError("restore needs an empty store", self.db_path)
            cur.executemany("INSERT INTO products (id, path, name, tile, sensing_time, baseline, generation_time, "
                            "mission, cloud_cover, added_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                            [(j.id, str(j.path), j.name, j.tile, j.sensing_time, j.baseline, j.generation_time,
                              j.mission, j.cloud_cover, j.added_at) for j in jobs])
            cur.executemany("INSERT INTO jobs (id, product_id, state, skip_reason, attempts, failure_class, message, "
                            "output_path, processor, processor_version, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                            [(j.id, j.id, JobState(j.state).value, j.skip_reason, j.attempts, j.failure_class,
                              j.message, str(j.output_path) if j.output_path else None, j.processor,
                              j.processor_version, j.updated_at) for j in jobs])
            cur.executemany('INSERT INTO attempts (job_id, n, state, start, "end", exit_status, failure_class, '
                            "message, log_path, host, pid, cpu_s, peak_mb) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                            [(a.job_id, a.n, a.state, a.start, a.end, a.exit_status, a.failure_class, a.message,
                              a.log_path, a.host, a.pid, a.cpu_s, a.peak_mb) for a in attempts])
            cur.executemany("INSERT OR REPLACE INTO rejected (path, reason, first_seen, last_seen) VALUES (?,?,?,?)",
                            [tuple(r) for r in rejections])

        self._write(body)
        return len(jobs)

    # -- reporting ----------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Number of jobs per state (every state listed)."""
        out = {s.value: 0 for s in JobState}
        for state, n in self._read("SELECT state, count(*) FROM jobs GROUP BY state"):
            out[state] = n
        return out

    def throughput(self, recent: int = 50) -> float | None:
        """Jobs done per hour over the last ``recent`` successful attempts (None: too few to say)."""
        rows = self._read('SELECT start, "end" FROM attempts WHERE state = \'done\' AND "end" IS NOT NULL '
                          'ORDER BY "end" DESC LIMIT ?', (recent,))
        if not rows:
            return None
        first = min(_parse(r[0]) for r in rows)
        last = max(_parse(r[1]) for r in rows)
        span = (last - first).total_seconds()
        return len(rows) * 3600.0 / max(span, 1.0)

    def summary(self, log_tail: int = 5) -> dict[str, Any]:
        """Everything ``s2l2a status`` shows, as plain JSON-ready data."""
        counts = self.counts()
        tiles: dict[str, dict[str, int]] = {}
        for tile, state, n in self._read("SELECT p.tile, j.state, count(*) FROM jobs j JOIN products p "
                                         "ON p.id = j.product_id GROUP BY p.tile, j.state ORDER BY p.tile"):
            tiles.setdefault(tile, {s.value: 0 for s in JobState})[state] = n
        skipped = {"duplicate": 0, "output_exists": 0, "waiting": 0, "other": 0}
        for reason, n in self._read("SELECT skip_reason, count(*) FROM jobs WHERE state = 'skipped' "
                                    "GROUP BY skip_reason"):
            kind = ("duplicate" if (reason or "").startswith(SKIP_DUPLICATE)
                    else "output_exists" if (reason or "").startswith(SKIP_DONE)
                    else "waiting" if (reason or "").startswith(SKIP_WAITING) else "other")
            skipped[kind] += n
        rejected = [r._asdict() for r in self.rejections()]
        last = {(a.job_id): a for a in self.attempts()}  # ordered by n: the last one wins
        failures = []
        for j in self.jobs(JobState.FAILED):
            a = last.get(j.id)
            log = a.log_path if a and a.log_path else str(self.log_path(j.id))
            failures.append({"job_id": j.id, "product": j.name, "tile": j.tile, "attempts": j.attempts,
                             "failure_class": j.failure_class, "message": j.message,
                             "exit_status": a.exit_status if a else None, "log_path": log,
                             "log_tail": tail_lines(log, log_tail)})
        running = []
        for j in self.jobs(JobState.RUNNING):
            a = last.get(j.id)
            running.append({"job_id": j.id, "product": j.name, "tile": j.tile, "attempt": j.attempts,
                            "start": a.start if a else None, "host": a.host if a else None,
                            "pid": a.pid if a else None})
        tp = self.throughput()
        remaining = counts["queued"] + counts["running"]
        eta_s = remaining * 3600.0 / tp if tp and remaining else (0.0 if not remaining else None)
        return {
            "campaign": str(self.campaign_dir),
            "total": sum(counts.values()),
            "counts": counts,
            "skipped": skipped,
            "tiles": tiles,
            "failures": failures,
            "running": running,
            "rejected": rejected,
            "throughput_per_hour": round(tp, 3) if tp is not None else None,
            "eta_s": round(eta_s, 1) if eta_s is not None else None,
            "eta": iso(datetime.fromtimestamp(time.time() + eta_s, UTC)) if eta_s is not None else None,
        }


def _parse(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


__all__ = ["DB_FILE", "SCHEMA_VERSION", "Attempt", "AttemptOutcome", "CampaignStore", "CorruptStore", "Job",
           "JobKey", "ProductRecord", "Rejection", "StaleOutcome", "StateChange", "campaign_has_history",
           "check_store_file"]
