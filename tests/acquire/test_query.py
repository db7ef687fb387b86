"""Filters, the duplicate rule, OData filter building and parsing of the real CDSE response."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from s2l2a.acquire.cdse import build_filters, candidate_from_entry
from s2l2a.acquire.query import Candidate, Query, QueryError, baseline_tuple, parse_day, resolve_duplicates

DATA = Path(__file__).resolve().parents[1] / "data" / "acquire"
REAL = json.loads((DATA / "eodag_cop_dataspace_search_S2L1C.json").read_text())


def _c(name: str, source: str = "gcs") -> Candidate:
    return Candidate.from_name(name, source, name)


def test_duplicates_keep_highest_baseline_then_latest_generation() -> None:
    a = _c("S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042")
    b = _c("S2A_MSIL1C_20180629T000241_N0500_R030_T56JMM_20230601T101010")
    c = _c("S2A_MSIL1C_20180629T000241_N0500_R030_T56JMM_20230702T101010")
    other = _c("S2A_MSIL1C_20180629T000241_N0206_R030_T56JMN_20180629T012042")
    same_in_cdse = _c(c.name, "cdse")
    kept, dropped = resolve_duplicates([a, b, c, other, same_in_cdse])
    assert [k.name for k in kept] == [c.name, other.name]
    assert kept[kept.index(c)].source == "gcs"  # first source wins for the very same product
    assert {d.name for d, _ in dropped} == {a.name, b.name, c.name}


def test_parsing_helpers() -> None:
    assert baseline_tuple("04.00") == (4, 0) and baseline_tuple("5") == (5, 0)
    with pytest.raises(QueryError):
        baseline_tuple("N0500")
    assert parse_day("2020-08-08", end=True) == datetime(2020, 8, 8, 23, 59, 59, 999999, tzinfo=UTC)
    with pytest.raises(QueryError, match="not a date"):
        parse_day("08/08/2020")
    with pytest.raises(QueryError, match="no tiles"):
        Query(tiles=[]).validate()


def test_real_odata_entries_parse() -> None:
    cands = [candidate_from_entry(e) for e in REAL["value"]]
    first = cands[0]
    assert first is not None
    assert first.name == "S2A_MSIL1C_20200808T010311_N0500_R045_T54PXA_20230413T212505"
    assert (first.size, first.baseline, first.tile, first.relative_orbit) == (224105657, "05.00", "54PXA", 45)
    assert first.cloud_cover == pytest.approx(95.136736479015)
    assert first.checksum == "923ac4992d90b57d41e7ace4d9d90757"
    assert first.ref == "05edf2bb-d103-49f1-a677-9e474138d84f"


def test_filter_has_the_real_services_syntax() -> None:
    # the recorded nextLink shows how CDSE itself spells these clauses
    real_filter = parse_qs(urlsplit(REAL["@odata.nextLink"]).query)["$filter"][0]
    q = Query(tiles=["54PXA", "55PBR"], start=parse_day("2020-08-08"), end=parse_day("2020-08-16", end=True),
              max_cloud=30, platforms=["S2A"], orbits=[45])
    (flt,) = build_filters(q)
    product_type = "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and " \
                   "att/OData.CSC.StringAttribute/Value eq 'S2MSI1C')"
    assert product_type in real_filter and product_type in flt
    assert flt.startswith("Collection/Name eq 'SENTINEL-2'") and real_filter.startswith("Collection/Name eq 'SENTINEL-2'")
    assert "ContentDate/Start ge 2020-08-08T00:00:00.000Z" in flt
    assert "att/OData.CSC.DoubleAttribute/Value le 30.00" in flt
    assert "att/Name eq 'tileId' and att/OData.CSC.StringAttribute/Value eq '55PBR'" in flt
    assert "att/Name eq 'relativeOrbitNumber' and att/OData.CSC.IntegerAttribute/Value eq 45" in flt
    from shapely.geometry import box

    (aoi_flt,) = build_filters(Query(tiles=["54PXA"], aoi=box(142.5, 13.5, 142.6, 13.6)))
    assert "OData.CSC.Intersects(area=geography'SRID=4326;POLYGON ((" in aoi_flt
    assert "OData.CSC.Intersects(area=geography'SRID=4326;POLYGON ((" in real_filter


def test_settings_precedence_and_errors(tmp_path: Path) -> None:
    from s2l2a.acquire.settings import AcquireSettings
    from s2l2a.errors import ConfigError

    s = AcquireSettings.load({"parallel": 3, "retries": 1}, env={"S2L2A_RETRIES": "7", "S2L2A_GCS_URL": "http://x/o/"},
                             retries=None, cache_dir=tmp_path)
    assert (s.parallel, s.retries, s.gcs_url, s.cache_dir) == (3, 7, "http://x/o", tmp_path)
    with pytest.raises(ConfigError, match=r"\[acquire\] paralel: unknown setting"):
        AcquireSettings.load({"paralel": 3}, env={})
    with pytest.raises(ConfigError, match="not a int"):
        AcquireSettings.load(env={"S2L2A_PARALLEL": "many"})
    with pytest.raises(ConfigError, match="must be at least 1"):
        AcquireSettings.load(env={}, parallel=0)
