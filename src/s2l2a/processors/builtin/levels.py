"""Atmospheric coefficients at a few surface heights per cell, for pixels at any height (with a DEM).

The look-up table's coefficients depend on the surface height through the pressure (Rayleigh
scattering), the gas columns above the surface, and the aerosol and water vapour above it. With a
DEM a tile spans kilometres of relief, so the coefficients are evaluated per ~1.2 km cell at
*levels* (heights every <= 500 m over the tile's relief, plus the table's own elevation nodes) and
each pixel interpolates between the two levels around its height, in the table's own elevation
coordinate ``1 - exp(-z / 8 km)``. Because the table is multilinear in that coordinate and the
levels include its nodes, this reproduces the table at the pixel's height.

Vertical profiles (what "the AOT of a cell" means at another height):

* aerosol: exponential with a 2 km scale height, the profile 6S itself assumes: its scattering
  routines (OS, ISO) lay the atmosphere out with 8 km for molecules and 2 km for aerosols, and its
  aircraft case takes the aerosol below the plane as AOT * (1 - exp(-z / 2 km)) when no value is
  given (checked in the 6SV sources as GRASS's i.atcorr carries them: computations.cpp, iso() and
  os(); altitude.cpp). So AOT above z = AOT above sea level * exp(-z / 2 km). (6S itself, given a
  target height, takes the AOT it is given as the column above the target and moves only the gas
  and pressure profile; the conversion here is what lets one cell field serve valleys and ridges.)
* water vapour: the US Standard Atmosphere 1962 profile the table was generated with
  (``lutgen.wv_fraction_above``).

Retrievals are converted to sea-level equivalents with these profiles before cells are filled and
smoothed, so a valley cell and a ridge cell share one aerosol field.

Per level and cell the stack holds, per band, ``Q`` quantities: the five table coefficients, the
direct transmittances down and up (``exp(-tau / mu)`` with the table's optics), the cosine of the
sun zenith and the Rayleigh share of the upward diffuse transmittance (adjacency weights).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from s2l2a import jit

from .geometry import CellGrid, Geometry

AEROSOL_SCALE_HEIGHT_KM = 2.0
LEVEL_STEP_KM = 0.5
#: quantities per level and cell, in this order
QUANTITIES = ("path", "t_gas", "t_down", "t_up", "s_albedo", "dir_down", "dir_up", "mu_sun", "w_rayleigh")
NQ_KERNEL = 8  # the inversion uses the first eight


def t_elevation(z_km: Any) -> Any:
    """The table's elevation coordinate (linear in pressure)."""
    return 1.0 - np.exp(-np.asarray(z_km, dtype=np.float64) / 8.0)


@lru_cache(maxsize=1)
def _wv_table() -> tuple[np.ndarray, np.ndarray]:
    from .lutgen import wv_fraction_above

    z = np.arange(0.0, 9.01, 0.05)
    return z, np.array([wv_fraction_above(v) for v in z])


def aot_factor(z_km: Any) -> np.ndarray:
    """AOT above ``z_km`` relative to the AOT above sea level (6S's 2 km exponential profile)."""
    return np.exp(-np.asarray(z_km, dtype=np.float64) / AEROSOL_SCALE_HEIGHT_KM)


def wv_factor(z_km: Any) -> np.ndarray:
    """Water vapour above ``z_km`` relative to the column above sea level (US62 profile)."""
    z, f = _wv_table()
    return np.interp(np.asarray(z_km, dtype=np.float64), z, f)


def choose_levels(z_min_km: float, z_max_km: float, table_nodes: Any = ()) -> np.ndarray:
    """Heights (km) covering [z_min, z_max] every <= LEVEL_STEP_KM, with the table's nodes inside."""
    lo, hi = float(z_min_km), float(z_max_km)
    if not np.isfinite(lo) or not np.isfinite(hi):
        lo = hi = 0.0
    if hi - lo < 0.01:
        return np.array([lo, lo + 0.01])
    n = int(np.ceil((hi - lo) / LEVEL_STEP_KM))
    z = set(np.linspace(lo, hi, n + 1).round(6).tolist())
    z |= {float(v) for v in np.asarray(table_nodes, dtype=float) if lo < v < hi}
    return np.array(sorted(z))


#: level positions are stored as uint16 in 1/LEVEL_SCALE steps (up to 31 levels)
LEVEL_SCALE = 2048.0


def level_position(z_km: Any, levels_km: np.ndarray) -> np.ndarray:
    """Fractional index (j + w) of heights among the levels, in the table's elevation coordinate."""
    t = t_elevation(z_km)
    tl = t_elevation(levels_km)
    return np.interp(t, tl, np.arange(len(tl), dtype=np.float64)).astype(np.float32)


