"""Free space: how much a file system holds, and refusing work that cannot fit before it starts.

A download, an extraction or a job that fills the disk mid-way corrupts work, so each asks here
first. Paths that do not exist yet are measured on the file system that would hold them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

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
