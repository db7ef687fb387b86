"""Every real L1C/L2A metadata file copied into tests/data/safe parses, with its values checked.

Expected numbers were read by eye from the XML files (see each folder's SOURCE.md for provenance).
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest
from safe_helpers import L1C_META, L2A_META, SAFE_DATA, STAC_L2A

from s2l2a.errors import ProductError
from s2l2a.safe import (
    BANDS,
    GeoPosition,
    L1CProduct,
    L2AProduct,
    find_products,
    open_l1c,
    open_l2a,
    open_product,
    read_datastrip_metadata,
    read_tile_metadata,
)

S = L1C_META / "stactools-sentinel2"
SAT = L1C_META / "satmeta"

# relative dir, level, name, baseline, offset, cloud, tile, epsg, ulx, uly, sun_zenith[0,0], mean sun zenith
PRODUCTS = [
    (L1C_META / "galamsey-S2A_MSIL1C_20240101T102431_N0510_R065_T30NWM_20240101T122107", "L1C",
     "S2A_MSIL1C_20240101T102431_N0510_R065_T30NWM_20240101T122107", "05.10", -1000.0, 16.896532105784,
     "30NWM", None, None, None, None, None),
    (L1C_META / "turb-S2B_MSIL1C_20230601T094549_N0509_R079_T34UDD_20230601T115221", "L1C",
     "S2B_MSIL1C_20230601T094549_N0509_R079_T34UDD_20230601T115221", "05.09", -1000.0, 0.0874914150915226,
     "34UDD", None, None, None, None, None),
    (SAT / "new_format" / "S2A_MSIL1C_20170103T104432_N0204_R008_T33VUC_20170103T104428.SAFE", "L1C",
     "S2A_MSIL1C_20170103T104432_N0204_R008_T33VUC_20170103T104428", "02.04", 0.0, 100.0,
     "33VUC", 32633, 300000.0, 6300000.0, 79.8769, 79.3415487185746),
    (SAT / "old_format" / "short.SAFE", "L1C",
     "S2A_OPER_PRD_MSIL1C_PDMC_20161206T101413_R022_V20161205T101402_20161205T101402", "02.04", 0.0, 61.2573,
     "33UVB", 32633, 399960.0, 6200040.0, 78.8843, 78.320591337886),
    (S / "S2A_MSIL1C_20200717T221941_R029_T01LAC_20200717T234135.SAFE", "L1C",
     "S2A_MSIL1C_20200717T221941_N0209_R029_T01LAC_20200717T234135", "02.09", 0.0, 5.4828,
     "01LAC", 32701, 99960.0, 8300020.0, 45.083, 45.183085206095),
    (S / "S2A_MSIL1C_20210908T042701_N0301_R133_T46RER_20210908T070248.SAFE", "L1C",
     "S2A_MSIL1C_20210908T042701_N0301_R133_T46RER_20210908T070248", "03.01", 0.0, 88.2972,
     "46RER", 32646, 499980.0, 3100020.0, 27.2006, 26.4931642669439),
    (SAFE_DATA / "pixels" / "eodag-L1C-T31TDH-20180101-B01" / "S2A_MSIL1C_20180101T105441_N0206_R051_T31TDH_20180101T124911",
     "L1C", "S2A_MSIL1C_20180101T105441_N0206_R051_T31TDH_20180101T124911", "02.06", 0.0, 11.9204,
     "31TDH", 32631, 399960.0, 4800000.0, 67.6356, 67.0354071200132),
    (L2A_META / "satmeta-sen2cor-local-T32VNJ-20170113", "L2A",
     "S2A_MSIL2A_20170113T104401_N0204_R008_T32VNJ_20170113T104402", "02.04", 0.0, 7.1815,
     "32VNJ", None, None, None, None, None),
    (STAC_L2A / "S2A_MSIL2A_20150826T185436_N0212_R070_T11SLT_20210412T023147", "L2A",
     "S2A_MSIL2A_20150826T185436_N0212_R070_T11SLT_20210412T023147", "02.12", 0.0, 3.113053,
     "11SLT", 32611, 300000.0, 3800040.0, 28.0645, 27.3677090099684),
    (STAC_L2A / "S2A_MSIL2A_20180721T053721_N0212_R062_T43MDV_20201011T181419.SAFE", "L2A",
     "S2A_MSIL2A_20180721T053721_N0212_R062_T43MDV_20201011T181419", "02.12", 0.0, 99.999999,
     "43MDV", None, None, None, None, None),
    (STAC_L2A / "S2A_MSIL2A_20190212T192651_N0212_R013_T07HFE_20201007T160857.SAFE", "L2A",
     "S2A_MSIL2A_20190212T192651_N0212_R013_T07HFE_20201007T160857", "02.12", 0.0, 51.580326,
     "07HFE", 32707, 600000.0, 6500020.0, 32.9495, 32.707073851362),
    (STAC_L2A / "S2A_MSIL2A_20230625T234621_N0509_R073_T01WCP_20230626T022157.SAFE", "L2A",
     "S2A_MSIL2A_20230625T234621_N0509_R073_T01WCP_20230626T022157", "05.09", -1000.0, 15.047897000000003,
     "01WCP", 32601, 300000.0, 7400040.0, 43.4101, 42.8949736512547),
    (STAC_L2A / "S2A_MSIL2A_20230625T234621_N0509_R073_T01WCS_20230626T022157.SAFE", "L2A",
     "S2A_MSIL2A_20230625T234621_N0509_R073_T01WCS_20230626T022157", "05.09", -1000.0, 83.930558,
     "01WCS", 32601, 300000.0, 7700040.0, 46.1045, 45.5892458407657),
    (STAC_L2A / "S2A_MSIL2A_20230821T221941_N0509_R029_T01KAB_20230822T021825.SAFE", "L2A",
     "S2A_MSIL2A_20230821T221941_N0509_R029_T01KAB_20230822T021825", "05.09", -1000.0, 59.050727,
     "01KAB", 32701, 99960.0, 8200000.0, 38.4066, 38.4174390061789),
    (STAC_L2A / "S2B_MSIL2A_20191228T210519_N0212_R071_T01CCV_20201003T104658.SAFE", "L2A",
     "S2B_MSIL2A_20191228T210519_N0212_R071_T01CCV_20201003T104658", "02.12", 0.0, 99.99889,
     "01CCV", 32701, 300000.0, 2000020.0, 55.2513, 55.201271439448),
    (STAC_L2A / "S2B_MSIL2A_20220413T150759_N0400_R025_T33XWJ_20220414T082126.SAFE", "L2A",
     "S2B_MSIL2A_20220413T150759_N0400_R025_T33XWJ_20220414T082126", "04.00", -1000.0, 98.944211,
     "33XWJ", 32633, 499980.0, 8900040.0, 76.3089, 76.5286190227361),
    (STAC_L2A / "esa_S2B_MSIL2A_20210122T133229_N0214_R081_T22HBD_20210122T155500.SAFE", "L2A",
     "S2B_MSIL2A_20210122T133229_N0214_R081_T22HBD_20210122T155500", "02.14", 0.0, 0.447807,
     "22HBD", 32722, 199980.0, 5900020.0, 32.6145, 32.3712311857264),
    (L2A_META / "turb-S2B_MSIL2A_20231217T135659_N0510_R067_T21JUK_20231217T175625", "L2A",
     "S2B_MSIL2A_20231217T135659_N0510_R067_T21JUK_20231217T175625", "05.10", -1000.0, 12.693287,
     "21JUK", None, None, None, None, None),
]


@pytest.mark.parametrize("row", PRODUCTS, ids=[r[2][:44] for r in PRODUCTS])
def test_real_product_values(row: tuple) -> None:
    path, level, name, baseline, offset, cloud, tile, epsg, ulx, uly, sz00, mean_sz = row
    p = open_product(path, require_bands=False)
    assert p.level == level
    assert isinstance(p, L1CProduct if level == "L1C" else L2AProduct)
    assert p.name.name == name and p.name.level == level
    assert p.baseline == baseline
    assert p.mission == name[:3]
    assert p.tile == tile and p.tiles == [tile]
    assert p.cloud_cover == pytest.approx(cloud)
    assert 0.95 < p.sun_earth_u < 1.05
    assert set(p.solar_irradiance) == set(BANDS)
    assert p.footprint is not None and p.footprint.is_valid and p.footprint.area > 0
    if isinstance(p, L1CProduct):
        assert p.quantification_value == 10000.0
        assert p.radio_add_offset == {b: offset for b in BANDS}
    else:
        assert p.boa_quantification_value == 10000.0
        assert p.boa_add_offset == {b: offset for b in BANDS}
        assert p.aot_quantification_value == 1000.0 and p.wvp_quantification_value == 1000.0
    if epsg is None:
        return  # product-level metadata only (no tile XML upstream, or layout without GRANULE)
    (g,) = p.granules
    assert g.tile == tile and g.epsg == epsg
    assert g.geoposition[10] == GeoPosition(ulx, uly, 10.0, -10.0, 10980, 10980)
    assert g.geoposition[20] == GeoPosition(ulx, uly, 20.0, -20.0, 5490, 5490)
    assert g.geoposition[60] == GeoPosition(ulx, uly, 60.0, -60.0, 1830, 1830)
    a = g.angles
    assert a.step_m == 5000.0
    assert a.sun_zenith.shape == a.sun_azimuth.shape == (23, 23)
    assert a.sun_zenith[0, 0] == pytest.approx(sz00)
    assert g.mean_sun_zenith == pytest.approx(mean_sz)
    assert set(a.view_zenith) == set(a.view_azimuth) == set(BANDS)
    for band in BANDS:
        vz, va = a.view_zenith[band], a.view_azimuth[band]
        assert vz.shape == va.shape == (23, 23)
        assert np.array_equal(np.isnan(vz), np.isnan(va))
        assert np.nanmax(vz) < 13.0 and np.nanmin(vz) >= 0.0  # MSI view zenith stays below ~12 deg
        assert np.nanmin(va) >= 0.0 and np.nanmax(va) < 360.0
    # the merged grid mean matches ESA's own mean within a small tolerance
    assert float(np.nanmean(a.view_zenith["B04"])) == pytest.approx(g.mean_view_zenith["B04"], abs=0.05)


def test_l1c_radiometry_details() -> None:
    p = open_l1c(SAT / "old_format" / "short.SAFE", require_bands=False)
    # bandId 8 is B8A, 9 is B09 (Spectral_Information order, not numeric band order)
    assert p.solar_irradiance["B8A"] == 955.19 and p.solar_irradiance["B09"] == 813.04
    assert p.solar_irradiance["B12"] == 85.25
    assert p.sun_earth_u == pytest.approx(1.02905440492924)
    assert p.granules[0].aux_files and "AUX_ECMWFT" in p.granules[0].aux_files
    assert p.name.fmt == "oper" and p.generation_time is not None


def test_l2a_sen2cor_local_header() -> None:
    p = open_l2a(L2A_META / "satmeta-sen2cor-local-T32VNJ-20170113", require_bands=False)
    assert p.product_type == "S2MSI2Ap"
    assert p.product_uri_l1c == "S2A_MSIL1C_20170113T104401_N0204_R008_T32VNJ_20170113T104402.SAFE"
    (g,) = p.granules  # two Granule elements with one identifier are one granule
    # Sen2Cor was run at 10 + 20 m here; the metadata lists images (and QI CLD/SNW) of those only
    assert set(g.missing_files) >= {"10:B02", "10:TCI", "20:SCL", "20:B8A", "20:CLD"}
    assert not any(k.startswith("60:") for k in g.missing_files)


def test_footprint_lat_lon_order() -> None:
    p = open_product(STAC_L2A / "S2A_MSIL2A_20150826T185436_N0212_R070_T11SLT_20210412T023147",
                     require_bands=False)
    # this product writes "lat lon 0" triples; the polygon is (lon, lat) in California
    minx, miny, maxx, maxy = p.footprint.bounds
    assert (minx, maxx) == pytest.approx((-119.17378006, -117.96937542))
    assert (miny, maxy) == pytest.approx((33.33276711, 34.33773661))
    q = open_product(L1C_META / "galamsey-S2A_MSIL1C_20240101T102431_N0510_R065_T30NWM_20240101T122107",
                     require_bands=False)
    assert q.footprint.bounds == pytest.approx((-2.939241147276357, 5.338951471867806,
                                                -2.007468385398004, 6.332775974523993))


# AWS-layout tile metadata: the folders are refused as products, but the XML itself is tile metadata.
AWS_TILES = [
    (S / "S2A_OPER_MSI_L1C_TL_SGS__20181231T203637_A018414_T10SDG", "10SDG", 32610, 63.5353, 13),
    (STAC_L2A / "S2A_OPER_MSI_L2A_TL_SGS__20181231T210250_A018414_T10SDG", "10SDG", 32610, 63.5353, 13),
    (STAC_L2A / "S2A_OPER_MSI_L2A_DS_2APS_20230105T201055_S20230105T163809", "01CDL", 32701, 71.6904, 13),
    (STAC_L2A / "S2A_OPER_MSI_L2A_TL_2APS_20240108T121951_A044635_T34VEL", "34VEL", 32634, 82.0286, 0),
    (STAC_L2A / "S2A_OPER_MSI_L2A_TL_VGS1_20220401T110010_A035382_T34LBP", "34LBP", 32734, 30.4636, 13),
    (STAC_L2A / "S2A_OPER_MSI_L2A_TL_VGS1_20220401T110010_A035382_T34LBQ", "34LBQ", 32734, 30.4636, 13),
    (STAC_L2A / "S2A_T60CWS_20240109T203651_L2A", "60CWS", 32760, 66.9728, 13),
    (STAC_L2A / "S2B_MSIL2A_20200914T231559_N0500_R087_T01VCG_20230315T224658", "01VCG", 32601, 57.9128, 13),
]


@pytest.mark.parametrize(("folder", "tile", "epsg", "sz00", "nbands"), AWS_TILES, ids=[r[1] for r in AWS_TILES])
def test_aws_tile_metadata_parses(folder: Path, tile: str, epsg: int, sz00: float, nbands: int) -> None:
    t = read_tile_metadata(folder / "metadata.xml")
    assert (t.tile, t.epsg) == (tile, epsg)
    assert t.angles.sun_zenith.shape == (23, 23)
    assert t.angles.sun_zenith[0, 0] == pytest.approx(sz00)
    assert len(t.angles.view_zenith) == nbands
    assert t.geoposition[60].xdim == 60.0 and t.geoposition[60].nrows == 1830
    if nbands == 0:  # upstream-trimmed file: a 2x1 zero grid with step 0 is ignored, not misread
        assert t.warnings and "ignored view grid" in t.warnings[0]
        assert not any(math.isnan(v) for v in t.mean_view_zenith.values())


def test_all_copied_products_are_found_and_open() -> None:
    found = list(find_products([SAFE_DATA]))
    assert len(found) == len(PRODUCTS)
    assert {p.resolve() for p in found} == {r[0].resolve() for r in PRODUCTS}


def test_datastrip_n0400(tmp_path: Path) -> None:
    gz = L1C_META / "coprs-datastrip-N0400" / "S2B_OPER_MTD_L1C_DS_REFS_20221124T170956_S20221011T064025.xml.gz"
    xml = tmp_path / gz.name.removesuffix(".gz")
    xml.write_bytes(gzip.decompress(gz.read_bytes()))
    d = read_datastrip_metadata(xml)
    assert (d.level, d.spacecraft, d.baseline) == ("L1C", "Sentinel-2B", "04.00")
    assert d.sensing_start.isoformat() == "2022-10-11T06:40:25.456000+00:00"
    assert d.sensing_stop.isoformat() == "2022-10-11T06:41:19.573000+00:00"
    assert d.quantification_value == 10000.0
    assert d.radio_add_offset == {b: -1000.0 for b in BANDS}
    assert d.sun_earth_u == pytest.approx(1.00178336697788)
    assert d.solar_irradiance["B01"] == 1874.3 and len(d.solar_irradiance) == 13
    with pytest.raises(ProductError):
        open_product(tmp_path)  # a datastrip alone is not a product
