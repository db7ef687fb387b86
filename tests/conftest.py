"""Shared test fixtures: paths to the project's own copies of real Sentinel-2 data."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
SAMPLE = REPO / "data" / "sample" / "S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042.SAFE"


@pytest.fixture
def sample_l1c() -> Path:
    """The bundled real L1C product (whole tile, decimated ~25x, baseline 02.06)."""
    return SAMPLE
