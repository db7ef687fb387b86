"""verify_l2a on a small L2A built from real ESA metadata, and repair_gcs_layout."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from safe_helpers import L2A_N0400, SAMPLE, one_line

from s2l2a.safe import (
    L2A_REQUIRED,
    IncompleteProductError,
    L2AProduct,
    UnknownLayoutError,
    open_l1c,
    open_l2a,
    repair_gcs_layout,
    verify_l2a,
)


def build_l2a(dst_root: Path) -> Path:
    """Real N04.00 MTD_MSIL2A/MTD_TL plus a 4x4 GeoTIFF for every image the metadata lists."""
    d = dst_root / L2A_N0400.name
    shutil.copytree(L2A_N0400, d, ignore=shutil.ignore_patterns("manifest.safe"))
    mtd = (d / "MTD_MSIL2A.xml").read_text()
    assert 'imageFormat="GeoTIFF"' in mtd
    for rel in re.findall(r"<IMAGE_FILE>(.*?)</IMAGE_FILE>", mtd):
        f = d / f"{rel}.tif"
        f.parent.mkdir(parents=True, exist_ok=True)
        with rasterio.open(f, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint16",
                           crs="EPSG:32633", transform=Affine(10.0, 0.0, 499980.0, 0.0, -10.0, 8900040.0)) as ds:
            ds.write(np.full((1, 4, 4), 1234, dtype=np.uint16))
    return d


@pytest.fixture
def l2a(tmp_path: Path) -> Path:
    return build_l2a(tmp_path)


def test_verify_complete(l2a: Path) -> None:
    p = verify_l2a(l2a)
    assert isinstance(p, L2AProduct)
    (g,) = p.granules
    assert set(g.images) == {10, 20, 60}
    assert set(L2A_REQUIRED[10]) <= set(g.images[10])
    assert g.images[20]["SCL"].name == "T33XWJ_20220413T150759_SCL_20m.tif"
    assert g.band_files["B02"] == g.images[10]["B02"] and g.band_files["B05"] == g.images[20]["B05"]
    assert g.band_files["B01"] == g.images[20]["B01"]  # finest resolution wins
    assert p.boa_add_offset["B12"] == -1000.0 and p.boa_quantification_value == 10000.0
    assert open_l2a(l2a).granules[0].images == g.images


def _img(l2a: Path, pattern: str) -> Path:
    return next(l2a.glob(f"GRANULE/*/IMG_DATA/{pattern}"))


def test_missing_listed_file(l2a: Path) -> None:
    scl = _img(l2a, "R20m/*_SCL_20m.tif")
    scl.unlink()
    with pytest.raises(IncompleteProductError) as exc:
        verify_l2a(l2a)
    one_line(exc.value, "SCL", str(scl))


def test_empty_file(l2a: Path) -> None:
    f = _img(l2a, "R60m/*_B09_60m.tif")
    f.write_bytes(b"")
    with pytest.raises(IncompleteProductError) as exc:
        verify_l2a(l2a)
    one_line(exc.value, str(f), "empty")


def test_corrupt_file(l2a: Path) -> None:
    f = _img(l2a, "R10m/*_B08_10m.tif")
    f.write_bytes(f.read_bytes()[:200])
    with pytest.raises(IncompleteProductError) as exc:
        verify_l2a(l2a)
    one_line(exc.value, str(f), "unreadable")
    verify_l2a(l2a, read_check=False)  # size-only check does not decode


def test_resolution_subset(l2a: Path) -> None:
    r10 = next(l2a.glob("GRANULE/*/IMG_DATA/R10m"))
    shutil.rmtree(r10)
    with pytest.raises(IncompleteProductError) as exc:
        verify_l2a(l2a)
    one_line(exc.value, "R10m")
    assert verify_l2a(l2a, resolutions=(20, 60)).granules[0].images.keys() == {20, 60}


def test_required_band_not_listed(l2a: Path) -> None:
    """Metadata that simply omits a required image is still incomplete."""
    mtd = l2a / "MTD_MSIL2A.xml"
    mtd.write_text(re.sub(r"\s*<IMAGE_FILE>[^<]*_AOT_60m</IMAGE_FILE>", "", mtd.read_text()))
    with pytest.raises(IncompleteProductError) as exc:
        verify_l2a(l2a)
    one_line(exc.value, "no AOT image at 60 m", "R60m")


def test_empty_img_data(l2a: Path) -> None:
    """Sen2Cor's 'exit 0 with empty IMG_DATA'."""
    img = next(l2a.glob("GRANULE/*/IMG_DATA"))
    shutil.rmtree(img)
    img.mkdir()
    with pytest.raises(IncompleteProductError) as exc:
        verify_l2a(l2a)
    one_line(exc.value, "missing")


