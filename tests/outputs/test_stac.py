"""STAC items and collection validate offline against the vendored schemas and load back.

Loaders used: pystac round-trip, rasterio reading every asset href, and odc-stac (test extra) both
raw and through the documented one-liner ``load_reflectance``, which must give the reflectance
computed by hand from the band files and the products' metadata.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio

from s2l2a.campaign.exports import write_campaign_stac
from s2l2a.outputs.derive import DeriveSpec, derive_product
from s2l2a.outputs.stac import (
    ITEM_EXTENSIONS,
    StacValidationError,
    build_collection,
    build_item,
    load_reflectance,
    sha256_multihash,
    validate,
)
from s2l2a.safe import open_l2a

from .conftest import L2A_0214, L2A_0500


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stac")
    items = []
    for product in (L2A_0214, L2A_0500):
        r = derive_product(product, root / "derived", DeriveSpec(clear_classes=(4, 5, 6)))
        items.append(build_item(product, r.out_dir, l1c_path=root / "L1C" / product.name.replace("L2A", "L1C")))
    coll = build_collection(items, "test-campaign", "two products")
    coll.normalize_hrefs(str(root / "stac"))
    for obj in (coll, *items):
        validate(obj)
    coll.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return root / "stac" / "collection.json"


def test_files_on_disk_validate(catalog: Path) -> None:
    files = sorted(catalog.parent.glob("*/*.json"))
    assert len(files) == 2
    assert validate(json.loads(catalog.read_text()))[0].endswith("collection.json")
    for f in files:
        d = json.loads(f.read_text())
        assert validate(d) == ["https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/item.json",
                               *ITEM_EXTENSIONS]
        assert d["properties"]["proj:epsg"] == 32629 and d["properties"]["platform"] == "sentinel-2a"
        assert d["properties"]["s2:processing_baseline"] in ("02.14", "05.00")


def test_pystac_round_trip(catalog: Path) -> None:
    """pystac reads the files back (migrating the extensions to its own newer versions on the way)."""
    coll = pystac.Collection.from_file(str(catalog))
    items = list(coll.get_items())
    assert sorted(i.id for i in items) == sorted(p.name.removesuffix(".SAFE") for p in (L2A_0214, L2A_0500))
    for item in items:
        assert {"B02", "B04", "B08", "B8A", "SCL", "AOT", "WVP", "TCI", "derived_ndvi", "derived_scl",
                "derived_clear", "thumbnail", "quicklook_scl"} <= set(item.assets)
        assert item.assets["B04"].extra_fields["eo:bands"][0]["common_name"] == "red"
        assert "ndvi = (B08 - B04) / (B08 + B04)" in (item.assets["derived_ndvi"].title or "")
        src = [link for link in item.links if link.rel == "derived_from"]
        assert len(src) == 1 and "MSIL1C" in src[0].href
        assert coll.extent.spatial.bboxes[0][0] <= item.bbox[0]


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # the PNG thumbnails
def test_every_asset_href_opens_with_rasterio_on_the_declared_grid(catalog: Path) -> None:
    coll = pystac.Collection.from_file(str(catalog))
    n = 0
    for item in coll.get_items():
        for key, asset in item.assets.items():
            with rasterio.open(asset.get_absolute_href()) as ds:
                assert ds.width > 0
                if "proj:shape" in asset.extra_fields:
                    assert [ds.height, ds.width] == asset.extra_fields["proj:shape"], key
                    assert list(ds.transform)[:6] == asset.extra_fields["proj:transform"], key
                    epsg = item.properties.get("proj:epsg") or item.properties["proj:code"]
                    assert f"{ds.crs.to_epsg()}" in f"{epsg}"
                n += 1
    assert n >= 2 * 20


def test_broken_items_are_refused(catalog: Path) -> None:
    item = json.loads(next(catalog.parent.glob("*/*.json")).read_text())
    cases = [("properties", "eo:cloud_cover", 150, "maximum"), ("properties", "proj:epsg", "32629", "integer"),
             ("properties", "datetime", None, "valid")]
    for section, key, value, words in cases:
        bad = copy.deepcopy(item)
        bad[section][key] = value
        with pytest.raises(StacValidationError, match=words):
            validate(bad)
    for key, value, words in (("data_type", "uint17", "raster/v1.0.0"), ("scale", "0.0001", "raster/v1.0.0")):
        bad = copy.deepcopy(item)
        bad["assets"]["B04"]["raster:bands"][0][key] = value
        with pytest.raises(StacValidationError, match=words):
            validate(bad)
    bad = copy.deepcopy(item)
    bad["assets"]["B04"]["file:checksum"] = "not hex"
    with pytest.raises(StacValidationError, match="file:checksum"):
        validate(bad)
    bad = copy.deepcopy(item)
    bad["properties"]["processing:software"] = {"sen2cor": 2.11}
    with pytest.raises(StacValidationError):
        validate(bad)
    bad = copy.deepcopy(item)
    bad["stac_extensions"].append("https://stac-extensions.github.io/sat/v1.0.0/schema.json")
    with pytest.raises(StacValidationError, match="no vendored schema"):
        validate(bad)
    bad = copy.deepcopy(item)
    del bad["geometry"]
    with pytest.raises(StacValidationError):
        validate(bad)


def test_item_from_derived_outputs_alone_after_keep_derived(tmp_path: Path) -> None:
    r = derive_product(L2A_0500, tmp_path, DeriveSpec())
    item = build_item(tmp_path / "gone.SAFE", r.out_dir)
    validate(json.loads(json.dumps(item.to_dict(include_self_link=False))) | {"links": []})
    assert item.id == r.product and "B04" not in item.assets and "derived_ndvi" in item.assets
    assert item.geometry == r.footprint


def test_campaign_stac_command_path(campaign: Path) -> None:
    out = write_campaign_stac(campaign)
    for f in out.parent.glob("*/*.json"):
        validate(json.loads(f.read_text()))
    coll = pystac.Collection.from_file(str(out))
    items = list(coll.get_items())
    assert len(items) == 2  # the two done jobs; the failed and the queued one have no output
    assert all(i.properties["s2l2a:processor"] == "sen2cor" for i in items)
    with rasterio.open(items[0].assets["B04"].get_absolute_href()) as ds:
        assert np.isfinite(ds.read(1)).all()


def test_raster_file_and_processing_fields_describe_each_product(catalog: Path) -> None:
    """raster:bands carry each product's own reflectance rule; checksums and sizes are the files';
    eo:cloud_cover is counted on the product's SCL (classes 8, 9, 10 over the pixels with data)."""
    for f in sorted(catalog.parent.glob("*/*.json")):
        item = pystac.Item.from_file(str(f))
        product = open_l2a(L2A_0214 if "_N0214_" in item.id else L2A_0500)
        b04 = item.assets["B04"]
        rb = b04.extra_fields["raster:bands"]
        offset = product.boa_add_offset["B04"]
        href = Path(b04.get_absolute_href())
        with rasterio.open(href) as ds:  # the test crops are decimated: 100 m pixels
            pixel = ds.res[0]
        assert rb == [{"data_type": "uint16", "spatial_resolution": pytest.approx(pixel), "nodata": 0,
                       "scale": 1e-4, "offset": offset / 1e4}]
        assert b04.extra_fields["file:size"] == href.stat().st_size
        assert b04.extra_fields["file:checksum"] == sha256_multihash(href)
        assert sha256_multihash(href)[:4] == "1220" and len(sha256_multihash(href)) == 68
        scl = item.assets["SCL"]
        assert scl.extra_fields["raster:bands"][0]["data_type"] == "uint8"
        assert {"values": [9], "summary": "cloud, high probability"} in scl.extra_fields["file:values"]
        with rasterio.open(scl.get_absolute_href()) as ds:
            classes = ds.read(1)
        valid = classes > 0
        want = 100.0 * np.isin(classes[valid], (8, 9, 10)).sum() / valid.sum()
        assert item.properties["eo:cloud_cover"] == pytest.approx(want, abs=0.01)
        wvp = item.assets["WVP"].extra_fields["raster:bands"][0]
        assert wvp["scale"] == pytest.approx(1.0 / product.wvp_quantification_value) and wvp["unit"] == "cm"
        assert item.properties["processing:level"] == "L2A"
        assert "s2l2a" in item.properties["processing:software"]
        assert item.properties["processing:lineage"].startswith("L1C S2A_MSIL1C_20200219T112111")
        nd = item.assets["derived_ndvi"].extra_fields["raster:bands"][0]
        assert nd["data_type"] == "float32" and nd["nodata"] == "nan"


