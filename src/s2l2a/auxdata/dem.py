"""The elevation model for a campaign: select, fetch, merge, lay out for Sen2Cor, check coverage.

Why each step:
- select from the product footprints, so only the tiles a campaign needs are fetched;
- fetch into a cache shared between campaigns (staging + rename, resume, verification);
- lay out what the configured Sen2Cor version reads: the CGIAR ``srtm_XX_YY.zip`` files for 2.5-2.10,
  for 2.9 the lab's workaround for its multi-tile merge bug (one merged mosaic zipped under every
  original tile name), for 2.11+ the Copernicus DEM COG tiles;
- check, before any job starts, that every product's footprint lies on valid DEM data, because
  Sen2Cor silently continues on a flat surface (or stops hours later) when it does not.

Tiles the server does not have (HTTP 404) are all-sea cells in both sources (CGIAR and Copernicus
publish only tiles touching land); they are recorded as sea (height 0) and reported. When every tile
is missing the base URL is wrong, and that is an error.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from shapely.geometry.base import BaseGeometry

from s2l2a.acquire.download import shown_url
from s2l2a.archive import ArchiveLimits, check_zip_sizes
from s2l2a.auxdata.dem_tiles import SOURCES, Tile, tiles_for
from s2l2a.auxdata.download import NotFoundOnServer, fetch
from s2l2a.errors import CampaignError, ConfigError
from s2l2a.fsutil import atomic_path, write_json_atomic

DEFAULT_BASE_URLS = {
    "srtm90": "https://srtm.csi.cgiar.org/wp-content/uploads/files/srtm_5x5/TIFF/",
    "cop30": "https://copernicus-dem-30m.s3.amazonaws.com/",
    "cop90": "https://copernicus-dem-90m.s3.amazonaws.com/",
}
MANIFEST = "dem.json"
COVERAGE_RES_DEG = 0.005   # ~500 m: fine enough to find voids that matter, cheap for a whole campaign


def default_cache() -> Path:
    """Shared tile cache: ``$S2L2A_CACHE/dem`` or ``~/.cache/s2l2a/dem``."""
    base = os.environ.get("S2L2A_CACHE") or Path.home() / ".cache" / "s2l2a"
    return Path(base) / "dem"


def layout_for(version: str, source: str | None) -> tuple[str, str]:
    """(layout kind, source) the Sen2Cor version needs; refuses a source it cannot read."""
    from s2l2a.sen2cor.layout import traits

    t = traits(version)
    if t.dem == "copernicus":
        source = source or "cop90"
        if source == "srtm90":
            raise ConfigError(f"Sen2Cor {version} reads the Copernicus DEM, not SRTM; use --source cop90 or cop30")
        return "copernicus", source
    source = source or "srtm90"
    if source != "srtm90":
        raise ConfigError(f"Sen2Cor {version} reads SRTM 90 m tiles, not {source}; use --source srtm90")
    return ("srtm-merged" if t.srtm_merge_bug else "srtm"), source


# -- verification of fetched tiles --------------------------------------------------------------

#: an SRTM tile zip holds one 6000 x 6000 int16 GeoTIFF (72 MB); mostly-sea tiles compress very well,
#: so only the expanded size is bounded (the zip is read in place, never unpacked)
DEM_ZIP_LIMITS = ArchiveLimits(max_bytes=10**9, max_ratio=float("inf"), max_members=100)

def raster_path(tile: Tile, path: Path) -> str:
    """A GDAL path to the tile's raster (inside the zip for SRTM)."""
    return f"/vsizip/{path}/{tile.name}.tif" if tile.source == "srtm90" else str(path)


def _verifier(tile: Tile):  # noqa: ANN202 - a closure
    def verify(path: Path) -> None:
        import rasterio

        if path.stat().st_size == 0:
            raise ValueError("empty file")
        if tile.source == "srtm90":
            check_zip_sizes(path, DEM_ZIP_LIMITS)
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
                if bad is not None:
                    raise ValueError(f"zip member {bad} fails its CRC check")
                if f"{tile.name}.tif" not in z.namelist():
                    raise ValueError(f"zip lacks {tile.name}.tif")
        with rasterio.open(raster_path(tile, path)) as ds:
            b = ds.bounds
            tol = 0.02
            if (abs(b.left - tile.west) > tol or abs(b.bottom - tile.south) > tol
                    or abs(b.right - tile.east) > tol or abs(b.top - tile.north) > tol):
                raise ValueError(f"extent {tuple(round(v, 3) for v in b)} is not that of {tile.name}")
            ds.read(1, window=((0, 1), (0, min(ds.width, 16))))
    return verify


