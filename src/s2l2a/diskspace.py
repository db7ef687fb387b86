"""Free space: how much a file system holds, and refusing work that cannot fit before it starts.

A download, an extraction or a job that fills the disk mid-way corrupts work, so each asks here
first. Paths that do not exist yet are measured on the file system that would hold them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from s2l2a.errors import S2L2AError


class InsufficientSpaceError(S2L2AError):
    """The download (plus the L2A it will become) does not fit on the destination's file system."""


def human(n: float) -> str:
    """Bytes as a short human string (``1.9 GB``); decimal units like the catalogues use."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


#: free space below which a failed write counts as a full disk (ENOSPC is not always passed on:
#: GDAL reports "IO error writing tag data" or "Write failed" while libtiff printed "No space left
#: on device", numpy "192721 requested and 161792 written")
DISK_FULL_FLOOR = 16 * 1024 * 1024
#: what a full disk (or quota) says in an error's text
DISK_FULL_TEXTS = ("no space left on device", "database or disk is full", "disk quota exceeded")


def says_disk_full(text: str) -> bool:
    """Whether an error's text says the disk (or the quota) is full."""
    low = text.lower()
    return any(t in low for t in DISK_FULL_TEXTS)


def short_of_space(folders: Any) -> str | None:
    """``"N MB free on FOLDER"`` for the first of ``folders`` whose file system is below
    DISK_FULL_FLOOR, after a write failed without saying why; None when none is."""
    for folder in folders:
        try:
            free = free_bytes(folder)
        except OSError:
            continue
        if free < DISK_FULL_FLOOR:
            return f"{free // 2**20} MB free on {folder}"
    return None


def existing_ancestor(path: Path | str) -> Path:
    """``path`` or its nearest ancestor that exists (where a missing folder would be created)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def free_bytes(path: Path | str) -> int:
    """Free bytes (for this user) on the file system that holds, or would hold, ``path``."""
    return shutil.disk_usage(existing_ancestor(path)).free


def check_space(dest: Path, l1c_bytes: int, *, l2a_factor: float, scratch_bytes: int = 0,
                free: Callable[[Path], int] | None = None) -> int:
    """Raise InsufficientSpaceError unless L1C + L2A estimate + scratch fit; return the bytes needed."""
    l2a = int(l1c_bytes * l2a_factor)
    need = l1c_bytes + l2a + scratch_bytes
    have = (free or free_bytes)(dest)
    if need > have:
        parts = f"{human(l1c_bytes)} L1C + {human(l2a)} L2A estimate"
        if scratch_bytes:
            parts += f" + {human(scratch_bytes)} archives"
        raise InsufficientSpaceError(f"not enough free space: need {human(need)} ({parts}), {human(have)} free", dest)
    return need
