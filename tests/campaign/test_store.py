"""The SQLite store: idempotent adds, the state machine, attempts, requeues, progress log agreement."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest

from s2l2a.campaign.progress import ProgressLog
from s2l2a.campaign.states import TRANSITIONS, IllegalTransition, JobState, check_transition
from s2l2a.campaign.store import (
    DB_FILE,
    SCHEMA_VERSION,
    AttemptOutcome,
    CampaignStore,
    ProductRecord,
    StateChange,
)
from s2l2a.errors import CampaignError


def rec(i: int, tile: str = "56JMM", **kw: object) -> ProductRecord:
    base = dict(path=Path(f"/data/p{i}.SAFE"), name=f"S2A_MSIL1C_P{i}", tile=tile,
                sensing_time=f"2020-01-01T00:00:{i % 60:02d}Z", baseline="05.00",
                generation_time="2020-01-01T01:00:00Z", mission="S2A", cloud_cover=1.5)
    base.update(kw)
    return ProductRecord(**base)  # type: ignore[arg-type]


@pytest.fixture
def store(campaign: Path):
    with CampaignStore.open(campaign) as s:
        yield s


def log_states(campaign: Path) -> dict[str, str]:
    """The last state the progress log gives each product."""
    return {e.product: e.state for e in ProgressLog(campaign / "progress.log").read()}


def db_states(store: CampaignStore) -> dict[str, str]:
    return {j.name: j.state.value for j in store.jobs()}


def test_open_refuses_a_non_campaign(tmp_path: Path) -> None:
    with pytest.raises(CampaignError, match="not a campaign"):
        CampaignStore.open(tmp_path)
    with pytest.raises(CampaignError, match="does not exist"):
        CampaignStore.open(tmp_path / "nope")


def test_schema_pragmas_and_version(store: CampaignStore, campaign: Path) -> None:
    db = sqlite3.connect(campaign / DB_FILE)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


def test_newer_schema_is_refused(campaign: Path) -> None:
    db = sqlite3.connect(campaign / DB_FILE)
    db.execute("UPDATE schema_version SET version = 99")
    db.commit()
    db.close()
    with pytest.raises(CampaignError, match="newer"):
        CampaignStore.open(campaign)


def test_add_is_idempotent_by_path_and_by_name(store: CampaignStore, campaign: Path) -> None:
    res = store.add_products([rec(1), rec(2), rec(1)])
    assert res == [(1, True), (2, True), (1, False)]
    assert store.add_product(rec(2)) == (2, False)
    # the same product (name) found at another path is the same job
    assert store.add_product(rec(1, path=Path("/elsewhere/p1.SAFE"))) == (1, False)
    assert [j.id for j in store.jobs()] == [1, 2]
    job = store.job(1)
    assert (job.state, job.tile, job.baseline, job.cloud_cover, job.attempts) == (JobState.QUEUED, "56JMM",
                                                                                  "05.00", 1.5, 0)
    assert store.job_by_path("/data/p2.SAFE").id == 2
    assert store.counts() == {"queued": 2, "running": 0, "done": 0, "failed": 0, "skipped": 0}
    assert log_states(campaign) == db_states(store)


def test_a_moved_product_gets_its_new_path(store: CampaignStore, tmp_path: Path) -> None:
    new = tmp_path / "moved.SAFE"
    new.mkdir()
    store.add_product(rec(1))            # /data/p1.SAFE does not exist
    assert store.add_product(rec(1, path=new)) == (1, False)
    assert store.job(1).path == new


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(JobState, JobState)))
def test_state_machine_table(src: JobState, dst: JobState) -> None:
    if dst in TRANSITIONS[src]:
        check_transition(1, src, dst)
    else:
        with pytest.raises(IllegalTransition, match=f"{src} -> {dst}"):
            check_transition(1, src, dst)


def test_illegal_transitions_raise_and_change_nothing(store: CampaignStore) -> None:
    store.add_product(rec(1))
    with pytest.raises(IllegalTransition):
        store.finish_attempt(1, AttemptOutcome("done"))            # queued -> done
    with pytest.raises(CampaignError):
        store.finish_attempt(1, AttemptOutcome("queued"))          # not an end state
    store.start_attempt(1, "host", 42, "/tmp/1.log")
    with pytest.raises(IllegalTransition):
        store.start_attempt(1, "host", 43, None)                   # running -> running
    store.finish_attempt(1, AttemptOutcome("done", output_path="/out/x.SAFE"))
    with pytest.raises(IllegalTransition):
        store.set_states([StateChange(1, JobState.FAILED, "x")])   # done -> failed
    with pytest.raises(IllegalTransition):
        store.start_attempt(1, "host", 44, None)                   # done -> running
    job = store.job(1)
    assert (job.state, job.attempts, job.output_path) == (JobState.DONE, 1, Path("/out/x.SAFE"))
    with pytest.raises(CampaignError, match="no job 7"):
        store.start_attempt(7, "h", 1, None)


def test_attempt_lifecycle_and_requeue(store: CampaignStore, campaign: Path) -> None:
    store.add_products([rec(1), rec(2), rec(3)])
    assert store.start_attempt(1, "n1", 100, "/logs/1.log") == 1
    assert store.start_attempt(2, "n1", 101, "/logs/2.log") == 1
    assert store.start_attempt(3, "n1", 102, "/logs/3.log") == 1
    store.finish_attempt(1, AttemptOutcome("failed", "timeout", "no answer in 3h", exit_status=-9,
                                           processor="sen2cor", processor_version="02.11.00"))
    store.finish_attempt(2, {"state": "failed", "failure_class": "dem_error", "message": "no DEM"})
    done = store.finish_attempt(3, AttemptOutcome("done", output_path="/o/3.SAFE", processor="builtin",
                                                  processor_version="0.1.0"))
    assert (done.state, done.processor, done.failure_class) == (JobState.DONE, "builtin", None)
    j1 = store.job(1)
    assert (j1.state, j1.failure_class, j1.message, j1.processor_version) == (
        JobState.FAILED, "timeout", "no answer in 3h", "02.11.00")
    a = store.last_attempt(1)
    assert (a.n, a.state, a.exit_status, a.failure_class, a.host, a.pid, a.log_path) == (
        1, "failed", -9, "timeout", "n1", 100, "/logs/1.log")
    assert a.end is not None

    assert store.requeue(failure_class="dem_error") == 1
    assert store.job(2).state is JobState.QUEUED and store.job(2).failure_class is None
    assert store.requeue(job_ids=[1], max_attempts=1) == 0        # already used its one attempt
    assert store.requeue(job_ids=[1, 3]) == 1                     # 3 is done: left alone
    assert store.start_attempt(1, "n2", 200, None) == 2
    assert [a.n for a in store.attempts(1)] == [1, 2]
    assert log_states(campaign) == db_states(store)


def test_requeue_stale_closes_running_attempts_as_interrupted(store: CampaignStore, campaign: Path) -> None:
    store.add_products([rec(1), rec(2), rec(3)])
    store.start_attempt(1, "h", 1, None)
    store.start_attempt(2, "h", 2, None)
    assert store.requeue_stale("run 77 on h died", job_ids=[2, 3]) == [2]
    assert store.requeue_stale("run 77 on h died") == [1]
    assert store.requeue_stale("again") == []
    for jid in (1, 2):
        job, att = store.job(jid), store.last_attempt(jid)
        assert job.state is JobState.QUEUED and job.attempts == 1
        assert (att.state, att.failure_class, att.message) == ("failed", "interrupted", "run 77 on h died")
        assert att.end is not None
    assert store.counts()["running"] == 0
    assert log_states(campaign) == db_states(store)
    assert "interrupted: run 77 on h died" in (campaign / "progress.log").read_text()


def test_set_states_is_all_or_nothing(store: CampaignStore) -> None:
    store.add_products([rec(1), rec(2)])
    store.start_attempt(2, "h", 1, None)
    with pytest.raises(IllegalTransition):
        store.set_states([StateChange(1, "skipped", "dup"), StateChange(2, "skipped", "dup")])
    assert store.job(1).state is JobState.QUEUED


def test_progress_log_format(store: CampaignStore, campaign: Path) -> None:
    store.add_product(rec(1, name="S2A_MSIL1C_X\nY"))
    store.start_attempt(1, "h", 9, None)
    lines = (campaign / "progress.log").read_text().splitlines()
    assert len(lines) == 2                            # a newline in a name does not split a line
    t, product, tile, state, detail = lines[1].split("  ")
    assert len(t) == 20 and t.endswith("Z") and t[10] == "T"
    assert (product, tile, state, detail) == ("S2A_MSIL1C_X\\nY", "56JMM", "running", "attempt 1 on h pid 9")


def test_summary_throughput_eta_and_failures(store: CampaignStore, campaign: Path) -> None:
    store.add_products([rec(i, tile="33UUP" if i > 3 else "56JMM") for i in range(1, 7)])
    for jid in (1, 2):
        store.start_attempt(jid, "h", jid, None, start="2026-01-01T00:00:00Z")
        store.finish_attempt(jid, AttemptOutcome("done", end="2026-01-01T00:30:00Z"))
    log = campaign / "logs" / "3.log"
    log.parent.mkdir(exist_ok=True)
    log.write_text("".join(f"line {i}\n" for i in range(20)))
    store.start_attempt(3, "h", 3, log)
    store.finish_attempt(3, AttemptOutcome("failed", "killed", "signal 9", exit_status=-9))
    s = store.summary()
    assert s["counts"] == {"queued": 3, "running": 0, "done": 2, "failed": 1, "skipped": 0}
    assert s["tiles"]["56JMM"] == {"queued": 0, "running": 0, "done": 2, "failed": 1, "skipped": 0}
    assert s["tiles"]["33UUP"]["queued"] == 3
    assert s["throughput_per_hour"] == 4.0           # 2 done in 30 min
    assert s["eta_s"] == 2700.0                      # 3 queued at 4/h
    (f,) = s["failures"]
    assert (f["job_id"], f["failure_class"], f["exit_status"], f["log_tail"]) == (
        3, "killed", -9, [f"line {i}" for i in range(15, 20)])


def test_an_outcome_of_an_older_attempt_changes_nothing(store: CampaignStore) -> None:
    from s2l2a.campaign.store import StaleOutcome

    store.add_product(rec(1))
    store.start_attempt(1, "h", 1, None)
    store.requeue_stale("driver died")
    store.start_attempt(1, "h", 2, None)
    with pytest.raises(StaleOutcome, match="attempt 1"):
        store.finish_attempt(1, {"state": "done", "attempt": 1, "output_path": "/o"})
    assert store.job(1).state is JobState.RUNNING and store.last_attempt(1).end is None
    store.finish_attempt(1, {"state": "done", "attempt": 2, "log_path": "/logs/1.log"})
    assert store.last_attempt(1).log_path == "/logs/1.log"


KILL_CHILD = """
import sys
from pathlib import Path
from s2l2a.campaign.store import CampaignStore, ProductRecord
recs = [ProductRecord(path=Path(f"/d/{i}"), name=f"N{i}", tile="56JMM", sensing_time=f"2020-01-01T00:00:{i % 60:02d}Z")
        for i in range(100_000)]
