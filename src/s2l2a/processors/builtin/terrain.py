"""Terrain geometry from a DEM: slope, sun incidence, cast shadows and sky-view factor.

* slope and aspect: Horn's (1981) 3 x 3 finite differences ("Hill shading and the reflectance map",
  Proc. IEEE 69(1)), on the grid the DEM was resampled to;
* incidence: cos i = cos(sza) cos(slope) + sin(sza) sin(slope) cos(saa - aspect), with the sun
  angles of the MTD_TL grids interpolated per pixel;
* cast shadows: a pixel is shadowed when the terrain towards the sun rises above the sun's elevation
  angle, found in one sweep along the sun's azimuth that carries the "shadow surface" height
  max(z, H_upstream - step * tan(sun elevation)) from pixel to pixel (the horizon test of Dozier,
  Bruno & Downey 1981, Comput. Geosci. 7, done incrementally); tile-mean sun angles;
* sky-view factor: Dozier & Frew (1990, IEEE TGRS 28(5)) for an isotropic sky,
  V = 1/N sum_phi [cos S sin^2 H_phi + sin S cos(phi - A) (H_phi - sin H_phi cos H_phi)],
  with H_phi the horizon zenith angle in N = 16 azimuths (the terrain's horizon, found by marching
  up to ~8 km, or the slope's own plane when that is higher), on a ~120 m grid; on the working grids
  it is that grid's obstruction share (V over the plane's (1 + cos S) / 2, bilinear) times the
  working grid's own-plane value (1 + cos S) / 2, so steep 20 m slopes keep their own sky.

The fields a band's inversion needs are packed small (5 bytes per pixel at 20 m): the height as a
position among the model's height levels (uint16, levels.py), incidence cosine with cast shadows set
to 0 (uint16, 1/60000 steps), sky-view factor (uint8, 1/250 steps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .geometry import CellGrid
from .levels import LEVEL_SCALE, level_position

COS_SCALE = 60000.0
SVF_SCALE = 250.0
N_AZIMUTHS = 16
HORIZON_STEPS_PX = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 19, 24, 30, 38, 48, 60)
HORIZON_MAX_M = 8000.0
BLOCK_ROWS = 128  # rows per block of the terrain set-up: ~10 float temporaries of a block each


def gradients(z: np.ndarray, dx: float, dy: float) -> tuple[np.ndarray, np.ndarray]:
    """Horn's dz/d(east) and dz/d(north) (float32, edges replicated); rows run southwards."""
    zp = np.pad(np.asarray(z, np.float32), 1, mode="edge")
    a, b, c = zp[:-2, :-2], zp[:-2, 1:-1], zp[:-2, 2:]
    d, f = zp[1:-1, :-2], zp[1:-1, 2:]
    g, h, i = zp[2:, :-2], zp[2:, 1:-1], zp[2:, 2:]
    dzdx = ((c + 2 * f + i) - (a + 2 * d + g)) / np.float32(8 * dx)
    dzdy = ((a + 2 * b + c) - (g + 2 * h + i)) / np.float32(8 * dy)
    return dzdx, dzdy


