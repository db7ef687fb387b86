"""A cloud-masked index cube of a campaign: one Zarr store per tile or area of interest, dates appended.

:func:`build_cube` stacks products handed over by a collector (for a campaign:
:func:`s2l2a.campaign.cubes.build_campaign_cube`, what ``s2l2a cube`` calls): it keeps the pixels
of each product's derived index whose SCL class is clear, puts them on one grid, mosaics the
products of one day (the clearest pixel wins) and appends the dates the store does not hold yet.
See docs/cube.md for the layout and the rules; the modules are: :mod:`.sources` (what a product
brings), :mod:`.grid` (which grid), :mod:`.build` (the pixels), :mod:`.store` (the Zarr layout and
the commit) and :mod:`.series` (the quick looks).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from s2l2a.errors import ConfigError
from s2l2a.outputs.cube.sources import Collector
from s2l2a.outputs.cube.store import MARKER, SEPARATOR, SPATIAL_CHUNK, TIME_CHUNK, CubeError, CubeStore

__all__ = ["CubeError", "CubeResult", "CubeSpec", "build_cube", "open_cube"]

GDAL_CACHE_MB = 64
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")


@dataclass
class CubeSpec:
    """What to stack. ``None`` means "the default", or on a re-run "what the store was built with"."""

    index: str | None = None              # default ndvi
    resolution: int | None = None         # metres; default 20
    aoi: Path | str | None = None         # GeoJSON file (longitude/latitude)
    crs: str | None = None                # default: the tiles' own CRS
    clear_classes: tuple[int, ...] | None = None   # default 4, 5, 6
    start: date | None = None
    end: date | None = None
    tile: str | None = None               # one tile of a multi-tile campaign, without an AOI
    time_chunk: int = TIME_CHUNK
    spatial_chunk: int = SPATIAL_CHUNK    # rows and columns per chunk (a multiple of the COGs' 256 px blocks)
    workers: int = 1
    derive_missing: bool = True
    netcdf: Path | str | None = None      # also write the whole cube as one NetCDF file
    quicklooks: bool = True               # clear count, series CSV and PNG beside the store


@dataclass
class CubeResult:
    """What a build did."""

    path: Path
    added: list[str] = field(default_factory=list)        # dates appended, ISO
    dates: int = 0                                        # dates in the store now
    grid: str = ""
    notes: list[str] = field(default_factory=list)        # one line per product or date left out
    files: dict[str, Path] = field(default_factory=dict)  # clear_count, series_csv, series_png, netcdf


def open_cube(path: Path | str) -> Any:
    """The cube as an xarray Dataset (lazy, dask), time-sorted: what docs/cube.md's one-liner does."""
    import xarray as xr

    return xr.open_zarr(path).sortby("time")


def _check_spec(spec: CubeSpec) -> None:
    from s2l2a.safe.scl import BY_CODE

    if spec.index is not None and not _NAME.match(spec.index):
        raise ConfigError(f"--index {spec.index!r}: an index name such as ndvi, evi or a derived formula's name")
    if spec.resolution is not None and spec.resolution not in (10, 20, 60):
        raise ConfigError(f"--resolution must be 10, 20 or 60, not {spec.resolution}")
    for c in spec.clear_classes or ():
        if int(c) not in BY_CODE:
            raise ConfigError(f"--clear: SCL class {c} does not exist (0-{max(BY_CODE)})")
    if spec.clear_classes is not None and not spec.clear_classes:
        raise ConfigError("--clear: give at least one SCL class (e.g. 4,5,6)")
    if spec.start and spec.end and spec.start > spec.end:
        raise ConfigError(f"--start {spec.start} is after --end {spec.end}")
    if not 16 <= int(spec.spatial_chunk) <= 4096:
        raise ConfigError(f"spatial_chunk must be 16-4096 pixels, not {spec.spatial_chunk}")
    if not 1 <= int(spec.time_chunk) <= 366:
        raise ConfigError(f"--time-chunk must be 1-366 dates, not {spec.time_chunk}")


def _aoi_doc(geom: Any) -> dict[str, Any]:
    from shapely.geometry import mapping

    return json.loads(json.dumps(mapping(geom)))


