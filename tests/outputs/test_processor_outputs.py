"""Derive on L2A products made by this project's own processors from the bundled real L1C sample.

The built-in processor writes BOA_ADD_OFFSET -1000 (as ESA since 04.00); the Sen2Cor stand-in writes
Sen2Cor's JPEG2000 layout without offsets (the sample is baseline 02.06). Both must give the
hand-computed NDVI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from s2l2a.outputs.derive import DeriveSpec, derive_product
from s2l2a.safe import open_l1c, open_l2a

from .conftest import REPO, SAMPLE_L1C


def _ndvi_by_hand(product: Path, offset: float) -> np.ndarray:
    images = open_l2a(product).granules[0].images[10]
    with rasterio.open(images["B08"]) as n, rasterio.open(images["B04"]) as r:
        nir, red = n.read(1).astype(np.float64), r.read(1).astype(np.float64)
    valid = (nir > 0) & (red > 0)
    rn, rr = (nir + offset) / 10000.0, (red + offset) / 10000.0
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (rn - rr) / (rn + rr)
    return np.where(valid & np.isfinite(out), out, np.nan)


@pytest.fixture(scope="module")
def builtin_l2a(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from s2l2a.processors import get_processor
    from s2l2a.processors.base import JobSettings

    tmp = tmp_path_factory.mktemp("builtin")
    result = get_processor("builtin", {}).process(open_l1c(SAMPLE_L1C), tmp / "staging", JobSettings(cores=1),
                                                  tmp / "job.log")
    return Path(result.product_dir)


def test_builtin_l2a_ndvi_uses_its_offset(builtin_l2a: Path, tmp_path: Path) -> None:
    product = open_l2a(builtin_l2a)
    assert product.boa_add_offset["B04"] == -1000.0
    r = derive_product(builtin_l2a, tmp_path, DeriveSpec(clear_classes=(4, 5, 6)))
    with rasterio.open(r.path("ndvi")) as ds:
        got = ds.read(1).astype(np.float64)
    want = _ndvi_by_hand(builtin_l2a, -1000.0)
    # derive also masks SCL class 0 (no data, resampled from 20 m): its NaNs are a superset of the hand ones
    assert not (np.isnan(want) & np.isfinite(got)).any()
    ok = np.isfinite(got)
    # float32 storage: 1e-6 absolute, relative 1e-7 where dark pixels (reflectance near 0) give |NDVI| >> 1
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-7, atol=1e-6)
    assert ok.mean() > 0.5 and (np.isfinite(want) & ~ok).mean() < 0.02
    raw = _ndvi_by_hand(builtin_l2a, 0.0)
    ok = np.isfinite(got) & np.isfinite(raw)
    assert np.abs(raw[ok] - got[ok]).mean() > 0.01


def test_sen2cor_standin_jp2_layout(tmp_path: Path) -> None:
    out = tmp_path / "l2a"
    out.mkdir()
    subprocess.run([sys.executable, str(REPO / "tests" / "standin" / "L2A_Process"), str(SAMPLE_L1C),
                    "--output_dir", str(out)], check=True, capture_output=True, timeout=120)
    l2a = next(out.glob("*.SAFE"))
    assert open_l2a(l2a).boa_add_offset["B04"] == 0.0
    r = derive_product(l2a, tmp_path / "derived", DeriveSpec(resolution=20))
    with rasterio.open(r.path("ndvi")) as ds:
        assert ds.res[0] > 0 and ds.tags()["S2L2A_BOA_ADD_OFFSET"] == "B08:0, B04:0"
    assert set(r.files) == {"ndvi", "SCL"} and set(r.quicklooks) == {"tci", "scl"}


def test_builtin_l2a_has_one_nodata_mask_per_grid(builtin_l2a: Path) -> None:
    """A pixel is no data (0) in every output of a resolution folder, SCL included, or in none: the
    decimated sample's B06/B07/B8A/B11 carry small values in the swath gap where the other bands are 0."""
    images = open_l2a(builtin_l2a).granules[0].images
    for res, files in images.items():
        masks = {}
        for key, path in files.items():
            with rasterio.open(path) as ds:
                masks[key] = (ds.read() == 0).all(axis=0)
        ref = masks["SCL"] if "SCL" in masks else masks["B02"]
        assert 0.2 < ref.mean() < 0.4  # the sample's swath gap
        for key, m in masks.items():
            assert (m == ref).all(), (res, key, int((m != ref).sum()))


def test_builtin_l2a_metadata_says_what_readers_of_esa_l2a_look_for(builtin_l2a: Path) -> None:
    """SCL class list (GDAL's category names), cloud cover and class shares counted on its own SCL,
    grid sizes as written, and the parameter files that ran (STAC/report provenance)."""
    from lxml import etree

    from s2l2a.outputs.provenance import read_provenance
    from s2l2a.safe.scl import MTD_NAMES

    root = etree.parse(str(builtin_l2a / "MTD_MSIL2A.xml")).getroot()
    texts = [e.text for e in root.iter("SCENE_CLASSIFICATION_TEXT")]
    assert texts == [MTD_NAMES[i][0] for i in range(12)]
    images = open_l2a(builtin_l2a).granules[0].images
    with rasterio.open(images[20]["SCL"]) as ds:
        scl = ds.read(1)
    valid = scl > 0
    cloudy = 100.0 * np.isin(scl[valid], (8, 9, 10)).sum() / valid.sum()
    assert float(next(root.iter("Cloud_Coverage_Assessment")).text) == pytest.approx(cloudy, abs=0.02)
    assert float(next(root.iter("NODATA_PIXEL_PERCENTAGE")).text) == pytest.approx(100 * (~valid).mean(), abs=0.02)
    assert open_l2a(builtin_l2a).cloud_cover == pytest.approx(cloudy, abs=0.02)
    tile = etree.parse(str(next(builtin_l2a.glob("GRANULE/*/MTD_TL.xml")))).getroot()
    for size in tile.iter("Size"):
        res = int(size.get("resolution"))
        with rasterio.open(images[res]["B02"]) as ds:
            assert (int(size.findtext("NROWS")), int(size.findtext("NCOLS"))) == ds.shape
    prov = read_provenance(builtin_l2a)
    assert prov.processor == "builtin" and prov.processor_version.startswith("s2l2a-builtin")
    assert set(prov.gipp_sha256) == {"GIP_L2A_SC", "GIP_L2A_AC"} and "GDAL" in prov.software
