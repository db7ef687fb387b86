"""DN <-> reflectance conversions and grid resampling between the 10/20/60 m grids.

Offsets and quantification values are always taken from the product metadata (never guessed
from the date or the baseline): since baseline 04.00 L1C carries RADIO_ADD_OFFSET = -1000 and
L2A carries BOA_ADD_OFFSET = -1000, and forgetting it biases every reflectance by 0.1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from s2l2a import jit

NODATA_DN = 0
SATURATED_DN = 65535
BOA_QUANTIFICATION = 10000.0
BOA_ADD_OFFSET = -1000.0
AOT_QUANTIFICATION = 1000.0
WVP_QUANTIFICATION = 1000.0


def dn_to_reflectance(dn: np.ndarray, quantification: float, offset: float = 0.0) -> np.ndarray:
    """L1C DN -> TOA reflectance (float32); DN 0 (no data) becomes NaN so it never looks dark."""
    dn = np.asarray(dn)
    rho = (dn.astype(np.float32) + np.float32(offset)) / np.float32(quantification)
    rho[dn == NODATA_DN] = np.nan
    return rho


def reflectance_to_dn(rho: np.ndarray, valid: np.ndarray | None = None,
                      quantification: float = BOA_QUANTIFICATION,
                      offset: float = BOA_ADD_OFFSET) -> np.ndarray:
    """BOA reflectance -> L2A DN (uint16) with the current convention DN = rho*Q - offset.

    DN 0 is reserved for no data, so valid pixels are clipped to [1, 65534]; NaN and ``~valid``
    pixels become 0.
    """
    dn = np.rint(rho * np.float32(quantification) - np.float32(offset))
    np.clip(dn, 1, SATURATED_DN - 1, out=dn)
    bad = ~np.isfinite(rho)
    if valid is not None:
        bad |= ~valid
    dn[bad] = NODATA_DN
    return dn.astype(np.uint16)


def _index_map(n_out: int, n_in: int) -> np.ndarray:
    """Source index of each target cell centre (nearest), for any size ratio."""
    return np.minimum(((np.arange(n_out) + 0.5) * n_in / n_out).astype(np.intp), n_in - 1)


def resample_nearest(arr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resampling of a 2-D array to ``shape`` (up or down, any ratio)."""
    if arr.shape == shape:
        return arr
    iy = _index_map(shape[0], arr.shape[0])
    ix = _index_map(shape[1], arr.shape[1])
    return arr[iy[:, None], ix[None, :]]


def resample_mean(arr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Downsample by block mean ignoring NaN when the ratio is an integer, else nearest.

    The real grids are exact multiples (10980/5490/1830), so the aggregate matches what Sen2Cor
    does for its 20/60 m versions of 10 m bands; decimated test products fall back to nearest.
    """
    if arr.shape == shape:
        return arr
    fy, ry = divmod(arr.shape[0], shape[0])
    fx, rx = divmod(arr.shape[1], shape[1])
    if ry or rx or fy < 1 or fx < 1 or fy != fx:
        return resample_nearest(arr, shape)
    a = arr.astype(np.float32, copy=False).reshape(shape[0], fy, shape[1], fx)
    with np.errstate(invalid="ignore"), _quiet():
        return np.nanmean(a, axis=(1, 3)).astype(np.float32)


def resample_dn_mean(dn: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Downsample a uint16 DN array by block mean of valid (non-zero) pixels; stays uint16.

    Rounds half up. Uses a parallel numba loop when numba is there (the numpy reduction over
    strided axes is ~50x slower on a full 10 m band), else numpy a few rows at a time.
    """
    if dn.shape == shape:
        return dn
    fy, ry = divmod(dn.shape[0], shape[0])
    fx, rx = divmod(dn.shape[1], shape[1])
    if ry or rx or fy != fx:
        return resample_nearest(dn, shape)
    out = np.empty(shape, np.uint16)
    kernel = _block_mean_kernel()
    if kernel is not None and dn.dtype == np.uint16:
        kernel(dn, fy, out)
        return out
    step = max(1, 512 // fy)  # a few output rows at a time keeps temporaries small
    for r0 in range(0, shape[0], step):
        r1 = min(shape[0], r0 + step)
        blk = dn[r0 * fy:r1 * fy].reshape(r1 - r0, fy, shape[1], fx)
        s = blk.sum(axis=(1, 3), dtype=np.uint32)
        n = np.count_nonzero(blk, axis=(1, 3))
        m = np.where(n > 0, (2 * s + n) // (2 * np.maximum(n, 1)), 0)
        out[r0:r1] = m.astype(np.uint16)
    return out


@jit.kernel
def _block_mean_kernel(numba: Any) -> Any:
    """Compile the block-mean loop on first use; None without numba (or with S2L2A_NO_NUMBA set)."""

    @numba.njit(parallel=True, nogil=True, cache=False)  # no cache: a job writes only to its staging dir
    def kernel(src, f, out):  # pragma: no cover - compiled
        h, w = out.shape
        for i in numba.prange(h):
            for j in range(w):
                s = 0
                n = 0
                for a in range(f):
                    for b in range(f):
                        v = src[i * f + a, j * f + b]
                        if v != 0:
                            s += v
                            n += 1
                out[i, j] = (2 * s + n) // (2 * n) if n > 0 else 0

    return kernel


def all_blocks(mask: np.ndarray, factor: int) -> np.ndarray:
    """Which ``factor`` x ``factor`` blocks of a boolean ``mask`` are all True (the mask's shape a
    whole multiple of ``factor``). Compiled when numba is there: numpy's ``reshape().all()`` over
    strided axes took ~1.0 s for a 10 m band's zeros onto 20 m, this pass ~0.06 s."""
    shape = (mask.shape[0] // factor, mask.shape[1] // factor)
    kernel = _all_blocks_kernel()
    if kernel is None:
        return mask.reshape(shape[0], factor, shape[1], factor).all(axis=(1, 3))
    out = np.empty(shape, np.bool_)
    kernel(np.ascontiguousarray(mask), factor, out)
    return out


@jit.kernel
def _all_blocks_kernel(numba: Any) -> Any:
    """Compile the all-True-block loop on first use; None without numba (or with S2L2A_NO_NUMBA set)."""

    @numba.njit(parallel=True, nogil=True, cache=False)  # no cache: a job writes only to its staging dir
    def kernel(src, f, out):  # pragma: no cover - compiled
        h, w = out.shape
        for i in numba.prange(h):
            for j in range(w):
                z = True
                for a in range(f):
                    for b in range(f):
                        if not src[i * f + a, j * f + b]:
                            z = False
                            break
                    if not z:
                        break
                out[i, j] = z

    return kernel


class _quiet:
    """Silence numpy's 'mean of empty slice' warnings inside a block."""

    def __enter__(self) -> None:
        import warnings
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._w.__exit__(*exc)
