"""What a Sen2Cor installation looks like, version by version, and what it lacks.

ESA ships every Sen2Cor 2.x/3.x for Linux as a self-extracting tree: ``bin/L2A_Process`` (a shell
wrapper), a bundled Python (2.7 up to 2.12, 3.x for Sen2Cor 3), and the package under
``lib/python*/site-packages/sen2cor`` holding ``cfg/`` (GIPP templates + XSDs) and ``aux_data/``
(where the ESA-CCI land-cover files must be put by hand). Users get the locations wrong, so this
module knows them and says exactly what is missing, instead of Sen2Cor failing an hour into a job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from s2l2a.errors import ConfigError
from s2l2a.sen2cor.locate import locate, read_info

GIPP_NAMES = ("L2A_GIPP", "L2A_CAL_SC_GIPP", "L2A_CAL_AC_GIPP", "L2A_PB_GIPP")

# ESA-CCI aux file names, as the versions' L2A_CAL_SC_GIPP.xml reference them
LAND_COVER = "ESACCI-LC-L4-LCCS-Map-300m-P1Y-2015-v2.0.7.tif"
WATER_BODIES = "ESACCI-LC-L4-WB-Map-150m-P13Y-2000-v4.0.tif"
SNOW_COND_OLD = "ESACCI-LC-L4-Snow-Cond-500m-P13Y7D-2000-2012-v2.0"      # 2.5.5 .. 2.9
SNOW_COND_NEW = "ESACCI-LC-L4-Snow-Cond-500m-MONTHLY-2000-2012-v2.4"     # 2.10 and later


@dataclass(frozen=True)
class VersionTraits:
    """What differs between Sen2Cor versions for set-up purposes."""

    python: str                  # bundled interpreter family: "2.7" or "3"
    has_pb_gipp: bool            # L2A_PB_GIPP.xml + --GIP_L2A_PB exist (2.8+)
    esacci: bool                 # uses ESA-CCI aux data (2.5+)
    snow_condition_dir: str      # which ESA-CCI snow package it reads
    dem: str                     # "srtm" (CGIAR zips) or "copernicus"
    srtm_merge_bug: bool         # 2.9 merges multi-tile SRTM wrongly (lab workaround needed)


def version_tuple(version: str) -> tuple[int, int, int]:
    """``"02.09.00"``/``"2.9"`` -> (2, 9, 0); raises ConfigError for anything else."""
    parts = version.strip().split(".")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"not a Sen2Cor version: {version!r}") from None
    if not 1 <= len(nums) <= 3:
        raise ConfigError(f"not a Sen2Cor version: {version!r}")
    nums += [0] * (3 - len(nums))
    return nums[0], nums[1], nums[2]


def traits(version: str) -> VersionTraits:
    """The set-up facts for one version (2.1 .. 3.x)."""
    v = version_tuple(version)
    return VersionTraits(
        python="3" if v >= (3, 0, 0) else "2.7",
        has_pb_gipp=v >= (2, 8, 0),
        esacci=v >= (2, 5, 0),
        snow_condition_dir=SNOW_COND_NEW if v >= (2, 10, 0) else SNOW_COND_OLD,
        dem="copernicus" if v >= (2, 11, 0) else "srtm",
        srtm_merge_bug=(2, 9, 0) <= v < (2, 10, 0),
    )


def home_name(version: str) -> str:
    """Sen2Cor's per-user home folder name (``~/sen2cor/2.8``)."""
    major, minor, _ = version_tuple(version)
    return f"{major}.{minor}"


def parse_banner(text: str) -> str | None:
    """Version "2.8.0" from an ``L2A_Process --help`` text (parsing itself lives in ``sen2cor.version``)."""
    from s2l2a.sen2cor.version import Sen2CorVersionError, parse_version

    try:
        major, minor, patch = parse_version(text)
    except Sen2CorVersionError:
        return None
    return f"{major}.{minor}.{patch}"


