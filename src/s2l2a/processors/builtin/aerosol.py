"""Aerosol optical thickness (550 nm) from dark dense vegetation, on the coarse cell grid.

Kaufman's dark-target idea as Sen2Cor uses it: over dense dark vegetation the 2.2 um band (B12) is
almost unaffected by aerosol and the surface reflectances are tied: rho_red = 0.5 * rho_B12 and
rho_blue = 0.5 * rho_red (ratios from L2A_CAL_AC_GIPP.xml). For each cell holding enough DDV pixels
the AOT is the one for which the inverted red reflectance meets its ratio to B12 (root found on a
candidate AOT axis; the blue root is computed and reported, not used, as in Sen2Cor). Cells without
DDV are filled from the nearest retrieved cells, the field is smoothed, and a scene without DDV falls
back to the AUX_DATA prior (CAMS AOD550) or the documented default.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .geometry import CellGrid, fill_nan_nearest
from .sclgipp import ACGipp, load_ac_gipp

log = logging.getLogger(__name__)

#: candidate AOTs; the root is interpolated linearly between them (the residual is smooth in AOT),
#: so a sparse axis costs little accuracy and keeps the LUT evaluations of a full tile to ~1 s
AOT_CANDIDATES = np.array([0.0, 0.03, 0.06, 0.1, 0.15, 0.2, 0.27, 0.35, 0.45, 0.6, 0.8, 1.0, 1.2])
MIN_DDV_PER_CELL = 5        # 60 m pixels needed before a cell's mean is trusted
SMOOTH_SIGMA_CELLS = 1.0    # Gaussian smoothing of the filled field, in cells (~1.2 km)
DDV_NDVI_MIN = 0.10         # AC_Swir_Refl_Ndvi_Th: a DDV pixel must be vegetated

#: coeffs(band, aot, wv, cell_index[, elevation_km]) -> Coefficients at the cells ``cell_index`` (a tuple
#: of index arrays into the cell grid); ``aot``/``wv`` have shape (..., n_cells) and the result broadcasts
#: alike; ``elevation_km`` (optional, broadcastable) overrides the scene's flat surface height
CoeffFn = Callable[[str, np.ndarray, np.ndarray, tuple], object]
InvertFn = Callable[[np.ndarray, object], np.ndarray]


@dataclass
class Retrieval:
    """A field on the cell grid and how it was obtained."""

    cells: np.ndarray
    source: str                 # "ddv", "ratio", "prior" or "default"
    n_cells_retrieved: int = 0
    details: dict = field(default_factory=dict)


def roots(residual: np.ndarray, axis_values: np.ndarray) -> np.ndarray:
    """First zero crossing (decreasing residual) along axis 0, linearly interpolated; NaN if none.

    ``residual`` has shape (n_candidates, ...); a residual already negative at the first candidate
    gives the first candidate (the retrieval cannot go below the axis).
    """
    r = residual
    n = r.shape[0]
    out = np.full(r.shape[1:], np.nan)
    out[r[0] <= 0] = axis_values[0]
    for k in range(n - 1):
        hit = np.isnan(out) & (r[k] > 0) & (r[k + 1] <= 0)
        if hit.any():
            f = r[k][hit] / (r[k][hit] - r[k + 1][hit])
            out[hit] = axis_values[k] + f * (axis_values[k + 1] - axis_values[k])
    return out


def ddv_mask(toa: dict[str, np.ndarray], usable: np.ndarray, upper: float, lower: float) -> np.ndarray:
    """Dense dark vegetation: B12 between the GIPP's SWIR thresholds and vegetated (NDVI)."""
    b12, b4, b8a = toa["B12"], toa["B04"], toa["B8A"]
    with np.errstate(invalid="ignore", divide="ignore"):
        ndvi = (b8a - b4) / (b8a + b4)
        return usable & (b12 >= lower) & (b12 <= upper) & (ndvi > DDV_NDVI_MIN)


