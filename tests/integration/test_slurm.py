"""Campaigns through the real single-node Slurm (scripts/slurm-up.sh): job arrays, memory and
time limits, a requeue, folding exactly once, and status after Slurm forgot the jobs.

Marked ``slurm``; skipped with the reason when no Slurm answers.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

import pytest

from s2l2a.campaign.cluster import cluster_job_ids, load_records, reconcile
from s2l2a.campaign.store import CampaignStore
from s2l2a.safe import verify_l2a

from .conftest import S2L2A, make_cluster_campaign, s2l2a, wait_until

pytestmark = pytest.mark.slurm


def _squeue(env: dict[str, str], job_id: str) -> dict[int, str]:
    r = subprocess.run(["squeue", "-h", "--states=all", "-r", "-j", job_id, "-o", "%K %T"],
                       capture_output=True, text=True, env=env, timeout=30)
    out = {}
    for line in r.stdout.split("\n"):
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit():
            out[int(parts[0])] = parts[1]
    return out


def _done_events(camp: Path, name: str) -> int:
    return sum(1 for line in (camp / "progress.log").read_text().splitlines() if name in line and " done " in line)


def _jobs_by_day(store: CampaignStore) -> dict[str, object]:
    return {j.name.split("_")[2][:8]: j for j in store.jobs()}


@pytest.mark.timeout(240)
def test_sen2cor_and_builtin_campaigns_through_slurm_arrays(slurm, hungry_standin, tmp_path):
    """Six stand-in products: one over its memory limit (killed by Slurm -> out_of_memory), one
    hanging past its 1-minute limit (TIMEOUT -> timeout), one failing inside Sen2Cor (result file
    says other), one requeued while running (folded exactly once), two plain; and beside it six
    built-in products. Every published output verifies."""
    env = dict(slurm, HOG_MATCH="20180630", HOG_MB="1200",
               STANDIN_FAIL_TILES="20180701:hang,20180703:exit", STANDIN_SLEEP="3", STANDIN_QUIET="1")
    camp = make_cluster_campaign(tmp_path / "s2c", 6, sen2cor=hungry_standin, memory_mb=500,
                                 cluster={"run_limit": 60})
    r = s2l2a("run", camp, "--engine", "slurm", "--processor", "sen2cor", env=env)
    assert r.returncode == 0, r.stderr
    assert "submitted slurm array" in r.stdout and "element walltime" in r.stderr
    script = next((camp / "cluster").glob("*.sh")).read_text()
    assert "#SBATCH --time=00:00:17" in script and "#SBATCH --mem=500M" in script
    (rec,) = load_records(camp)
    assert rec.job_id and len(rec.elements) == 6

    builtin = make_cluster_campaign(tmp_path / "bi", 6, processor="builtin", memory_mb=1500,
                                    cluster={"estimate_s": 30, "run_limit": "10m"})
    r = s2l2a("run", builtin, "--engine", "slurm", env=slurm)
    assert r.returncode == 0, r.stderr

    with CampaignStore.open(camp) as store:
        by_day = _jobs_by_day(store)
        requeued = by_day["20180702"]
        assert {str(j.state) for j in by_day.values()} == {"running"}
        assert store.last_attempt(requeued.id).host == f"slurm:{rec.name}[{rec.element_of(requeued.id)}]"
        # requeue an element while it runs (what Slurm does after a node failure)
        index = rec.element_of(requeued.id)
        assert wait_until(lambda: _squeue(slurm, rec.job_id).get(index) == "RUNNING", 60, 0.2)
        p = subprocess.run(["scontrol", "requeue", f"{rec.job_id}_{index}"], capture_output=True, text=True,
                           env=slurm, timeout=30)
        assert p.returncode == 0, p.stderr

        def started_again() -> bool:
            # a requeued job waits ~2 min (BeginTime) unless told otherwise; the requeue itself is
            # asynchronous, so repeat until the element runs again
            if _squeue(slurm, rec.job_id).get(index) == "PENDING":
                subprocess.run(["scontrol", "update", f"JobId={rec.job_id}_{index}", "StartTime=now"],
                               capture_output=True, env=slurm, timeout=30)
                return False
            return _squeue(slurm, rec.job_id).get(index) in ("RUNNING", "COMPLETED")

        assert wait_until(lambda: _squeue(slurm, rec.job_id).get(index) == "PENDING", 20, 0.1)
        assert wait_until(started_again, 30, 0.5)
        # reconcile like a user re-running `status` while the arrays run
        assert wait_until(lambda: not reconcile(camp, store).in_flight, 200, 2.0)
        jobs = _jobs_by_day(store)
        got = {day: (str(j.state), j.failure_class) for day, j in jobs.items()}
        assert got == {"20180629": ("done", None), "20180630": ("failed", "out_of_memory"),
                       "20180701": ("failed", "timeout"), "20180702": ("done", None),
                       "20180703": ("failed", "other"), "20180704": ("done", None)}, got
        assert "memory" in jobs["20180630"].message and "TIMEOUT" in jobs["20180701"].message
        assert jobs["20180702"].attempts == 1 and _done_events(camp, jobs["20180702"].name) == 1
        for j in jobs.values():
            if str(j.state) == "done":
                verify_l2a(j.output_path)
        assert not cluster_job_ids(camp, store)
        # folding again (a second `status`, a second `run`) changes nothing
        before = (camp / "progress.log").read_text()
        assert reconcile(camp, store).folded == 0
    r = s2l2a("run", camp, "--engine", "slurm", "--processor", "sen2cor", env=env)
    assert r.returncode == 0 and "nothing to submit" in r.stdout, r.stdout + r.stderr
    assert (camp / "progress.log").read_text() == before
    assert "logs/cluster" in (camp / "logs" / f"{jobs['20180630'].id}.log").read_text()

    with CampaignStore.open(builtin) as store:
        assert wait_until(lambda: not reconcile(builtin, store).in_flight, 120, 2.0)
        assert store.counts()["done"] == 6, store.summary()["failures"]
        for j in store.jobs():
            verify_l2a(j.output_path)


def test_resume_after_the_submitter_died_and_status_after_slurm_forgot(slurm, tmp_path):
    """The waiting submitter is killed; a new run does not submit again; once Slurm has forgotten
    the array, status still folds every result file, and an element that left none is lost."""
    camp = make_cluster_campaign(tmp_path, 6, processor="noop", noop={"sleep_s": 1})
    proc = subprocess.Popen([str(S2L2A), "run", str(camp), "--engine", "slurm", "--processor", "noop",
                             "--wait", "--poll-interval", "1"], env=slurm, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: [r for r in load_records(camp) if r.job_id], 30, 0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    (rec,) = load_records(camp)
    with CampaignStore.open(camp) as store:
        assert len(cluster_job_ids(camp, store)) + store.counts()["done"] == 6
    r = s2l2a("run", camp, "--engine", "slurm", "--processor", "noop", env=slurm)
    assert r.returncode == 0 and "nothing to submit" in r.stdout, r.stdout + r.stderr
    assert len(load_records(camp)) == 1
    # wait for Slurm to finish every element, then make it forget (MinJobAge is 300 s)
    assert wait_until(lambda: set(_squeue(slurm, rec.job_id).values()) == {"COMPLETED"}
                      and len(_squeue(slurm, rec.job_id)) == 6, 60)
    lost_job = rec.elements[5][0]
    (camp / "results" / f"{lost_job}.json").unlink()
    data = json.loads((camp / "cluster" / f"{rec.name}.json").read_text())
    data["job_id"] = "99999999"  # an id Slurm never knew = one it forgot
    (camp / "cluster" / f"{rec.name}.json").write_text(json.dumps(data))

    r = s2l2a("status", camp, "--json", env=slurm)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["counts"]["done"] == 5 and doc["counts"]["failed"] == 1
    (failure,) = doc["failures"]
    assert failure["job_id"] == lost_job and failure["failure_class"] == "killed"
    assert "no longer knows" in failure["message"]
    (view,) = doc["cluster"]
    assert view["scheduler_knows"] is False and view["result_files"] == 5
    # what each element used, as its worker measured it (this Slurm keeps no accounting: sacct refuses)
    usage = view["usage"]
    assert [e["source"] for e in usage["elements"]] == ["worker"] * 6, usage
    assert all(e["cpu_s"] > 0 and 30 < e["peak_mb"] < 2048 for e in usage["elements"]), usage
    assert [e["state"] for e in usage["elements"]] == ["done"] * 5 + ["failed"]
    r = s2l2a("status", camp, env=slurm)
    assert "every job folded" in r.stdout and "result files: 5/6" in r.stdout, r.stdout
    assert "over 6/6 element(s) (worker)" in r.stdout, r.stdout
    assert len(re.findall(r"^  element \d \(job \d\): done, CPU [\d.]+ s, peak \d+ MB \(worker\)$", r.stdout,
                          re.M)) == 5, r.stdout
    done_lines = [ln for ln in (camp / "progress.log").read_text().splitlines() if " done " in ln]
    assert len(done_lines) == 5


def test_cancel_marks_jobs_killed(slurm, tmp_path):
    camp = make_cluster_campaign(tmp_path, 3, processor="noop", noop={"sleep_s": 60},
                                 cluster={"max_concurrent": 1})
    r = s2l2a("run", camp, "--engine", "slurm", "--processor", "noop", env=slurm)
    assert r.returncode == 0, r.stderr
    assert "%1" in next((camp / "cluster").glob("*.sh")).read_text()
    (rec,) = load_records(camp)
    r = s2l2a("cluster", "extend", camp, "--run-limit", "2h", env=slurm)
    assert r.returncode == 0 and "run limit now 7200 s" in r.stdout, r.stdout + r.stderr
    limits = subprocess.run(["squeue", "-h", "-r", "-j", rec.job_id, "-o", "%l"], capture_output=True, text=True,
                            env=slurm, timeout=30).stdout.split()
    assert limits and set(limits) == {"2:00:00"}, limits

    def running_element() -> list[dict]:
        """status while the first element runs: its CPU and peak from sstat (no accounting here)."""
        doc = json.loads(s2l2a("status", camp, "--json", env=slurm).stdout)
        return [e for e in doc["cluster"][0]["usage"]["elements"]
                if e["state"] == "running" and e["source"] == "sstat" and (e["peak_mb"] or 0) > 30]
    assert wait_until(lambda: len(running_element()) == 1, 40, 1)
    r = s2l2a("status", camp, env=slurm)
    assert re.search(r"^  element 1 \(job \d\): running, CPU [\d.]+ s, peak \d+ MB \(sstat\)$", r.stdout, re.M), r.stdout
    r = s2l2a("run", camp, "--processor", "noop", env=slurm)  # a local run must not take them over
    assert r.returncode == 1 and "still out on a cluster" in r.stderr, r.stderr
    r = s2l2a("cluster", "cancel", camp, env=slurm)
    assert r.returncode == 0, r.stderr
    assert "3 job(s) recorded as killed" in r.stdout, r.stdout
    with CampaignStore.open(camp) as store:
        assert {j.failure_class for j in store.jobs()} == {"killed"}


def test_whole_node_element_runs_its_products_in_parallel(slurm, tmp_path):
    """--placement whole_node: one exclusive element holding all 4 products, 2 at a time."""
    camp = make_cluster_campaign(tmp_path, 4, processor="noop", noop={"sleep_s": 1}, memory_mb=256)
    r = s2l2a("run", camp, "--engine", "slurm", "--processor", "noop", "--placement", "whole_node",
              "--node-cores", "2", "--node-memory-mb", "1024", "--wait", "--poll-interval", "1", env=slurm)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "placement whole node: 2 products at once per node" in r.stderr
    script = next((camp / "cluster").glob("*.sh")).read_text()
    assert "#SBATCH --array=1-1" in script and "#SBATCH --cpus-per-task=2" in script and "--exclusive" in script
    with CampaignStore.open(camp) as store:
        assert store.counts()["done"] == 4
        hosts = {store.last_attempt(j.id).host for j in store.jobs()}
        assert len(hosts) == 1  # one element