# -- plan, fetch ----------------------------------------------------------------------------------

@dataclass
class DemPlan:
    source: str
    tiles: list[Tile]
    by_product: dict[str, list[str]]
    outside: dict[str, str] = field(default_factory=dict)   # product -> why no tile can cover it


def plan(footprints: Mapping[str, BaseGeometry], source: str) -> DemPlan:
    """Tiles needed for the footprints (product name -> lon/lat polygon)."""
    if source not in SOURCES:
        raise ConfigError(f"unknown DEM source {source!r} (one of {', '.join(SOURCES)})")
    all_tiles: dict[str, Tile] = {}
    by_product: dict[str, list[str]] = {}
    outside: dict[str, str] = {}
    for name, fp in footprints.items():
        tiles, rest = tiles_for(fp, source)
        by_product[name] = [t.name for t in tiles]
        for t in tiles:
            all_tiles[t.name] = t
        if not rest.is_empty and rest.area > 1e-9:
            outside[name] = f"footprint reaches beyond the {source} coverage (SRTM: 60 N to 60 S)"
    return DemPlan(source, sorted(all_tiles.values(), key=lambda t: t.name), by_product, outside)


def fetch_tiles(tiles: Iterable[Tile], cache: Path, base_url: str,
                client: httpx.Client | None = None) -> dict[str, Path | None]:
    """Fetch each tile into ``cache/<source>/``; value None for a tile the server does not have."""
    tiles = list(tiles)
    base = base_url if base_url.endswith("/") else base_url + "/"
    out: dict[str, Path | None] = {}
    for t in tiles:
        dest = Path(cache) / t.source / t.filename
        absent = dest.with_name(dest.name + ".absent")     # remembered 404: re-runs stay offline
        if absent.exists() and not dest.exists():
            out[t.name] = None
            continue
        try:
            out[t.name] = fetch(base + t.url_path, dest, _verifier(t), client=client)
        except NotFoundOnServer:
            out[t.name] = None
            absent.write_text(shown_url(base + t.url_path) + "\n")  # a shared cache: no credentials
    if out and all(v is None for v in out.values()):
        for t in tiles:    # do not remember a wrong base URL as "all sea"
            (Path(cache) / t.source / (t.filename + ".absent")).unlink(missing_ok=True)
        raise ConfigError(f"none of the {len(out)} DEM tiles exists under {shown_url(base)}; is the base URL "
                          "right?")
    return out


# -- layouts --------------------------------------------------------------------------------------

@dataclass
class DemLayout:
    """What ``s2l2a dem`` produced: where Sen2Cor must look and what to put in its GIPP."""

    directory: Path
    kind: str                  # "srtm" | "srtm-merged" | "copernicus"
    source: str
    version: str
    dem_reference: str
    tiles: dict[str, str | None]   # tile name -> cached file (None: sea, absent on the server)
    mosaic: str | None = None

    def gipp_settings(self) -> dict[str, Any]:
        """The L2A_GIPP settings that make Sen2Cor use this DEM and stop if it cannot."""
        from s2l2a.sen2cor.layout import version_tuple

        out: dict[str, Any] = {"dem_directory": str(self.directory), "dem_reference": self.dem_reference}
        if version_tuple(self.version) >= (2, 9, 0):     # the switch exists from 2.9 on
            out["force_exit_on_dem_error"] = True
        return out

    def save(self) -> Path:
        path = self.directory / MANIFEST
        data = asdict(self)
        data["directory"] = str(self.directory)
        return write_json_atomic(path, data)

    @classmethod
    def load(cls, directory: Path | str) -> DemLayout:
        path = Path(directory) / MANIFEST
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise CampaignError("no DEM prepared here; run 's2l2a dem' first", path) from None
        data["directory"] = Path(data["directory"])
        return cls(**data)


def _link_or_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        dest.unlink()
    try:
        os.link(src, dest)           # same file system: no extra space for a cache shared by campaigns
    except OSError:
        shutil.copy2(src, dest)


