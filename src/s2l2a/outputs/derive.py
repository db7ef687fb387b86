"""Derived products of one L2A: spectral indices, SCL and a clear-sky mask as Cloud-Optimized GeoTIFFs.

Why this module exists: the lab computed NDVI on raw DN, which is wrong for every product of
processing baseline 04.00 or later (and every Collection-1 reprocessed one), where
reflectance = (DN + BOA_ADD_OFFSET) / BOA_QUANTIFICATION_VALUE with an offset of -1000. Both numbers
are read from the product's own MTD_MSIL2A.xml (via :mod:`s2l2a.safe`), never guessed from a date.
DN 0 is nodata in every baseline.

Outputs are written into a hidden staging folder, checked (COG layout, readable, tags), and only
then renamed to ``<out_dir>/<product name>/``, so a derived folder that is visible is complete; a
``derived.json`` manifest in it records what was made from what. :func:`verify_derived` re-checks a
folder from disk, and is what the keep policy relies on before deleting an L2A.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from s2l2a import __version__
from s2l2a.clock import utcnow
from s2l2a.diskspace import short_of_space
from s2l2a.errors import ConfigError, S2L2AError, exception_chain
from s2l2a.outputs.cog import CogError, check_cog
from s2l2a.outputs.indices import Formula, builtin_index, parse_formula_option
from s2l2a.outputs.provenance import read_provenance
from s2l2a.registry import Section, Setting, boolean, string_list
from s2l2a.safe.scl import BY_CODE, CLEAR, NODATA

MANIFEST = "derived.json"
PARTIAL_PREFIX = ".partial-"
REPLACED_PREFIX = ".replaced-"
SCL_NODATA = NODATA
MASK_NODATA = 255
DEFAULT_CLEAR = CLEAR  # vegetation, not vegetated, water
REFLECTANCE_RULE = "(DN + BOA_ADD_OFFSET) / BOA_QUANTIFICATION_VALUE; DN 0 = nodata"


class DeriveError(S2L2AError):
    """Derived outputs could not be written or did not verify."""


@dataclass
class DeriveSpec:
    """What to derive: built-in indices, user formulas ("name=expr"), resolution, SCL, clear mask."""

    indices: tuple[str, ...] = ("ndvi",)
    formulas: tuple[str, ...] = ()
    resolution: int = 10
    clear_classes: tuple[int, ...] | None = None
    write_scl: bool = True
    quicklooks: bool = True

    @classmethod
    def from_settings(cls, d: dict[str, Any], default_indices: tuple[str, ...] = ()) -> DeriveSpec:
        """The spec a ``[derive]`` section (or a run's derive options) asks for; the one place that
        reads those keys, so a worker, a run and a re-derive agree on what a setting means."""
        return cls(indices=tuple(d.get("indices") or default_indices), formulas=tuple(d.get("formulas") or ()),
                   resolution=int(d.get("resolution") or 10),
                   clear_classes=tuple(d["clear_classes"]) if d.get("clear_classes") else None)

    def image_for(self, images: dict[int, dict[str, Any]], band: str) -> tuple[Any, int] | None:
        """The image of ``band`` derive reads at this spec's resolution, and its resolution (the
        finest other one that has it when this one does not); None when no resolution has it."""
        try:
            return _band_file(images, band, self.resolution)
        except DeriveError:
            return None

    def parsed(self) -> list[Formula]:
        """All formulas, checked (raises FormulaError before any pixel is read)."""
        out = [builtin_index(n) for n in self.indices if n.strip()]
        out += [parse_formula_option(f) for f in self.formulas]
        names = [f.name for f in out]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise DeriveError(f"formula name(s) used twice: {', '.join(sorted(dup))}")
        if self.resolution not in (10, 20, 60):
            raise DeriveError(f"resolution must be 10, 20 or 60, not {self.resolution}")
        for c in self.clear_classes or ():
            if int(c) not in BY_CODE:
                raise DeriveError(f"SCL class {c} does not exist (0-{max(BY_CODE)})")
        return out


@dataclass
class DerivedResult:
    """What :func:`derive_product` wrote: the folder, one file per output, and where it came from."""

    product: str
    source: str
    out_dir: str
    resolution: int
    files: dict[str, str] = field(default_factory=dict)      # output name -> file name in out_dir
    formulas: dict[str, str] = field(default_factory=dict)   # index name -> expression
    boa_add_offset: dict[str, float] = field(default_factory=dict)
    boa_quantification_value: float = 10000.0
    baseline: str | None = None
    tile: str | None = None
    sensing_time: str | None = None
    clear_classes: list[int] | None = None
    quicklooks: dict[str, str] = field(default_factory=dict)  # "tci"/"scl" -> PNG file name
    footprint: dict[str, Any] | None = None                    # GeoJSON lon/lat (STAC, report map)
    epsg: int | None = None
    cloud_cover: float | None = None
    mission: str | None = None
    created: str = ""
    s2l2a_version: str = __version__
    provenance: dict[str, Any] = field(default_factory=dict)  # how the L2A was made (outlives a deleted L2A)

    def path(self, name: str) -> Path:
        return Path(self.out_dir) / self.files[name]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def load(cls, folder: Path | str) -> DerivedResult:
        """Read ``<folder>/derived.json`` (the folder's current location wins over the recorded one)."""
        folder = Path(folder)
        try:
            data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DeriveError(f"no readable {MANIFEST}: {e}", folder) from None
        known = set(cls.__dataclass_fields__)
        res = cls(**{k: v for k, v in data.items() if k in known})
        res.out_dir = str(folder)
        return res


# -- reading bands on one grid -------------------------------------------------------------------

@dataclass
class _Grid:
    res: int
    shape: tuple[int, int]
    transform: Any
    crs: Any


GDAL_CACHE_MB = 256
STRIP_ROWS = 1098  # output rows per step: a multiple of 6, so 2x, 3x and 6x source factors align


def _resample(a: np.ndarray, shape: tuple[int, int], categorical: bool) -> np.ndarray:
    """Integer-factor downsampling: block mean of valid (non-zero) DN, a sample for classes."""
    th, tw = shape
    k = a.shape[0] // th
    if k == 1:
        return a
    if categorical:
        return a[k // 2::k, k // 2::k][:th, :tw]
    blocks = a.reshape(th, k, tw, k).astype(np.float64)
    valid = blocks > 0
    n = valid.sum(axis=(1, 3))
    s = np.where(valid, blocks, 0.0).sum(axis=(1, 3))
    return np.where(n == k * k, s / np.maximum(n, 1), 0.0)  # a block with any nodata pixel is nodata


def _open(image: Any) -> Any:
    """A rasterio dataset of an image file, or ``image`` itself when it already reads like one (an
    image held in memory: the built-in processor's deliverable-only run never writes its L2A)."""
    if hasattr(image, "read"):
        return image
    import rasterio

    return rasterio.open(image)


class _Source:
    """One image read strip by strip onto the output grid.

    Real tiles have exact 2x/3x/6x relations (10980/5490/1830 px): block means down, replication up,
    read window by window. Other grids (the decimated test products: 439 px at 10 m, 219 at 20 m)
    are resampled whole by geotransform with GDAL.
    """

    def __init__(self, path: Any, grid: _Grid, categorical: bool) -> None:
        self.ds = _open(path)
        self.categorical = categorical
        self.grid = grid
        h, w = self.ds.height, self.ds.width
        H, W = grid.shape  # noqa: N806
        self.full: np.ndarray | None = None
        if h % H == 0 and w % W == 0 and h // H == w // W:
            self.mode, self.k = "down", h // H
        elif H % h == 0 and W % w == 0 and H // h == W // w:
            self.mode, self.k = "up", H // h
        else:
            self.mode, self.k = "warp", 0
            self.full = self._warp()

    def _warp(self) -> np.ndarray:
        from rasterio.warp import Resampling, reproject

        a = self.ds.read(1)
        dst = np.zeros(self.grid.shape, dtype=a.dtype if self.categorical else np.float64)
        down = abs(self.ds.transform.a) < abs(self.grid.transform.a)
        method = Resampling.average if (down and not self.categorical) else Resampling.nearest
        reproject(a, dst, src_transform=self.ds.transform, src_crs=self.ds.crs, dst_transform=self.grid.transform,
                  dst_crs=self.grid.crs, src_nodata=0, dst_nodata=0, resampling=method)
        return dst

    def strip(self, r0: int, r1: int) -> np.ndarray:
        from rasterio.windows import Window

        W = self.grid.shape[1]  # noqa: N806
        if self.full is not None:
            return self.full[r0:r1]
        k = self.k
        if self.mode == "down":
            a = self.ds.read(1, window=Window(0, r0 * k, self.ds.width, (r1 - r0) * k))
            return _resample(a, (r1 - r0, W), self.categorical)
        s0, s1 = r0 // k, -(-r1 // k)
        a = self.ds.read(1, window=Window(0, s0, self.ds.width, s1 - s0))
        rows = a.repeat(k, axis=0).repeat(k, axis=1)
        return rows[r0 - s0 * k: r0 - s0 * k + (r1 - r0), :W]

    def close(self) -> None:
        self.ds.close()


def _band_file(images: dict[int, dict[str, Path]], band: str, res: int) -> tuple[Path, int]:
    """The image of ``band`` at ``res``, else at the finest other resolution that has it."""
    if band in images.get(res, {}):
        return images[res][band], res
    finer = sorted(r for r in images if r < res and band in images[r])
    coarser = sorted(r for r in images if r > res and band in images[r])
    for r in finer[-1:] + coarser[:1]:
        return images[r][band], r
    raise DeriveError(f"the product has no {band} image at any resolution")


def _grid(images: dict[int, dict[str, Path]], res: int, where: Path) -> _Grid:
    if res not in images or not images[res]:
        have = ", ".join(f"{r} m" for r in sorted(images)) or "none"
        raise DeriveError(f"no {res} m images in this product (has: {have}); choose another --resolution", where)
    ref = next((images[res][b] for b in ("B04", "B02", "SCL", "AOT") if b in images[res]),
               next(iter(images[res].values())))
    with _open(ref) as ds:
        return _Grid(res, (ds.height, ds.width), ds.transform, ds.crs)


# -- the work ------------------------------------------------------------------------------------

def _geojson(geom: Any) -> dict[str, Any] | None:
    if geom is None:
        return None
    from shapely.geometry import mapping

    return json.loads(json.dumps(mapping(geom)))  # tuples -> lists


def _rmtree(p: Path) -> None:
    if p.is_symlink() or p.is_file():
        p.unlink(missing_ok=True)
    elif p.exists():
        shutil.rmtree(p)


_HOST = socket.gethostname().split(".")[0].replace("-", "_") or "host"


def _remove_dead_partials(out_dir: Path, name: str) -> None:
    """Staging folders of this product left by killed runs on this host (their pid is gone)."""
    for p in out_dir.glob(f"{PARTIAL_PREFIX}{_HOST}-*-{name}"):
        pid = p.name[len(PARTIAL_PREFIX) + len(_HOST) + 1:].split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            _cleanup(p)
        except PermissionError:
            pass  # alive, another user's


def _cleanup(staging: Path) -> None:
    try:
        _rmtree(staging)
    except OSError:
        pass  # a hidden .partial- folder; the next run of the same product removes it


def _refuse_incomplete(product_dir: Path, granule: Any) -> None:
    """No index from a product that lost a file since it was published (manifest) or that lacks
    one its metadata lists."""
    from s2l2a.outputs.manifest import manifest_problem

    problem = manifest_problem(product_dir)
    if problem is None and granule.missing_files:
        key, missing = next(iter(granule.missing_files.items()))
        problem = f"{Path(product_dir).name}: {Path(missing).name} ({key.split(':')[-1]}) is missing"
    if problem is not None:
        raise DeriveError(f"incomplete L2A {problem}; nothing derived", product_dir)


def derive_product(l2a_path: Path | str, out_dir: Path | str, spec: DeriveSpec | None = None, *,
                   threads: int = 1) -> DerivedResult:
    """Write the derived COGs of one L2A product to ``<out_dir>/<product name>/`` and return what was made.

    ``threads``: cores the COG compression may use (a campaign job passes its own).

    Raises DeriveError (or a ProductError/FormulaError) and leaves nothing visible when any step
    fails; the L2A itself is never modified.
    """
    from s2l2a.safe import open_l2a

    spec = spec or DeriveSpec()
    spec.parsed()  # a bad formula fails before the product is opened
    product = open_l2a(l2a_path, require_bands=False)
    if len(product.granules) != 1:
        raise DeriveError(f"{len(product.granules)} granules; derive handles single-tile products", product.path)
    granule = product.granules[0]
    _refuse_incomplete(product.path, granule)
    return write_derived(product, granule.images, out_dir, spec, source=Path(product.path).resolve(), threads=threads)


def publisher(out_dir: Path | str, spec: DeriveSpec, threads: int = 1) -> Callable[..., DerivedResult]:
    """``publish(l2a, images, source, tci, scl)`` for a processor that derives without writing the
    L2A (the built-in's ``deliver``): :func:`write_derived` into ``out_dir`` with quicklooks drawn
    from the ``tci``/``scl`` arrays it holds. Handed down because processors sit below outputs."""
    from s2l2a.outputs.quicklook import save_quicklooks

    def publish(l2a: Any, images: dict[int, dict[str, Any]], source: Path | str, tci: Any, scl: Any) -> DerivedResult:
        return write_derived(l2a, images, out_dir, spec, source=source, threads=threads,
                             quicklooks=lambda folder, stem: save_quicklooks(folder, stem, tci, scl))

    return publish


def write_derived(product: Any, images: dict[int, dict[str, Any]], out_dir: Path | str, spec: DeriveSpec, *,
                  source: Path | str, quicklooks: Callable[[Path, str], dict[str, str]] | None = None,
                  threads: int = 1) -> DerivedResult:
    """The derived folder of an opened L2A ``product`` from ``images`` (resolution -> {band: file, or
    an in-memory image that reads like a rasterio dataset}): staged, verified, then published.

    ``source``: the L2A recorded as the source; ``quicklooks(staging, stem)`` writes the PNGs
    (default: from the L2A's images on disk). The deliverable-only run of the built-in processor
    calls this with the images it holds in memory and the L2A it did not write.
    """
    formulas = spec.parsed()
    granule = product.granules[0]
    name = product.name.name
    out_dir = Path(out_dir)
    final = out_dir / name
    staging = out_dir / f"{PARTIAL_PREFIX}{_HOST}-{os.getpid()}-{name}"
    grid = _grid(images, spec.resolution, product.path)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        _remove_dead_partials(out_dir, name)
        _rmtree(staging)
        staging.mkdir()
    except OSError as e:
        raise DeriveError(f"cannot create the output folder: {e.strerror or e}", out_dir) from None
    result = DerivedResult(
        product=name, source=str(source), out_dir=str(staging), resolution=spec.resolution,
        boa_quantification_value=product.boa_quantification_value, baseline=product.baseline,
        tile=product.tile, sensing_time=product.sensing_time.isoformat() if product.sensing_time else None,
        clear_classes=sorted(int(c) for c in spec.clear_classes) if spec.clear_classes else None, created=utcnow(),
        footprint=_geojson(product.footprint), epsg=granule.epsg, cloud_cover=product.cloud_cover,
        mission=product.mission,
        provenance=read_provenance(product.path).as_dict(),
    )
    import rasterio

    try:
        # GDAL's block cache defaults to 5 % of the node's RAM; a job sharing a node must not take that
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
            _write_all(product, images, grid, formulas, spec, staging, result, threads)
        if spec.quicklooks and quicklooks is not None:
            result.quicklooks = quicklooks(staging, name)
        elif spec.quicklooks:
            from s2l2a.outputs.quicklook import write_quicklooks

            result.quicklooks = write_quicklooks(product, staging, stem=name)
        result.out_dir = str(final)  # where the folder will be: the manifest must not name the staging one
        (staging / MANIFEST).write_text(result.to_json(), encoding="utf-8")
        verify_derived(staging)
        _publish(staging, final)
    except S2L2AError:
        _cleanup(staging)
        raise
    except Exception as e:  # noqa: BLE001 - GDAL/numpy/OS failures become one line naming the product
        reason = _reason(e, out_dir)  # before the cleanup frees the space a full disk lacked
        _cleanup(staging)
        raise DeriveError(f"writing derived outputs of {name} failed: {reason}", out_dir) from e
    except BaseException:
        _cleanup(staging)
        raise
    return result


def _reason(e: BaseException, out_dir: Path) -> str:
    """One line for a failed write. rasterio says only "Write failed. See previous exception for
    details." and GDAL printed the cause (libtiff: "No space left on device") instead of raising
    it, so a write failing with the disk (nearly) full says so, with the space left."""
    texts = [t for x in exception_chain(e) if (t := " ".join(str(x).split()))]
    text = texts[0] if texts else type(e).__name__
    if "see previous exception" in text.lower() and len(texts) > 1:
        text = f"{text.split('.')[0]} ({texts[1]})"
    short = short_of_space((out_dir,))
    return f"no space left on device: {short} ({text})" if short is not None else text


def _tags(product: Any, what: str, formula: str | None, res: int) -> dict[str, str]:
    t = {
        "S2L2A_SOURCE_PRODUCT": product.name.name,
        "S2L2A_SOURCE_BASELINE": product.baseline or "",
        "S2L2A_OUTPUT": what,
        "S2L2A_RESOLUTION": str(res),
        "S2L2A_VERSION": __version__,
        "TIFFTAG_SOFTWARE": f"s2l2a {__version__}",
    }
    if formula is not None:
        t["S2L2A_FORMULA"] = formula
        t["S2L2A_REFLECTANCE"] = REFLECTANCE_RULE
        t["S2L2A_BOA_QUANTIFICATION_VALUE"] = f"{product.boa_quantification_value:g}"
    return t


def _write_all(product: Any, images: dict[int, dict[str, Path]], grid: _Grid, formulas: list[Formula],
               spec: DeriveSpec, staging: Path, result: DerivedResult, threads: int = 1) -> None:
    """Read, compute and write strip by strip (a 10 m tile never sits in memory as float64 whole)."""
    from s2l2a.outputs.cog import open_strip_writer, scratch_to_cog

    stem = product.name.name
    res = grid.res
    H, W = grid.shape  # noqa: N806
    scl_src: _Source | None = None
    try:
        scl_path, _ = _band_file(images, "SCL", res)
        scl_src = _Source(scl_path, grid, categorical=True)
    except DeriveError:
        if spec.clear_classes:
            raise
    needed = sorted({b for f in formulas for b in f.bands})
    sources = {b: _Source(_band_file(images, b, res)[0], grid, categorical=False) for b in needed}
    offsets = {b: float(product.boa_add_offset.get(b, 0.0)) for b in needed}
    result.boa_add_offset.update(offsets)
    q = float(product.boa_quantification_value)

    outputs: list[tuple[str, str, str, Any, str]] = []  # (key, file name, overview resampling, writer, scratch)

    def new_output(key: str, fname: str, dtype: str, nodata: float | int, tags: dict[str, str], description: str,
                   resampling: str) -> Any:
        scratch = staging / f".scratch-{fname}"
        w = open_strip_writer(scratch, width=W, height=H, dtype=dtype, transform=grid.transform, crs=grid.crs,
                              nodata=nodata)
        w.update_tags(**tags)
        w.set_band_description(1, description)
        outputs.append((key, fname, resampling, w, str(scratch)))
        return w

    writers: dict[str, Any] = {}
    try:
        for f in formulas:
            tags = _tags(product, f.name, f"{f.name} = {f.expression}", res)
            tags["S2L2A_BOA_ADD_OFFSET"] = ", ".join(f"{b}:{offsets[b]:g}" for b in f.bands)
            writers[f.name] = new_output(f.name, f"{stem}_{f.name.upper()}_{res}m.tif", "float32", float("nan"),
                                         tags, f.name, "AVERAGE")
            result.formulas[f.name] = f.expression
        if scl_src is not None and spec.write_scl:
            writers["SCL"] = new_output("SCL", f"{stem}_SCL_{res}m.tif", "uint8", SCL_NODATA,
                                        _tags(product, "SCL", None, res), "SCL", "NEAREST")
        if scl_src is not None and spec.clear_classes:
            tags = _tags(product, "CLEAR", None, res)
            tags["S2L2A_CLEAR_CLASSES"] = ",".join(str(c) for c in sorted(spec.clear_classes))
            writers["CLEAR"] = new_output("CLEAR", f"{stem}_CLEAR_{res}m.tif", "uint8", MASK_NODATA, tags,
                                          "clear sky (1) from SCL classes " + tags["S2L2A_CLEAR_CLASSES"], "NEAREST")
        from rasterio.windows import Window

        for r0 in range(0, H, STRIP_ROWS):
            r1 = min(H, r0 + STRIP_ROWS)
            win = Window(0, r0, W, r1 - r0)
            scl = scl_src.strip(r0, r1).astype(np.uint8) if scl_src is not None else None
            nodata = np.zeros((r1 - r0, W), dtype=bool) if scl is None else scl == SCL_NODATA
            refl: dict[str, np.ndarray] = {}
            for band, src in sources.items():
                dn = src.strip(r0, r1).astype(np.float64)
                nodata |= dn == 0
                refl[band] = (dn + offsets[band]) / q
            for f in formulas:
                v = f.evaluate(refl)
                writers[f.name].write(np.where(nodata | ~np.isfinite(v), np.nan, v).astype(np.float32), 1,
                                      window=win)
            if scl is not None and "SCL" in writers:
                writers["SCL"].write(scl, 1, window=win)
            if scl is not None and "CLEAR" in writers:
                clear = np.isin(scl, np.asarray(spec.clear_classes, dtype=np.uint8)).astype(np.uint8)
                clear[scl == SCL_NODATA] = MASK_NODATA
                writers["CLEAR"].write(clear, 1, window=win)
    finally:
        for s in [*sources.values(), *([scl_src] if scl_src else [])]:
            s.close()
        for *_, w, _scratch in outputs:
            w.close()
    for key, fname, resampling, _w, scratch in outputs:
        scratch_to_cog(Path(scratch), staging / fname, resampling=resampling, threads=threads)
        result.files[key] = fname


def verify_derived(folder: Path | str) -> DerivedResult:
    """Re-check a derived folder from disk: manifest readable, every file a valid COG naming its source."""
    import rasterio

    folder = Path(folder)
    res = DerivedResult.load(folder)
    if not res.files:
        raise DeriveError("manifest lists no output file", folder)
    for name, fname in res.files.items():
        p = folder / fname
        if not p.is_file() or p.stat().st_size == 0:
            raise DeriveError(f"output {name} is missing or empty", p)
        try:
            check_cog(p)
        except CogError as e:
            raise DeriveError(e.message, p) from None
        with rasterio.open(p) as ds:
            if ds.tags().get("S2L2A_SOURCE_PRODUCT") != res.product:
                raise DeriveError(f"output {name} does not name its source product {res.product}", p)
    for fname in res.quicklooks.values():
        if not (folder / fname).is_file():
            raise DeriveError("quicklook missing", folder / fname)
    return res


def _publish(staging: Path, final: Path) -> None:
    """Rename into place; a previous folder of the same product is set aside first, then removed."""
    aside = final.with_name(f"{REPLACED_PREFIX}{os.getpid()}-{final.name}")
    if final.exists():
        _rmtree(aside)
        os.rename(final, aside)
    os.rename(staging, final)
    _rmtree(aside)


def find_derived(root: Path | str) -> dict[str, Path]:
    """Product name -> derived folder, for every published derived folder under ``root``."""
    out: dict[str, Path] = {}
    root = Path(root)
    if not root.is_dir():
        return out
    for m in sorted(root.rglob(MANIFEST)):
        folder = m.parent
        if any(part.startswith((PARTIAL_PREFIX, REPLACED_PREFIX)) for part in folder.parts):
            continue
        out[folder.name] = folder
    return out


def _int_list(label: str, value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ConfigError(f"{label}: must be a list of SCL class numbers, e.g. [4, 5, 6], not {value!r}")


#: ``[derive]`` of s2l2a.toml: what ``s2l2a run`` derives after each verified L2A (its command-line
#: options override these); formulas and class numbers are parsed before a run starts (DeriveSpec)
DERIVE_SECTION = Section("derive", help="outputs derived right after each L2A is verified", settings=(
    Setting("indices", "list", check=string_list, option="--derive", help="built-in indices, e.g. [\"ndvi\"]"),
    Setting("formulas", "list", check=string_list, option="--formula", help="\"name=expression\" over bands"),
    Setting("resolution", "int", 10, choices=(10, 20, 60), option="--derive-resolution"),
    Setting("clear_classes", "list", check=_int_list, option="--clear-classes",
            help="SCL classes of the clear-sky mask"),
    Setting("keep", "str", "all", choices=("all", "derived", "l2a"), option="--keep",
            help="what stays after deriving: all, only the derived outputs, or only the L2A"),
    Setting("delete_l1c", "bool", False, check=boolean, option="--delete-l1c",
            help="delete each L1C once its L2A is verified"),
))
