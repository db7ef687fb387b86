"""What a published L2A product held, and noticing when it no longer does.

At publish, s2l2a writes ``.s2l2a-manifest.json`` *inside* the product folder (the relative
path and size of every file). Inside rather than beside: it is written before the product is
renamed into place, so it appears with the product atomically, moves with it, and leaves no
sidecar to clean up when the product is replaced or deleted.

:func:`check_output` compares a product with its manifest (names and sizes; ``full`` also opens
every raster): ``stac``, ``report`` and ``derive`` use it so that none of them writes an item, a
row or an index for an incomplete product, and the campaign requeues the jobs whose output it
finds gone or incomplete (:func:`s2l2a.campaign.manifest.requeue_vanished`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from s2l2a.clock import utcnow
from s2l2a.fsutil import write_json_atomic

MANIFEST_FILE = ".s2l2a-manifest.json"
_RASTER_SUFFIXES = (".jp2", ".tif", ".tiff")


def product_files(product_dir: Path) -> dict[str, int]:
    """Relative path -> size of every file in a product folder (links are listed, not followed;
    the manifest itself is left out)."""
    out: dict[str, int] = {}
    stack = [(Path(product_dir), "")]
    while stack:
        folder, prefix = stack.pop()
        with os.scandir(folder) as it:
            for entry in it:
                rel = f"{prefix}{entry.name}"
                if entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), f"{rel}/"))
                elif rel != MANIFEST_FILE:
                    out[rel] = entry.stat(follow_symlinks=False).st_size
    return dict(sorted(out.items()))


def write_manifest(product_dir: Path) -> Path:
    """Write the manifest of a finished product (before it is published)."""
    product_dir = Path(product_dir)
    return write_json_atomic(product_dir / MANIFEST_FILE, {
        "product": product_dir.name, "written": utcnow(),
        "files": product_files(product_dir)}, sort_keys=True)


def read_manifest(product_dir: Path) -> dict[str, int] | None:
    """The files a product's manifest lists (None: no readable manifest, e.g. an older output)."""
    try:
        data = json.loads((Path(product_dir) / MANIFEST_FILE).read_text(encoding="utf-8"))
        files = data["files"]
        return {str(k): int(v) for k, v in files.items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def manifest_problem(product_dir: Path | str, files: dict[str, int] | None = None) -> str | None:
    """The first file the manifest lists that is missing or has another size (None: none, or no
    manifest)."""
    p = Path(product_dir)
    files = read_manifest(p) if files is None else files
    for rel, size in (files or {}).items():
        try:
            st = (p / rel).lstat()
        except OSError:
            return f"{p.name}: {rel} is missing"
        if st.st_size != size:
            return f"{p.name}: {rel} has {st.st_size} bytes, {size} when published"
    return None


def _raster_problem(path: Path) -> str | None:
    """None when the raster opens and its last pixel reads; else why not (one line)."""
    import rasterio
    from rasterio.windows import Window

    try:
        with rasterio.open(path) as ds:
            ds.read(1, window=Window(ds.width - 1, ds.height - 1, 1, 1))
    except Exception as e:  # noqa: BLE001 - rasterio/GDAL raise several types for a damaged file
        return " ".join(str(e).split())[:200] or type(e).__name__
    return None


def check_output(product_dir: Path | str, *, full: bool = False, quick: bool = False) -> str | None:
    """Why a published product is not complete (one line), or None when it is.

    With a manifest: every listed file must exist with its size (``full``: every raster must also
    open and read). Without one (published by an older s2l2a): the files its metadata lists must
    exist (``quick``: only the folder must exist; ``full``: every raster must open and read).
    """
    p = Path(product_dir)
    if not p.is_dir():
        return f"{p} is gone"
    files = read_manifest(p)
    if files is not None:
        problem = manifest_problem(p, files)
        if problem is not None:
            return problem
        rasters = [p / rel for rel in files if rel.lower().endswith(_RASTER_SUFFIXES)]
    else:
        if quick:
            return None
        from s2l2a.errors import S2L2AError
        from s2l2a.safe import open_l2a

        try:
            product = open_l2a(p, require_bands=False)
        except S2L2AError as e:
            return f"{p.name}: {e.message}"
        for g in product.granules:
            for key, missing in g.missing_files.items():
                return f"{p.name}: {Path(missing).name} ({key.split(':')[-1]}) is missing"
        rasters = sorted(f for f in p.rglob("*") if f.suffix.lower() in _RASTER_SUFFIXES and f.is_file())
    if full:
        for f in rasters:
            problem = _raster_problem(f)
            if problem is not None:
                return f"{p.name}: {f.relative_to(p)} does not read: {problem}"
    return None