@dataclass
class LevelStack:
    """Per band, (levels, QUANTITIES, ny, nx) float32 coefficients on the cell grid."""

    levels_km: np.ndarray
    cells: CellGrid
    coef: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def t_levels(self) -> np.ndarray:
        return np.asarray(t_elevation(self.levels_km), np.float32)

    @classmethod
    def build(cls, lut: Any, geom: Geometry, cells: CellGrid, bands: Any, levels_km: np.ndarray,
              aot_sl: np.ndarray, wv_sl: np.ndarray, shift_km: float, ozone_cm: float,
              profile: bool = True) -> LevelStack:
        """Evaluate the table at every level for every band.

        ``aot_sl``/``wv_sl``: cell fields at sea level (``profile``) or at the levels' heights as they
        are (``profile=False``: one flat level, no DEM); ``shift_km``: the weather's sea-level pressure
        expressed as a height offset, applied to the table's elevation only.
        """
        st = cls(np.asarray(levels_km, dtype=np.float64), cells)
        mu_s = np.cos(np.radians(geom.sza))
        for b in bands:
            vza, raa = geom.band(b)
            mu_v = np.cos(np.radians(vza))
            out = np.empty((len(st.levels_km), len(QUANTITIES)) + cells.shape, np.float32)
            for k, z in enumerate(st.levels_km):
                aot = aot_sl * aot_factor(z) if profile else aot_sl
                wv = wv_sl * wv_factor(z) if profile else wv_sl
                ze = max(z + shift_km, 0.0)
                c = lut.coefficients(b, aot, geom.sza, vza, raa, ze, wv, ozone=ozone_cm)
                o = lut.optics(b, aot, ze)
                tau = o.tau
                dsum = o.diffuse_up_rayleigh + o.diffuse_up_aerosol
                w_r = np.where(dsum > 1e-6, o.diffuse_up_rayleigh / np.maximum(dsum, 1e-6), 1.0)
                out[k] = np.stack([c.path_reflectance, c.t_gas, c.t_down, c.t_up, c.s_albedo,
                                   np.exp(-tau / mu_s), np.exp(-tau / mu_v), mu_s, w_r])
            st.coef[b] = out
        return st

    def pixels(self, band: str, shape: tuple[int, int], r0: int, r1: int,
               z_km: np.ndarray | None = None, level_pos: np.ndarray | None = None) -> np.ndarray:
        """(QUANTITIES, r1-r0, w) float32 for rows r0:r1 of a grid of ``shape``, at those rows'
        heights ``z_km`` or level positions ``level_pos`` (None: the first level)."""
        c = self.coef[band]
        nl = c.shape[0]
        if level_pos is None and z_km is not None and nl > 1:
            level_pos = level_position(z_km, self.levels_km)
        kernel = _pixels_kernel()
        if kernel is not None:
            (iy, wy), (ix, wx) = self.cells.axes(shape)
            cc = c if nl > 1 else np.concatenate([c, c])
            cc = np.ascontiguousarray(_pad2(cc), np.float32)
            lp = (np.zeros((r1 - r0, shape[1]), np.float32) if level_pos is None or nl == 1
                  else np.ascontiguousarray(level_pos, np.float32))
            out = np.empty((c.shape[1], r1 - r0, shape[1]), np.float32)
            kernel(cc, iy[r0:r1], wy[r0:r1], ix, wx, lp, out)
            return out
        per_level = [np.stack([self.cells.upsample_rows(c[k, q], shape, r0, r1) for q in range(c.shape[1])])
                     for k in range(nl)]
        if level_pos is None or nl == 1:
            return per_level[0]
        j = np.clip(np.floor(level_pos).astype(np.intp), 0, nl - 2)
        w = np.clip(level_pos - j, 0.0, 1.0).astype(np.float32)
        out = np.empty_like(per_level[0])
        for k in range(nl - 1):
            m = j == k
            if not m.any():
                continue
            out[:, m] = per_level[k][:, m] * (1 - w[m]) + per_level[k + 1][:, m] * w[m]
        return out


def _pad2(a: np.ndarray) -> np.ndarray:
    if a.shape[-2] == 1:
        a = np.concatenate([a, a], axis=-2)
    if a.shape[-1] == 1:
        a = np.concatenate([a, a], axis=-1)
    return a


@jit.kernel
def _pixels_kernel(numba: Any) -> Any:
    """Fused per-pixel evaluation of a level stack (numba, parallel over rows); None without numba."""

    @numba.njit(parallel=True, nogil=True, cache=False)
    def kernel(st, iy, wy, ix, wx, lp, out):  # pragma: no cover - compiled
        nl, nq, _, ncx = st.shape
        h, w = lp.shape
        one = np.float32(1.0)
        for r in numba.prange(h):
            i = iy[r]
            a = wy[r]
            row = np.empty((nl, nq, ncx), np.float32)
            for lv in range(nl):
                for k in range(nq):
                    for j in range(ncx):
                        row[lv, k, j] = st[lv, k, i, j] * (one - a) + st[lv, k, i + 1, j] * a
            for c in range(w):
                pos = lp[r, c]
                lv = int(pos)
                if lv > nl - 2:
                    lv = nl - 2
                if lv < 0:
                    lv = 0
                u = pos - np.float32(lv)
                if u < 0:
                    u = np.float32(0.0)
                elif u > 1:
                    u = one
                j = ix[c]
                b = wx[c]
                for k in range(nq):
                    v0 = row[lv, k, j] * (one - b) + row[lv, k, j + 1] * b
                    v1 = row[lv + 1, k, j] * (one - b) + row[lv + 1, k, j + 1] * b
                    out[k, r, c] = v0 + u * (v1 - v0)

    return kernel
