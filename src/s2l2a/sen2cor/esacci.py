"""Install the ESA-CCI land-cover package Sen2Cor's scene classification reads (2.5 and later).

ESA distributes the files as zip/tar(.gz) packages, sometimes nested (a zip holding tars); 2.10
changed the snow-condition product (monthly v2.4 instead of weekly v2.0). Users unpack them by hand
into a folder deep inside the installation and often into the wrong one. Here the package is
extracted safely into a staging folder next to ``aux_data`` (nothing is written outside the target;
archive-bomb limits are checked while expanding, nested archives included), the three items the
version's own ``L2A_CAL_SC_GIPP.xml`` names are found wherever they sit in the package, checked
(rasters open with rasterio), and renamed into ``aux_data``.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

from lxml import etree

from s2l2a.archive import ArchiveLimits, UnsafeArchiveError, safe_extract
from s2l2a.errors import ConfigError
from s2l2a.sen2cor.layout import LAND_COVER, WATER_BODIES, Sen2CorInstall

_NESTED_MAX = 3
_RASTER_EXT = (".tif", ".tiff", ".nc")
#: ESA's packages are a few GB expanded (the 2.10+ one about 5 GB); 16 GB leaves room, a bomb stops there
ESACCI_LIMITS = ArchiveLimits(max_bytes=16 * 10**9)


@dataclass(frozen=True)
class EsacciNames:
    land_cover: str
    water_bodies: str
    snow_condition_dir: str


def expected_names(install: Sen2CorInstall) -> EsacciNames:
    """The file names this installation reads: from its own L2A_CAL_SC_GIPP.xml, else the version table."""
    tpl = install.templates.get("L2A_CAL_SC_GIPP")
    found: dict[str, str] = {}
    if tpl is not None:
        try:
            root = etree.parse(str(tpl), etree.XMLParser(resolve_entities=False, no_network=True)).getroot()
            for tag in ("ESACCI_LandCover_Map", "ESACCI_WaterBodies_Map", "ESACCI_SnowCondition_Map_Dir"):
                node = next(root.iter(tag), None)
                if node is not None and node.text and node.text.strip():
                    found[tag] = node.text.strip()
        except (OSError, etree.XMLSyntaxError):
            found = {}
    return EsacciNames(found.get("ESACCI_LandCover_Map", LAND_COVER),
                       found.get("ESACCI_WaterBodies_Map", WATER_BODIES),
                       found.get("ESACCI_SnowCondition_Map_Dir", install.traits.snow_condition_dir))


def _is_archive(p: Path) -> bool:
    if not p.is_file():
        return False
    if zipfile.is_zipfile(p):
        return True
    try:
        return tarfile.is_tarfile(p)
    except OSError:
        return False


def _expanded(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _unpack_nested(root: Path, limits: ArchiveLimits) -> None:
    """Extract archives found inside the package (ESA's zip holds tars), safely, a few levels deep.

    The package's size limit holds for everything it expands to: each inner archive gets what is left.
    """
    for _ in range(_NESTED_MAX):
        inner = [p for p in root.rglob("*") if p.suffix.lower() in (".zip", ".tar", ".gz", ".tgz")
                 and _is_archive(p)]
        if not inner:
            return
        for p in inner:
            left = limits.max_bytes - _expanded(root) + p.stat().st_size
            safe_extract(p, p.parent, replace(limits, max_bytes=max(0, left)))
            p.unlink()


def _find(root: Path, name: str, want_dir: bool) -> Path | None:
    hits = [p for p in root.rglob(name) if p.is_dir() == want_dir]
    return min(hits, key=lambda p: len(p.parts)) if hits else None


def _check_raster(path: Path) -> None:
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(path) as ds:
            if ds.width == 0 or ds.height == 0:
                raise ConfigError("ESA-CCI raster is empty", path)
            ds.read(1, window=((0, 1), (0, min(ds.width, 16))))
    except RasterioIOError as e:
        raise ConfigError(f"ESA-CCI file does not open as a raster: {e}", path) from None


def verify(aux_dir: Path, names: EsacciNames) -> list[Path]:
    """Check the three items in ``aux_dir``: both maps open, the snow folder holds rasters."""
    lc, wb, snow = aux_dir / names.land_cover, aux_dir / names.water_bodies, aux_dir / names.snow_condition_dir
    for f in (lc, wb):
        if not f.is_file():
            raise ConfigError("ESA-CCI file missing", f)
        _check_raster(f)
    if not snow.is_dir():
        raise ConfigError("ESA-CCI snow-condition folder missing", snow)
    rasters = sorted(p for p in snow.rglob("*") if p.suffix.lower() in _RASTER_EXT and p.is_file())
    if not rasters:
        raise ConfigError("ESA-CCI snow-condition folder holds no .tif/.nc files", snow)
    for p in rasters:
        if p.suffix.lower() != ".nc":   # NetCDF needs GDAL's netCDF driver; its names are checked above
            _check_raster(p)
    return [lc, wb, snow]


def install_esacci(package: Path | str, install: Sen2CorInstall,
                   limits: ArchiveLimits | None = None) -> list[Path]:
    """Extract ``package`` and place the land-cover, water-body and snow-condition data for ``install``.

    Idempotent: when the items are already in place and valid, the package is not even opened.
    ``limits`` (default :data:`ESACCI_LIMITS`) bound what the package may expand to, nested archives included.
    """
    package = Path(package).expanduser()
    if not package.is_file():
        raise ConfigError("no such ESA-CCI package", package)
    if not install.traits.esacci:
        raise ConfigError(f"Sen2Cor {install.version} does not use ESA-CCI aux data")
    aux = install.aux_data_dir
    if aux is None:
        raise ConfigError("installation has no sen2cor package tree (no aux_data folder)", install.root)
    names = expected_names(install)
    try:
        return verify(aux, names)
    except ConfigError:
        pass
    aux.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".s2l2a-esacci-", dir=aux))
    try:
        limits = limits or ESACCI_LIMITS
        try:
            safe_extract(package, staging, limits)
            _unpack_nested(staging, limits)
        except UnsafeArchiveError as e:
            raise ConfigError(e.message, package) from None
        items = [(names.land_cover, False), (names.water_bodies, False), (names.snow_condition_dir, True)]
        found: list[tuple[Path, str]] = []
        for name, is_dir in items:
            hit = _find(staging, name, is_dir)
            if hit is None:
                other = "MONTHLY" if "P13Y7D" in name else "P13Y7D"
                hint = ""
                if is_dir and any(other in p.name for p in staging.rglob("*Snow-Cond*")):
                    hint = (f" (this package is for Sen2Cor {'2.10 and later' if other == 'MONTHLY' else 'up to 2.9'}; "
                            f"Sen2Cor {install.version} needs {name})")
                raise ConfigError(f"package lacks {name}{hint}", package)
            found.append((hit, name))
        for hit, name in found:
            dest = aux / name
            if dest.is_dir():
                shutil.rmtree(dest)
            elif dest.exists():
                dest.unlink()
            hit.replace(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return verify(aux, names)
