"""L1C and L2A product objects built from a SAFE directory, and the functions that open them.

Opening reads the metadata, locates every granule, its tile metadata and every band file the
product XML lists. By default a missing file is an error (a processor must not discover it an hour
into a run); ``require_bands=False`` accepts metadata-only copies (catalogue mirrors, test data).
Tile metadata is parsed at open (``metadata_only=True``: on first use, what planning wants) and
its angle grids on first use of ``Granule.angles``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from shapely.geometry import Polygon

from s2l2a.safe import layout
from s2l2a.safe.bands import BANDS, NATIVE_RESOLUTION
from s2l2a.safe.errors import (
    MetadataError,
    MissingFileError,
    ProductNameError,
    WrongLevelError,
)
from s2l2a.safe.mtd import GranuleEntry, ProductMetadata, read_product_metadata
from s2l2a.safe.names import (
    ProductName,
    oper_product_name_from_mtd,
    parse_product_name,
    strip_suffix,
)
from s2l2a.safe.tile import AngleGrids, GeoPosition, TileMetadata, read_angle_grids, read_tile_metadata

_L1C_KEY = re.compile(r"_(B\d\d|B8A|TCI)$")
_L2A_KEY = re.compile(r"_(B\d\d|B8A|TCI|SCL|AOT|WVP|CLD|SNW)_(10|20|60)m$")
_AUX_KEY = re.compile(r"AUX_[A-Z]+")


@dataclass(kw_only=True)
class Granule:
    """One tile of a product: where it is, its image files and, read from its tile metadata on first
    use, its geometry and angles.

    Planning opens tens of thousands of products and needs none of the tile metadata, so it is
    parsed when a field below asks for it (``open_l1c`` does so at once, ``metadata_only=True``
    never); the angle grids, three quarters of that parse, only when ``angles`` is read (a job).
    """

    granule_id: str  # folder name under GRANULE/
    path: Path
    metadata_path: Path
    band_index: dict[int, str] = field(default_factory=dict, repr=False)
    listed_tile: str | None = None  # the tile the product metadata names for this granule
    band_files: dict[str, Path] = field(default_factory=dict)
    images: dict[int, dict[str, Path]] = field(default_factory=dict)  # L1C: bands at native resolution
    aux_files: dict[str, Path] = field(default_factory=dict)
    missing_files: dict[str, Path] = field(default_factory=dict)  # listed in the XML, absent on disk
    _tile_metadata: TileMetadata | None = field(default=None, init=False, repr=False, compare=False)
    _angles: AngleGrids | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def tile_metadata(self) -> TileMetadata:
        """The tile metadata file without its angle grids (parsed once)."""
        if self._tile_metadata is None:
            self._tile_metadata = read_tile_metadata(self.metadata_path, self.band_index, angles=False)
        return self._tile_metadata

    @property
    def angles(self) -> AngleGrids:
        """Sun and view angle grids (parsed once, on first use)."""
        if self._angles is None:
            self._angles = read_angle_grids(self.metadata_path, self.band_index)
        return self._angles

    @property
    def tile(self) -> str:
        return self.tile_metadata.tile or self.listed_tile or ""

    @property
    def tile_id(self) -> str:  # long identifier from the tile metadata (TILE_ID)
        return self.tile_metadata.tile_id

    @property
    def sensing_time(self) -> datetime | None:
        return self.tile_metadata.sensing_time

    @property
    def epsg(self) -> int:
        return self.tile_metadata.epsg

    @property
    def geoposition(self) -> dict[int, GeoPosition]:
        return self.tile_metadata.geoposition

    @property
    def mean_sun_zenith(self) -> float | None:
        return self.tile_metadata.mean_sun_zenith

    @property
    def mean_sun_azimuth(self) -> float | None:
        return self.tile_metadata.mean_sun_azimuth

    @property
    def mean_view_zenith(self) -> dict[str, float]:
        return self.tile_metadata.mean_view_zenith

    @property
    def mean_view_azimuth(self) -> dict[str, float]:
        return self.tile_metadata.mean_view_azimuth

    @property
    def cloudy_pixel_percentage(self) -> float | None:
        return self.tile_metadata.cloudy_pixel_percentage


@dataclass(kw_only=True)
class _Product:
    path: Path
    name: ProductName
    metadata_path: Path
    level: str
    mission: str
    product_uri: str | None
    product_type: str | None
    tile: str | None
    tiles: list[str]
    sensing_time: datetime
    generation_time: datetime | None
    baseline: str | None
    cloud_cover: float | None
    footprint: Polygon | None
    sun_earth_u: float | None
    solar_irradiance: dict[str, float]
    granules: list[Granule]


@dataclass(kw_only=True)
class L1CProduct(_Product):
    """A Level-1C product: TOA reflectance = (DN + radio_add_offset[band]) / quantification_value."""

    quantification_value: float
    radio_add_offset: dict[str, float]


@dataclass(kw_only=True)
class L2AProduct(_Product):
    """A Level-2A product: BOA reflectance = (DN + boa_add_offset[band]) / boa_quantification_value."""

    boa_quantification_value: float
    boa_add_offset: dict[str, float]
    aot_quantification_value: float | None
    wvp_quantification_value: float | None
    product_uri_l1c: str | None = None

    def scale_offset(self, band: str) -> tuple[float, float]:
        """(scale, offset) with reflectance = DN * scale + offset, what GDAL, STAC's raster:bands and
        xarray's mask_and_scale apply."""
        return reflectance_scale_offset(self.boa_quantification_value, self.boa_add_offset.get(band, 0.0))


