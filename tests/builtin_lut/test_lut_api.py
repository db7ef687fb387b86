"""The look-up table API the built-in processor relies on: shapes, nodes, clipping, missions."""

from __future__ import annotations

import numpy as np
import pytest

from s2l2a.processors.builtin.lut import AtmLUT, Coefficients, fold_raa, load_lut
from s2l2a.processors.builtin.srf import LUT_BANDS


def test_load_is_cached_and_axes_are_sorted() -> None:
    lut = load_lut("S2A")
    assert load_lut("s2a") is lut
    assert isinstance(lut, AtmLUT)
    assert lut.bands == LUT_BANDS
    for name in ("aot", "sza", "vza", "raa", "elevation_km", "wv"):
        ax = lut.axes[name]
        assert ax.ndim == 1 and np.all(np.diff(ax) > 0), name
    assert lut.provenance["aerosol_model"] == "continental"


def test_broadcasting_and_dtype() -> None:
    lut = load_lut()
    aot = np.full((4, 1), 0.15)
    sza = np.linspace(10, 60, 5)[None, :]
    c = lut.coefficients("B03", aot, sza, 4.0, 30.0, 0.3, 1.7)
    assert isinstance(c, Coefficients)
    for arr in (c.path_reflectance, c.t_gas, c.t_down, c.t_up, c.s_albedo):
        assert arr.shape == (4, 5) and arr.dtype == np.float32
        assert np.all(np.isfinite(arr)) and np.all(arr > 0)
    assert np.all(c.t_gas <= 1) and np.all(c.t_down < 1) and np.all(c.t_up < 1)
    # transmittance falls with sun zenith
    assert np.all(np.diff(c.t_down[0]) < 0)


def test_clipping_to_grid_edges() -> None:
    lut = load_lut()
    top = lut.axes["aot"][-1]
    a = lut.coefficients("B02", top, 30.0, 0.0, 0.0, 0.0)
    b = lut.coefficients("B02", top + 5.0, 30.0, 0.0, 0.0, -0.2)
    for f in ("path_reflectance", "t_gas", "t_down", "t_up", "s_albedo"):
        assert float(getattr(a, f)) == float(getattr(b, f)), f
    mask = lut.out_of_range(np.array([0.1, top + 1]), 30.0, 0.0, 0.0, 1.0)
    assert mask.tolist() == [False, True]


def test_raa_folding() -> None:
    assert fold_raa(np.array([-30.0, 190.0, 360.0, 90.0])).tolist() == [30.0, 170.0, 0.0, 90.0]
    lut = load_lut()
    a = lut.coefficients("B01", 0.2, 40.0, 10.0, 350.0)
    b = lut.coefficients("B01", 0.2, 40.0, 10.0, 10.0)
    assert float(a.path_reflectance) == pytest.approx(float(b.path_reflectance), rel=1e-6)


def test_missions_s2c_uses_s2b_responses() -> None:
    a, b, c = load_lut("S2A"), load_lut("S2B"), load_lut("S2C")
    args = ("B01", 0.3, 35.0, 6.0, 80.0, 0.5, 2.0)
    cb, cc, ca = b.coefficients(*args), c.coefficients(*args), a.coefficients(*args)
    assert float(cb.path_reflectance) == float(cc.path_reflectance)
    assert float(ca.path_reflectance) != float(cb.path_reflectance)
    with pytest.raises(ValueError):
        load_lut("S3A")
    with pytest.raises(KeyError):
        a.coefficients("B10", 0.1, 30.0, 0.0, 0.0)


def test_ozone_scaling_direction() -> None:
    lut = load_lut()
    base = lut.coefficients("B03", 0.1, 30.0, 0.0, 0.0)
    more = lut.coefficients("B03", 0.1, 30.0, 0.0, 0.0, ozone=0.45)
    assert float(more.t_gas) < float(base.t_gas)
    assert float(more.path_reflectance) == pytest.approx(float(base.path_reflectance), rel=1e-6)


def test_unshipped_aerosol_model_says_how_to_make_it() -> None:
    with pytest.raises(FileNotFoundError, match="lutgen"):
        load_lut("S2A", aerosol="maritime")


def test_s2b_water_vapour_dependence_differs_from_s2a() -> None:
    a, b = load_lut("S2A"), load_lut("S2B")
    ratio = [float(b.coefficients("B09", 0.1, 40.0, 5.0, 90.0, 0.0, wv).t_gas)
             / float(a.coefficients("B09", 0.1, 40.0, 5.0, 90.0, 0.0, wv).t_gas) for wv in (0.5, 2.0, 5.0)]
    assert ratio[0] != pytest.approx(ratio[2], rel=1e-3)
