"""Product and granule naming rules, both conventions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from safe_helpers import one_line

from s2l2a.errors import ProductError
from s2l2a.safe import (
    ProductNameError,
    format_product_name,
    is_product_name,
    l2a_granule_name,
    parse_granule_name,
    parse_product_name,
)


def test_compact_l1c() -> None:
    n = parse_product_name("S2A_MSIL1C_20151116T043132_N0204_R090_T46QEL_20151116T043131.SAFE")
    assert n.name == "S2A_MSIL1C_20151116T043132_N0204_R090_T46QEL_20151116T043131"
    assert (n.mission, n.level, n.fmt) == ("S2A", "L1C", "compact")
    assert n.sensing_time == datetime(2015, 11, 16, 4, 31, 32, tzinfo=UTC)
    assert n.generation_time == datetime(2015, 11, 16, 4, 31, 31, tzinfo=UTC)
    assert (n.baseline, n.relative_orbit, n.tile) == ("02.04", 90, "46QEL")
    assert str(n) == n.name


def test_oper_l1c() -> None:
    n = parse_product_name("S2A_OPER_PRD_MSIL1C_PDMC_20161205T220814_R065_V20161205T104432_20161205T104432.SAFE")
    assert (n.mission, n.level, n.fmt) == ("S2A", "L1C", "oper")
    assert n.sensing_time == datetime(2016, 12, 5, 10, 44, 32, tzinfo=UTC)
    assert n.generation_time == datetime(2016, 12, 5, 22, 8, 14, tzinfo=UTC)
    assert (n.baseline, n.relative_orbit, n.tile) == (None, 65, None)


@pytest.mark.parametrize(
    ("name", "mission", "level", "baseline"),
    [
        ("S2B_MSIL2A_20220413T150759_N0400_R025_T33XWJ_20220414T082126", "S2B", "L2A", "04.00"),
        ("S2C_MSIL2A_20250101T000000_N9999_R001_T01ABC_20250101T010203.SAFE/", "S2C", "L2A", "99.99"),
        ("/data/in/S2A_MSIL1C_20240101T102431_N0510_R065_T30NWM_20240101T122107.SAFE", "S2A", "L1C", "05.10"),
        ("S2A_MSIL1C_20240101T102431_N0510_R065_T30NWM_20240101T122107.zip", "S2A", "L1C", "05.10"),
    ],
)
def test_compact_variants(name: str, mission: str, level: str, baseline: str) -> None:
    n = parse_product_name(name)
    assert (n.mission, n.level, n.baseline) == (mission, level, baseline)
    assert not n.name.endswith((".SAFE", ".zip", "/"))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "foo",
        "S2A_MSIL1B_20151116T043132_N0204_R090_T46QEL_20151116T043131",
        "S2A_MSIL1C_20200717T221941_R029_T01LAC_20200717T234135",  # N part removed upstream
        "S2A_MSIL1C_20151116T043132_N0204_R090_T4QEL_20151116T043131",
        "L8_MSIL1C_20151116T043132_N0204_R090_T46QEL_20151116T043131",
        "S2A_MSIL1C_20151116T043132_N0204_R090_T46QEL_20151116T043131\nextra",
    ],
)
def test_bad_names(bad: str) -> None:
    with pytest.raises(ProductNameError) as exc:
        parse_product_name(bad)
    assert isinstance(exc.value, ProductError)
    one_line(exc.value, "not a Sentinel-2")
    assert not is_product_name(bad)


def test_granule_names() -> None:
    g = parse_granule_name("L1C_T46QEL_A002114_20151116T043131")
    assert (g.level, g.fmt, g.tile, g.absolute_orbit) == ("L1C", "compact", "46QEL", 2114)
    assert g.sensing_time == datetime(2015, 11, 16, 4, 31, 31, tzinfo=UTC)
    o = parse_granule_name("S2A_OPER_MSI_L1C_TL_SGS__20161205T171834_A007598_T33UVB_N02.04")
    assert (o.level, o.fmt, o.tile, o.absolute_orbit, o.baseline, o.mission) == (
        "L1C", "oper", "33UVB", 7598, "02.04", "S2A",
    )
    assert o.generation_time == datetime(2016, 12, 5, 17, 18, 34, tzinfo=UTC)
    assert parse_granule_name("L2A_T33XWJ_A026649_20220413T150756").level == "L2A"
    with pytest.raises(ProductNameError):
        parse_granule_name("IMG_DATA")


def test_format_product_name_round_trip() -> None:
    l1c = parse_product_name("S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042")
    gen = datetime(2026, 11, 25, 14, 0, 5, tzinfo=UTC)
    name = format_product_name(l1c.mission, "L2A", l1c.sensing_time, "05.10", l1c.relative_orbit, l1c.tile, gen)
    assert name == "S2A_MSIL2A_20180629T000241_N0510_R030_T56JMM_20261125T140005"
    back = parse_product_name(name)
    assert (back.level, back.baseline, back.generation_time) == ("L2A", "05.10", gen)
    with pytest.raises(ProductNameError):
        format_product_name("S2A", "L2A", gen, "5.1", 30, "56JMM", gen)
    with pytest.raises(ProductNameError):
        format_product_name("S2A", "L1B", gen, "05.10", 30, "56JMM", gen)


def test_l2a_granule_name() -> None:
    assert l2a_granule_name("L1C_T56JMM_A015757_20180629T000241") == "L2A_T56JMM_A015757_20180629T000241"
    assert (l2a_granule_name("S2A_OPER_MSI_L1C_TL_SGS__20161205T171834_A007598_T33UVB_N02.04")
            == "S2A_OPER_MSI_L2A_TL_SGS__20161205T171834_A007598_T33UVB_N02.04")
