"""Writing output rasters: JPEG 2000 like ESA's or Cloud-Optimized GeoTIFF, each self-describing.

COG uses ZSTD level 1 + horizontal predictor; lossless JPEG 2000 (with the coding bypass) costs
about 2.8 times its encoding CPU on a 2048 px band with sensor-like noise, ~20 % more CPU for a whole
conversion (docs/benchmarks.md), and makes ~30-40 % smaller files; OpenJPEG encodes on ``threads``
cores through OPJ_NUM_THREADS. Both drivers are CreateCopy-only in GDAL, so rasterio
buffers the raster in memory until close; callers write one raster at a time.

What each raster holds (:mod:`.layers`: description, scale/offset, nodata, colours, class names) is
written inside a GeoTIFF; a JPEG 2000 file keeps ESA's plain codestream (TCI's sRGB colour box, no
palette box, no GDAL box) and gets the rest in a GDAL ``.aux.xml`` beside it, which GDAL, QGIS and
rasterio read and ESA's readers ignore. GDAL takes no colour table from an ``.aux.xml`` for JPEG
2000, and a palette box would make other decoders expand SCL into RGB: a JPEG 2000 SCL has its class
names but no colours (as ESA's). SCL's class names go to an ``.aux.xml`` in both formats (GeoTIFF has
no tag for them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import rasterio
from affine import Affine

from .formats import OUTPUT_FORMATS, normalize_format
from .layers import Layer, layer

#: file suffix and MTD_MSIL2A.xml imageFormat of each output format (declared in formats.py)
FORMATS = {name: f.suffix for name, f in OUTPUT_FORMATS.items()}
IMAGE_FORMAT_ATTR = {name: f.image_format for name, f in OUTPUT_FORMATS.items()}
__all__ = ["FORMATS", "IMAGE_FORMAT_ATTR", "normalize_format", "write_raster"]


def write_raster(path: Path, data: np.ndarray, transform: Affine, crs, fmt: str = "COG",
                 nodata: int | None = 0, categorical: bool = False, threads: int = 1,
                 key: str | None = None) -> Path:
    """Write a 2-D (one band) or 3-D (bands first) array; returns the path with its extension.

    ``key``: which L2A raster it is (B04, TCI, SCL, AOT, ...; :func:`.layers.layer`), described in it."""
    fmt = normalize_format(fmt)
    path = Path(path).with_suffix(FORMATS[fmt])
    arr = data if data.ndim == 3 else data[None]
    count, height, width = arr.shape
    profile = dict(width=width, height=height, count=count, dtype=arr.dtype.name, crs=crs,
                   transform=transform, nodata=nodata)
    profile.update(OUTPUT_FORMATS[fmt].profile(height, width, categorical=categorical, threads=threads))
    if fmt == "JP2" and nodata is not None:
        profile.pop("nodata")  # ESA's JP2 carry no nodata tag; 0 is documented as NODATA in the MTD
    info = layer(key) if key else None
    # GDAL's block cache defaults to 5 % of RAM and fills up while the COG overviews are built: bound it
    with rasterio.Env(GDAL_CACHEMAX=128), _opj_threads(threads if fmt == "JP2" else None), \
            _source(path, arr, profile) as (dst, create_copy):
        if create_copy is None:
            dst.write(arr)
        if info is not None and fmt != "JP2":
            _describe(dst, info)
        elif info is not None and info.colorinterp and "palette" not in info.colorinterp:
            from rasterio.enums import ColorInterp  # TCI: JPEG 2000's own sRGB colour box, as ESA's

            dst.colorinterp = [ColorInterp[c] for c in info.colorinterp]
        if create_copy is not None:
            create_copy()
    if info is not None and (fmt == "JP2" or info.categories):
        _write_pam(path, info, count, nodata, tiff=fmt != "JP2")
    return path


@contextmanager
def _source(path: Path, arr: np.ndarray, profile: dict) -> Iterator[tuple[Any, Any]]:
    """The dataset the raster is described on, and how it becomes the file.

    Both drivers are CreateCopy-only, so ``rasterio.open(path, "w")`` first copies the whole raster
    into a GDAL memory dataset (a full tile's TCI: 362 MB more). Wrapping the array itself in a
    memory dataset (rasterio's MemoryDataset, no copy) and calling CreateCopy on it writes the same
    file without that copy; rasterio versions without it take the buffered way. Yields (dataset,
    create_copy), create_copy None when the dataset is the buffered writer (written on close)."""
    try:
        from rasterio._io import MemoryDataset
        from rasterio.shutil import copy as create_copy
    except ImportError:  # pragma: no cover - older rasterio
        with rasterio.open(path, "w", **profile) as dst:
            yield dst, None
        return
    src = np.ascontiguousarray(arr)
    options = {k: v for k, v in profile.items()
               if k not in ("driver", "width", "height", "count", "dtype", "crs", "transform", "nodata")}
    with MemoryDataset(src, transform=profile["transform"], crs=profile["crs"], copy=False) as mem:
        if profile.get("nodata") is not None:
            mem.nodata = profile["nodata"]
        yield mem, lambda: create_copy(mem, str(path), driver=profile["driver"], **options)


class _opj_threads:
    """OpenJPEG reads its encoder's thread count from the environment (GDAL passes none)."""

    def __init__(self, threads: int | None) -> None:
        self.threads = threads
        self.before: str | None = None

    def __enter__(self) -> None:
        if self.threads:
            self.before = os.environ.get("OPJ_NUM_THREADS")
            if self.before is None:  # a user's own setting wins
                os.environ["OPJ_NUM_THREADS"] = str(max(1, self.threads))

    def __exit__(self, *exc: object) -> None:
        if self.threads and self.before is None:
            os.environ.pop("OPJ_NUM_THREADS", None)


def _describe(dst, info: Layer) -> None:
    """Band descriptions, scale/offset, units, colour interpretation and table, tags, in a GeoTIFF."""
    from rasterio.enums import ColorInterp

    for i in range(1, dst.count + 1):
        dst.set_band_description(i, info.descriptions[min(i, len(info.descriptions)) - 1])
        if info.tags:
            dst.update_tags(i, **info.tags)
    if info.scale is not None:
        dst.scales = (info.scale,) * dst.count
        dst.offsets = (info.offset or 0.0,) * dst.count
    if info.units:
        dst.units = (info.units,) * dst.count
    if info.colormap:
        dst.write_colormap(1, info.colormap)
    if info.colorinterp:
        dst.colorinterp = [ColorInterp[c] for c in info.colorinterp]


_PAM_INTERP = {"red": "Red", "green": "Green", "blue": "Blue", "palette": "Palette", "gray": "Gray"}


def _write_pam(path: Path, info: Layer, count: int, nodata: int | None, tiff: bool) -> Path:
    """The GDAL ``.aux.xml`` of a raster: everything of ``info`` for JPEG 2000, only the class names
    (what a GeoTIFF cannot hold) for GeoTIFF."""
    bands = []
    for i in range(1, count + 1):
        parts = []
        if not tiff:
            parts.append(f"<Description>{escape(info.descriptions[min(i, len(info.descriptions)) - 1])}</Description>")
            if nodata is not None:
                parts.append(f"<NoDataValue>{nodata}</NoDataValue>")
            if info.units:
                parts.append(f"<UnitType>{escape(info.units)}</UnitType>")
            if info.scale is not None:
                parts.append(f"<Offset>{info.offset or 0.0!r}</Offset><Scale>{info.scale!r}</Scale>")
            if info.colorinterp:
                parts.append(f"<ColorInterp>{_PAM_INTERP[info.colorinterp[min(i, len(info.colorinterp)) - 1]]}"
                             "</ColorInterp>")
        if info.categories and i == 1:
            parts.append("<CategoryNames>" + "".join(f"<Category>{escape(c)}</Category>" for c in info.categories)
                         + "</CategoryNames>")
        if info.colormap and i == 1 and not tiff:
            entries = [info.colormap.get(v, (0, 0, 0, 0)) for v in range(max(info.colormap) + 1)]
            parts.append("<ColorTable>" + "".join(f'<Entry c1="{r}" c2="{g}" c3="{b}" c4="{a}"/>'
                                                  for r, g, b, a in entries) + "</ColorTable>")
        if info.tags and not tiff:
            parts.append("<Metadata>" + "".join(f"<MDI key={quoteattr(k)}>{escape(v)}</MDI>"
                                                for k, v in info.tags.items()) + "</Metadata>")
        if parts:
            bands.append(f'  <PAMRasterBand band="{i}">\n    ' + "\n    ".join(parts) + "\n  </PAMRasterBand>")
    aux = Path(f"{path}.aux.xml")
    aux.write_text("<PAMDataset>\n" + "\n".join(bands) + "\n</PAMDataset>\n", encoding="utf-8")
    return aux
