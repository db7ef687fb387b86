"""Scene classification: Sen2Cor 2.8's cascade rule by rule (TOA values on each side of a threshold;
thresholds from the packaged GIPP), the tests that keep bright ground and clear water out of the
clouds, and the morphology of the cloud mask."""

from __future__ import annotations

import numpy as np

from s2l2a.processors.builtin import scl as sclmod

BANDS = ("B02", "B03", "B04", "B8A", "B11", "B12")
SPECTRA = {  # TOA reflectance B02, B03, B04, B8A, B11, B12
    "cloud": (0.50, 0.49, 0.48, 0.50, 0.36, 0.26),
    "turbid water": (0.10, 0.09, 0.08, 0.04, 0.01, 0.005),
    "scree": (0.20, 0.21, 0.22, 0.30, 0.34, 0.30),   # rock: SWIR above NIR, blue under the rock line
    "bright scree": (0.30, 0.30, 0.31, 0.32, 0.35, 0.30),  # blue above Sen2Cor's rock line
    "snow": (0.80, 0.78, 0.76, 0.70, 0.08, 0.05),
    "vegetation": (0.07, 0.07, 0.04, 0.35, 0.17, 0.07),
}


def _classify(name: str) -> tuple[int, int]:
    toa = {b: np.full((1, 1), v, np.float32) for b, v in zip(BANDS, SPECTRA[name], strict=True)}
    s, c, _, _ = sclmod.classify(toa)
    return int(s[0, 0]), int(c[0, 0])


def test_cloud_stays_cloud_and_the_rest_does_not() -> None:
    assert _classify("cloud")[0] == sclmod.CLD_HIGH
    assert _classify("turbid water") == (sclmod.WATER, 0)  # red TOA 0.08 alone made it "unclassified"
    assert _classify("scree") == (sclmod.NOT_VEG, 0)
    # Sen2Cor's rock test only holds under its B02 line (0.16-0.35 on B8A/B11): rock as bright in the
    # blue as a cloud is cloud for Sen2Cor too (its ESA-CCI land-cover recovery, not done here, fixes it)
    assert _classify("bright scree")[0] == sclmod.CLD_HIGH
    assert _classify("snow")[0] == sclmod.SNOW
    assert _classify("vegetation") == (sclmod.VEG, 0)


def test_clean_clouds_removes_specks_and_grows_clouds() -> None:
    scl = np.full((40, 40), sclmod.VEG, np.uint8)
    scl[5, 5] = sclmod.CLD_HIGH                 # one bright pixel: not a cloud
    scl[20:30, 20:30] = sclmod.CLD_HIGH         # a 200 m cloud at 20 m
    scl[0, 30:] = sclmod.SNOW
    assert (sclmod.clean_clouds(scl.copy(), 20.0) == scl).all()  # off by default, like Sen2Cor's
    out = sclmod.clean_clouds(scl.copy(), 20.0, 60.0, 40.0)
    assert out[5, 5] == sclmod.UNCLASSIFIED
    assert (out[20:30, 20:30] == sclmod.CLD_HIGH).all()
    assert (out[18, 22:28] == sclmod.CLD_MED).all() and out[16, 25] == sclmod.VEG  # grown by 40 m
    assert (out[0, 30:] == sclmod.SNOW).all()
    # coarse grids (decimated products, 60 m of 1.5 km pixels): the metre sizes round to nothing
    assert (sclmod.clean_clouds(scl.copy(), 1500.0, 60.0, 40.0) == scl).all()


def _px(*rows: tuple[float, ...], bands: tuple[str, ...] = BANDS, **kw) -> tuple[list[int], list[int]]:
    """Classify one pixel per row of TOA values (in ``bands`` order); (classes, cloud probabilities)."""
    toa = {b: np.array([[r[i] for r in rows]], np.float32) for i, b in enumerate(bands)}
    s, c, _, _ = sclmod.classify(toa, **kw)
    return s[0].tolist(), c[0].tolist()


def test_brightness_ramp_is_squared() -> None:
    # neutral grey, no other test applies: probability = ((B04 - 0.06) / 0.19)^2
    classes, prob = _px((0.16, 0.16, 0.155, 0.17, 0.15, 0.12), (0.16, 0.16, 0.13, 0.17, 0.15, 0.12))
    assert prob == [25, 14]                      # a linear ramp gave 50 and 37: both medium cloud
    assert classes == [sclmod.CLD_MED, sclmod.UNCLASSIFIED]


def test_dark_features_red_and_nir_window() -> None:
    classes, _ = _px((0.08, 0.07, 0.09, 0.10, 0.10, 0.06),    # B04 < 0.10, 0.04 < B8A < 0.15
                     (0.08, 0.07, 0.11, 0.10, 0.10, 0.06),    # red too bright
                     (0.08, 0.07, 0.09, 0.16, 0.10, 0.06))    # NIR above the window
    assert classes[0] == sclmod.DARK and classes[1] != sclmod.DARK and classes[2] != sclmod.DARK
    # dark with a low B02/B11 is soil (recovery), dark with a high NDVI vegetation (recovery)
    assert _px((0.06, 0.05, 0.05, 0.08, 0.12, 0.08))[0] == [sclmod.NOT_VEG]
    assert _px((0.05, 0.04, 0.03, 0.10, 0.06, 0.03))[0] == [sclmod.VEG]


