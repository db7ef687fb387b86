"""Per-campaign GIPP files written from the installation's own templates, validated, hashed.

Editing the installed ``cfg/*.xml`` by hand is how labs lose track of which parameters produced which
L2A: the file changes under running jobs and nobody knows its state last month. Here the templates
are only read; each campaign gets its own copies with the user's settings, every copy is validated
against the same installation's XSD (offline: lxml, no network, no entities) before a job starts,
and its SHA-256 is recorded with every job so an output traces back to its exact parameters.

A setting is written only into a version whose template has that element: asking for ``nr_threads``
on Sen2Cor 2.1.2 (which has ``Nr_Processes``) is an error naming the setting, never a silent no-op.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from s2l2a.errors import ConfigError
from s2l2a.fsutil import temp_name, write_json_atomic

# setting name -> (GIPP file stem, element name, kind)
# kinds: "bool" (format follows the template: TRUE/FALSE, true/false or 1/0), "dir" (trailing slash
# unless NONE), "str", "int", "baseline" ("05.10")
SETTINGS: dict[str, tuple[str, str, str]] = {
    "log_level": ("L2A_GIPP", "Log_Level", "str"),
    "nr_threads": ("L2A_GIPP", "Nr_Threads", "str"),
    "dem_directory": ("L2A_GIPP", "DEM_Directory", "dir"),
    "dem_reference": ("L2A_GIPP", "DEM_Reference", "str"),
    "force_exit_on_dem_error": ("L2A_GIPP", "Force_Exit_On_DEM_Error", "bool"),
    "generate_dem_output": ("L2A_GIPP", "Generate_DEM_Output", "bool"),
    "generate_tci_output": ("L2A_GIPP", "Generate_TCI_Output", "bool"),
    "downsample_20_to_60": ("L2A_GIPP", "Downsample_20_to_60", "bool"),
    "median_filter": ("L2A_GIPP", "Median_Filter", "int"),
    "aerosol_type": ("L2A_GIPP", "Aerosol_Type", "str"),
    "mid_latitude": ("L2A_GIPP", "Mid_Latitude", "str"),
    "ozone_content": ("L2A_GIPP", "Ozone_Content", "str"),
    "wv_correction": ("L2A_GIPP", "WV_Correction", "int"),
    "cirrus_correction": ("L2A_GIPP", "Cirrus_Correction", "bool"),
    "terrain_correction": ("L2A_GIPP", "DEM_Terrain_Correction", "bool"),
    "brdf_correction": ("L2A_GIPP", "BRDF_Correction", "int"),
    "visibility": ("L2A_GIPP", "Visibility", "str"),
    "processing_baseline": ("L2A_PB_GIPP", "Baseline_Version", "baseline"),
    "snow_map": ("L2A_CAL_SC_GIPP", "Snow_Map", "str"),
    "esacci_water_bodies_map": ("L2A_CAL_SC_GIPP", "ESACCI_WaterBodies_Map", "str"),
    "esacci_land_cover_map": ("L2A_CAL_SC_GIPP", "ESACCI_LandCover_Map", "str"),
    "esacci_snow_condition_map_dir": ("L2A_CAL_SC_GIPP", "ESACCI_SnowCondition_Map_Dir", "str"),
}
ALIASES = {"ozone": "ozone_content", "dem_terrain_correction": "terrain_correction"}

# the L2A_Process option that hands each file to Sen2Cor
OPTIONS = {"L2A_GIPP": "--GIP_L2A", "L2A_CAL_SC_GIPP": "--GIP_L2A_SC", "L2A_CAL_AC_GIPP": "--GIP_L2A_AC",
           "L2A_PB_GIPP": "--GIP_L2A_PB"}
RECORD = "gipp.json"
ALWAYS = ("L2A_GIPP", "L2A_CAL_SC_GIPP", "L2A_PB_GIPP")   # AC only when it is changed or asked for


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def _format(kind: str, value: Any, current: str, name: str) -> str:
    if kind == "bool":
        if not isinstance(value, bool):
            if str(value).strip().upper() in ("TRUE", "1", "YES"):
                value = True
            elif str(value).strip().upper() in ("FALSE", "0", "NO"):
                value = False
            else:
                raise ConfigError(f"{name}: must be true or false, not {value!r}")
        cur = current.strip()
        if cur in ("0", "1"):
            return "1" if value else "0"
        if cur in ("true", "false"):
            return "true" if value else "false"
        return "TRUE" if value else "FALSE"
    if kind == "dir":
        text = str(value)
        if text.upper() == "NONE":
            return "NONE"
        return text if text.endswith("/") else text + "/"   # Sen2Cor concatenates names to it
    if kind == "int":
        if isinstance(value, bool) or not str(value).lstrip("-").isdigit():
            raise ConfigError(f"{name}: must be an integer, not {value!r}")
        return str(int(value))
    if kind == "baseline":
        text = str(value)
        parts = text.split(".")
        if len(parts) != 2 or not all(p.isdigit() and len(p) == 2 for p in parts):
            raise ConfigError(f"{name}: must look like \"05.10\", not {value!r}")
        return text
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(value)


def load_schema(xsd: Path) -> etree.XMLSchema:
    try:
        return etree.XMLSchema(etree.parse(str(xsd), _parser()))
    except (OSError, etree.XMLSyntaxError, etree.XMLSchemaParseError) as e:
        raise ConfigError(f"unreadable XML schema: {e}", xsd) from None


def validate(xml: Path, xsd: Path) -> None:
    """Raise a one-line ConfigError naming the first schema violation (line and element)."""
    schema = load_schema(xsd)
    try:
        doc = etree.parse(str(xml), _parser())
    except (OSError, etree.XMLSyntaxError) as e:
        raise ConfigError(f"not well-formed XML: {e}", xml) from None
    if not schema.validate(doc):
        err = schema.error_log.last_error
        raise ConfigError(f"invalid against {xsd.name}: line {err.line}: {err.message}", xml)


@dataclass
class GippSet:
    """The GIPP files of one campaign: paths, hashes, the options that pass them to L2A_Process."""

    directory: Path
    version: str
    files: dict[str, Path] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    validated: dict[str, bool] = field(default_factory=dict)

    def options(self) -> list[str]:
        """``["--GIP_L2A", path, ...]`` for the command line (PB only where the version has it)."""
        out: list[str] = []
        for stem, path in self.files.items():
            out += [OPTIONS[stem], str(path)]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"directory": str(self.directory), "version": self.version,
                "files": {k: str(v) for k, v in self.files.items()}, "sha256": dict(self.hashes),
                "validated": dict(self.validated)}

    def save(self, extra: Mapping[str, Any] | None = None) -> Path:
        """Write ``gipp.json`` beside the files: what the runner records with every job."""
        return write_json_atomic(self.directory / RECORD, self.to_dict() | dict(extra or {}))

    @classmethod
    def load(cls, directory: Path | str) -> GippSet:
        """The campaign's GIPP set as written by ``s2l2a sen2cor gipp`` (ConfigError when absent)."""
        path = Path(directory) / RECORD
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError("no GIPP files written yet; run 's2l2a sen2cor gipp'", path) from None
        except (OSError, ValueError) as e:
            raise ConfigError(f"unreadable GIPP record: {e}", path) from None
        return cls(directory=Path(data["directory"]), version=data["version"],
                   files={k: Path(v) for k, v in data["files"].items()}, hashes=dict(data["sha256"]),
                   validated=dict(data.get("validated", {})))


