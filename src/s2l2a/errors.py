"""Exception hierarchy. Every error a user can meet carries one line saying what and where."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path


class S2L2AError(Exception):
    """Base class: ``str(err)`` is one human-readable line naming what went wrong and where."""

    def __init__(self, message: str, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.message = message
        super().__init__(f"{path}: {message}" if path is not None else message)


class ProductError(S2L2AError):
    """A Sentinel-2 product is unreadable, incomplete, of an unknown layout, or not what was expected."""


class ConfigError(S2L2AError):
    """A campaign setting or a configuration file is invalid."""


class CampaignError(S2L2AError):
    """A campaign directory is missing, locked, or inconsistent."""


#: errors of the user's environment (full disk, permissions, a missing folder): one line, not a traceback
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT,
                      errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG}


def environment_error(e: BaseException) -> str | None:
    """One line for a full disk, a read-only or forbidden path, or SQLite's "disk is full"; None otherwise."""
    import sqlite3

    if isinstance(e, OSError) and e.errno in ENVIRONMENT_ERRNOS:
        where = f"{e.filename}: " if e.filename else ""
        text = f"{where}{e.strerror or e}"
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            text = f"disk full: {text}; free some space and run the command again"
        return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if isinstance(e, sqlite3.OperationalError) and ("full" in str(e) or "disk I/O" in str(e)):
        return f"campaign.sqlite: {e}; free some space and run the command again"
    return None


def exception_chain(e: BaseException) -> Iterator[BaseException]:
    """``e`` and every exception it was raised from or during (each once)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [e]
    while todo:
        x = todo.pop()
        if x is None or id(x) in seen:
            continue
        seen.add(id(x))
        yield x
        todo += [x.__cause__, x.__context__]
