"""Reading what the real schedulers know about their queues and nodes (issue 13 item 4), and
``run --dry-run`` saying where each sizing number came from: the single-node Slurm and OpenLava
that ``make test`` starts. Nothing is submitted."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from s2l2a.engines.lsf import LSF
from s2l2a.engines.scheduler import ClusterOptions
from s2l2a.engines.slurm import Slurm

from .conftest import make_cluster_campaign, s2l2a
from .openlava import OpenLava


def _campaign(root: Path, queue: str) -> Path:
    """Two noop products in a campaign on ``queue`` that leaves the run limit to the scheduler."""
    from s2l2a.campaign.settings import CampaignSettings

    camp = make_cluster_campaign(root, 2, processor="noop", memory_mb=300, cluster={"queue": queue})
    s = CampaignSettings.load(camp)
    for key in ("run_limit", "estimate_s"):
        s.section("cluster").pop(key, None)
    s.save(camp)
    return camp


def _scontrol(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["scontrol", *args], capture_output=True, text=True, timeout=30, env=env, check=False)


@pytest.fixture
def limited_partition(slurm: dict[str, str]) -> Iterator[str]:
    """A partition with a run limit and a memory limit on the one node, for this test only
    (created as Slurm's administrator, deleted afterwards; the default partition is left alone)."""
    name = f"s2l2a_lim{os.getpid()}"
    r = _scontrol(slurm, "create", f"PartitionName={name}", "Nodes=localhost", "MaxTime=1-12:00:00",
                  "MaxMemPerNode=1000", "State=UP")
    if r.returncode != 0:
        pytest.skip(f"cannot create a partition here (not Slurm's administrator?): {r.stderr.strip()}")
    try:
        yield name
    finally:
        _scontrol(slurm, "delete", f"PartitionName={name}")


def test_slurm_default_partition_and_its_node(slurm: dict[str, str], monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SLURM_CONF", slurm.get("SLURM_CONF", os.environ.get("SLURM_CONF", "")))
    info = Slurm(ClusterOptions()).read_site(None)
    # slurm-up.sh: partition debug (Default=YES, MaxTime=INFINITE), one node of this machine's CPUs
    assert info.queue == "debug" and info.run_limit_s is None
    assert "MaxTime=UNLIMITED" in info.notes[0]
    assert (info.node_cores, info.nodes) == (os.cpu_count(), 1) and info.node_memory_mb > 0
    assert info.sources["node_cores"] == "sinfo -N -p debug"
    unknown = Slurm(ClusterOptions()).read_site("no_such_partition")
    assert unknown.run_limit_s is None and unknown.node_cores is None and "not found" in unknown.notes[0]


def test_slurm_partition_limits_size_the_dry_run(slurm: dict[str, str], limited_partition: str, tmp_path: Path):
    info = Slurm(ClusterOptions()).read_site(limited_partition)
    assert (info.run_limit_s, info.memory_limit_mb) == (36 * 3600, 1000)
    camp = _campaign(tmp_path, limited_partition)
    r = s2l2a("run", camp, "--engine", "slurm", "--dry-run", env=slurm)
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    assert f"run limit 36:00:00 from scontrol show partition {limited_partition}" in out
    assert f"queue memory limit 1000 MB per job (from scontrol show partition {limited_partition})" in out
    assert f"from sinfo -N -p {limited_partition}" in out and "expected campaign wall time" in out
    r = s2l2a("run", camp, "--engine", "slurm", "--dry-run", "--run-limit", "2h", "--memory-mb", "300", env=slurm)
    assert "run limit 02:00:00 from --run-limit" in r.stdout + r.stderr
    r = s2l2a("run", camp, "--engine", "slurm", "--dry-run", "--memory-mb", "2000", env=slurm)
    assert r.returncode == 1 and "above queue" in r.stderr and "memory limit 1000 MB" in r.stderr


def test_openlava_queues_and_hosts(openlava: OpenLava, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    # reading works as root (submitting does not): the env file's LSF_ENVDIR and OpenLava's bin
    monkeypatch.setenv("LSF_ENVDIR", openlava.env["LSF_ENVDIR"])
    monkeypatch.setenv("PATH", openlava.env["PATH"])
    default = LSF(ClusterOptions()).read_site(None)
    # openlava-up.sh: queue normal is the default (no RUNLIMIT), short has RUNLIMIT 10 min; one host
    assert default.queue == "normal" and default.run_limit_s is None
    assert (default.node_cores, default.nodes) == (os.cpu_count(), 1) and default.sources["node_cores"] == "lshosts"
    short = LSF(ClusterOptions()).read_site("short")
    assert (short.run_limit_s, short.sources["run_limit_s"]) == (600, "bqueues -l short")
    assert "No such queue" in LSF(ClusterOptions()).read_site("nosuch").notes[0]
    camp = _campaign(tmp_path, "short")
    env = {**os.environ, "LSF_ENVDIR": openlava.env["LSF_ENVDIR"], "PATH": openlava.env["PATH"]}
    r = s2l2a("run", camp, "--engine", "lsf", "--dry-run", env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "run limit 00:10:00 from bqueues -l short" in out and "#BSUB -W " in out
    assert "from lshosts" in out and "expected campaign wall time" in out
