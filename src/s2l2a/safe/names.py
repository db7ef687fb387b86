"""Sentinel-2 product and granule naming rules (the only place in s2l2a that knows them).

Two product conventions exist: the compact one used since Dec 2016
(``S2A_MSIL1C_20151116T043132_N0204_R090_T46QEL_20151116T043131``) and the older "OPER" one of
2015-2016 multi-tile products (``S2A_OPER_PRD_MSIL1C_PDMC_20161205T220814_R065_V20161205T104432_...``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from s2l2a.safe.errors import ProductNameError

_T = r"\d{8}T\d{6}"
_COMPACT = re.compile(
    rf"^(?P<mission>S2[A-D])_MSI(?P<level>L1C|L2A)_(?P<sensing>{_T})_N(?P<baseline>\d{{4}})"
    rf"_R(?P<orbit>\d{{3}})_T(?P<tile>\d{{2}}[A-Z]{{3}})_(?P<generation>{_T})$"
)
_OPER = re.compile(
    rf"^(?P<mission>S2[A-D])_(?:OPER|USER)_PRD_MSI(?P<level>L1C|L2A)_(?P<centre>[A-Z0-9_]{{4}})_"
    rf"(?P<generation>{_T})_R(?P<orbit>\d{{3}})_V(?P<sensing>{_T})_(?P<stop>{_T})$"
)
_GRANULE_COMPACT = re.compile(
    rf"^(?P<level>L1C|L2A)_T(?P<tile>\d{{2}}[A-Z]{{3}})_A(?P<abs_orbit>\d{{6}})_(?P<sensing>{_T})$"
)
_GRANULE_OPER = re.compile(
    rf"^(?P<mission>S2[A-D])_(?:OPER|USER)_MSI_(?P<level>L1C|L2A)_TL_(?P<centre>[A-Z0-9_]{{4}})_"
    rf"(?P<generation>{_T})_A(?P<abs_orbit>\d{{6}})_T(?P<tile>\d{{2}}[A-Z]{{3}})(?:_N(?P<baseline>\d\d\.\d\d))?$"
)
_SUFFIXES = (".SAFE.zip", ".SAFE", ".zip", ".safe")


def _time(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)


def strip_suffix(name: str) -> str:
    """Name without a trailing ``.SAFE``/``.zip`` or directory separator."""
    name = name.strip().rstrip("/")
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


@dataclass(frozen=True)
class ProductName:
    """The facts encoded in a product name; fields a convention lacks are ``None``."""

    name: str
    mission: str
    level: str
    fmt: str
    sensing_time: datetime
    baseline: str | None
    relative_orbit: int | None
    tile: str | None
    generation_time: datetime | None

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class GranuleName:
    """The facts encoded in a granule (tile) folder name."""

    name: str
    level: str
    fmt: str
    tile: str
    absolute_orbit: int
    sensing_time: datetime | None
    generation_time: datetime | None
    mission: str | None
    baseline: str | None


def _baseline(n: str) -> str:
    return f"{n[:2]}.{n[2:]}"


def parse_product_name(name: str) -> ProductName:
    """Parse a compact or OPER product name (with or without ``.SAFE``); raise ProductNameError."""
    base = strip_suffix(str(name).strip().rstrip("/").rsplit("/", 1)[-1])
    m = _COMPACT.fullmatch(base)
    if m:
        return ProductName(
            name=base, mission=m["mission"], level=m["level"], fmt="compact",
            sensing_time=_time(m["sensing"]), baseline=_baseline(m["baseline"]),
            relative_orbit=int(m["orbit"]), tile=m["tile"], generation_time=_time(m["generation"]),
        )
    m = _OPER.fullmatch(base)
    if m:
        return ProductName(
            name=base, mission=m["mission"], level=m["level"], fmt="oper",
            sensing_time=_time(m["sensing"]), baseline=None, relative_orbit=int(m["orbit"]),
            tile=None, generation_time=_time(m["generation"]),
        )
    raise ProductNameError(f"not a Sentinel-2 L1C/L2A product name: {base!r}")


def is_product_name(name: str) -> bool:
    """True when ``name`` parses as a product name (cheap filter for directory scans)."""
    try:
        parse_product_name(name)
    except ProductNameError:
        return False
    return True


def parse_granule_name(name: str) -> GranuleName:
    """Parse a granule folder name: ``L1C_T46QEL_A001234_20151116T043131`` or the OPER ``..._TL_...`` form."""
    base = str(name).rstrip("/").rsplit("/", 1)[-1]
    m = _GRANULE_COMPACT.fullmatch(base)
    if m:
        return GranuleName(
            name=base, level=m["level"], fmt="compact", tile=m["tile"], absolute_orbit=int(m["abs_orbit"]),
            sensing_time=_time(m["sensing"]), generation_time=None, mission=None, baseline=None,
        )
    m = _GRANULE_OPER.fullmatch(base)
    if m:
        return GranuleName(
            name=base, level=m["level"], fmt="oper", tile=m["tile"], absolute_orbit=int(m["abs_orbit"]),
            sensing_time=None, generation_time=_time(m["generation"]), mission=m["mission"],
            baseline=m["baseline"],
        )
    raise ProductNameError(f"not a Sentinel-2 granule name: {base!r}")


_TILE_IN_ID = re.compile(r"_T(\d{2}[A-Z]{3})(?:_|$)")


def tile_from_identifier(identifier: str) -> str | None:
    """MGRS tile ("33UVB") found in a granule/tile identifier or file name, or None."""
    m = _TILE_IN_ID.search(identifier)
    return m.group(1) if m else None


def oper_product_name_from_mtd(filename: str) -> str | None:
    """Old-format product name from its metadata file name (``..._MTD_SAFL1C_...xml`` → ``..._PRD_MSIL1C_...``)."""
    m = re.match(r"^(S2[A-D]_(?:OPER|USER))_MTD_SAF(L1C|L2A)_(.+)\.xml$", filename)
    return f"{m[1]}_PRD_MSI{m[2]}_{m[3]}" if m else None


def format_product_name(
    mission: str, level: str, sensing_time: datetime, baseline: str, relative_orbit: int, tile: str,
    generation_time: datetime,
) -> str:
    """Compact product name (no ``.SAFE``), e.g. for an L2A written by the built-in processor.

    ``baseline`` is "05.10" or "0510"; times are converted to UTC. The result always parses back.
    """
    n = baseline.replace(".", "")
    if not re.fullmatch(r"\d{4}", n):
        raise ProductNameError(f"invalid processing baseline {baseline!r}")
    t = tile.removeprefix("T")

    def ts(d: datetime) -> str:
        return (d.astimezone(UTC) if d.tzinfo else d).strftime("%Y%m%dT%H%M%S")

    name = f"{mission}_MSI{level}_{ts(sensing_time)}_N{n}_R{relative_orbit:03d}_T{t}_{ts(generation_time)}"
    parse_product_name(name)  # validates mission, level, tile
    return name


def l2a_granule_name(l1c_granule: str) -> str:
    """The L2A granule folder name matching an L1C one (``L1C_T56JMM_A015757_...`` → ``L2A_...``)."""
    g = parse_granule_name(l1c_granule)
    if g.fmt == "compact":
        return "L2A" + g.name[3:]
    return g.name.replace("_MSI_L1C_TL_", "_MSI_L2A_TL_")