def reflectance_scale_offset(quantification: float, add_offset: float) -> tuple[float, float]:
    """ESA's rule ``(DN + ADD_OFFSET) / QUANTIFICATION`` as ``DN * scale + offset``."""
    return 1.0 / quantification, add_offset / quantification


def _product_name(product_dir: Path, md: ProductMetadata) -> ProductName:
    """Name from the folder, else PRODUCT_URI, else the old-format metadata file name; level must agree."""
    candidates = (lambda: product_dir.name, lambda: md.product_uri, lambda: oper_product_name_from_mtd(md.path.name))
    first: ProductName | None = None
    for candidate in candidates:  # in order, stopping at the first of the right level
        c = candidate()
        if not c:
            continue
        try:
            pn = parse_product_name(c)
        except ProductNameError:
            continue
        if pn.level == md.level:
            return pn
        first = first or pn
    if first is not None:
        return first
    raise ProductNameError(
        f"cannot name the product: neither the folder nor PRODUCT_URI {md.product_uri!r} is a Sentinel-2 name",
        product_dir,
    )


def _granule_dir(product_dir: Path, entry: GranuleEntry, n_entries: int) -> Path | None:
    for rel in entry.image_files:
        parts = Path(rel).parts
        if len(parts) >= 2 and parts[0] == "GRANULE":
            return product_dir / "GRANULE" / parts[1]
    direct = product_dir / "GRANULE" / entry.identifier
    if direct.is_dir():
        return direct
    gdir = product_dir / "GRANULE"
    subdirs = sorted(p for p in gdir.iterdir() if p.is_dir()) if gdir.is_dir() else []
    tile = entry.tile
    matches = [p for p in subdirs if tile and f"_T{tile}_" in f"{p.name}_"]
    if len(matches) == 1:
        return matches[0]
    if n_entries == 1 and len(subdirs) == 1:
        return subdirs[0]
    return direct if entry.image_ids_only else None


def _locate_images(
    product_dir: Path, gdir: Path, entry: GranuleEntry, level: str, mtd_path: Path
) -> tuple[dict[str, Path], dict[str, Path]]:
    """{key: path} of listed images present on disk and {key: expected path} of the missing ones.

    Keys are band names for L1C ("B01", "TCI") and "<res>:<band>" for L2A ("10:B02", "20:SCL").
    """
    found: dict[str, Path] = {}
    missing: dict[str, Path] = {}
    for rel in entry.image_files:
        stem = Path(rel).name
        for ext in layout.IMAGE_EXTENSIONS:
            if stem.endswith(ext):
                stem = stem[: -len(ext)]
        key = _image_key(stem, level)
        if key is None:
            continue
        hit, expected = layout.find_image(gdir / "IMG_DATA" if entry.image_ids_only else product_dir, rel,
                                          entry.image_format)
        if not layout.inside(product_dir, expected):  # candidates differ by extension only
            raise MetadataError(f"image path {rel!r} points outside the product", mtd_path)
        if hit is None:
            missing[key] = Path(expected)
        else:
            found[key] = hit
    if not entry.image_files:
        found.update(_glob_images(gdir, level))
    return found, missing


