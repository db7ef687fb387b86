"""Settings of the download clients: service base URLs, politeness and retry knobs, cache place.

Base URLs are settings (not constants) so the very same code path runs against the real services
and against the tests' local servers. Precedence: defaults < campaign ``[acquire]`` table <
environment (``S2L2A_<KEY>``) < command-line options.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from s2l2a.errors import ConfigError
from s2l2a.registry import Section, Setting

GCS_URL = "https://storage.googleapis.com/storage/v1/b/gcp-public-data-sentinel-2/o"
CDSE_CATALOGUE_URL = "https://catalogue.dataspace.copernicus.eu/odata/v1"
CDSE_DOWNLOAD_URL = "https://download.dataspace.copernicus.eu/odata/v1"
CDSE_TOKEN_URL = "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "s2l2a"


@dataclass
class AcquireSettings:
    """Knobs of search and download; every field can be set as ``S2L2A_<FIELD>`` in the environment."""

    gcs_url: str = GCS_URL
    cdse_catalogue_url: str = CDSE_CATALOGUE_URL
    cdse_download_url: str = CDSE_DOWNLOAD_URL
    cdse_token_url: str = CDSE_TOKEN_URL
    cdse_client_id: str = "cdse-public"
    cache_dir: Path = field(default_factory=_default_cache)
    parallel: int = 2            # products transferred at once
    object_parallel: int = 4     # objects of one bucket product transferred at once
    retries: int = 5             # attempts after the first, per request, on 429/5xx/dropped connections
    backoff: float = 1.0         # first back-off delay in seconds, doubled per attempt
    backoff_max: float = 60.0
    retry_after_max: float = 300.0  # cap on a server's Retry-After
    checksum_retries: int = 1    # re-fetches of a file whose checksum does not match
    timeout: float = 60.0
    page_size: int = 100         # catalogue page size
    l2a_factor: float = 1.1      # L2A volume estimate relative to the L1C volume, for the space check
    chunk_size: int = 1 << 20
    archive_max_gb: float = 4.0  # a CDSE product zip may expand to this much (L1C products are ~1 GB)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    _ENV_PREFIX = "S2L2A_"

    @classmethod
    def load(cls, table: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None,
             **overrides: Any) -> AcquireSettings:
        """Defaults, then a campaign ``[acquire]`` table, then environment, then non-None overrides."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        names = {f.name: f for f in fields(cls) if f.name != "sleep"}
        for key, value in (table or {}).items():
            if key not in names:
                raise ConfigError(f"[acquire] {key}: unknown setting (known: {', '.join(sorted(names))})")
            values[key] = value
        for name in names:
            raw = env.get(cls._ENV_PREFIX + name.upper())
            if raw not in (None, ""):
                values[name] = raw
        sleep = overrides.pop("sleep", None)
        values.update({k: v for k, v in overrides.items() if v is not None})
        out = cls() if sleep is None else cls(sleep=sleep)
        for key, value in values.items():
            out = replace(out, **{key: _convert(key, value, getattr(out, key))})
        out.validate()
        return out

    def validate(self) -> None:
        """One ConfigError line for a value that would make the clients misbehave."""
        for name in ("parallel", "object_parallel", "page_size", "chunk_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"[acquire] {name}: must be at least 1")
        for name in ("retries", "checksum_retries", "backoff", "backoff_max", "retry_after_max", "l2a_factor",
                     "archive_max_gb", "timeout"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"[acquire] {name}: must be a finite number, not negative")
        for name in ("archive_max_gb", "timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"[acquire] {name}: must be positive")
        for name in ("gcs_url", "cdse_catalogue_url", "cdse_download_url", "cdse_token_url"):
            if not str(getattr(self, name)).startswith(("http://", "https://")):
                raise ConfigError(f"[acquire] {name}: not an http(s) URL: {_shown(getattr(self, name))!r}")


def _shown(url: str) -> str:
    """A URL without the parts that may be secret (user info, query); see download.shown_url."""
    from s2l2a.acquire.download import shown_url

    return shown_url(url)


def _convert(key: str, value: Any, default: Any) -> Any:
    try:
        if isinstance(default, Path):
            return Path(value).expanduser()
        if isinstance(default, bool):
            return str(value).lower() in ("1", "true", "yes")
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"[acquire] {key}: not a {type(default).__name__}: {value!r}") from None
    return str(value).rstrip("/")


def _kind(default: Any) -> str:
    return {bool: "bool", int: "int", float: "float"}.get(type(default), "path" if isinstance(default, Path) else "str")


def _acquire_section() -> Section:
    """``[acquire]``: every AcquireSettings field (values are converted and checked by
    :meth:`AcquireSettings.load`, where the environment and options are merged in)."""
    defaults = AcquireSettings()
    return Section("acquire", lazy=True, help="search and download: service URLs, parallelism, retries, cache",
                   settings=tuple(
        Setting(f.name, _kind(getattr(defaults, f.name)), getattr(defaults, f.name), help=f"env S2L2A_{f.name.upper()}")
        for f in fields(AcquireSettings) if f.name != "sleep"))


ACQUIRE_SECTION = _acquire_section()
