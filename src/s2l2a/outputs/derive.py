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
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from s2l2a import __version__
from s2l2a.errors import S2L2AError
from s2l2a.outputs.cog import CogError, check_cog, write_cog
from s2l2a.outputs.indices import Formula, builtin_index, parse_formula_option

MANIFEST = "derived.json"
PARTIAL_PREFIX = ".partial-"
REPLACED_PREFIX = ".replaced-"
SCL_NODATA = 0
MASK_NODATA = 255
#: SCL classes counted as clear sky by default: vegetation, not vegetated, water
DEFAULT_CLEAR = (4, 5, 6)
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
            if not 0 <= int(c) <= 11:
                raise DeriveError(f"SCL class {c} does not exist (0-11)")
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


def _read(path: Path) -> tuple[np.ndarray, Any, Any]:
    import rasterio

    with rasterio.open(path) as ds:
        return ds.read(1), ds.transform, ds.crs


def _resample(a: np.ndarray, shape: tuple[int, int], categorical: bool) -> np.ndarray | None:
    """Integer-factor resampling: block mean of valid (non-zero) DN down, replication up, samples for classes."""
    h, w = a.shape
    th, tw = shape
    if (h, w) == (th, tw):
        return a
    if h % th == 0 and w % tw == 0 and h // th == w // tw:
        k = h // th
        if categorical:
            return a[k // 2::k, k // 2::k][:th, :tw]
        blocks = a.reshape(th, k, tw, k).astype(np.float64)
        valid = blocks > 0
        n = valid.sum(axis=(1, 3))
        s = np.where(valid, blocks, 0.0).sum(axis=(1, 3))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n == k * k, s / np.maximum(n, 1), 0.0)  # a block with any nodata is nodata
        return mean
    if th % h == 0 and tw % w == 0 and th // h == tw // w:
        k = th // h
        return a.repeat(k, axis=0).repeat(k, axis=1)
    return None  # not an integer factor: the caller reprojects


def _to_grid(path: Path, grid: _Grid, categorical: bool) -> np.ndarray:
    """The image at ``path`` on ``grid``: exact block maths for integer factors (real tiles), else GDAL
    resampling by geotransform (decimated test products: 439 px at 10 m, 219 px at 20 m)."""
    a, transform, crs = _read(path)
    out = _resample(a, grid.shape, categorical)
    if out is not None:
        return out
    from rasterio.warp import Resampling, reproject

    dst = np.zeros(grid.shape, dtype=np.float64 if not categorical else a.dtype)
    down = abs(transform.a) < abs(grid.transform.a)
    method = Resampling.average if (down and not categorical) else Resampling.nearest
    reproject(a, dst, src_transform=transform, src_crs=crs, dst_transform=grid.transform, dst_crs=grid.crs,
              src_nodata=0, dst_nodata=0, resampling=method)
    return dst


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
    import rasterio

    with rasterio.open(ref) as ds:
        return _Grid(res, (ds.height, ds.width), ds.transform, ds.crs)


# -- the work ------------------------------------------------------------------------------------

def _geojson(geom: Any) -> dict[str, Any] | None:
    if geom is None:
        return None
    from shapely.geometry import mapping

    return json.loads(json.dumps(mapping(geom)))  # tuples -> lists


def _utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rmtree(p: Path) -> None:
    if p.is_symlink() or p.is_file():
        p.unlink(missing_ok=True)
    elif p.exists():
        shutil.rmtree(p)


