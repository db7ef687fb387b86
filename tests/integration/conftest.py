"""Fixtures for the scheduler integration tests: the real single-node Slurm, campaigns of cheap
L1C clones (the engine tests' helper), and a Sen2Cor stand-in that can also eat memory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.conftest import S2L2A, STANDIN, clone_l1c, s2l2a

from .openlava import OpenLava, openlava_or_skip

SLURM_ENV = Path(os.environ.get("S2L2A_SLURM_DIR", "/tmp/s2l2a-slurm")) / "env"


def _slurm_conf() -> str | None:
    if os.environ.get("SLURM_CONF"):
        return os.environ["SLURM_CONF"]
    if SLURM_ENV.is_file():
        for line in SLURM_ENV.read_text().splitlines():
            if line.startswith("export SLURM_CONF="):
                return line.split("=", 1)[1].strip()
    return None


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment to reach the local Slurm; skips when sinfo does not answer."""
    if shutil.which("sinfo") is None:
        pytest.skip("Slurm client tools are not installed (apt-get install slurm-client)")
    env = dict(os.environ)
    conf = _slurm_conf()
    if conf:
        env["SLURM_CONF"] = conf
    try:
        r = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10, env=env)
    except subprocess.TimeoutExpired:
        pytest.skip("sinfo did not answer within 10 s")
    if r.returncode != 0 or not r.stdout.strip():
        pytest.skip("no Slurm answers (run 'bash scripts/slurm-up.sh' as root, or scripts/test.sh): "
                    + (r.stderr.strip().splitlines() or ["sinfo gave nothing"])[-1])
    if conf:  # in-process reconciliation asks squeue too
        os.environ["SLURM_CONF"] = conf
    return env


@pytest.fixture(scope="session")
def openlava() -> OpenLava:
    """The local OpenLava (scripts/openlava-up.sh), reached as its submitting user; skips when it is not up."""
    return openlava_or_skip()


@pytest.fixture(scope="session")
def hungry_standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``L2A_Process``: the project's stand-in, except that an input whose name holds the value
    of ``HOG_MATCH`` first allocates and touches ``HOG_MB`` MB (to meet a scheduler's memory limit)."""
    exe = tmp_path_factory.mktemp("sen2cor") / "L2A_Process"
    hog = "import os, time; b = b'x' * (int(os.environ.get('HOG_MB', '900')) * 2**20); time.sleep(120)"
    exe.write_text("#!/bin/sh\n"
                   'case "$*" in\n'
                   f'  *"${{HOG_MATCH:-no-hog}}"*) exec \'{sys.executable}\' -c "{hog}" ;;\n'
                   "esac\n"
                   f"exec '{sys.executable}' '{STANDIN}' \"$@\"\n")
    exe.chmod(0o755)
    return exe


def clone_dated(dest_root: Path, day: int) -> Path:
    """A re-dated clone: the sensing date inside the metadata moves too (the Sen2Cor stand-in
    names its output from PRODUCT_START_TIME, so clones must differ there as well)."""
    return clone_l1c(dest_root, day)


def make_cluster_campaign(root: Path, n: int, *, processor: str = "sen2cor", sen2cor: Path | None = None,
                          memory_mb: int = 300, timeout_s: int = 600, cluster: dict | None = None,
                          noop: dict | None = None) -> Path:
    """``n`` re-dated clones of the sample (2018-06-29 + i days) and a planned campaign."""
    from s2l2a.campaign.settings import CampaignSettings

    l1c = root / "l1c"
    for i in range(n):
        clone_dated(l1c, i)
    camp = root / "camp"
    r = s2l2a("init", camp, "--processor", "builtin", "--memory-mb", str(memory_mb))
    assert r.returncode == 0, r.stderr
    s = CampaignSettings.load(camp)
    if processor != "noop":
        s.processor = processor
    s.timeout_s = timeout_s
    if sen2cor is not None:
        s.sen2cor = {"l2a_process": str(sen2cor)}
    # settings.extra is a view of the sections: a section is changed through section(name)
    s.section("cluster").update({"estimate_s": 10, "startup_s": 5, "run_limit": "10m", **(cluster or {})})
    if noop is not None:
        s.section("noop").update(noop)
    s.save(camp)
    r = s2l2a("plan", camp, l1c)
    assert r.returncode == 0, r.stderr
    return camp


def wait_until(cond: Callable[[], bool], timeout: float, step: float = 0.5) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return True
        time.sleep(step)
    return cond()


__all__ = ["S2L2A", "clone_l1c", "make_cluster_campaign", "s2l2a", "wait_until"]
