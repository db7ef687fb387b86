"""Files that appear complete or not at all: the one way s2l2a writes a file in place.

A temporary file in the same directory (a unique hidden name, so concurrent writers on a shared
file system never share one), flushed to disk, then renamed over the target, and the directory
flushed too: readers see the old file or the whole new one, and a crash or a node losing power
leaves no torn file. A failed write removes its temporary file.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def temp_name(path: Path, suffix: str = "") -> Path:
    """A hidden sibling of ``path`` no other process or call uses (``suffix`` for writers that
    insist on an extension, e.g. numpy's ``.npz``)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{suffix}")


def fsync_dir(directory: Path) -> None:
    """Flush a directory's entries (a rename is durable only then); silently skipped where refused."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on directories; the rename is still atomic
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path | str, suffix: str = "", *, mkdir: bool = False) -> Iterator[Path]:
    """A temporary path to write ``path`` through (for writers that want a file name: rasterio,
    numpy); on success it is flushed and renamed over ``path``, on any failure removed."""
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path, suffix)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_bytes_atomic(path: Path | str, data: bytes, *, mkdir: bool = False, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` atomically (see the module's docstring); returns ``path``."""
    path = Path(path)
    with atomic_path(path, mkdir=mkdir) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
    return path


def write_text_atomic(path: Path | str, text: str, *, mkdir: bool = False) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"), mkdir=mkdir)


def write_json_atomic(path: Path | str, data: Any, *, sort_keys: bool = False, mkdir: bool = False) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    return write_bytes_atomic(path, json.dumps(data, indent=1, sort_keys=sort_keys).encode("utf-8"), mkdir=mkdir)
