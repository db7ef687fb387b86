"""The one grid a cube is stacked on, chosen with odc-geo.

- one tile and no area of interest: the tile's own grid at the chosen resolution (no resampling
  when the derived files have that resolution: the pixels are copied as they are);
- otherwise the bounds of the area of interest in the chosen CRS (default: the CRS most of the
  products' tiles use), snapped to multiples of the resolution, which keeps a UTM cube aligned with
  the Sentinel-2 pixel grid of that zone (tile corners are multiples of 60 m).

An area of interest is read by :func:`s2l2a.acquire.tiles.read_aoi` (GeoJSON, longitude/latitude).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s2l2a.errors import ConfigError

#: a cube larger than this many pixels per date is refused (a typo in a CRS or an AOI of a continent)
MAX_PIXELS = 50_000 * 50_000


@dataclass(frozen=True)
class CubeGrid:
    """The cube's grid: an odc-geo GeoBox, and the AOI in its CRS (None: every pixel counts)."""

    geobox: Any
    aoi: Any = None  # shapely geometry in the grid's CRS

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.geobox.shape.y), int(self.geobox.shape.x)

    def describe(self) -> str:
        h, w = self.shape
        return f"{crs_name(self.geobox.crs)} at {abs(self.geobox.resolution.x):g} m, {w} x {h} px"


def crs_name(crs: Any) -> str:
    """``EPSG:32629`` where the CRS has an EPSG code, else its WKT."""
    return f"EPSG:{crs.epsg}" if crs.epsg else crs.to_wkt()


def parse_crs(text: str | None) -> Any:
    """``EPSG:32629``, ``32629`` or any CRS pyproj knows; one line when it is none of them."""
    if text is None:
        return None
    from odc.geo.crs import CRS

    t = text.strip()
    try:
        crs = CRS(f"EPSG:{t}" if t.isdigit() else t)
    except Exception:  # noqa: BLE001 - pyproj/odc raise several types for a bad string
        raise ConfigError(f"--crs {text!r}: not a coordinate reference system (e.g. EPSG:32633)") from None
    if crs.geographic:
        raise ConfigError(f"--crs {text!r} is in degrees; give a projected CRS in metres (e.g. a UTM zone)")
    return crs


def read_aoi_file(path: Path | str) -> Any:
    """The AOI of a GeoJSON file (lon/lat), checked: valid, not empty, an area."""
    import shapely
    from shapely.validation import explain_validity

    from s2l2a.acquire.tiles import read_aoi

    geom = read_aoi(Path(path))
    if not shapely.is_valid(geom):
        raise ConfigError(f"the AOI polygon is not valid ({explain_validity(geom)}); fix it, e.g. "
                          "with QGIS 'Fix geometries'", path)
    if geom.is_empty or geom.area == 0:
        raise ConfigError("the AOI has no area (a point or a line); give a polygon", path)
    return geom


def _file_geobox(path: Path) -> Any:
    import rasterio
    from odc.geo.geobox import GeoBox

    with rasterio.open(path) as ds:
        return GeoBox((ds.height, ds.width), ds.transform, ds.crs)


def _tile_geobox(src: Any, scale: float) -> Any:
    """``src`` with pixels ``scale`` times larger (the same extent)."""
    from affine import Affine
    from odc.geo.geobox import GeoBox

    if abs(scale - 1) < 1e-9:
        return src
    h, w = src.shape.y, src.shape.x
    return GeoBox((max(1, round(h / scale)), max(1, round(w / scale))), src.transform * Affine.scale(scale), src.crs)


def choose_grid(observations: list[Any], resolution: int, crs_text: str | None, aoi_lonlat: Any,
                aoi_path: Path | str | None = None) -> CubeGrid:
    """The grid of a new cube over ``observations`` (see the module's rules)."""
    from odc.geo.geobox import GeoBox
    from odc.geo.geom import Geometry

    crs = parse_crs(crs_text)
    by_tile: dict[str, Any] = {}
    for o in observations:
        if o.tile not in by_tile:
            by_tile[o.tile] = o
    if aoi_lonlat is None:
        if len(by_tile) > 1:
            raise ConfigError(f"the products cover {len(by_tile)} tiles ({', '.join(sorted(by_tile))}): give --aoi "
                              "(an area to mosaic them over) or --tile (one tile's cube)")
        o = next(iter(by_tile.values()))
        src = _file_geobox(o.index_path)
        if crs is None or crs == src.crs:
            gb = _tile_geobox(src, resolution / o.resolution)
        else:
            bbox = src.extent.to_crs(crs).boundingbox
            gb = GeoBox.from_bbox(bbox, crs, resolution=resolution, tight=False)
        return _checked(CubeGrid(gb))
    if crs is None:
        crs = Counter(_file_geobox(o.index_path).crs for o in by_tile.values()).most_common(1)[0][0]
    aoi = Geometry(aoi_lonlat, "EPSG:4326").to_crs(crs)
    gb = GeoBox.from_bbox(aoi.boundingbox, crs, resolution=resolution, tight=False)
    grid = _checked(CubeGrid(gb, aoi.geom))
    covered = [o for o in by_tile.values() if _file_geobox(o.index_path).extent.to_crs(crs).intersects(aoi)]
    if not covered:
        raise ConfigError(f"the AOI lies outside every done product's image (tiles {', '.join(sorted(by_tile))})",
                          aoi_path)
    return grid


def _checked(grid: CubeGrid) -> CubeGrid:
    h, w = grid.shape
    if h * w > MAX_PIXELS:
        raise ConfigError(f"the cube's grid would be {w} x {h} px ({grid.geobox.crs}); give a smaller --aoi, a "
                          "coarser --resolution or the CRS of the tiles")
    return grid


def check_aoi_in_campaign(aoi_lonlat: Any, planned: set[str], done: set[str], aoi_path: Path | str | None) -> None:
    """An AOI outside every tile the campaign planned, or over no done product yet, is one line."""
    from s2l2a.acquire.tiles import tiles_for_geometry

    over = set(tiles_for_geometry(aoi_lonlat))
    w, s, e, n = aoi_lonlat.bounds
    where = f"({w:.4f}, {s:.4f}, {e:.4f}, {n:.4f})"
    if planned and not (over & planned):
        raise ConfigError(f"the AOI {where} lies outside every tile of the campaign ({', '.join(sorted(planned))})",
                          aoi_path)
    if planned and not (over & done):
        raise ConfigError(f"the AOI {where} is over tile(s) {', '.join(sorted(over & planned))}, which have no done "
                          "product yet; run the campaign first", aoi_path)