def fill_and_smooth(cells: np.ndarray, sigma: float = SMOOTH_SIGMA_CELLS) -> np.ndarray:
    """Nearest-cell hole filling then Gaussian smoothing (reflective edges)."""
    filled = fill_nan_nearest(cells)
    if sigma > 0 and min(filled.shape) > 1:
        filled = ndimage.gaussian_filter(filled, sigma=sigma, mode="nearest")
    return filled


def retrieve_aot(toa60: dict[str, np.ndarray], usable: np.ndarray, cells: CellGrid, coeffs: CoeffFn,
                 invert: InvertFn, wv_cells: np.ndarray, prior: float, prior_source: str,
                 gipp: ACGipp | None = None, candidates: np.ndarray = AOT_CANDIDATES,
                 elevation: np.ndarray | None = None) -> Retrieval:
    """AOT550 per cell from DDV pixels of the 60 m TOA bands (B02, B04, B8A, B12).

    ``elevation`` (km, 60 m grid; with a DEM): each cell is inverted at the mean height of its DDV
    pixels, ``wv_cells`` and the result are sea-level equivalents (levels.py profiles).
    """
    g = gipp or load_ac_gipp()
    n_usable = int(usable.sum())
    mask = np.zeros_like(usable)
    used_upper = None
    for upper in g.swir_upper:  # widen the B12 window until enough DDV (Sen2Cor's iteration)
        mask = ddv_mask(toa60, usable, upper, g.swir_lower)
        used_upper = upper
        if n_usable and 100.0 * mask.sum() / n_usable >= g.min_ddv_area_pct:
            break
    means = {}
    count = None
    for b in ("B02", "B04", "B12"):
        means[b], count = cells.cell_mean(toa60[b], mask)
    ok = count >= MIN_DDV_PER_CELL
    ok &= np.isfinite(means["B02"]) & np.isfinite(means["B04"]) & np.isfinite(means["B12"])
    details = {"ddv_pixels": int(mask.sum()), "usable_pixels": n_usable, "b12_upper": used_upper}
    if not ok.any():
        log.info("no dense dark vegetation: AOT from %s (%.3f)", prior_source, prior)
        return Retrieval(np.full(cells.shape, prior), prior_source, 0, details)

    idx = np.nonzero(ok)
    cand = candidates[:, None]
    z_cell = None
    wv_at = wv_cells[idx]
    if elevation is not None:
        from .levels import wv_factor

        z_cell = cells.cell_mean(elevation, mask)[0][idx]
        wv_at = wv_at * wv_factor(z_cell)
    wv = np.broadcast_to(wv_at[None, :], (len(candidates), len(idx[0])))
    aot = np.broadcast_to(cand, wv.shape)
    boa = {}
    for b in ("B02", "B04", "B12"):
        c = coeffs(b, aot, wv, idx) if z_cell is None else coeffs(b, aot, wv, idx, z_cell[None, :])
        toa = np.broadcast_to(means[b][idx][None, :], wv.shape)
        boa[b] = np.asarray(invert(np.ascontiguousarray(toa), c), dtype=np.float64)
    red_target = g.red_swir_ratio * boa["B12"]
    r_red = boa["B04"] - red_target
    r_blue = boa["B02"] - g.blue_red_ratio * red_target
    a_red = roots(r_red, candidates)
    a_blue = roots(r_blue, candidates)
    # like Sen2Cor, the AOT comes from the red band; the blue/red ratio is the weaker empirical relation,
    # so the blue root is only reported (a large gap says the aerosol model or the ratios do not fit)
    field_ = np.full(cells.shape, np.nan)
    if z_cell is not None:
        from .levels import aot_factor

        a_red = a_red / aot_factor(z_cell)  # sea-level equivalent
    field_[idx] = a_red
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        details["aot_blue_mean"] = float(np.nanmean(a_blue)) if np.isfinite(a_blue).any() else None
    n_ok = int(np.isfinite(field_).sum())
    if n_ok == 0:
        return Retrieval(np.full(cells.shape, prior), prior_source, 0, details)
    details["aot_retrieved_mean"] = float(np.nanmean(field_))
    return Retrieval(fill_and_smooth(field_), "ddv", n_ok, details)
