"""The deliverable-only run of the built-in processor: the derived outputs (indices, SCL, clear mask,
quicklooks) of one granule straight from memory, without writing its L2A.

Why: a campaign run with ``--keep derived`` keeps only the derived folder, yet the full path decodes,
inverts and writes ~40 rasters that are deleted right after derive has read three of them. Here only
what those outputs need is computed, and the result is the folder ``derive`` would have written from
the full L2A, array for array:

- every band is still decoded at its native resolution, one at a time, and reduced at once to what
  the analysis needs (its 60 m version, the 20 m version of the classification bands, its share of
  each grid's no-data mask: :func:`pipeline.decode_reduced`); only the bands the indices read are
  kept whole, in raw scratch files (memory without one), and derive reads them from there. JPEG 2000's
  reduced resolution levels are not used: they are wavelet low-pass images, not the block means of
  valid pixels the full path classifies on, and the full path's no-data mask is the union of every
  band's zeros, so reading any band coarser (or not at all) would change SCL at cloud and swath edges;
- the analysis (classification, AOT/WV, coefficients) is :func:`pipeline.analyse`, the inversion
  :func:`pipeline.invert_band`, so the DN are those the full path writes (losslessly);
- the L2A images derive would open are built in memory (same resampling and mask as the full path's
  writer) and handed to :func:`s2l2a.outputs.derive.write_derived`, which computes and checks the
  COGs exactly as for a written L2A.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from s2l2a.safe.bands import NATIVE_RESOLUTION

from .pipeline import (
    OUTPUT_BANDS,
    GranuleResult,
    Options,
    _grids,
    _limit_numba_threads,
    analyse,
    band_headers,
    decode_reduced,
    granule_bands,
    invert_band,
    invert_in_place,
    output_resolutions,
    release_freed_memory,
    rows_resampled,
    scl_shares,
    tci_from_dn,
)
from .radiometry import resample_nearest

NATIVE = NATIVE_RESOLUTION
QUICKLOOK_SIDE = 512  # as outputs/quicklook.py: the coarsest grid with this many pixels, else the finest


class MemoryImage:
    """One image held in memory, or in a raw scratch file (``path``, read row range by row range),
    that reads like the rasterio dataset derive opens.

    Neither ``arr`` nor ``path``: only the grid (derive sizes its output grid from any image of the
    resolution)."""

    count = 1

    def __init__(self, arr: np.ndarray | None, transform: Any, crs: Any, shape: tuple[int, int] | None = None,
                 path: Path | None = None, dtype: Any = np.uint16) -> None:
        self.arr = arr
        self.path = path
        self.dtype = np.dtype(arr.dtype if arr is not None else dtype)
        self.height, self.width = arr.shape if arr is not None else shape  # type: ignore[misc]
        self.transform = transform
        self.crs = crs

    def read(self, indexes: int = 1, window: Any = None, **_: Any) -> np.ndarray:
        (r0, r1), (c0, c1) = window.toranges() if window is not None else ((0, self.height), (0, self.width))
        if self.arr is not None:
            return self.arr[r0:r1, c0:c1]
        if self.path is None:
            raise ValueError("a grid-only image has no pixels")
        rows = np.fromfile(self.path, dtype=self.dtype, count=(r1 - r0) * self.width,
                           offset=r0 * self.width * self.dtype.itemsize)
        return rows.reshape(r1 - r0, self.width)[:, c0:c1]

    def close(self) -> None:
        pass

    def __enter__(self) -> MemoryImage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Deliverables:
    """What :func:`run_deliverables` made: the L2A images derive reads, held in memory."""

    images: dict[int, dict[str, MemoryImage]]
    grids: dict[int, Any]
    result: GranuleResult
    tci: np.ndarray | None = None   # quicklook H x W x 3 uint8
    scl: np.ndarray | None = None   # quicklook SCL classes (H x W uint8)


@dataclass
class Delivered:
    """What :meth:`BuiltinProcessor.deliver` returns: the published derived folder and the run's details."""

    derived: Any  # s2l2a.outputs.derive.DerivedResult
    processor: str
    processor_version: str
    details: dict[str, Any] = field(default_factory=dict)


def image_choice(out_res: tuple[int, ...], bands: list[str], spec: Any) -> dict[str, int]:
    """Band (or SCL) -> the resolution folder derive reads it from in the full L2A the built-in
    writer would fill (``spec.image_for``: derive's own rule, asked rather than repeated here)."""
    layout: dict[int, dict[str, Any]] = {r: {b: r for b in OUTPUT_BANDS[r]} for r in out_res}
    for r in out_res:
        if r in (20, 60):
            layout[r]["SCL"] = r
    out = {}
    for b in [*bands, "SCL"]:
        found = spec.image_for(layout, b)
        if found is not None:  # else derive raises its own error for a missing band (or writes no SCL)
            out[b] = found[1]
    return out


