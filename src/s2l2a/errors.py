"""Exception hierarchy. Every error a user can meet carries one line saying what and where."""

from __future__ import annotations

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
