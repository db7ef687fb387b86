"""PNG quicklooks: true colour (TCI, else B04/B03/B02 with a 2-98 % stretch) and SCL in class colours.

They are what a person looks at first in the campaign report, so they are written while the L2A
still exists (the keep policy may delete it afterwards) and kept next to the derived outputs.
512 px a side (from the coarsest image that has that many pixels, else the finest): enough to tell
cumulus from haze and cloud shadow from water when the report enlarges them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from s2l2a.safe.scl import palette as scl_palette

MAX_SIDE = 512


def _read_small(path: Path, bands: list[int] | None = None) -> np.ndarray:
    """Read scaled to at most MAX_SIDE px a side (GDAL picks overviews when the file has them)."""
    import rasterio
    from rasterio.enums import Resampling

    with rasterio.open(path) as ds:
        f = min(1.0, MAX_SIDE / max(ds.width, ds.height))
        shape = (max(1, round(ds.height * f)), max(1, round(ds.width * f)))
        idx = bands or list(range(1, ds.count + 1))
        return ds.read(idx, out_shape=(len(idx), *shape), resampling=Resampling.nearest)


def _pick(images: dict[int, dict[str, Path]], keys: tuple[str, ...]) -> dict[str, Path] | None:
    """The images of the coarsest resolution holding ``keys`` with at least MAX_SIDE px a side, else
    of the finest one holding them (small, decimated products); None when no resolution has them."""
    import rasterio

    have = [r for r in sorted(images, reverse=True) if all(k in images[r] for k in keys)]
    for r in have:
        with rasterio.open(images[r][keys[0]]) as ds:
            if max(ds.width, ds.height) >= MAX_SIDE:
                return images[r]
    return images[have[-1]] if have else None


def stretch(rgb: np.ndarray, valid: np.ndarray, lo: float = 2.0, hi: float = 98.0) -> np.ndarray:
    """Per-band percentile stretch to 0-255 over valid pixels; invalid pixels black."""
    out = np.zeros(rgb.shape, dtype=np.uint8)
    for i in range(rgb.shape[0]):
        band = rgb[i].astype(np.float64)
        if not valid.any():
            continue
        a, b = np.percentile(band[valid], [lo, hi])
        scaled = np.clip((band - a) / max(b - a, 1e-12), 0, 1) * 255
        out[i] = np.where(valid, np.rint(scaled), 0).astype(np.uint8)
    return out


def _save_png(path: Path, rgb_hwc: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.image as mpimg

    mpimg.imsave(path, rgb_hwc)


def true_colour(images: dict[int, dict[str, Path]]) -> np.ndarray | None:
    """H x W x 3 uint8 from the TCI, else a stretched B04/B03/B02; None when neither exists."""
    tci = _pick(images, ("TCI",))
    if tci is not None:
        return np.moveaxis(_read_small(tci["TCI"], [1, 2, 3]), 0, -1)
    have = _pick(images, ("B04", "B03", "B02"))
    if have is None:
        return None
    rgb = np.concatenate([_read_small(have[b]) for b in ("B04", "B03", "B02")])
    valid = (rgb > 0).all(axis=0)
    return np.moveaxis(stretch(rgb, valid), 0, -1)


def scl_colours(images: dict[int, dict[str, Path]]) -> np.ndarray | None:
    """H x W x 3 uint8 of the SCL in the standard class colours; None without SCL."""
    have = _pick(images, ("SCL",))
    return None if have is None else scl_palette()[_read_small(have["SCL"], [1])[0]]


def write_quicklooks(product: Any, out_dir: Path, stem: str) -> dict[str, str]:
    """Write ``<stem>_TCI.png`` and ``<stem>_SCL.png`` for an opened L2A; returns {"tci"/"scl": file name}."""
    images = product.granules[0].images if product.granules else {}
    return save_quicklooks(out_dir, stem, true_colour(images), scl_colours(images))


def save_quicklooks(out_dir: Path, stem: str, tci: np.ndarray | None, scl: np.ndarray | None) -> dict[str, str]:
    """Write the H x W x 3 uint8 true colour and SCL colours as ``<stem>_TCI.png`` / ``<stem>_SCL.png``
    (None: not written); also what a run that holds its images in memory calls."""
    out: dict[str, str] = {}
    for key, rgb in (("tci", tci), ("scl", scl)):
        if rgb is not None:
            _save_png(out_dir / f"{stem}_{key.upper()}.png", rgb)
            out[key] = f"{stem}_{key.upper()}.png"
    return out