def _image_key(stem: str, level: str) -> str | None:
    if level == "L1C":
        m = _L1C_KEY.search(stem)
        return m.group(1) if m else None
    m = _L2A_KEY.search(stem)
    return f"{m.group(2)}:{m.group(1)}" if m else None


def _glob_images(gdir: Path, level: str) -> dict[str, Path]:
    """Fallback when the product XML lists no image of a granule: take what IMG_DATA holds."""
    out: dict[str, Path] = {}
    img = gdir / "IMG_DATA"
    files = sorted(img.glob("*")) if level == "L1C" else sorted(img.glob("R[126]0m/*"))
    for f in files:
        if f.suffix not in layout.IMAGE_EXTENSIONS or not f.is_file():
            continue
        key = _image_key(f.name[: -len(f.suffix)], level)
        if key:
            out.setdefault(key, f)
    return out


def _aux_files(gdir: Path) -> dict[str, Path]:
    aux = gdir / "AUX_DATA"
    out: dict[str, Path] = {}
    if aux.is_dir():
        for f in sorted(aux.iterdir()):
            if f.is_file():
                m = _AUX_KEY.search(f.name)
                out[m.group(0) if m else f.name] = f
    return out


def _build_granules(product_dir: Path, md: ProductMetadata, require_bands: bool,
                    metadata_only: bool = False) -> list[Granule]:
    entries = md.granules
    if not entries:
        gdir = product_dir / "GRANULE"
        entries = [
            GranuleEntry(p.name, None, None) for p in sorted(gdir.iterdir()) if p.is_dir()
        ] if gdir.is_dir() else []
    if not entries:
        raise MetadataError("product metadata lists no granule and GRANULE/ is empty", md.path)
    granules: list[Granule] = []
    for entry in entries:
        gdir = _granule_dir(product_dir, entry, len(entries))
        if gdir is not None and (not layout.inside(product_dir / "GRANULE", gdir) or gdir.name in ("", "..")):
            raise MetadataError(f"granule {entry.identifier!r} points outside GRANULE/", md.path)
        tl_path = layout.tile_metadata_file(gdir) if gdir is not None else None
        if tl_path is None and not require_bands and len(entries) == 1:
            tl_path = layout.tile_metadata_file(product_dir)  # flat metadata-only copy
            gdir = gdir or product_dir
        if gdir is None or tl_path is None:
            if require_bands:
                where = gdir or product_dir / "GRANULE" / entry.identifier
                raise MissingFileError(f"granule {entry.identifier} has no folder or tile metadata (MTD_TL.xml)", where)
            continue
        # a full open parses the tile file now (a broken one is an error of the open), its grids later
        tl = None if metadata_only else read_tile_metadata(tl_path, md.band_index, angles=False)
        found, missing = _locate_images(product_dir, gdir, entry, md.level, md.path)
        g = Granule(
            granule_id=gdir.name, path=gdir, metadata_path=tl_path, band_index=md.band_index,
            listed_tile=entry.tile, aux_files=_aux_files(gdir), missing_files=missing,
        )
        g._tile_metadata = tl
        if md.level == "L1C":
            g.band_files = found
            for band, f in found.items():  # same shape as L2A: resolution -> {band: path}
                g.images.setdefault(NATIVE_RESOLUTION.get(band, 10), {})[band] = f
            expected = [b for b in BANDS if b not in found]
        else:
            for key, p in found.items():
                res, band = key.split(":")
                g.images.setdefault(int(res), {})[band] = p
            for res in sorted(g.images):
                for band, p in g.images[res].items():
                    g.band_files.setdefault(band, p)
            expected = []
        if require_bands:
            if missing:
                key, p = next(iter(missing.items()))
                raise MissingFileError(f"band {key.split(':')[-1]} listed in {md.path.name} is missing", p)
            if expected:
                raise MissingFileError(
                    f"band {expected[0]} not found (metadata lists no file for it, none in IMG_DATA)",
                    gdir / "IMG_DATA",
                )
        granules.append(g)
    return granules


