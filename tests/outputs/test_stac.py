"""STAC items and collection validate offline against the vendored schemas and load back.

Loader used: pystac round-trip plus rasterio reading every asset href (odc-stac/stackstac would
pull pandas + xarray into the environment; the odc-stac test runs only where it is installed, see
docs/outputs.md for how it was run once).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio

from s2l2a.outputs.derive import DeriveSpec, derive_product
from s2l2a.outputs.stac import (
    EO_URI,
    PROJ_URI,
    StacValidationError,
    build_collection,
    build_item,
    validate,
    write_campaign_stac,
)

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
        assert validate(d) == ["https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/item.json", EO_URI, PROJ_URI]
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
