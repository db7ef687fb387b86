"""Tile metadata (MTD_TL.xml, old S2A_OPER_MTD_L1C_TL_*.xml, AWS metadata.xml): CRS, geoposition, angles.

Viewing angles come per band and per detector; a tile is seen by several detectors whose grids
overlap on the seams, so they are merged into one grid per band before anyone uses them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from affine import Affine
from lxml import etree

from s2l2a.safe.bands import BANDS, RESOLUTIONS, band_from_index
from s2l2a.safe.errors import MetadataError
from s2l2a.safe.names import tile_from_identifier
from s2l2a.safe.timefmt import parse_time
from s2l2a.safe.xml import (
    child_text,
    children,
    first,
    iter_local,
    local,
    optional_float,
    parse_xml,
    require_float,
    text,
)

TILE_ROOTS = {"Level-1C_Tile_ID", "Level-2A_Tile_ID"}


@dataclass(frozen=True)
class GeoPosition:
    """Upper-left corner, pixel size and raster size of a tile at one resolution."""

    ulx: float
    uly: float
    xdim: float
    ydim: float
    nrows: int
    ncols: int

    @property
    def transform(self) -> Affine:
        """Affine pixel→map transform, as rasterio expects."""
        return Affine(self.xdim, 0.0, self.ulx, 0.0, self.ydim, self.uly)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in the tile's CRS."""
        right = self.ulx + self.xdim * self.ncols
        bottom = self.uly + self.ydim * self.nrows
        return (min(self.ulx, right), min(bottom, self.uly), max(self.ulx, right), max(bottom, self.uly))


@dataclass
class AngleGrids:
    """Sun and viewing angle grids (degrees) on the coarse ``step_m`` grid anchored at the tile's UL corner."""

    step_m: float
    sun_zenith: np.ndarray
    sun_azimuth: np.ndarray
    view_zenith: dict[str, np.ndarray] = field(default_factory=dict)
    view_azimuth: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class TileMetadata:
    """What a tile metadata file (MTD_TL) says."""

    path: Path
    tile_id: str
    tile: str | None
    sensing_time: datetime | None
    epsg: int
    cs_name: str | None
    geoposition: dict[int, GeoPosition]
    angles: AngleGrids | None  # None when read with angles=False
    mean_sun_zenith: float | None
    mean_sun_azimuth: float | None
    mean_view_zenith: dict[str, float]
    mean_view_azimuth: dict[str, float]
    cloudy_pixel_percentage: float | None
    warnings: list[str] = field(default_factory=list)  # oddities tolerated while parsing


def _grid(el: etree._Element | None, what: str, path: Path) -> tuple[np.ndarray, float]:
    if el is None:
        raise MetadataError(f"missing {what} angle grid", path)
    step = optional_float(child_text(el, "COL_STEP"))
    if step is None:
        step = optional_float(child_text(el, "ROW_STEP"))
    values = first(el, "Values_List")
    rows = [] if values is None else [v.text.split() for v in children(values, "VALUES") if v.text]
    if not rows or len({len(r) for r in rows}) != 1:
        raise MetadataError(f"{what} angle grid is empty or ragged", path)
    try:
        arr = np.array(rows, dtype=np.float64)
    except ValueError:
        raise MetadataError(f"{what} angle grid has non-numeric values", path) from None
    return arr, 5000.0 if step is None else float(step)


def _merge_detectors(grids: list[np.ndarray], azimuth: bool) -> np.ndarray:
    """Combine per-detector grids: mean where footprints overlap, NaN where no detector sees the point.

    Azimuths are averaged on the circle so 359° and 1° give 0°, not 180°.
    """
    stack = np.stack(grids)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if not azimuth:
            return np.nanmean(stack, axis=0)
        rad = np.deg2rad(stack)
        s, c = np.nanmean(np.sin(rad), axis=0), np.nanmean(np.cos(rad), axis=0)
        return np.mod(np.rad2deg(np.arctan2(s, c)), 360.0)


def _geocoding(root: etree._Element, path: Path) -> tuple[int, str | None, dict[int, GeoPosition]]:
    code = text(root, "HORIZONTAL_CS_CODE")
    if code is None or not code.upper().startswith("EPSG:") or not code[5:].strip().isdigit():
        raise MetadataError(f"missing or invalid HORIZONTAL_CS_CODE: {code!r}", path)
    sizes: dict[int, tuple[int, int]] = {}
    for el in iter_local(root, "Size"):
        res = el.get("resolution")
        nr, nc = child_text(el, "NROWS"), child_text(el, "NCOLS")
        if res and nr and nc:
            sizes[int(res)] = (int(nr), int(nc))
    geo: dict[int, GeoPosition] = {}
    for el in iter_local(root, "Geoposition"):
        res = el.get("resolution")
        if not res:
            continue
        r = int(res)
        nrows, ncols = sizes.get(r, (0, 0))
        geo[r] = GeoPosition(
            ulx=require_float(child_text(el, "ULX"), f"ULX at {r} m", path),
            uly=require_float(child_text(el, "ULY"), f"ULY at {r} m", path),
            xdim=require_float(child_text(el, "XDIM"), f"XDIM at {r} m", path),
            ydim=require_float(child_text(el, "YDIM"), f"YDIM at {r} m", path),
            nrows=nrows, ncols=ncols,
        )
    missing = [r for r in RESOLUTIONS if r not in geo]
    if missing:
        raise MetadataError(f"missing Geoposition for {missing} m", path)
    return int(code[5:].strip()), text(root, "HORIZONTAL_CS_NAME"), geo


