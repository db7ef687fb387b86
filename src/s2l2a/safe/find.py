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
    seen: set[str] = set()
    for root in roots:
        r = Path(root)
        if not r.exists():
            raise ProductError("search root does not exist", r)
        if not r.is_dir():
            continue
        yield from (path for path, _ in _walk(r, seen))


def find_inputs(roots: Iterable[Path | str]) -> Iterator[Path]:
    """Everything under ``roots`` a user may mean as an input product, for ``plan``: product
    directories, zip files (CDSE delivers ``S2*_MSIL1C_*.SAFE.zip``) and AWS tile folders
    (``tileInfo.json``), which ``open_l1c`` then refuses in one line instead of their being
    skipped without a word. A root that is a file is yielded as it is."""
    return (path for path, _ in find_inputs_resolved(roots))


def find_inputs_resolved(roots: Iterable[Path | str]) -> Iterator[tuple[Path, str]]:
    """``find_inputs`` with each input's real path (``os.path.realpath``), worked out during the walk
    from its folder's (a link costs a look-up, a plain entry none): planning 100,000 products
    would otherwise resolve every path component of every product again."""
    seen: set[str] = set()
    for root in roots:
        r = Path(root)
        if not r.exists():
            raise ProductError("search root does not exist", r)
        if not r.is_dir():
            yield r, os.path.realpath(r)
            continue
        yield from _walk(r, seen, inputs=True)


def is_aws_tile_dir(path: Path) -> bool:
    """A folder of the AWS ``sentinel-s2-l1c`` bucket layout (``tileInfo.json``, ``productInfo.json``)."""
    return any((path / m).is_file() for m in AWS_MARKERS)


def _walk(root: Path, seen: set[str], inputs: bool = False) -> Iterator[tuple[Path, str]]:
    stack: list[tuple[Path, str | None]] = [(root, None)]
    while stack:
        d, real = stack.pop()
        if real is None:
            try:
                real = os.path.realpath(d)
            except OSError:
                continue
        if real in seen:
            continue
        seen.add(real)
        if is_product_dir(d) or (inputs and is_aws_tile_dir(d)):
            yield d, real
            continue
        try:
            entries = list(os.scandir(d))
            subdirs = sorted(((Path(e.path), _real(e, real)) for e in entries if e.is_dir()), reverse=True)
            zips = sorted((Path(e.path), _real(e, real)) for e in entries
                          if inputs and e.name.lower().endswith(".zip") and e.is_file())
        except OSError:
            continue
        yield from ((z, r or os.path.realpath(z)) for z, r in zips)
        stack.extend(subdirs)


def _real(entry: os.DirEntry, parent_real: str) -> str | None:
    """An entry's real path from its folder's, None for a link (resolved when reached)."""
    return None if entry.is_symlink() else os.path.join(parent_real, entry.name)
