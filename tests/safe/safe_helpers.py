"""Paths and assertions shared by the s2l2a.safe tests (a plain module: conftest names clash across dirs)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAFE_DATA = REPO / "tests" / "data" / "safe"
SAMPLE = REPO / "data" / "sample" / "S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042.SAFE"
L1C_META = SAFE_DATA / "l1c_metadata"
L2A_META = SAFE_DATA / "l2a_metadata"
STAC_L2A = L2A_META / "stactools-sentinel2"
L2A_N0400 = STAC_L2A / "S2B_MSIL2A_20220413T150759_N0400_R025_T33XWJ_20220414T082126.SAFE"


def one_line(err: BaseException, *must_contain: str) -> str:
    """Assert the error text is one line containing each fragment; return it."""
    text = str(err)
    assert "\n" not in text and "\r" not in text, text
    for frag in must_contain:
        assert frag in text, (frag, text)
    return text
