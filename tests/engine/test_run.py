"""`s2l2a run` through the real console script and a real Dask LocalCluster: completion, the run
lock, SIGKILL recovery, Ctrl-C, failures with retry, and a missing Sen2Cor."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from s2l2a.campaign.lock import RunLock
from s2l2a.campaign.progress import ProgressLog
from s2l2a.campaign.store import CampaignStore
from s2l2a.safe import verify_l2a

from .conftest import S2L2A, make_campaign, s2l2a

N = 12


def outputs(camp: Path) -> list[Path]:
    """Every entry in the output tiles except the ``.source`` markers (hidden half-written
    ``.partial-``/``.replaced-`` directories included: there must be none). The output root's
    own ``.s2l2a-owned`` marker is no tile."""
    root = camp / "L2A"
    entries = sorted(p for tile in root.iterdir() if tile.is_dir() for p in tile.iterdir()) if root.exists() else []
    markers = [p for p in entries if p.name.startswith(".") and p.name.endswith(".source")]
    assert all((p.parent / p.name[1:-len(".source")]).is_dir() for p in markers)
    return [p for p in entries if p not in markers]


def assert_all_done_once(camp: Path, n: int) -> None:
    with CampaignStore.open(camp) as store:
        assert store.counts() == {"queued": 0, "running": 0, "done": n, "failed": 0, "skipped": 0}
        jobs = store.jobs()
        outs = outputs(camp)
        assert len(outs) == n and all(p.name.endswith(".SAFE") and not p.name.startswith(".") for p in outs)
        assert sorted(Path(j.output_path or "") for j in jobs) == outs
        for j in jobs:  # each output belongs to its own acquisition
            assert j.name.replace("MSIL1C", "MSIL2A") + ".SAFE" == Path(j.output_path or "").name
    assert list((camp / "staging").iterdir()) == [] if (camp / "staging").exists() else True
    assert list((camp / "results").glob("*.json")) == []


def test_campaign_runs_to_completion(tmp_path: Path) -> None:
    camp = make_campaign(tmp_path, N)
    r = s2l2a("run", camp, "--processor", "noop")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("\n") == 1 and f"{N} done, 0 failed of {N}" in r.stdout
    assert str(camp / "L2A") in r.stdout
    assert "distributed" not in r.stderr and "Traceback" not in r.stderr  # Dask stays quiet
    assert_all_done_once(camp, N)
    for p in outputs(camp):
        verify_l2a(p)
    # progress log, status --json and the database agree
    events = ProgressLog(camp / "progress.log").read()
    assert sum(e.state == "running" for e in events) == N and sum(e.state == "done" for e in events) == N
    st = s2l2a("status", camp, "--json")
    assert st.returncode == 0, st.stderr
    summary = json.loads(st.stdout)
    with CampaignStore.open(camp) as store:
        assert summary["counts"] == store.counts()
        assert all(a.state == "done" and a.n == 1 for a in store.attempts())
    assert len(list((camp / "results" / "folded").glob("*.json"))) == N
    # a second run has nothing left to do
    again = s2l2a("run", camp, "--processor", "noop")
    assert again.returncode == 0 and "nothing to run: 12 done" in again.stdout


def test_second_run_is_refused_while_lock_held(tmp_path: Path) -> None:
    camp = make_campaign(tmp_path, 1)
    with RunLock(camp):
        r = s2l2a("run", camp, "--processor", "noop")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"another s2l2a run holds {camp / 'run.lock'} (pid {os.getpid()}" in lines[0]
    with CampaignStore.open(camp) as store:
        assert store.counts()["queued"] == 1  # nothing was touched


def _start_run(camp: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([str(S2L2A), "run", str(camp), "--processor", "noop"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for_done(camp: Path, k: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = ProgressLog(camp / "progress.log").read()
        if sum(e.state == "done" for e in events) >= k:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    pytest.fail(f"fewer than {k} jobs done within {timeout} s")


def test_sigkill_mid_run_then_rerun_finishes_each_product_once(tmp_path: Path) -> None:
    n = 8
    camp = make_campaign(tmp_path, n, extra_toml="\n[noop]\nsleep_s = 0.8\n")
    proc = _start_run(camp)
    _wait_for_done(camp, 2, proc)
    os.killpg(proc.pid, signal.SIGKILL)  # the run, its Dask scheduler and workers, all at once
    proc.communicate(timeout=30)
    with CampaignStore.open(camp) as store:
        counts = store.counts()
        assert counts["running"] >= 1 and 2 <= counts["done"] < n, counts
        killed_running = {j.id for j in store.jobs("running")}
    r = s2l2a("run", camp, "--processor", "noop")
    assert r.returncode == 0, r.stderr
    assert "interrupted job(s) requeued" in r.stderr
    assert_all_done_once(camp, n)
    with CampaignStore.open(camp) as store:
        interrupted = [a for a in store.attempts() if a.failure_class == "interrupted"]
        assert {a.job_id for a in interrupted} == killed_running
        assert all(store.jobs(job_ids=[a.job_id])[0].attempts == a.n + 1 for a in interrupted)


def test_sigint_stops_cleanly_requeues_and_leaves_no_orphans(tmp_path: Path) -> None:
    import psutil

    n = 8  # each job waits on a `sleep` in a session of its own, as Sen2Cor runs
    camp = make_campaign(tmp_path, n, extra_toml="\n[noop]\nchild_sleep_s = 0.6\n")
    proc = _start_run(camp)
    _wait_for_done(camp, 2, proc)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted after" in err and "Traceback" not in err
    with CampaignStore.open(camp) as store:
        counts = store.counts()
        assert counts["running"] == 0 and counts["queued"] > 0 and counts["done"] + counts["queued"] == n
        assert not any(a.state == "failed" and a.failure_class != "interrupted" for a in store.attempts())
    assert not any(p.name.startswith(".") for p in outputs(camp))
    assert list((camp / "staging").iterdir()) == [] if (camp / "staging").exists() else True

    def gone(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    pids = [int(m) for log in (camp / "logs").glob("[0-9]*.log")
            for m in re.findall(r"child pid (\d+)", log.read_text())]
    assert len(pids) >= 3
    deadline = time.monotonic() + 10
    while not all(gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(gone(p) for p in pids)  # the programs in their own sessions died with the run


def test_failures_do_not_stop_the_batch_and_retry_requeues(tmp_path: Path) -> None:
    toml = '\n[noop]\nfail = "dem_error"\nfail_matching = ["20180701T", "20180703T"]\n'
    n = 6
    camp = make_campaign(tmp_path, n, extra_toml=toml)
    r = s2l2a("run", camp, "--processor", "noop")
    assert r.returncode == 3, r.stderr
    assert f"{n - 2} done, 2 failed of {n}" in r.stdout and "s2l2a status" in r.stdout
    with CampaignStore.open(camp) as store:
        failed = store.jobs("failed")
        assert len(failed) == 2 and {j.failure_class for j in failed} == {"dem_error"}
        assert all("failing" in (j.message or "") for j in failed)
    r = s2l2a("retry", camp, "--class", "dem_error")
    assert r.returncode == 0 and "requeued 2" in r.stdout
    (camp / "s2l2a.toml").write_text((camp / "s2l2a.toml").read_text().replace(toml, ""))
    r = s2l2a("run", camp, "--processor", "noop", "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert "2 done, 0 failed of 2" in r.stdout
    assert_all_done_once(camp, n)


def test_sen2cor_requested_but_missing_is_one_line(tmp_path: Path) -> None:
    camp = make_campaign(tmp_path, 1)
    env = {k: v for k, v in os.environ.items() if k != "SEN2COR_BIN"}
    env["PATH"] = str(tmp_path)
    r = s2l2a("run", camp, "--processor", "sen2cor", env=env)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no Sen2Cor L2A_Process was found" in lines[0]
    assert f"s2l2a config {camp} sen2cor.l2a_process PATH" in lines[0]   # init refuses an existing campaign
