"""The scene classification (SCL) classes of an L2A product: ESA defines the codes 0-11.

One table holds, per class, its code, its name, the colour of ESA's SCL legend (what Sen2Cor's
quicklooks and every viewer show) and whether it counts as clear sky for the derived clear mask.
The built-in processor writes these codes, the quicklooks paint them, the clear mask counts them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SclClass:
    """One scene class: ``clear`` says the default clear-sky mask counts it as a usable surface."""

    code: int
    name: str
    colour: tuple[int, int, int]
    clear: bool = False


NO_DATA, SATURATED, DARK, SHADOW, VEG, NOT_VEG, WATER, UNCLASSIFIED, CLD_MED, CLD_HIGH, CIRRUS, SNOW = range(12)

CLASSES: tuple[SclClass, ...] = (
    SclClass(NO_DATA, "no data", (0, 0, 0)),
    SclClass(SATURATED, "saturated or defective", (255, 0, 0)),
    SclClass(DARK, "dark area / topographic shadow", (47, 47, 47)),
    SclClass(SHADOW, "cloud shadow", (100, 50, 0)),
    SclClass(VEG, "vegetation", (0, 160, 0), clear=True),
    SclClass(NOT_VEG, "not vegetated", (255, 230, 90), clear=True),
    SclClass(WATER, "water", (0, 0, 255), clear=True),
    SclClass(UNCLASSIFIED, "unclassified", (128, 128, 128)),
    SclClass(CLD_MED, "cloud, medium probability", (192, 192, 192)),
    SclClass(CLD_HIGH, "cloud, high probability", (255, 255, 255)),
    SclClass(CIRRUS, "thin cirrus", (100, 200, 255)),
    SclClass(SNOW, "snow or ice", (255, 150, 255)),
)

BY_CODE: dict[int, SclClass] = {c.code: c for c in CLASSES}

#: classes counted as clear sky by default: vegetation, not vegetated, water
CLEAR: tuple[int, ...] = tuple(c.code for c in CLASSES if c.clear)

#: the SCL value of pixels without data (also the nodata value of SCL rasters)
NODATA = NO_DATA

#: classes a cloud cover counts (Sen2Cor's CLOUDY_PIXEL_PERCENTAGE): cloud of medium and high
#: probability and thin cirrus, as a share of the pixels with data
CLOUDY: tuple[int, ...] = (CLD_MED, CLD_HIGH, CIRRUS)

#: how ESA's L2A metadata names each class: SCENE_CLASSIFICATION_TEXT of MTD_MSIL2A.xml's
#: Scene_Classification_List (GDAL's SENTINEL2 driver shows them as SCL category names) and the
#: element of Quality_Indicators_Info/Image_Content_QI that gives its share of the tile
MTD_NAMES: dict[int, tuple[str, str]] = {
    NO_DATA: ("SC_NODATA", "NODATA_PIXEL_PERCENTAGE"),
    SATURATED: ("SC_SATURATED_DEFECTIVE", "SATURATED_DEFECTIVE_PIXEL_PERCENTAGE"),
    DARK: ("SC_DARK_FEATURE_SHADOW", "DARK_FEATURES_PERCENTAGE"),
    SHADOW: ("SC_CLOUD_SHADOW", "CLOUD_SHADOW_PERCENTAGE"),
    VEG: ("SC_VEGETATION", "VEGETATION_PERCENTAGE"),
    NOT_VEG: ("SC_NOT_VEGETATED", "NOT_VEGETATED_PERCENTAGE"),
    WATER: ("SC_WATER", "WATER_PERCENTAGE"),
    UNCLASSIFIED: ("SC_UNCLASSIFIED", "UNCLASSIFIED_PERCENTAGE"),
    CLD_MED: ("SC_CLOUD_MEDIUM_PROBA", "MEDIUM_PROBA_CLOUDS_PERCENTAGE"),
    CLD_HIGH: ("SC_CLOUD_HIGH_PROBA", "HIGH_PROBA_CLOUDS_PERCENTAGE"),
    CIRRUS: ("SC_THIN_CIRRUS", "THIN_CIRRUS_PERCENTAGE"),
    SNOW: ("SC_SNOW_ICE", "SNOW_ICE_PERCENTAGE"),
}


def palette() -> np.ndarray:
    """256 x 3 uint8 lookup table of the legend's colours (unknown codes grey), for quicklooks."""
    lut = np.full((256, 3), 90, dtype=np.uint8)
    for c in CLASSES:
        lut[c.code] = c.colour
    return lut
