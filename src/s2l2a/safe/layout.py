"""Where things sit inside a SAFE directory: product metadata, granule folders, tile metadata, images.

Knows the compact layout (MTD_MSIL1C.xml, GRANULE/L1C_T.../IMG_DATA/T..._B01.jp2, L2A R10m/R20m/R60m)
and the old OPER layout (S2A_OPER_MTD_SAFL1C_*.xml, GRANULE/S2A_OPER_MSI_L1C_TL_*/IMG_DATA/<IMAGE_ID>.jp2).
Anything else, e.g. the AWS ``sentinel-s2-l1c`` tile folders, is refused rather than guessed at.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from s2l2a.errors import ProductError
from s2l2a.safe.errors import UnknownLayoutError

_PRODUCT_MTD = re.compile(r"^(MTD_MSIL(1C|2A)|S2[A-D]_(OPER|USER)_MTD_SAF(L1C|L2A)_.+)\.xml$", re.IGNORECASE)
_TILE_MTD = re.compile(r"^(MTD_TL|S2[A-D]_(OPER|USER)_MTD_(L1C|L2A)_TL_.+)\.xml$", re.IGNORECASE)
AWS_MARKERS = ("tileInfo.json", "productInfo.json")
IMAGE_EXTENSIONS = (".jp2", ".tif", ".tiff", ".JP2", ".TIF")
_FORMAT_EXT = {"JPEG2000": ".jp2", "GEOTIFF": ".tif", "COG": ".tif", "TIFF": ".tif"}


def is_product_metadata_name(name: str) -> bool:
    """True for product-level metadata file names of any known format."""
    return bool(_PRODUCT_MTD.match(name))


def product_metadata_file(path: Path) -> Path:
    """The one product metadata XML of the product directory ``path``; refuse unknown layouts."""
    if not path.exists():
        raise ProductError("no such file or directory", path)
    if path.is_file():
        if is_product_metadata_name(path.name):
            return path
        hint = " (unzip it first)" if path.suffix.lower() == ".zip" else ""
        raise UnknownLayoutError(f"is a file, not a Sentinel-2 SAFE product directory{hint}", path)
    try:
        found = sorted(p for p in path.iterdir() if is_product_metadata_name(p.name) and p.is_file())
    except OSError as exc:
        raise ProductError(f"cannot list directory: {exc.strerror or exc}", path) from None
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise UnknownLayoutError(f"holds several product metadata files ({names}); cannot tell which applies", path)
    aws = [m for m in AWS_MARKERS if (path / m).exists()]
    if aws or (path / "metadata.xml").exists():
        marker = aws[0] if aws else "metadata.xml"
        raise UnknownLayoutError(
            f"AWS sentinel-s2 tile folder layout ({marker}), not a SAFE product; fetch the SAFE product instead",
            path,
        )
    nested = sorted(p.name for p in path.glob("*.SAFE") if p.is_dir())
    hint = f" (it contains {nested[0]}; pass that folder)" if len(nested) == 1 else ""
    raise UnknownLayoutError(
        f"not a Sentinel-2 product: no MTD_MSIL1C.xml, MTD_MSIL2A.xml or S2?_OPER_MTD_SAF*.xml inside{hint}", path
    )


def tile_metadata_file(granule_dir: Path) -> Path | None:
    """The tile metadata XML inside a granule folder, or None."""
    if not granule_dir.is_dir():
        return None
    found = sorted(p for p in granule_dir.iterdir() if _TILE_MTD.match(p.name) and p.is_file())
    return found[0] if found else None


def image_candidates(product_dir: Path, relative: str, image_format: str | None) -> list[Path]:
    """Possible on-disk paths of an IMAGE_FILE entry (the metadata omits the extension)."""
    return [Path(c) for c in _candidate_names(product_dir, relative, image_format)]


def _candidate_names(product_dir: Path | str, relative: str, image_format: str | None) -> list[str]:
    base = os.path.join(product_dir, relative)
    if os.path.splitext(base)[1] in IMAGE_EXTENSIONS:
        return [base]
    preferred = _FORMAT_EXT.get((image_format or "").upper())
    exts = ([preferred] if preferred else []) + [e for e in IMAGE_EXTENSIONS if e != preferred]
    return [base + e for e in exts]


def find_image(product_dir: Path, relative: str, image_format: str | None) -> tuple[Path | None, str]:
    """(the file an IMAGE_FILE entry names, or None; the path it is expected at): the first of
    ``image_candidates`` that is a file, without building the others (planning opens many)."""
    names = _candidate_names(product_dir, relative, image_format)
    hit = next((c for c in names if os.path.isfile(c)), None)
    return (Path(hit) if hit is not None else None), names[0]


def inside(product_dir: Path | str, candidate: Path | str) -> bool:
    """True when ``candidate`` stays lexically inside ``product_dir`` (metadata may not point elsewhere).

    Lexical on purpose: ``..`` in the metadata is refused, but symlinked band files or folders (staging
    areas, caches) are allowed.
    """
    base = os.path.normpath(os.path.abspath(product_dir))
    cand = os.path.normpath(os.path.abspath(candidate))
    return cand == base or cand.startswith(base.rstrip(os.sep) + os.sep)  # strings: planning calls it often
