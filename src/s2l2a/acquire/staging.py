"""Where downloads are assembled and how a finished product is recognised.

A product is built in ``<dest>/.s2l2a-staging/<name>.partial/`` and renamed into ``<dest>/<name>.SAFE``
only when every file is verified; then a completion record ``<dest>/.s2l2a-fetched/<name>.json`` lists
its files and sizes. A product folder without a record is treated as partial (the lab's interrupted
copies were later taken as complete). While staged, the top-level product metadata file is held
under ``<file>.held`` so that no product scan (``plan``) mistakes a partial folder for a product.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from s2l2a.acquire.query import Candidate
from s2l2a.clock import utcnow
from s2l2a.fsutil import write_json_atomic

STAGING = ".s2l2a-staging"
RECORDS = ".s2l2a-fetched"


HELD = ".held"


def stage_root(dest: Path) -> Path:
    return dest / STAGING


def stage_dir(root: Path, name: str) -> Path:
    return root / f"{name}.partial"


def held(rel: str) -> str:
    """Staging name of a product file: top-level product metadata is held under another name."""
    from s2l2a.safe.layout import is_product_metadata_name

    return rel + HELD if "/" not in rel and is_product_metadata_name(rel) else rel


def hold_all(stage: Path) -> None:
    """Hold the metadata of a folder turned into a staging folder (see the module doc)."""
    for p in list(stage.iterdir()):
        if p.is_file() and held(p.name) != p.name:
            os.replace(p, p.with_name(held(p.name)))


def _release(stage: Path) -> None:
    for p in list(stage.glob(f"*{HELD}")):
        os.replace(p, p.with_name(p.name[: -len(HELD)]))


def record_path(dest: Path, name: str) -> Path:
    return dest / RECORDS / f"{name}.json"


def product_files(product: Path) -> dict[str, int]:
    """Relative path → size of every file of a product folder."""
    return {p.relative_to(product).as_posix(): p.stat().st_size for p in sorted(product.rglob("*")) if p.is_file()}


def is_complete(dest: Path, name: str) -> bool:
    """True when the product was completed by a fetch and every recorded file is still there, whole."""
    final = dest / f"{name}.SAFE"
    rec = record_path(dest, name)
    if not final.is_dir() or not rec.is_file():
        return False
    try:
        files = json.loads(rec.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    for rel, size in files.items():
        p = final / rel
        if not p.is_file() or p.stat().st_size != size:
            return False
    return True


def finish(stage: Path, dest: Path, cand: Candidate, files: dict[str, int]) -> Path:
    """Move a verified staging folder into place (replacing a partial one) and record completion."""
    final = dest / f"{cand.name}.SAFE"
    rec = record_path(dest, cand.name)
    rec.unlink(missing_ok=True)
    if final.exists():
        trash = stage.parent / f"{cand.name}.old"
        shutil.rmtree(trash, ignore_errors=True)
        os.replace(final, trash)
        shutil.rmtree(trash, ignore_errors=True)
    _release(stage)
    os.replace(stage, final)
    doc = {"name": cand.name, "source": cand.source, "ref": cand.ref,
           "fetched": utcnow(), "files": files}
    write_json_atomic(rec, doc, mkdir=True)
    return final
