"""Fixtures for engine tests: campaigns of cheap clones of the bundled real L1C product.

A clone copies the small XML files, hard-links the band images (``safe`` refuses symlinks that
lead out of a product) and gives the product another sensing date in its name and PRODUCT_URI,
and metadata times, so each clone is a distinct acquisition for the planner and yields a
distinct L2A name whichever processor names it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sample_clones import clone_sample

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample" / "S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042.SAFE"
STANDIN = REPO / "tests" / "standin" / "L2A_Process"
S2L2A = Path(sys.executable).with_name("s2l2a")


def clone_l1c(dest_root: Path, day: int) -> Path:
    """The sample re-dated by ``day`` days (a different acquisition of the same tile)."""
    return clone_sample(dest_root, day=day)


def s2l2a(*args: str | Path, timeout: float = 120, **kw: object) -> subprocess.CompletedProcess[str]:
    """Run the installed console script (argv list, never a shell)."""
    return subprocess.run([str(S2L2A), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          **kw)  # type: ignore[call-overload]


def make_campaign(root: Path, n: int, extra_toml: str = "", plan: bool = True) -> Path:
    """``n`` cloned L1C under ``root/l1c`` and a planned campaign at ``root/camp``."""
    l1c = root / "l1c"
    for i in range(n):
        clone_l1c(l1c, i)
    camp = root / "camp"
    r = s2l2a("init", camp, "--processor", "builtin", "--memory-mb", "256")
    assert r.returncode == 0, r.stderr
    if extra_toml:
        with open(camp / "s2l2a.toml", "a", encoding="utf-8") as f:
            f.write(extra_toml)
    if plan:
        r = s2l2a("plan", camp, l1c)
        assert r.returncode == 0, r.stderr
    return camp


@pytest.fixture
def sample_l1c() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ``L2A_Process`` that runs the project's Sen2Cor stand-in with this venv's Python."""
    exe = tmp_path_factory.mktemp("sen2cor") / "L2A_Process"
    exe.write_text(f"#!/bin/sh\nexec '{sys.executable}' '{STANDIN}' \"$@\"\n")
    exe.chmod(0o755)
    return exe
