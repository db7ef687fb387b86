"""The two real L1C products of the test data through the processor, as a campaign job would run it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
from lxml import etree

from s2l2a.campaign.failures import FailureClass
from s2l2a.processors import get_processor
from s2l2a.processors.base import JobSettings, ProcessingFailed
from s2l2a.safe import open_l1c, open_l2a, verify_l2a

from .synth import SAMPLE

B01_ONLY = Path(__file__).resolve().parents[1] / "data" / "builtin" / \
    "S2A_MSIL1C_20180101T105441_N0206_R051_T31TDH_20180101T124911"


@pytest.fixture(scope="module")
def sample_l2a(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("e2e")
    stage = tmp / "staging"
    proc = get_processor("builtin", {"output_format": "COG"})  # the default JP2: test_jp2_output_is_the_default
    result = proc.process(open_l1c(SAMPLE), stage, JobSettings(cores=2), tmp / "logs" / "job.log")
    return tmp, result


def test_sample_converts_and_verifies(sample_l2a) -> None:
    tmp, result = sample_l2a
    assert result.processor == "builtin" and result.processor_version.startswith("s2l2a-builtin ")
    assert re.fullmatch(r"S2A_MSIL2A_20180629T000241_N9999_R030_T56JMM_\d{8}T\d{6}\.SAFE", result.product_dir.name)
    assert result.product_dir.parent == tmp / "staging"
    product = verify_l2a(result.product_dir)
    g = product.granules[0]
    assert g.granule_id == "L2A_T56JMM_A015757_20180629T000241"
    assert set(g.images[10]) >= {"B02", "B03", "B04", "B08", "AOT", "WVP", "TCI"}
    assert set(g.images[20]) >= {"B01", "B8A", "B11", "B12", "SCL", "AOT", "WVP", "TCI"}
    assert "B09" in g.images[60] and "B10" not in g.images[60]
    # only the staging dir and the log were written
    assert sorted(p.name for p in tmp.iterdir()) == ["logs", "staging"]
    assert [p.name for p in (tmp / "staging").iterdir()] == [result.product_dir.name]


def test_sample_outputs_are_cogs_with_plausible_values(sample_l2a) -> None:
    _, result = sample_l2a
    g = open_l2a(result.product_dir).granules[0]
    with rasterio.open(g.images[10]["B04"]) as ds:
        assert ds.driver == "GTiff" and ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert ds.profile["compress"].lower() == "zstd" and ds.nodata == 0
        dn = ds.read(1)
    with rasterio.open(next(SAMPLE.glob("GRANULE/*/IMG_DATA/*_B04.jp2"))) as ds:
        l1c = ds.read(1)
    assert (dn[l1c == 0] == 0).all()  # no data stays no data
    with rasterio.open(g.images[10]["B08"]) as ds:  # and every band of the grid has the same no data
        assert ((dn == 0) == (ds.read(1) == 0)).all()
    assert (dn == 0).mean() - (l1c == 0).mean() < 0.05  # (the sample's other bands have a wider gap)
    boa = (dn[dn > 0].astype(float) - 1000) / 10000
    toa = l1c[(l1c > 0) & (dn > 0)] / 10000
    assert 0.0 < np.median(boa) < np.median(toa)  # red: path radiance removed on balance
    scl = rasterio.open(g.images[20]["SCL"]).read(1)
    assert set(np.unique(scl)) <= set(range(12)) and (scl == 4).mean() > 0.3  # mostly vegetated tile
    aot = rasterio.open(g.images[60]["AOT"]).read(1)
    assert 0 < np.median(aot[aot > 0]) / 1000 < 1.0


def test_sample_metadata(sample_l2a) -> None:
    _, result = sample_l2a
    root = etree.parse(str(result.product_dir / "MTD_MSIL2A.xml")).getroot()
    text = {etree.QName(e).localname: (e.text or "") for e in root.iter() if isinstance(e.tag, str)}
    assert text["PRODUCT_TYPE"] == "S2MSI2A" and text["PROCESSING_LEVEL"] == "Level-2A"
    assert text["PROCESSOR_NAME"] == "builtin" and text["PROCESSOR_VERSION"].startswith("s2l2a-builtin")
    assert text["PROCESSING_BASELINE"] == "99.99"
    offsets = [e for e in root.iter() if isinstance(e.tag, str) and etree.QName(e).localname == "BOA_ADD_OFFSET"]
    assert len(offsets) == 13 and {e.text for e in offsets} == {"-1000"}
    l2a = open_l2a(result.product_dir)
    assert l2a.boa_quantification_value == 10000 and l2a.aot_quantification_value == 1000


def test_jp2_output_is_the_default(tmp_path: Path) -> None:
    proc = get_processor("builtin", {})  # ESA's layout: what GDAL's SENTINEL2 driver and QGIS open
    result = proc.process(open_l1c(SAMPLE), tmp_path / "s", JobSettings(cores=2), tmp_path / "log")
    product = verify_l2a(result.product_dir)
    p = product.granules[0].images[10]["B02"]
    assert p.suffix == ".jp2"
    with rasterio.open(p) as ds:
        assert ds.driver == "JP2OpenJPEG"


def test_partial_product_refused_by_default(tmp_path: Path) -> None:
    product = open_l1c(B01_ONLY, require_bands=False)
    with pytest.raises(ProcessingFailed) as err:
        get_processor("builtin", {}).process(product, tmp_path / "s", JobSettings(), tmp_path / "log")
    assert err.value.failure_class == FailureClass.BAD_INPUT and "B02" in str(err.value)
    assert not list((tmp_path / "s").glob("*.SAFE"))


def test_partial_product_converted_as_far_as_present(tmp_path: Path) -> None:
    product = open_l1c(B01_ONLY, require_bands=False)
    result = get_processor("builtin", {"allow_partial": True}).process(
        product, tmp_path / "s", JobSettings(cores=2), tmp_path / "log")
    assert result.details["missing_bands"][:2] == ["B02", "B03"] and result.details["resolutions"] == [60]
    assert result.details["aot_source"] == "default"
    l2a = open_l2a(result.product_dir)  # verify_l2a needs all resolutions: not for a partial product
    imgs = l2a.granules[0].images
    assert set(imgs) == {60} and {"B01", "AOT", "WVP", "SCL"} <= set(imgs[60])
    with rasterio.open(imgs[60]["B01"]) as ds:
        dn = ds.read(1)
        assert ds.shape == (1830, 1830) and ds.crs.to_epsg() == 32631
    with rasterio.open(next(B01_ONLY.glob("GRANULE/*/IMG_DATA/*_B01.jp2"))) as ds:
        l1c = ds.read(1)
    assert ((dn == 0) == (l1c == 0)).all()
    valid = l1c > 0
    boa = (dn[valid].astype(float) - 1000) / 10000
    # B01 in January over France: BOA below TOA (Rayleigh path removed), still a reflectance
    assert np.median(boa) < np.median(l1c[valid] / 10000) and -0.05 < np.median(boa) < 1.0


def test_resolution_20_like_sen2cor(tmp_path: Path) -> None:
    result = get_processor("builtin", {}).process(open_l1c(SAMPLE), tmp_path / "s",
                                                  JobSettings(cores=2, resolution=20), tmp_path / "log")
    product = verify_l2a(result.product_dir, resolutions=(20, 60))
    assert set(product.granules[0].images) == {20, 60}
    assert not (next(result.product_dir.glob("GRANULE/*")) / "IMG_DATA" / "R10m").exists()