store = CampaignStore.open(sys.argv[1])
print("begin", flush=True)
store.add_products(recs)
print("committed", flush=True)
"""


def test_a_killed_bulk_add_leaves_all_or_nothing(campaign: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    child = subprocess.Popen([sys.executable, "-c", KILL_CHILD, str(campaign)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "begin"
    time.sleep(0.2)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    with CampaignStore.open(campaign) as s:
        n_jobs = sum(s.counts().values())
        n_products = s._read("SELECT count(*) FROM products")[0][0]
    assert n_jobs == n_products and n_jobs in (0, 100_000), n_jobs
    lines = (campaign / "progress.log").read_text().count("\n") if (campaign / "progress.log").exists() else 0
    assert lines <= n_jobs           # the log is written after the commit: it never invents a change


def test_two_connections_write_concurrently(campaign: Path) -> None:
    import threading

    errors: list[BaseException] = []
    with CampaignStore.open(campaign) as s:
        s.add_products([rec(i) for i in range(1, 101)])

    def runner() -> None:
        try:
            with CampaignStore.open(campaign) as s:
                for jid in range(1, 101):
                    s.start_attempt(jid, "h", jid, None)
                    s.finish_attempt(jid, AttemptOutcome("done"))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    def planner() -> None:
        try:
            with CampaignStore.open(campaign) as s:
                for b in range(20):
                    s.add_products([rec(1000 + b * 10 + k) for k in range(10)])
                    s.summary()
        except BaseException as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=runner), threading.Thread(target=planner)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    with CampaignStore.open(campaign) as s:
        assert s.counts() == {"queued": 200, "running": 0, "done": 100, "failed": 0, "skipped": 0}
        assert log_states(campaign) == db_states(s)
