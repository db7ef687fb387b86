"""Scene classification with Sen2Cor's classes 0-11 and (a simplified form of) its threshold cascade.

Like Sen2Cor, every test works on TOA reflectance and is a fuzzy ramp between a T1 and a T2
threshold taken from ``L2A_CAL_SC_GIPP.xml``; the cloud probability is the product of the
brightness ramp and of (1 - probability) of each "not a cloud" test (NDSI, vegetation, senescing
vegetation, soil, snow). Pixels are then assigned in this order: no data, saturated, snow,
high/medium-probability cloud, thin cirrus (B10), water, cloud shadow / dark feature, vegetation,
not-vegetated, unclassified (cloud probability above T_CLOUD_LP but below T_CLOUD_MP).

Besides Sen2Cor's brightness, NDSI, snow, NDVI, B8A/B03 and B02/B11 soil tests, the B8A/B11 rock and
sand test and the B02/B11 water test (GIPP T*_R_B8A_B11, T2*_R_B02_B11) keep bright ground and clear
water out of the clouds; the cloud mask can be cleaned and grown (:func:`clean_clouds`, off by
default like Sen2Cor's median filter); with a DEM,
terrain shadows are class 2 (:func:`mark_terrain_shadows`).

Simplified against Sen2Cor (documented in docs/accuracy.md): no ESA-CCI aux maps (water and snow
climatology), cloud shadows from a flat-earth geometric projection of the clouds along the sun
direction combined with a radiometric darkness test against the GIPP's RV_* reference shadow
spectrum and T_SDW.
"""

from __future__ import annotations

import numpy as np

from s2l2a.safe.scl import (  # noqa: F401 - the class codes, re-exported for the cascade's users
    CIRRUS,
    CLD_HIGH,
    CLD_MED,
    DARK,
    NO_DATA,
    NOT_VEG,
    SATURATED,
    SHADOW,
    SNOW,
    UNCLASSIFIED,
    VEG,
    WATER,
)

from .sclgipp import SCGipp, load_sc_gipp

#: TOA bands the cascade reads (B8A stands in for B08 in the shadow spectrum, like at 20 m)
SCL_BANDS = ("B02", "B03", "B04", "B8A", "B10", "B11", "B12")
_RV = {"B02": "RV_B2", "B03": "RV_B3", "B04": "RV_B4", "B8A": "RV_B8", "B11": "RV_B11", "B12": "RV_B12"}
SNOW_PROB_CLASS = 0.5  # snow probability above which a pixel is snow (Sen2Cor keeps this internal)
SHADOW_HEIGHTS_M = (500.0, 1000.0, 1500.0, 2000.0, 3000.0, 4000.0, 6000.0)


def ramp(x: np.ndarray, t1: float, t2: float) -> np.ndarray:
    """0 below t1, 1 above t2, linear in between (decreasing if t1 > t2): Sen2Cor's fuzzy threshold."""
    with np.errstate(invalid="ignore"):
        return np.clip((x - t1) / (t2 - t1), 0.0, 1.0).astype(np.float32)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return a / np.where(b > 1e-4, b, 1e-4)


def _nd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return (a - b) / np.where(np.abs(a + b) > 1e-6, a + b, 1e-6)


