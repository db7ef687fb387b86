"""Adjacency effect: the surroundings' reflected light scattered into the sensor's view of a pixel.

Weighting: 6S's environment functions for a satellite sensor (Vermote et al., 6S User Guide 1997,
Part 1 "Environment function"; subroutine ENVIRO), i.e. the share of the diffuse upward signal that
comes from within a radius r (km):

    F_rayleigh(r) = 1 - 0.930 exp(-0.08 r) - 0.070 exp(-1.10 r)
    F_aerosol(r)  = 1 - 0.448 exp(-0.27 r) - 0.552 exp(-2.83 r)

combined per pixel with the weights of the Rayleigh and aerosol diffuse upward transmittances, as 6S
does. (6S's small view-zenith correction is left out: under 2 % within Sentinel-2's 12 degrees.)
The kernels are the radial densities of F on the grid (pixel weights from F's derivative, the
centre pixel F at its equal-area radius), cut at 30 km and renormalised: beyond that the
surroundings count as their within-30-km mean. The aerosol term puts 63 % of its weight within
1 km, the Rayleigh term only 12 %.

The environment term is computed on a ~120 m grid (60 m block means) by FFT convolution,
normalised by the convolved mask of usable pixels: clouds, no data and saturated pixels do not count
as surroundings, the clear pixels around them stand in. Iteration (the environment is made of
corrected pixels): start from the uniform-surroundings retrieval, then twice
``env = F * (rho E)``, ``rho E = (Y - t_dif_up env) / t_dir_up`` (Tanre et al. 1981's decomposition
of the signal into direct and diffuse upward parts).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft

RAYLEIGH = ((0.930, 0.08), (0.070, 1.10))   # (amplitude, 1/km) of 1 - F
AEROSOL = ((0.448, 0.27), (0.552, 2.83))
MAX_RADIUS_KM = 30.0
ENV_PIXEL_M = 120.0
ITERATIONS = 2


def cumulative(r_km: np.ndarray, terms: tuple) -> np.ndarray:
    """F(r): share of the environment signal from within r km."""
    r = np.asarray(r_km, dtype=np.float64)
    return 1.0 - sum(a * np.exp(-b * r) for a, b in terms)


def _density(r_km: np.ndarray, terms: tuple) -> np.ndarray:
    """Weight per unit area at distance r: F'(r) / (2 pi r)."""
    r = np.maximum(np.asarray(r_km, dtype=np.float64), 1e-9)
    return sum(a * b * np.exp(-b * r) for a, b in terms) / (2 * np.pi * r)


def kernel(pixel_m: float, terms: tuple, max_radius_km: float = MAX_RADIUS_KM,
           max_half_px: int | None = None) -> np.ndarray:
    """Normalised 2-D weights of one environment function on a grid of ``pixel_m``.

    ``max_half_px`` cuts the kernel to the image it will be used on (weights farther out never land).
    """
    px = pixel_m / 1000.0
    n = max(1, int(np.ceil(max_radius_km / px)))
    if max_half_px is not None:
        n = max(1, min(n, int(max_half_px)))
    off = np.arange(-n, n + 1, dtype=np.float64)
    rr = np.hypot(off[:, None], off[None, :]) * px
    w = _density(rr, terms) * px * px
    # near the centre the density diverges like 1/r: average it over 7 x 7 points of each pixel
    near = 3
    sub = (np.arange(7) + 0.5) / 7 - 0.5
    for i in range(-near, near + 1):
        for j in range(-near, near + 1):
            yy = (i + sub[:, None]) * px
            xx = (j + sub[None, :]) * px
            w[n + i, n + j] = _density(np.hypot(yy, xx), terms).mean() * px * px
    w[n, n] = cumulative(px / np.sqrt(np.pi), terms)
    w[rr > max_radius_km] = 0.0
    return w / w.sum()