@pytest.mark.parametrize("what", ["mtd", "tile", "granule", "truncated"])
def test_broken_metadata_is_incomplete(l2a: Path, what: str) -> None:
    if what == "mtd":
        (l2a / "MTD_MSIL2A.xml").unlink()
    elif what == "tile":
        next(l2a.glob("GRANULE/*/MTD_TL.xml")).unlink()
    elif what == "granule":
        shutil.rmtree(l2a / "GRANULE")
    else:
        mtd = l2a / "MTD_MSIL2A.xml"
        mtd.write_bytes(mtd.read_bytes()[:5000])
    with pytest.raises(IncompleteProductError) as exc:
        verify_l2a(l2a)
    one_line(exc.value, str(l2a))


def test_l1c_is_not_a_verified_l2a() -> None:
    with pytest.raises(IncompleteProductError) as exc:
        verify_l2a(SAMPLE)
    one_line(exc.value, "expected L2A")


def test_bad_resolution_argument(l2a: Path) -> None:
    with pytest.raises(ValueError):
        verify_l2a(l2a, resolutions=(30,))


def test_repair_gcs_layout(sample_copy: Path) -> None:
    granule = next(sample_copy.glob("GRANULE/*"))
    datastrip = next(sample_copy.glob("DATASTRIP/*"))
    shutil.rmtree(granule / "AUX_DATA")
    shutil.rmtree(datastrip / "QI_DATA")
    created = repair_gcs_layout(sample_copy)
    assert created == [
        sample_copy / "AUX_DATA", sample_copy / "HTML", granule / "AUX_DATA", datastrip / "QI_DATA",
    ]
    assert all(p.is_dir() for p in created)
    assert repair_gcs_layout(sample_copy) == []
    open_l1c(sample_copy)  # still a valid product


def test_repair_refuses_non_product(tmp_path: Path) -> None:
    with pytest.raises(UnknownLayoutError):
        repair_gcs_layout(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_truncated_jp2_detected(l2a: Path, tmp_path: Path) -> None:
    """Sen2Cor writes JPEG2000: a JP2 cut short opens but fails on decoding its last tile."""
    mtd = l2a / "MTD_MSIL2A.xml"
    mtd.write_text(mtd.read_text().replace('imageFormat="GeoTIFF"', 'imageFormat="JPEG2000"'))
    tif = _img(l2a, "R10m/*_B02_10m.tif")
    jp2 = tif.with_suffix(".jp2")
    rng = np.random.default_rng(0)
    with rasterio.open(jp2, "w", driver="JP2OpenJPEG", width=512, height=512, count=1, dtype="uint16",
                       crs="EPSG:32633", transform=Affine(10.0, 0.0, 499980.0, 0.0, -10.0, 8900040.0),
                       QUALITY=100, REVERSIBLE="YES", BLOCKXSIZE=256, BLOCKYSIZE=256) as ds:
        ds.write(rng.integers(0, 5000, (1, 512, 512), dtype=np.uint16))
    tif.unlink()
    p = verify_l2a(l2a)
    assert p.granules[0].images[10]["B02"] == jp2  # extension chosen from imageFormat
    data = jp2.read_bytes()
    jp2.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(IncompleteProductError) as exc:
        verify_l2a(l2a)
    one_line(exc.value, str(jp2), "unreadable")
