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

import os
from collections.abc import Callable
from typing import Any

import numpy as np

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
    if os.environ.get("S2L2A_NO_NUMBA"):
        return _kernels
    try:
        import numba
    except ImportError:
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
