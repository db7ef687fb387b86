"""The COG layout checks accept GDAL COG-driver output and reject the usual non-COG GeoTIFFs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from s2l2a.outputs.cog import CogError, check_cog, cog_problems, overview_count, write_cog

PROFILE = dict(driver="GTiff", width=600, height=600, count=1, dtype="uint16", crs="EPSG:32629",
               transform=Affine(10, 0, 300000, 0, -10, 2800000))
DATA = (np.arange(600 * 600, dtype=np.uint32) % 5000).astype(np.uint16).reshape(600, 600)


def test_written_cog_passes_and_has_overviews(tmp_path: Path) -> None:
    p = write_cog(tmp_path / "a.tif", DATA, transform=PROFILE["transform"], crs=PROFILE["crs"], nodata=0,
                  tags={"S2L2A_SOURCE_PRODUCT": "x"})
    assert cog_problems(p) == []
    check_cog(p)
    with rasterio.open(p) as ds:
        assert ds.overviews(1) == [2, 4] and ds.profile["tiled"] and ds.block_shapes[0] == (256, 256)
        np.testing.assert_array_equal(ds.read(1), DATA)


def test_compression_threads_write_the_same_bytes(tmp_path: Path) -> None:
    """NUM_THREADS only spreads the per-tile DEFLATE over cores: a many-tile float COG (with NaN
    no data) is byte-identical with 1 and 3 threads, so a job's cores change speed, never output."""
    rng = np.random.default_rng(3)
    data = rng.normal(0.4, 0.2, (1300, 1100)).astype(np.float32)
    data[:, :90] = np.nan
    kw = dict(transform=PROFILE["transform"], crs=PROFILE["crs"], nodata=float("nan"), description="ndvi")
    one = write_cog(tmp_path / "one.tif", data, threads=1, **kw)
    three = write_cog(tmp_path / "three.tif", data, threads=3, **kw)
    assert one.read_bytes() == three.read_bytes()
    assert cog_problems(three) == []


def test_striped_geotiff_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "striped.tif"
    with rasterio.open(p, "w", **PROFILE) as ds:
        ds.write(DATA, 1)
    problems = cog_problems(p)
    assert any("not tiled" in x for x in problems) and any("no overviews" in x for x in problems)
    with pytest.raises(CogError, match="not a valid Cloud-Optimized GeoTIFF"):
        check_cog(p)


def test_overviews_added_after_the_data_are_not_cog_layout(tmp_path: Path) -> None:
    """Tiled + overviews built afterwards (gdaladdo style): overview IFDs/data follow the full image."""
    p = tmp_path / "addo.tif"
    with rasterio.open(p, "w", tiled=True, blockxsize=256, blockysize=256, **PROFILE) as ds:
        ds.write(DATA, 1)
    with rasterio.open(p, "r+") as ds:
        ds.build_overviews([2, 4])
    problems = cog_problems(p)
    assert any("LAYOUT" in x for x in problems)
    assert any("IFD" in x or "before" in x or "order" in x for x in problems), problems


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    p = write_cog(tmp_path / "a.tif", DATA, transform=PROFILE["transform"], crs=PROFILE["crs"], nodata=0)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(CogError):
        check_cog(p)


def test_overview_count() -> None:
    assert overview_count(10980, 10980) == 6
    assert overview_count(600, 600) == 2
    assert overview_count(48, 48) == 1
    assert overview_count(16, 16) == 0