def _reconcile(spec: CubeSpec, meta: dict[str, Any], aoi: Any, path: Path) -> tuple[Any, dict[str, Any]]:
    """A re-run adds dates to a store only under the rules it was built with; unset options take them."""
    from shapely.geometry import shape

    given = {"index": spec.index, "resolution": spec.resolution, "crs": None, "tile": spec.tile,
             "clear_classes": list(spec.clear_classes) if spec.clear_classes else None}
    diffs = []
    for key, value in given.items():
        if value is not None and value != meta.get(key):
            diffs.append(f"{key} {meta.get(key)} (asked: {value})")
    if spec.crs is not None:
        from s2l2a.outputs.cube.grid import parse_crs

        if parse_crs(spec.crs) != parse_crs(meta["crs"]):
            diffs.append(f"crs {meta['crs']} (asked: {spec.crs})")
    stored_aoi = shape(meta["aoi"]) if meta.get("aoi") else None
    if aoi is not None and (stored_aoi is None or not stored_aoi.equals(aoi)):
        diffs.append("another area of interest" if stored_aoi is not None else "no area of interest")
    if diffs:
        raise CubeError(f"was built with {'; '.join(diffs)}; give another -o for another cube", path)
    return (aoi if aoi is not None else stored_aoi), meta


def _days(observations: list[Any]) -> list[Any]:
    from s2l2a.outputs.cube.build import Day

    by_day: dict[date, list[Any]] = {}
    for o in observations:
        by_day.setdefault(o.day, []).append(o)
    return [Day(d, sorted(ps, key=lambda o: o.product)) for d, ps in sorted(by_day.items())]


def build_cube(collect: Collector, out: Path | str, spec: CubeSpec | None = None, progress: Any = None, *,
               source: str | None = None) -> CubeResult:
    """Create ``out`` or append new dates to it: ``collect`` answers which products (it is called once,
    when the cube's rules are known); ``source`` (e.g. the campaign folder) is recorded in the store."""
    from s2l2a.outputs.cube.grid import read_aoi_file
    from s2l2a.outputs.indices import INDICES

    spec = spec or CubeSpec()
    _check_spec(spec)
    if spec.index and spec.index.lower() in INDICES:
        spec = replace(spec, index=spec.index.lower())
    say = progress or (lambda _line: None)
    out = Path(out)
    aoi = read_aoi_file(spec.aoi) if spec.aoi is not None else None
    store = CubeStore.open(out) if out.exists() else None
    try:
        store, grid, got, clear, result = _prepare(store, collect, source, out, spec, aoi)
        return _append(store, grid, got, clear, spec, result, say)
    finally:
        if store is not None:
            store.close()


def _prepare(store: CubeStore | None, collect: Collector, source: str | None, out: Path, spec: CubeSpec,
             aoi: Any) -> tuple[CubeStore, Any, Any, tuple[int, ...], CubeResult]:
    """The products to stack and the store (created on its grid when new) with its rules."""
    from odc.geo.geobox import GeoBox
    from odc.geo.geom import Geometry

    from s2l2a.outputs.cube.grid import CubeGrid, check_aoi_in_campaign, choose_grid
    from s2l2a.outputs.cube.sources import CollectRequest, baseline_note, require_some
    from s2l2a.outputs.indices import INDICES
    from s2l2a.safe.scl import CLEAR

    if store is not None:
        aoi, meta = _reconcile(spec, store.meta, aoi, out)
        index, resolution, tile = meta["index"], int(meta["resolution"]), meta.get("tile")
        clear = tuple(meta["clear_classes"])
    else:
        index = spec.index or "ndvi"
        resolution, tile = spec.resolution or 20, spec.tile
        clear = tuple(sorted({int(c) for c in spec.clear_classes})) if spec.clear_classes else CLEAR
    got = collect(CollectRequest(index, resolution, spec.start, spec.end, frozenset({tile}) if tile else None, aoi,
                                 spec.derive_missing))
    if aoi is not None:
        check_aoi_in_campaign(aoi, got.planned_tiles, got.done_tiles, spec.aoi)
    require_some(got, source or "")
    result = CubeResult(path=out, notes=list(got.notes))
    note = baseline_note(got.observations)
    if note:
        result.notes.append(note)
    if store is None:
        grid = choose_grid(got.observations, resolution, spec.crs, aoi, spec.aoi)
        meta = {"index": index, "formula": INDICES.get(index, ""), "resolution": resolution, "tile": tile,
                "clear_classes": list(clear), "aoi": _aoi_doc(aoi) if aoi is not None else None,
                "source": source,
                "mosaic": "clearest pixel wins: clear beats cloudy; among clear, the larger clear fraction"}
        out.parent.mkdir(parents=True, exist_ok=True)
        store = CubeStore.create(out, grid.geobox, meta, spec.time_chunk, spec.spatial_chunk)
        return store, grid, got, clear, result
    from affine import Affine
    from odc.geo.crs import CRS

    h, w = store.meta["shape"]
    gb = GeoBox((h, w), Affine(*store.meta["transform"]), CRS(store.meta["crs"]))
    grid_aoi = Geometry(aoi, "EPSG:4326").to_crs(gb.crs).geom if aoi is not None else None
    return store, CubeGrid(gb, grid_aoi), got, clear, result


