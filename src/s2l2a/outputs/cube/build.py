"""Build or extend a cube: derived index per product, masked by its SCL, put on one grid, mosaicked per day.

Streaming: the cube is written one time chunk (``time_chunk`` dates, 8 by default) at a time and,
within it, one strip of 512 rows (one chunk row) at a time, so memory holds a strip of each date of
the chunk plus one per-pixel counter, never a whole date or the whole season.

Per product and strip:

1. read the index and SCL windows that cover the strip (the derived COGs);
2. keep the index where the SCL class is one of the clear classes (default 4, 5, 6) and it is finite;
3. onto the cube's grid: a plain copy when the grids match (the single-tile case), else, with
   odc-geo, a nan-aware block mean when the cube is an integer factor coarser, then nearest
   neighbour (a cube pixel is clear if at least one clear source pixel fell in it).

Mosaic of one day's products (several tiles, or two orbits over one tile): **the clearest pixel wins**
-- per pixel, a clear observation wins over a cloudy or missing one; where several products see the
pixel clear (tile overlaps), the product with the larger clear fraction over the cube's area wins,
then the earlier product name.
"""

from __future__ import annotations

import math
import os
import queue
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from s2l2a import jit
from s2l2a.errors import ConfigError
from s2l2a.outputs.cube.sources import Observation
from s2l2a.outputs.cube.store import CODE_MAX, FILL, SCALE, SEPARATOR, CubeStore, DateRecord

N_CODES = 65536  # int16 codes: per-date histograms give exact quantiles of the stored values


@dataclass
class Day:
    """One date of the cube: its products in mosaic order."""

    day: date
    products: list[Observation]

    @property
    def time(self) -> np.datetime64:
        return np.datetime64(min(o.sensing_time for o in self.products).replace(tzinfo=None, microsecond=0), "s")


@dataclass
class _Stats:
    hist: np.ndarray
    clear: int = 0
    data: int = 0


@dataclass
class _StripOut:
    row0: int
    codes: np.ndarray                  # (k, rows, W) int16
    stats: list[_Stats] = field(default_factory=list)
    valid_count: np.ndarray | None = None   # (rows, W) clear observations in this batch


def _same_grid_offset(src: Any, dst: Any) -> tuple[int, int] | None:
    """(row, col) of ``dst``'s origin in ``src`` pixels when both share CRS and pixel size on whole
    pixel offsets; None otherwise."""
    a, b = src.transform, dst.transform
    if src.crs != dst.crs or a.b or a.d or b.b or b.d or not math.isclose(a.a, b.a) or not math.isclose(a.e, b.e):
        return None
    col, row = (b.c - a.c) / a.a, (b.f - a.f) / a.e
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return round(row), round(col)


