"""Discovery of product directories under user-given roots (for planning a batch)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from s2l2a.errors import ProductError
from s2l2a.safe.layout import is_product_metadata_name


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


def _walk(root: Path, seen: set[Path]) -> Iterator[Path]:
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
        if is_product_dir(d):
            yield d
            continue
        try:
            subdirs = sorted((Path(e.path) for e in os.scandir(d) if e.is_dir()), reverse=True)
        except OSError:
            continue
        stack.extend(subdirs)