def _append(store: CubeStore, grid: Any, got: Any, clear: tuple[int, ...], spec: CubeSpec,
            result: CubeResult, say: Any) -> CubeResult:
    """The new dates of ``got`` into ``store`` (locked), then the quick looks."""
    import numpy as np
    import rasterio

    from s2l2a.outputs.cube import series
    from s2l2a.outputs.cube.build import Batch, Day

    out = store.path
    result.grid = grid.describe()
    say(f"grid: {result.grid}")

    # which days are new
    have = {str(t.astype("datetime64[D]")): r for t, r in zip(store.times(), store.records(), strict=True)}
    last = max(store.times()) if store.length else None
    days: list[Day] = []
    for d in _days(got.observations):
        key = d.day.isoformat()
        if key in have:
            known = set(have[key].product.split(SEPARATOR))
            extra = [o.product for o in d.products if o.product not in known]
            if extra:
                result.notes.append(f"{key} is in the cube already; {', '.join(extra)} done since is not added "
                                    "(dates are never rewritten: build a new cube to include it)")
            continue
        if last is not None and d.time < last:
            result.notes.append(f"{key} is older than the cube's last date: appended at the end "
                                "(open the cube with .sortby('time'))")
        days.append(d)
    h, w = store.meta["shape"]
    counts = series.load_counts(store) if spec.quicklooks else np.zeros((h, w), dtype=np.uint16)
    clear_arr = np.asarray(clear, dtype=np.uint8)
    tc = int(store.meta.get("time_chunk", spec.time_chunk))
    i = 0
    # every block is read once: GDAL's default cache (5 % of RAM) would only hold what is never read again
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        while i < len(days):
            k = min(len(days) - i, tc - store.length % tc)
            batch = days[i:i + k]
            Batch(batch, grid.geobox, grid.aoi, clear_arr, spec.workers).run(store, counts, store.strip_rows)
            result.added += [d.day.isoformat() for d in batch]
            say(f"added {batch[0].day}" + (f" .. {batch[-1].day}" if k > 1 else "") + f" ({store.length} dates)")
            i += k
    result.dates = store.length
    if spec.quicklooks and store.length:
        result.files["clear_count"] = series.write_counts(store, counts)
        rows = series.series_rows(store.records())
        result.files["series_csv"] = series.write_series_csv(store, rows)
        result.files["series_png"] = series.write_series_png(store, rows)
    if spec.netcdf is not None:
        result.files["netcdf"] = write_netcdf(out, Path(spec.netcdf))
    return result


def write_netcdf(cube: Path, path: Path) -> Path:
    """The whole cube as one NetCDF-4 file (h5netcdf), same variables and attributes, written aside then
    renamed (NetCDF cannot be appended to safely; it is rewritten from the store each time)."""
    import xarray as xr

    from s2l2a.fsutil import atomic_path

    ds = xr.open_zarr(cube)
    ds.attrs[MARKER] = json.dumps(ds.attrs.get(MARKER))  # NetCDF attributes are flat: the record as JSON
    enc = {}
    for name, var in ds.data_vars.items():
        e = {k: v for k, v in var.encoding.items() if k in ("dtype", "scale_factor", "add_offset", "_FillValue")}
        if var.ndim == 3:
            chunks = var.encoding.get("chunks") or var.shape
            e.update(zlib=True, complevel=4, chunksizes=tuple(min(c, n) for c, n in zip(chunks, var.shape, strict=True)))
        enc[name] = e
    try:
        with atomic_path(path) as tmp:
            ds.to_netcdf(tmp, engine="h5netcdf", encoding=enc)
    finally:
        ds.close()
    return path
