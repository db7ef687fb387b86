"""Discovery of product directories under user-given roots (for planning a batch)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from s2l2a.errors import ProductError
from s2l2a.safe.layout import AWS_MARKERS, is_product_metadata_name


def is_product_dir(path: Path) -> bool:
    """A ``*.SAFE`` directory or one holding product metadata (MTD_MSIL1C.xml, MTD_MSIL2A.xml, OPER MTD)."""
    if not path.is_dir():
        return False
    if path.name.upper().endswith(".SAFE"):
        return True
    try:
        return any(is_product_metadata_name(e.name) and e.is_file() for e in os.scandir(path))
    except OSError:
        return False


def find_products(roots: Iterable[Path | str]) -> Iterator[Path]:
    """Candidate product directories under ``roots`` (sorted per root), never descending into one found.

    Candidates are not validated here: ``open_l1c`` says what is wrong with each, so a batch can
    report broken products instead of silently skipping them. Symlinked folders are followed once.
    """
    seen: set[Path] = set()
    for root in roots:
        r = Path(root)
        if not r.exists():
            raise ProductError("search root does not exist", r)
        if not r.is_dir():
            continue
        yield from _walk(r, seen)


def find_inputs(roots: Iterable[Path | str]) -> Iterator[Path]:
    """Everything under ``roots`` a user may mean as an input product, for ``plan``: product
    directories, zip files (CDSE delivers ``S2*_MSIL1C_*.SAFE.zip``) and AWS tile folders
    (``tileInfo.json``), which ``open_l1c`` then refuses in one line instead of their being
    skipped without a word. A root that is a file is yielded as it is."""
    seen: set[Path] = set()
    for root in roots:
        r = Path(root)
        if not r.exists():
            raise ProductError("search root does not exist", r)
        if not r.is_dir():
            yield r
            continue
        yield from _walk(r, seen, inputs=True)


def is_aws_tile_dir(path: Path) -> bool:
    """A folder of the AWS ``sentinel-s2-l1c`` bucket layout (``tileInfo.json``, ``productInfo.json``)."""
    return any((path / m).is_file() for m in AWS_MARKERS)


def _walk(root: Path, seen: set[Path], inputs: bool = False) -> Iterator[Path]:
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            real = d.resolve()
        except OSError:
            continue
        if real in seen:
            continue
        seen.add(real)
        if is_product_dir(d) or (inputs and is_aws_tile_dir(d)):
            yield d
            continue
        try:
            entries = list(os.scandir(d))
            subdirs = sorted((Path(e.path) for e in entries if e.is_dir()), reverse=True)
            zips = sorted(Path(e.path) for e in entries
                          if inputs and e.name.lower().endswith(".zip") and e.is_file())
        except OSError:
            continue
        yield from zips
        stack.extend(subdirs)
