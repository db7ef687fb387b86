"""Parsers for Sentinel-2 product metadata (MTD_MSIL1C/MTD_MSIL2A, old S2A_OPER_MTD_SAFL1C_*) and
datastrip metadata, independent of where the files sit on disk. Tile metadata lives in ``tile.py``
(re-exported here).

Everything radiometric (offsets, quantification, irradiance) is read from the file, never inferred
from dates or names: baseline 04.00 changed the offset and some mirrors rename products.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from lxml import etree
from shapely.geometry import Polygon

from s2l2a.safe.bands import BANDS, band_from_index, normalize_band
from s2l2a.safe.errors import MetadataError
from s2l2a.safe.names import tile_from_identifier

# re-exported: callers import these from here
from s2l2a.safe.tile import (  # noqa: F401
    TILE_ROOTS,
    AngleGrids,
    GeoPosition,
    TileMetadata,
    read_tile_metadata,
)
from s2l2a.safe.timefmt import parse_time  # noqa: F401
from s2l2a.safe.xml import (
    children,
    iter_local,
    local,
    optional_float,
    parse_xml,
    require_float,
    text,
)


@dataclass
class GranuleEntry:
    """One granule as the product metadata lists it."""

    identifier: str
    datastrip: str | None
    image_format: str | None
    image_files: list[str] = field(default_factory=list)  # relative paths without extension, or IMAGE_IDs
    image_ids_only: bool = False  # old format: bare IMAGE_ID names, not paths

    @property
    def tile(self) -> str | None:
        """MGRS tile named in the granule identifier."""
        return tile_from_identifier(self.identifier)


@dataclass
class ProductMetadata:
    """What a product-level metadata file says (L1C and L2A share most fields)."""

    path: Path
    level: str  # "L1C" | "L2A"
    product_type: str | None
    product_uri: str | None
    baseline: str | None
    start_time: datetime | None
    generation_time: datetime | None
    spacecraft: str | None
    product_format: str | None
    cloud_cover: float | None
    footprint: Polygon | None
    sun_earth_u: float | None
    solar_irradiance: dict[str, float]
    band_index: dict[int, str]
    granules: list[GranuleEntry]
    # L1C radiometry
    quantification_value: float | None = None
    radio_add_offset: dict[str, float] = field(default_factory=dict)
    # L2A radiometry
    boa_quantification_value: float | None = None
    boa_add_offset: dict[str, float] = field(default_factory=dict)
    aot_quantification_value: float | None = None
    wvp_quantification_value: float | None = None
    product_uri_l1c: str | None = None


_LEVEL_BY_ROOT = {"Level-1C_User_Product": "L1C", "Level-2A_User_Product": "L2A"}


def _level(root: etree._Element, product_type: str | None, path: Path) -> str:
    name = local(root.tag)
    if name in _LEVEL_BY_ROOT:
        return _LEVEL_BY_ROOT[name]
    if name in TILE_ROOTS:
        raise MetadataError(f"is tile metadata ({name}), not product metadata", path)
    pt = (product_type or "").upper()
    if "1C" in pt:
        return "L1C"
    if "2A" in pt:
        return "L2A"
    raise MetadataError(f"not Sentinel-2 L1C/L2A product metadata (root element {name!r})", path)


def _band_index(root: etree._Element) -> dict[int, str]:
    """bandId → band name from Spectral_Information; instrument order when the list is absent."""
    mapping: dict[int, str] = {}
    for el in iter_local(root, "Spectral_Information"):
        bid, phys = el.get("bandId"), el.get("physicalBand")
        if bid is None or phys is None:
            continue
        try:
            mapping[int(bid)] = normalize_band(phys)
        except ValueError:
            continue
    return mapping or dict(enumerate(BANDS))


def _per_band(root: etree._Element, tag: str, attr: str, index: dict[int, str], path: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    for el in iter_local(root, tag):
        key = el.get(attr) if el.get(attr) is not None else el.get("bandId")
        if key is None:
            continue
        try:
            band = index.get(int(key)) or band_from_index(key)
        except ValueError:
            raise MetadataError(f"invalid {tag} {attr}={key!r}", path) from None
        out[band] = require_float(el.text.strip() if el.text else None, f"{tag} for {band}", path)
    return out


def _footprint(root: etree._Element, path: Path) -> Polygon | None:
    """Product footprint as a (lon, lat) polygon; longitudes exceed 180 for antimeridian-crossing tiles."""
    raw = text(root, "EXT_POS_LIST")
    if raw is None:
        return None
    try:
        nums = [float(v) for v in raw.split()]
    except ValueError:
        raise MetadataError("invalid EXT_POS_LIST footprint", path) from None
    # Some reprocessed products write "lat lon height" triples (height 0), sometimes with a trailing pair.
    heights = nums[2 : len(nums) - 1 : 3]
    if len(nums) >= 6 and len(nums) % 3 in (0, 2) and heights and all(h == 0.0 for h in heights):
        pairs = [(nums[i], nums[i + 1]) for i in range(0, len(nums) - 1, 3)]
    elif len(nums) % 2 == 0:
        pairs = [(nums[i], nums[i + 1]) for i in range(0, len(nums), 2)]
    else:
        raise MetadataError(f"EXT_POS_LIST has {len(nums)} numbers, expected lat/lon pairs", path)
    if len(pairs) < 3 or not all(-90 <= la <= 90 and -180 <= lo <= 180 for la, lo in pairs):
        raise MetadataError("EXT_POS_LIST is not a lat/lon polygon", path)
    lat, lon = [la for la, _ in pairs], [lo for _, lo in pairs]
    if any(abs(b - a) > 180.0 for a, b in zip(lon, lon[1:], strict=False)):
        # crosses the antimeridian: unwrap to 0..360 so the polygon stays one valid shape
        lon = [lo + 360.0 if lo < 0 else lo for lo in lon]
    return Polygon(list(zip(lon, lat, strict=True)))


def _granules(root: etree._Element) -> list[GranuleEntry]:
    merged: dict[str, GranuleEntry] = {}
    for el in iter_local(root, "Granule", "Granules"):
        gid = el.get("granuleIdentifier")
        if not gid:
            continue
        entry = merged.setdefault(
            gid, GranuleEntry(gid, el.get("datastripIdentifier"), el.get("imageFormat"))
        )
        for c in children(el, "IMAGE_FILE", "IMAGE_FILE_2A", "IMAGE_ID", "IMAGE_ID_2A"):
            if c.text and c.text.strip() and c.text.strip() not in entry.image_files:
                entry.image_files.append(c.text.strip())
                entry.image_ids_only = local(c.tag).startswith("IMAGE_ID")
    return list(merged.values())


def read_product_metadata(path: Path | str) -> ProductMetadata:
    """Parse a product metadata file of any known L1C/L2A format."""
    p = Path(path)
    root = parse_xml(p)
    ptype = text(root, "PRODUCT_TYPE")
    level = _level(root, ptype, p)
    index = _band_index(root)
    md = ProductMetadata(
        path=p,
        level=level,
        product_type=ptype,
        product_uri=text(root, "PRODUCT_URI", "PRODUCT_URI_2A"),
        baseline=text(root, "PROCESSING_BASELINE"),
        start_time=parse_time(text(root, "PRODUCT_START_TIME")),
        generation_time=parse_time(text(root, "GENERATION_TIME")),
        spacecraft=text(root, "SPACECRAFT_NAME"),
        product_format=text(root, "PRODUCT_FORMAT"),
        cloud_cover=optional_float(text(root, "Cloud_Coverage_Assessment", "CLOUD_COVERAGE_ASSESSMENT")),
        footprint=_footprint(root, p),
        sun_earth_u=optional_float(text(root, "U")),
        solar_irradiance=_per_band(root, "SOLAR_IRRADIANCE", "bandId", index, p),
        band_index=index,
        granules=_granules(root),
    )
    if level == "L1C":
        md.quantification_value = require_float(text(root, "QUANTIFICATION_VALUE"), "QUANTIFICATION_VALUE", p)
        md.radio_add_offset = _per_band(root, "RADIO_ADD_OFFSET", "band_id", index, p)
    else:
        md.boa_quantification_value = require_float(
            text(root, "BOA_QUANTIFICATION_VALUE", "L2A_BOA_QUANTIFICATION_VALUE"), "BOA_QUANTIFICATION_VALUE", p
        )
        md.aot_quantification_value = optional_float(
            text(root, "AOT_QUANTIFICATION_VALUE", "L2A_AOT_QUANTIFICATION_VALUE")
        )
        md.wvp_quantification_value = optional_float(
            text(root, "WVP_QUANTIFICATION_VALUE", "L2A_WVP_QUANTIFICATION_VALUE")
        )
        md.boa_add_offset = _per_band(root, "BOA_ADD_OFFSET", "band_id", index, p)
        md.product_uri_l1c = text(root, "PRODUCT_URI_1C")
    return md


# --------------------------------------------------------------------------- datastrip metadata


@dataclass
class DatastripMetadata:
    """Radiometric facts of an L1C datastrip (MTD_DS.xml / S2?_OPER_MTD_L1C_DS_*.xml).

    Useful to cross-check a product whose own XML was damaged: the offsets and quantification of
    every tile in a datastrip are the datastrip's.
    """

    path: Path
    level: str
    spacecraft: str | None
    baseline: str | None
    sensing_start: datetime | None
    sensing_stop: datetime | None
    quantification_value: float
    radio_add_offset: dict[str, float]
    sun_earth_u: float | None
    solar_irradiance: dict[str, float]


def read_datastrip_metadata(path: Path | str) -> DatastripMetadata:
    """Parse an L1C/L2A datastrip metadata file (radiometry only; the file is large)."""
    p = Path(path)
    root = parse_xml(p)
    name = local(root.tag)
    if name not in ("Level-1C_DataStrip_ID", "Level-2A_DataStrip_ID"):
        raise MetadataError(f"not Sentinel-2 datastrip metadata (root element {name!r})", p)
    index = _band_index(root)
    quant = text(root, "QUANTIFICATION_VALUE", "BOA_QUANTIFICATION_VALUE")
    offsets = _per_band(root, "RADIO_ADD_OFFSET", "band_id", index, p) or _per_band(
        root, "BOA_ADD_OFFSET", "band_id", index, p
    )
    return DatastripMetadata(
        path=p, level="L1C" if name.startswith("Level-1C") else "L2A",
        spacecraft=text(root, "SPACECRAFT_NAME"), baseline=text(root, "PROCESSING_BASELINE"),
        sensing_start=parse_time(text(root, "DATASTRIP_SENSING_START")),
        sensing_stop=parse_time(text(root, "DATASTRIP_SENSING_STOP")),
        quantification_value=require_float(quant, "QUANTIFICATION_VALUE", p),
        radio_add_offset={b: float(offsets.get(b, 0.0)) for b in BANDS},
        sun_earth_u=optional_float(text(root, "U")),
        solar_irradiance=_per_band(root, "SOLAR_IRRADIANCE", "bandId", index, p),
    )
