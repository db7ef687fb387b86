"""What made an L2A: the processor, its version, the GIPP files (SHA-256) that ran, software versions.

The campaign report and the STAC items both show it. It is read from the record of the run itself
(the job log, the product's own processing report), never from the campaign's GIPP files of today,
which ``s2l2a sen2cor gipp`` may have rewritten since the product was made.

Sources, in order:

- the job log: each processor writes one line per parameter file it was given,
  ``s2l2a: --GIP_L2A /path/L2A_GIPP.xml <sha256>`` (Sen2Cor: the ``--GIP_*`` arguments of the run);
  the last line of each name wins (a log holds every attempt, the last one made the product);
- the built-in processor's ``GRANULE/*/QI_DATA/builtin_report.json`` (``gipp_sha256``, ``software``,
  and the terrain: which DEM, or flat), which travels with the product, so a product moved out of its
  campaign still says what made it;
- ``PROCESSOR_NAME`` / ``PROCESSOR_VERSION`` of the product's MTD_MSIL2A.xml (built-in products);
- where the L2A is gone (``--keep derived`` deleted it, or the built-in's deliverable run never
  wrote it): the copy its derived folder's ``derived.json`` took of the above when it was made.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: one recorded parameter file in a job log (the line may carry a time stamp before it)
GIPP_LINE = re.compile(r"s2l2a: --(GIP_[A-Za-z0-9_]+) (.*) ([0-9a-f]{64})\s*$")
BUILTIN_REPORT = "builtin_report.json"


@dataclass
class Provenance:
    """How one L2A was made (empty fields: not recorded)."""

    processor: str | None = None
    processor_version: str | None = None
    gipp_sha256: dict[str, str] = field(default_factory=dict)  # GIPP name (GIP_L2A, ...) -> SHA-256
    software: dict[str, str] = field(default_factory=dict)     # name -> version
    terrain: str | None = None  # built-in: "DEM <which>" or "flat (no DEM) ..."; None: not recorded

    def as_dict(self) -> dict[str, Any]:
        """What a derived folder records (``derived.json``'s ``provenance``)."""
        return asdict(self)

    def fill_from(self, recorded: Any) -> None:
        """Fields not known here from a recorded :meth:`as_dict` (anything malformed is ignored)."""
        if not isinstance(recorded, dict):
            return
        for key in ("processor", "processor_version", "terrain"):
            if getattr(self, key) is None and isinstance(recorded.get(key), str):
                setattr(self, key, recorded[key])
        for key in ("gipp_sha256", "software"):
            got = recorded.get(key)
            if isinstance(got, dict):
                for k, v in got.items():
                    getattr(self, key).setdefault(str(k), str(v))


def gipps_from_log(log_path: Path | str | None) -> dict[str, str]:
    """The GIPP files recorded in a job log, name -> SHA-256 ({} when none or unreadable)."""
    out: dict[str, str] = {}
    if not log_path:
        return out
    try:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if "s2l2a: --GIP_" in line and (m := GIPP_LINE.search(line)):
                    out[m.group(1)] = m.group(3)
    except OSError:
        return {}
    return out


def _builtin_report(l2a: Path) -> dict:
    for p in sorted(l2a.glob(f"GRANULE/*/QI_DATA/{BUILTIN_REPORT}")):
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            return data
    return {}


def _terrain(report: dict) -> str | None:
    """The built-in report's terrain: the DEM it read (``dem.dem``), else its flat description."""
    dem = report.get("dem")
    if isinstance(dem, dict) and dem.get("dem"):
        return f"DEM {dem['dem']}"
    terrain = report.get("terrain")
    if isinstance(terrain, str) and terrain.startswith("flat"):
        return "flat (no DEM)" + terrain[len("flat"):].replace(" (no DEM)", "")
    return None


def _mtd_processor(l2a: Path) -> tuple[str | None, str | None]:
    from s2l2a.errors import S2L2AError
    from s2l2a.safe.xml import parse_xml, text

    mtd = l2a / "MTD_MSIL2A.xml"
    if not mtd.is_file():
        return None, None
    try:
        root = parse_xml(mtd)
    except S2L2AError:  # a damaged MTD only loses the processor fields here
        return None, None
    return text(root, "PROCESSOR_NAME"), text(root, "PROCESSOR_VERSION")


def read_provenance(l2a: Path | str | None = None, log_path: Path | str | None = None, *,
                    processor: str | None = None, processor_version: str | None = None,
                    derived: Path | str | None = None) -> Provenance:
    """Everything recorded about how ``l2a`` was made; ``processor``/``processor_version`` (the
    campaign store's record) win over the product's own MTD. ``derived``: its derived folder, read
    when the L2A is not there."""
    prov = Provenance(processor=processor, processor_version=processor_version)
    l2a = Path(l2a) if l2a else None
    if l2a is not None and l2a.is_dir():
        report = _builtin_report(l2a)
        gipps = report.get("gipp_sha256")
        if isinstance(gipps, dict):
            prov.gipp_sha256.update({str(k): str(v) for k, v in gipps.items()})
        software = report.get("software")
        if isinstance(software, dict):
            prov.software.update({str(k): str(v) for k, v in software.items()})
        prov.terrain = _terrain(report)
        if prov.processor is None or prov.processor_version is None:
            name, version = _mtd_processor(l2a)
            prov.processor = prov.processor or name
            prov.processor_version = prov.processor_version or version
    elif derived is not None:
        from s2l2a.outputs.derive import DerivedResult, DeriveError

        try:
            prov.fill_from(DerivedResult.load(derived).provenance)
        except DeriveError:
            pass
    prov.gipp_sha256.update(gipps_from_log(log_path))
    if prov.processor and prov.processor_version:
        prov.software.setdefault(prov.processor, prov.processor_version)
    return prov