def merge_tiles(tiles: list[Tile], files: Mapping[str, Path | None], dest: Path,
                res: float | None = None, bounds: tuple[float, float, float, float] | None = None) -> Path:
    """Merge the tiles (sea tiles filled with 0) into one GeoTIFF with rasterio.merge."""
    import rasterio
    from rasterio.merge import merge

    present = [(t, files[t.name]) for t in tiles if files.get(t.name) is not None]
    if not present:
        raise ConfigError("no DEM tile to merge")
    datasets = [rasterio.open(raster_path(t, p)) for t, p in present]  # type: ignore[arg-type]
    try:
        nodata = datasets[0].nodata if datasets[0].nodata is not None else -32768
        west = min(t.west for t in tiles)
        south = min(t.south for t in tiles)
        east = max(t.east for t in tiles)
        north = max(t.north for t in tiles)
        arr, transform = merge(datasets, bounds=bounds or (west, south, east, north), res=res, nodata=nodata)
        # cells whose tile is absent on the server are sea: height 0, not a void
        absent = [t for t in tiles if files.get(t.name) is None]
        if absent:
            from rasterio.features import geometry_mask

            sea = ~geometry_mask([t.box for t in absent], out_shape=arr.shape[1:], transform=transform)
            arr[0][sea & (arr[0] == nodata)] = 0
        profile = datasets[0].profile.copy()
    finally:
        for ds in datasets:
            ds.close()
    profile.update(driver="GTiff", height=arr.shape[1], width=arr.shape[2], transform=transform, count=1,
                   nodata=nodata, compress="deflate", tiled=True, blockxsize=256, blockysize=256,
                   BIGTIFF="IF_SAFER")
    for k in ("photometric", "interleave"):
        profile.pop(k, None)
    with atomic_path(dest) as tmp, rasterio.open(tmp, "w", **profile) as out:
        out.write(arr)
    return dest


def write_layout(dem_plan: DemPlan, files: Mapping[str, Path | None], out_dir: Path | str, version: str,
                 kind: str) -> DemLayout:
    """Write the directory Sen2Cor's DEM_Directory points to (atomically replaced as a whole)."""
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    mosaic_name: str | None = None
    try:
        if kind == "srtm":
            for t in dem_plan.tiles:
                if files.get(t.name) is not None:
                    _link_or_copy(files[t.name], staging / t.filename)  # type: ignore[arg-type]
        elif kind == "srtm-merged":
            # Sen2Cor 2.9 merges neighbouring SRTM tiles wrongly; give it the whole mosaic under every
            # tile name it will look for, so whichever it opens holds every needed height.
            mosaic = merge_tiles(dem_plan.tiles, files, staging / "mosaic.tif")
            for t in dem_plan.tiles:
                with zipfile.ZipFile(staging / t.filename, "w", zipfile.ZIP_DEFLATED) as z:
                    z.write(mosaic, f"{t.name}.tif")
            mosaic_name = "mosaic.tif"
        elif kind == "copernicus":
            # the bucket's own layout (<name>/<name>.tif) and a flat <name>.tif, hard-linked: both ways
            # a reader of DEM_Directory may look the tiles up, at no extra space
            for t in dem_plan.tiles:
                src = files.get(t.name)
                if src is not None:
                    _link_or_copy(src, staging / t.name / t.filename)
                    _link_or_copy(src, staging / t.filename)
        else:
            raise ConfigError(f"unknown DEM layout {kind!r}")
        ref = str(out_dir) + "/" if kind != "copernicus" else DEFAULT_BASE_URLS[dem_plan.source]
        layout = DemLayout(directory=out_dir, kind=kind, source=dem_plan.source, version=version,
                           dem_reference=ref, mosaic=mosaic_name,
                           tiles={k: (str(v) if v else None) for k, v in files.items()})
        data = asdict(layout)
        data["directory"] = str(out_dir)
        (staging / MANIFEST).write_text(json.dumps(data, indent=1))
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old.{os.getpid()}")
            os.replace(out_dir, old)
            os.replace(staging, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, out_dir)
        os.chmod(out_dir, 0o755)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return layout


# -- coverage -------------------------------------------------------------------------------------

def split_antimeridian(fp: BaseGeometry) -> list[BaseGeometry]:
    """A footprint crossing 180 degrees as its western and eastern halves in -180..180 longitudes."""
    from shapely.affinity import translate
    from shapely.geometry import box

    from s2l2a.auxdata.dem_tiles import unwrap

    g = unwrap(fp)
    if g is fp:
        return [fp]
    east = g.intersection(box(-180, -90, 180, 90))
    west = translate(g.intersection(box(180, -90, 540, 90)), xoff=-360)
    return [p for p in (east, west) if not p.is_empty and p.area > 0]