def run_deliverables(product: Any, granule: Any, opts: Options, lut: Any, spec: Any,
                     progress: Any = None, scratch: Path | None = None) -> Deliverables:
    """Decode, analyse and invert only what ``spec`` (a DeriveSpec) needs; see the module docstring.

    ``scratch``: a folder where the index bands wait (raw files) instead of memory; the images read
    from there, so it must outlive the derived folder's writing."""
    t0 = time.perf_counter()
    say = progress or (lambda msg: None)
    _limit_numba_threads(opts.threads)
    res = GranuleResult()
    files, res.missing_bands = granule_bands(granule)
    formulas = spec.parsed()
    index_bands = sorted({b for f in formulas for b in f.bands})

    shapes, transforms, crs = band_headers(files, granule)
    grids = _grids(granule, shapes, transforms)
    out_res = output_resolutions(files, opts)
    choice = image_choice(out_res, index_bands, spec)
    scl_res = 20 if 20 in out_res else 60  # the SCL the product's class shares are counted on
    red = decode_reduced(files, grids, opts.threads, sorted({*choice.values(), scl_res}), 20 in out_res,
                         keep=() if scratch else index_bands, spill=index_bands if scratch else (),
                         spill_dir=scratch)
    nodata, data60, data20, native = red.nodata, red.data60, red.data20, red.kept
    say(f"decoded {len(files)} bands (kept {', '.join(sorted(red.spilled or native)) or 'none'} whole) in "
        f"{time.perf_counter() - t0:.1f} s")
    an = analyse(product, granule, grids, crs, data60, data20, opts, lut, res, say, t0)
    red.data60, red.data20 = {}, {}
    if an.out_res != out_res:  # the two rules above must not drift apart
        raise RuntimeError(f"resolutions {an.out_res} differ from the predicted {out_res}")

    images: dict[int, dict[str, MemoryImage]] = {r: {} for r in out_res}
    for r in out_res:  # derive sizes its grid from any image of the resolution
        images[r]["AOT"] = MemoryImage(None, grids[r].transform, crs, shape=grids[r].shape)
    scl_img = None
    for r in (20, 60):
        if r in an.scl and r in nodata:
            s = an.scl[r][0]
            s[nodata[r]] = 0  # as the writer's put(): one mask for every output of the grid
            if r == scl_res:
                scl_img = s
            if choice.get("SCL") == r:
                images[r]["SCL"] = MemoryImage(s, grids[r].transform, crs)
    res.details["scl_percent"], res.details["nodata_percent"] = scl_shares(scl_img)
    tci, scl_ql = _quicklooks(an, grids, out_res, data20 or data60, scl_img, scl_res)
    del data60, data20
    release_freed_memory()  # the classification's temporaries, before the index bands come back

    for b in index_bands:
        if b not in native and b not in red.spilled:
            continue
        arr = invert_band(red.load(b), b, an, opts)
        nat = NATIVE[b]
        r = choice.get(b)
        if r is None:
            continue
        out = arr if r == nat else rows_resampled(arr, grids[r].shape, 0, grids[r].shape[0])
        out[nodata[r]] = 0
        if scratch is not None:
            path = scratch / f"{b}_{r}m.boa.u16"
            out.tofile(path)
            images[r][b] = MemoryImage(None, grids[r].transform, crs, shape=out.shape, path=path, dtype=out.dtype)
        else:
            images[r][b] = MemoryImage(out, grids[r].transform, crs)
        del arr, out
    res.details["resolutions"] = list(out_res)
    res.details["seconds"] = round(time.perf_counter() - t0, 2)
    say(f"deliverables ready in {res.details['seconds']:.1f} s")
    return Deliverables(images=images, grids=grids, result=res, tci=tci, scl=scl_ql)


def _quicklooks(an: Any, grids: dict[int, Any], out_res: tuple[int, ...], toa: dict[str, np.ndarray],
                scl: np.ndarray | None, scl_res: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Preview arrays like outputs/quicklook.py's: sized from the coarsest grid with QUICKLOOK_SIDE
    pixels (else the finest), the true colour inverted from the coarse band copies the analysis used
    (a preview, not pixel-equal to the written TCI's), the SCL sampled nearest."""
    big = [r for r in sorted(out_res, reverse=True) if max(grids[r].shape) >= QUICKLOOK_SIDE]
    g = grids[big[0] if big else min(out_res)]
    f = min(1.0, QUICKLOOK_SIDE / max(g.shape))
    shape = (max(1, round(g.shape[0] * f)), max(1, round(g.shape[1] * f)))
    tci = None
    if all(b in toa and b in an.coeffs for b in ("B02", "B03", "B04")):
        boa = {}
        for b in ("B02", "B03", "B04"):
            small = np.ascontiguousarray(resample_nearest(toa[b], shape), dtype=np.uint16).copy()
            # numpy: a 512 px preview takes milliseconds; through numba it took 1.9 s on a full tile
            # (profiled), a compilation for its argument types beside the index bands' own
            boa[b] = invert_in_place(small, an.cells, an.coeffs[b], *an.refl[b], use_numba=False)
        tci = np.moveaxis(tci_from_dn(boa["B04"], boa["B03"], boa["B02"]), 0, -1)
    scl_ql = None
    if scl is not None:
        from s2l2a.safe.scl import palette

        scl_ql = palette()[resample_nearest(scl, shape)]
    return tci, scl_ql