def slope_aspect(dzdx: np.ndarray, dzdy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slope (rad) and aspect (rad, the downhill direction clockwise from north)."""
    return np.arctan(np.hypot(dzdx, dzdy)), np.mod(np.arctan2(-dzdx, -dzdy), 2 * np.pi)


def incidence_cosine(dzdx: np.ndarray, dzdy: np.ndarray, sza_deg: Any, saa_deg: Any) -> np.ndarray:
    """cos of the angle between the surface normal and the sun (negative: facing away)."""
    sz, sa = np.radians(sza_deg), np.radians(saa_deg)
    num = -dzdx * np.sin(sz) * np.sin(sa) - dzdy * np.sin(sz) * np.cos(sa) + np.cos(sz)
    return (num / np.sqrt(1.0 + dzdx * dzdx + dzdy * dzdy)).astype(np.float32)


def cast_shadow(z: np.ndarray, pixel_m: float, sza_deg: float, saa_deg: float) -> np.ndarray:
    """Boolean mask of pixels in the shadow of terrain between them and the sun."""
    z = np.asarray(z, np.float32)
    tan_elev = 1.0 / max(np.tan(np.radians(min(sza_deg, 89.5))), 1e-6)
    dc, dr = np.sin(np.radians(saa_deg)), -np.cos(np.radians(saa_deg))  # towards the sun, grid units
    transpose = abs(dr) > abs(dc)
    if transpose:  # sweep along rows instead of columns
        z, dc, dr = z.T, dr, dc
    ny, nx = z.shape
    sgn = 1 if dc > 0 else -1
    ratio = dr / abs(dc) if abs(dc) > 1e-9 else 0.0
    drop = pixel_m * np.hypot(1.0, ratio) * tan_elev
    cols = range(nx - 1, -1, -1) if sgn > 0 else range(nx)
    shadow = np.zeros((ny, nx), bool)
    rows = np.arange(ny, dtype=np.float64)
    src = rows + ratio
    h_prev = None
    for c in cols:
        zc = z[:, c].astype(np.float64)
        if h_prev is None:
            h = zc
        else:
            up = np.interp(src, rows, h_prev, left=-np.inf, right=-np.inf) - drop
            shadow[:, c] = up > zc + 0.5
            h = np.maximum(zc, up)
        h_prev = h
    return shadow.T if transpose else shadow


def sky_view(z: np.ndarray, pixel_m: float, n_az: int = N_AZIMUTHS, obstruction: bool = False) -> np.ndarray:
    """Sky-view factor (0..1) of an isotropic sky, Dozier & Frew (1990), on the DEM's grid.

    ``obstruction``: divided by the slope's own-plane value (1 + cos S) / 2, i.e. the share of the
    plane's sky that distant terrain leaves open (terrain_fields multiplies a finer grid's plane
    value back in).
    """
    z = np.asarray(z, np.float32)
    ny, nx = z.shape
    dzdx, dzdy = gradients(z, pixel_m, pixel_m)
    slope, aspect = slope_aspect(dzdx, dzdy)
    tan_s = np.tan(slope)
    cos_s, sin_s = np.cos(slope), np.sin(slope)
    total = np.zeros((ny, nx), np.float64)
    steps = [s for s in HORIZON_STEPS_PX if s * pixel_m <= HORIZON_MAX_M] or [1]
    for k in range(n_az):
        phi = 2 * np.pi * k / n_az
        dcol, drow = np.sin(phi), -np.cos(phi)
        tan_b = np.full((ny, nx), -np.inf, np.float32)
        for s in steps:
            oy, ox = int(round(drow * s)), int(round(dcol * s))
            if abs(oy) >= ny or abs(ox) >= nx:
                continue
            d = pixel_m * np.hypot(oy, ox)
            ys, yd = (slice(oy, ny), slice(0, ny - oy)) if oy >= 0 else (slice(0, ny + oy), slice(-oy, ny))
            xs, xd = (slice(ox, nx), slice(0, nx - ox)) if ox >= 0 else (slice(0, nx + ox), slice(-ox, nx))
            np.maximum(tan_b[yd, xd], (z[ys, xs] - z[yd, xd]) / np.float32(d), out=tan_b[yd, xd])
        # the slope's own plane hides the sky below it in directions facing uphill
        tan_plane = -tan_s * np.cos(phi - aspect)
        beta = np.clip(np.arctan(np.maximum(tan_b, tan_plane)), 0.0, np.pi / 2)
        hz = np.pi / 2 - beta
        total += cos_s * np.sin(hz) ** 2 + sin_s * np.cos(phi - aspect) * (hz - np.sin(hz) * np.cos(hz))
    v = np.clip(total / n_az, 0.0, 1.0)
    if obstruction:
        v = np.clip(v / ((1.0 + cos_s) / 2.0), 0.0, 1.0)
    return v.astype(np.float32)


@dataclass
class TerrainFields:
    """What a band's inversion reads per pixel of one grid (packed, see the module docstring)."""

    level: np.ndarray      # uint16, position among the model's height levels * LEVEL_SCALE
    cos_i: np.ndarray      # uint16, cos i * COS_SCALE, 0 in self or cast shadow
    sky_view: np.ndarray   # uint8, V * SVF_SCALE
    height_m: np.ndarray | None = None  # float32, kept where retrievals read it (60 m)

    @property
    def shape(self) -> tuple[int, int]:
        return self.level.shape

    def height_km(self) -> np.ndarray:
        if self.height_m is None:
            raise ValueError("heights not kept on this grid")
        return self.height_m / np.float32(1000.0)

    def level_position(self, r0: int = 0, r1: int | None = None) -> np.ndarray:
        return self.level[r0:r1].astype(np.float32) / np.float32(LEVEL_SCALE)

    def cos_incidence(self, r0: int = 0, r1: int | None = None) -> np.ndarray:
        return self.cos_i[r0:r1].astype(np.float32) / np.float32(COS_SCALE)

    def sky(self, r0: int = 0, r1: int | None = None) -> np.ndarray:
        return self.sky_view[r0:r1].astype(np.float32) / np.float32(SVF_SCALE)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.level, self.cos_i, self.sky_view, self.height_m) if a is not None)