def test_unclassified_is_what_no_test_claims() -> None:
    # no cloud probability (NDSI -0.27), NDVI 0.25, B02/B11 0.71, B8A/B11 0.95: Sen2Cor's class 7
    assert _px((0.15, 0.12, 0.12, 0.20, 0.21, 0.15)) == ([sclmod.UNCLASSIFIED], [0])


def test_vegetation_needs_a_dark_blue() -> None:
    classes, _ = _px((0.14, 0.14, 0.10, 0.40, 0.20, 0.12), (0.16, 0.16, 0.10, 0.40, 0.20, 0.12))
    assert classes == [sclmod.VEG, sclmod.UNCLASSIFIED]


def test_soil_below_the_blue_line() -> None:
    # B02/B11 0.6 < T11_R_B02_B11: soil while B02 < clip(0.6 * -0.40 + 0.46) = 0.22
    classes, _ = _px((0.12, 0.14, 0.16, 0.22, 0.20, 0.16), (0.32, 0.40, 0.30, 0.36, 0.50, 0.40))
    assert classes[0] == sclmod.NOT_VEG and classes[1] in (sclmod.CLD_MED, sclmod.CLD_HIGH)


def test_water_needs_nir_below_red() -> None:
    classes, prob = _px((0.10, 0.08, 0.06, 0.03, 0.02, 0.01), (0.10, 0.08, 0.06, 0.07, 0.02, 0.01))
    assert classes == [sclmod.WATER, sclmod.DARK] and prob == [0, 0]
    # B02/B11 under T22 but blue well above red (the second water rule)
    assert _px((0.12, 0.10, 0.07, 0.035, 0.04, 0.02))[0] == [sclmod.WATER]


def test_snow_needs_b05_close_to_b8a() -> None:
    bands = (*BANDS, "B05")
    snow = (0.75, 0.72, 0.70, 0.70, 0.20, 0.06)  # B04/B11 3.5: the red/SWIR test leaves 83 % cloud
    # B05/B8A 0.86 and 0.79 (limit 0.85); one pixel per call: next to snow, B11 < B03 is snow too
    assert _px((*snow, 0.60), bands=bands)[0] == [sclmod.SNOW]
    assert _px((*snow, 0.55), bands=bands)[0] == [sclmod.CLD_HIGH]
    assert _px((*snow, 0.60), (*snow, 0.55), bands=bands)[0] == [sclmod.SNOW, sclmod.SNOW]


def test_cirrus_on_any_class_and_thick_cirrus_is_cloud() -> None:
    veg = (0.07, 0.07, 0.04, 0.35, 0.17, 0.07)
    bands = (*BANDS, "B10")
    classes, _ = _px((*veg, 0.005), (*veg, 0.02), (*veg, 0.04), bands=bands)
    assert classes == [sclmod.VEG, sclmod.CIRRUS, sclmod.CLD_MED]


def test_cci_water_bodies_and_snow_condition() -> None:
    dark = (0.08, 0.07, 0.09, 0.10, 0.10, 0.06)
    snow = (0.75, 0.72, 0.70, 0.70, 0.20, 0.06)
    assert _px(dark, snow)[0] == [sclmod.DARK, sclmod.SNOW]
    cci = {"water": np.array([[True, False]]), "no_snow": np.array([[False, False]])}
    assert _px(dark, snow, cci=cci)[0] == [sclmod.WATER, sclmod.SNOW]
    cci = {"no_snow": np.array([[True]])}         # on the snow map's water: the bright pixel is cloud
    assert _px(snow, cci=cci)[0] == [sclmod.CLD_HIGH]


def test_blocks_do_not_show_in_the_classes(monkeypatch) -> None:
    """classify_grid works in row blocks; the snow ring and recovery reach 3 pixels across block borders."""
    from affine import Affine

    from s2l2a.processors.builtin import pipeline

    shape = (24, 10)
    rng = np.random.default_rng(3)
    grey = (0.06, 0.12, 0.06, 0.03, 0.05, 0.04)   # no test claims it: unclassified, B11 < B03
    spectra = [SPECTRA[k] for k in ("snow", "cloud", "vegetation", "scree")] + [grey]
    kind = rng.integers(1, len(spectra), shape)   # no snow but the band below
    kind[10:12] = 0                           # snow just above the block border at row 12 ...
    kind[12:15] = 4                           # ... and grey pixels under it: snow by the recovery
    dn = {b: (np.array([s[i] for s in spectra])[kind] * 10000).astype(np.uint16) for i, b in enumerate(BANDS)}
    refl = {b: (10000.0, 0.0) for b in BANDS}
    grid = pipeline.Grid(res=20, shape=shape, transform=Affine(20, 0, 0, 0, -20, 0))
    whole, *_ = pipeline.classify_grid(dn, refl, grid, (30.0, 40.0), None)
    monkeypatch.setattr(pipeline, "ROWS_PER_BLOCK", 24)   # blocks of 12 rows
    blocks, *_ = pipeline.classify_grid(dn, refl, grid, (30.0, 40.0), None)
    assert (whole[12:15] == sclmod.SNOW).all() and (whole == sclmod.UNCLASSIFIED).any()
    assert (blocks == whole).all()
