"""The built-in conversion of one L1C granule: read, classify, retrieve, invert, write.

Order of work, chosen for speed and memory on a full tile (decoding the JPEG 2000 inputs is most of
the floor):

1. every present band is decoded once, one at a time, in windows of whole 1024-px JP2 tile rows, and
   reduced at once to what the analysis needs (its 60 m version, the 20 m version of the bands the
   classification reads, its zeros on each output grid); the whole band waits in a raw scratch file
   beside the product (the page cache holds it) instead of in memory (:func:`decode_reduced`);
2. 60 m TOA feeds the 60 m scene classification, the AOT (DDV) and water-vapour (B9/B8A) retrievals
   on the coarse cell grid (~1.2 km), and the atmospheric coefficients of every band are evaluated
   once per cell; the 20 m classification runs block by block (:func:`analyse`);
3. each band is read back, inverted TOA -> BOA in place (uint16 DN in, uint16 DN out; coefficients
   interpolated bilinearly from the cells per pixel, fused in numba when available), written, its
   20/60 m versions derived by block means, and freed; the full-size true colour is built strip by
   strip from the inverted B02-B04 in scratch files. Memory holds about one band and its output.

The deliverable-only run (deliverable.py) shares steps 1-2 and inverts only the bands its indices read.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio._err import CPLE_BaseError
from rasterio.errors import RasterioError
from rasterio.windows import Window

from s2l2a import jit
from s2l2a.safe.bands import (
    BANDS,
    L2A_BANDS,
    NATIVE_RESOLUTION,
    RESOLUTIONS,
    band_file_error,
    check_band_files,
)

from . import scl as sclmod
from .aerosol import Retrieval, retrieve_aot
from .formats import DEFAULT_FORMAT
from .geometry import TILE_EXTENT_M, CellGrid, Geometry, geometry_on_grid
from .priors import AuxPriors, read_priors
from .radiometry import (
    AOT_QUANTIFICATION,
    BOA_ADD_OFFSET,
    BOA_QUANTIFICATION,
    SATURATED_DN,
    WVP_QUANTIFICATION,
    all_blocks,
    dn_to_reflectance,
    resample_dn_mean,
    resample_nearest,
)
from .sclgipp import load_sc_gipp
from .watervapour import retrieve_wv
from .writer import _opj_threads, write_raster

log = logging.getLogger(__name__)
#: what rasterio/GDAL raise for a file they cannot decode (RasterioIOError is an OSError)
_DECODE_ERRORS: tuple[type[BaseException], ...] = (RasterioError, CPLE_BaseError, OSError)

NATIVE = NATIVE_RESOLUTION
OUTPUT_BANDS = L2A_BANDS  # what Sen2Cor writes per resolution folder
SCL_NEEDS = ("B02", "B03", "B04", "B8A", "B11", "B12")
TCI_MAX_REFLECTANCE = 0.25  # reflectance shown as 255 in the true-colour image
ROWS_PER_BLOCK = 1024       # inversion / classification block height (matches the JP2 tiles)


@dataclass
class Options:
    """Tunables of the built-in processor: the keys of the campaign's ``[builtin]`` TOML section.

    output_format: "JP2" (default; lossless JPEG 2000 like ESA's) or "COG" (ZSTD 1 + predictor 2, .tif);
    cell_m: size of the cells on which AOT/WV are retrieved and coefficients evaluated (m);
    elevation_km: surface height without a DEM (the weather's sea-level pressure adjusts it);
    dem: a DEM raster, or the directory ``s2l2a dem`` made (in a campaign: relative to the campaign
    folder, and unset means the campaign's own aux/dem when there is one, campaign.layout.processor_dem;
    outside one: relative to the working directory): per-pixel height (pressure, aerosol and water vapour above the surface), terrain
    illumination, cast shadows and sky view (correction.py); None = flat at elevation_km;
    adjacency: 6S-weighted adjacency correction (adjacency.py); None = on with a DEM, off without;
    cloud_min_size_m / cloud_buffer_m: optional morphology of the cloud mask (scl.clean_clouds; 0 = off);
    esacci: a Sen2Cor ``aux_data`` folder holding the ESA-CCI water-bodies map (and snow climatology):
    the classification uses them as Sen2Cor does (ccimaps.py); None = without;
    aot / wv: force a constant AOT550 / water vapour (g/cm2) instead of retrieving them;
    aerosol: look-up table aerosol model; cirrus_correction: subtract B10-scaled cirrus per band;
    allow_partial: convert products with missing bands as far as present (see processor.py);
    resolution: 10 (all), 20 (R20m + R60m) or 60 (R60m only), like Sen2Cor's --resolution;
    use_numba: fused kernels when numba is installed; threads: cores (set from the job's settings).
    """

    output_format: str = DEFAULT_FORMAT
    cell_m: float = 1200.0
    elevation_km: float = 0.0
    aot: float | None = None
    wv: float | None = None
    aerosol: str = "continental"
    cirrus_correction: bool = False
    allow_partial: bool = False
    resolution: int | None = None
    use_numba: bool = True
    threads: int = 1
    dem: str | None = None
    adjacency: bool | None = None
    cloud_min_size_m: float = 0.0
    cloud_buffer_m: float = 0.0
    esacci: str | None = None


@dataclass
class Grid:
    """One output resolution: raster shape and georeferencing."""

    res: int
    shape: tuple[int, int]
    transform: Affine


@dataclass
class GranuleResult:
    """What the pipeline made of one granule (paths relative to the granule folder)."""

    images: dict[int, dict[str, Path]] = field(default_factory=dict)
    qi: dict[str, Path] = field(default_factory=dict)
    missing_bands: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------- reading


def read_band(path: Path, threads: int = 1) -> tuple[np.ndarray, Affine, Any]:
    """Decode a whole band in windows of whole JP2 tile rows into one uint16 buffer.

    Aligned windows decode each 1024-px code-block tile once; unaligned windows decode tiles twice
    (measured: more than double the CPU time). ``threads`` go to OpenJPEG itself (OPJ_NUM_THREADS,
    which it reads from the environment): GDAL_NUM_THREADS does not speed up these reads, OpenJPEG's
    threads do (a 10 m band on 2 cores: 13.9 s with 1 thread, 7.8 s with 2; bench/bench_decode.py).
    """
    with rasterio.Env(GDAL_NUM_THREADS=str(max(1, threads)), GDAL_CACHEMAX=256), _opj_threads(threads):
        with rasterio.open(path) as ds:
            h, w = ds.height, ds.width
            bh = ds.block_shapes[0][0] if ds.block_shapes else h
            bh = bh if 0 < bh < h else h
            out = np.empty((h, w), dtype=np.uint16)
            for r0 in range(0, h, bh):
                r1 = min(h, r0 + bh)
                ds.read(1, window=Window(0, r0, w, r1 - r0), out=out[r0:r1])
            return out, ds.transform, ds.crs


def read_bands(files: dict[str, Path], threads: int = 1) -> tuple[dict[str, np.ndarray], dict[str, Affine], Any]:
    """All bands: one at a time on OpenJPEG's threads up to 4 cores (on 2 cores 7.8 s per 10 m band
    against 11.6 s for two bands at once on one thread each), two at a time above.

    A band that cannot be decoded raises BandFileError (bad input) naming its file.
    """
    data: dict[str, np.ndarray] = {}
    transforms: dict[str, Affine] = {}
    crs = None
    order = sorted(files, key=lambda b: NATIVE[b])
    workers = max(1, min(2 if threads > 4 else 1, len(files)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futs = {b: pool.submit(read_band, files[b], max(1, threads // workers)) for b in order}
        for b, f in futs.items():
            try:
                data[b], transforms[b], c = f.result()
            except _DECODE_ERRORS as exc:
                for other in futs.values():
                    other.cancel()
                raise band_file_error(files[b], b, exc) from None
            crs = crs or c
    return data, transforms, crs


def band_headers(files: dict[str, Path], granule: Any) -> tuple[dict[str, tuple[int, int]], dict[str, Affine], Any]:
    """Shape and transform of every band, and the CRS, from the files' headers (nothing decoded)."""
    shapes, transforms, crs = {}, {}, None
    for b, p in files.items():
        try:
            with rasterio.open(p) as ds:
                shapes[b], transforms[b], crs = (ds.height, ds.width), ds.transform, crs or ds.crs
        except _DECODE_ERRORS as exc:
            raise band_file_error(p, b, exc) from None
    if crs is None:
        crs = rasterio.crs.CRS.from_epsg(granule.epsg)
    return shapes, transforms, crs


def release_freed_memory() -> None:
    """Hand memory numpy freed back to the system (glibc's malloc_trim; elsewhere nothing).

    The classification frees many 10-30 MB temporaries that glibc keeps in its heap once its dynamic
    mmap threshold has grown, and OpenJPEG's threads free their buffers into their own arenas: on a
    full tile RSS stayed ~1.1 GB through the writing, ~0.4 GB of it freed memory (0.87 -> 0.49 GB
    after the classification), and the 10 m TCI took the peak over 1.5 GB."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def output_resolutions(bands: Any, opts: Options) -> tuple[int, ...]:
    """Partial products: no output finer than the finest band present (a B01-only input gives R60m
    only), nor than the asked resolution."""
    return tuple(r for r in RESOLUTIONS if r >= max(min(NATIVE[b] for b in bands), opts.resolution or 10))


@dataclass
class ReducedBands:
    """Every band decoded once, one at a time, and reduced at once to what the analysis needs: its
    60 m version, the 20 m version of the bands classify_grid reads, its zeros on each mask grid
    (OR over bands: :func:`shared_nodata`'s mask); the whole band kept in memory (``kept``) or in a
    raw scratch file (``spilled``, read back by :meth:`load`) only where asked."""

    data60: dict[str, np.ndarray]
    data20: dict[str, np.ndarray]
    nodata: dict[int, np.ndarray]
    shapes: dict[str, tuple[int, int]]
    kept: dict[str, np.ndarray] = field(default_factory=dict)
    spilled: dict[str, Path] = field(default_factory=dict)

    def load(self, band: str) -> np.ndarray:
        """A band kept whole, handed over once: from memory, else read back from its scratch file
        (then removed: the disk a full tile needs falls as the bands are written)."""
        if band in self.kept:
            return self.kept.pop(band)
        path = self.spilled.pop(band)
        arr = np.fromfile(path, dtype=np.uint16).reshape(self.shapes[band])
        path.unlink()
        return arr


CLASSIFY_BANDS = (*SCL_NEEDS, *sclmod.SCL_OPTIONAL)  # what classify_grid reads


def decode_reduced(files: dict[str, Path], grids: dict[int, Grid], threads: int, mask_res: Any,
                   classify_20: bool, keep: Any = (), spill: Any = (), spill_dir: Path | None = None,
                   say: Any = None) -> ReducedBands:
    """Decode band by band (the order read_bands uses) into a :class:`ReducedBands`: memory holds
    two whole bands at a time (one being reduced, the next being decoded) plus what is kept;
    ``spill`` bands go to raw files in ``spill_dir``.

    The reductions are exactly what the whole-band path computes (rows_resampled; zeros ORed before
    a nearest pick onto a finer grid, which commutes with it), so the analysis and the masks agree
    to the bit with those of :func:`read_bands` + :func:`shared_nodata`."""
    t0 = time.perf_counter()
    red = ReducedBands({}, {}, {r: np.zeros(grids[r].shape, bool) for r in mask_res}, {})
    up: dict[int, np.ndarray] = {}  # zeros of the bands coarser than a mask grid, by native resolution
    order = sorted(files, key=lambda x: NATIVE[x])

    def decode(b: str) -> np.ndarray:
        try:
            return read_band(files[b], threads)[0]
        except _DECODE_ERRORS as exc:
            raise band_file_error(files[b], b, exc) from None

    # the next band decodes (OpenJPEG, GIL released) while this one is reduced and spilled, which
    # otherwise left the decoder idle for a third of the time; memory holds one band more meanwhile
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="s2l2a-decode") as pool:
        ahead = pool.submit(decode, order[0]) if order else None
        for i, b in enumerate(order):
            arr = ahead.result()
            ahead = pool.submit(decode, order[i + 1]) if i + 1 < len(order) else None
            _reduce_band(red, b, arr, grids, mask_res, classify_20, up, keep, spill, spill_dir)
            del arr
            if say is not None:
                say(f"decoded {b} after {time.perf_counter() - t0:.1f} s")
    for native_res, zero in up.items():
        for r in mask_res:
            if native_res > r:
                red.nodata[r] |= _zeros_on(zero, grids[r].shape)
    return red


def _reduce_band(red: ReducedBands, b: str, arr: np.ndarray, grids: dict[int, Grid], mask_res: Any,
                 classify_20: bool, up: dict[int, np.ndarray], keep: Any, spill: Any, spill_dir: Path | None) -> None:
    """One decoded band into ``red``: its zeros, its 60 m (and 20 m classification) copy, kept or spilled."""
    g60, g20 = grids[60], grids.get(20)
    red.shapes[b] = arr.shape
    zero = arr == 0
    for r in mask_res:
        if NATIVE[b] > r:
            up[NATIVE[b]] = zero if NATIVE[b] not in up else (up[NATIVE[b]] | zero)
        else:
            red.nodata[r] |= _zeros_on(zero, grids[r].shape)
    del zero
    red.data60[b] = arr if arr.shape == g60.shape else rows_resampled(arr, g60.shape, 0, g60.shape[0])
    if classify_20 and g20 is not None and b in CLASSIFY_BANDS:
        red.data20[b] = arr if NATIVE[b] >= 20 else rows_resampled(arr, g20.shape, 0, g20.shape[0])
    if b in keep:
        red.kept[b] = arr
    elif b in spill and spill_dir is not None:
        red.spilled[b] = Path(spill_dir) / f"{b}.u16"
        arr.tofile(red.spilled[b])


# -------------------------------------------------------------------------------------- resampling


def rows_resampled(arr: np.ndarray, shape: tuple[int, int], r0: int, r1: int) -> np.ndarray:
    """Rows ``r0:r1`` of ``arr`` (uint16 DN) resampled to ``shape``: block mean down, nearest up."""
    if arr.shape == shape:
        return arr[r0:r1]
    fy, ry = divmod(arr.shape[0], shape[0])
    fx, rx = divmod(arr.shape[1], shape[1])
    if not ry and not rx and fy == fx and fy > 1:
        return resample_dn_mean(arr[r0 * fy:r1 * fy], (r1 - r0, shape[1]))
    iy = np.minimum(((np.arange(r0, r1) + 0.5) * arr.shape[0] / shape[0]).astype(np.intp), arr.shape[0] - 1)
    ix = np.minimum(((np.arange(shape[1]) + 0.5) * arr.shape[1] / shape[1]).astype(np.intp), arr.shape[1] - 1)
    return arr[iy[:, None], ix[None, :]]


# ------------------------------------------------------------------------------------ atmosphere


class Atmosphere:
    """The LUT bound to one scene: cell-centre geometry, elevation and ozone."""

    def __init__(self, lut: Any, geom: Geometry, elevation_km: float, ozone_du: float) -> None:
        self.lut = lut
        self.geom = geom
        self.elevation_km = elevation_km
        self.ozone_cm = ozone_du / 1000.0
        self.shift_km = 0.0  # the weather's pressure as a height offset, added to given heights

    def coeffs(self, band: str, aot: np.ndarray, wv: np.ndarray, idx: tuple,
               elevation_km: Any = None) -> Any:
        """Coefficients at cells ``idx`` for arrays ``aot``/``wv`` shaped (..., n_cells); heights
        ``elevation_km`` (with a DEM) instead of the scene's flat one."""
        vza, raa = self.geom.band(band)
        z = self.elevation_km if elevation_km is None else np.maximum(elevation_km + self.shift_km, 0.0)
        return self.lut.coefficients(band, aot, self.geom.sza[idx], vza[idx], raa[idx],
                                     z, wv, ozone=self.ozone_cm)

    def cell_coefficients(self, band: str, aot: np.ndarray, wv: np.ndarray) -> Any:
        """Coefficients on the whole cell grid."""
        vza, raa = self.geom.band(band)
        return self.lut.coefficients(band, aot, self.geom.sza, vza, raa, self.elevation_km, wv,
                                     ozone=self.ozone_cm)


# ------------------------------------------------------------------------------------- inversion


@jit.kernel
def _numba_kernel(numba: Any) -> Any:
    """The fused DN -> BOA DN kernel, compiled on first use; None without numba."""

    @numba.njit(parallel=True, nogil=True, cache=False)  # no cache: a job writes only to its staging dir
    def kernel(dn, iy, wy, ix, wx, coef, q, off, qo, oo):  # pragma: no cover - compiled
        h, w = dn.shape
        nc = coef.shape[0]
        ncx = coef.shape[2]
        for r in numba.prange(h):
            i = iy[r]
            a = wy[r]
            row = np.empty((nc, ncx), np.float32)
            for k in range(nc):
                for j in range(ncx):
                    row[k, j] = coef[k, i, j] * (np.float32(1.0) - a) + coef[k, i + 1, j] * a
            for c in range(w):
                d = dn[r, c]
                if d == 0 or d == 65535:
                    continue
                j = ix[c]
                b = wx[c]
                p = row[0, j] * (np.float32(1.0) - b) + row[0, j + 1] * b
                tg = row[1, j] * (np.float32(1.0) - b) + row[1, j + 1] * b
                td = row[2, j] * (np.float32(1.0) - b) + row[2, j + 1] * b
                tu = row[3, j] * (np.float32(1.0) - b) + row[3, j + 1] * b
                s = row[4, j] * (np.float32(1.0) - b) + row[4, j + 1] * b
                rho = (np.float32(d) + off) / q
                y = (rho / tg - p) / (td * tu)
                y = y / (s * y + np.float32(1.0))
                v = np.floor(y * qo - oo + np.float32(0.5))
                if v < 1.0:
                    v = 1.0
                elif v > 65534.0:
                    v = 65534.0
                dn[r, c] = np.uint16(v)

    return kernel



def _limit_numba_threads(n: int) -> None:
    """Keep numba's parallel loops to the cores the job was given (N jobs share a node)."""
    try:
        import numba
    except ImportError:
        return
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


def _pad2(field: np.ndarray) -> np.ndarray:
    """Cell fields with at least 2 rows/cols so i+1 is always valid (single-cell grids)."""
    f = field
    if f.shape[-2] == 1:
        f = np.concatenate([f, f], axis=-2)
    if f.shape[-1] == 1:
        f = np.concatenate([f, f], axis=-1)
    return np.ascontiguousarray(f, dtype=np.float32)


def invert_in_place(dn: np.ndarray, cells: CellGrid, coeffs: Any, quantification: float, offset: float,
                    use_numba: bool = True, cirrus: np.ndarray | None = None) -> np.ndarray:
    """L1C DN -> L2A DN (BOA*10000 + 1000) in place; 0 (no data) and 65535 (saturated) kept.

    ``coeffs`` holds cell-grid arrays; each pixel gets them bilinearly from the cell centres.
    ``cirrus``: optional TOA reflectance to subtract (cirrus correction), same shape as ``dn``.
    """
    shape = dn.shape
    (iy, wy), (ix, wx) = cells.axes(shape)
    kernel = _numba_kernel() if use_numba and cirrus is None else None
    if kernel is not None:
        stack = _pad2(np.stack([np.asarray(c, np.float32) for c in (
            coeffs.path_reflectance, coeffs.t_gas, coeffs.t_down, coeffs.t_up, coeffs.s_albedo)]))
        kernel(dn, iy, wy, ix, wx, stack, np.float32(quantification), np.float32(offset),
               np.float32(BOA_QUANTIFICATION), np.float32(BOA_ADD_OFFSET))
        return dn
    from .invert import toa_to_boa
    from .lut import Coefficients

    for r0 in range(0, shape[0], ROWS_PER_BLOCK // 2):
        r1 = min(shape[0], r0 + ROWS_PER_BLOCK // 2)
        blk = dn[r0:r1]
        keep = (blk == 0) | (blk == SATURATED_DN)
        rho = (blk.astype(np.float32) + np.float32(offset)) / np.float32(quantification)
        if cirrus is not None:
            rho -= cirrus[r0:r1]
        c = Coefficients(*(cells.upsample_rows(f, shape, r0, r1) for f in (
            coeffs.path_reflectance, coeffs.t_gas, coeffs.t_down, coeffs.t_up, coeffs.s_albedo)))
        boa = toa_to_boa(rho, c, out=rho)
        v = np.floor(boa * np.float32(BOA_QUANTIFICATION) - np.float32(BOA_ADD_OFFSET) + np.float32(0.5))
        np.clip(v, 1, SATURATED_DN - 1, out=v)
        v[~np.isfinite(boa)] = 1
        blk[~keep] = v[~keep].astype(np.uint16)
    return dn


# ---------------------------------------------------------------------------------------- outputs


def tci_from_dn(b4: np.ndarray, b3: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """True-colour uint8 (3, h, w) from L2A DN: reflectance 0..TCI_MAX -> 1..255, no data 0."""
    out = np.empty((3,) + b4.shape, np.uint8)
    scale = np.float32(254.0 / (TCI_MAX_REFLECTANCE * BOA_QUANTIFICATION))
    nodata = (b4 == 0) | (b3 == 0) | (b2 == 0)
    for k, band in enumerate((b4, b3, b2)):
        step = 1024
        for r0 in range(0, band.shape[0], step):
            v = (band[r0:r0 + step].astype(np.float32) + np.float32(BOA_ADD_OFFSET)) * scale + 1
            np.clip(v, 1, 255, out=v)
            out[k, r0:r0 + step] = v.astype(np.uint8)
        out[k][nodata] = 0
    return out


def field_dn(cells: CellGrid, field_: np.ndarray, grid: Grid, valid: np.ndarray | None,
             quant: float) -> np.ndarray:
    """A cell field (AOT, WV) as uint16 DN on an output grid, block by block; 0 where no data."""
    out = np.empty(grid.shape, np.uint16)
    for r0 in range(0, grid.shape[0], ROWS_PER_BLOCK):
        r1 = min(grid.shape[0], r0 + ROWS_PER_BLOCK)
        v = np.rint(cells.upsample_rows(field_, grid.shape, r0, r1) * quant)
        np.clip(v, 1, SATURATED_DN - 1, out=v)
        out[r0:r1] = v.astype(np.uint16)
    if valid is not None:
        out[~valid] = 0
    return out


# --------------------------------------------------------------------------------------- the run


def _grids(granule: Any, shapes: dict[str, tuple[int, int]], transforms: dict[str, Affine]) -> dict[int, Grid]:
    """Output grids from the bands present (their shapes), else from the tile geoposition (partial
    products)."""
    grids: dict[int, Grid] = {}
    for res in RESOLUTIONS:
        band = next((b for b in BANDS if NATIVE[b] == res and b in shapes), None)
        if band is not None:
            grids[res] = Grid(res, shapes[band], transforms[band])
    for res in RESOLUTIONS:
        if res in grids:
            continue
        gp = (getattr(granule, "geoposition", None) or {}).get(res)
        if gp is not None:
            grids[res] = Grid(res, (int(gp.nrows), int(gp.ncols)), gp.transform)
            continue
        ref = grids[min(grids)]
        f = ref.res / res
        shape = (max(1, round(ref.shape[0] * f)), max(1, round(ref.shape[1] * f)))
        t = ref.transform
        grids[res] = Grid(res, shape, Affine(t.a * ref.shape[1] / shape[1], t.b, t.c, t.d,
                                             t.e * ref.shape[0] / shape[0], t.f))
    return grids


def _valid(data: dict[str, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Pixels with data on ``shape`` (no data = DN 0 in the L1C), from the coarsest band present:
    the bands share the swath edge, and the coarsest is the cheapest to resample."""
    coarsest = max(data, key=lambda b: NATIVE[b])
    return resample_nearest(data[coarsest], shape) > 0


def _zeros_on(zero: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Where a band resampled like :func:`rows_resampled` is 0, from where it is 0 (``zero``): a
    block mean is 0 when the whole block is, a nearest pick when the picked pixel is."""
    if zero.shape == shape:
        return zero
    (fy, ry), (fx, rx) = divmod(zero.shape[0], shape[0]), divmod(zero.shape[1], shape[1])
    if not ry and not rx and fy == fx and fy > 1:
        return all_blocks(zero, fy)
    return resample_nearest(zero, shape)


def shared_nodata(data: dict[str, np.ndarray], grids: dict[int, Grid]) -> dict[int, np.ndarray]:
    """Per output grid, the pixels where some band's output would have no data (L1C DN 0, carried by
    the resampling that makes the grid's version of the band): every output of that grid (bands,
    TCI, AOT, WVP, SCL) is no data there, so they all share one mask whatever the grid ratios."""
    by_res: dict[int, np.ndarray] = {}  # bands of one native resolution: one OR before resampling
    for b, arr in data.items():
        z = arr == 0
        by_res[NATIVE[b]] = z if NATIVE[b] not in by_res else (by_res[NATIVE[b]] | z)
    out: dict[int, np.ndarray] = {}
    for r, grid in grids.items():
        m = np.zeros(grid.shape, bool)
        for native, zero in by_res.items():
            if native <= r and zero.shape != grid.shape:  # block means do not commute with OR: per band
                for b, arr in data.items():
                    if NATIVE[b] == native:
                        m |= _zeros_on(arr == 0, grid.shape)
            else:
                m |= _zeros_on(zero, grid.shape)
        out[r] = m
    return out


def classify_grid(data: dict[str, np.ndarray], refl: dict[str, tuple[float, float]], grid: Grid,
                  sun: tuple[float, float], gipp: Any,
                  morphology: tuple[float, float] = (0.0, 0.0), cci: dict[str, np.ndarray] | None = None,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scene classification on one grid, block by block, then cloud shadows over the whole grid.

    ``cci``: the ESA-CCI masks on this grid (ccimaps.CciMaps.masks), or None.
    """
    shape = grid.shape
    scl = np.zeros(shape, np.uint8)
    cld = np.zeros(shape, np.uint8)
    snw = np.zeros(shape, np.uint8)
    if not all(b in data for b in SCL_NEEDS):
        scl[_valid(data, shape)] = sclmod.UNCLASSIFIED
        return scl, cld, snw
    dark = np.zeros(shape, bool)
    step = ROWS_PER_BLOCK // 2  # the cascade holds ~20 float32 temporaries per block
    halo = sclmod.HALO_PX       # blocks overlap by the reach of the cascade's neighbourhood rules
    for r0 in range(0, shape[0], step):
        r1 = min(shape[0], r0 + step)
        a0, a1 = max(0, r0 - halo), min(shape[0], r1 + halo)
        toa = {}
        sat = np.zeros((a1 - a0, shape[1]), bool)
        for b in (*SCL_NEEDS, *sclmod.SCL_OPTIONAL):
            if b not in data:
                continue
            dn = rows_resampled(data[b], shape, a0, a1)
            sat |= dn == SATURATED_DN
            toa[b] = dn_to_reflectance(dn, *refl[b])
        s, c, n, d = sclmod.classify(toa, sat, gipp, {k: v[a0:a1] for k, v in (cci or {}).items()})
        k = slice(r0 - a0, r1 - a0)
        scl[r0:r1], cld[r0:r1], snw[r0:r1], dark[r0:r1] = s[k], c[k], n[k], d[k]
    pixel_m = abs(grid.transform.a) or float(grid.res)
    sclmod.clean_clouds(scl, pixel_m, *morphology)
    sclmod.add_cloud_shadows(scl, dark, sun[0], sun[1], pixel_m)
    return scl, cld, snw


def cirrus_gamma(toa60: dict[str, np.ndarray], scl60: np.ndarray, gipp: Any) -> tuple[dict[str, float], float]:
    """Per-band cirrus factor (regression of band TOA on B10 over thin-cirrus pixels) and B10 floor."""
    b10 = toa60.get("B10")
    gam: dict[str, float] = {}
    if b10 is None:
        return gam, 0.0
    clear = np.isin(scl60, (sclmod.VEG, sclmod.NOT_VEG)) & np.isfinite(b10)
    floor = float(np.nanpercentile(b10[clear], 5)) if clear.sum() > 100 else gipp.t("T1_B10") / 2
    cir = (scl60 == sclmod.CIRRUS) & np.isfinite(b10)
    for b, v in toa60.items():
        if b == "B10":
            continue
        ok = cir & np.isfinite(v)
        if ok.sum() < 50:
            gam[b] = 0.0
            continue
        x = b10[ok] - floor
        y = v[ok]
        slope = np.polyfit(x, y, 1)[0] if np.ptp(x) > 1e-4 else 0.0
        gam[b] = float(np.clip(slope, 0.0, 1.5))
    return gam, floor


@dataclass
class Analysis:
    """What the classification and the retrievals made of one granule: everything the inversion and
    the writers need besides the bands themselves (shared by the full L2A and the deliverable path)."""

    grids: dict[int, Grid]
    crs: Any
    refl: dict[str, tuple[float, float]]
    cells: CellGrid
    scl: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]  # res -> (SCL, CLDPRB, SNWPRB)
    aot: Retrieval
    wv: Retrieval
    coeffs: dict[str, Any]
    valid60: np.ndarray
    out_res: tuple[int, ...]
    model: Any = None
    terrain: Any = None
    elev60: np.ndarray | None = None
    gam: dict[str, float] = field(default_factory=dict)
    b10_floor: float = 0.0
    toa60_b10: np.ndarray | None = None  # kept only for the cirrus correction


def analyse(product: Any, granule: Any, grids: dict[int, Grid], crs: Any, data60: dict[str, np.ndarray],
            data20: dict[str, np.ndarray], opts: Options, lut: Any, res: GranuleResult, say: Any,
            t0: float) -> Analysis:
    """60 m classification, AOT/WV retrieval, coefficients and the 20 m classification.

    ``data60`` / ``data20``: every band as an array that :func:`rows_resampled` maps onto the 60 m /
    20 m grid exactly as it maps the decoded band (the decoded bands themselves, or their 60 m / 20 m
    versions: the deliverable path keeps no more); ``data20`` needs the bands classify_grid reads. The
    band order of ``data60`` is the decoding order (it picks the band the 60 m validity comes from).
    """
    refl = {b: (float(product.quantification_value), float(product.radio_add_offset.get(b, 0.0)))
            for b in data60}
    gipp = load_sc_gipp()
    sun = (float(granule.mean_sun_zenith or np.nanmean(granule.angles.sun_zenith)),
           float(granule.mean_sun_azimuth or np.nanmean(granule.angles.sun_azimuth)))

    # ---- 60 m analysis
    g60 = grids[60]
    toa60 = {b: dn_to_reflectance(rows_resampled(a, g60.shape, 0, g60.shape[0]), *refl[b]) for b, a in data60.items()}
    morphology = (float(opts.cloud_min_size_m), float(opts.cloud_buffer_m))
    cci = None
    if opts.esacci:
        from .ccimaps import CciMaps

        cci = CciMaps.open(opts.esacci, product.sensing_time.date())
        res.details["esacci"] = cci.describe()
    scl60, cld60, snw60 = classify_grid(data60, refl, g60, sun, gipp, morphology,
                                        cci.masks(g60.shape, g60.transform, crs) if cci else None)
    valid60 = _valid(data60, g60.shape)
    usable = np.isin(scl60, (sclmod.VEG, sclmod.NOT_VEG))
    priors: AuxPriors = read_priors(getattr(granule, "aux_files", None))
    extent = TILE_EXTENT_M
    gp10 = (getattr(granule, "geoposition", None) or {}).get(10)
    if gp10 is not None:
        extent = abs(gp10.xdim) * gp10.ncols
    cells = CellGrid.for_tile(g60.shape, opts.cell_m, extent)
    geom = geometry_on_grid(granule.angles, cells.shape, granule.mean_sun_zenith, granule.mean_sun_azimuth)
    # Rayleigh scattering scales with surface pressure: the LUT's elevation axis stands for it, so the
    # weather's sea-level pressure shifts the surface's effective height (8 km scale height)
    elevation = opts.elevation_km + 8.0 * math.log(1013.25 / priors.pressure_hpa)
    atm = Atmosphere(lut, geom, elevation, priors.ozone_du)
    terrain, elev60, usable_ddv = None, None, usable
    if opts.dem:
        from .correction import prepare_terrain

        terrain = prepare_terrain(opts.dem, grids, crs, cells, geom, sun, getattr(lut, "axes", {}).get("elevation_km", ()))
        atm.shift_km = elevation - opts.elevation_km
        elev60 = terrain.fields[60].height_km()
        # dark targets on slopes facing away from the sun or in cast shadow are lit by the sky alone
        mu60 = cells.upsample(np.cos(np.radians(geom.sza)), g60.shape)
        usable_ddv = usable & (terrain.fields[60].cos_incidence() >= 0.5 * mu60)
        sclmod.mark_terrain_shadows(scl60, terrain.fields[60].cos_i == 0)
        say(f"DEM {terrain.details['dem_min_m']:.0f}-{terrain.details['dem_max_m']:.0f} m, "
            f"{terrain.details['shadow_percent']} % in shadow, after {time.perf_counter() - t0:.1f} s")
    from .invert import boa_to_toa as forward
    from .invert import toa_to_boa as invert

    wv_prior = opts.wv if opts.wv is not None else priors.wv_gcm2
    wv_src = "option" if opts.wv is not None else priors.sources["wv"]
    aot_prior = opts.aot if opts.aot is not None else priors.aot550
    aot_src = "option" if opts.aot is not None else priors.sources["aot"]
    wv_cells = np.full(cells.shape, wv_prior)
    can_aot = opts.aot is None and all(b in toa60 for b in ("B02", "B04", "B8A", "B12"))
    lut_axes = getattr(lut, "axes", {})

    def retrieve(toa: dict[str, np.ndarray]) -> tuple[Retrieval, Retrieval]:
        if can_aot:
            aot_r = retrieve_aot(toa, usable_ddv, cells, atm.coeffs, invert, wv_cells, aot_prior, aot_src,
                                 elevation=elev60)
        else:
            aot_r = Retrieval(np.full(cells.shape, aot_prior), aot_src)
        if opts.wv is None:
            wv_r = retrieve_wv(toa, usable, cells, atm.coeffs, invert, forward, aot_r.cells, wv_prior, wv_src,
                               elevation=elev60)
        else:
            wv_r = Retrieval(np.full(cells.shape, wv_prior), wv_src)
        if can_aot and wv_r.source == "ratio":  # second pass with the retrieved water vapour
            aot_r = retrieve_aot(toa, usable_ddv, cells, atm.coeffs, invert, wv_r.cells, aot_prior, aot_src,
                                 elevation=elev60)
        if "aot" in lut_axes:
            aot_r.cells = np.clip(aot_r.cells, lut_axes["aot"][0], lut_axes["aot"][-1])
        if "wv" in lut_axes:
            wv_r.cells = np.clip(wv_r.cells, lut_axes["wv"][0], lut_axes["wv"][-1])
        return aot_r, wv_r

    aot_r, wv_r = retrieve(toa60)
    adjacency = opts.adjacency if opts.adjacency is not None else terrain is not None
    surround = valid60 & ~np.isin(scl60, (sclmod.NO_DATA, sclmod.SATURATED, sclmod.CLD_MED, sclmod.CLD_HIGH))
    shift_km = atm.shift_km if terrain is not None else elevation - opts.elevation_km

    def surface_model(bands_: list[str]) -> Any:
        from .correction import build_model

        return build_model(lut, geom, cells, bands_, aot_r.cells, wv_r.cells, shift_km, atm.ozone_cm, terrain,
                           opts.elevation_km, adjacency, toa60, surround, abs(g60.transform.a) or 60.0)

    if (adjacency or terrain is not None) and (can_aot or opts.wv is None):
        # the dark-target and B9/B8A retrievals assume flat ground amid surroundings like the target:
        # give them the TOA such ground would give (correction.flat_equivalent_toa), iterated
        from .correction import RETRIEVAL_BANDS, RETRIEVAL_ROUNDS, flat_equivalent_toa

        for _ in range(RETRIEVAL_ROUNDS):
            model0 = surface_model([b for b in RETRIEVAL_BANDS if b in toa60])
            prev = aot_r.cells, wv_r.cells
            aot_r, wv_r = retrieve(flat_equivalent_toa(model0, toa60, elev60))
            # the correction lowers the retrieval by about what it raised it: halfway steps converge
            aot_r.cells = 0.5 * (prev[0] + aot_r.cells)
            wv_r.cells = 0.5 * (prev[1] + wv_r.cells)
    res.details.update({
        "aot_source": aot_r.source, "aot_mean": float(np.mean(aot_r.cells)), "aot_cells": aot_r.n_cells_retrieved,
        "wv_source": wv_r.source, "wv_mean_gcm2": float(np.mean(wv_r.cells)), "wv_cells": wv_r.n_cells_retrieved,
        "ozone_du": priors.ozone_du, "ozone_source": priors.sources["ozone"], "cells": list(cells.shape),
        "aot_details": aot_r.details, "elevation_km": opts.elevation_km,
        "pressure_hpa": priors.pressure_hpa, "effective_elevation_km": round(elevation, 3),
    })
    say(f"AOT {res.details['aot_mean']:.3f} ({aot_r.source}), WV {res.details['wv_mean_gcm2']:.2f} g/cm2 "
        f"({wv_r.source}) after {time.perf_counter() - t0:.1f} s")
    coeffs = {b: atm.cell_coefficients(b, aot_r.cells, wv_r.cells) for b in data60 if b != "B10"}
    if "sza" in lut_axes:  # conditions beyond the table are clipped to its edge: say so (2 % slack)
        vz = np.max([geom.band(b)[0] for b in coeffs], axis=0) if coeffs else geom.sza * 0
        clipped = np.zeros(cells.shape, bool)
        for name, v in (("aot", aot_r.cells), ("sza", geom.sza), ("vza", vz), ("wv", wv_r.cells),
                        ("elevation_km", np.full(cells.shape, max(elevation, 0.0)))):
            nodes = lut_axes.get(name)
            if nodes is not None and len(nodes):
                slack = 0.02 * (nodes[-1] - nodes[0])
                clipped |= (v < nodes[0] - slack) | (v > nodes[-1] + slack)
        res.details["lut_clipped_percent"] = round(100.0 * float(np.mean(clipped)), 2)
        if clipped.any():
            say(f"warning: {res.details['lut_clipped_percent']} % of the cells lie outside the look-up "
                "table (clipped to its edge)")
    gam, b10_floor = ({}, 0.0)
    if opts.cirrus_correction and "B10" in data60:
        gam, b10_floor = cirrus_gamma(toa60, scl60, gipp)
        res.details["cirrus_gamma"] = gam
    model = None
    if terrain is not None or adjacency:
        model = surface_model([b for b in data60 if b != "B10"])
        say(f"terrain/adjacency model ready after {time.perf_counter() - t0:.1f} s")
    res.details["dem"] = terrain.details if terrain is not None else None
    res.details["terrain"] = "DEM" if terrain is not None else f"flat at {opts.elevation_km} km (no DEM)"
    res.details["adjacency"] = bool(adjacency)
    if model is not None:
        res.details["levels_km"] = [round(float(z), 3) for z in model.stack.levels_km]

    out_res = output_resolutions(data60, opts)
    res.details["resolutions"] = list(out_res)

    # ---- 20 m classification (needs the TOA buffers, so before the in-place inversion)
    scl = {60: (scl60, cld60, snw60)}
    if 20 in out_res:
        scl20, cld20, snw20 = classify_grid(data20, refl, grids[20], sun, gipp, morphology,
                                            cci.masks(grids[20].shape, grids[20].transform, crs) if cci else None)
        if terrain is not None:
            sclmod.mark_terrain_shadows(scl20, terrain.fields[20].cos_i == 0)
        scl[20] = (scl20, cld20, snw20)
    say(f"classified after {time.perf_counter() - t0:.1f} s")
    return Analysis(grids=grids, crs=crs, refl=refl, cells=cells, scl=scl, aot=aot_r, wv=wv_r, coeffs=coeffs,
                    valid60=valid60, out_res=out_res, model=model, terrain=terrain, elev60=elev60, gam=gam,
                    b10_floor=b10_floor, toa60_b10=toa60["B10"] if gam and "B10" in toa60 else None)


def invert_band(arr: np.ndarray, band: str, an: Analysis, opts: Options) -> np.ndarray:
    """TOA DN -> BOA DN of one band at its native resolution, in place (cirrus, terrain, adjacency
    as the analysis decided)."""
    cir = None
    if an.gam.get(band):
        up = resample_nearest(np.nan_to_num(an.toa60_b10 - an.b10_floor).clip(0, None).astype(np.float32), arr.shape)
        cir = (up * np.float32(an.gam[band])).astype(np.float32)
    if an.model is not None:
        an.model.invert_in_place(arr, band, *an.refl[band], use_numba=opts.use_numba, cirrus=cir)
    else:
        invert_in_place(arr, an.cells, an.coeffs[band], *an.refl[band], use_numba=opts.use_numba, cirrus=cir)
    return arr


def scl_shares(scl: np.ndarray) -> tuple[dict[int, float], float]:
    """Share of each SCL class 1-11 among the pixels with data (%), and the share without data."""
    counts = np.bincount(scl.ravel(), minlength=12)
    tot = max(1, int(counts[1:].sum()))
    return ({int(k): round(100.0 * float(counts[k]) / tot, 2) for k in range(1, 12)},
            round(100.0 * float(counts[0]) / max(1, int(counts.sum())), 2))


def granule_bands(granule: Any) -> tuple[dict[str, Path], list[str]]:
    """The granule's band files and the bands it lacks; a granule without any, or with an empty,
    text or cut band file, fails now rather than after decoding the others."""
    files = {b: Path(p) for b, p in granule.band_files.items() if b in NATIVE}
    if not files:
        raise ValueError("granule has no band file")
    check_band_files(files)
    return files, [b for b in BANDS if b not in files]


def run_granule(product: Any, granule: Any, out_granule: Path, opts: Options, lut: Any,
                progress: Any = None) -> GranuleResult:
    """Convert one granule into ``out_granule`` (IMG_DATA/R*m, QI_DATA); returns what was written."""
    t0 = time.perf_counter()
    say = progress or (lambda msg: log.info(msg))
    _limit_numba_threads(opts.threads)
    res = GranuleResult()
    files, res.missing_bands = granule_bands(granule)
    shapes, transforms, crs = band_headers(files, granule)
    grids = _grids(granule, shapes, transforms)
    out_res = output_resolutions(files, opts)
    # the decoded bands wait for the analysis in raw scratch files beside the product, not in memory
    # (a full tile's 13 bands are 1.35 GB); the files come back from the page cache
    scratch_parent = out_granule.parents[2] if len(out_granule.parents) > 2 else out_granule.parent
    with tempfile.TemporaryDirectory(prefix=".s2l2a-bands-", dir=scratch_parent) as scratch:
        red = decode_reduced(files, grids, opts.threads, out_res, 20 in out_res,
                             spill=[b for b in files if b != "B10"], spill_dir=Path(scratch))
        say(f"decoded {len(files)} bands in {time.perf_counter() - t0:.1f} s")
        an = analyse(product, granule, grids, crs, red.data60, red.data20, opts, lut, res, say, t0)
        red.data60, red.data20 = {}, {}
        release_freed_memory()
        if an.out_res != out_res:  # the two readings of the rule must not drift apart
            raise RuntimeError(f"resolutions {an.out_res} differ from the predicted {out_res}")
        _write_granule(product, granule, out_granule, opts, an, red, Path(scratch), res, say, t0)
    res.details["seconds"] = round(time.perf_counter() - t0, 2)
    say(f"granule done in {res.details['seconds']:.1f} s")
    return res


def _write_granule(product: Any, granule: Any, out_granule: Path, opts: Options, an: Analysis, red: ReducedBands,
                   scratch: Path, res: GranuleResult, say: Any, t0: float) -> None:
    """Invert every band, write it with its other resolutions, the TCI, AOT, WVP, SCL and QI masks."""
    grids, crs, out_res = an.grids, an.crs, an.out_res
    scl20, cld20, snw20 = an.scl.get(20, (None, None, None))
    scl60, cld60, snw60 = an.scl[60]
    g60 = grids[60]

    img = out_granule / "IMG_DATA"
    qi = out_granule / "QI_DATA"
    for r in out_res:
        (img / f"R{r}m").mkdir(parents=True, exist_ok=True)
    for r in RESOLUTIONS:
        res.images[r] = {}
    qi.mkdir(parents=True, exist_ok=True)
    stem = _stem(product, granule)
    fmt = opts.output_format
    nodata = red.nodata  # shared_nodata's mask, made while decoding

    def put(r: int, key: str, arr: np.ndarray, categorical: bool = False) -> None:
        g = grids[r]
        arr[..., nodata[r]] = 0  # one mask for every output of the grid
        p = write_raster(img / f"R{r}m" / f"{stem}_{key}_{r}m", arr, g.transform, crs, fmt,
                         nodata=0, categorical=categorical, threads=opts.threads, key=key)
        res.images[r][key] = p.relative_to(out_granule)

    # ---- bands: invert in place at native resolution, write, derive the other resolutions
    tci_src: dict[int, dict[str, Any]] = {r: {} for r in RESOLUTIONS}
    for b in sorted(red.shapes, key=lambda x: (NATIVE[x], x != "B08", x)):
        if b == "B10":
            continue
        arr = red.load(b)
        nat = NATIVE[b]
        invert_band(arr, b, an, opts)
        for r in sorted(out_res, key=lambda x: x == nat):  # native last: put() masks it in place
            if b not in OUTPUT_BANDS[r]:
                continue
            out = arr if r == nat else rows_resampled(arr, grids[r].shape, 0, grids[r].shape[0])
            put(r, b, out)
            if b in ("B02", "B03", "B04"):
                if r == nat:  # whole bands wait for the true colour in scratch files
                    tci_src[r][b] = scratch / f"{b}_{r}m.boa.u16"
                    out.tofile(tci_src[r][b])
                else:
                    tci_src[r][b] = out
                if len(tci_src[r]) == 3:  # write the true colour as soon as it can be, then let go
                    src = tci_src[r]
                    release_freed_memory()
                    tci = (_tci_from_files(src, grids[r].shape) if isinstance(src["B04"], Path)
                           else tci_from_dn(src["B04"], src["B03"], src["B02"]))
                    release_freed_memory()
                    put(r, "TCI", tci)
                    tci_src[r] = {}
                    del tci
            del out
        del arr
        release_freed_memory()  # the encoder's buffers, freed in its threads' arenas
    say(f"bands written after {time.perf_counter() - t0:.1f} s")

    # ---- AOT, WVP, SCL, QI masks
    # AOT/WV vary over kilometres: interpolate on the 60 m grid, replicate to the finer ones
    for key, field_, quant in (("AOT", an.aot.cells, AOT_QUANTIFICATION), ("WVP", an.wv.cells, WVP_QUANTIFICATION)):
        if an.terrain is not None:  # sea-level equivalents -> the column above each pixel
            from .correction import field_dn_at_height

            dn60 = field_dn_at_height(an.cells, field_, g60.shape, an.elev60, key, an.valid60, quant)
        else:
            dn60 = field_dn(an.cells, field_, g60, an.valid60, quant)
        for r in out_res:
            put(r, key, dn60 if r == 60 else resample_nearest(dn60, grids[r].shape))
    for r, (s, c, n) in ((20, (scl20, cld20, snw20)), (60, (scl60, cld60, snw60))):
        if r not in out_res or s is None:
            continue
        put(r, "SCL", s, categorical=True)
        g = grids[r]
        for key, arr in (("CLDPRB", c), ("SNWPRB", n)):
            p = write_raster(qi / f"MSK_{key}_{r}m", arr, g.transform, crs, fmt, nodata=None,
                             categorical=True, threads=opts.threads, key=key)
            res.qi[f"{key}_{r}m"] = p.relative_to(out_granule)
    res.details["scl_percent"], res.details["nodata_percent"] = scl_shares(scl20 if scl20 is not None else scl60)


def _tci_from_files(paths: dict[str, Path], shape: tuple[int, int]) -> np.ndarray:
    """:func:`tci_from_dn` of three bands held in raw uint16 files, ROWS_PER_BLOCK rows at a time
    (the same values: the true colour is computed pixel by pixel)."""
    h, w = shape
    out = np.empty((3, h, w), np.uint8)
    for r0 in range(0, h, ROWS_PER_BLOCK):
        r1 = min(h, r0 + ROWS_PER_BLOCK)
        rows = {b: np.fromfile(p, dtype=np.uint16, count=(r1 - r0) * w, offset=r0 * w * 2).reshape(r1 - r0, w)
                for b, p in paths.items()}
        out[:, r0:r1] = tci_from_dn(rows["B04"], rows["B03"], rows["B02"])
    return out


def _stem(product: Any, granule: Any) -> str:
    """``T56JMM_20180629T000241`` like the L1C band files (tile + sensing time)."""
    for p in granule.band_files.values():
        name = Path(p).name
        parts = name.split("_")
        if len(parts) >= 3 and parts[0].startswith("T"):
            return f"{parts[0]}_{parts[1]}"
    return f"T{granule.tile}_{product.sensing_time:%Y%m%dT%H%M%S}"