def terrain_fields(height_m: np.ndarray, pixel_m: float, cells: CellGrid, sza_cells: np.ndarray,
                   saa_cells: np.ndarray, sky: np.ndarray, sun_mean: tuple[float, float],
                   levels_km: np.ndarray, keep_height: bool = False) -> TerrainFields:
    """Pack level position, incidence (with cast shadows) and sky view for one grid, block by block.

    ``levels_km``: the heights the model's coefficients are evaluated at (levels.choose_levels);

    ``sky``: the obstruction part of the sky-view factor (``sky_view(..., obstruction=True)``) on any
    coarser grid covering the tile (bilinear to this one);
    ``sza_cells``/``saa_cells``: sun angles on the cell grid (per-pixel incidence);
    ``sun_mean``: tile-mean (zenith, azimuth) for the cast-shadow sweep.
    """
    shape = height_m.shape
    shadow = cast_shadow(height_m, pixel_m, *sun_mean)
    cos_out = np.empty(shape, np.uint16)
    sky_grid = CellGrid(*sky.shape)
    svf_out = np.empty(shape, np.uint8)
    sin_a, cos_a = np.sin(np.radians(saa_cells)), np.cos(np.radians(saa_cells))
    for r0 in range(0, shape[0], BLOCK_ROWS):
        r1 = min(shape[0], r0 + BLOCK_ROWS)
        h0, h1 = max(0, r0 - 1), min(shape[0], r1 + 1)
        gx, gy = gradients(height_m[h0:h1], pixel_m, pixel_m)
        gx, gy = gx[r0 - h0:r0 - h0 + (r1 - r0)], gy[r0 - h0:r0 - h0 + (r1 - r0)]
        sza = cells.upsample_rows(sza_cells, shape, r0, r1)
        saa = np.degrees(np.arctan2(cells.upsample_rows(sin_a, shape, r0, r1),
                                    cells.upsample_rows(cos_a, shape, r0, r1)))
        ci = incidence_cosine(gx, gy, sza, saa)
        ci[shadow[r0:r1]] = 0.0
        cos_out[r0:r1] = np.rint(np.clip(ci, 0.0, 1.0) * COS_SCALE).astype(np.uint16)
        # the coarse grid's sky view split into the slope's own plane, (1 + cos S) / 2, and the
        # obstruction by distant terrain; the plane part is taken at this grid's slope
        v = sky_grid.upsample_rows(sky, shape, r0, r1) * (1.0 + np.cos(np.arctan(np.hypot(gx, gy)))) / 2.0
        svf_out[r0:r1] = np.rint(np.clip(v, 0.0, 1.0) * SVF_SCALE).astype(np.uint8)
    lev = np.empty(shape, np.uint16)
    for r0 in range(0, shape[0], BLOCK_ROWS):
        pos = level_position(height_m[r0:r0 + BLOCK_ROWS] / 1000.0, levels_km)
        lev[r0:r0 + BLOCK_ROWS] = np.rint(pos * LEVEL_SCALE).astype(np.uint16)
    return TerrainFields(lev, cos_out, svf_out, np.asarray(height_m, np.float32) if keep_height else None)
