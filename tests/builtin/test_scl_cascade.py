"""Scene classification: the tests that keep bright ground and clear water out of the clouds, and the
morphology of the cloud mask (TOA spectra typical of each surface; thresholds from the packaged GIPP)."""

from __future__ import annotations

import numpy as np

from s2l2a.processors.builtin import scl as sclmod

BANDS = ("B02", "B03", "B04", "B8A", "B11", "B12")
SPECTRA = {  # TOA reflectance B02, B03, B04, B8A, B11, B12
    "cloud": (0.50, 0.49, 0.48, 0.50, 0.36, 0.26),
    "turbid water": (0.10, 0.09, 0.08, 0.04, 0.01, 0.005),
    "scree": (0.30, 0.30, 0.31, 0.32, 0.35, 0.30),   # bright rock: SWIR above NIR
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
    cls, prob = _classify("scree")
    assert cls not in (sclmod.CLD_MED, sclmod.CLD_HIGH) and prob < 20  # was 52 % (medium cloud)
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
