"""What a Sen2Cor installation looks like, version by version, and what it lacks.

Two layouts exist:

- ``run`` (2.x): ESA's self-extracting ``Sen2Cor-02.xx.yy-Linux64.run`` leaves ``bin/L2A_Process`` (a
  shell wrapper), a bundled Python 2.7 and the package under ``lib/python*/site-packages/sen2cor``
  holding ``cfg/`` (GIPP templates + XSDs) and ``aux_data/`` (where the ESA-CCI land-cover files must
  be put by hand);
- ``zip`` (3.x, e.g. ``sen2cor_3.3.0_python_3.12_20250131.zip``): ``sen2cor_3.3.0_python_3.12/`` holds
  ``requirements.yml`` and ``SEN2COR_3/`` with ``L2A_Process.py``, ``cfg/`` and ``aux_data/`` (ECMWF CAMS
  under ``aux_data/ECMWF/daily`` and ``.../monthly``, the ESA-CCI files beside them). No interpreter
  comes with it: ``s2l2a sen2cor install`` builds one from ``requirements.yml`` and records it
  (:mod:`.locate`).

Users get the locations wrong, so this module knows them and says exactly what is missing, instead
of Sen2Cor failing an hour into a job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from s2l2a.errors import ConfigError
from s2l2a.sen2cor.locate import interpreter_for, is_script, locate, read_info

GIPP_NAMES = ("L2A_GIPP", "L2A_CAL_SC_GIPP", "L2A_CAL_AC_GIPP", "L2A_PB_GIPP")

# ESA-CCI aux file names, as the versions' L2A_CAL_SC_GIPP.xml reference them
LAND_COVER = "ESACCI-LC-L4-LCCS-Map-300m-P1Y-2015-v2.0.7.tif"
WATER_BODIES = "ESACCI-LC-L4-WB-Map-150m-P13Y-2000-v4.0.tif"
SNOW_COND_OLD = "ESACCI-LC-L4-Snow-Cond-500m-P13Y7D-2000-2012-v2.0"      # 2.5.5 .. 2.9
SNOW_COND_NEW = "ESACCI-LC-L4-Snow-Cond-500m-MONTHLY-2000-2012-v2.4"     # 2.10 and later

#: where Sen2Cor 3 reads ECMWF CAMS data below its aux_data: daily as sen2like's set-up links it
#: (``ln -s /data/CAMS/daily ./ECMWF/daily``), monthly beside it
CAMS_DIRS = {"daily": Path("ECMWF") / "daily", "monthly": Path("ECMWF") / "monthly"}


@dataclass(frozen=True)
class VersionTraits:
    """What differs between Sen2Cor versions for set-up purposes."""

    python: str                  # bundled interpreter family: "2.7" or "3"
    has_pb_gipp: bool            # L2A_PB_GIPP.xml + --GIP_L2A_PB exist (2.8+)
    esacci: bool                 # uses ESA-CCI aux data (2.5+)
    snow_condition_dir: str      # which ESA-CCI snow package it reads
    dem: str                     # "srtm" (CGIAR zips) or "copernicus"
    srtm_merge_bug: bool         # 2.9 merges multi-tile SRTM wrongly (lab workaround needed)
    cams: bool = False           # reads ECMWF CAMS (daily/monthly) from aux_data/ECMWF (3.x)


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
        cams=v >= (3, 0, 0),
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
    python: str | None                  # "run": the bundled Python's version ("2.7")
    templates: dict[str, Path] = field(default_factory=dict)   # "L2A_GIPP" -> .xml
    schemas: dict[str, Path] = field(default_factory=dict)     # "L2A_GIPP" -> .xsd
    missing: list[str] = field(default_factory=list)
    layout: str = "run"                 # "run" (bin/L2A_Process) or "zip" (SEN2COR_3/L2A_Process.py)
    interpreter: Path | None = None     # "zip": the environment's python that runs L2A_Process.py
    products: Any = None                # sen2cor.version.ProductRange its banner names, if it does

    @property
    def launcher(self) -> list[str]:
        """The argv that starts this Sen2Cor (before its input and options)."""
        if self.layout != "zip":
            return [str(self.l2a_process)]
        if self.interpreter is None:
            raise ConfigError("no Python environment for this Sen2Cor 3; install it with 's2l2a sen2cor install "
                              "ZIP' or name one with [sen2cor] python = PATH", self.root)
        return [str(self.interpreter), str(self.l2a_process)]

    @property
    def traits(self) -> VersionTraits:
        return traits(self.version)

    @property
    def cfg_dir(self) -> Path | None:
        return self.package_dir / "cfg" if self.package_dir else None

    @property
    def aux_data_dir(self) -> Path | None:
        return self.package_dir / "aux_data" if self.package_dir else None

    def cams_dirs(self) -> dict[str, Path]:
        """Where this version reads CAMS data, by kind ({} when it reads none from aux_data)."""
        if not self.traits.cams or self.aux_data_dir is None:
            return {}
        return {kind: self.aux_data_dir / rel for kind, rel in CAMS_DIRS.items()}

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
        lines = [f"Sen2Cor {self.version} at {self.root} ({'3.x zip' if self.layout == 'zip' else '2.x .run'} "
                 "layout)", f"  L2A_Process: {self.l2a_process}"]
        if self.layout == "zip":
            lines.append(f"  interpreter: {self.interpreter or 'none recorded'}")
        else:
            lines.append(f"  bundled Python: {self.python or 'not found'} (expected {t.python})")
        lines.append("  supported L1C product versions: "
                     + (str(self.products) if self.products is not None else "not stated by its banner"))
        lines += [f"  package: {self.package_dir or 'not found'}", f"  cfg: {self.cfg_dir or 'not found'}"]
        for name in GIPP_NAMES:
            if name in self.templates:
                xsd = "with XSD" if name in self.schemas else "NO XSD"
                lines.append(f"    {name}.xml ({xsd})")
        lines.append(f"  aux_data: {self.aux_data_dir or 'not found'}")
        if t.esacci and self.aux_data_dir is not None:
            absent = self.esacci_missing()
            lines.append("    ESA-CCI: " + (f"missing {', '.join(absent)}" if absent else
                                            f"present ({t.snow_condition_dir})"))
        if t.cams:
            from s2l2a.sen2cor.cams import describe_cams

            lines.extend(f"    {line}" for line in describe_cams(self))
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


def describe(path: Path | str | None = None, version: str | None = None,
             python: str | Path | None = None) -> Sen2CorInstall:
    """Inspect an installation: version and supported product versions (from the help banner unless
    ``version`` is given), layout, what is missing. ``python``: the interpreter of a 3.x zip install
    (default: the one its install recorded)."""
    exe = locate(path)
    if is_script(exe):
        return _describe_zip(exe, version, python)
    root = exe.resolve().parent.parent if exe.resolve().parent.name == "bin" else exe.resolve().parent
    products = None
    if version is None:
        info = read_info(exe)
        version, products = "{}.{}.{}".format(*info.number), info.products
    t = traits(version)
    pkg, py = _find_package(root)
    inst = Sen2CorInstall(root=root, l2a_process=exe, version=version, package_dir=pkg, python=py,
                          products=products)
    if pkg is None:
        inst.missing.append(f"package tree lib/python{t.python}*/site-packages/sen2cor under {root}")
        return inst
    if py is not None and not py.startswith(t.python.split(".")[0]):
        inst.missing.append(f"bundled Python {py} does not match Sen2Cor {version} (expects {t.python})")
    _check_package(inst, pkg)
    return inst


def _describe_zip(script: Path, version: str | None, python: str | Path | None) -> Sen2CorInstall:
    """A 3.x zip install: ``<root>/SEN2COR_3/L2A_Process.py``, run by the given or recorded interpreter."""
    script = script.absolute()
    pkg, root = script.parent, script.parent.parent
    interpreter: Path | None = None
    missing: list[str] = []
    try:
        interpreter = interpreter_for(script, python)
    except ConfigError as e:
        if version is None:
            raise
        missing.append(e.message)
    products = None
    if version is None:
        info = read_info(script, python=interpreter)
        version, products = "{}.{}.{}".format(*info.number), info.products
    inst = Sen2CorInstall(root=root, l2a_process=script, version=version, package_dir=pkg, python=None,
                          missing=missing, layout="zip", interpreter=interpreter, products=products)
    if not (root / "requirements.yml").is_file() and not (pkg / "requirements.yml").is_file():
        inst.missing.append(f"requirements.yml (the recipe of its environment) in {root}")
    _check_package(inst, pkg)
    from s2l2a.sen2cor.cams import dated_files

    for kind, folder in inst.cams_dirs().items():
        if not dated_files(folder):
            inst.missing.append(f"CAMS {kind} data in {folder} (link it with 's2l2a sen2cor aux --cams-{kind} DIR')")
    return inst


def _check_package(inst: Sen2CorInstall, pkg: Path) -> None:
    """What ``pkg`` lacks: GIPP templates and schemas in ``cfg/``, the ESA-CCI files in ``aux_data/``."""
    t = inst.traits
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
