"""Per-pixel Lambertian inversion TOA -> BOA with look-up-table coefficients, and its exact forward.

6S convention (see lut.py)::

    rho_toa = t_gas * (rho_path + t_down * t_up * rho / (1 - S * rho))
    y       = (rho_toa / t_gas - rho_path) / (t_down * t_up)
    rho     = y / (1 + S * y)

Arithmetic is float32 and elementwise. The numpy path works in blocks of rows so a 10980 x 10980 band
needs only block-sized temporaries; ``out=`` may be the input array (in place). With numba installed
(extra ``s2l2a[fast]``) a fused loop is used for same-shape inputs; it performs the same float32
operations in the same order, so both paths give bit-identical results.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from s2l2a.jit import numba_module
from s2l2a.processors.builtin.lut import Coefficients

_BLOCK = 1 << 20  # elements per numpy block (~4 MB per float32 temporary)
_ONE = np.float32(1.0)
_kernels: dict[str, Callable[..., None]] | None = None


def _numpy_inverse(toa: np.ndarray, p: np.ndarray, tg: np.ndarray, td: np.ndarray, tu: np.ndarray,
                   s: np.ndarray) -> np.ndarray:
    y = toa / tg
    y -= p
    y /= td * tu
    d = s * y
    d += _ONE
    y /= d
    return y


def _numpy_forward(boa: np.ndarray, p: np.ndarray, tg: np.ndarray, td: np.ndarray, tu: np.ndarray,
                   s: np.ndarray) -> np.ndarray:
    d = s * boa
    np.subtract(_ONE, d, out=d)
    x = (td * tu) * boa
    x /= d
    x += p
    x *= tg
    return x


def _load_numba() -> dict[str, Callable[..., None]]:
    """Compile the fused kernels once, or return {} when numba is absent/disabled."""
    global _kernels
    if _kernels is not None:
        return _kernels
    _kernels = {}
    numba = numba_module()
    if numba is None:
        return _kernels

    @numba.njit(cache=False, nogil=True)
    def inverse(toa, p, tg, td, tu, s, out):  # type: ignore[no-untyped-def]
        one = np.float32(1.0)
        for i in range(toa.size):
            y = toa[i] / tg[i]
            y = y - p[i]
            y = y / (td[i] * tu[i])
            y = y / (s[i] * y + one)
            out[i] = y

    @numba.njit(cache=False, nogil=True)
    def forward(boa, p, tg, td, tu, s, out):  # type: ignore[no-untyped-def]
        one = np.float32(1.0)
        for i in range(boa.size):
            r = boa[i]
            d = one - s[i] * r
            x = ((td[i] * tu[i]) * r) / d
            out[i] = (x + p[i]) * tg[i]

    _kernels = {"inverse": inverse, "forward": forward}
    return _kernels


def numba_available() -> bool:
    """Whether the fused numba kernels are in use (numba installed and S2L2A_NO_NUMBA unset)."""
    return bool(_load_numba())


def _apply(kind: str, x: Any, coeffs: Coefficients, out: np.ndarray | None, engine: str) -> np.ndarray:
    x = np.asarray(x)
    terms = [np.asarray(a, dtype=np.float32) for a in (coeffs.path_reflectance, coeffs.t_gas,
                                                       coeffs.t_down, coeffs.t_up, coeffs.s_albedo)]
    shape = np.broadcast_shapes(x.shape, *(t.shape for t in terms))
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.shape != shape or out.dtype != np.float32:
        raise ValueError(f"out must be float32 of shape {shape}, got {out.dtype} {out.shape}")
    xf = x if x.dtype == np.float32 else x.astype(np.float32)
    kernels = _load_numba() if engine in ("auto", "numba") else {}
    if engine == "numba" and not kernels:
        raise RuntimeError("numba requested but not available (install s2l2a[fast])")
    same = all(a.shape == shape and a.flags.c_contiguous for a in [xf, *terms]) and out.flags.c_contiguous
    if kernels and same:
        kernels[kind](xf.reshape(-1), *(t.reshape(-1) for t in terms), out.reshape(-1))
        return out
    fn = _numpy_inverse if kind == "inverse" else _numpy_forward
    if out.ndim == 0:
        out[()] = fn(*(np.asarray(a, dtype=np.float32).reshape(()) for a in [xf, *terms]))
        return out
    views = np.broadcast_arrays(xf, *terms)
    row = max(1, int(np.prod(shape[1:], dtype=np.int64)))
    step = max(1, _BLOCK // row)
    for i in range(0, shape[0], step):
        block = [v[i : i + step] for v in views]
        out[i : i + step] = fn(*block)
    return out


def toa_to_boa(rho_toa: Any, coeffs: Coefficients, out: np.ndarray | None = None,
               engine: str = "auto") -> np.ndarray:
    """Surface (BOA) reflectance from TOA reflectance; ``out=rho_toa`` (float32) works in place.

    engine: "auto" (numba when available, else numpy), "numpy" or "numba"; results are identical.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return _apply("inverse", rho_toa, coeffs, out, engine)


