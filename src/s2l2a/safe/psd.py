"""The product version (PSD, Product Specification Document) of a Level-1C product.

Sen2Cor decides whether it can read an L1C by this number, not by the processing baseline: its
banner says "supporting Level-1C product version 14.2 - 14.9" (2.11) or "15.0" (3.3.0), and a 2.11
given a newer product warns "Product versions > 14.9 are not implemented yet." The number is in the
metadata ESA writes, never in the product name:

- the datastrip metadata (``DATASTRIP/*/MTD_DS.xml``, old format ``S2?_OPER_MTD_L1C_DS_*.xml``)
  names its schema folder, e.g. ``.../schemas/14.08.02/PSD/S2_PDI_Level-1C_Datastrip_Metadata.xsd``
  for a baseline 04.00 product: version 14.8;
- every metadata file's namespace names the major version only (``https://psd-14.sentinel2...``).

Copies without datastrip metadata (some mirrors, decimated samples) give only the major version.
Only the first few KB of a file are read: this runs for every product a campaign plans.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_HEAD_BYTES = 8192
_SCHEMA_DIR = re.compile(rb"schemas/(\d{1,2})\.(\d{1,2})(?:\.\d+)?/PSD/")
_NAMESPACE = re.compile(rb"https?://psd-(\d{1,2})\.sentinel2\.eo\.esa\.int/")
_DATASTRIP_GLOBS = ("DATASTRIP/*/MTD_DS.xml", "DATASTRIP/*/S2?_OPER_MTD_L1C_DS_*.xml")
_PRODUCT_GLOBS = ("MTD_MSIL1C.xml", "S2?_OPER_MTD_SAFL1C_*.xml")


@dataclass(frozen=True, order=True)
class ProductVersion:
    """A PSD version; ``minor`` is None when only the major version is written (namespace only)."""

    major: int
    minor: int | None = None
    source: str = ""            # where it was read: "datastrip schema", "namespace of MTD_MSIL1C.xml", ...

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}" if self.minor is not None else f"{self.major}.x"

    @property
    def number(self) -> tuple[int, int] | None:
        """(major, minor) when both are known."""
        return (self.major, self.minor) if self.minor is not None else None


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(_HEAD_BYTES)
    except OSError:
        return b""


def _first(product_dir: Path, patterns: tuple[str, ...]) -> list[Path]:
    return [p for pattern in patterns for p in sorted(product_dir.glob(pattern)) if p.is_file()]


def read_product_version(product_dir: Path | str) -> ProductVersion | None:
    """The PSD version of the L1C at ``product_dir`` from its metadata; None when none says it."""
    product_dir = Path(product_dir)
    datastrips = _first(product_dir, _DATASTRIP_GLOBS)
    for ds in datastrips:
        m = _SCHEMA_DIR.search(_head(ds))
        if m:
            return ProductVersion(int(m.group(1)), int(m.group(2)), f"datastrip schema in {ds.name}")
    for f in datastrips + _first(product_dir, _PRODUCT_GLOBS):
        m = _NAMESPACE.search(_head(f))
        if m:
            return ProductVersion(int(m.group(1)), None, f"namespace of {f.name}")
    return None
