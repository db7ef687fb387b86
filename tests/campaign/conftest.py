"""Fixtures for campaign tests: campaigns in tmp_path and cheap clones of the real sample L1C.

A clone copies the small metadata files of the bundled real product,
hard-links its image files (``safe`` refuses symlinks leading out of a product),
then edits MTD_MSIL1C.xml (baseline, generation time, PRODUCT_URI) so it reads as a reprocessing
of the same acquisition.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from s2l2a.campaign.settings import CampaignSettings
from s2l2a.campaign.store import CampaignStore
from sample_clones import clone_sample

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample" / "S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042.SAFE"
STANDIN = REPO / "tests" / "standin" / "L2A_Process"


def product_name(baseline: str = "02.06", generation: str = "20180629T012042",
                 sensing: str = "20180629T000241") -> str:
    """A compact L1C name of the sample's tile/orbit with the given baseline and times."""
    return f"S2A_MSIL1C_{sensing}_N{baseline.replace('.', '')}_R030_T56JMM_{generation}"


def clone_product(dest_root: Path, baseline: str = "02.06", generation: str = "20180629T012042",
                  src: Path = SAMPLE) -> Path:
    """Clone the sample under ``dest_root`` as another baseline/generation of the same acquisition."""
    return clone_sample(dest_root, baseline=baseline, generation=generation, src=src)


def make_campaign(path: Path, **settings: object) -> Path:
    """A campaign directory with settings and an empty store."""
    path.mkdir(parents=True, exist_ok=True)
    CampaignSettings(name=path.name, **settings).save(path)  # type: ignore[arg-type]
    CampaignStore.open(path, create=True).close()
    return path


@pytest.fixture
def campaign(tmp_path: Path) -> Path:
    return make_campaign(tmp_path / "camp")


@pytest.fixture(scope="session")
def standin_l2a(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One Sen2Cor-style L2A of the sample, written once by the project's Sen2Cor stand-in."""
    out = tmp_path_factory.mktemp("l2a")
    subprocess.run([sys.executable, str(STANDIN), str(SAMPLE), "--output_dir", str(out)],
                   check=True, capture_output=True, timeout=60)
    (product,) = out.glob("*MSIL2A*.SAFE")
    return product
