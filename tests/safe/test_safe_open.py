"""Opening products: the bundled real L1C with images, and every way a directory can be wrong."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from safe_helpers import L1C_META, L2A_N0400, SAFE_DATA, SAMPLE, STAC_L2A, one_line

from s2l2a.errors import ProductError
from s2l2a.safe import (
    BANDS,
    NATIVE_RESOLUTION,
    GeoPosition,
    L1CProduct,
    L2AProduct,
    MetadataError,
    MissingFileError,
    ProductNameError,
    UnknownLayoutError,
    WrongLevelError,
    find_products,
    open_l1c,
    open_l2a,
    open_product,
)
from s2l2a.safe.tile import _merge_detectors


def test_bands_table() -> None:
    assert BANDS == ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
    assert [b for b in BANDS if NATIVE_RESOLUTION[b] == 10] == ["B02", "B03", "B04", "B08"]
    assert [b for b in BANDS if NATIVE_RESOLUTION[b] == 60] == ["B01", "B09", "B10"]


def test_open_sample_l1c() -> None:
    p = open_l1c(SAMPLE)
    assert isinstance(p, L1CProduct) and isinstance(open_product(SAMPLE), L1CProduct)
    assert p.path == SAMPLE and p.metadata_path == SAMPLE / "MTD_MSIL1C.xml"
    assert p.name.name == SAMPLE.name[:-5] and p.product_uri == SAMPLE.name[:-5]
    assert (p.mission, p.tile, p.tiles, p.baseline) == ("S2A", "56JMM", ["56JMM"], "02.06")
    assert p.sensing_time.isoformat() == "2018-06-29T00:02:41.024000+00:00"
    assert p.generation_time.isoformat() == "2018-06-29T01:20:42+00:00"
    assert p.quantification_value == 10000.0 and set(p.radio_add_offset.values()) == {0.0}
    assert p.cloud_cover == 0.0 and p.sun_earth_u == pytest.approx(0.967798898595979)
    assert p.solar_irradiance["B01"] == 1884.69 and p.solar_irradiance["B8A"] == 955.32
    (g,) = p.granules
    assert g.granule_id == "L1C_T56JMM_A015757_20180629T000241"
    assert g.tile_id == "S2A_OPER_MSI_L1C_TL_EPAE_20180629T012042_A015757_T56JMM_N02.06"
    assert g.epsg == 32756 and g.tile == "56JMM"
    assert g.geoposition[60] == GeoPosition(399960.0, 6700000.0, 60.0, -60.0, 1830, 1830)
    assert g.geoposition[10].transform.c == 399960.0 and g.geoposition[10].bounds[0] == 399960.0
    assert set(g.band_files) == set(BANDS) | {"TCI"}
    assert all(f.is_file() and f.suffix == ".jp2" for f in g.band_files.values())
    assert g.band_files["B8A"].name == "T56JMM_20180629T000241_B8A.jp2"
    assert sorted(g.images[10]) == ["B02", "B03", "B04", "B08", "TCI"]
    assert sorted(g.images[60]) == ["B01", "B09", "B10"] and len(g.images[20]) == 6
    assert g.aux_files == {"AUX_ECMWFT": g.path / "AUX_DATA" / "AUX_ECMWFT"}
    assert g.mean_sun_zenith == pytest.approx(59.5161129280706)
    assert g.mean_sun_azimuth == pytest.approx(28.9784209875988)
    assert g.angles.sun_zenith[0, 0] == pytest.approx(59.3323)
    with rasterio.open(g.band_files["B02"]) as ds:  # decimated upstream but georeferenced like the tile
        assert ds.crs.to_epsg() == g.epsg
        assert ds.transform.c == pytest.approx(g.geoposition[10].ulx)


def test_view_angles_merge_detectors() -> None:
    g = open_l1c(SAMPLE).granules[0]
    vz = g.angles.view_zenith["B01"]
    # real B01 grids of detectors 9..12: one detector → its value, two → their mean, none → NaN
    assert vz[0, 0] == pytest.approx(5.02939)
    assert vz[0, 3] == pytest.approx(6.32555)
    assert vz[0, 8] == pytest.approx((8.19562 + 8.03671) / 2)
    assert vz[3, 2] == pytest.approx((6.02552 + 6.2007) / 2)
    assert np.isnan(vz[0, 19]) and np.isnan(vz[22, 22])
    assert int(np.isnan(vz).sum()) == 150  # grid points outside the swath
    a = np.array([[1.0, np.nan, np.nan]])
    b = np.array([[3.0, 5.0, np.nan]])
    assert np.allclose(_merge_detectors([a, b], azimuth=False), [[2.0, 5.0, np.nan]], equal_nan=True)
    az = _merge_detectors([np.array([[359.0]]), np.array([[3.0]])], azimuth=True)
    assert az[0, 0] == pytest.approx(1.0)


def test_missing_band_file(sample_copy: Path) -> None:
    b05 = next(sample_copy.glob("GRANULE/*/IMG_DATA/*_B05.jp2"))
    b05.unlink()
    with pytest.raises(MissingFileError) as exc:
        open_l1c(sample_copy)
    one_line(exc.value, "B05", str(b05))
    p = open_l1c(sample_copy, require_bands=False)
    assert "B05" not in p.granules[0].band_files and "B05" in p.granules[0].missing_files


def test_metadata_only_copy_needs_flag() -> None:
    d = SAFE_DATA / "pixels/eodag-L1C-T31TDH-20180101-B01/S2A_MSIL1C_20180101T105441_N0206_R051_T31TDH_20180101T124911"
    with pytest.raises(MissingFileError) as exc:
        open_l1c(d)
    one_line(exc.value, "B01", "T31TDH_20180101T105441_B01.jp2")
    assert open_l1c(d, require_bands=False).granules[0].epsg == 32631


def test_missing_granule_folder(sample_copy: Path) -> None:
    shutil.rmtree(next(sample_copy.glob("GRANULE/*")))
    with pytest.raises(MissingFileError) as exc:
        open_l1c(sample_copy)
    one_line(exc.value, "L1C_T56JMM_A015757_20180629T000241")


def test_old_format_image_ids() -> None:
    d = L1C_META / "satmeta/old_format/short.SAFE"
    with pytest.raises(MissingFileError) as exc:
        open_l1c(d)
    one_line(exc.value, "B04", "IMG_DATA/S2A_OPER_MSI_L1C_TL_SGS__20161205T171834_A007598_T33UVB_B04.jp2")


def test_glob_fallback_when_xml_lists_no_images(sample_copy: Path) -> None:
    mtd = sample_copy / "MTD_MSIL1C.xml"
    lines = [ln for ln in mtd.read_text().splitlines() if "<IMAGE_FILE>" not in ln]
    mtd.write_text("\n".join(lines))
    g = open_l1c(sample_copy).granules[0]
    assert set(g.band_files) == set(BANDS) | {"TCI"}


def test_image_path_outside_product_refused(sample_copy: Path) -> None:
    mtd = sample_copy / "MTD_MSIL1C.xml"
    mtd.write_text(mtd.read_text().replace(
        "GRANULE/L1C_T56JMM_A015757_20180629T000241/IMG_DATA/T56JMM_20180629T000241_B01<",
        "GRANULE/L1C_T56JMM_A015757_20180629T000241/../../../../etc/passwd_B01<"))
    with pytest.raises(MetadataError) as exc:
        open_l1c(sample_copy)
    one_line(exc.value, str(mtd), "outside the product")


def test_not_a_product(tmp_path: Path) -> None:
    d = tmp_path / "just a folder"
    d.mkdir()
    (d / "readme.txt").write_text("hello")
    with pytest.raises(UnknownLayoutError) as exc:
        open_l1c(d)
    one_line(exc.value, str(d), "not a Sentinel-2 product")
    with pytest.raises(ProductError) as exc2:
        open_product(tmp_path / "missing")
    one_line(exc2.value, "missing", "no such")
    z = tmp_path / "S2A_MSIL1C_20240101T102431_N0510_R065_T30NWM_20240101T122107.zip"
    z.write_bytes(b"PK\x03\x04")
    with pytest.raises(UnknownLayoutError) as exc3:
        open_l1c(z)
    one_line(exc3.value, "unzip")


@pytest.mark.parametrize(
    "folder",
    [
        L1C_META / "stactools-sentinel2/S2A_OPER_MSI_L1C_TL_SGS__20181231T203637_A018414_T10SDG",
        STAC_L2A / "S2A_T60CWS_20240109T203651_L2A",
    ],
)
def test_aws_layout_refused(folder: Path) -> None:
    with pytest.raises(UnknownLayoutError) as exc:
        open_product(folder)
    one_line(exc.value, str(folder), "AWS", "tileInfo.json")


def test_l2a_given_to_open_l1c() -> None:
    with pytest.raises(WrongLevelError) as exc:
        open_l1c(L2A_N0400, require_bands=False)
    one_line(exc.value, str(L2A_N0400), "is an L2A product, expected L1C")
    with pytest.raises(WrongLevelError) as exc2:
        open_l2a(SAMPLE)
    one_line(exc2.value, "is an L1C product, expected L2A")


def test_level_comes_from_metadata_not_folder_name(tmp_path: Path) -> None:
    """An L2A renamed like an L1C, even with its XML renamed MTD_MSIL1C.xml, is still an L2A."""
    d = tmp_path / "S2B_MSIL1C_20220413T150759_N0400_R025_T33XWJ_20220414T082126.SAFE"
    d.mkdir()
    shutil.copy(L2A_N0400 / "MTD_MSIL2A.xml", d / "MTD_MSIL1C.xml")
    with pytest.raises(WrongLevelError):
        open_l1c(d, require_bands=False)
    p = open_product(d, require_bands=False)
    assert isinstance(p, L2AProduct)
    assert p.name.level == "L2A"  # taken from PRODUCT_URI, which agrees with the metadata
    assert p.boa_add_offset["B02"] == -1000.0


def test_unnameable_product(tmp_path: Path) -> None:
    d = tmp_path / "renamed"
    d.mkdir()
    text = (SAMPLE / "MTD_MSIL1C.xml").read_text()
    (d / "MTD_MSIL1C.xml").write_text(text.replace(
        "<PRODUCT_URI>S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042.SAFE</PRODUCT_URI>",
        "<PRODUCT_URI>something</PRODUCT_URI>"))
    with pytest.raises(ProductNameError) as exc:
        open_l1c(d, require_bands=False)
    one_line(exc.value, str(d))


@pytest.mark.parametrize("parent", ["with space", "it's \"quoted\"", "tab\tand$dollar", "new\nline"])
def test_awkward_paths(tmp_path: Path, parent: str) -> None:
    base = tmp_path / parent
    base.mkdir()
    d = base / SAMPLE.name
    shutil.copytree(SAMPLE, d)
    p = open_l1c(d)
    assert p.granules[0].band_files["B02"].is_file()
    assert list(find_products([base])) == [d]
    mtd = d / "MTD_MSIL1C.xml"
    mtd.write_bytes(mtd.read_bytes()[:1000])
    with pytest.raises(MetadataError) as exc:
        open_l1c(d)
    text = one_line(exc.value, "MTD_MSIL1C.xml")
    if "\n" not in parent:
        assert str(mtd) in text


def test_find_products(tmp_path: Path) -> None:
    root = tmp_path / "root"
    a = root / "a" / "S2A_MSIL1C_20240101T102431_N0510_R065_T30NWM_20240101T122107.SAFE"
    (a / "GRANULE" / "inner.SAFE").mkdir(parents=True)  # never descend into a product
    flat = root / "b" / "flat-copy"
    flat.mkdir(parents=True)
    (flat / "MTD_MSIL2A.xml").write_text("<x/>")
    oper = root / "c" / "old"
    oper.mkdir(parents=True)
    (oper / "S2A_OPER_MTD_SAFL1C_PDMC_20161206T101413_R022_V20161205T101402_20161205T101402.xml").write_text("<x/>")
    (root / "d" / "e").mkdir(parents=True)
    (root / "d" / "MTD_TL.xml").write_text("<x/>")  # tile metadata alone is not a product
    (root / "loop").symlink_to(root)  # symlink cycles end
    found = list(find_products([root, root / "a"]))
    assert found == [a, flat, oper]
    assert list(find_products([a])) == [a]
    assert list(find_products([])) == []
    with pytest.raises(ProductError) as exc:
        list(find_products([tmp_path / "nope"]))
    one_line(exc.value, "nope")


def test_granule_identifier_outside_granule_folder(sample_copy: Path) -> None:
    mtd = sample_copy / "MTD_MSIL1C.xml"
    mtd.write_text(mtd.read_text().replace("GRANULE/L1C_T56JMM_A015757_20180629T000241/", "GRANULE/../"))
    with pytest.raises(MetadataError) as exc:
        open_l1c(sample_copy)
    one_line(exc.value, str(mtd), "outside GRANULE")


def test_parent_of_product_gets_a_hint(tmp_path: Path) -> None:
    outer = tmp_path / "S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042"
    shutil.copytree(SAMPLE, outer / SAMPLE.name)
    with pytest.raises(UnknownLayoutError) as exc:
        open_l1c(outer)
    one_line(exc.value, f"it contains {SAMPLE.name}; pass that folder")


def test_symlinked_band_files_are_fine(tmp_path: Path) -> None:
    """Staging areas link band files from a cache; only '..' in the metadata is refused."""
    d = tmp_path / "stage" / SAMPLE.name
    shutil.copytree(SAMPLE, d, ignore=shutil.ignore_patterns("*.jp2"))
    for src in SAMPLE.glob("GRANULE/*/IMG_DATA/*.jp2"):
        (d / src.relative_to(SAMPLE)).symlink_to(src)
    g = open_l1c(d).granules[0]
    assert set(g.band_files) == set(BANDS) | {"TCI"}
    assert g.band_files["B02"].parent == d / "GRANULE" / g.granule_id / "IMG_DATA"
    linked = tmp_path / "link to product"
    linked.symlink_to(d)
    assert open_l1c(linked).granules[0].band_files["B02"].is_file()


def test_open_by_metadata_file_path() -> None:
    p = open_product(SAMPLE / "MTD_MSIL1C.xml")
    assert isinstance(p, L1CProduct) and p.path == SAMPLE
