"""TOA -> BOA with terrain (a DEM) and adjacency: the per-pixel inversion and what it is built from.

Used instead of the flat inversion of pipeline.invert_in_place when a DEM is given or the adjacency
correction is switched on (without either, the processor stays the flat, uniform-surface one).
The model and its references are in invert.py (``surface_reflectance``), levels.py (heights),
terrain.py (slope, shadows, sky view) and adjacency.py (environment); docs/accuracy.md says what was
validated.

Per band the inversion reads, per pixel: the L1C DN; the level stack on the ~1.2 km cells
(bilinear) at the pixel's height (linear between levels); from the terrain grid (20 m for the 10 and
20 m bands, 60 m for the 60 m bands) the incidence cosine with cast shadows (bilinear, so a 10 m
pixel reads between 20 m ones), the height and the sky-view factor (nearest); and the environment term on its ~120 m grid (bilinear). With numba the loop is
fused and parallel over rows; without, numpy does the same per block of rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from s2l2a import jit

from .adjacency import ENV_PIXEL_M, EnvironmentOperator, environment
from .dem import read_dem
from .geometry import CellGrid, Geometry
from .invert import surface_reflectance
from .levels import LEVEL_SCALE, NQ_KERNEL, LevelStack, choose_levels, level_position
from .radiometry import BOA_ADD_OFFSET, BOA_QUANTIFICATION, SATURATED_DN, resample_mean
from .terrain import COS_SCALE, SVF_SCALE, TerrainFields, sky_view, terrain_fields

ROWS_PER_BLOCK = 512


def env_factor(shape60: tuple[int, int], pixel60_m: float) -> int:
    """Aggregation of the 60 m grid to the ~120 m environment/sky-view grid (1 when not exact)."""
    k = max(1, int(round(ENV_PIXEL_M / max(pixel60_m, 1e-6))))
    while k > 1 and (shape60[0] % k or shape60[1] % k):
        k -= 1
    return k


def _block_mean(a: np.ndarray, k: int) -> np.ndarray:
    if k == 1:
        return np.asarray(a, np.float32)
    return resample_mean(np.asarray(a, np.float32), (a.shape[0] // k, a.shape[1] // k))


@dataclass
class Terrain:
    """The DEM on the 20 m and 60 m grids (packed fields) and on the environment grid (km)."""

    fields: dict[int, TerrainFields]
    env_level: np.ndarray          # level positions on the environment grid
    levels_km: np.ndarray
    details: dict[str, Any] = field(default_factory=dict)

    def for_shape(self, shape: tuple[int, int]) -> TerrainFields:
        """The finest terrain grid not finer than ``shape`` (10 m bands read the 20 m one)."""
        cands = sorted(self.fields.values(), key=lambda f: f.shape[0])
        fit = [f for f in cands if f.shape[0] <= shape[0]]
        return fit[-1] if fit else cands[0]


def prepare_terrain(dem: Path | str, grids: dict[int, Any], crs: Any, cells: CellGrid, geom: Geometry,
                    sun: tuple[float, float], table_nodes: Any = ()) -> Terrain:
    """Read the DEM onto the 20 m grid, derive the 60 m and ~120 m grids, pack the terrain fields.

    ``grids``: resolution -> object with ``shape`` and ``transform`` (the pipeline's Grid);
    ``table_nodes``: the look-up table's elevation nodes (always among the height levels).
    """
    g20, g60 = grids[20], grids[60]
    d20 = read_dem(dem, g20.shape, g20.transform, crs)
    h20 = d20.height_m
    if h20.shape[0] % g60.shape[0] == 0 and h20.shape[1] % g60.shape[1] == 0 \
            and h20.shape[0] // g60.shape[0] == h20.shape[1] // g60.shape[1]:
        h60 = resample_mean(h20, g60.shape)
    else:
        h60 = read_dem(dem, g60.shape, g60.transform, crs).height_m
    px20, px60 = abs(g20.transform.a), abs(g60.transform.a)
    k = env_factor(g60.shape, px60)
    henv = _block_mean(h60, k)
    svf = sky_view(henv, px60 * k, obstruction=True)
    zmin, zmax = float(np.min(h20)) / 1000.0, float(np.max(h20)) / 1000.0
    levels = choose_levels(zmin, zmax, table_nodes)
    f20 = terrain_fields(h20, px20, cells, geom.sza, geom.saa, svf, sun, levels)
    f60 = terrain_fields(h60, px60, cells, geom.sza, geom.saa, svf, sun, levels, keep_height=True)
    lit = f20.cos_i > 0
    details = {
        "dem": d20.source, "dem_void_percent": d20.void_percent, "dem_outside_percent": d20.outside_percent,
        "dem_min_m": round(zmin * 1000, 1), "dem_mean_m": round(float(np.mean(h20)), 1),
        "dem_max_m": round(zmax * 1000, 1),
        "shadow_percent": round(100.0 * float(np.mean(~lit)), 2),
        "sky_view_mean": round(float(np.mean(f20.sky_view)) / 250.0, 4),
        "terrain_bytes": f20.nbytes() + f60.nbytes(),
    }
    return Terrain({20: f20, 60: f60}, level_position(henv / 1000.0, levels), levels, details)


@dataclass
class SurfaceModel:
    """Everything the per-pixel inversion of every band reads (see the module docstring)."""

    stack: LevelStack
    terrain: Terrain | None
    env: dict[str, np.ndarray] = field(default_factory=dict)
    env_grid: CellGrid | None = None

    def invert_in_place(self, dn: np.ndarray, band: str, quantification: float, offset: float,
                        use_numba: bool = True, cirrus: np.ndarray | None = None) -> np.ndarray:
        """L1C DN -> L2A DN in place (0 and 65535 kept), like pipeline.invert_in_place."""
        shape = dn.shape
        tf = self.terrain.for_shape(shape) if self.terrain is not None else None
        env = self.env.get(band)
        kernel = _kernel() if use_numba and cirrus is None else None
        if kernel is not None:
            self._numba(kernel, dn, band, tf, env, quantification, offset)
            return dn
        return self._numpy(dn, band, tf, env, quantification, offset, cirrus)

    # -- numba
    def _numba(self, kernel: Any, dn: np.ndarray, band: str, tf: TerrainFields | None, env: np.ndarray | None,
               quant: float, offset: float) -> None:
        shape = dn.shape
        cells = self.stack.cells
        (iy, wy), (ix, wx) = cells.axes(shape)
        st = np.ascontiguousarray(_pad_cells(_derived(self.stack.coef[band], tf is not None)), np.float32)
        same = tf is not None and tf.shape == shape
        if tf is not None:
            (ty, twy), (tx, twx) = _terrain_axes(tf.shape, shape)
            if same:  # the band's own grid: the pixel itself, no interpolation
                ty, tx = np.arange(shape[0], dtype=np.intp), np.arange(shape[1], dtype=np.intp)
            lev, ci, sv = _pad_cells(tf.level), _pad_cells(tf.cos_i), _pad_cells(tf.sky_view)
        else:
            ty = tx = np.zeros(1, np.intp)
            twy = twx = np.zeros(1, np.float32)
            lev = np.zeros((2, 2), np.uint16)
            ci = np.zeros((2, 2), np.uint16)
            sv = np.zeros((2, 2), np.uint8)
        if env is not None:
            (eiy, ewy), (eix, ewx) = self.env_grid.axes(shape)
            ev = np.ascontiguousarray(_pad_cells(env[None]))[0]
        else:
            eiy = eix = np.zeros(1, np.intp)
            ewy = ewx = np.zeros(1, np.float32)
            ev = np.zeros((2, 2), np.float32)
        kernel(dn, iy, wy, ix, wx, st, ty, twy, tx, twx, lev, ci, sv, tf is not None, same, ev, eiy, ewy, eix,
               ewx, env is not None, np.float32(1.0 / quant), np.float32(offset), np.float32(BOA_QUANTIFICATION),
               np.float32(BOA_ADD_OFFSET), np.float32(1.0 / COS_SCALE), np.float32(1.0 / SVF_SCALE),
               np.float32(1.0 / LEVEL_SCALE))

    # -- numpy
    def _numpy(self, dn: np.ndarray, band: str, tf: TerrainFields | None, env: np.ndarray | None,
               quant: float, offset: float, cirrus: np.ndarray | None) -> np.ndarray:
        shape = dn.shape
        for r0 in range(0, shape[0], ROWS_PER_BLOCK):
            r1 = min(shape[0], r0 + ROWS_PER_BLOCK)
            blk = dn[r0:r1]
            keep = (blk == 0) | (blk == SATURATED_DN)
            rho = (blk.astype(np.float32) + np.float32(offset)) / np.float32(quant)
            if cirrus is not None:
                rho -= cirrus[r0:r1]
            if tf is not None:
                ci = terrain_rows(tf.cos_i, shape, r0, r1) / np.float32(COS_SCALE)
                lp, sv = (terrain_nearest(a, shape, r0, r1) / np.float32(k) for a, k in (
                    (tf.level, LEVEL_SCALE), (tf.sky_view, SVF_SCALE)))
            else:
                lp, ci, sv = None, np.float32(-1.0), np.float32(1.0)
            q = self.stack.pixels(band, shape, r0, r1, level_pos=lp)
            e = self.env_grid.upsample_rows(env, shape, r0, r1) if env is not None else None
            with np.errstate(divide="ignore", invalid="ignore"):
                boa = surface_reflectance(rho, q, ci, sv, e)
            v = np.floor(boa * np.float32(BOA_QUANTIFICATION) - np.float32(BOA_ADD_OFFSET) + np.float32(0.5))
            v[~np.isfinite(v)] = 1
            np.clip(v, 1, SATURATED_DN - 1, out=v)
            blk[~keep] = v[~keep].astype(np.uint16)
        return dn


def _derived(coef: np.ndarray, terrain: bool) -> np.ndarray:
    """The fused kernel's per-cell quantities: what the model multiplies by, so a pixel divides once.

    (levels, 8, ny, nx): path, 1/t_gas, t_up - t_dir_up, 1/t_dir_up, 1/t_up, t_dir_down (over mu_s
    with terrain: it multiplies cos i), t_down - t_dir_down, S (levels.QUANTITIES order in ``coef``).
    """
    p, tg, td, tu, s, tdd, tdu, mus = (coef[:, k] for k in range(NQ_KERNEL))
    return np.stack([p, 1.0 / tg, tu - tdu, 1.0 / tdu, 1.0 / tu, tdd / mus if terrain else tdd, td - tdd, s],
                    axis=1).astype(np.float32)


def _terrain_axes(tshape: tuple[int, int], shape: tuple[int, int]) -> tuple[tuple, tuple]:
    """Bilinear (index, weight) of a grid of ``shape`` in a terrain grid of ``tshape`` (centre-aligned;
    the same grid: weights 0, the pixel itself)."""
    return CellGrid(*tshape).axes(shape)


def terrain_rows(a: np.ndarray, shape: tuple[int, int], r0: int, r1: int) -> np.ndarray:
    """Rows r0:r1 of a terrain field interpolated bilinearly onto a grid of ``shape`` (float32)."""
    return CellGrid(*a.shape).upsample_rows(a.astype(np.float32), shape, r0, r1)


def terrain_nearest(a: np.ndarray, shape: tuple[int, int], r0: int, r1: int) -> np.ndarray:
    """Rows r0:r1 of a terrain field on a grid of ``shape``, from the nearest terrain pixel (float32)."""
    (iy, wy), (ix, wx) = CellGrid(*a.shape).axes(shape)
    ry = np.minimum(iy[r0:r1] + (wy[r0:r1] >= 0.5), a.shape[0] - 1)
    rx = np.minimum(ix + (wx >= 0.5), a.shape[1] - 1)
    return a[ry[:, None], rx[None, :]].astype(np.float32)


def _pad_cells(a: np.ndarray) -> np.ndarray:
    """At least 2 cells along the last two axes (single-cell grids), so i + 1 is always valid."""
    if a.shape[-2] == 1:
        a = np.concatenate([a, a], axis=-2)
    if a.shape[-1] == 1:
        a = np.concatenate([a, a], axis=-1)
    return a


def build_model(lut: Any, geom: Geometry, cells: CellGrid, bands: Any, aot: np.ndarray, wv: np.ndarray,
                shift_km: float, ozone_cm: float, terrain: Terrain | None, flat_elevation_km: float,
                adjacency: bool, toa60: dict[str, np.ndarray] | None = None,
                usable60: np.ndarray | None = None, pixel60_m: float = 60.0) -> SurfaceModel:
    """Level stack for every band and, with ``adjacency``, the environment term of every band.

    With ``terrain``, ``aot``/``wv`` are sea-level equivalents (levels.py); without, they hold at
    ``flat_elevation_km`` (one level). ``toa60``: 60 m TOA per band (NaN = no data); ``usable60``:
    pixels that may count as surroundings (not cloud, not no data, not saturated).
    """
    if terrain is not None:
        stack = LevelStack.build(lut, geom, cells, bands, terrain.levels_km, aot, wv, shift_km, ozone_cm,
                                 profile=True)
    else:
        stack = LevelStack.build(lut, geom, cells, bands, np.array([flat_elevation_km]), aot, wv, shift_km,
                                 ozone_cm, profile=False)
    model = SurfaceModel(stack, terrain)
    if not adjacency or toa60 is None:
        return model
    any_band = next(iter(toa60.values()))
    shape60 = any_band.shape
    k = env_factor(shape60, pixel60_m)
    env_shape = (shape60[0] // k, shape60[1] // k)
    mask = _block_mean(usable60.astype(np.float32), k) > 0.5 if usable60 is not None else np.ones(env_shape, bool)
    op = EnvironmentOperator(env_shape, pixel60_m * k, mask)
    model.env_grid = CellGrid(*env_shape)
    lp_env = terrain.env_level if terrain is not None else None
    for b in bands:
        if b not in toa60:
            continue
        toa = _block_mean(toa60[b], k)
        q = stack.pixels(b, env_shape, 0, env_shape[0], level_pos=lp_env)
        with np.errstate(divide="ignore", invalid="ignore"):
            model.env[b] = environment(np.nan_to_num(toa, nan=0.0), q, op)
    return model


# ------------------------------------------------------------------------------------------ numba


@jit.kernel
def _kernel(numba: Any) -> Any:
    """The fused per-pixel inversion, compiled on first use; None without numba."""

    @numba.njit(parallel=True, nogil=True, cache=False)  # no cache: a job writes only to its staging dir
    def kernel(dn, iy, wy, ix, wx, st, ty, twy, tx, twx, lev, cosi, svf, has_t, same, env, eiy, ewy, eix, ewx,
               has_env, inv_q, off, qo, oo, inv_cos, inv_svf, inv_lev):  # pragma: no cover - compiled
        # st: derived quantities (see _derived): path, 1/t_gas, t_dif_up, 1/t_dir_up, 1/t_up,
        # t_dir_down (/mu_s with terrain), t_dif_down, S
        h, w = dn.shape
        nl = st.shape[0]
        ncx = st.shape[3]
        one = np.float32(1.0)
        for r in numba.prange(h):
            i = iy[r]
            a = wy[r]
            row = np.empty((nl, 8, ncx), np.float32)
            for lv in range(nl):
                for k in range(8):
                    for j in range(ncx):
                        row[lv, k, j] = st[lv, k, i, j] * (one - a) + st[lv, k, i + 1, j] * a
            ncol_e = env.shape[1]
            erow = np.empty(ncol_e, np.float32)
            if has_env:
                ei = eiy[r]
                ea = ewy[r]
                for j in range(ncol_e):
                    erow[j] = env[ei, j] * (one - ea) + env[ei + 1, j] * ea
            tr = ty[r] if has_t else 0
            ta = twy[r] if has_t else np.float32(0.0)
            vals = np.empty(8, np.float32)
            for c in range(w):
                d = dn[r, c]
                if d == 0 or d == 65535:
                    continue
                j = ix[c]
                b = wx[c]
                tc = tx[c] if has_t else 0
                pos = np.float32(0.0)
                cc = np.float32(0.0)
                vv = np.float32(0.0)
                if has_t and same:
                    pos = np.float32(lev[tr, tc]) * inv_lev
                    cc = np.float32(cosi[tr, tc]) * inv_cos
                    vv = np.float32(svf[tr, tc]) * inv_svf
                elif has_t:
                    tb = twx[c]
                    w00 = (one - ta) * (one - tb)
                    w01 = (one - ta) * tb
                    w10 = ta * (one - tb)
                    w11 = ta * tb
                    cc = (w00 * np.float32(cosi[tr, tc]) + w01 * np.float32(cosi[tr, tc + 1])
                          + w10 * np.float32(cosi[tr + 1, tc]) + w11 * np.float32(cosi[tr + 1, tc + 1])) * inv_cos
                    # height and sky view vary slowly: the nearest terrain pixel
                    nr = tr + 1 if ta >= np.float32(0.5) else tr
                    nc = tc + 1 if tb >= np.float32(0.5) else tc
                    pos = np.float32(lev[nr, nc]) * inv_lev
                    vv = np.float32(svf[nr, nc]) * inv_svf
                if nl == 1:
                    for k in range(8):
                        vals[k] = row[0, k, j] * (one - b) + row[0, k, j + 1] * b
                else:
                    lv = int(pos)
                    if lv > nl - 2:
                        lv = nl - 2
                    u = pos - np.float32(lv)
                    if u > 1:
                        u = one
                    for k in range(8):
                        v0 = row[lv, k, j] * (one - b) + row[lv, k, j + 1] * b
                        v1 = row[lv + 1, k, j] * (one - b) + row[lv + 1, k, j + 1] * b
                        vals[k] = v0 + u * (v1 - v0)
                y = (np.float32(d) + off) * inv_q * vals[1] - vals[0]
                if has_env:
                    jj = eix[c]
                    bb = ewx[c]
                    e = erow[jj] * (one - bb) + erow[jj + 1] * bb
                    m = (y - vals[2] * e) * vals[3]
                else:
                    m = y * vals[4]
                    e = m
                if has_t:
                    irr = vals[5] * cc + vals[6] * vv + (vals[7] * vv + one - vv) * e
                else:
                    irr = vals[5] + vals[6] + vals[7] * e
                out = np.floor((m / irr) * qo - oo + np.float32(0.5))
                if not (out == out):
                    out = one
                elif out < 1.0:
                    out = one
                elif out > 65534.0:
                    out = np.float32(65534.0)
                dn[r, c] = np.uint16(out)

    return kernel



def field_dn_at_height(cells: CellGrid, field_sl: np.ndarray, shape: tuple[int, int], height_km: np.ndarray,
                       kind: str, valid: np.ndarray | None, quant: float) -> np.ndarray:
    """AOT ("AOT") or water vapour ("WVP") above each pixel from a sea-level-equivalent cell field."""
    from .levels import aot_factor, wv_factor

    factor = aot_factor if kind == "AOT" else wv_factor
    v = cells.upsample(field_sl, shape) * factor(height_km)
    v = np.clip(np.rint(v * quant), 1, SATURATED_DN - 1).astype(np.uint16)
    if valid is not None:
        v[~valid] = 0
    return v


#: the bands the aerosol and water-vapour retrievals read
RETRIEVAL_BANDS = ("B02", "B04", "B8A", "B09", "B12")
#: retrieval -> environment -> retrieval rounds (each removes most of the previous round's error)
RETRIEVAL_ROUNDS = 3


def flat_equivalent_toa(model: SurfaceModel, toa60: dict[str, np.ndarray],
                        height60_km: np.ndarray | None) -> dict[str, np.ndarray]:
    """60 m TOA as the same surface would give it flat and amid surroundings like itself.

    The dark-target (DDV) and B9/B8A retrievals invert cell means with the flat, uniform model; on
    slopes and next to brighter or darker land that model misreads the signal. With the model's
    environment term ``env`` (or env = M without adjacency) and terrain, the pixel's reflected
    signal is ``M = (Y - t_dif_up env) / t_dir_up`` under the irradiance ``E`` of invert.py; flat,
    it would be ``M E_flat / E`` with ``E_flat = t_down + S env``, giving ``t_gas (path + t_up M')``.
    """
    out = dict(toa60)
    for b in toa60:
        if b not in model.stack.coef or (b not in model.env and model.terrain is None):
            continue
        toa = toa60[b]
        shape = toa.shape
        tf = model.terrain.for_shape(shape) if model.terrain is not None else None
        q = model.stack.pixels(b, shape, 0, shape[0], level_pos=tf.level_position() if tf is not None else None)
        p, tg, td, tu, s, tdd, tdu = (q[k] for k in range(7))
        with np.errstate(divide="ignore", invalid="ignore"):
            y = toa / tg - p
            if b in model.env:
                e = model.env_grid.upsample(model.env[b], shape)
                m = (y - (tu - tdu) * e) / tdu
            else:
                m = y / tu
                e = m
            if tf is not None:
                from .invert import irradiance_factor

                m = m * (td + s * e) / irradiance_factor(q, e, tf.cos_incidence(), tf.sky())
            out[b] = np.where(np.isfinite(m), tg * (p + tu * m), toa).astype(np.float32)
    return out
