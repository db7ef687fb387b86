"""The LSF code path (``engines/lsf.py``) end to end through the real local Slurm, behind the
test-only LSF-shaped shim in ``tests/lsf_shim`` (LSF-shaped, NOT LSF: see its README).

Marked ``slurm``; skipped with the reason when no Slurm answers.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from s2l2a.campaign.store import CampaignStore
from s2l2a.safe import verify_l2a

from .conftest import make_cluster_campaign, s2l2a, wait_until

pytestmark = pytest.mark.slurm

SHIM_DIR = Path(__file__).resolve().parents[1] / "lsf_shim"
FIELDS = "jobid jobindex stat exit_code exit_reason"


@pytest.fixture
def shim_env(slurm: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The Slurm environment with the shim's bsub/bjobs/bkill/bmod first on PATH and no lsf.conf
    (so LSF's default unit, KB, applies)."""
    monkeypatch.setenv("PATH", f"{SHIM_DIR}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("LSF_ENVDIR", raising=False)
    env = dict(slurm, PATH=os.environ["PATH"])
    env.pop("LSF_ENVDIR", None)
    return env


def _run(argv: list[str], env: dict[str, str], cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, cwd=cwd, timeout=60)


def _job_id(stdout: str) -> str:
    assert "is submitted to queue <normal>" in stdout, stdout
    return stdout.split("<")[1].split(">")[0]


def _records(env: dict[str, str], cwd: Path, job: str) -> list[dict]:
    r = _run(["bjobs", "-a", "-o", FIELDS, "-json", job], env, cwd)
    return json.loads(r.stdout)["RECORDS"]


@pytest.mark.timeout(180)
def test_campaign_through_lsf_shim_on_slurm(shim_env, hungry_standin, tmp_path):
    """Four Sen2Cor stand-in products as one LSF-shaped array on the real Slurm: one allocates past
    its memory limit (Slurm kills it -> TERM_MEMLIMIT -> out_of_memory), three are done."""
    env = dict(shim_env, HOG_MATCH="20180630", HOG_MB="900", STANDIN_QUIET="1")
    camp = make_cluster_campaign(tmp_path / "c", 4, sen2cor=hungry_standin, memory_mb=300)
    r = s2l2a("run", camp, "--engine", "lsf", "--wait", "--poll-interval", "0.5", env=env, timeout=150)
    assert r.returncode == 3, r.stdout + r.stderr  # finished, with failures
    assert "submitted lsf array" in r.stdout
    script = next((camp / "cluster").glob("*.sh")).read_text()
    # no lsf.conf: -M in KB (LSF's default unit for limits), rusage[mem=] in MB (the mem index's)
    assert "#BSUB -M 307200" in script and "rusage[mem=300]" in script, script
    with CampaignStore.open(camp) as store:
        got = {j.name.split("_")[2][:8]: (str(j.state), j.failure_class) for j in store.jobs()}
        assert got == {"20180629": ("done", None), "20180630": ("failed", "out_of_memory"),
                       "20180701": ("done", None), "20180702": ("done", None)}, got
        (oom,) = store.jobs(states="failed")
        assert "TERM_MEMLIMIT" in oom.message or "memory limit" in oom.message, oom.message
        for j in store.jobs(states="done"):
            verify_l2a(j.output_path)
    # %J/%I in -o became %A/%a: one output file per element, named by the LSF-shaped job id
    outs = sorted(p.name for p in (camp / "logs" / "cluster").glob("*.out"))
    assert len(outs) == 4 and {p.rsplit("_", 1)[1] for p in outs} == {f"{i}.out" for i in range(1, 5)}, outs


@pytest.mark.timeout(120)
def test_shim_honours_lsf_rules_that_bite(shim_env, tmp_path):
    """``bsub file`` ignores #BSUB lines, ``bsub < file`` reads them; -json needs -o; bmod -W, bkill;
    an unknown job is "not found"."""
    script = tmp_path / "job.sh"
    script.write_text('#!/bin/bash\n#BSUB -J "named[1-3]"\n#BSUB -M 1\n#BSUB -o out_%J_%I.txt\n'
                      'echo "$LSB_JOBID $LSB_JOBINDEX" > "seen_${LSB_JOBID}_${LSB_JOBINDEX}"\n')
    # `bsub file`: the #BSUB lines are comments: no array, no 1 KB limit, no output file
    job = _job_id(_run(["bsub", "bash", str(script)], shim_env, tmp_path).stdout)
    assert wait_until(lambda: [(x["JOBINDEX"], x["STAT"]) for x in _records(shim_env, tmp_path, job)]
                      == [("0", "DONE")], 30), _records(shim_env, tmp_path, job)
    assert (tmp_path / f"seen_{job}_0").read_text().strip() == f"{job} 0"
    assert not list(tmp_path.glob("out_*"))
    # `bsub < file`: they are read (the 1 KB -M is replaced on the command line, which wins)
    r = _run(["bsub", "-M", "100MB"], shim_env, tmp_path, stdin=script.read_text())
    job = _job_id(r.stdout)
    assert wait_until(lambda: [x["STAT"] for x in _records(shim_env, tmp_path, job)] == ["DONE"] * 3, 30), \
        _records(shim_env, tmp_path, job)
    assert (tmp_path / f"seen_{job}_2").read_text().strip() == f"{job} 2"
    assert (tmp_path / f"out_{job}_3.txt").exists()
    # -json without -o is an error, not JSON
    r = _run(["bjobs", "-json", job], shim_env, tmp_path)
    assert r.returncode != 0 and not r.stdout.strip()
    # bmod -W becomes the Slurm time limit; bkill "JOB[i]" / bkill JOB end elements with TERM_OWNER
    job = _job_id(_run(["bsub", "-J", "slow[1-2]%1", "-W", "0:05"], shim_env, tmp_path, stdin="sleep 60\n").stdout)
    assert wait_until(lambda: [x["STAT"] for x in _records(shim_env, tmp_path, job)][:1] == ["RUN"], 30)
    assert _run(["bmod", "-W", "1:07", job], shim_env, tmp_path).returncode == 0
    r = _run(["scontrol", "show", "job", f"{job}_2"], shim_env, tmp_path)
    assert "TimeLimit=01:07:00" in r.stdout, r.stdout + r.stderr
    assert _run(["bkill", f"{job}[1]"], shim_env, tmp_path).returncode == 0
    assert wait_until(lambda: _records(shim_env, tmp_path, job)[0]["STAT"] == "EXIT", 30)
    assert _records(shim_env, tmp_path, job)[0]["EXIT_REASON"] == "TERM_OWNER: job killed by owner"
    assert _run(["bkill", job], shim_env, tmp_path).returncode == 0
    assert wait_until(lambda: {x["STAT"] for x in _records(shim_env, tmp_path, job)} == {"EXIT"}, 30)
    r = _run(["bjobs", "-o", "jobid stat", "-json", "999999999"], shim_env, tmp_path)
    assert r.returncode == 255 and json.loads(r.stdout)["RECORDS"] == [{"ERROR": "Job <999999999> is not found"}]
