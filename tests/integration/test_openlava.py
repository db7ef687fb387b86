"""The real single-node OpenLava (scripts/openlava-up.sh) answers as the LSF tests need it to.

A smoke test of the test infrastructure, not of s2l2a's LSF engine: an array with a ``%K`` limit
goes through ``bsub <`` as the submitting user, its elements run that user's venv Python with
s2l2a importable, and ``bjobs -w -a`` reports them. Marked ``openlava``; skipped with the reason
when OpenLava is not up.
"""

from __future__ import annotations

import pytest

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
