"""The built-in processor's output formats: one declaration each (name, file suffix, the
``imageFormat`` written into MTD_MSIL2A.xml, spellings accepted, GDAL creation options).

Light on purpose (no numpy, no GDAL): the campaign settings check ``[builtin] output_format``
against :func:`format_names` without importing the processor. ``writer.py`` writes with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OutputFormat:
    """One raster format the built-in processor writes."""

    name: str                     # as in s2l2a.toml: output_format = "COG"
    suffix: str
    image_format: str             # the imageFormat attribute of MTD_MSIL2A.xml's Granule element
    aliases: tuple[str, ...]      # other spellings accepted (upper case)
    summary: str

    def profile(self, height: int, width: int, *, categorical: bool, threads: int) -> dict[str, Any]:
        """GDAL creation options (driver included) for one raster."""
        if self.name == "COG":  # ZSTD 1 + predictor: ~0.7 CPU-s per 10 m band (DESIGN "Speed facts")
            return dict(driver="COG", compress="ZSTD", level=1, predictor="NO" if categorical else "YES",
                        blocksize=512, overview_resampling="NEAREST" if categorical else "AVERAGE",
                        num_threads=str(max(1, threads)), bigtiff="IF_SAFER")
        # lossless 5/3, ESA's 1024 px tiles and levels; the arithmetic-coding bypass (JPEG 2000 part 1,
        # every decoder reads it) costs ~22 % less encoding CPU for the same size. Threads: writer.py
        # (OPJ_NUM_THREADS; the driver has no such option)
        return dict(driver="JP2OpenJPEG", quality=100, reversible="YES", blockxsize=1024, blockysize=1024,
                    resolutions=_jp2_levels((height, width)), codeblock_style="BYPASS", codec="JP2")


def _jp2_levels(shape: tuple[int, int]) -> int:
    """Resolution levels like ESA's products: halve until the smallest side fits one 1024 px tile."""
    n, side = 1, min(shape)
    while side > 1024 and n < 6:
        side //= 2
        n += 1
    return max(n, 2) if min(shape) >= 64 else 1


OUTPUT_FORMATS: dict[str, OutputFormat] = {f.name: f for f in (
    OutputFormat("JP2", ".jp2", "JPEG2000", ("JPEG2000", "JPEG 2000", "JP2OPENJPEG"),
                 "lossless JPEG 2000 like ESA's products (default: opens in QGIS and GDAL's SENTINEL2 "
                 "driver, SNAP, sen2r)"),
    OutputFormat("COG", ".tif", "GEOTIFF", ("GTIFF", "TIF", "TIFF", "GEOTIFF"),
                 "Cloud-Optimized GeoTIFF, ZSTD level 1 + predictor (analysis-ready; ~20 % less conversion "
                 "CPU, ~40 % larger; GDAL's SENTINEL2 driver cannot read it)"),
)}
#: what a built-in L2A is written as unless ``[builtin] output_format`` says otherwise: the layout every
#: reader of ESA's L2A opens (docs/outputs.md "Opening the outputs")
DEFAULT_FORMAT = "JP2"


def format_names() -> tuple[str, ...]:
    """What ``[builtin] output_format`` accepts."""
    return tuple(OUTPUT_FORMATS)


def normalize_format(fmt: str | None) -> str:
    """"COG" (also "GTiff", "tif") or "JP2" (also "JPEG2000", "jp2")."""
    f = (fmt or DEFAULT_FORMAT).strip().upper()
    for out in OUTPUT_FORMATS.values():
        if f == out.name or f in out.aliases:
            return out.name
    raise ValueError(f"unknown output format {fmt!r}: expected {' or '.join(OUTPUT_FORMATS)}")