@dataclass
class Sen2CorInstall:
    """One Sen2Cor installation as found on disk."""

    root: Path
    l2a_process: Path
    version: str
    package_dir: Path | None
    python: str | None
    templates: dict[str, Path] = field(default_factory=dict)   # "L2A_GIPP" -> .xml
    schemas: dict[str, Path] = field(default_factory=dict)     # "L2A_GIPP" -> .xsd
    missing: list[str] = field(default_factory=list)

    @property
    def traits(self) -> VersionTraits:
        return traits(self.version)

    @property
    def cfg_dir(self) -> Path | None:
        return self.package_dir / "cfg" if self.package_dir else None

    @property
    def aux_data_dir(self) -> Path | None:
        return self.package_dir / "aux_data" if self.package_dir else None

    @property
    def user_home(self) -> Path:
        """Where Sen2Cor keeps per-user state when SEN2COR_HOME is not set."""
        return Path.home() / "sen2cor" / home_name(self.version)

    def esacci_missing(self) -> list[str]:
        """ESA-CCI files this version reads that are absent from aux_data."""
        if not self.traits.esacci or self.aux_data_dir is None:
            return []
        names = [LAND_COVER, WATER_BODIES, self.traits.snow_condition_dir]
        return [n for n in names if not (self.aux_data_dir / n).exists()]

    def report_lines(self) -> list[str]:
        """Human-readable lines for ``s2l2a sen2cor check``."""
        t = self.traits
        lines = [
            f"Sen2Cor {self.version} at {self.root}",
            f"  L2A_Process: {self.l2a_process}",
            f"  bundled Python: {self.python or 'not found'} (expected {t.python})",
            f"  package: {self.package_dir or 'not found'}",
            f"  cfg: {self.cfg_dir or 'not found'}",
        ]
        for name in GIPP_NAMES:
            if name in self.templates:
                xsd = "with XSD" if name in self.schemas else "NO XSD"
                lines.append(f"    {name}.xml ({xsd})")
        lines.append(f"  aux_data: {self.aux_data_dir or 'not found'}")
        lines.append(f"  DEM: {'Copernicus DEM' if t.dem == 'copernicus' else 'SRTM 90 m (CGIAR zips)'}"
                     + (" - 2.9 multi-tile merge bug: use 's2l2a dem' (one mosaic per tile name)"
                        if t.srtm_merge_bug else ""))
        lines.append(f"  user home (SEN2COR_HOME default): {self.user_home}")
        if self.missing:
            lines.append("missing:")
            lines.extend(f"  - {m}" for m in self.missing)
        else:
            lines.append("nothing missing")
        return lines


def _find_package(root: Path) -> tuple[Path | None, str | None]:
    cands = sorted(root.glob("lib/python*/site-packages/sen2cor"))
    if not cands:
        return None, None
    pkg = cands[-1]
    py = pkg.parent.parent.name.removeprefix("python")
    return pkg, py


def describe(path: Path | str | None = None, version: str | None = None) -> Sen2CorInstall:
    """Inspect an installation: version (from the help banner unless given), layout, what is missing."""
    exe = locate(path)
    root = exe.resolve().parent.parent if exe.resolve().parent.name == "bin" else exe.resolve().parent
    if version is None:
        version = "{}.{}.{}".format(*read_info(exe).number)
    t = traits(version)
    pkg, py = _find_package(root)
    inst = Sen2CorInstall(root=root, l2a_process=exe, version=version, package_dir=pkg, python=py)
    if pkg is None:
        inst.missing.append(f"package tree lib/python{t.python}*/site-packages/sen2cor under {root}")
        return inst
    if py is not None and not py.startswith(t.python.split(".")[0]):
        inst.missing.append(f"bundled Python {py} does not match Sen2Cor {version} (expects {t.python})")
    cfg = pkg / "cfg"
    wanted = [n for n in GIPP_NAMES if n != "L2A_PB_GIPP" or t.has_pb_gipp]
    for name in wanted:
        xml, xsd = cfg / f"{name}.xml", cfg / f"{name}.xsd"
        if xml.is_file():
            inst.templates[name] = xml
        else:
            inst.missing.append(f"GIPP template {xml}")
        if xsd.is_file():
            inst.schemas[name] = xsd
        else:
            inst.missing.append(f"GIPP schema {xsd}")
    if t.esacci:
        aux = pkg / "aux_data"
        if not aux.is_dir():
            inst.missing.append(f"aux_data directory {aux}")
        for n in inst.esacci_missing():
            inst.missing.append(f"ESA-CCI {n} in {aux} (install with 's2l2a sen2cor aux --esacci FILE')")
    return inst