def _part_problem(fp: BaseGeometry, layout: DemLayout, res: float) -> str | None:
    import rasterio
    from rasterio.features import geometry_mask
    from rasterio.merge import merge

    from s2l2a.auxdata.dem_tiles import parse_tile

    tiles, rest = tiles_for(fp, layout.source)
    if not rest.is_empty and rest.area > 1e-9:
        return f"outside the {layout.source} coverage"
    missing = [t.name for t in tiles if t.name not in layout.tiles]
    if missing:
        return f"DEM tiles not prepared: {', '.join(missing)}"
    present = [(t, Path(layout.tiles[t.name])) for t in tiles if layout.tiles[t.name]]  # type: ignore[arg-type]
    if not present:
        return None                        # all sea
    gone = [str(p) for _, p in present if not p.exists()]
    if gone:
        return f"DEM tile file missing: {gone[0]}"
    # snap to a grid whose lines fall on the 1-degree tile edges: unaligned windows leave seams
    minx, miny, maxx, maxy = fp.bounds
    minx, miny = np.floor(minx / res) * res, np.floor(miny / res) * res
    maxx, maxy = np.ceil(maxx / res) * res, np.ceil(maxy / res) * res
    datasets = [rasterio.open(raster_path(parse_tile(t.name), p)) for t, p in present]
    try:
        nodata = datasets[0].nodata if datasets[0].nodata is not None else -32768
        arr, transform = merge(datasets, bounds=(minx, miny, maxx, maxy), res=res, nodata=nodata)
    finally:
        for ds in datasets:
            ds.close()
    inside = ~geometry_mask([fp], out_shape=arr.shape[1:], transform=transform, all_touched=True)
    sea_cells = [t.box for t in tiles if layout.tiles.get(t.name) is None]
    if sea_cells:
        inside &= geometry_mask(sea_cells, out_shape=arr.shape[1:], transform=transform)
    band = arr[0]
    void = inside & ((band == nodata) | ~np.isfinite(band))
    if void.any():
        return f"{void.sum() / max(int(inside.sum()), 1):.1%} of the footprint has no valid DEM data"
    return None


def uncovered_products(footprints: Mapping[str, BaseGeometry], layout: DemLayout,
                       res: float = COVERAGE_RES_DEG) -> dict[str, str]:
    """Products whose footprint is not on valid DEM data, with the reason (empty dict: all covered)."""
    out: dict[str, str] = {}
    for name, fp in footprints.items():
        for part in split_antimeridian(fp):
            problem = _part_problem(part, layout, res)
            if problem:
                out[name] = problem
                break
    return out


def check_coverage(footprints: Mapping[str, BaseGeometry], layout: DemLayout) -> None:
    """Refuse (CampaignError naming the products) unless every footprint is on valid DEM data."""
    bad = uncovered_products(footprints, layout)
    if bad:
        shown = "; ".join(f"{k}: {v}" for k, v in list(bad.items())[:5])
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise CampaignError(f"DEM does not cover {len(bad)} product(s): {shown}{more}", layout.directory)


# -- whole step -----------------------------------------------------------------------------------

def prepare_dem(footprints: Mapping[str, BaseGeometry], out_dir: Path | str, *, version: str,
                source: str | None = None, cache: Path | str | None = None, base_url: str | None = None,
                client: httpx.Client | None = None) -> DemLayout:
    """Select, fetch, lay out and check the DEM for these footprints (idempotent: cached tiles reused)."""
    if not footprints:
        raise CampaignError("no products to prepare a DEM for")
    kind, source = layout_for(version, source)
    dem_plan = plan(footprints, source)
    if dem_plan.outside:
        shown = "; ".join(f"{k}: {v}" for k, v in list(dem_plan.outside.items())[:5])
        raise CampaignError(f"DEM cannot cover {len(dem_plan.outside)} product(s): {shown}")
    cache = Path(cache) if cache else default_cache()
    files = fetch_tiles(dem_plan.tiles, cache, base_url or DEFAULT_BASE_URLS[source], client=client)
    layout = write_layout(dem_plan, files, out_dir, version, kind)
    check_coverage(footprints, layout)
    return layout


def footprints_of(paths: Iterable[Path]) -> dict[str, BaseGeometry]:
    """Product name -> footprint from each product's metadata (products without one are errors)."""
    from s2l2a.safe.layout import product_metadata_file
    from s2l2a.safe.mtd import read_product_metadata

    out: dict[str, BaseGeometry] = {}
    for p in paths:
        md = read_product_metadata(product_metadata_file(Path(p)))
        if md.footprint is None:
            raise CampaignError("product metadata has no footprint", p)
        out[Path(p).name.removesuffix(".SAFE")] = md.footprint
    return out
