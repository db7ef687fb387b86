"""Sentinel-2 MGRS tiles: names, the shipped grid, and area-of-interest → tile lookup.

The grid ships as lower-left UTM corners only (``data/s2_tiles.csv.gz``, derived by
``scripts/build_s2_grid.py`` from the real ESA-derived grid); footprints are rebuilt with pyproj
on first use, so the package stays small and the geometry stays exact to the UTM definition.
"""

from __future__ import annotations

import gzip
import json
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon, box, shape
from shapely.geometry.base import BaseGeometry

from s2l2a.errors import S2L2AError

TILE_SIZE_M = 109800
_TILE_RE = re.compile(r"^T?(\d{1,2})([C-HJ-NP-X])([A-HJ-NP-Z][A-HJ-NP-V])$")
_LONLAT_CRS = ("CRS84", "EPSG:4326")  # names a GeoJSON "crs" member may give for longitude/latitude
_EDGE_POINTS = 8  # vertices per tile edge: UTM squares are curved in lon/lat near the poles


class TileError(S2L2AError):
    """A tile name or an area of interest is not usable."""


def normalise_tile(text: str) -> str:
    """``"t56jmm"``/``"T56JMM"``/``"56JMM"`` → ``"56JMM"``; raise TileError for anything else."""
    m = _TILE_RE.match(text.strip().upper())
    if not m:
        raise TileError(f"not an MGRS tile name: {text!r} (expected e.g. 56JMM or T56JMM)")
    return f"{int(m[1]):02d}{m[2]}{m[3]}"


def tile_epsg(tile: str) -> int:
    """UTM EPSG code of a tile: latitude bands C-M are southern, N-X northern."""
    return (32700 if tile[2] < "N" else 32600) + int(tile[:2])


def gcs_tile_prefix(tile: str) -> str:
    """``56JMM`` → ``tiles/56/J/MM/`` (the Google bucket's folder of that tile)."""
    return f"tiles/{int(tile[:2])}/{tile[2]}/{tile[3:]}/"


@lru_cache(maxsize=1)
def _grid_corners() -> dict[str, tuple[int, int]]:
    ref = resources.files("s2l2a.acquire").joinpath("data/s2_tiles.csv.gz")
    with ref.open("rb") as fh:
        lines = gzip.decompress(fh.read()).decode("ascii").splitlines()[1:]
    out: dict[str, tuple[int, int]] = {}
    for line in lines:
        tile, x, y = line.split(",")
        out[tile] = (int(x), int(y))
    return out


def known_tiles() -> frozenset[str]:
    """Every tile name of the shipped grid."""
    return frozenset(_grid_corners())


def _lonlat_polygon(lon: np.ndarray, lat: np.ndarray) -> BaseGeometry:
    """Footprint polygon; tiles straddling the antimeridian are split into two parts."""
    if lon.max() - lon.min() <= 180:
        return Polygon(zip(lon, lat, strict=True))
    shifted = Polygon(zip(np.where(lon < 0, lon + 360, lon), lat, strict=True))
    east = shifted.intersection(box(-180, -90, 180, 90))
    west = shapely.affinity.translate(shifted.intersection(box(180, -90, 540, 90)), xoff=-360)
    parts = [g for g in (east, west) if not g.is_empty]
    return MultiPolygon([p for g in parts for p in getattr(g, "geoms", [g])])


