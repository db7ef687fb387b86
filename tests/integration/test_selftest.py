"""``s2l2a selftest`` against the real single-node Slurm and the LSF stand-in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import s2l2a

STANDIN_DIR = Path(__file__).resolve().parents[1] / "lsf_standin"


@pytest.mark.slurm
def test_selftest_on_slurm(slurm, tmp_path):
    r = s2l2a("selftest", "--engine", "slurm", "--dir", tmp_path / "st", "--timeout", "90", env=slurm)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    for check in ("array indices", "exit code of a good element", "memory limit enforced and recognised",
                  "memory request", "output file names", "cancel of a pending element"):
        assert f"[PASS] {check}" in out, out
    assert "classified out_of_memory" in out and "#SBATCH --array=1-3%1" in out
    assert (tmp_path / "st" / "report.txt").read_text().strip() == out.strip()


def test_selftest_reports_the_lsf_unit(tmp_path):
    """Through the LSF stand-in with lsf.conf saying MB: the unit is detected and the limit works."""
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "lsf.conf").write_text("LSF_UNIT_FOR_LIMITS=MB\n")
    env = dict(os.environ, PATH=f"{STANDIN_DIR}{os.pathsep}{os.environ['PATH']}", LSF_ENVDIR=str(conf),
               LSF_STANDIN_DIR=str(tmp_path / "lsf"), LSF_STANDIN_SECONDS_PER_MINUTE="60")
    r = s2l2a("selftest", "--engine", "lsf", "--dir", tmp_path / "st", "--timeout", "60", env=env)
    assert "LSF memory unit: MB (LSF_UNIT_FOR_LIMITS=MB in" in r.stdout and "#BSUB -M 256" in r.stdout
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[PASS] memory limit enforced and recognised" in r.stdout
