"""Cloud-Optimized GeoTIFF writing and the layout checks that make a file one.

Written with GDAL's COG driver (tiles, overviews, IFDs before data, smallest overview data first),
and checked here without the separate ``rio-cogeo`` package: the same structural rules GDAL's
``validate_cloud_optimized_geotiff.py`` enforces, read through rasterio's TIFF metadata domain
(``IFD_OFFSET``, ``BLOCK_OFFSET_x_y``) and the ``LAYOUT=COG`` marker GDAL >= 3.1 reports.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from s2l2a.errors import S2L2AError

BLOCKSIZE = 256


class CogError(S2L2AError):
    """A file that should be a Cloud-Optimized GeoTIFF is not one (or is unreadable)."""


def overview_count(width: int, height: int, blocksize: int = BLOCKSIZE) -> int:
    """Levels down to about one block (at least one for anything wider than 32 px, so viewers zoom out fast)."""
    side = max(width, height)
    if side <= 32:
        return 0
    return max(1, math.ceil(math.log2(side / blocksize)))


def _cog_options(width: int, height: int, resampling: str, blocksize: int, threads: int = 1) -> dict[str, Any]:
    """GDAL COG creation options. ``threads``: DEFLATE compresses tile by tile, so GDAL spreads it over
    that many threads (NUM_THREADS), the same bytes in half the time on 2 cores (a 10 m float NDVI:
    9.4 -> 5.0 s); 1 keeps a shared node's job on its own core."""
    options: dict[str, Any] = dict(BLOCKSIZE=blocksize, COMPRESS="DEFLATE", PREDICTOR="YES",
                                   OVERVIEW_RESAMPLING=resampling, BIGTIFF="IF_SAFER",
                                   NUM_THREADS=str(max(1, int(threads))))
    n_ov = overview_count(width, height, blocksize)
    if n_ov:
        options["OVERVIEW_COUNT"] = n_ov
    else:
        options["OVERVIEWS"] = "NONE"
    return options


def write_cog(path: Path, data: np.ndarray, *, transform: Any, crs: Any, nodata: float | int | None,
              tags: Mapping[str, str] | None = None, description: str | None = None,
              resampling: str = "AVERAGE", blocksize: int = BLOCKSIZE, threads: int = 1) -> Path:
    """Write an in-memory array (one band or bands-first) as a COG (DEFLATE, predictor, overviews)."""
    import rasterio

    arr = data[np.newaxis] if data.ndim == 2 else data
    count, height, width = arr.shape
    with rasterio.open(path, "w", driver="COG", width=width, height=height, count=count, dtype=arr.dtype,
                       crs=crs, transform=transform, nodata=nodata,
                       **_cog_options(width, height, resampling, blocksize, threads)) as ds:
        ds.write(arr)
        if tags:
            ds.update_tags(**{k: str(v) for k, v in tags.items()})
        if description:
            for b in range(1, count + 1):
                ds.set_band_description(b, description)
    return path


def open_strip_writer(path: Path, *, width: int, height: int, dtype: str, transform: Any, crs: Any,
                      nodata: float | int | None) -> Any:
    """A tiled, uncompressed scratch GeoTIFF to fill window by window (whole tiles never sit in memory);
    :func:`scratch_to_cog` turns it into the COG. Close it (set tags first) before converting."""
    import rasterio

    return rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=1, dtype=dtype, crs=crs,
                         transform=transform, nodata=nodata, tiled=True, blockxsize=BLOCKSIZE,
                         blockysize=BLOCKSIZE, BIGTIFF="IF_SAFER")


def scratch_to_cog(scratch: Path, path: Path, *, resampling: str = "AVERAGE", blocksize: int = BLOCKSIZE,
                   threads: int = 1) -> Path:
    """Copy a finished scratch GeoTIFF to a COG (GDAL streams it: CreateCopy), then delete the scratch."""
    import rasterio
    import rasterio.shutil

    with rasterio.open(scratch) as src:
        options = _cog_options(src.width, src.height, resampling, blocksize, threads)
    rasterio.shutil.copy(scratch, path, driver="COG", **options)
    scratch.unlink()
    return path


def _int_item(ds: Any, key: str) -> int | None:
    v = ds.get_tag_item(key, "TIFF", bidx=1)
    return int(v) if v not in (None, "") else None


def cog_problems(path: Path | str) -> list[str]:
    """Why ``path`` is not a valid COG (empty list: it is), after GDAL's layout rules."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a damaged file warns (no geotransform) before it fails
        return _cog_problems(path)


def _cog_problems(path: Path | str) -> list[str]:
    import rasterio

    problems: list[str] = []
    try:
        ds = rasterio.open(path)
    except Exception as e:  # noqa: BLE001 - any GDAL failure means "not a readable COG"
        return [f"unreadable: {e}"]
    with ds:
        if ds.driver != "GTiff":
            return [f"driver is {ds.driver}, not GTiff"]
        width, height = ds.width, ds.height
        if not ds.profile.get("tiled", False) and max(width, height) > 512:
            problems.append("larger than 512 px but not tiled")
        overviews = ds.overviews(1)
        if max(width, height) > 512 and not overviews:
            problems.append("no overviews on an image larger than 512 px")
        if ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") != "COG":
            problems.append("IMAGE_STRUCTURE LAYOUT is not COG (no COG ghost header)")
        main_ifd = _int_item(ds, "IFD_OFFSET")
        main_data = _int_item(ds, "BLOCK_OFFSET_0_0")
    ifds = [main_ifd]
    data_offsets = [main_data]
    for level in range(len(overviews)):
        with rasterio.open(path, overview_level=level) as ov:
            ifds.append(_int_item(ov, "IFD_OFFSET"))
            data_offsets.append(_int_item(ov, "BLOCK_OFFSET_0_0"))
    if any(v is None for v in ifds + data_offsets):
        problems.append("cannot read IFD/block offsets")
        return problems
    if ifds[0] not in (8, 16) and ifds[0] > 16384:
        problems.append(f"main IFD at byte {ifds[0]}, not at the start of the file")
    if ifds != sorted(ifds):
        problems.append("IFDs of the overviews are not after the main IFD in increasing order")
    if max(ifds) > min(data_offsets):  # type: ignore[type-var]
        problems.append("image data before the last IFD (IFDs are not all at the start)")
    if len(data_offsets) > 1 and data_offsets[1:] != sorted(data_offsets[1:], reverse=True):
        problems.append("overview data not ordered from the smallest overview to the largest")
    if len(data_offsets) > 1 and data_offsets[0] < data_offsets[1]:  # type: ignore[operator]
        problems.append("full-resolution data before the overview data")
    return problems


def check_cog(path: Path | str) -> None:
    """Raise CogError naming the first layout problem; also decode the last block (truncation)."""
    import rasterio
    from rasterio.windows import Window

    problems = cog_problems(path)
    if problems:
        raise CogError(f"not a valid Cloud-Optimized GeoTIFF: {problems[0]}", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = rasterio.open(path)
        with ds:
            ds.read(1, window=Window(ds.width - 1, ds.height - 1, 1, 1))
            for level in ds.overviews(1)[-1:]:
                ds.read(1, out_shape=(max(1, ds.height // level), max(1, ds.width // level)))
    except Exception as e:  # noqa: BLE001
        raise CogError(f"unreadable: {e}", path) from None
