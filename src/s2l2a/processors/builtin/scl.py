"""Scene classification with Sen2Cor's classes 0-11 and its threshold cascade, step by step.

The cascade is the one of Sen2Cor 2.8's scene classification (the ATBD's "cloud screening and
scene classification", S2PAD-ATBD-0001, as its ``L2A_SceneClass`` module applies it; Sen2Cor
2.8-2.11 run the same steps), on TOA reflectance. The thresholds named in ``L2A_CAL_SC_GIPP.xml`` are
read from it; the few that Sen2Cor keeps in its code are the named constants below. Each step
either classifies a still-unclassified pixel (then the later steps leave it alone) or multiplies its
cloud probability by a fuzzy ramp between a T1 and a T2:

1.1 brightness: cloud probability = the B04 ramp **squared** (T1_B04, T2_B04); dark features (2):
    B04 < 0.10 and 0.04 < B8A < 0.15.
1.2 NDSI(B03, B11): times the T1/T2_NDSI_CLD ramp.
2   snow (probability, class 11 above T1_SNOW): NDSI ramp (T*_NDSI_SNW) on potential clouds only,
    B05/B8A >= 0.85, times the B8A, B02 and B02/B04 ramps; a 3-pixel ring around the snow whose
    B12 is below T2_SNOW is not cloud.
3   NDVI(B8A, B04) >= T2_NDVI with B02 < 0.15: vegetation (4); inside the NDVI ramp the cloud
    probability is multiplied by 1 - ramp. (Sen2Cor 2.8 has the B8A/B03 "senescing vegetation"
    step switched off in its cascade; the ratio is used in the recovery below.)
5.1 soil: B02/B11 < T11_R_B02_B11 with B02 under the line clip(T11_B02 r + T12_B02, 0.15, 0.32):
    not vegetated (5); the ramp up to T12_R_B02_B11 below that line.
5.2 water (6): B02/B11 > T22_R_B02_B11 with B12 under clip(T21_B12 r + T22_B12, 0.07, 0.21),
    B8A < B04 and B02 < 0.20 (ramp between T21 and T22); or B02 - B04 > 0.034, B8A < B04, B02 < 0.20.
6   rock and sand: B8A/B11 < T1_R_B8A_B11 with B02 < 0.8 B11 and B02 under
    clip(0.475 - 0.25 r, 0.16, 0.35): not vegetated; the ramp up to T2_R_B8A_B11 below that line.
6b  B04/B11 between 3 and 6 lowers the probability, above 6 it is 0.
7   classes from the probability: (T_CLOUD_LP, T_CLOUD_MP) unclassified (7, Sen2Cor's "low
    probability clouds"), [T_CLOUD_MP, T_CLOUD_HP) medium (8), above high (9); thin cirrus (10):
    T1_B10 < B10 < T2_B10, B02 < 0.5, probability below T_CLOUD_MP (any class); B10 >= T2_B10 and
    probability below T_CLOUD_HP: medium cloud.
    recovery: dark or unclassified pixels with NDVI > T2_NDVI or B8A/B03 > T2_R_B8A_B03 are
    vegetation; B02/B11 > T22_R_B02_B11 and B8A < B04 water (unclassified ones also B8A < 0.3);
    ESA-CCI water bodies water; unclassified pixels within 3 pixels of snow with B11 < B03 snow;
    dark pixels with B02/B11 < 0.65 not vegetated. What is left unclassified is class 7.

With the ESA-CCI maps of a Sen2Cor installation (:mod:`.ccimaps`): water bodies turn dark, shadow
and unclassified pixels into water; the snow condition map's water (254) excludes snow where the
tile's land is almost never snowy (mean < 10 %). Sen2Cor's land-cover recoveries (urban and bare
areas, B10/B09 land recovery) are not done. Cloud shadows: a flat-earth geometric projection of the
clouds along the sun direction combined with a radiometric darkness test against the GIPP's RV_*
reference shadow spectrum and T_SDW (Sen2Cor convolves a cloud-height distribution instead); with a
DEM terrain shadows are class 2 (:func:`mark_terrain_shadows`); the cloud mask can be cleaned and
grown (:func:`clean_clouds`, off by default like Sen2Cor's median filter).
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

#: TOA bands the cascade reads (B8A stands in for B08 in the shadow spectrum, like at 20 m);
#: B05 (snow) and B10 (cirrus) may be absent: their tests are then skipped
SCL_BANDS = ("B02", "B03", "B04", "B05", "B8A", "B10", "B11", "B12")
SCL_OPTIONAL = ("B05", "B10")
_RV = {"B02": "RV_B2", "B03": "RV_B3", "B04": "RV_B4", "B8A": "RV_B8", "B11": "RV_B11", "B12": "RV_B12"}
SHADOW_HEIGHTS_M = (500.0, 1000.0, 1500.0, 2000.0, 3000.0, 4000.0, 6000.0)

# Sen2Cor 2.8's thresholds that are not in its GIPP (values of its L2A_SceneClass module)
DARK_MAX_B04 = 0.10                  # 1.1: dark features: red below this ...
DARK_B8A = (0.04, 0.15)              # ... and B8A strictly inside this range
SNOW_MIN_R_B05_B8A = 0.85            # 2: B05/B8A below this is not snow (frozen ground, vegetation)
SNOW_RING_PX = 3                     # 2, recovery: cross-shaped dilation of the snow mask, in pixels
#: how far (pixels) a pixel's class depends on its neighbours: blocks classified apart overlap this much
HALO_PX = SNOW_RING_PX
VEG_MAX_B02 = 0.15                   # 3: vegetation is dark in the blue
SOIL_B02_LINE = (0.15, 0.32)         # 5.1: clip of T11_B02 * B02/B11 + T12_B02
WATER_MAX_B02 = 0.20                 # 5.2: water is darker than this in the blue
WATER_B12_LINE = (0.07, 0.21)        # 5.2: clip of T21_B12 * B02/B11 + T22_B12
WATER_MIN_B02_B04 = 0.034            # 5.2: blue above red by this much (with B8A < B04)
ROCK_B02_LINE = (-0.25, 0.475, 0.16, 0.35)  # 6: slope, intercept, clip of the B02 line on B8A/B11
ROCK_MAX_R_B02_B11 = 0.8             # 6: rock has B02 < 0.8 B11
RED_SWIR_RAMP = (3.0, 6.0)           # 6b: B04/B11 ramp that removes the probability
CIRRUS_MAX_B02 = 0.50                # 7: thin cirrus is not brighter than this in the blue
WATER_RECOVERY_MAX_B8A = 0.3         # recovery: unclassified water has B8A below this
SOIL_RECOVERY_R_B02_B11 = 0.65       # recovery: dark features with B02/B11 below this are soil
_LOWEST = 1e-6                       # Sen2Cor's floor of ratio denominators


def ramp(x: np.ndarray, t1: float, t2: float) -> np.ndarray:
    """0 below t1, 1 above t2, linear in between (decreasing if t1 > t2): Sen2Cor's fuzzy threshold."""
    r = np.subtract(x, t1, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        r *= np.float32(1.0 / (t2 - t1))
        return np.clip(r, 0.0, 1.0, out=r)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return a / np.maximum(b, _LOWEST)


def _nd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return (a - b) / np.maximum(a + b, _LOWEST)


def _cross(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return (np.abs(yy) + np.abs(xx)) <= radius


def _near(mask: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within ``radius`` steps (4-connected) of the mask: Sen2Cor's 3-times-iterated cross."""
    from scipy import ndimage

    if not mask.any():
        return mask.copy()
    return ndimage.binary_dilation(mask, structure=_cross(radius))


def classify(toa: dict[str, np.ndarray], saturated: np.ndarray | None = None,
             gipp: SCGipp | None = None, cci: dict[str, np.ndarray] | None = None,
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sen2Cor's cascade (module docstring) on one block of TOA reflectance (NaN = no data).

    ``cci``: optional ESA-CCI masks on the block's grid (:meth:`.ccimaps.CciMaps.masks`): ``water``
    (water bodies) and ``no_snow`` (where the snow condition map rules snow out).
    Returns ``(scl, cloud_prob, snow_prob, dark)``: classes uint8, probabilities uint8 0-100, and the
    radiometric darkness mask that :func:`add_cloud_shadows` later turns into cloud shadows (3) where
    the clouds of the whole tile can cast them.
    """
    g = gipp or load_sc_gipp()
    t = g.t
    b2, b3, b4, b8a, b11, b12 = (toa[b] for b in ("B02", "B03", "B04", "B8A", "B11", "B12"))
    b5, b10 = toa.get("B05"), toa.get("B10")
    cci = cci or {}
    nodata = ~(np.isfinite(b2) & np.isfinite(b3) & np.isfinite(b4) & np.isfinite(b8a)
               & np.isfinite(b11) & np.isfinite(b12))
    scl = np.zeros(b4.shape, np.uint8)          # 0: not classified yet (no data is set at the end)
    free = ~nodata                              # valid and not classified yet

    def assign(where: np.ndarray, cls: int) -> None:
        nonlocal free
        hit = where & free
        scl[hit] = cls
        free = free & ~hit

    ndsi = _nd(b3, b11)
    ndvi = _nd(b8a, b4)
    r_b2_b11 = _ratio(b2, b11)
    with np.errstate(invalid="ignore"):
        # 1.1 brightness in the red (squared ramp) and dark features
        p = ramp(b4, t("T1_B04"), t("T2_B04")) ** 2
        assign((b4 < DARK_MAX_B04) & (b8a > DARK_B8A[0]) & (b8a < DARK_B8A[1]), DARK)
        # 1.2 NDSI
        p *= ramp(ndsi, t("T1_NDSI_CLD"), t("T2_NDSI_CLD"))
        p[~free] = 0.0
        # 2 snow, among the potential clouds (computed where the NDSI ramp is above 0 only)
        s = np.zeros(b4.shape, np.float32)
        cand = free & (p > 0.0) & (ndsi > t("T1_NDSI_SNW"))
        if "no_snow" in cci:
            cand &= ~cci["no_snow"]
        if cand.any():
            c2, c4, c8 = b2[cand], b4[cand], b8a[cand]
            sv = ramp(ndsi[cand], t("T1_NDSI_SNW"), t("T2_NDSI_SNW"))
            if b5 is not None:
                sv[_ratio(b5[cand], c8) < SNOW_MIN_R_B05_B8A] = 0.0
            sv *= ramp(c8, t("T1_B8A"), t("T2_B8A"))
            sv *= ramp(c2, t("T1_B02"), t("T2_B02"))
            sv *= ramp(_ratio(c2, c4), t("T1_R_B02_B04"), t("T2_R_B02_B04"))
            s[cand] = np.nan_to_num(sv, nan=0.0)
        del ndsi
        snow = (s > t("T1_SNOW")) & free
        assign(snow, SNOW)
        ring = _near(snow, SNOW_RING_PX) & ~snow & (b12 < t("T2_SNOW"))
        p[snow | ring] = 0.0
        # 3 vegetation
        v = ramp(ndvi, t("T1_NDVI"), t("T2_NDVI"))
        assign((v == 1.0) & (b2 < VEG_MAX_B02), VEG)
        inside = (v > 0.0) & (v < 1.0) & free
        p[inside] *= 1.0 - v[inside]
        del v, inside
        # 5.1 soil: B02/B11 under the B02 line
        low = b2 < np.clip(np.clip(r_b2_b11, 0.0, 100.0) * t("T11_B02") + t("T12_B02"), *SOIL_B02_LINE)
        assign(low & (r_b2_b11 < t("T11_R_B02_B11")), NOT_VEG)
        amb = (r_b2_b11 > t("T11_R_B02_B11")) & (r_b2_b11 < t("T12_R_B02_B11")) & low & free
        p[amb] *= ramp(r_b2_b11[amb], t("T11_R_B02_B11"), t("T12_R_B02_B11"))
        # 5.2 water
        wet = (b12 < np.clip(r_b2_b11 * t("T21_B12") + t("T22_B12"), *WATER_B12_LINE)) & (b8a < b4) \
            & (b2 < WATER_MAX_B02)
        assign(wet & (r_b2_b11 > t("T22_R_B02_B11")), WATER)
        amb = wet & (r_b2_b11 >= t("T21_R_B02_B11")) & (r_b2_b11 < t("T22_R_B02_B11")) & free
        p[amb] *= 1.0 - ramp(r_b2_b11[amb], t("T21_R_B02_B11"), t("T22_R_B02_B11"))
        assign((b2 - b4 > WATER_MIN_B02_B04) & (b8a < b4) & (b2 < WATER_MAX_B02), WATER)
        # 6 rock and sand
        r_b8a_b11 = _ratio(b8a, b11)
        slope, icpt, lo, hi = ROCK_B02_LINE
        low = b2 < np.clip(r_b8a_b11 * slope + icpt, lo, hi)
        assign(low & (r_b8a_b11 < t("T1_R_B8A_B11")) & (b2 < ROCK_MAX_R_B02_B11 * b11), NOT_VEG)
        amb = (r_b8a_b11 > t("T1_R_B8A_B11")) & (r_b8a_b11 < t("T2_R_B8A_B11")) & low & free
        p[amb] *= ramp(r_b8a_b11[amb], t("T1_R_B8A_B11"), t("T2_R_B8A_B11"))
        # 6b very high red/SWIR ratio
        del r_b8a_b11, low, amb, wet
        c = ramp(_ratio(b4, b11), *RED_SWIR_RAMP)
        p[(c == 1.0) & free] = 0.0
        np.subtract(1.0, c, out=c)
        p *= c
        del c
        p = np.nan_to_num(p, nan=0.0)
        p[~free] = 0.0
        # 7 cloud classes, cirrus
        unclassified = free & (p > t("T_CLOUD_LP")) & (p < t("T_CLOUD_MP"))
        scl[unclassified] = UNCLASSIFIED
        scl[free & (p >= t("T_CLOUD_MP")) & (p < t("T_CLOUD_HP"))] = CLD_MED
        scl[free & (p >= t("T_CLOUD_HP"))] = CLD_HIGH
        free = free & (p <= t("T_CLOUD_LP"))    # probability 0: what is left for the recovery
        if b10 is not None:
            thin = (b10 > t("T1_B10")) & (b10 < t("T2_B10")) & (b2 < CIRRUS_MAX_B02) & (p < t("T_CLOUD_MP"))
            thick = (b10 >= t("T2_B10")) & (p < t("T_CLOUD_HP"))
            scl[thin & ~nodata] = CIRRUS
            scl[thick & ~nodata] = CLD_MED
            free &= ~(thin | thick)
        # recovery of dark and unclassified pixels
        dark_cls = scl == DARK
        green = (ndvi > t("T2_NDVI")) | (_ratio(b8a, b3) > t("T2_R_B8A_B03"))
        scl[green & dark_cls] = VEG
        assign(green, VEG)
        dark_cls = scl == DARK
        wet = (r_b2_b11 > t("T22_R_B02_B11")) & (b8a < b4)
        scl[wet & dark_cls] = WATER
        assign(wet & (b8a < WATER_RECOVERY_MAX_B8A), WATER)
        if "water" in cci:
            scl[cci["water"] & np.isin(scl, (DARK, UNCLASSIFIED)) & ~nodata] = WATER
            assign(cci["water"], WATER)
        snowy = scl == SNOW
        if snowy.any():
            assign(_near(snowy, SNOW_RING_PX) & (b11 < b3), SNOW)
        scl[(scl == DARK) & (r_b2_b11 < SOIL_RECOVERY_R_B02_B11)] = NOT_VEG
        scl[free] = UNCLASSIFIED

    if saturated is not None:
        scl[saturated & ~nodata] = SATURATED
    scl[nodata] = NO_DATA
    s[nodata] = 0.0

    # cloud-shadow candidates: dark like the reference shadow spectrum on average AND in the NIR
    # (dense forest is dark in the visible and SWIR but bright in the NIR; shadows are dark everywhere)
    dark = (np.nan_to_num(b8a) < t("RV_B8") / 100.0 / t("T_SDW")) & np.isin(scl, (DARK, VEG, NOT_VEG, UNCLASSIFIED))
    if dark.any():
        refs = [(toa[b][dark], t(rv) / 100.0) for b, rv in _RV.items() if rv in g.thresholds]
        darkness = sum(np.nan_to_num(x) / r for x, r in refs) / len(refs)
        dark[dark] = darkness < 1.0 / t("T_SDW")
    return (scl, np.rint(p * 100).astype(np.uint8), np.rint(s * 100).astype(np.uint8), dark)


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
