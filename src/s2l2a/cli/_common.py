"""Helpers shared by the campaign commands: one-line user errors, argument types, formatting."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from s2l2a.campaign.progress import human_duration
from s2l2a.errors import ENVIRONMENT_ERRNOS, ConfigError, S2L2AError, environment_error
from s2l2a.units import parse_duration

F = TypeVar("F", bound=Callable[..., Any])

campaign_argument = click.argument(
    "campaign", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))


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


__all__ = ["ENVIRONMENT_ERRNOS", "Duration", "campaign_argument", "environment_error", "human_duration",
           "user_errors"]
