"""Sun and viewing angles from the MTD_TL 5 km grids, resampled onto a working grid.

The tile metadata gives angles at grid nodes every 5 km starting at the tile's upper-left
corner, with NaN where a detector does not see the node (the grids reaching us are already
merged over detectors). NaNs are filled by the nearest valid node before interpolating, so the
swath edge gets the angles of the nearest seen ground instead of holes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

TILE_EXTENT_M = 109800.0


def fill_nan_nearest(grid: np.ndarray, default: float = 0.0) -> np.ndarray:
    """Replace NaN by the value of the nearest finite node (``default`` when none is finite)."""
    grid = np.asarray(grid, dtype=np.float64)
    bad = ~np.isfinite(grid)
    if not bad.any():
        return grid
    if bad.all():
        return np.full_like(grid, default)
    idx = ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True)
    return grid[tuple(idx)]


def interpolate_grid(grid: np.ndarray, step_m: float, shape: tuple[int, int],
                     extent_m: tuple[float, float] = (TILE_EXTENT_M, TILE_EXTENT_M)) -> np.ndarray:
    """Bilinear interpolation of a node grid (node 0 at the UL corner) to the cell centres of ``shape``."""
    g = fill_nan_nearest(grid)
    ys = (np.arange(shape[0]) + 0.5) * (extent_m[0] / shape[0]) / step_m
    xs = (np.arange(shape[1]) + 0.5) * (extent_m[1] / shape[1]) / step_m
    ys = np.clip(ys, 0, g.shape[0] - 1)
    xs = np.clip(xs, 0, g.shape[1] - 1)
    return ndimage.map_coordinates(g, np.meshgrid(ys, xs, indexing="ij"), order=1, mode="nearest")


def interpolate_azimuth(grid: np.ndarray, step_m: float, shape: tuple[int, int],
                        extent_m: tuple[float, float] = (TILE_EXTENT_M, TILE_EXTENT_M)) -> np.ndarray:
    """Like :func:`interpolate_grid` for azimuths: through sin/cos so 359 deg and 1 deg average to 0."""
    rad = np.deg2rad(fill_nan_nearest(grid))
    s = interpolate_grid(np.sin(rad), step_m, shape, extent_m)
    c = interpolate_grid(np.cos(rad), step_m, shape, extent_m)
    return np.rad2deg(np.arctan2(s, c)) % 360.0


def relative_azimuth(sun_az: np.ndarray, view_az: np.ndarray) -> np.ndarray:
    """|sun - view| azimuth folded into [0, 180] degrees (the LUT's symmetric axis)."""
    d = np.abs(np.asarray(sun_az) - np.asarray(view_az)) % 360.0
    return np.where(d > 180.0, 360.0 - d, d)


@dataclass
class Geometry:
    """Angles (degrees) on one working grid: sun, and per band view zenith and relative azimuth."""

    sza: np.ndarray
    saa: np.ndarray
    vza: dict[str, np.ndarray]
    raa: dict[str, np.ndarray]

    def band(self, band: str) -> tuple[np.ndarray, np.ndarray]:
        """(view zenith, relative azimuth) of a band; bands without a grid use the mean over bands."""
        if band in self.vza:
            return self.vza[band], self.raa[band]
        vz = np.mean(list(self.vza.values()), axis=0) if self.vza else np.zeros_like(self.sza)
        ra = np.mean(list(self.raa.values()), axis=0) if self.raa else np.zeros_like(self.sza)
        return vz, ra


def geometry_on_grid(angles, shape: tuple[int, int], mean_sun_zenith: float | None = None,
                     mean_sun_azimuth: float | None = None) -> Geometry:
    """Interpolate a product's ``AngleGrids`` onto ``shape`` covering the whole tile."""
    step = float(getattr(angles, "step_m", 5000.0) or 5000.0)
    sz_grid = np.asarray(angles.sun_zenith, dtype=np.float64)
    sa_grid = np.asarray(angles.sun_azimuth, dtype=np.float64)
    if not np.isfinite(sz_grid).any() and mean_sun_zenith is not None:
        sz_grid = np.full((2, 2), mean_sun_zenith)
    if not np.isfinite(sa_grid).any() and mean_sun_azimuth is not None:
        sa_grid = np.full((2, 2), mean_sun_azimuth)
    sza = interpolate_grid(sz_grid, step, shape)
    saa = interpolate_azimuth(sa_grid, step, shape)
    vza: dict[str, np.ndarray] = {}
    raa: dict[str, np.ndarray] = {}
    for band, vz in (angles.view_zenith or {}).items():
        va = (angles.view_azimuth or {}).get(band)
        if vz is None or not np.isfinite(vz).any():
            continue
        vza[band] = interpolate_grid(np.asarray(vz, dtype=np.float64), step, shape)
        if va is not None and np.isfinite(va).any():
            raa[band] = relative_azimuth(saa, interpolate_azimuth(np.asarray(va, np.float64), step, shape))
        else:
            raa[band] = np.zeros(shape)
    return Geometry(sza=sza, saa=saa, vza=vza, raa=raa)


class CellGrid:
    """A coarse grid of ``ny x nx`` cells over the whole tile, shared by every resolution.

    Aerosol and water vapour are retrieved per cell and the atmospheric coefficients are evaluated
    at cell centres only (the atmosphere and the angles vary over kilometres, not pixels); pixels
    then get them by bilinear interpolation between cell centres (:meth:`upsample_rows`).
    """

    def __init__(self, ny: int, nx: int) -> None:
        self.ny, self.nx = max(1, ny), max(1, nx)
        self._axes: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    @classmethod
    def for_tile(cls, shape60: tuple[int, int], cell_m: float = 1200.0,
                 extent_m: float = TILE_EXTENT_M, min_pixels: int = 3) -> CellGrid:
        """About ``cell_m`` wide cells, but at least ``min_pixels`` 60 m-grid pixels per cell."""
        n = int(round(extent_m / cell_m))
        return cls(max(1, min(n, shape60[0] // min_pixels)), max(1, min(n, shape60[1] // min_pixels)))

    @property
    def shape(self) -> tuple[int, int]:
        return (self.ny, self.nx)

    def labels(self, shape: tuple[int, int]) -> np.ndarray:
        """Cell index (row-major) of every pixel of a grid of ``shape``."""
        iy = np.minimum(((np.arange(shape[0]) + 0.5) * self.ny / shape[0]).astype(np.intp), self.ny - 1)
        ix = np.minimum(((np.arange(shape[1]) + 0.5) * self.nx / shape[1]).astype(np.intp), self.nx - 1)
        return iy[:, None] * self.nx + ix[None, :]

    def cell_mean(self, values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean of ``values`` over masked pixels, pixel count) per cell."""
        lab = self.labels(values.shape)[mask]
        n = np.bincount(lab, minlength=self.ny * self.nx).astype(np.float64)
        s = np.bincount(lab, weights=values[mask].astype(np.float64), minlength=self.ny * self.nx)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n > 0, s / np.maximum(n, 1), np.nan)
        return mean.reshape(self.shape), n.reshape(self.shape)

    @staticmethod
    def _axis(n_out: int, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
        u = (np.arange(n_out) + 0.5) * n_cells / n_out - 0.5
        u = np.clip(u, 0.0, n_cells - 1)
        i0 = np.minimum(np.floor(u).astype(np.intp), max(n_cells - 2, 0))
        w = (u - i0).astype(np.float32) if n_cells > 1 else np.zeros(n_out, np.float32)
        return i0, w

    def axes(self, shape: tuple[int, int]) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """Row and column (index, weight) of the bilinear interpolation onto ``shape``."""
        key = shape
        if key not in self._axes:
            self._axes[key] = (self._axis(shape[0], self.ny), self._axis(shape[1], self.nx))
        return self._axes[key]

    def upsample_rows(self, field: np.ndarray, shape: tuple[int, int], r0: int, r1: int) -> np.ndarray:
        """Rows ``r0:r1`` of ``field`` (cells) interpolated bilinearly onto a grid of ``shape``."""
        (iy, wy), (ix, wx) = self.axes(shape)
        f = np.asarray(field, np.float32)
        if self.ny == 1:
            rows = np.repeat(f[:1], r1 - r0, axis=0)
        else:
            i, w = iy[r0:r1], wy[r0:r1, None]
            rows = f[i] * (1 - w) + f[i + 1] * w
        if self.nx == 1:
            return np.repeat(rows[:, :1], shape[1], axis=1)
        return rows[:, ix] * (1 - wx) + rows[:, ix + 1] * wx

    def upsample(self, field: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """The whole ``field`` interpolated onto ``shape`` (float32)."""
        return self.upsample_rows(field, shape, 0, shape[0])