def _reflectance_by_hand(product_dir: Path, band: str) -> np.ndarray:
    product = open_l2a(product_dir)
    res = 10 if band in ("B02", "B03", "B04", "B08") else 20
    with rasterio.open(product.granules[0].images[res][band]) as ds:
        dn = ds.read(1).astype(np.float64)
    refl = (dn + product.boa_add_offset[band]) / product.boa_quantification_value
    return np.where(dn > 0, refl, np.nan)


def test_load_reflectance_one_liner_gives_the_hand_computed_reflectance(catalog: Path) -> None:
    pytest.importorskip("odc.stac", reason="odc-stac not installed (it is in the test extra: pip install -e .[test])")
    # the documented one-liner (docs/outputs.md), on each product's own grid (no resampling)
    cube = load_reflectance(catalog, ["B04", "B08"], groupby="id")
    assert cube.sizes["time"] == 2 and cube["B04"].dtype == np.float32
    assert sorted(cube["id"].values) == sorted(p.name.removesuffix(".SAFE") for p in (L2A_0214, L2A_0500))
    for t, item_id in enumerate(cube["id"].values):
        product = L2A_0214 if "_N0214_" in str(item_id) else L2A_0500
        for band in ("B04", "B08"):
            want = _reflectance_by_hand(product, band)
            got = cube[band].isel(time=t).values.astype(np.float64)
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, equal_nan=True)
    # the two encodings of the same acquisition (offset 0 and -1000) give the same reflectance
    np.testing.assert_allclose(cube["B04"].isel(time=0), cube["B04"].isel(time=1), atol=1e-6, equal_nan=True)
    merged = load_reflectance(catalog, ["B04"])  # solar_day: one slice for the one overpass
    assert merged.sizes["time"] == 1 and np.isfinite(merged["B04"].values).mean() > 0.9


