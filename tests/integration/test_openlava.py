"""The LSF engine against a real single-node OpenLava (scripts/openlava-up.sh), the LSF lineage
without ``bjobs -o``/``-json`` and without TERM_* reasons: campaigns go through ``bsub <`` as the
cluster's submitting user, states come from ``bjobs -w -a``/``bjobs -l`` and the elements' own
output files (engines/lsf_text.py).

Marked ``openlava``; skipped with the reason when OpenLava is not up. The first test is a smoke
test of the infrastructure itself (no s2l2a engine involved).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from s2l2a.campaign.cluster import load_records
from s2l2a.campaign.store import CampaignStore
from s2l2a.engines.lsf_text import parse_bjobs_l

from .conftest import STANDIN, make_cluster_campaign, wait_until
from .openlava import OpenLava

pytestmark = pytest.mark.openlava

SCRIPT = """#!/bin/bash
#BSUB -J "smoke[1-3]%2"
#BSUB -o logs/%J_%I.out
#BSUB -e logs/%J_%I.err
#BSUB -M 200000
#BSUB -W 2
echo "start $(date +%s.%N)"
echo "index=$LSB_JOBINDEX job=$LSB_JOBID user=$(id -un)"
python -c 'import sys, s2l2a.engines.lsf; print("python", sys.executable)'
sleep 3
echo "end $(date +%s.%N)"
"""


def _max_overlap(spans: list[tuple[float, float]]) -> int:
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    now = most = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


@pytest.mark.timeout(180)
def test_array_with_limit_runs_as_the_submitting_user(openlava: OpenLava):
    cwd = openlava.workdir("smoke")
    openlava.run(["mkdir", "logs"], cwd=cwd).check_returncode()
    job = openlava.submit(SCRIPT, cwd)

    states = openlava.wait_finished(job, 3, timeout=120)
    assert states == {"smoke[1]": "DONE", "smoke[2]": "DONE", "smoke[3]": "DONE"}, states

    text = openlava.run(["bjobs", "-w", "-a", job]).stdout
    header, *rows = [line for line in text.splitlines() if line.strip()]
    assert header.split()[:3] == ["JOBID", "USER", "STAT"] and len(rows) == 3
    assert all(r.split()[:3] == [job, openlava.user, "DONE"] for r in rows), text

    spans = []
    for i in (1, 2, 3):
        out = (cwd / "logs" / f"{job}_{i}.out").read_text()
        assert "Successfully completed." in out  # OpenLava's job report heads the file
        assert f"index={i} job={job} user={openlava.user}" in out
        assert f"python {openlava.python}" in out  # the user's venv runs and imports s2l2a
        start = float(out.split("\nstart ")[1].split()[0])
        end = float(out.split("\nend ")[1].split()[0])
        spans.append((start, end))
        assert (cwd / "logs" / f"{job}_{i}.err").read_text() == ""
    assert _max_overlap(spans) <= 2  # the %2 limit held


def _campaign(openlava: OpenLava, prefix: str, n: int, **kw: object) -> Path:
    """A planned campaign under the user's work folder, handed to the user."""
    root = openlava.workdir(prefix)
    camp = make_cluster_campaign(root, n, **kw)  # type: ignore[arg-type]
    openlava.give(root)
    return camp


def _standin(openlava: OpenLava) -> Path:
    """``L2A_Process`` for the user: the project's Sen2Cor stand-in on the user's Python, except
    that an input whose name holds ``$HOG_MATCH`` allocates and touches ``$HOG_MB`` MB first.

    The stand-in and the real texts it replays (``data/sen2cor`` beside it) are copied into the
    user's folder: the clone may sit where the user cannot read (``mktemp -d`` makes it 0700)."""
    work = openlava.workdir("sen2cor")
    standin = work / "standin" / STANDIN.name
    shutil.copytree(STANDIN.parent, standin.parent)
    shutil.copytree(STANDIN.parents[1] / "data" / "sen2cor", work / "data" / "sen2cor")
    exe = work / "L2A_Process"
    hog = "import os, time; b = b'x' * (int(os.environ['HOG_MB']) * 2**20); time.sleep(120)"
    exe.write_text("#!/bin/sh\n"
                   'case "$*" in\n'
                   f'  *"${{HOG_MATCH:-no-hog}}"*) exec \'{openlava.python}\' -c "{hog}" ;;\n'
                   "esac\n"
                   f"exec '{openlava.python}' '{standin}' \"$@\"\n")
    exe.chmod(0o755)
    openlava.give(work)
    return exe


