"""ECMWF CAMS data for Sen2Cor 3: where it goes, which dates it covers, placing a user's copy.

Sen2Cor 3 reads CAMS aerosol/water-vapour/ozone data from ``SEN2COR_3/aux_data/ECMWF/daily`` and
``.../monthly`` (sen2like's set-up links a local ``CAMS/daily`` folder there; 2.11 instead read the
``AUX_CAMS*`` files inside the L1C, and runs on without them: "AUX_CAMS* file not present"). A
campaign whose dates the CAMS folders do not cover should be refused before its first job, so the
preflight asks this module which dates are covered.

File names are matched by the date in them: ``YYYYMMDD`` or ``YYYY-MM-DD`` for daily files, ``YYYYMM``
or ``YYYY-MM`` for monthly ones (a monthly file covers its month). ESA's exact CAMS file naming for
Sen2Cor 3 is not recorded in this project; files without a date in their name are counted as
undated, and with only undated files coverage cannot be told (the preflight warns then).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from s2l2a.errors import ConfigError

if TYPE_CHECKING:
    from s2l2a.sen2cor.layout import Sen2CorInstall

_DAY = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?:T?\d{2,6})?(?!\d)")   # a time may follow
_MONTH = re.compile(r"(?<!\d)(\d{4})-?(\d{2})(?!\d)")
#: at most this many files are looked at per folder (a CAMS archive of many years is big)
_MAX_FILES = 200_000


@dataclass
class Coverage:
    """Dates with daily CAMS data, months with monthly data, and files whose names carry no date."""

    days: set[date] = field(default_factory=set)
    months: set[tuple[int, int]] = field(default_factory=set)
    undated: int = 0

    def covers(self, day: date) -> bool:
        return day in self.days or (day.year, day.month) in self.months

    @property
    def empty(self) -> bool:
        return not self.days and not self.months

    def span(self) -> str:
        """``2024-01-01 .. 2024-03-31 (91 days)``, ``2024-01 .. 2024-12 (12 months)``, both, or "none"."""
        parts = []
        if self.days:
            parts.append(f"daily {min(self.days)} .. {max(self.days)} ({len(self.days)} days)")
        if self.months:
            lo, hi = min(self.months), max(self.months)
            parts.append(f"monthly {lo[0]}-{lo[1]:02d} .. {hi[0]}-{hi[1]:02d} ({len(self.months)} months)")
        if self.undated:
            parts.append(f"{self.undated} file(s) without a date in their name")
        return "; ".join(parts) or "no CAMS files"


def _day(y: str, m: str, d: str) -> date | None:
    try:
        return date(int(y), int(m), int(d))
    except ValueError:
        return None


def _files(folder: Path) -> Iterable[Path]:
    n = 0
    for root, _dirs, files in os.walk(folder, followlinks=True):
        for f in files:
            if f.startswith("."):
                continue
            n += 1
            if n > _MAX_FILES:
                return
            yield Path(root) / f


def dated_files(folder: Path) -> list[Path]:
    """Files in ``folder`` (links followed) whose names carry a date; [] for a missing folder."""
    if not folder.is_dir():
        return []
    return [f for f in _files(folder) if _MONTH.search(f.name) or _DAY.search(f.name)]


def scan(daily: Path | None, monthly: Path | None) -> Coverage:
    """What the daily and monthly folders cover (missing folders cover nothing)."""
    cov = Coverage()
    for folder, is_daily in ((daily, True), (monthly, False)):
        if folder is None or not folder.is_dir():
            continue
        for f in _files(folder):
            found = False
            for m in _DAY.finditer(f.name):
                d = _day(*m.groups())
                if d is not None:
                    found = True
                    if is_daily:
                        cov.days.add(d)
                    else:
                        cov.months.add((d.year, d.month))
            if not found and not is_daily:
                for m in _MONTH.finditer(f.name):
                    y, mo = int(m.group(1)), int(m.group(2))
                    if 1 <= mo <= 12:
                        cov.months.add((y, mo))
                        found = True
            if not found:
                cov.undated += 1
    return cov


def coverage(install: Sen2CorInstall) -> Coverage:
    dirs = install.cams_dirs()
    return scan(dirs.get("daily"), dirs.get("monthly"))


def uncovered(days: Iterable[date], cov: Coverage) -> list[date]:
    """The dates (sorted, once each) that no CAMS file covers."""
    return sorted({d for d in days if not cov.covers(d)})


def describe_cams(install: Sen2CorInstall) -> list[str]:
    """Lines for ``s2l2a sen2cor check``: each CAMS folder, present or missing, and what it covers."""
    lines = []
    for kind, folder in install.cams_dirs().items():
        n = len(dated_files(folder))
        state = f"{n} dated file(s)" if n else ("present, no dated files" if folder.is_dir() else "MISSING")
        lines.append(f"CAMS {kind}: {folder} ({state})")
    if install.cams_dirs():
        lines.append(f"CAMS covers: {coverage(install).span()}")
    return lines


def place(source: Path | str, install: Sen2CorInstall, kind: str) -> Path:
    """Link a folder of CAMS files into the install where Sen2Cor 3 reads them (``kind``: daily|monthly).

    Nothing is copied or deleted: the target becomes a symbolic link to ``source``. An existing link
    or empty folder there is replaced; a folder with files is refused (it may be the user's data).
    """
    dirs = install.cams_dirs()
    if kind not in ("daily", "monthly"):
        raise ConfigError(f"CAMS kind must be daily or monthly, not {kind!r}")
    if not dirs:
        raise ConfigError(f"Sen2Cor {install.version} reads no CAMS data from its aux_data (2.11 uses the "
                          "AUX_CAMS files inside each L1C)")
    src = Path(source).expanduser().absolute()
    if not src.is_dir():
        raise ConfigError("no such CAMS folder", src)
    found = dated_files(src)
    if not found:
        raise ConfigError("holds no file with a date (YYYYMMDD) in its name; is this a CAMS folder?", src)
    target = dirs[kind]
    if target.is_symlink():
        if target.resolve() == src.resolve():
            return target
        target.unlink()                  # only the link goes, not what it pointed to
    elif target.is_dir():
        if any(target.iterdir()):
            raise ConfigError(f"already holds CAMS {kind} files; move them away or link this folder to them",
                              target)
        target.rmdir()
    elif target.exists():
        raise ConfigError("exists and is not a folder", target)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(src, target_is_directory=True)
    return target
