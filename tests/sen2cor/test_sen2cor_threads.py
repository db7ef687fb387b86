"""Nr_Threads is pinned per job in a GIPP copy; the installed templates are never edited."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from lxml import etree

from s2l2a.processors.base import JobSettings
from s2l2a.processors.sen2cor import Sen2CorProcessor
from s2l2a.safe import open_l1c

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample" / "S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042.SAFE"
CFG = REPO / "tests" / "data" / "sen2cor_setup" / "cfg-2.8.0"


def _gipp_arg(argv: list[str]) -> Path:
    return Path(argv[argv.index("--GIP_L2A") + 1])


def _threads(path: Path) -> str:
    return next(etree.parse(str(path)).iter("Nr_Threads")).text


@pytest.mark.parametrize("cores,expected", [(2, "2"), (32, "8")])
def test_threads_pinned_from_install_template(standin: Path, tmp_path: Path, cores: int, expected: str) -> None:
    cfg = tmp_path / "lib" / "python2.7" / "site-packages" / "sen2cor" / "cfg"   # the stand-in's install root
    shutil.copytree(CFG, cfg)
    before = (cfg / "L2A_GIPP.xml").read_bytes()
    assert _threads(cfg / "L2A_GIPP.xml") == "AUTO"
    res = Sen2CorProcessor(l2a_process=standin).process(
        open_l1c(SAMPLE), tmp_path / "staging", JobSettings(cores=cores, timeout_s=60), tmp_path / "job.log")
    used = _gipp_arg(res.details["argv"])
    assert used.parent == tmp_path / "staging" / "gipp"          # a per-job copy inside staging
    assert _threads(used) == expected                            # XSD allows 1..8
    assert (cfg / "L2A_GIPP.xml").read_bytes() == before         # template untouched
    # the exact parameters are traceable: hash in the result details and in the job log
    digest = res.details["gipp_sha256"]["GIP_L2A"]
    assert digest.removeprefix("sha256:") == hashlib.sha256(used.read_bytes()).hexdigest()
    assert f"--GIP_L2A {used} {digest}" in (tmp_path / "job.log").read_text()


def test_threads_pinned_in_campaign_gipp_copy(standin: Path, tmp_path: Path) -> None:
    campaign_gipp = tmp_path / "campaign" / "sen2cor" / "gipp"
    campaign_gipp.mkdir(parents=True)
    shutil.copy(CFG / "L2A_GIPP.xml", campaign_gipp / "L2A_GIPP.xml")
    shutil.copy(CFG / "L2A_CAL_SC_GIPP.xml", campaign_gipp / "L2A_CAL_SC_GIPP.xml")
    res = Sen2CorProcessor(l2a_process=standin, gipp=campaign_gipp).process(
        open_l1c(SAMPLE), tmp_path / "staging", JobSettings(cores=1, timeout_s=60), tmp_path / "job.log")
    argv = res.details["argv"]
    assert _threads(_gipp_arg(argv)) == "1"
    # the other campaign files are passed on unchanged
    assert Path(argv[argv.index("--GIP_L2A_SC") + 1]) == campaign_gipp / "L2A_CAL_SC_GIPP.xml"
    assert _threads(campaign_gipp / "L2A_GIPP.xml") == "AUTO"