def _status(openlava: OpenLava, camp: Path) -> dict:
    r = openlava.s2l2a("status", camp, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def _stats(openlava: OpenLava, job_id: str) -> dict[int, str]:
    """``bjobs -w -a``: element index -> STAT ({} once forgotten)."""
    return {int(name.rsplit("[", 1)[1].rstrip("]")): stat
            for name, stat in openlava.bjobs_states(job_id).items()}


@pytest.mark.timeout(300)
def test_noop_array_then_status_after_openlava_forgot_and_a_run_limit(openlava: OpenLava):
    """Six noop products as one array with %3; one element's worker is SIGKILLed (no result
    file). Nobody reconciles until OpenLava has forgotten the array (CLEAN_PERIOD): status then
    folds the five result files and records the sixth as lost. Meanwhile a hanging stand-in
    product meets its 1-minute run limit (exit 140 -> timeout)."""
    camp = _campaign(openlava, "noop", 6, processor="noop",
                     noop={"sleep_s": 1, "die_matching": ["20180704"]}, cluster={"max_concurrent": 3})
    r = openlava.s2l2a("run", camp, "--engine", "lsf", "--processor", "noop", "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "rusage[mem=] in MB" in r.stdout and "rusage[mem=300]" in r.stdout and "#BSUB -M 307200" in r.stdout
    r = openlava.s2l2a("run", camp, "--engine", "lsf", "--processor", "noop")
    assert r.returncode == 0 and "submitted lsf array" in r.stdout, r.stdout + r.stderr
    (rec,) = load_records(camp)
    assert len(rec.elements) == 6
    assert "[1-6]%3" in next((camp / "cluster").glob("*.sh")).read_text()
    assert wait_until(lambda: sorted(_stats(openlava, rec.job_id).values()) == ["DONE"] * 5 + ["EXIT"], 150, 1)
    t_finished = time.monotonic()
    # while OpenLava forgets that array: one hanging stand-in product under a 1-minute run limit
    hang = _campaign(openlava, "runlimit", 1, sen2cor=_standin(openlava), cluster={"run_limit": 60})
    r = openlava.s2l2a("run", hang, "--engine", "lsf", "--processor", "sen2cor",
                       extra_env={"STANDIN_FAIL_TILES": "20180629:hang", "STANDIN_QUIET": "1"})
    assert r.returncode == 0 and "submitted lsf array" in r.stdout, r.stdout + r.stderr
    assert "#BSUB -W 0:01" in next((hang / "cluster").glob("*.sh")).read_text()

    assert wait_until(lambda: not _stats(openlava, rec.job_id), openlava.clean_period_s + 60, 2)
    forgotten_after = time.monotonic() - t_finished
    r = openlava.run(["bjobs", "-w", "-a", rec.job_id])
    assert r.returncode == 255 and "is not found" in r.stdout + r.stderr

    doc = _status(openlava, camp)
    assert doc["counts"]["done"] == 5 and doc["counts"]["failed"] == 1, (doc, forgotten_after)
    (failure,) = doc["failures"]
    assert failure["failure_class"] == "killed" and "no longer knows" in failure["message"], failure
    (view,) = doc["cluster"]
    assert view["scheduler_knows"] is False and view["result_files"] == 5
    # what each element used: five workers measured themselves; the SIGKILLed one left only
    # OpenLava's job report at the head of its output file (CPU time, Max Memory: sampled every
    # few seconds, so a 1-second worker shows as its batch shell's 5 MB, and one killed before
    # the first sample gets no Max Memory line at all: "CPU time : 0.28 sec." and "Max Swap : 4 KB"
    # only, seen in a CI run; its peak is then unknown, not 0)
    used = {e["index"]: e for e in view["usage"]["elements"]}
    killed = rec.element_of(failure["job_id"])
    assert all(e["source"] == "worker" and e["cpu_s"] > 0 and 30 < e["peak_mb"] < 2048
               for i, e in used.items() if i != killed), used
    peak = used[killed]["peak_mb"]
    assert used[killed]["source"] == "output file" and (peak is None or peak > 0), used[killed]
    assert used[killed]["cpu_s"] is not None and used[killed]["state"] == "failed"
    text = openlava.s2l2a("status", camp).stdout
    assert "over 6/6 element(s) (output file, worker)" in text, text
    assert len(re.findall(r"^  element \d \(job \d\): done, CPU [\d.]+ s, peak \d+ MB \(worker\)$", text, re.M)) == 5

    (hang_rec,) = load_records(hang)
    assert wait_until(lambda: set(_stats(openlava, hang_rec.job_id).values()) == {"EXIT"}, 60, 1)
    doc = _status(openlava, hang)  # OpenLava still knows this one: exit 140 (SIGUSR2) is the run limit
    (failure,) = doc["failures"]
    assert failure["failure_class"] == "timeout" and "exit code 140" in failure["message"], failure


@pytest.mark.timeout(300)
def test_memory_kill_and_cancel_in_one_array(openlava: OpenLava):
    """Three stand-in Sen2Cor products: one allocates past its -M limit (OpenLava's SIGINT,
    ``Max Memory`` over MEMLIMIT in its output file -> out_of_memory), one hangs, gets more time
    through ``cluster extend`` (bmod -W of its running element), then ``cluster cancel`` (bkill of
    the array: 'Operation is in progress', exit 255 -> killed); one completes."""
    camp = _campaign(openlava, "oom", 3, sen2cor=_standin(openlava), memory_mb=300)
    env = {"HOG_MATCH": "20180629", "HOG_MB": "1200", "STANDIN_FAIL_TILES": "20180630:hang",
           "STANDIN_QUIET": "1"}
    r = openlava.s2l2a("run", camp, "--engine", "lsf", "--processor", "sen2cor", extra_env=env)
    assert r.returncode == 0 and "submitted lsf array" in r.stdout, r.stdout + r.stderr
    (rec,) = load_records(camp)
    by_day = {}
    with CampaignStore.open(camp) as store:
        for j in store.jobs():
            by_day[j.name.split("_")[2][:8]] = rec.element_of(j.id)
    openlava.give(camp)  # what SQLite created for root (-wal, -shm) goes back to the user
    hog, hang, plain = by_day["20180629"], by_day["20180630"], by_day["20180701"]

    def settled() -> bool:
        st = _stats(openlava, rec.job_id)
        return st.get(hog) == "EXIT" and st.get(plain) == "DONE" and st.get(hang) == "RUN"
    assert wait_until(settled, 150, 1), _stats(openlava, rec.job_id)

    def in_use() -> dict:
        """status while the hanging element runs: OpenLava's bjobs -l has its memory in use (no peak)."""
        return {e["index"]: e for e in _status(openlava, camp)["cluster"][0]["usage"]["elements"]}
    assert wait_until(lambda: (in_use()[hang].get("mem_mb") or 0) > 0, 40, 2), in_use()
    now = in_use()
    assert now[hang]["state"] == "running" and now[hang]["source"] == "bjobs -l", now
    assert now[plain]["source"] == "worker" and now[plain]["cpu_s"] > 0 and now[plain]["peak_mb"] > 30, now
    # killed past its -M: no worker record; bjobs -l has its CPU time, its output file the peak
    assert now[hog]["source"] == "bjobs -l, output file" and now[hog]["peak_mb"] >= 300, now
    assert now[hog]["cpu_s"] is not None and now[hog]["state"] == "failed"
    text = openlava.s2l2a("status", camp).stdout
    assert re.search(rf"^  element {hang} \(job \d\): running, CPU -, peak -, in use now \d+ MB \(bjobs -l\)$",
                     text, re.M), text

    # more time: the array's pending elements (none here) and each running one through its own bmod
    r = openlava.s2l2a("cluster", "extend", camp, "--run-limit", "2h")
    assert r.returncode == 0 and "run limit now 7200 s" in r.stdout, r.stdout + r.stderr
    (long,) = parse_bjobs_l(openlava.run(["bjobs", "-l", f"{rec.job_id}[{hang}]"]).stdout)
    assert long.runlimit_min == 120, long

    r = openlava.s2l2a("cluster", "cancel", camp, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = _status(openlava, camp)
    got = {day: (j["state"], j.get("failure_class")) for day, j in _jobs(camp).items()}
    assert got == {"20180629": ("failed", "out_of_memory"), "20180630": ("failed", "killed"),
                   "20180701": ("done", None)}, (got, doc["failures"])
    msgs = {f["failure_class"]: f["message"] for f in doc["failures"]}
    assert "Max Memory" in msgs["out_of_memory"] and "MEMLIMIT 307200 KB" in msgs["out_of_memory"], msgs


def _jobs(camp: Path) -> dict[str, dict]:
    with CampaignStore.open(camp) as store:
        return {j.name.split("_")[2][:8]: {"state": str(j.state), "failure_class": j.failure_class}
                for j in store.jobs()}


@pytest.mark.timeout(180)
def test_whole_node_array_waited_on_and_selftest(openlava: OpenLava):
    """``--placement whole_node`` (``-x`` on a queue with EXCLUSIVE = Y) followed with ``--wait``
    (the text forms of bjobs polled until the end); ``selftest --engine lsf`` passes every check."""
    camp = _campaign(openlava, "whole", 4, processor="noop", noop={"sleep_s": 1}, memory_mb=256,
                     cluster={"memory_mb": 256})
    r = openlava.s2l2a("run", camp, "--engine", "lsf", "--processor", "noop", "--placement", "whole_node",
                       "--node-cores", "2", "--node-memory-mb", "1024", "--wait", "--poll-interval", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    script = next((camp / "cluster").glob("*.sh")).read_text()
    assert "[1-1]" in script and "#BSUB -x" in script and "#BSUB -n 2" in script, script
    assert _status(openlava, camp)["counts"]["done"] == 4

    st = openlava.workdir("selftest")
    r = openlava.s2l2a("selftest", "--engine", "lsf", "--dir", st / "st", "--timeout", "90", timeout=150)
    assert r.returncode == 0, r.stdout + r.stderr
    for check in ("array indices", "exit code of a good element", "memory limit enforced and recognised",
                  "output file names", "cancel of a pending element"):
        assert f"[PASS] {check}" in r.stdout, r.stdout
    assert "Max Memory" in r.stdout and "rusage[mem=256]" in r.stdout and "#BSUB -M 262144" in r.stdout
