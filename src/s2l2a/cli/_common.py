"""Helpers shared by the campaign commands: one-line user errors, argument types, formatting."""

from __future__ import annotations

import errno
import functools
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from s2l2a.campaign.progress import one_line
from s2l2a.errors import ConfigError, S2L2AError
from s2l2a.units import parse_duration

F = TypeVar("F", bound=Callable[..., Any])

campaign_argument = click.argument(
    "campaign", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))


#: errors of the user's environment (full disk, permissions, a missing folder): one line, not a traceback
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT,
                      errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG}


def environment_error(e: BaseException) -> str | None:
    """One line for a full disk, a read-only or forbidden path, or SQLite's "disk is full"; None otherwise."""
    if isinstance(e, OSError) and e.errno in ENVIRONMENT_ERRNOS:
        where = f"{e.filename}: " if e.filename else ""
        text = f"{where}{e.strerror or e}"
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            text = f"disk full: {text}; free some space and run the command again"
        return one_line(text)
    if isinstance(e, sqlite3.OperationalError) and ("full" in str(e) or "disk I/O" in str(e)):
        return f"campaign.sqlite: {e}; free some space and run the command again"
    return None


def user_errors(func: F) -> F:
    """Turn S2L2AError (and a full disk or a forbidden path) into one line on stderr and exit code 1."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except S2L2AError as e:
            raise click.ClickException(str(e)) from None
        except (OSError, sqlite3.OperationalError) as e:
            line = environment_error(e)
            if line is None:
                raise
            raise click.ClickException(line) from None
    return wrapper  # type: ignore[return-value]


class Duration(click.ParamType):
    """A positive duration in the one grammar of :mod:`s2l2a.units` (10800, 90m, 3h, 1:30)."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            return parse_duration(value)
        except ConfigError as e:
            self.fail(str(e), param, ctx)


def human_duration(seconds: float | None) -> str:
    """3725 -> "1h 02m"; None -> "-"."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"