def _angle_grids(root: etree._Element, index: dict[int, str], p: Path) -> tuple[AngleGrids, list[str]]:
    """The sun grid and the per-band view grids (detectors merged): most of a tile file's parse time."""
    sun = first(root, "Sun_Angles_Grid")
    sun_zen, step = _grid(None if sun is None else first(sun, "Zenith"), "sun zenith", p)
    sun_az, _ = _grid(None if sun is None else first(sun, "Azimuth"), "sun azimuth", p)
    if step <= 0 or sun_az.shape != sun_zen.shape:
        raise MetadataError(f"sun angle grids are inconsistent (step {step}, shapes {sun_zen.shape}/{sun_az.shape})", p)

    per_band: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    notes: list[str] = []
    for el in iter_local(root, "Viewing_Incidence_Angles_Grids"):
        bid = el.get("bandId")
        if bid is None:
            continue
        band = index.get(int(bid)) or band_from_index(bid)
        zen, zstep = _grid(first(el, "Zenith"), f"view zenith {band}", p)
        az, _ = _grid(first(el, "Azimuth"), f"view azimuth {band}", p)
        if zen.shape != sun_zen.shape or az.shape != sun_zen.shape or zstep != step:
            # seen in a real (trimmed) file: a 2x1 grid with step 0; it cannot be placed on the tile
            notes.append(f"ignored view grid band {band} detector {el.get('detectorId')}: shape {zen.shape}")
            continue
        zs, azs = per_band.setdefault(band, ([], []))
        zs.append(zen)
        azs.append(az)
    angles = AngleGrids(
        step_m=step, sun_zenith=sun_zen, sun_azimuth=sun_az,
        view_zenith={b: _merge_detectors(z, False) for b, (z, _) in per_band.items()},
        view_azimuth={b: _merge_detectors(a, True) for b, (_, a) in per_band.items()},
    )
    return angles, notes


def _tile_root(p: Path) -> etree._Element:
    root = parse_xml(p)
    if local(root.tag) not in TILE_ROOTS:
        raise MetadataError(f"not Sentinel-2 tile metadata (root element {local(root.tag)!r})", p)
    return root


def read_angle_grids(path: Path | str, band_index: dict[int, str] | None = None) -> AngleGrids:
    """Only the angle grids of a tile metadata file (what a processor needs, planning never)."""
    p = Path(path)
    return _angle_grids(_tile_root(p), band_index or dict(enumerate(BANDS)), p)[0]


def read_tile_metadata(path: Path | str, band_index: dict[int, str] | None = None, *,
                       angles: bool = True) -> TileMetadata:
    """Parse a tile metadata file: identity, CRS, geoposition and, unless ``angles=False``, the
    angle grids (detectors merged; three quarters of the parse time, left as None when skipped)."""
    p = Path(path)
    root = _tile_root(p)
    index = band_index or dict(enumerate(BANDS))
    tile_id = text(root, "TILE_ID", "TILE_ID_2A")
    if tile_id is None:
        raise MetadataError("missing TILE_ID", p)
    epsg, cs_name, geo = _geocoding(root, p)
    grids, notes = _angle_grids(root, index, p) if angles else (None, [])

    mean_sun = first(root, "Mean_Sun_Angle")
    mvz: dict[str, float] = {}
    mva: dict[str, float] = {}
    for el in iter_local(root, "Mean_Viewing_Incidence_Angle"):
        bid = el.get("bandId")
        if bid is None:
            continue
        band = index.get(int(bid)) or band_from_index(bid)
        z, a = optional_float(child_text(el, "ZENITH_ANGLE")), optional_float(child_text(el, "AZIMUTH_ANGLE"))
        if z is not None and not math.isnan(z):
            mvz[band] = z
        if a is not None and not math.isnan(a):
            mva[band] = a
    return TileMetadata(
        path=p, tile_id=tile_id, tile=tile_from_identifier(tile_id),
        sensing_time=parse_time(text(root, "SENSING_TIME")),
        epsg=epsg, cs_name=cs_name, geoposition=geo, angles=grids,
        mean_sun_zenith=None if mean_sun is None else optional_float(child_text(mean_sun, "ZENITH_ANGLE")),
        mean_sun_azimuth=None if mean_sun is None else optional_float(child_text(mean_sun, "AZIMUTH_ANGLE")),
        mean_view_zenith=mvz, mean_view_azimuth=mva,
        cloudy_pixel_percentage=optional_float(text(root, "CLOUDY_PIXEL_PERCENTAGE")),
        warnings=notes,
    )