@lru_cache(maxsize=1)
def _grid() -> tuple[list[str], np.ndarray, shapely.STRtree]:
    corners = _grid_corners()
    names = sorted(corners, key=lambda t: (tile_epsg(t), t))
    xy = np.array([corners[t] for t in names], dtype=float)
    t = np.linspace(0.0, 1.0, _EDGE_POINTS, endpoint=False)
    s = TILE_SIZE_M
    # (n_tiles, 4 * _EDGE_POINTS) ring offsets, counter-clockwise from the lower-left corner
    dx = np.concatenate([s * t, np.full_like(t, s), s * (1 - t), np.zeros_like(t)])
    dy = np.concatenate([np.zeros_like(t), s * t, np.full_like(t, s), s * (1 - t)])
    xs = xy[:, :1] + dx
    ys = xy[:, 1:] + dy
    lon = np.empty_like(xs)
    lat = np.empty_like(ys)
    epsgs = np.array([tile_epsg(n) for n in names])
    for epsg in np.unique(epsgs):
        sel = epsgs == epsg
        tr = Transformer.from_crs(int(epsg), 4326, always_xy=True)
        lon[sel], lat[sel] = tr.transform(xs[sel], ys[sel])
    geoms = shapely.polygons(np.stack([lon, lat], axis=-1))
    for i in np.flatnonzero(lon.max(axis=1) - lon.min(axis=1) > 180):
        geoms[i] = _lonlat_polygon(lon[i], lat[i])
    return names, geoms, shapely.STRtree(geoms)


def tile_footprint(tile: str) -> BaseGeometry:
    """Lon/lat footprint of one tile of the shipped grid."""
    names, geoms, _ = _grid()
    tile = normalise_tile(tile)
    try:
        return geoms[names.index(tile)]
    except ValueError:
        raise TileError(f"tile {tile} is not in the Sentinel-2 grid") from None


def tiles_for_geometry(aoi: BaseGeometry) -> list[str]:
    """Sorted names of the grid tiles whose footprint intersects ``aoi`` (lon/lat, WGS84)."""
    names, geoms, tree = _grid()
    idx = tree.query(aoi, predicate="intersects")
    return sorted({names[i] for i in idx})


def parse_bbox(text: str) -> Polygon:
    """``"west,south,east,north"`` in degrees → polygon; raise TileError when malformed."""
    try:
        w, s, e, n = (float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise TileError(f"bbox must be 'west,south,east,north' in degrees, got {text!r}") from None
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise TileError(f"bbox out of range or empty: {text!r}")
    return box(w, s, e, n)


def read_aoi(path: Path) -> BaseGeometry:
    """Union of the geometries of a GeoJSON file (FeatureCollection, Feature or bare geometry)."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TileError(f"cannot read GeoJSON: {exc}", path) from None
    kind = doc.get("type") if isinstance(doc, dict) else None
    crs = doc.get("crs") if isinstance(doc, dict) else None
    if crs is not None:  # the pre-RFC 7946 "crs" member: only a longitude/latitude one is accepted
        name = str(((crs.get("properties") or {}).get("name") if isinstance(crs, dict) else None) or crs)
        if not any(name.upper().replace("::", ":").endswith(s) for s in _LONLAT_CRS):
            raise TileError(f"GeoJSON in {name}: it must be in longitude/latitude (WGS 84, RFC 7946); "
                            "reproject it (e.g. ogr2ogr -t_srs EPSG:4326)", path)
    if kind == "FeatureCollection":
        geoms = [f.get("geometry") for f in doc.get("features", [])]
    elif kind == "Feature":
        geoms = [doc.get("geometry")]
    else:
        geoms = [doc]
    try:
        shapes = [shape(g) for g in geoms if g]
    except (AttributeError, KeyError, TypeError, ValueError, shapely.errors.GEOSException) as exc:
        raise TileError(f"not a GeoJSON geometry: {exc}", path) from None
    if not shapes:
        raise TileError("GeoJSON holds no geometry", path)
    geom = shapely.union_all(shapes)
    w, s, e, n = geom.bounds
    if not (-180 <= w <= e <= 180 and -90 <= s <= n <= 90):
        raise TileError(f"coordinates ({w:g}, {s:g}, {e:g}, {n:g}) are not longitude/latitude: GeoJSON must be "
                        "in WGS 84 (RFC 7946); reproject it (e.g. ogr2ogr -t_srs EPSG:4326)", path)
    return geom