def boa_to_toa(rho_boa: Any, coeffs: Coefficients, out: np.ndarray | None = None,
               engine: str = "auto") -> np.ndarray:
    """TOA reflectance a Lambertian surface ``rho_boa`` gives under ``coeffs`` (exact inverse of above)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _apply("forward", rho_boa, coeffs, out, engine)


# ------------------------------------------------------------------------ rugged terrain, adjacency
#
# The Lambertian model above assumes a flat, uniform surface. With terrain and non-uniform
# surroundings (after Richter 1998, "Correction of satellite imagery over mountainous terrain", Appl.
# Opt. 37(18), and the 6S decomposition of the signal into direct and diffuse parts, Vermote et al.,
# 6S User Guide 1997), per band and pixel:
#
#   rho_toa / t_gas = path + dir_up * M + (t_up - dir_up) * env,      M = rho * E
#   E = dir_down * cos_i / mu_s * lit + (t_down - dir_down) * V + (S * V + 1 - V) * env
#
# dir_down = exp(-tau / mu_s), dir_up = exp(-tau / mu_v): direct transmittances (tau from the table's
# optics); cos_i: cosine of the sun's incidence angle on the slope; lit: 0 in cast shadow; V: sky-view
# factor (isotropic diffuse sky); env: what the surroundings reflect (their M, weighted by 6S's
# environment function, adjacency.py). The last term of E is the surroundings' reflected light
# that the atmosphere sends back down onto the visible sky (S * env * V) plus the light the facing
# terrain reflects onto the pixel ((1 - V) * env). On flat ground (cos_i = mu_s, V = 1) amid
# surroundings like the pixel (env = M) it reduces exactly to the model above: E = t_down / (1 - S rho).
# The inversion reads env from the environment grid (or env = M: uniform surroundings) and needs no
# iteration: M from the signal, then rho = M / E.


def _dirf(ci: np.ndarray, mus: np.ndarray) -> np.ndarray:
    return np.where(ci < 0, np.float32(1.0), ci / mus)


def surface_reflectance(rho_toa: np.ndarray, q: np.ndarray, cos_i: np.ndarray | float = -1.0,
                        sky_view: np.ndarray | float = 1.0, env: np.ndarray | None = None) -> np.ndarray:
    """Invert the rugged-terrain/adjacency model (float32, elementwise).

    ``q``: (8+, ...) stacked quantities of ``levels.QUANTITIES`` (path, t_gas, t_down, t_up, S,
    dir_down, dir_up, mu_sun); ``cos_i``: incidence cosine with cast shadows set to 0 (a negative
    value = flat: cos_i = mu_sun); ``env``: the environment term (None: uniform surroundings, the
    pixel's own signal).
    """
    p, tg, td, tu, s, tdd, tdu, mus = (np.asarray(q[k], np.float32) for k in range(8))
    y = np.asarray(rho_toa, np.float32) / tg - p
    if env is None:
        m = y / tu
        e = m
    else:
        e = np.asarray(env, np.float32)
        m = (y - (tu - tdu) * e) / tdu
    irr = irradiance_factor(q, e, cos_i, sky_view)
    return (m / irr).astype(np.float32)


def irradiance_factor(q: np.ndarray, env: np.ndarray | float, cos_i: np.ndarray | float = -1.0,
                      sky_view: np.ndarray | float = 1.0) -> np.ndarray:
    """E of the model above: ground irradiance relative to mu_s times the top-of-atmosphere one."""
    td, s, tdd, mus = (np.asarray(q[k], np.float32) for k in (2, 4, 5, 7))
    v = np.asarray(sky_view, np.float32)
    e = np.asarray(env, np.float32)
    return tdd * _dirf(np.asarray(cos_i, np.float32), mus) + (td - tdd) * v + (s * v + 1 - v) * e


def apparent_reflectance(reflected: np.ndarray, q: np.ndarray, env: np.ndarray) -> np.ndarray:
    """TOA reflectance from the pixel's reflected signal ``M = rho * E`` and its environment term."""
    p, tg, tu, tdu = (np.asarray(q[k], np.float32) for k in (0, 1, 3, 6))
    return (tg * (p + tdu * reflected + (tu - tdu) * env)).astype(np.float32)
