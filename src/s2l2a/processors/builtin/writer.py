"""Writing output rasters: Cloud-Optimized GeoTIFF (default) or JPEG 2000 like ESA's.

COG uses ZSTD level 1 + horizontal predictor: ~0.7 CPU-s per 10 m band against ~20 s for lossless
JPEG 2000, at ~30 % larger files (see DESIGN "Speed facts"). Both drivers are CreateCopy-only in
GDAL, so rasterio buffers the raster in memory until close; callers write one raster at a time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from .formats import OUTPUT_FORMATS, normalize_format

#: file suffix and MTD_MSIL2A.xml imageFormat of each output format (declared in formats.py)
FORMATS = {name: f.suffix for name, f in OUTPUT_FORMATS.items()}
IMAGE_FORMAT_ATTR = {name: f.image_format for name, f in OUTPUT_FORMATS.items()}
__all__ = ["FORMATS", "IMAGE_FORMAT_ATTR", "normalize_format", "write_raster"]


def write_raster(path: Path, data: np.ndarray, transform: Affine, crs, fmt: str = "COG",
                 nodata: int | None = 0, categorical: bool = False, threads: int = 1) -> Path:
    """Write a 2-D (one band) or 3-D (bands first) array; returns the path with its extension."""
    fmt = normalize_format(fmt)
    path = Path(path).with_suffix(FORMATS[fmt])
    arr = data if data.ndim == 3 else data[None]
    count, height, width = arr.shape
    profile = dict(width=width, height=height, count=count, dtype=arr.dtype.name, crs=crs,
                   transform=transform, nodata=nodata)
    profile.update(OUTPUT_FORMATS[fmt].profile(height, width, categorical=categorical, threads=threads))
    if fmt == "JP2" and nodata is not None:
        profile.pop("nodata")  # ESA's JP2 carry no nodata tag; 0 is documented as NODATA in the MTD
    # GDAL's block cache defaults to 5 % of RAM and fills up while the COG overviews are built: bound it
    with rasterio.Env(GDAL_CACHEMAX=128), rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)
    return path