def test_odc_stac_loads_the_items(catalog: Path) -> None:
    odc_stac = pytest.importorskip("odc.stac", reason="odc-stac not installed (it is in the test extra: pip install -e .[test])")
    items = list(pystac.Collection.from_file(str(catalog)).get_items())
    ds = odc_stac.load(items, bands=["B04", "derived_ndvi"], groupby="id", resolution=100)
    assert ds.sizes["time"] == 2  # the same acquisition in its two encodings
    ndvi = ds["derived_ndvi"].values.astype("float64")
    assert np.isfinite(ndvi).mean() > 0.9
    np.testing.assert_allclose(ndvi[0], ndvi[1], atol=1e-6, equal_nan=True)  # same reflectance, same NDVI
    b04 = ds["B04"].values.astype("float64")
    assert (np.abs(b04[1] - b04[0] - 1000)[b04[0] > 0] < 1e-9).all()  # DN + 1000 in the 05.00 encoding


def test_load_reflectance_refuses_what_is_not_a_reflectance_band(catalog: Path) -> None:
    pytest.importorskip("odc.stac", reason="odc-stac is in the test extra")
    from s2l2a.errors import ConfigError, S2L2AError

    for bands in (["TCI"], ["B4"], [".."], ["derived_ndvi"]):  # 3 bands; no such asset; no scale
        with pytest.raises(S2L2AError, match="raster:bands scale"):
            load_reflectance(catalog, bands)
    with pytest.raises(ConfigError, match="groupby"):
        load_reflectance(catalog, ["B04"], groupby="time")