def _nanmean_blocks(a: np.ndarray, k: int) -> np.ndarray:
    """Mean of the finite values of each k x k block (NaN where a block has none); pads with NaN."""
    h, w = a.shape
    hh, ww = -(-h // k) * k, -(-w // k) * k
    if (hh, ww) != (h, w):
        p = np.full((hh, ww), np.nan, dtype=np.float32)
        p[:h, :w] = a
        a = p
    blocks = a.reshape(hh // k, k, ww // k, k)
    ok = np.isfinite(blocks)
    n = ok.sum(axis=(1, 3))
    s = np.where(ok, blocks, 0).sum(axis=(1, 3), dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan).astype(np.float32)


def _any_blocks(a: np.ndarray, k: int) -> np.ndarray:
    h, w = a.shape
    hh, ww = -(-h // k) * k, -(-w // k) * k
    p = np.zeros((hh, ww), dtype=bool)
    p[:h, :w] = a
    return p.reshape(hh // k, k, ww // k, k).any(axis=(1, 3))


class _Source:
    """One product's derived index + SCL, read window by window onto the cube's grid."""

    def __init__(self, obs: Observation, grid: Any, clear: np.ndarray) -> None:
        import rasterio
        from odc.geo.geobox import GeoBox

        self.obs = obs
        self.clear = np.zeros(256, dtype=bool)  # SCL value -> clear, a lookup instead of np.isin
        self.clear[np.asarray(clear, dtype=np.uint8)] = True
        self.masked = ~self.clear
        self.idx = rasterio.open(obs.index_path)
        self.scl = rasterio.open(obs.scl_path)
        if (self.scl.width, self.scl.height, self.scl.transform) != (self.idx.width, self.idx.height,
                                                                     self.idx.transform):
            raise ConfigError(f"{obs.product}: its SCL and {obs.index_path.name} are not on one grid",
                              obs.scl_path)
        self.gbox = GeoBox((self.idx.height, self.idx.width), self.idx.transform, self.idx.crs)
        self.offset = _same_grid_offset(self.gbox, grid)

    def close(self) -> None:
        self.idx.close()
        self.scl.close()

    def _read(self, r0: int, r1: int, c0: int, c1: int, mask: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Index (float32; NaN where not clear unless ``mask`` is False) and SCL (uint8, 0 = no data)
        of a source window."""
        from rasterio.windows import Window

        win = Window(c0, r0, c1 - c0, r1 - r0)
        v = self.idx.read(1, window=win, out_dtype="float32")
        s = self.scl.read(1, window=win)
        if mask:
            np.putmask(v, self.masked[s], np.nan)  # derived indices hold NaN, never inf, where they have no value
        return v, s

    def clear_fraction(self, grid: Any) -> float:
        """Clear share of this product's pixels with data inside the grid (the mosaic's ranking)."""
        roi = self._roi(grid)
        if roi is None:
            return 0.0
        (r0, r1), (c0, c1) = roi
        from rasterio.windows import Window

        s = self.scl.read(1, window=Window(c0, r0, c1 - c0, r1 - r0))
        data = int((s != 0).sum())
        return float(self.clear[s].sum()) / data if data else 0.0

    def _roi(self, grid: Any) -> tuple[tuple[int, int], tuple[int, int]] | None:
        """The source window that covers ``grid`` (clipped to the image), None when they do not meet."""
        from odc.geo.overlap import compute_reproject_roi

        h, w = self.idx.height, self.idx.width
        if self.offset is not None:
            ro, co = self.offset
            r0, c0, r1, c1 = max(0, ro), max(0, co), min(h, ro + grid.shape.y), min(w, co + grid.shape.x)
        else:
            ys, xs = compute_reproject_roi(self.gbox, grid).roi_src
            r0, r1, c0, c1 = max(0, ys.start), min(h, ys.stop), max(0, xs.start), min(w, xs.stop)
        if r1 <= r0 or c1 <= c0:
            return None
        return (r0, r1), (c0, c1)

    def strip(self, strip_gbox: Any, row0: int, mask: bool = True) -> tuple[np.ndarray, np.ndarray, bool] | None:
        """This product on the cube's rows ``row0:row0 + rows``: the index, a has-data array (uint8, 0
        where the product has no data: its SCL on the same grid) and whether the index is masked
        already (NaN where not clear; always when it had to be warped)."""
        rows, width = int(strip_gbox.shape.y), int(strip_gbox.shape.x)
        if self.offset is not None:
            ro, co = self.offset
            r0, c0 = ro + row0, co
            sr0, sr1 = max(0, r0), min(self.idx.height, r0 + rows)
            sc0, sc1 = max(0, c0), min(self.idx.width, c0 + width)
            if sr1 <= sr0 or sc1 <= sc0:
                return None
            v, d = self._read(sr0, sr1, sc0, sc1, mask)
            if v.shape == (rows, width):
                return v, d, mask  # the strip lies inside the image: no copy
            vals = np.full((rows, width), np.nan, dtype=np.float32)
            data = np.zeros((rows, width), dtype=np.uint8)
            vals[sr0 - r0:sr1 - r0, sc0 - c0:sc1 - c0] = v
            data[sr0 - r0:sr1 - r0, sc0 - c0:sc1 - c0] = d
            return vals, data, mask
        vals = np.full((rows, width), np.nan, dtype=np.float32)
        data = np.zeros((rows, width), dtype=np.uint8)
        return self._warp(strip_gbox, vals, data)

    def _warp(self, strip_gbox: Any, vals: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        from odc.geo.overlap import compute_reproject_roi
        from odc.geo.warp import rio_reproject

        info = compute_reproject_roi(self.gbox, strip_gbox)
        ys, xs = info.roi_src
        dy, dx = info.roi_dst
        h, w = self.idx.height, self.idx.width
        r0, r1, c0, c1 = max(0, ys.start), min(h, ys.stop), max(0, xs.start), min(w, xs.stop)
        if r1 <= r0 or c1 <= c0 or dy.stop <= dy.start or dx.stop <= dx.start:
            return None
        v, d = self._read(r0, r1, c0, c1)
        src_gbox = self.gbox[r0:r1, c0:c1]
        k = int(info.read_shrink)
        if k > 1:
            v, d, src_gbox = _nanmean_blocks(v, k), _any_blocks(d != 0, k), src_gbox.zoom_out(k)
        dst_gbox = strip_gbox[dy, dx]
        du8 = np.zeros(vals[dy, dx].shape, dtype=np.uint8)
        rio_reproject(v, vals[dy, dx], src_gbox, dst_gbox, "nearest", src_nodata=np.nan, dst_nodata=np.nan)
        rio_reproject((d != 0).astype(np.uint8), du8, src_gbox, dst_gbox, "nearest", src_nodata=None, dst_nodata=0)
        data[dy, dx] = du8
        return vals, data, True


def _histogram(codes: np.ndarray) -> np.ndarray:
    """Counts of each int16 code, indexed by ``code + 32768``; the fill value is not counted."""
    h = np.bincount(codes.view(np.uint16).ravel(), minlength=N_CODES)  # bin = code mod 65536
    h = np.roll(h, 32768)                                               # bin = code + 32768
    h[FILL + 32768] = 0
    return h


def _finish(vals: np.ndarray, data: np.ndarray, lut: np.ndarray | None, inside: np.ndarray | None,
            codes: np.ndarray, valid_count: np.ndarray, scratch: np.ndarray) -> tuple[np.ndarray, int, int]:
    """One date's strip to stored codes: mask by SCL (``lut`` given: ``data`` is the SCL), the AOI,
    quantize (``round(v / 1e-4)``, beyond int16 = nodata), count. Returns (histogram of the codes,
    clear pixels, pixels with data). ``vals`` is overwritten. A fused numba loop when numba is there."""
    kernel = _finish_kernel()
    if kernel is not None:
        hist = np.zeros(N_CODES, dtype=np.int64)
        n_clear, n_data = kernel(vals, data, lut if lut is not None else _NO_LUT, lut is not None,
                                 inside if inside is not None else _NO_INSIDE, inside is not None,
                                 codes, hist, valid_count)
        return hist, int(n_clear), int(n_data)
    if lut is not None:
        np.putmask(vals, ~lut[data], np.nan)
    if inside is not None:
        vals[~inside] = np.nan
        n_data = np.count_nonzero(np.logical_and(data, inside))
    else:
        n_data = np.count_nonzero(data)
    with np.errstate(invalid="ignore"):
        code = np.divide(vals, SCALE, out=vals)
        np.rint(code, out=code)
        valid = np.abs(code, out=scratch) <= CODE_MAX   # False for NaN: one test for both
    np.copyto(codes, code, where=valid, casting="unsafe")
    hist = _histogram(codes)
    valid_count += valid
    return hist, int(hist.sum()), int(n_data)


_NO_LUT = np.zeros(256, dtype=bool)
_NO_INSIDE = np.zeros((1, 1), dtype=bool)

@jit.kernel
def _finish_kernel(numba: Any) -> Any:
    """Compile the fused loop of :func:`_finish` on first use; None without numba (or with
    S2L2A_NO_NUMBA set). Serial (the histogram is shared) and nogil, so strips still run side by side."""
    scale = np.float32(SCALE)

    @numba.njit(nogil=True, cache=True)  # compiled once per installation (numba's cache, like .pyc files)
    def kernel(vals, data, lut, use_lut, inside, use_inside, codes, hist, valid_count):  # pragma: no cover
        h, w = vals.shape
        n_clear = 0
        n_data = 0
        for i in range(h):
            for j in range(w):
                if use_inside and not inside[i, j]:
                    continue
                d = data[i, j]
                if d != 0:
                    n_data += 1
                if use_lut and not lut[d]:
                    continue
                x = vals[i, j]
                if x != x:
                    continue
                c = np.rint(x / scale)
                if c > 32767.0 or c < -32767.0:
                    continue
                k = np.int16(c)
                codes[i, j] = k
                hist[np.int64(k) + 32768] += 1
                valid_count[i, j] += 1
                n_clear += 1
        return n_clear, n_data

    return kernel


def _quantiles(hist: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """numpy's default ('linear') quantiles of the values a histogram of int16 codes counts."""
    n = int(hist.sum())
    if n == 0:
        return [float("nan")] * len(qs)
    cum = np.cumsum(hist)
    out = []
    for q in qs:
        pos = (n - 1) * q
        lo, hi = math.floor(pos), math.ceil(pos)
        a = int(np.searchsorted(cum, lo + 1))      # code index of the lo-th sorted value (0-based)
        b = int(np.searchsorted(cum, hi + 1))
        va, vb = (a - 32768) * SCALE, (b - 32768) * SCALE
        out.append(float(va + (vb - va) * (pos - lo)))
    return out


class Batch:
    """Up to one time chunk of days, written strip by strip and committed at the end."""

    def __init__(self, days: list[Day], grid: Any, aoi: Any, clear: np.ndarray, workers: int) -> None:
        self.days = days
        self.grid = grid
        self.aoi = aoi
        self.clear = clear
        self.workers = max(1, workers)
        self._local = threading.local()
        self._opened: list[_Source] = []
        self._lock = threading.Lock()
        self._free: queue.SimpleQueue[np.ndarray] = queue.SimpleQueue()
        self.strip_rows = 0
        self.order: list[list[Observation]] = []

    def _sources(self) -> list[list[_Source]]:
        """This thread's open sources (GDAL handles are not shared between threads)."""
        got = getattr(self._local, "sources", None)
        if got is None:
            got = [[_Source(o, self.grid, self.clear) for o in products] for products in self.order]
            with self._lock:
                self._opened += [s for ss in got for s in ss]
            self._local.sources = got
        return got

    def rank(self) -> None:
        """Mosaic order of each day: clear fraction over the grid, descending; then product name."""
        for d in self.days:
            if len(d.products) == 1:
                self.order.append(list(d.products))
                continue
            scored = []
            for o in d.products:
                s = _Source(o, self.grid, self.clear)
                try:
                    scored.append((-s.clear_fraction(self.grid), o.product, o))
                finally:
                    s.close()
            self.order.append([o for *_k, o in sorted(scored, key=lambda t: (t[0], t[1]))])

    def _buffer(self, k: int, rows: int, width: int) -> np.ndarray:
        """A (k, rows, width) int16 strip filled with the fill value, reusing written ones (fresh pages
        cost more than filling old ones)."""
        try:
            buf = self._free.get_nowait()
        except queue.Empty:
            buf = np.empty((k, self.strip_rows, width), dtype=np.int16)
        buf.fill(FILL)
        return buf[:, :rows]

    def _release(self, codes: np.ndarray) -> None:
        base = codes.base if codes.base is not None else codes
        self._free.put(base)

    def close(self) -> None:
        for s in self._opened:
            s.close()
        self._opened.clear()

    def strip(self, row0: int, rows: int) -> _StripOut:
        from rasterio.features import geometry_mask

        sources = self._sources()
        strip_gbox = self.grid[row0:row0 + rows, :]
        width = int(self.grid.shape.x)
        inside = None
        if self.aoi is not None:
            from shapely.geometry import box

            if not self.aoi.contains(box(*strip_gbox.boundingbox[:4])):
                inside = geometry_mask([self.aoi], out_shape=(rows, width), transform=strip_gbox.transform,
                                       invert=True)
        k = len(self.days)
        out = _StripOut(row0, self._buffer(k, rows, width))
        valid_count = np.zeros((rows, width), dtype=np.uint16)
        scratch = np.empty((rows, width), dtype=np.float32)
        for j, srcs in enumerate(sources):
            vals, data, lut = None, None, None
            if len(srcs) == 1:  # no mosaic: the SCL mask is applied with the quantization, in one pass
                got = srcs[0].strip(strip_gbox, row0, mask=False)
                if got is not None:
                    vals, data, masked = got
                    lut = None if masked else srcs[0].clear
                srcs = []
            for s in srcs:
                got = s.strip(strip_gbox, row0)
                if got is None:
                    continue
                v, d, _masked = got
                if vals is None:
                    vals, data = v, d
                    continue
                take = np.isnan(vals) & np.isfinite(v)   # the first clear observation in mosaic order wins
                vals[take] = v[take]
                data = np.logical_or(data, d)
            if vals is None:
                vals = np.full((rows, width), np.nan, dtype=np.float32)
                data = np.zeros((rows, width), dtype=np.uint8)
            if data.dtype != np.uint8:
                data = data.view(np.uint8)   # a mosaic's union of has-data masks (bool)
            hist, n_clear, n_data = _finish(vals, data, lut, inside, out.codes[j], valid_count, scratch)
            out.stats.append(_Stats(hist, n_clear, n_data))
        out.valid_count = valid_count
        return out

    def run(self, store: CubeStore, counts: np.ndarray, strip_rows: int) -> list[DateRecord]:
        """Write the batch's days after the committed ones and commit them."""
        self.rank()
        h = int(self.grid.shape.y)
        k = len(self.days)
        start = store.extend(k)
        hists = [np.zeros(N_CODES, dtype=np.int64) for _ in range(k)]
        clear_px = [0] * k
        data_px = [0] * k

        self.strip_rows = strip_rows

        def write(row0: int, codes: np.ndarray) -> None:
            store.write_strip(start, row0, codes)
            self._release(codes)

        def one(row0: int) -> _StripOut:
            o = self.strip(row0, min(strip_rows, h - row0))
            write(row0, o.codes)
            o.codes = o.codes[:0]  # written: only the statistics travel back
            return o

        def merge(o: _StripOut) -> None:
            for j, st in enumerate(o.stats):
                hists[j] += st.hist
                clear_px[j] += st.clear
                data_px[j] += st.data
            counts[o.row0:o.row0 + o.valid_count.shape[0]] += o.valid_count

        rows0 = range(0, h, strip_rows)
        try:
            if self.workers == 1:  # one thread reads and computes, another compresses and writes
                with ThreadPoolExecutor(1) as writer:
                    pending: deque[Any] = deque()
                    for row0 in rows0:
                        o = self.strip(row0, min(strip_rows, h - row0))
                        pending.append(writer.submit(write, row0, o.codes))
                        merge(o)
                        while len(pending) > 2:
                            pending.popleft().result()
                    while pending:
                        pending.popleft().result()
            else:  # strips cover whole chunk rows, so threads never write one chunk twice
                with ThreadPoolExecutor(self.workers) as pool:
                    for o in pool.map(one, rows0):
                        merge(o)
        finally:
            self.close()
        records = []
        for j, d in enumerate(self.days):
            order = self.order[j]
            q25, med, q75 = _quantiles(hists[j], (0.25, 0.5, 0.75))
            records.append(DateRecord(
                time=d.time, product=SEPARATOR.join(o.product for o in order),
                tile=SEPARATOR.join(o.tile for o in order),
                baseline=SEPARATOR.join(o.baseline or "?" for o in order),
                processor=SEPARATOR.join(o.processor or "?" for o in order),
                processor_version=SEPARATOR.join(o.processor_version or "?" for o in order),
                clear_fraction=clear_px[j] / data_px[j] if data_px[j] else float("nan"),
                clear_pixels=clear_px[j], data_pixels=data_px[j], median=med, q25=q25, q75=q75))
        store.write_records(start, records)
        store.commit(k)
        return records


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


ProgressFn = Callable[[str], None]
