"""Unit tests of the built-in processor's parts, with values."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from s2l2a.processors.builtin import pipeline, radiometry, scl
from s2l2a.processors.builtin.geometry import (
    CellGrid,
    fill_nan_nearest,
    interpolate_azimuth,
    relative_azimuth,
)
from s2l2a.processors.builtin.priors import DEFAULT_OZONE_DU, read_priors
from s2l2a.processors.builtin.sclgipp import load_ac_gipp, load_sc_gipp
from s2l2a.processors.builtin.writer import normalize_format
from s2l2a.safe import format_product_name, l2a_granule_name

from .synth import SAMPLE


def test_dn_to_reflectance_uses_the_offset_and_keeps_nodata() -> None:
    dn = np.array([0, 1000, 2000, 11000], np.uint16)
    old = radiometry.dn_to_reflectance(dn, 10000.0, 0.0)
    new = radiometry.dn_to_reflectance(dn, 10000.0, -1000.0)
    assert np.isnan(old[0]) and np.isnan(new[0])
    np.testing.assert_allclose(old[1:], [0.1, 0.2, 1.1], rtol=1e-6)
    np.testing.assert_allclose(new[1:], [0.0, 0.1, 1.0], atol=1e-6)


def test_reflectance_to_dn_current_convention() -> None:
    rho = np.array([0.0, 0.1234, -0.05, np.nan, 7.0], np.float32)
    dn = radiometry.reflectance_to_dn(rho)
    assert dn.tolist() == [1000, 2234, 500, 0, 65534]


def test_resample_dn_mean_ignores_nodata() -> None:
    dn = np.array([[0, 2, 4, 4], [0, 4, 4, 4]], np.uint16)
    assert radiometry.resample_dn_mean(dn, (1, 2)).tolist() == [[3, 4]]


def test_gipp_values_are_the_real_ones() -> None:
    g = load_sc_gipp()
    assert g.classes["SNOW_ICE"] == 11 and g.classes["THIN_CIRRUS"] == 10
    assert g.t("T1_B04") == 0.06 and g.t("T2_B04") == 0.25 and g.t("T_CLOUD_HP") == 0.80
    ac = load_ac_gipp()
    assert ac.red_swir_ratio == 0.5 and ac.blue_red_ratio == 0.5 and ac.swir_upper == (0.05, 0.10, 0.12)


def test_classify_typical_spectra() -> None:
    names = ("B02", "B03", "B04", "B8A", "B10", "B11", "B12")
    spectra = {  # TOA reflectance
        scl.VEG: (0.07, 0.07, 0.04, 0.35, 0.001, 0.18, 0.08),
        scl.NOT_VEG: (0.12, 0.14, 0.18, 0.25, 0.001, 0.32, 0.27),
        scl.WATER: (0.09, 0.06, 0.04, 0.02, 0.001, 0.01, 0.005),
        scl.SNOW: (0.75, 0.72, 0.70, 0.62, 0.004, 0.09, 0.06),
        scl.CLD_HIGH: (0.50, 0.48, 0.47, 0.49, 0.01, 0.35, 0.25),
        scl.CIRRUS: (0.10, 0.09, 0.05, 0.33, 0.03, 0.18, 0.08),
    }
    toa = {b: np.array([[v[i] for v in spectra.values()]], np.float32) for i, b in enumerate(names)}
    classes, cld, snw, _ = scl.classify(toa)
    assert classes[0].tolist() == list(spectra)
    assert cld[0, 4] == 100 and cld[0, 0] == 0 and snw[0, 3] == 100


def test_nodata_and_saturated_classes() -> None:
    toa = {b: np.array([[np.nan, 0.3]], np.float32) for b in scl.SCL_BANDS}
    classes, *_ = scl.classify(toa, saturated=np.array([[False, True]]))
    assert classes.tolist() == [[scl.NO_DATA, scl.SATURATED]]


def test_cloud_shadow_projection_away_from_the_sun() -> None:
    classes = np.full((40, 40), scl.VEG, np.uint8)
    classes[5:10, 18:22] = scl.CLD_HIGH
    dark = np.zeros_like(classes, bool)
    dark[20:30, 15:25] = True   # south of the cloud: where a northern sun puts its shadow
    dark[0:3, 15:25] = True     # north of it: a dark feature
    scl.add_cloud_shadows(classes, dark, sun_zenith=60.0, sun_azimuth=0.0, pixel_m=200.0)
    assert (classes[20:30, 18:22] == scl.SHADOW).any()
    assert not (classes[0:3] == scl.SHADOW).any()


def test_geometry_helpers() -> None:
    g = np.array([[np.nan, 1.0], [2.0, np.nan]])
    f = fill_nan_nearest(g)
    assert np.isfinite(f).all() and f[0, 1] == 1.0
    assert relative_azimuth(np.array([10.0, 350.0]), np.array([350.0, 100.0])).tolist() == [20.0, 110.0]
    az = interpolate_azimuth(np.array([[359.0, 1.0], [359.0, 1.0]]), 100.0, (1, 1), (100.0, 100.0))
    assert min(az[0, 0], 360 - az[0, 0]) < 1e-6


def test_cellgrid_reproduces_linear_fields_and_means() -> None:
    cells = CellGrid(4, 5)
    yy, xx = np.meshgrid((np.arange(4) + 0.5) / 4, (np.arange(5) + 0.5) / 5, indexing="ij")
    field = 2 * yy + 3 * xx
    up = cells.upsample(field, (40, 50))
    y2, x2 = np.meshgrid((np.arange(40) + 0.5) / 40, (np.arange(50) + 0.5) / 50, indexing="ij")
    inner = (slice(5, 35), slice(5, 45))  # edges are clamped to the outer cell centres
    np.testing.assert_allclose(up[inner], (2 * y2 + 3 * x2)[inner], atol=1e-5)
    mean, n = cells.cell_mean(np.ones((8, 10)), np.ones((8, 10), bool))
    assert (n == 4).all() and (mean == 1).all()


def _cell_coeffs(atm_lut, cells: CellGrid, band: str = "B04"):
    ny, nx = cells.shape
    aot = np.linspace(0.05, 0.35, ny * nx).reshape(ny, nx)
    return atm_lut.coefficients(band, aot, np.full((ny, nx), 40.0), np.full((ny, nx), 5.0),
                                np.full((ny, nx), 100.0), 0.0, 1.5)


def test_numba_and_numpy_inversion_agree_with_the_lut_inverse(atm_lut) -> None:
    from s2l2a.processors.builtin.invert import toa_to_boa
    from s2l2a.processors.builtin.lut import Coefficients

    rng = np.random.default_rng(1)
    dn = rng.integers(100, 9000, size=(64, 80)).astype(np.uint16)
    dn[0, :5] = 0
    dn[1, :3] = 65535
    cells = CellGrid(3, 4)
    c = _cell_coeffs(atm_lut, cells)
    a = pipeline.invert_in_place(dn.copy(), cells, c, 10000.0, -1000.0, use_numba=True)
    b = pipeline.invert_in_place(dn.copy(), cells, c, 10000.0, -1000.0, use_numba=False)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    assert (a[0, :5] == 0).all() and (a[1, :3] == 65535).all()
    per_px = Coefficients(*(cells.upsample(f, dn.shape) for f in (
        c.path_reflectance, c.t_gas, c.t_down, c.t_up, c.s_albedo)))
    ref = toa_to_boa((dn.astype(np.float32) - 1000) / 10000, per_px)
    want = np.clip(np.floor(ref * 10000 + 1000 + 0.5), 1, 65534)
    ok = (dn > 0) & (dn < 65535)
    assert np.abs(b[ok].astype(float) - want[ok]).max() <= 1


def test_aux_priors_from_the_real_ecmwf_grib() -> None:
    aux = next(SAMPLE.glob("GRANULE/*/AUX_DATA/AUX_ECMWFT"))
    pri = read_priors({"AUX_ECMWFT": aux})
    assert pri.sources == {"ozone": "AUX_ECMWFT", "wv": "AUX_ECMWFT", "pressure": "AUX_ECMWFT", "aot": "default"}
    assert 250 < pri.ozone_du < 320 and 0.5 < pri.wv_gcm2 < 1.5 and 1015 < pri.pressure_hpa < 1030
    assert read_priors({"AUX_ECMWFT": Path("/nonexistent")}).ozone_du == DEFAULT_OZONE_DU


def test_names() -> None:
    t = datetime(2018, 6, 29, 0, 2, 41, tzinfo=UTC)
    gen = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert format_product_name("S2A", "L2A", t, "05.11", 30, "56JMM", gen) == \
        "S2A_MSIL2A_20180629T000241_N0511_R030_T56JMM_20260102T030405"
    assert l2a_granule_name("L1C_T56JMM_A015757_20180629T000241") == "L2A_T56JMM_A015757_20180629T000241"
    assert normalize_format("jpeg2000") == "JP2" and normalize_format(None) == "JP2"  # the default: ESA's layout
    with pytest.raises(ValueError):
        normalize_format("png")


def test_unknown_option_is_a_one_line_error() -> None:
    from s2l2a.processors import get_processor
    from s2l2a.processors.base import ProcessingFailed

    with pytest.raises(ProcessingFailed, match="unknown \\[builtin\\] option"):
        get_processor("builtin", {"bogus": 1})


def test_block_mean_numba_equals_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    dn = rng.integers(0, 6000, size=(60, 72)).astype(np.uint16)
    dn[:, :7] = 0
    fast = radiometry.resample_dn_mean(dn, (10, 12))
    monkeypatch.setattr(radiometry, "_block_mean_kernel", lambda: None)
    slow = radiometry.resample_dn_mean(dn, (10, 12))
    assert (fast == slow).all() and fast[0, 0] == 0
    blk = dn[:6, 6:12]
    v = blk[blk > 0]
    assert fast[0, 1] == int(np.floor(v.mean() + 0.5))


@pytest.mark.parametrize("f", [2, 3, 6])
def test_zero_blocks_is_where_the_block_mean_is_zero(f: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled all-zero-block pass gives the mask the numpy way gives (and the block mean's zeros)."""
    rng = np.random.default_rng(f)
    dn = rng.integers(0, 3, size=(12 * f, 10 * f)).astype(np.uint16) * rng.integers(0, 2, size=(12 * f, 10 * f),
                                                                                    dtype=np.uint16)
    dn[:, : 3 * f] = 0
    dn[5 * f: 6 * f, 7 * f: 8 * f] = 0
    assert radiometry._all_blocks_kernel() is not None  # the compiled pass is what runs here
    blocks = pipeline._zeros_on(dn == 0, (12, 10))
    assert blocks.dtype == bool
    monkeypatch.setattr(radiometry, "_all_blocks_kernel", lambda: None)
    np.testing.assert_array_equal(blocks, pipeline._zeros_on(dn == 0, (12, 10)))  # numpy's reshape().all()
    np.testing.assert_array_equal(blocks, radiometry.resample_dn_mean(dn, (12, 10)) == 0)
    assert blocks[:, :3].all() and blocks[5, 7] and not blocks.all()
    not_whole = pipeline._zeros_on(dn == 0, (7, 10))  # not a whole ratio: a nearest pick
    np.testing.assert_array_equal(not_whole, radiometry.resample_nearest(dn == 0, (7, 10)))


def test_cirrus_gamma_recovers_the_slope() -> None:
    rng = np.random.default_rng(5)
    b10 = rng.uniform(0.012, 0.03, (50, 50)).astype(np.float32)
    toa = {"B10": b10, "B04": (0.05 + 0.8 * (b10 - 0.001)).astype(np.float32)}
    classes = np.full((50, 50), scl.CIRRUS, np.uint8)
    classes[:10] = scl.VEG
    b10[:10] = 0.001
    gam, floor = pipeline.cirrus_gamma(toa, classes, load_sc_gipp())
    assert abs(floor - 0.001) < 1e-6 and abs(gam["B04"] - 0.8) < 0.05