@dataclass
class EnvironmentOperator:
    """Masked convolution with the Rayleigh and aerosol kernels on one grid (FFT, zero padded)."""

    shape: tuple[int, int]
    pixel_m: float
    mask: np.ndarray

    def __post_init__(self) -> None:
        ny, nx = self.shape
        half = max(ny, nx)
        kr = kernel(self.pixel_m, RAYLEIGH, max_half_px=half)
        ka = kernel(self.pixel_m, AEROSOL, max_half_px=half)
        # zero padding so nothing wraps; kernels cut to the image size (farther weights never land)
        n = kr.shape[0] // 2
        cy, cx = min(n, ny), min(n, nx)
        kr = kr[n - cy:n + cy + 1, n - cx:n + cx + 1]
        ka = ka[n - cy:n + cy + 1, n - cx:n + cx + 1]
        self._pad = (sfft.next_fast_len(ny + 2 * cy, real=True), sfft.next_fast_len(nx + 2 * cx, real=True))
        self._c = (cy, cx)
        self._kf = [self._kernel_fft(k) for k in (kr, ka)]
        self._maskf = self.mask.astype(np.float32)
        dens = [self._conv(self._maskf, kf) for kf in self._kf]
        # no usable pixel within reach (a whole region clouded): the pixel's own signal stands in
        self._alone = (dens[0] < 1e-3) | (dens[1] < 1e-3)
        self._inv = [(1.0 / np.maximum(d, 1e-3)).astype(np.float32) for d in dens]

    def _kernel_fft(self, k: np.ndarray) -> np.ndarray:
        buf = np.zeros(self._pad, np.float32)
        cy, cx = self._c
        buf[:2 * cy + 1, :2 * cx + 1] = k
        return sfft.rfft2(buf)

    def _conv(self, a: np.ndarray | None, kf: np.ndarray, af: np.ndarray | None = None) -> np.ndarray:
        ny, nx = self.shape
        cy, cx = self._c
        if af is None:
            af = self._fft(a)
        out = sfft.irfft2(af * kf, s=self._pad)
        # full linear convolution; the kernel's centre sits at (cy, cx)
        return out[cy:cy + ny, cx:cx + nx]

    def _fft(self, a: np.ndarray) -> np.ndarray:
        buf = np.zeros(self._pad, np.float32)
        buf[:a.shape[0], :a.shape[1]] = a
        return sfft.rfft2(buf)

    def apply(self, field: np.ndarray, w_rayleigh: np.ndarray) -> np.ndarray:
        """Environment mean of ``field`` over usable pixels, Rayleigh/aerosol weighted per pixel."""
        f = np.nan_to_num(np.asarray(field, np.float32))
        f *= self._maskf
        af = self._fft(f)
        ray = self._conv(None, self._kf[0], af) * self._inv[0]
        out = self._conv(None, self._kf[1], af) * self._inv[1]
        ray -= out
        ray *= w_rayleigh
        out += ray  # w * rayleigh + (1 - w) * aerosol
        if self._alone.any():
            np.copyto(out, field, where=self._alone)
        return out.astype(np.float32, copy=False)


def environment(toa: np.ndarray, q: np.ndarray, op: EnvironmentOperator,
                iterations: int = ITERATIONS) -> np.ndarray:
    """The environment term (6S-weighted mean of rho * E) of one band on the operator's grid.

    ``q``: (9, ...) quantities of ``levels.QUANTITIES`` on that grid. The terrain does not enter:
    the environment is made of what the surroundings reflect, rho * E, which the signal gives
    directly.
    """
    p, tg, tu, tdu = q[0], q[1], q[3], q[6]
    y = toa / tg - p
    m = y / tu  # uniform surroundings: rho E of the pixel itself
    for _ in range(iterations):
        env = op.apply(m, q[8])
        m = (y - (tu - tdu) * env) / tdu
    env = op.apply(m, q[8])
    return np.where(np.isfinite(env), env, 0.0).astype(np.float32)