def _common(product_dir: Path, md: ProductMetadata, require_bands: bool, metadata_only: bool) -> dict:
    name = _product_name(product_dir, md)
    granules = _build_granules(product_dir, md, require_bands, metadata_only)
    tiles = [t for t in (e.tile for e in md.granules) if t] or [g.tile for g in granules if g.tile]
    if not tiles and name.tile:
        tiles = [name.tile]
    return dict(
        path=product_dir, name=name, metadata_path=md.path, level=md.level, mission=name.mission,
        product_uri=strip_suffix(md.product_uri) if md.product_uri else None, product_type=md.product_type,
        tile=tiles[0] if tiles else None, tiles=list(dict.fromkeys(tiles)),
        sensing_time=md.start_time or name.sensing_time, generation_time=md.generation_time or name.generation_time,
        baseline=md.baseline or name.baseline, cloud_cover=md.cloud_cover, footprint=md.footprint,
        sun_earth_u=md.sun_earth_u, solar_irradiance=md.solar_irradiance, granules=granules,
    )


def _all_bands(offsets: dict[str, float]) -> dict[str, float]:
    return {b: float(offsets.get(b, 0.0)) for b in BANDS}


def _read(path: Path) -> tuple[Path, ProductMetadata]:
    mtd = layout.product_metadata_file(path)
    product_dir = mtd.parent if path.is_file() else path
    return product_dir, read_product_metadata(mtd)


def _build(product_dir: Path, md: ProductMetadata, require_bands: bool,
           metadata_only: bool = False) -> L1CProduct | L2AProduct:
    common = _common(product_dir, md, require_bands, metadata_only)
    if md.level == "L1C":
        if md.quantification_value is None:  # read_product_metadata guarantees it; keep mypy honest
            raise MetadataError("missing QUANTIFICATION_VALUE", md.path)
        return L1CProduct(
            **common, quantification_value=md.quantification_value,
            radio_add_offset=_all_bands(md.radio_add_offset),
        )
    if md.boa_quantification_value is None:
        raise MetadataError("missing BOA_QUANTIFICATION_VALUE", md.path)
    return L2AProduct(
        **common, boa_quantification_value=md.boa_quantification_value,
        boa_add_offset=_all_bands(md.boa_add_offset), aot_quantification_value=md.aot_quantification_value,
        wvp_quantification_value=md.wvp_quantification_value, product_uri_l1c=md.product_uri_l1c,
    )


def open_product(path: Path | str, *, require_bands: bool = True) -> L1CProduct | L2AProduct:
    """Open an L1C or L2A SAFE directory; the level comes from its metadata, not its name."""
    product_dir, md = _read(Path(path))
    return _build(product_dir, md, require_bands)


def open_l1c(path: Path | str, *, require_bands: bool = True, metadata_only: bool = False) -> L1CProduct:
    """Open an L1C product; an L2A (by its metadata) raises WrongLevelError before anything else.

    ``metadata_only``: what planning needs (names, tile, times, baseline, footprint, cloud cover,
    every listed file present) from the product metadata alone; each granule's tile metadata is
    parsed only if one of its fields is read (a job), so a damaged tile file fails that job.
    """
    product_dir, md = _read(Path(path))
    if md.level != "L1C":
        raise WrongLevelError("is an L2A product, expected L1C", product_dir)
    product = _build(product_dir, md, require_bands, metadata_only)
    assert isinstance(product, L1CProduct)
    return product


def open_l2a(path: Path | str, *, require_bands: bool = True) -> L2AProduct:
    """Open an L2A product; an L1C (by its metadata) raises WrongLevelError before anything else."""
    product_dir, md = _read(Path(path))
    if md.level != "L2A":
        raise WrongLevelError("is an L1C product, expected L2A", product_dir)
    product = _build(product_dir, md, require_bands)
    assert isinstance(product, L2AProduct)
    return product
