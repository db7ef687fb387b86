"""The cube's Zarr store: CF layout, per-date provenance, append-only growth and a commit per time chunk.

Layout (Zarr format 2 with consolidated metadata, what xarray, GDAL and most readers open):

- ``<index>(time, y, x)`` int16, ``scale_factor`` 1e-4, ``add_offset`` 0, ``_FillValue`` -32768 (no clear
  observation), ``grid_mapping = spatial_ref``; chunks ``(time_chunk, 512, 512)``: one read of a
  pixel's series touches one chunk per ``time_chunk`` dates;
- ``time`` (seconds since 1970-01-01, UTC), ``x``/``y`` (pixel centres) and ``spatial_ref`` (CF grid
  mapping, from odc-geo);
- per date, as coordinates of the index: ``product``, ``tile``, ``baseline``, ``processor``,
  ``processor_version`` (``"; "``-separated when tiles were mosaicked, in the mosaic's order) and
  ``clear_fraction``; as variables: ``clear_pixels``, ``data_pixels`` and ``<index>_median``,
  ``<index>_q25``, ``<index>_q75`` over the area of interest.

Commit rule: new dates are written beyond the committed length (the arrays are resized first), then
the consolidated metadata is rewritten (one atomic file replace): that is the commit. Readers open the
consolidated metadata, so a build killed mid-way leaves a store that opens with the dates of the
last commit; the next build finds the longer arrays, cuts them back and goes on.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from s2l2a import __version__
from s2l2a.errors import S2L2AError

FILL = -32768
SCALE = 1e-4
CODE_MIN, CODE_MAX = -32767, 32767
TIME_UNITS = "seconds since 1970-01-01 00:00:00"
SPATIAL_CHUNK = 512  # per-chunk costs of zarr-python dominate below; one pixel's 8 dates: one 4 MB chunk
TIME_CHUNK = 8
SEPARATOR = "; "
MARKER = "s2l2a_cube"  # root attribute naming what built the store and how
TEXT_COORDS = ("product", "tile", "baseline", "processor", "processor_version")


class CubeError(S2L2AError):
    """The cube store cannot be created, opened or appended to."""


@dataclass
class DateRecord:
    """What one committed date of the cube says about itself."""

    time: np.datetime64
    product: str
    tile: str
    baseline: str
    processor: str
    processor_version: str
    clear_fraction: float
    clear_pixels: int
    data_pixels: int
    median: float
    q25: float
    q75: float


def _zarr() -> Any:
    import zarr

    return zarr


def _dims(*names: str) -> dict[str, Any]:
    return {"_ARRAY_DIMENSIONS": list(names)}


def _consolidate(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _zarr().consolidate_metadata(str(path), zarr_format=2)


def _committed_length(path: Path) -> int | None:
    """The length of ``time`` in the consolidated metadata (the commit), None when there is none."""
    try:
        meta = json.loads((path / ".zmetadata").read_text(encoding="utf-8"))
        return int(meta["metadata"]["time/.zarray"]["shape"][0])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


class CubeStore:
    """One cube store on disk, opened for appending (locked until :meth:`close`)."""

    def __init__(self, path: Path, group: Any, meta: dict[str, Any], length: int) -> None:
        self.path = path
        self.group = group
        self.meta = meta
        self.length = length

    @property
    def index(self) -> str:
        return str(self.meta["index"])

    def _time_arrays(self) -> list[Any]:
        return [a for _n, a in self.group.arrays() if (a.attrs.get("_ARRAY_DIMENSIONS") or [None])[0] == "time"]

    # -- creating and opening ------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path | str, geobox: Any, meta: dict[str, Any], time_chunk: int = TIME_CHUNK,
               spatial_chunk: int = SPATIAL_CHUNK) -> CubeStore:
        """An empty cube (no date) on ``geobox``; ``meta`` (index, formula, clear classes, AOI ...) is
        kept in the root attribute :data:`MARKER` and decides what a later append may add."""
        from odc.geo.xr import xr_coords

        from s2l2a.outputs.cube.grid import crs_name

        zarr = _zarr()
        path = Path(path)
        try:
            root = zarr.open_group(str(path), mode="w-", zarr_format=2)
        except (FileExistsError, zarr.errors.ContainsGroupError, zarr.errors.ContainsArrayError):
            raise CubeError("exists and is not an s2l2a cube; give another -o", path) from None
        index = meta["index"]
        h, w = int(geobox.shape.y), int(geobox.shape.x)
        meta = {**meta, "shape": [h, w], "time_chunk": int(time_chunk), "spatial_chunk": int(spatial_chunk),
                "transform": list(geobox.transform)[:6], "crs": crs_name(geobox.crs)}
        root.attrs.update({
            "Conventions": "CF-1.9",
            "title": f"{index} of Sentinel-2 L2A products, cloud-masked with SCL",
            "source": f"s2l2a {__version__}",
            "history": "built by s2l2a cube; dates are appended, never rewritten",
            MARKER: meta,
        })
        coords = xr_coords(geobox, crs_coord_name="spatial_ref")
        for axis, long in (("x", "x coordinate of projection"), ("y", "y coordinate of projection")):
            attrs = {**_dims(axis), **coords[axis].attrs, "standard_name": f"projection_{axis}_coordinate",
                     "long_name": long, "axis": axis.upper()}
            attrs.pop("crs", None)
            a = root.create_array(axis, shape=(coords[axis].size,), dtype="float64", chunks=(coords[axis].size,),
                                  fill_value=None, attributes=attrs)
            a[:] = coords[axis].values
        sref = root.create_array("spatial_ref", shape=(), dtype="int32", fill_value=None,
                                 attributes={**_dims(), **coords["spatial_ref"].attrs})
        sref[...] = int(geobox.crs.epsg or 0)
        root.create_array("time", shape=(0,), dtype="int64", chunks=(4096,), fill_value=None, attributes={
            **_dims("time"), "units": TIME_UNITS, "calendar": "proleptic_gregorian", "standard_name": "time",
            "long_name": "sensing time of the date's first product (UTC)", "axis": "T"})
        for name in TEXT_COORDS:
            root.create_array(name, shape=(0,), dtype=str, chunks=(4096,), attributes={
                **_dims("time"), "long_name": f"{name.replace('_', ' ')} of the date's product(s), "
                                              f"'{SEPARATOR}'-separated in mosaic order"})
        per_date = {"clear_fraction": ("float32", "clear pixels / pixels with data over the area of interest"),
                    "clear_pixels": ("int64", "pixels with a clear observation"),
                    "data_pixels": ("int64", "pixels with data (SCL not 0) over the area of interest"),
                    f"{index}_median": ("float32", f"median {index} of the clear pixels"),
                    f"{index}_q25": ("float32", f"25th percentile of {index} over the clear pixels"),
                    f"{index}_q75": ("float32", f"75th percentile of {index} over the clear pixels")}
        for name, (dtype, long) in per_date.items():
            fill = np.nan if dtype == "float32" else None
            root.create_array(name, shape=(0,), dtype=dtype, chunks=(4096,), fill_value=fill,
                              attributes={**_dims("time"), "long_name": long})
        from numcodecs import Blosc

        root.create_array(index, shape=(0, h, w), dtype="int16", fill_value=FILL,
                          # LZ4 level 1 after byte shuffle: 1/3 less CPU than zarr's default (level 5), 5 % larger
                          compressors=Blosc("lz4", 1, Blosc.SHUFFLE),
                          chunks=(int(time_chunk), min(spatial_chunk, h), min(spatial_chunk, w)), attributes={
                              **_dims("time", "y", "x"), "scale_factor": SCALE, "add_offset": 0.0,
                              "long_name": f"{index} = {meta.get('formula', '')}, clear sky only",
                              "units": "1", "grid_mapping": "spatial_ref",
                              "coordinates": " ".join((*TEXT_COORDS, "clear_fraction", "spatial_ref")),
                              "valid_min": CODE_MIN, "valid_max": CODE_MAX})
        _consolidate(path)
        store = cls(path, root, meta, 0)
        store.lock()
        return store

    @classmethod
    def open(cls, path: Path | str) -> CubeStore:
        """An existing cube, locked, cut back to its last commit if a build was killed after it."""
        zarr = _zarr()
        path = Path(path)
        try:
            root = zarr.open_group(str(path), mode="r+", zarr_format=2, use_consolidated=False)
            meta = dict(root.attrs.get(MARKER) or {})
        except Exception:  # noqa: BLE001 - zarr raises many types for a folder that is not a store
            meta = {}
        if not meta:
            raise CubeError("exists and is not an s2l2a cube; give another -o", path)
        length = _committed_length(path)
        if length is None:
            raise CubeError("the cube has no committed metadata (.zmetadata); remove it and build it again", path)
        store = cls(path, root, meta, length)
        store.lock()  # before looking for a killed build's leftovers: a live build's are not ours to cut
        if any(a.shape[0] != length for a in store._time_arrays()):
            store._cut_back()
        return store

    @classmethod
    def open_readonly(cls, path: Path | str) -> CubeStore:
        """An existing cube as its last commit says, for reading only (nothing is repaired)."""
        zarr = _zarr()
        path = Path(path)
        length = _committed_length(path)
        root = zarr.open_group(str(path), mode="r", zarr_format=2, use_consolidated=True)
        meta = dict(root.attrs.get(MARKER) or {})
        if not meta or length is None:
            raise CubeError("not an s2l2a cube", path)
        return cls(path, root, meta, length)

    def _cut_back(self) -> None:
        """Drop what a killed build wrote after the last commit."""
        for a in self._time_arrays():
            if a.shape[0] != self.length:
                a.resize((self.length, *a.shape[1:]))
        _consolidate(self.path)

    def lock(self) -> None:
        """One build per store at a time: an flock on the store folder, released when the process ends
        (however it ends) or at :meth:`close`."""
        import fcntl
        import os

        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise CubeError("another s2l2a cube is adding to this store now; run again when it has finished",
                            self.path) from None
        self._lock_fd = fd

    def close(self) -> None:
        import os

        fd = getattr(self, "_lock_fd", None)
        if fd is not None:
            os.close(fd)
            self._lock_fd = None

    # -- reading what is there -------------------------------------------------------------------

    def times(self) -> np.ndarray:
        """The committed dates' times (datetime64[s], UTC)."""
        t = self.group["time"][: self.length] if self.length else np.zeros(0, dtype="int64")
        return np.asarray(t, dtype="int64").astype("datetime64[s]")

    def records(self) -> list[DateRecord]:
        """Every committed date with its provenance and statistics."""
        n = self.length
        if n == 0:
            return []
        g, idx = self.group, self.index
        cols = {k: g[k][:n] for k in (*TEXT_COORDS, "clear_fraction", "clear_pixels", "data_pixels",
                                      f"{idx}_median", f"{idx}_q25", f"{idx}_q75")}
        times = self.times()
        return [DateRecord(time=times[i], product=str(cols["product"][i]), tile=str(cols["tile"][i]),
                           baseline=str(cols["baseline"][i]), processor=str(cols["processor"][i]),
                           processor_version=str(cols["processor_version"][i]),
                           clear_fraction=float(cols["clear_fraction"][i]), clear_pixels=int(cols["clear_pixels"][i]),
                           data_pixels=int(cols["data_pixels"][i]), median=float(cols[f"{idx}_median"][i]),
                           q25=float(cols[f"{idx}_q25"][i]), q75=float(cols[f"{idx}_q75"][i])) for i in range(n)]

    # -- appending ---------------------------------------------------------------------------------

    def extend(self, k: int) -> int:
        """Make room for ``k`` new dates after the committed ones; returns the first new position."""
        start = self.length
        for a in self._time_arrays():
            a.resize((start + k, *a.shape[1:]))
        return start

    @property
    def strip_rows(self) -> int:
        """Rows per build step: one chunk row, so parallel steps never write one chunk twice."""
        return int(self.group[self.index].chunks[1])

    def write_strip(self, start: int, row0: int, codes: np.ndarray) -> None:
        """Index codes of ``codes.shape[0]`` new dates for rows ``row0:row0 + codes.shape[1]``."""
        self.group[self.index][start:start + codes.shape[0], row0:row0 + codes.shape[1], :] = codes

    def write_records(self, start: int, records: list[DateRecord]) -> None:
        g, idx = self.group, self.index
        sl = slice(start, start + len(records))
        g["time"][sl] = np.array([r.time for r in records], dtype="datetime64[s]").astype("int64")
        for name in TEXT_COORDS:
            g[name][sl] = np.array([getattr(r, name) for r in records], dtype=object).astype(str)
        for name, attr in (("clear_fraction", "clear_fraction"), ("clear_pixels", "clear_pixels"),
                           ("data_pixels", "data_pixels"), (f"{idx}_median", "median"), (f"{idx}_q25", "q25"),
                           (f"{idx}_q75", "q75")):
            g[name][sl] = np.array([getattr(r, attr) for r in records])

    def commit(self, k: int) -> None:
        """Publish the ``k`` dates written after the committed ones (one atomic metadata write)."""
        self.length += k
        self.meta["dates"] = self.length
        self.group.attrs[MARKER] = self.meta
        _consolidate(self.path)