def classify(toa: dict[str, np.ndarray], saturated: np.ndarray | None = None,
             gipp: SCGipp | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel cascade on one block of TOA reflectance (NaN = no data).

    Returns ``(scl, cloud_prob, snow_prob, dark)``: classes uint8, probabilities uint8 0-100, and the
    radiometric darkness mask that :func:`add_cloud_shadows` later splits into shadows (3) and
    dark features (2) once the clouds of the whole tile are known. B10 may be absent (no cirrus test).
    """
    g = gipp or load_sc_gipp()
    t = g.t
    b2, b3, b4, b8a, b11, b12 = (toa[b] for b in ("B02", "B03", "B04", "B8A", "B11", "B12"))
    b10 = toa.get("B10")
    nodata = ~(np.isfinite(b2) & np.isfinite(b4) & np.isfinite(b8a) & np.isfinite(b11))
    ndsi = _nd(b3, b11)
    ndvi = _nd(b8a, b4)

    # snow: high NDSI, bright NIR, flat visible spectrum, dark SWIR-2
    snow_p = (ramp(ndsi, t("T1_NDSI_SNW"), t("T2_NDSI_SNW")) * ramp(b8a, t("T1_B8A"), t("T2_B8A"))
              * ramp(_ratio(b2, b4), t("T1_R_B02_B04"), t("T2_R_B02_B04"))
              * (1.0 - ramp(b12, t("T1_SNOW"), t("T2_SNOW"))))
    # cloud: bright in red, then every "it is something else" test lowers the probability
    cloud_p = ramp(b4, t("T1_B04"), t("T2_B04"))
    cloud_p *= ramp(ndsi, t("T1_NDSI_CLD"), t("T2_NDSI_CLD"))
    cloud_p *= 1.0 - ramp(ndvi, t("T1_NDVI"), t("T2_NDVI"))
    cloud_p *= 1.0 - ramp(_ratio(b8a, b3), t("T1_R_B8A_B03"), t("T2_R_B8A_B03"))
    cloud_p *= 1.0 - ramp(_ratio(b2, b11), t("T12_R_B02_B11"), t("T11_R_B02_B11"))
    # rocks and sand (deserts, scree): SWIR brighter than NIR, clouds the other way round
    cloud_p *= ramp(_ratio(b8a, b11), t("T1_R_B8A_B11"), t("T2_R_B8A_B11"))
    # clear water: blue far above SWIR (clouds reflect SWIR); turbid or sun-lit water passes the red test
    cloud_p *= 1.0 - ramp(_ratio(b2, b11), t("T21_R_B02_B11"), t("T22_R_B02_B11"))
    cloud_p *= 1.0 - snow_p
    cloud_p = np.nan_to_num(cloud_p, nan=0.0)
    snow_p = np.nan_to_num(snow_p, nan=0.0)
    cloud_p[nodata] = 0.0
    snow_p[nodata] = 0.0

    water = (_nd(b3, b8a) > 0.0) & (_ratio(b2, b11) > t("T21_R_B02_B11")) & (b8a < t("T1_B8A"))
    refs = [(toa[b], t(rv) / 100.0) for b, rv in _RV.items() if rv in g.thresholds]
    darkness = sum(np.nan_to_num(x) / r for x, r in refs) / len(refs)
    # dark like the reference shadow spectrum on average AND in the NIR (dense forest is dark in the
    # visible and SWIR but bright in the NIR; shadows are dark everywhere)
    dark = (darkness < 1.0 / t("T_SDW")) & (np.nan_to_num(b8a) < t("RV_B8") / 100.0 / t("T_SDW"))

    scl = np.full(b4.shape, NOT_VEG, np.uint8)
    scl[ramp(ndvi, t("T1_NDVI"), t("T2_NDVI")) >= 0.5] = VEG
    scl[dark] = DARK
    scl[water] = WATER
    scl[cloud_p > t("T_CLOUD_LP")] = UNCLASSIFIED
    if b10 is not None:
        cirrus = (b10 > t("T1_B10")) & (cloud_p < t("T_CLOUD_MP"))
        scl[cirrus] = CIRRUS
    scl[cloud_p >= t("T_CLOUD_MP")] = CLD_MED
    scl[cloud_p >= t("T_CLOUD_HP")] = CLD_HIGH
    scl[snow_p >= SNOW_PROB_CLASS] = SNOW
    if saturated is not None:
        scl[saturated] = SATURATED
    scl[nodata] = NO_DATA
    dark &= scl == DARK
    return (scl, np.rint(cloud_p * 100).astype(np.uint8), np.rint(snow_p * 100).astype(np.uint8), dark)


def clean_clouds(scl: np.ndarray, pixel_m: float, opening_m: float = 0.0, dilation_m: float = 0.0) -> np.ndarray:
    """Optional morphology of the cloud classes (8, 9), in place; sizes in metres (0: step skipped).

    ``opening_m``: an opening with a square of that size removes clouds smaller than it (they become
    unclassified, 7: bright, but not shaped like a cloud), like the erosion step of ESA's L1C cloud
    mask; ``dilation_m``: the remaining clouds grow by that radius over clear land and water (new
    pixels: medium probability, 8). Both are off by default: Sen2Cor's default L2A_GIPP has
    Median_Filter 0, and on the real Barbellino pair a 40 m dilation took the SCL agreement from 70 %
    to 46 % (docs/accuracy.md). Sizes that round to less than 2 (opening) or 1 (dilation) pixels are
    skipped, so decimated grids are left alone.
    """
    from scipy import ndimage

    clouds = (scl == CLD_MED) | (scl == CLD_HIGH)
    if not clouds.any():
        return scl
    k = int(round(opening_m / max(pixel_m, 1e-6)))
    if k >= 2:
        kept = ndimage.binary_opening(clouds, structure=np.ones((k, k), bool))
        scl[clouds & ~kept] = UNCLASSIFIED
        clouds = kept
    r = int(round(dilation_m / max(pixel_m, 1e-6)))
    if r >= 1 and clouds.any():
        yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
        grown = ndimage.binary_dilation(clouds, structure=(yy * yy + xx * xx) <= r * r)
        ring = grown & ~clouds & np.isin(scl, (DARK, SHADOW, VEG, NOT_VEG, WATER, UNCLASSIFIED, CIRRUS))
        scl[ring] = CLD_MED
    return scl


def add_cloud_shadows(scl: np.ndarray, dark: np.ndarray, sun_zenith: float, sun_azimuth: float,
                      pixel_m: float) -> np.ndarray:
    """Turn dark pixels lying where a cloud's shadow can fall into class 3, in place.

    The shadow of a cloud at height h is displaced by h*tan(sza) away from the sun; the union of
    the displaced cloud masks over plausible heights is the zone where shadows can be.
    """
    clouds = (scl == CLD_MED) | (scl == CLD_HIGH)
    if not clouds.any() or not dark.any():
        return scl
    zone = np.zeros_like(clouds)
    tan_z = np.tan(np.deg2rad(min(sun_zenith, 80.0)))
    az = np.deg2rad(sun_azimuth)
    h_img, w_img = scl.shape
    for h in SHADOW_HEIGHTS_M:
        d = h * tan_z / pixel_m
        dy = int(round(d * np.cos(az)))     # shadow goes away from the sun: north sun -> south (+row)
        dx = int(round(-d * np.sin(az)))    # east sun -> west (-col)
        if abs(dy) >= h_img or abs(dx) >= w_img:
            continue
        src = clouds[max(0, -dy):h_img - max(0, dy), max(0, -dx):w_img - max(0, dx)]
        zone[max(0, dy):h_img - max(0, -dy), max(0, dx):w_img - max(0, -dx)] |= src
    scl[dark & zone & ~clouds] = SHADOW
    return scl


def mark_terrain_shadows(scl: np.ndarray, shadowed: np.ndarray) -> np.ndarray:
    """With a DEM: land pixels the sun does not reach (cast or self shadow) become class 2, in place.

    Since processing baseline 04.00 ESA's class 2 means topographic (casted) shadows; there the surface
    is lit by the sky alone and its reflectance is far less certain. Shadowed land passes the water
    test (dark, blue over SWIR) too, so water pixels in shadow become class 2 as well (without ESA-CCI's
    water map the two cannot be told apart there); snow, clouds and cloud shadows keep their class.
    """
    scl[shadowed & np.isin(scl, (DARK, VEG, NOT_VEG, WATER, UNCLASSIFIED))] = DARK
    return scl
