"""Water vapour column from the B9 (945 nm absorption) / B8A (865 nm window) ratio, per cell.

Over land brighter than 0.1 in B8A, the surface reflectance at 945 nm is taken equal to B8A's
(a flat-continuum approximation of Sen2Cor's APDA); for every candidate on the water-vapour axis
the B8A TOA is inverted, then forwarded through B9's coefficients, and the water vapour is where
that prediction meets the observed B9 TOA. Cells without usable pixels take the AUX_DATA prior
(ECMWF total column water vapour) or the default.
"""

from __future__ import annotations

import logging

import numpy as np

from .aerosol import CoeffFn, InvertFn, Retrieval, fill_and_smooth, roots
from .geometry import CellGrid

log = logging.getLogger(__name__)

WV_CANDIDATES = np.array([0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.3, 1.6, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0])  # g/cm2
MIN_PIXELS_PER_CELL = 5
MIN_B8A = 0.10  # darker surfaces (water, shadows) give a B9/B8A ratio dominated by noise


def retrieve_wv(toa60: dict[str, np.ndarray], usable: np.ndarray, cells: CellGrid, coeffs: CoeffFn,
                invert: InvertFn, forward: InvertFn, aot_cells: np.ndarray, prior: float,
                prior_source: str, candidates: np.ndarray = WV_CANDIDATES,
                elevation: np.ndarray | None = None) -> Retrieval:
    """Water vapour (g/cm2) per cell from the 60 m TOA B8A and B09.

    ``elevation`` (km, 60 m grid; with a DEM): each cell is inverted at the mean height of the pixels
    used, ``aot_cells`` and the result are sea-level equivalents (levels.py profiles).
    """
    if "B09" not in toa60 or "B8A" not in toa60:
        return Retrieval(np.full(cells.shape, prior), prior_source, 0, {"reason": "B09/B8A missing"})
    b8a, b9 = toa60["B8A"], toa60["B09"]
    with np.errstate(invalid="ignore"):
        mask = usable & np.isfinite(b8a) & np.isfinite(b9) & (b8a > MIN_B8A) & (b9 > 0)
    m8a, count = cells.cell_mean(b8a, mask)
    m9, _ = cells.cell_mean(b9, mask)
    ok = (count >= MIN_PIXELS_PER_CELL) & np.isfinite(m8a) & np.isfinite(m9)
    if not ok.any():
        log.info("no pixel usable for water vapour: %s (%.2f g/cm2)", prior_source, prior)
        return Retrieval(np.full(cells.shape, prior), prior_source, 0, {"pixels": int(mask.sum())})
    idx = np.nonzero(ok)
    n = len(idx[0])
    wv = np.broadcast_to(candidates[:, None], (len(candidates), n))
    aot_at = aot_cells[idx]
    extra: tuple = ()
    if elevation is not None:
        from .levels import aot_factor

        z_cell = cells.cell_mean(elevation, mask)[0][idx]
        aot_at = aot_at * aot_factor(z_cell)
        extra = (z_cell[None, :],)
    aot = np.broadcast_to(aot_at[None, :], wv.shape)
    boa8a = np.asarray(invert(np.ascontiguousarray(np.broadcast_to(m8a[idx], wv.shape)),
                              coeffs("B8A", aot, wv, idx, *extra)), dtype=np.float64)
    pred9 = np.asarray(forward(boa8a, coeffs("B09", aot, wv, idx, *extra)), dtype=np.float64)
    residual = pred9 - m9[idx][None, :]
    got = roots(residual, candidates)
    got[np.isnan(got) & (residual[-1] > 0)] = candidates[-1]  # wetter than the axis: clamp
    if extra:
        from .levels import wv_factor

        got = got / wv_factor(extra[0][0])  # sea-level equivalent
    cells_f = np.full(cells.shape, np.nan)
    cells_f[idx] = got
    n_ok = int(np.isfinite(cells_f).sum())
    if n_ok == 0:
        return Retrieval(np.full(cells.shape, prior), prior_source, 0, {"pixels": int(mask.sum())})
    return Retrieval(fill_and_smooth(cells_f), "ratio", n_ok,
                     {"pixels": int(mask.sum()), "wv_retrieved_mean": float(np.nanmean(cells_f))})
