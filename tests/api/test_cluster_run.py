"""The cluster path of a run (campaign/run.py) end to end, through the test plug-in's toy scheduler
and stand-in ``toysub``/``toystat``/``toydel`` commands that run each submitted script for real
(``bash script`` with ``$TOY_INDEX``, so every element is an ``s2l2a worker`` writing its result
file): recovery before submitting, a node failure queued again and resubmitted under ``--wait``
([resources] max_attempts), and the free-space floor that stops a submission."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import s2l2a
from s2l2a.campaign.cluster import load_records
from s2l2a.campaign.layout import CampaignLayout
from sample_clones import clone_sample

pytest.importorskip("s2l2a_testplugins.toy")

TOYSUB = r'''
import json, os, pathlib, sys
state = pathlib.Path(os.environ["TOY_STATE"]); state.mkdir(exist_ok=True)
jobs = sorted(state.glob("*.job"))
job = str(100 + len(jobs))
(state / f"{job}.job").write_text(json.dumps({"script": str(pathlib.Path(sys.argv[1]).resolve()), "cwd": os.getcwd()}))
print(f"toy job {job} queued")
'''

# runs every element of the array the first time it is asked about it; the job named in
# $TOY_NODE_FAIL_JOB is taken away with its node on its first attempt (PREEMPTED, no result file)
TOYSTAT = r'''
import json, os, pathlib, re, subprocess, sys
state = pathlib.Path(os.environ["TOY_STATE"]); job = sys.argv[1]
rec = json.loads((state / f"{job}.job").read_text())
done = state / f"{job}.status"
if not done.exists():
    script = pathlib.Path(rec["script"])
    n = int(re.search(r"--elements=(\d+)", script.read_text())[1])
    manifest = json.loads((script.parent.parent / "manifests" / f"{script.stem}.json").read_text())
    lines = []
    for i in range(1, n + 1):
        spec = manifest["elements"][i - 1][0]
        if str(spec["job_id"]) == os.environ.get("TOY_NODE_FAIL_JOB") and spec["attempt"] == 1:
            lines.append(f"{job}.{i} PREEMPTED")
            continue
        rc = subprocess.run(["bash", str(script)], cwd=rec["cwd"], env=dict(os.environ, TOY_INDEX=str(i)),
                            capture_output=True).returncode
        lines.append(f"{job}.{i} DONE exit 0" if rc == 0 else f"{job}.{i} FAILED exit {rc}")
    done.write_text("\n".join(lines) + "\n")
print(done.read_text(), end="")
'''


@pytest.fixture
def toy_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """toysub/toystat/toydel on PATH, their state in a folder of their own."""
    bin_dir = tmp_path / "toybin"
    bin_dir.mkdir()
    for name, body in (("toysub", TOYSUB), ("toystat", TOYSTAT), ("toydel", "print('ok')\n")):
        exe = bin_dir / name
        exe.write_text(f"#!{sys.executable}\n{body}")
        exe.chmod(0o755)
    state = tmp_path / "toystate"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("TOY_STATE", str(state))
    return state


def campaign(tmp_path: Path, n: int) -> s2l2a.Campaign:
    for day in range(n):
        clone_sample(tmp_path / "L1C", day=day)
    c = s2l2a.Campaign.create(tmp_path / "camp", processor="builtin", memory_mb=256)
    c.config("cluster.estimate_s", 10)
    c.config("cluster.run_limit", "10m")
    c.plan([tmp_path / "L1C"])
    return c


def test_cluster_run_recovers_then_resubmits_a_node_failure(tmp_path: Path, toy_commands: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    c = campaign(tmp_path, 3)
    first = c.run(processor="noop", limit=1, progress="quiet")          # one product converted here
    (done,) = c.jobs("done")
    import shutil

    shutil.rmtree(done.output_path)                                     # ... and its output lost since
    layout = CampaignLayout.of(c.path)
    leftover = layout.output / "56JMM" / ".partial-9-S2A_MSIL2A_x.SAFE"
    leftover.mkdir(parents=True)                                        # what a killed publish leaves
    assert first.done == 1
    monkeypatch.setenv("TOY_NODE_FAIL_JOB", "2")

    notes: list[str] = []
    summary = c.run(engine="toy", processor="noop", wait=True, poll_interval_s=0.2,
                    progress=lambda e: notes.append(e.message) if e.kind in ("note", "info") else None)
    assert summary.exit_code == 0, notes
    assert any(n.startswith("1 done output(s) gone or incomplete, requeued") for n in notes)
    assert not leftover.exists()                                        # recovered before submitting
    assert summary.total == 4 and summary.retried == 1 and len(summary.arrays) == 2
    assert (summary.done, summary.failed) == (3, 0)                   # of the jobs this run submitted
    assert [a["jobs"] for a in summary.arrays] == [3, 1]               # the lost job went again, alone
    assert summary.counts == {"queued": 0, "running": 0, "done": 3, "failed": 0, "skipped": 0}
    attempts = [(a.n, a.state, a.failure_class) for a in _attempts(c, 2)]
    assert attempts == [(1, "failed", "killed"), (2, "done", None)]
    assert "1 job(s) queued again after a node failure; submitting them" in notes
    assert all(r.closed for r in load_records(c.path))
    for j in c.jobs("done"):
        assert Path(j.output_path).is_dir()
    st = c.status()
    assert [a["open"] for a in st["cluster"]] == [False, False] and st["counts"]["done"] == 3


def test_cluster_run_submits_nothing_below_the_disk_floor(tmp_path: Path, toy_commands: Path) -> None:
    c = campaign(tmp_path, 1)
    c.config("resources.min_free_mb", 10**9)                            # more than any disk here
    notes: list[str] = []
    summary = c.run(engine="toy", processor="noop", skip_checks=["disk"],
                    progress=lambda e: notes.append(e.message) if e.kind == "note" else None)
    assert summary.exit_code == 4 and summary.low_disk and "output file system" in summary.low_disk
    assert summary.arrays == [] and not toy_commands.exists()          # toysub never ran
    assert any(n.startswith("nothing submitted: ") for n in notes)
    assert c.status()["counts"]["queued"] == 1 and load_records(c.path) == []


def _attempts(c: s2l2a.Campaign, job_id: int) -> list:
    from s2l2a.campaign.store import CampaignStore

    with CampaignStore.open(c.path) as store:
        return store.attempts(job_id)


def test_without_wait_the_next_run_folds_and_resubmits(tmp_path: Path, toy_commands: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    c = campaign(tmp_path, 2)
    monkeypatch.setenv("TOY_NODE_FAIL_JOB", "1")
    submitted = c.run(engine="toy", processor="noop", progress="quiet")
    assert submitted.exit_code == 0 and submitted.on_cluster == 2 and submitted.counts["running"] == 2
    notes: list[str] = []
    again = c.run(engine="toy", processor="noop", progress=lambda e: notes.append(e.message))
    assert any(n.startswith("reconciled: 1 result file(s) recorded") for n in notes), notes
    assert "  job 1: its node failed; queued again (at most 3 attempts)" in notes
    assert again.total == 1 and [a["jobs"] for a in again.arrays] == [1]
    last = c.run(engine="toy", processor="noop", progress="quiet")
    assert last.nothing_to_run and last.counts["done"] == 2 and last.exit_code == 0


def test_a_product_asks_the_node_for_its_own_memory(tmp_path: Path, toy_commands: Path) -> None:
    """What a product asks a node for is --memory-mb, else [cluster] memory_mb, else [resources]
    memory_mb: checked against the node size as submitted (not against a 4096 MB default)."""
    c = campaign(tmp_path, 2)                                          # [resources] memory_mb = 256
    dry = c.run(engine="toy", processor="noop", dry_run=True, placement="whole_node", node_cores=2,
                node_memory_mb=1024, progress="quiet")
    ((_, script),) = dry.scripts
    assert "--memory=512" in script and "--cpus=2" in script         # 2 products of 256 MB at once
    c.config("cluster.memory_mb", 300)
    ((_, script),) = c.run(engine="toy", processor="noop", dry_run=True, progress="quiet").scripts
    assert "--memory=300" in script
    ((_, script),) = c.run(engine="toy", processor="noop", dry_run=True, memory_mb=400, progress="quiet").scripts
    assert "--memory=400" in script
    with pytest.raises(s2l2a.ConfigError, match="above 1024 MB"):
        c.run(engine="toy", processor="noop", dry_run=True, memory_mb=2048, node_memory_mb=1024, progress="quiet")
