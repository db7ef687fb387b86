"""``s2l2a run`` and ``report`` meeting ordinary mistakes and a filling disk (issue 10 items 3, 4, 5).

The disk tests mount a real, small tmpfs in a private mount namespace (``unshare -m``): the mount
exists only for the commands run inside it and disappears with them, nothing on the host changes.
They are skipped where that is not allowed (not root, no CAP_SYS_ADMIN).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from s2l2a.campaign.progress import SUMMARY_STATE, ProgressLog
from s2l2a.campaign.store import CampaignStore

from .conftest import S2L2A, make_campaign, s2l2a


def counts(camp: Path) -> dict[str, int]:
    with CampaignStore.open(camp) as store:
        return store.counts()


def in_tmpfs(mount: Path, size: str, script: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (sh) with a ``size`` tmpfs mounted on ``mount``, in a private mount namespace."""
    mount.mkdir(parents=True, exist_ok=True)
    inner = f"mount -t tmpfs -o size={size} s2l2a-test {shlex.quote(str(mount))} || exit 97\n{script}"
    return subprocess.run(["unshare", "-m", "sh", "-c", inner], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def tmpfs_ok(tmp_path_factory: pytest.TempPathFactory) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("no unshare")
    probe = in_tmpfs(tmp_path_factory.mktemp("probe"), "1m", "true")
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a private namespace here: {probe.stderr.strip()}")


def test_run_with_nothing_planned_says_plan_and_fails(tmp_path: Path) -> None:
    camp = make_campaign(tmp_path, 0, plan=False)
    r = s2l2a("run", camp)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == f"Error: nothing planned yet; add L1C products with 's2l2a plan {camp} FOLDER'\n"


def test_report_into_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    camp = make_campaign(tmp_path, 1)
    r = s2l2a("report", camp, "-o", "/nonexistent/dir/r.html")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stderr == ("Error: -o: the folder /nonexistent/dir does not exist; create it first or choose "
                        "another path\n")


def test_progress_lines_off_a_terminal(tmp_path: Path) -> None:
    n = 4
    camp = make_campaign(tmp_path, n, extra_toml="\n[noop]\nsleep_s = 1.0\n")
    env = dict(os.environ, S2L2A_PROGRESS_INTERVAL_S="0.5")
    t0 = time.monotonic()
    # stderr is a pipe here, as under nohup, a batch job or '| tee'
    r = s2l2a("run", camp, "--processor", "noop", "--workers", "1", env=env)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    ticks = [ln for ln in r.stderr.splitlines() if "  progress: " in ln]
    assert len(ticks) >= 3, r.stderr                       # >= 4 s of jobs at one line per 0.5 s
    assert len(ticks) <= took / 0.5 + 1
    first, last = ticks[0].split("  progress: ")[1], ticks[-1].split("  progress: ")[1]
    assert first.startswith("0 done, 0 failed, ") and f"queued of {n} after" in first
    assert "jobs/h; ETA " in last and "done, 0 failed, " in last
    logged = [e for e in ProgressLog(camp / "progress.log").read() if e.state == SUMMARY_STATE]
    assert len(logged) == len(ticks) and logged[0].product == "-" and "jobs/h" in logged[-1].detail
    assert counts(camp)["done"] == n


def test_disk_floor_stops_starting_jobs_and_keeps_the_rest_queued(tmp_path: Path, tmpfs_ok: None) -> None:
    n = 12
    out = tmp_path / "out"                              # the output root: a 4 MB file system
    camp = make_campaign(tmp_path, n, extra_toml='\n[noop]\nsleep_s = 0.2\n')
    text = (camp / "s2l2a.toml").read_text()
    text = text.replace('output_dir = "L2A"', f'output_dir = "{out}"').replace("[resources]\n",
                                                                              "[resources]\nmin_free_mb = 3\n")
    (camp / "s2l2a.toml").write_text(text)
    run = shlex.join([str(S2L2A), "run", str(camp), "--processor", "noop", "--workers", "1",
                      "--skip-check", "disk"])
    r = in_tmpfs(out, "4m", f"{run}; echo rc=$?; find {shlex.quote(str(out))} -maxdepth 2 -name '*.SAFE' | wc -l")
    assert r.returncode == 0, r.stderr
    rc, published = r.stdout.split()[-2:]
    assert rc == "rc=4", r.stdout + r.stderr
    err = r.stderr.splitlines()
    stops = [ln for ln in err if ln.startswith("stopped starting jobs: ")]
    assert len(stops) == 1 and f"on the output file system ({out})" in stops[0] and "below the 3 MB floor" in stops[0]
    assert err[-1].startswith("run stopped starting jobs after ") and f"'s2l2a run {camp}' continues" in err[-1]
    c = counts(camp)
    assert c["failed"] == 0 and c["running"] == 0 and 1 <= c["done"] < n and c["done"] + c["queued"] == n
    assert int(published) == c["done"]               # every job that ran is published, nothing lost
    assert "Traceback" not in r.stderr


def test_full_disk_under_the_campaign_is_one_line(tmp_path: Path, tmpfs_ok: None) -> None:
    src = make_campaign(tmp_path / "src", 2)
    mnt = tmp_path / "full"
    camp = mnt / "camp"
    q = shlex.quote
    script = (f"cp -a {q(str(src))} {q(str(camp))} || exit 98\n"
              f"dd if=/dev/zero of={q(str(mnt / 'filler'))} bs=64k 2>/dev/null\n"   # until the disk is full
              f"{shlex.join([str(S2L2A), 'run', str(camp), '--processor', 'noop', '--skip-check', 'disk'])}\n"
              "echo rc=$?\n")
    r = in_tmpfs(mnt, "3m", script)
    assert r.returncode == 0 and r.stdout.split()[-1] == "rc=1", r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert "Traceback" not in r.stderr and lines, r.stderr
    assert lines[-1].startswith("Error: ") and ("disk full" in lines[-1] or "No space left" in lines[-1]
                                                 or "database or disk is full" in lines[-1]), lines[-1]
