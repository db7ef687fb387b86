"""Forward/inverse exactness and engine identity of the per-pixel inversion."""

from __future__ import annotations

import numpy as np
import pytest

from s2l2a.processors.builtin.invert import boa_to_toa, numba_available, toa_to_boa
from s2l2a.processors.builtin.lut import Coefficients, load_lut


def _coeffs(shape: tuple[int, ...], seed: int = 0) -> Coefficients:
    rng = np.random.default_rng(seed)
    lut = load_lut("S2A")
    return lut.coefficients("B04", rng.uniform(0, 0.8, shape), rng.uniform(0, 70, shape),
                            rng.uniform(0, 12, shape), rng.uniform(0, 360, shape),
                            rng.uniform(0, 3, shape), rng.uniform(0.3, 5, shape))


def test_round_trip_is_exact_to_float32() -> None:
    c = _coeffs((50, 40))
    rho = np.random.default_rng(1).uniform(0.0, 0.9, (50, 40)).astype(np.float32)
    back = toa_to_boa(boa_to_toa(rho, c), c)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, rho, atol=2e-6, rtol=0)


def test_in_place_and_broadcast_scalars() -> None:
    lut = load_lut()
    c = lut.coefficients("B02", 0.2, 40.0, 5.0, 120.0, 0.5, 2.0)  # 0-d coefficients
    rho = np.linspace(0, 0.6, 1000, dtype=np.float32).reshape(20, 50)
    toa = boa_to_toa(rho, c)
    out = toa_to_boa(toa, c, out=toa)  # in place
    assert out is toa
    np.testing.assert_allclose(out, rho, atol=2e-6)
    assert toa_to_boa(np.float32(toa.flat[0]), c).shape == ()


@pytest.mark.skipif(not numba_available(), reason="numba not installed (extra s2l2a[fast])")
def test_numba_and_numpy_identical() -> None:
    c = _coeffs((300, 200), seed=3)
    toa = np.random.default_rng(4).uniform(0.0, 0.7, (300, 200)).astype(np.float32)
    a = toa_to_boa(toa, c, engine="numpy")
    b = toa_to_boa(toa, c, engine="numba")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(boa_to_toa(a, c, engine="numpy"), boa_to_toa(a, c, engine="numba"))


def test_numpy_blocks_match_single_shot() -> None:
    # a tall array forces several row blocks with broadcast (row-constant) coefficients
    lut = load_lut()
    col = lut.coefficients("B8A", np.full((3000, 1), 0.1), 30.0, 3.0, 60.0, 0.2, 1.0)
    toa = np.random.default_rng(5).uniform(0, 0.5, (3000, 700)).astype(np.float32)
    got = toa_to_boa(toa, col, engine="numpy")
    y = (toa / col.t_gas - col.path_reflectance) / (col.t_down * col.t_up)
    np.testing.assert_allclose(got, y / (1 + col.s_albedo * y), rtol=1e-5, atol=1e-6)
