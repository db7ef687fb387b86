"""Repairs of SAFE layouts damaged in transit.

Google Cloud Storage has no directories, so copies from its Sentinel-2 bucket lack every empty
folder; Sen2Cor then fails looking for them. Recreating them is harmless for complete products.
"""

from __future__ import annotations

from pathlib import Path

from s2l2a.safe.layout import product_metadata_file

_TOP = ("AUX_DATA", "HTML")
_PER_GRANULE = ("AUX_DATA",)
_PER_DATASTRIP = ("QI_DATA",)


def repair_gcs_layout(path: Path | str) -> list[Path]:
    """Recreate AUX_DATA, HTML, GRANULE/*/AUX_DATA and DATASTRIP/*/QI_DATA when missing; return those made."""
    p = Path(path)
    product_metadata_file(p)  # refuse to touch anything that is not a product
    wanted: list[Path] = [p / name for name in _TOP]
    for parent, names in (("GRANULE", _PER_GRANULE), ("DATASTRIP", _PER_DATASTRIP)):
        base = p / parent
        if base.is_dir():
            for sub in sorted(x for x in base.iterdir() if x.is_dir()):
                wanted.extend(sub / n for n in names)
    created: list[Path] = []
    for d in wanted:
        if not d.exists():
            d.mkdir(parents=False)
            created.append(d)
    return created
