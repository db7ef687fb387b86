"""The elevation model on a granule's grid: a user raster or the tiles ``s2l2a dem`` prepared.

``[builtin] dem`` names either one raster GDAL reads (any CRS; e.g. a mosaic) or the directory
``s2l2a dem`` wrote (``<campaign>/aux/dem``, with its ``dem.json`` listing the cached SRTM or
Copernicus tiles; tiles absent on the server are sea, height 0). Either is reprojected once per
granule onto the 20 m grid with bilinear resampling (rasterio), and the 60 m grid is its 3 x 3 block
mean. Voids (no-data inside the raster) are filled from the nearest valid height and counted; pixels
outside the raster's extent are sea level and counted too: both shares go to the report.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.warp import Resampling, reproject

from .geometry import fill_nan_nearest


class DemError(ValueError):
    """The DEM setting names nothing usable (message names the path)."""


@dataclass
class DemOnGrid:
    """Heights (m, float32) on one grid and where they came from."""

    height_m: np.ndarray
    source: str
    void_percent: float
    outside_percent: float


def dem_sources(path: Path | str) -> tuple[list[str], str]:
    """(GDAL paths to read, description) for a raster file or an ``s2l2a dem`` directory."""
    from s2l2a.auxdata.dem import MANIFEST

    p = Path(path).expanduser()
    if p.is_dir():
        manifest = p / MANIFEST
        if not manifest.is_file():
            raise DemError(f"{p}: a DEM directory needs the {MANIFEST} that 's2l2a dem' writes")
        from s2l2a.auxdata.dem import DemLayout, raster_path
        from s2l2a.auxdata.dem_tiles import parse_tile

        layout = DemLayout.load(p)
        files = []
        for name, f in sorted(layout.tiles.items()):
            if f is None:
                continue  # absent on the server: sea
            if not Path(f).exists():
                raise DemError(f"{p}: DEM tile file missing: {f}")
            files.append(raster_path(parse_tile(name), Path(f)))
        return files, f"{layout.source} tiles listed in {manifest}"
    if not p.is_file():
        raise DemError(f"{p}: DEM not found (give a raster or the directory 's2l2a dem' made)")
    return [str(p)], str(p)


def read_dem(path: Path | str, shape: tuple[int, int], transform: Any, crs: Any,
             block_rows: int = 1024) -> DemOnGrid:
    """Reproject the DEM onto ``shape``/``transform``/``crs`` (bilinear), voids filled.

    Done in blocks of rows, so the temporaries stay a few MB whatever the grid; GDAL's block cache is
    bounded to 64 MB (a DEM is read once).
    """
    files, desc = dem_sources(path)
    out = np.full(shape, np.nan, np.float32)
    void = np.zeros(shape, bool)
    outside = np.ones(shape, bool)
    with rasterio.Env(GDAL_CACHEMAX=64):
        for f in files:
            try:
                with rasterio.open(f) as ds:
                    for r0 in range(0, shape[0], block_rows):
                        r1 = min(shape[0], r0 + block_rows)
                        bt = transform @ Affine.translation(0, r0)
                        dest = np.full((r1 - r0, shape[1]), np.nan, np.float32)
                        reproject(source=rasterio.band(ds, 1), destination=dest, src_transform=ds.transform,
                                  src_crs=ds.crs, src_nodata=ds.nodata, dst_transform=bt, dst_crs=crs,
                                  dst_nodata=np.nan, resampling=Resampling.bilinear)
                        # where the raster reaches at all (its voids included)
                        foot = np.zeros((r1 - r0, shape[1]), np.uint8)
                        reproject(source=np.ones((ds.height, ds.width), np.uint8), destination=foot,
                                  src_transform=ds.transform, src_crs=ds.crs, dst_transform=bt, dst_crs=crs,
                                  dst_nodata=0, resampling=Resampling.nearest)
                        blk = out[r0:r1]
                        take = np.isnan(blk) & np.isfinite(dest)
                        blk[take] = dest[take]
                        outside[r0:r1] &= foot == 0
            except rasterio.errors.RasterioIOError as exc:
                raise DemError(f"{f}: cannot read the DEM ({exc})") from None
    void = ~outside & np.isnan(out)
    n = max(1, out.size)
    void_pct = round(100.0 * void.sum() / n, 3)
    outside_pct = round(100.0 * outside.sum() / n, 3)
    out[outside] = 0.0  # outside every tile: sea
    if void.any():
        _fill_voids(out, void)
    return DemOnGrid(out, desc, void_pct, outside_pct)


def _fill_voids(out: np.ndarray, void: np.ndarray, factor: int = 8) -> None:
    """Fill voids from the nearest valid heights, found on an 8x coarser grid (bounded memory)."""
    ny, nx = out.shape
    cy, cx = -(-ny // factor), -(-nx // factor)
    pad = np.full((cy * factor, cx * factor), np.nan, np.float32)
    pad[:ny, :nx] = np.where(void, np.nan, out)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        coarse = np.nanmean(pad.reshape(cy, factor, cx, factor), axis=(1, 3))
    coarse = fill_nan_nearest(coarse, default=0.0)
    rows, cols = np.nonzero(void)
    out[rows, cols] = coarse[rows // factor, cols // factor].astype(np.float32)
