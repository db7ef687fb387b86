"""The LSF code path (``engines/lsf.py``) end to end against the test-only LSF stand-in in
``tests/lsf_standin`` (NOT LSF: it reproduces the documented behaviour listed in its README)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from s2l2a.campaign.store import CampaignStore
from s2l2a.safe import verify_l2a

from .conftest import make_cluster_campaign, s2l2a, wait_until

STANDIN_DIR = Path(__file__).resolve().parents[1] / "lsf_standin"


@pytest.fixture
def lsf_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """PATH with the stand-in's bsub/bjobs/bkill/bmod first; 1 LSF minute = 8 s."""
    env = {"PATH": f"{STANDIN_DIR}{os.pathsep}{os.environ['PATH']}", "LSF_STANDIN_DIR": str(tmp_path / "lsf"),
           "LSF_STANDIN_SECONDS_PER_MINUTE": "8", "LSF_STANDIN_PYTHON": os.environ.get("PYTHON", "python3")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("LSF_ENVDIR", raising=False)
    return dict(os.environ)


def _run(argv: list[str], env: dict[str, str], cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, cwd=cwd, timeout=30)


def _records(env: dict[str, str], cwd: Path, job: str) -> list[dict]:
    r = _run(["bjobs", "-a", "-o", "jobid jobindex stat exit_code exit_reason", "-json", job], env, cwd)
    return json.loads(r.stdout)["RECORDS"]


def test_campaign_through_lsf_standin(lsf_env, hungry_standin, tmp_path):
    """Six products as one LSF array: one killed at its -M limit (TERM_MEMLIMIT -> out_of_memory),
    one at its -W limit (TERM_RUNLIMIT -> timeout), four done; the site's unit (MB) is detected."""
    conf = tmp_path / "lsfconf"
    conf.mkdir()
    (conf / "lsf.conf").write_text('LSF_MASTER_LIST="m1"\nLSF_UNIT_FOR_LIMITS=MB\n')
    env = dict(lsf_env, LSF_ENVDIR=str(conf), HOG_MATCH="20180630", HOG_MB="1200",
               STANDIN_FAIL_TILES="20180701:hang", STANDIN_QUIET="1")
    camp = make_cluster_campaign(tmp_path / "c", 6, sen2cor=hungry_standin, memory_mb=500,
                                 cluster={"run_limit": 60, "queue": "short"})
    r = s2l2a("run", camp, "--engine", "lsf", "--dry-run", env=env)
    assert r.returncode == 0, r.stderr
    assert "LSF memory unit MB (LSF_UNIT_FOR_LIMITS=MB in" in r.stdout and "#BSUB -M 500" in r.stdout
    assert not (camp / "cluster").exists()  # a dry run submits and writes nothing
    r = s2l2a("run", camp, "--engine", "lsf", "--wait", "--poll-interval", "0.5", env=env, timeout=120)
    assert r.returncode == 3, r.stdout + r.stderr  # finished, with failures
    assert "submitted lsf array" in r.stdout
    script = next((camp / "cluster").glob("*.sh")).read_text()
    assert "#BSUB -W 0:01" in script and "#BSUB -q short" in script
    with CampaignStore.open(camp) as store:
        got = {j.name.split("_")[2][:8]: (str(j.state), j.failure_class) for j in store.jobs()}
        assert got == {"20180629": ("done", None), "20180630": ("failed", "out_of_memory"),
                       "20180701": ("failed", "timeout"), "20180702": ("done", None),
                       "20180703": ("done", None), "20180704": ("done", None)}, got
        msgs = {j.failure_class: j.message for j in store.jobs(states="failed")}
        # from bjobs' EXIT_REASON (TERM_MEMLIMIT / TERM_RUNLIMIT) or, when the element's output file
        # is read first, LSF's own words in it: either way the message names the limit
        assert "TERM_MEMLIMIT" in msgs["out_of_memory"] or "memory limit" in msgs["out_of_memory"]
        assert "TERM_RUNLIMIT" in msgs["timeout"] or "run limit" in msgs["timeout"]
        for j in store.jobs(states="done"):
            verify_l2a(j.output_path)
    # %J/%I in -o gave one output file per element
    outs = sorted(p.name for p in (camp / "logs" / "cluster").glob("*.out"))
    assert len(outs) == 6 and all(p.rsplit("_", 1)[1] in {f"{i}.out" for i in range(1, 7)} for p in outs)


def test_standin_honours_lsf_rules_that_bite(lsf_env, tmp_path):
    script = tmp_path / "job.sh"
    script.write_text('#!/bin/bash\n#BSUB -J "named[1-3]"\n#BSUB -o out_%J_%I.txt\n'
                      'echo "$LSB_JOBID $LSB_JOBINDEX"\n')
    # `bsub file`: the #BSUB lines are comments, no array is made
    r = _run(["bsub", "bash", str(script)], lsf_env, tmp_path)
    assert r.returncode == 0 and "is submitted to queue <normal>" in r.stdout
    job = r.stdout.split("<")[1].split(">")[0]
    assert [rec["JOBINDEX"] for rec in _records(lsf_env, tmp_path, job)] == ["0"]
    # `bsub < file`: they are read
    r = _run(["bsub"], lsf_env, tmp_path, stdin=script.read_text())
    job = r.stdout.split("<")[1].split(">")[0]
    assert wait_until(lambda: {x["STAT"] for x in _records(lsf_env, tmp_path, job)} == {"DONE"}, 20)
    assert (tmp_path / f"out_{job}_2.txt").read_text().strip() == f"{job} 2"
    # -json without -o is not JSON
    r = _run(["bjobs", "-json", job], lsf_env, tmp_path)
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.stdout)
    # arrays beyond MAX_JOB_ARRAY_SIZE are refused
    r = _run(["bsub", "-J", "big[1-1001]"], lsf_env, tmp_path, stdin="sleep 1\n")
    assert r.returncode != 0 and "Job not submitted" in r.stderr
    # -M is in KB when LSF_UNIT_FOR_LIMITS is unset: 100000 KB = ~98 MB is too little for 300 MB
    hog = "python3 -c \"import time; b = b'x' * (300 * 2**20); time.sleep(5)\"\n"
    r = _run(["bsub", "-J", "hog[1-2]", "-M", "100000"], lsf_env, tmp_path, stdin=hog)
    job = r.stdout.split("<")[1].split(">")[0]
    assert wait_until(lambda: {x["STAT"] for x in _records(lsf_env, tmp_path, job)} == {"EXIT"}, 20)
    assert {x["EXIT_REASON"] for x in _records(lsf_env, tmp_path, job)} == {
        "TERM_MEMLIMIT: job killed after reaching LSF memory usage limit"}
    # bkill of one pending element, bmod -W on the rest; an unknown job is "not found"
    r = _run(["bsub", "-J", "slow[1-3]%1"], lsf_env, tmp_path, stdin="sleep 2\n")
    job = r.stdout.split("<")[1].split(">")[0]
    assert _run(["bkill", f"{job}[3]"], lsf_env, tmp_path).returncode == 0
    assert _run(["bmod", "-W", "10", job], lsf_env, tmp_path).returncode == 0
    assert wait_until(lambda: [x["STAT"] for x in _records(lsf_env, tmp_path, job)] == ["DONE", "DONE", "EXIT"], 20)
    assert "TERM_OWNER" in _records(lsf_env, tmp_path, job)[2]["EXIT_REASON"]
    r = _run(["bjobs", "-o", "jobid stat", "-json", "999999"], lsf_env, tmp_path)
    assert json.loads(r.stdout)["RECORDS"] == [{"ERROR": "Job <999999> is not found"}]
