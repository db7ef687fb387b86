"""What each raster of a built-in L2A holds, said inside the raster itself.

So that any reader shows reflectance, class names and colours without knowing Sentinel-2: GDAL and
QGIS read the band description, scale/offset, nodata, colour interpretation, colour table and
category names of a GeoTIFF; rasterio's ``scales``/``offsets`` and xarray's ``mask_and_scale`` turn
DN into reflectance with them. JPEG 2000 files cannot hold these, so GDAL keeps them in a
``.aux.xml`` beside each file (ESA's readers ignore it; GDAL, QGIS and rasterio read it).

Reflectance = DN x scale + offset with scale = 1/BOA_QUANTIFICATION_VALUE and offset =
BOA_ADD_OFFSET/BOA_QUANTIFICATION_VALUE, the numbers MTD_MSIL2A.xml states.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from s2l2a.safe import scl as sclmod
from s2l2a.safe.bands import BAND_INFO
from s2l2a.safe.product import reflectance_scale_offset

from .radiometry import AOT_QUANTIFICATION, BOA_ADD_OFFSET, BOA_QUANTIFICATION, WVP_QUANTIFICATION


@dataclass(frozen=True)
class Layer:
    """The self-description of one L2A raster (one entry per band of the file where it matters)."""

    descriptions: tuple[str, ...]
    scale: float | None = None
    offset: float | None = None
    units: str | None = None
    colorinterp: tuple[str, ...] | None = None               # rasterio ColorInterp names
    colormap: dict[int, tuple[int, int, int, int]] | None = None
    categories: tuple[str, ...] | None = None                 # GDAL category names, by value
    tags: dict[str, str] = field(default_factory=dict)        # per-band metadata


def _reflectance(band: str) -> Layer:
    common, centre, _fwhm = BAND_INFO[band]
    scale, offset = reflectance_scale_offset(BOA_QUANTIFICATION, BOA_ADD_OFFSET)
    return Layer(descriptions=(f"{band} {common} ({centre * 1000:.0f} nm) BOA reflectance",), scale=scale,
                 offset=offset, tags={"BANDNAME": band, "WAVELENGTH": f"{centre * 1000:.0f}",
                                      "WAVELENGTH_UNIT": "nm", "BOA_QUANTIFICATION_VALUE": f"{BOA_QUANTIFICATION:g}",
                                      "BOA_ADD_OFFSET": f"{BOA_ADD_OFFSET:g}"})


def _scl() -> Layer:
    colours = {c.code: (*c.colour, 255) for c in sclmod.CLASSES}
    colours[sclmod.NODATA] = (0, 0, 0, 0)  # no data shows through
    names = tuple(sclmod.BY_CODE[i].name if i in sclmod.BY_CODE else "" for i in range(max(sclmod.BY_CODE) + 1))
    return Layer(descriptions=("SCL scene classification",), colorinterp=("palette",), colormap=colours,
                 categories=names)


def layer(key: str) -> Layer | None:
    """The description of an L2A raster by its key in the file name (B04, TCI, SCL, AOT, WVP,
    CLDPRB, SNWPRB); None for anything else."""
    if key in BAND_INFO:
        return _reflectance(key)
    if key == "TCI":
        return Layer(descriptions=("TCI red (B04)", "TCI green (B03)", "TCI blue (B02)"),
                     colorinterp=("red", "green", "blue"))
    if key == "SCL":
        return _scl()
    if key == "AOT":
        return Layer(descriptions=("AOT aerosol optical thickness at 550 nm",), scale=1.0 / AOT_QUANTIFICATION,
                     offset=0.0, units="1")
    if key == "WVP":
        return Layer(descriptions=("WVP water vapour column",), scale=1.0 / WVP_QUANTIFICATION, offset=0.0,
                     units="cm")
    if key == "CLDPRB":
        return Layer(descriptions=("cloud probability",), units="%")
    if key == "SNWPRB":
        return Layer(descriptions=("snow probability",), units="%")
    return None