def derive_product(l2a_path: Path | str, out_dir: Path | str, spec: DeriveSpec | None = None) -> DerivedResult:
    """Write the derived COGs of one L2A product to ``<out_dir>/<product name>/`` and return what was made.

    Raises DeriveError (or a ProductError/FormulaError) and leaves nothing visible when any step
    fails; the L2A itself is never modified.
    """
    from s2l2a.safe import open_l2a

    spec = spec or DeriveSpec()
    formulas = spec.parsed()
    product = open_l2a(l2a_path, require_bands=False)
    if len(product.granules) != 1:
        raise DeriveError(f"{len(product.granules)} granules; derive handles single-tile products", product.path)
    granule = product.granules[0]
    name = product.name.name
    out_dir = Path(out_dir)
    final = out_dir / name
    staging = out_dir / f"{PARTIAL_PREFIX}{os.getpid()}-{name}"
    grid = _grid(granule.images, spec.resolution, product.path)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        _rmtree(staging)
        staging.mkdir()
    except OSError as e:
        raise DeriveError(f"cannot create the output folder: {e.strerror or e}", out_dir) from None
    result = DerivedResult(
        product=name, source=str(Path(product.path).resolve()), out_dir=str(staging), resolution=spec.resolution,
        boa_quantification_value=product.boa_quantification_value, baseline=product.baseline,
        tile=product.tile, sensing_time=product.sensing_time.isoformat() if product.sensing_time else None,
        clear_classes=sorted(int(c) for c in spec.clear_classes) if spec.clear_classes else None, created=_utc(),
        footprint=_geojson(product.footprint), epsg=granule.epsg, cloud_cover=product.cloud_cover,
        mission=product.mission,
    )
    try:
        _write_all(product, granule.images, grid, formulas, spec, staging, result)
        if spec.quicklooks:
            from s2l2a.outputs.quicklook import write_quicklooks

            result.quicklooks = write_quicklooks(product, staging, stem=name)
        (staging / MANIFEST).write_text(result.to_json(), encoding="utf-8")
        verify_derived(staging)
        _publish(staging, final)
    except BaseException:
        try:
            _rmtree(staging)
        except OSError:
            pass
        raise
    result.out_dir = str(final)
    return result


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
               spec: DeriveSpec, staging: Path, result: DerivedResult) -> None:
    stem = f"{product.name.name}"
    res = grid.res
    scl: np.ndarray | None = None
    try:
        scl_path, _ = _band_file(images, "SCL", res)
        scl = _to_grid(scl_path, grid, categorical=True).astype(np.uint8)
    except DeriveError:
        if spec.clear_classes:
            raise
    needed = sorted({b for f in formulas for b in f.bands})
    refl: dict[str, np.ndarray] = {}
    nodata = np.zeros(grid.shape, dtype=bool) if scl is None else scl == SCL_NODATA
    q = float(product.boa_quantification_value)
    for band in needed:
        path, _ = _band_file(images, band, res)
        dn = _to_grid(path, grid, categorical=False).astype(np.float64)
        off = float(product.boa_add_offset.get(band, 0.0))
        result.boa_add_offset[band] = off
        nodata |= dn == 0
        refl[band] = (dn + off) / q
    for f in formulas:
        v = f.evaluate(refl)
        v = np.where(nodata | ~np.isfinite(v), np.nan, v).astype(np.float32)
        fname = f"{stem}_{f.name.upper()}_{res}m.tif"
        offs = ", ".join(f"{b}:{product.boa_add_offset.get(b, 0.0):g}" for b in f.bands)
        tags = _tags(product, f.name, f"{f.name} = {f.expression}", res)
        tags["S2L2A_BOA_ADD_OFFSET"] = offs
        write_cog(staging / fname, v, transform=grid.transform, crs=grid.crs, nodata=float("nan"),
                  tags=tags, description=f.name)
        result.files[f.name] = fname
        result.formulas[f.name] = f.expression
    if scl is not None and spec.write_scl:
        fname = f"{stem}_SCL_{res}m.tif"
        write_cog(staging / fname, scl, transform=grid.transform, crs=grid.crs, nodata=SCL_NODATA,
                  tags=_tags(product, "SCL", None, res), description="SCL", resampling="NEAREST")
        result.files["SCL"] = fname
    if spec.clear_classes and scl is not None:
        clear = np.isin(scl, np.asarray(spec.clear_classes, dtype=np.uint8)).astype(np.uint8)
        clear[scl == SCL_NODATA] = MASK_NODATA
        fname = f"{stem}_CLEAR_{res}m.tif"
        tags = _tags(product, "CLEAR", None, res)
        tags["S2L2A_CLEAR_CLASSES"] = ",".join(str(c) for c in sorted(spec.clear_classes))
        write_cog(staging / fname, clear, transform=grid.transform, crs=grid.crs, nodata=MASK_NODATA,
                  tags=tags, description="clear sky (1) from SCL classes " + tags["S2L2A_CLEAR_CLASSES"],
                  resampling="NEAREST")
        result.files["CLEAR"] = fname


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
