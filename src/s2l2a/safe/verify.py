"""The project's definition of a complete L2A product.

Sen2Cor can exit 0 with an empty IMG_DATA, and a killed job leaves half-written files, so a result
is accepted only when its metadata parses and every granule holds the expected rasters, each
non-empty and decodable.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

from s2l2a.errors import ProductError
from s2l2a.safe.errors import IncompleteProductError
from s2l2a.safe.product import L2AProduct, open_l2a

# What every verified granule must hold per resolution (Sen2Cor 2.5+ writes at least these;
# B01 at 20 m and TCI at 20/60 m appeared later and are checked only when the metadata lists them).
L2A_REQUIRED: dict[int, tuple[str, ...]] = {
    10: ("B02", "B03", "B04", "B08", "AOT", "WVP", "TCI"),
    20: ("B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12", "SCL", "AOT", "WVP"),
    60: ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B09", "B11", "B12", "SCL", "AOT", "WVP"),
}


def _check_raster(path: Path) -> None:
    """Open the raster and decode its last pixel (a truncated file fails there)."""
    import rasterio
    from rasterio.windows import Window

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. NotGeoreferencedWarning on a damaged header
            ds = rasterio.open(path)
        with ds:
            if ds.width < 1 or ds.height < 1 or ds.count < 1:
                raise IncompleteProductError("raster has no pixels", path)
            ds.read(1, window=Window(ds.width - 1, ds.height - 1, 1, 1))
    except IncompleteProductError:
        raise
    except Exception as exc:  # rasterio/GDAL raise many types for corrupt files
        raise IncompleteProductError(f"raster unreadable: {exc}", path) from None


def verify_l2a(
    path: Path | str, resolutions: Iterable[int] = (10, 20, 60), *, read_check: bool = True
) -> L2AProduct:
    """Check an L2A product is complete at ``resolutions``; return it opened, or raise IncompleteProductError."""
    p = Path(path)
    res_list = sorted(set(resolutions))
    bad = [r for r in res_list if r not in L2A_REQUIRED]
    if bad:
        raise ValueError(f"unknown resolution(s) {bad}; expected 10, 20 or 60")
    try:
        product = open_l2a(p, require_bands=False)
    except ProductError as exc:
        if isinstance(exc, IncompleteProductError):
            raise
        raise IncompleteProductError(exc.message, exc.path) from None
    if not product.granules:
        raise IncompleteProductError("L2A product has no granule with tile metadata", p / "GRANULE")
    for g in product.granules:
        for key, missing in g.missing_files.items():
            res = int(key.split(":")[0]) if ":" in key else None
            if res is None or res in res_list:
                raise IncompleteProductError(f"{key.split(':')[-1]} listed in the metadata is missing", missing)
        for res in res_list:
            folder = g.path / "IMG_DATA" / f"R{res}m"
            if not folder.is_dir():
                raise IncompleteProductError(f"missing folder for {res} m images", folder)
            have = g.images.get(res, {})
            for band in L2A_REQUIRED[res]:
                if band not in have:
                    raise IncompleteProductError(f"no {band} image at {res} m", folder)
            for _band, f in sorted(have.items()):
                if f.stat().st_size == 0:
                    raise IncompleteProductError("image file is empty", f)
                if read_check:
                    _check_raster(f)
    return product
