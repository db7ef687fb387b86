"""Names and extents of DEM tiles: CGIAR SRTM 90 m 5x5 degree zips and Copernicus DEM 1x1 degree COGs.

Selection works on the product footprints (lon/lat polygons), not their bounding boxes, so a
diagonal orbit strip does not pull in every tile of its box. Footprints crossing the antimeridian
are unwrapped (longitudes shifted by 360) before selection.

Naming (see tests/data/sen2cor_setup/SOURCE.md):
- SRTM: ``srtm_XX_YY.zip`` holding ``srtm_XX_YY.tif``; XX = 01..72 columns of 5 deg from 180 W
  eastwards, YY = 01..24 rows of 5 deg from 60 N southwards.
- Copernicus: ``Copernicus_DSM_COG_<10|30>_<N|S>LL_00_<E|W>LLL_00_DEM`` named by the SW corner;
  10 = 1 arc-second (GLO-30), 30 = 3 arc-seconds (GLO-90); object ``<name>/<name>.tif``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import Polygon, box
from shapely.geometry.base import BaseGeometry

SOURCES = ("srtm90", "cop30", "cop90")
_SRTM_RE = re.compile(r"^srtm_(\d\d)_(\d\d)$")
_COP_RE = re.compile(r"^Copernicus_DSM_COG_(10|30)_([NS])(\d\d)_00_([EW])(\d\d\d)_00_DEM$")


@dataclass(frozen=True)
class Tile:
    """One DEM tile: its name (no extension), source and lon/lat extent."""

    name: str
    source: str
    west: float
    south: float
    east: float
    north: float

    @property
    def box(self) -> Polygon:
        return box(self.west, self.south, self.east, self.north)

    @property
    def filename(self) -> str:
        return f"{self.name}.zip" if self.source == "srtm90" else f"{self.name}.tif"

    @property
    def url_path(self) -> str:
        """Path below the source's base URL."""
        return self.filename if self.source == "srtm90" else f"{self.name}/{self.name}.tif"


def srtm_tile(col: int, row: int) -> Tile:
    if not (1 <= col <= 72 and 1 <= row <= 24):
        raise ValueError(f"SRTM tile column/row out of range: {col}, {row}")
    west = -180 + (col - 1) * 5
    north = 60 - (row - 1) * 5
    return Tile(f"srtm_{col:02d}_{row:02d}", "srtm90", west, north - 5, west + 5, north)


def cop_tile(lat: int, lon: int, source: str = "cop90") -> Tile:
    code = "10" if source == "cop30" else "30"
    ns, ew = ("N" if lat >= 0 else "S"), ("E" if lon >= 0 else "W")
    name = f"Copernicus_DSM_COG_{code}_{ns}{abs(lat):02d}_00_{ew}{abs(lon):03d}_00_DEM"
    return Tile(name, source, lon, lat, lon + 1, lat + 1)


def parse_tile(name: str) -> Tile:
    """The tile for a name as produced above (``.zip``/``.tif`` suffix allowed)."""
    stem = name.removesuffix(".zip").removesuffix(".tif")
    m = _SRTM_RE.match(stem)
    if m:
        return srtm_tile(int(m.group(1)), int(m.group(2)))
    m = _COP_RE.match(stem)
    if m:
        lat = int(m.group(3)) * (1 if m.group(2) == "N" else -1)
        lon = int(m.group(5)) * (1 if m.group(4) == "E" else -1)
        return cop_tile(lat, lon, "cop30" if m.group(1) == "10" else "cop90")
    raise ValueError(f"not a DEM tile name: {name!r}")


def unwrap(geom: BaseGeometry) -> BaseGeometry:
    """Shift negative longitudes by +360 for footprints spanning the antimeridian."""
    minx, _, maxx, _ = geom.bounds
    if maxx - minx <= 180:
        return geom
    return shapely.transform(geom, lambda c: np.column_stack([np.where(c[:, 0] < 0, c[:, 0] + 360, c[:, 0]),
                                                              c[:, 1]]))


def _wrap_lon(lon: int) -> int:
    return ((lon + 180) % 360) - 180


def tiles_for(geom: BaseGeometry, source: str) -> tuple[list[Tile], BaseGeometry]:
    """Tiles whose extent intersects ``geom``; returns them and the part of ``geom`` no tile can cover.

    SRTM covers 60 N .. 56 S only (rows stop at 60 S); Copernicus covers the globe.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown DEM source {source!r}")
    g = unwrap(geom)
    minx, miny, maxx, maxy = g.bounds
    tiles: list[Tile] = []
    if source == "srtm90":
        step = 5
        lat_lo, lat_hi = max(miny, -60.0), min(maxy, 60.0)
        for x0 in range(math.floor(minx / step) * step, math.ceil(maxx / step) * step, step):
            for y0 in range(math.floor(lat_lo / step) * step, math.ceil(lat_hi / step) * step, step):
                if not g.intersects(box(x0, y0, x0 + step, y0 + step)) or y0 >= 60 or y0 < -60:
                    continue
                wl = _wrap_lon(x0)
                col = (wl + 180) // 5 + 1
                row = (60 - (y0 + 5)) // 5 + 1
                tiles.append(srtm_tile(col, row))
        covered_band = box(-720, -60, 720, 60)
        outside = g.difference(covered_band)
    else:
        for x0 in range(math.floor(minx), math.ceil(maxx)):
            for y0 in range(math.floor(miny), math.ceil(maxy)):
                if -90 <= y0 < 90 and g.intersects(box(x0, y0, x0 + 1, y0 + 1)):
                    tiles.append(cop_tile(y0, _wrap_lon(x0), source))
        outside = g.difference(box(-720, -90, 720, 90))
    seen: dict[str, Tile] = {}
    for t in tiles:
        seen.setdefault(t.name, t)
    return sorted(seen.values(), key=lambda t: t.name), outside