def normalise(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Canonical setting names; unknown names are errors (typos must not pass silently)."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        k = ALIASES.get(key.lower(), key.lower())
        if k not in SETTINGS:
            raise ConfigError(f"unknown GIPP setting {key!r} (known: {', '.join(sorted(SETTINGS))})")
        out[k] = value
    return out


def write_gipps(templates: Mapping[str, Path], out_dir: Path | str, settings: Mapping[str, Any],
                *, version: str, schemas: Mapping[str, Path] | None = None, require_schema: bool = True,
                include_ac: bool = False) -> GippSet:
    """Write the campaign's GIPP copies into ``out_dir`` and validate each one.

    ``templates``/``schemas`` map a stem ("L2A_GIPP") to the installation's .xml/.xsd. Raises
    ConfigError naming the setting when the version's template lacks its element, and naming the file
    and line when a written copy does not validate. Files are replaced atomically.
    """
    out_dir = Path(out_dir)
    wanted = normalise(settings)
    schemas = dict(schemas or {})
    by_file: dict[str, dict[str, Any]] = {}
    for key, value in wanted.items():
        stem = SETTINGS[key][0]
        if stem not in templates:
            raise ConfigError(f"setting {key!r} needs {stem}.xml, which Sen2Cor {version} does not have")
        by_file.setdefault(stem, {})[key] = value
    stems = [s for s in templates if s in ALWAYS or s in by_file or (include_ac and s == "L2A_CAL_AC_GIPP")]
    out_dir.mkdir(parents=True, exist_ok=True)
    result = GippSet(directory=out_dir, version=version)
    staged: list[tuple[str, Path, Path, bool]] = []      # all validated before any is replaced
    try:
        for stem in stems:
            src = Path(templates[stem])
            try:
                doc = etree.parse(str(src), _parser())
            except (OSError, etree.XMLSyntaxError) as e:
                raise ConfigError(f"unreadable GIPP template: {e}", src) from None
            for key, value in by_file.get(stem, {}).items():
                element = SETTINGS[key][1]
                nodes = list(doc.iter(element))
                if not nodes:
                    raise ConfigError(f"setting {key!r} ({element}) is not in Sen2Cor {version}'s {stem}.xml",
                                      src)
                if len(nodes) > 1:
                    raise ConfigError(f"setting {key!r}: {element} occurs {len(nodes)} times in {stem}.xml", src)
                nodes[0].text = _format(SETTINGS[key][2], value, nodes[0].text or "", key)
            dest = out_dir / f"{stem}.xml"
            tmp = temp_name(dest)
            doc.write(str(tmp), xml_declaration=True, encoding="UTF-8")
            staged.append((stem, tmp, dest, False))
            xsd = schemas.get(stem)
            try:
                if xsd is not None:
                    validate(tmp, Path(xsd))
                elif require_schema:
                    raise ConfigError(f"no {stem}.xsd in the installation to validate against", src)
            except ConfigError as e:
                raise ConfigError(f"{e.message} (setting values: {by_file.get(stem, {})})", dest) from None
            staged[-1] = (stem, tmp, dest, xsd is not None)
    except BaseException:
        for _, tmp, _, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for stem, tmp, dest, checked in staged:
        os.replace(tmp, dest)
        result.files[stem] = dest
        result.hashes[stem] = sha256(dest)
        result.validated[stem] = checked
    return result


def write_for_install(install: Any, out_dir: Path | str, settings: Mapping[str, Any],
                      *, include_ac: bool = False) -> GippSet:
    """``write_gipps`` with the templates and XSDs of a ``layout.Sen2CorInstall``."""
    if not install.templates:
        raise ConfigError("no GIPP templates found in this installation", install.root)
    return write_gipps(install.templates, out_dir, settings, version=install.version,
                       schemas=install.schemas, include_ac=include_ac)


def verify(gipps: GippSet, schemas: Mapping[str, Path]) -> dict[str, str]:
    """Preflight: every file still validates and still has its recorded hash; returns the hashes."""
    for stem, path in gipps.files.items():
        if not path.is_file():
            raise ConfigError("GIPP file vanished; re-run 's2l2a sen2cor gipp'", path)
        if stem in schemas:
            validate(path, Path(schemas[stem]))
        h = sha256(path)
        if gipps.hashes.get(stem) not in (None, h):
            raise ConfigError("GIPP file changed since it was written; re-run 's2l2a sen2cor gipp'", path)
        gipps.hashes[stem] = h
    return dict(gipps.hashes)
