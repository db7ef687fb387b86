"""ESA-CCI auxiliary maps of a Sen2Cor installation, read onto a tile's grid for the scene classification.

Sen2Cor (2.5 and later) reads, from its ``aux_data`` folder, the ESA-CCI water-bodies map (150 m,
global, WGS84; 1 land, 2 water) and the snow-condition climatology (500 m, one file per 7-day period
of the year, the share of years 2000-2012 with snow in %, 254 water, 255 no data); see
``s2l2a.sen2cor.esacci`` for installing them. The built-in classifier uses them as Sen2Cor 2.8 does
(:func:`.scl.classify`): water-body pixels that are dark, unclassified or low-probability cloud are
water; on the snow map's water no snow is detected when the tile's land is almost never snowy
(mean snow share below 10 %). The land-cover map (urban and bare-area recovery) is not used.

The maps are cut and resampled (nearest, like Sen2Cor's own resampling of class maps) onto each
classification grid with rasterio; nothing is downloaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from s2l2a.campaign.failures import FailureClass
from s2l2a.processors.base import ProcessingFailed
from s2l2a.sen2cor.layout import WATER_BODIES

WATER_BODY = 2          # water-bodies map: 1 land, 2 water (0 no data)
SNOW_WATER = 254        # snow-condition map: water
SNOW_NODATA = 255       # snow-condition map: no data
SNOW_RARE_PERCENT = 10.0  # Sen2Cor: below this mean snow share of the land, the map's water is no snow
_SNOW_DIR = re.compile(r"Snow-Cond", re.IGNORECASE)
_PERIOD = re.compile(r"(?<!\d)2000(\d{2})(\d{2})(?!\d)")  # weekly files: ...-P13Y7D-2000MMDD-...
_RASTERS = (".tif", ".tiff", ".nc")


@dataclass(frozen=True)
class CciMaps:
    """The files found in one ``aux_data`` folder (``snow_condition``: the period's file, or None)."""

    water_bodies: Path
    snow_condition: Path | None

    @classmethod
    def open(cls, aux_dir: str | Path, acquired: date | None = None) -> CciMaps:
        """Find the maps in ``aux_dir``; the water-bodies map is required, the snow climatology optional.

        A folder without the water-bodies map fails the job as missing auxiliary data (like a DEM that
        is not there).
        """
        root = Path(aux_dir)
        wb = root / WATER_BODIES
        if not wb.is_file():
            found = sorted(root.glob("ESACCI-LC-L4-WB-Map*.tif")) if root.is_dir() else []
            if not found:
                raise ProcessingFailed(f"esacci: no ESA-CCI water-bodies map ({WATER_BODIES}) in {root}",
                                       FailureClass.MISSING_AUX)
            wb = found[0]
        return cls(water_bodies=wb, snow_condition=snow_file(root, acquired) if acquired else None)

    def masks(self, shape: tuple[int, int], transform: Any, crs: Any) -> dict[str, np.ndarray]:
        """The classifier's ``cci`` masks on one grid: ``water`` and, with a snow map, ``no_snow``."""
        out = {"water": read_on_grid(self.water_bodies, shape, transform, crs) == WATER_BODY}
        if self.snow_condition is not None:
            out["no_snow"] = snow_excluded(read_on_grid(self.snow_condition, shape, transform, crs,
                                                        nodata=SNOW_NODATA))
        return out

    def describe(self) -> dict[str, str | None]:
        """What the report records."""
        return {"water_bodies": self.water_bodies.name,
                "snow_condition": self.snow_condition.name if self.snow_condition else None}


def snow_file(aux_dir: Path, acquired: date) -> Path | None:
    """The snow-condition file of the 7-day period holding ``acquired`` (day of year, any year).

    The periods are named by their first day in 2000 (``...-P13Y7D-20000101-...``, ``-20000108-``,
    ...): the latest start on or before the acquisition's month and day, else the last of the year.
    None when the folder or dated files are absent.
    """
    dirs = [d for d in aux_dir.iterdir() if d.is_dir() and _SNOW_DIR.search(d.name)] if aux_dir.is_dir() else []
    periods: list[tuple[tuple[int, int], Path]] = []
    for d in sorted(dirs):
        for f in sorted(d.iterdir()):
            m = _PERIOD.search(f.name)
            if m and f.suffix.lower() in _RASTERS:
                periods.append(((int(m.group(1)), int(m.group(2))), f))
    if not periods:
        return None
    periods.sort()
    before = [p for p in periods if p[0] <= (acquired.month, acquired.day)]
    return (before or periods)[-1][1]


def read_on_grid(path: Path, shape: tuple[int, int], transform: Any, crs: Any, nodata: int = 0) -> np.ndarray:
    """One class map cut and resampled (nearest) onto a grid; ``nodata`` outside the map."""
    import rasterio
    from rasterio.warp import Resampling, reproject

    out = np.full(shape, nodata, np.uint8)
    with rasterio.open(path) as src:
        reproject(rasterio.band(src, 1), out, dst_transform=transform, dst_crs=crs,
                  dst_nodata=nodata, resampling=Resampling.nearest)
    return out


def snow_excluded(snc: np.ndarray) -> np.ndarray:
    """Where the snow map rules snow out: its water, when the land's mean snow share is below 10 %.

    Sen2Cor 2.8 applies this to the whole tile (and leaves its "no snow at 0 %" rule switched off, as
    rare snowfalls are missing from the 2000-2012 climatology). The mean is over the land's snow
    shares (0-100); no-data cells are left out.
    """
    land = snc[(snc != SNOW_WATER) & (snc != SNOW_NODATA)]
    if land.size == 0 or land.sum() == 0 or float(land.mean()) >= SNOW_RARE_PERCENT:
        return np.zeros(snc.shape, bool)
    return snc == SNOW_WATER
