"""Campaign settings: ``<campaign>/s2l2a.toml``, with defaults and validation.

The file is the campaign's single source of configuration so that a campaign directory can be
moved, re-run or inspected without remembering command-line options. Every invalid value is
reported as one ConfigError line naming the key (``s2l2a.toml: [resources] memory_mb: ...``).
"""

from __future__ import annotations

import copy
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from s2l2a.errors import ConfigError
from s2l2a.fsutil import write_bytes_atomic
from s2l2a.processors.base import JobSettings

SETTINGS_FILE = "s2l2a.toml"
PROCESSORS = ("auto", "builtin", "sen2cor")
OUTPUT_FORMATS = ("COG", "JP2")
RESOLUTIONS = (10, 20, 60)
_BASELINE_RE = re.compile(r"^\d{2}\.\d{2}$")

# known keys of the fixed sections -> default; [sen2cor]/[builtin] are free-form processor options
_CAMPAIGN_KEYS = ("name", "processor", "output_dir", "scratch_dir")
_RESOURCE_KEYS = ("memory_mb", "cores_per_job", "timeout_s", "max_attempts", "workers", "min_free_mb")

# upper bounds of the numbers (a typo such as 100000 cores must not reach a scheduler directive);
# a value above this machine but within these is allowed: cluster nodes may be bigger
MAX_CORES_PER_JOB = 1024                  # more than any single node offers today
MAX_MEMORY_MB = 16 * 1024 * 1024          # 16 TiB, the largest shared-memory nodes
MAX_TIMEOUT_S = 30 * 86400                # 30 days per job
MAX_ATTEMPTS = 100
MAX_WORKERS = 4096
MAX_MIN_FREE_MB = 1024 ** 3               # 1 EiB: any finite floor


@dataclass
class CampaignSettings:
    """All settings of one campaign; ``extra`` keeps unknown top-level sections for other parts."""

    name: str = ""
    processor: str = "auto"
    output_dir: str = "L2A"
    scratch_dir: str | None = None          # None: <campaign>/staging
    memory_mb: int = 4096
    cores_per_job: int = 1
    timeout_s: float = 10800
    max_attempts: int = 3
    workers: int = 0                        # 0: as many as cores and memory allow
    min_free_mb: int | None = None          # free-space floor for starting a job; None: one product's outputs
    sen2cor: dict[str, Any] = field(default_factory=dict)
    builtin: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    # -- file I/O -----------------------------------------------------------------------------

    @classmethod
    def load(cls, campaign_dir: Path | str) -> CampaignSettings:
        """Read and validate ``<campaign_dir>/s2l2a.toml``."""
        path = Path(campaign_dir) / SETTINGS_FILE
        try:
            with path.open("rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"not a campaign (no {SETTINGS_FILE}); create one with 's2l2a init'",
                              Path(campaign_dir)) from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"invalid TOML: {e}", path) from None
        except OSError as e:
            raise ConfigError(f"cannot read: {e.strerror}", path) from None
        settings = cls.from_dict(data, source=path)
        settings.check_paths(campaign_dir, source=path)
        return settings

    def check_paths(self, campaign_dir: Path | str, source: Path | str | None = None) -> None:
        """Refuse an output_dir or scratch_dir where s2l2a could delete what it did not make
        (the rule lives in :func:`s2l2a.campaign.layout.check_paths`)."""
        from s2l2a.campaign.layout import check_paths

        check_paths(campaign_dir, self, source)

    def save(self, campaign_dir: Path | str) -> Path:
        """Write the settings atomically (temp file + rename) so a crash never leaves half a file."""
        self.validate()
        path = Path(campaign_dir) / SETTINGS_FILE
        self.check_paths(campaign_dir, source=path)
        return write_bytes_atomic(path, tomli_w.dumps(self.to_dict()).encode())

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: Path | str = SETTINGS_FILE) -> CampaignSettings:
        """Build from the TOML structure; unknown keys in known sections are errors (typos)."""
        data = copy.deepcopy(data)
        s = cls()
        campaign = _section(data, "campaign", source)
        resources = _section(data, "resources", source)
        for key, value in campaign.items():
            if key not in _CAMPAIGN_KEYS:
                raise ConfigError(f"[campaign] {key}: unknown key", source)
            setattr(s, key, value)
        for key, value in resources.items():
            if key not in _RESOURCE_KEYS:
                raise ConfigError(f"[resources] {key}: unknown key", source)
            setattr(s, key, value)
        s.sen2cor = _section(data, "sen2cor", source)
        s.builtin = _section(data, "builtin", source)
        s.extra = {k: v for k, v in data.items() if k not in ("campaign", "resources", "sen2cor", "builtin")}
        s.validate(source)
        return s

    def to_dict(self) -> dict[str, Any]:
        """The TOML structure (None values left out: TOML has no null)."""
        campaign = {k: getattr(self, k) for k in _CAMPAIGN_KEYS if getattr(self, k) is not None}
        resources = {k: getattr(self, k) for k in _RESOURCE_KEYS if getattr(self, k) is not None}
        out: dict[str, Any] = {"campaign": campaign, "resources": resources,
                               "sen2cor": dict(self.sen2cor), "builtin": dict(self.builtin)}
        out.update(copy.deepcopy(self.extra))
        return out

    # -- validation ---------------------------------------------------------------------------

    def validate(self, source: Path | str = SETTINGS_FILE) -> None:
        """Raise one-line ConfigError for the first invalid value."""
        def bad(key: str, what: str) -> ConfigError:
            return ConfigError(f"{key}: {what}", source)

        if not isinstance(self.name, str):
            raise bad("[campaign] name", "must be a string")
        if self.processor not in PROCESSORS:
            raise bad("[campaign] processor", f"must be one of {', '.join(PROCESSORS)}, not {self.processor!r}")
        if not isinstance(self.output_dir, str) or not self.output_dir.strip():
            raise bad("[campaign] output_dir", "must be a non-empty path")
        if self.scratch_dir is not None and (not isinstance(self.scratch_dir, str) or not self.scratch_dir.strip()):
            raise bad("[campaign] scratch_dir", "must be a non-empty path")
        limits = (("memory_mb", 256, MAX_MEMORY_MB), ("cores_per_job", 1, MAX_CORES_PER_JOB),
                  ("max_attempts", 1, MAX_ATTEMPTS), ("workers", 0, MAX_WORKERS))
        if self.min_free_mb is not None:
            limits += (("min_free_mb", 0, MAX_MIN_FREE_MB),)
        for key, low, high in limits:
            v = getattr(self, key)
            if not _is_int(v) or not low <= v <= high:
                raise bad(f"[resources] {key}", f"must be an integer from {low} to {high}, not {v!r}")
        t = self.timeout_s
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or not 0 < t <= MAX_TIMEOUT_S:
            raise bad("[resources] timeout_s", f"must be a number of seconds above 0 and at most {MAX_TIMEOUT_S} "
                      f"(30 days), not {t!r}")
        for sect_name in ("sen2cor", "builtin"):
            sect = getattr(self, sect_name)
            res = sect.get("resolution")
            if res is not None and res not in RESOLUTIONS:
                raise bad(f"[{sect_name}] resolution", f"must be one of 10, 20, 60, not {res!r}")
        pb = self.sen2cor.get("processing_baseline")
        if pb is not None and (not isinstance(pb, str) or not _BASELINE_RE.match(pb)):
            raise bad("[sen2cor] processing_baseline", f"must look like \"05.10\", not {pb!r}")
        for key in ("l2a_process", "gipp", "home"):
            v = self.sen2cor.get(key)
            if v is not None and (not isinstance(v, str) or not v):
                raise bad(f"[sen2cor] {key}", "must be a non-empty path")
        fmt = self.builtin.get("output_format")
        if fmt is not None and fmt not in OUTPUT_FORMATS:
            raise bad("[builtin] output_format", f"must be one of {', '.join(OUTPUT_FORMATS)}, not {fmt!r}")

    # -- derived values -----------------------------------------------------------------------

    def processor_options(self, processor: str | None = None) -> dict[str, Any]:
        """The TOML section handed to ``get_processor`` (``[sen2cor]`` or ``[builtin]``)."""
        name = processor or self.processor
        if name == "sen2cor":
            return dict(self.sen2cor)
        if name == "builtin":
            return dict(self.builtin)
        return {}

    def job_settings(self, processor: str | None = None) -> JobSettings:
        """What one job may use; ``processor`` is the resolved processor name ("auto" resolved)."""
        name = processor or self.processor
        opts = self.processor_options(name)
        resolution = opts.get("resolution")
        if resolution is None and name == "auto":
            resolution = self.sen2cor.get("resolution", self.builtin.get("resolution"))
        return JobSettings(
            cores=int(self.cores_per_job),
            memory_mb=int(self.memory_mb),
            timeout_s=float(self.timeout_s),
            resolution=resolution,
            processing_baseline=self.sen2cor.get("processing_baseline") if name != "builtin" else None,
            output_format=str(self.builtin.get("output_format", "COG")),
            extra=opts,
        )

    def above_machine(self, machine: tuple[int, int] | None = None, memory_mb: int | None = None) -> list[str]:
        """What one job asks for beyond this machine (cores, memory), one phrase each.

        Not a validation error: a campaign run on a cluster may ask for more than its login node
        has. A local run refuses it in its preflight (``s2l2a check``); ``init``/``config`` warn.
        """
        from s2l2a.engines.base import machine_resources

        cores, mem = machine or machine_resources()
        memory_mb = int(memory_mb or self.memory_mb)
        out = []
        if int(self.cores_per_job) > cores:
            out.append(f"cores_per_job = {self.cores_per_job} is more than this machine's {cores} core(s)")
        if memory_mb > mem:
            out.append(f"memory_mb = {memory_mb} is more than this machine's {mem} MB")
        return out

    def output_root(self, campaign_dir: Path | str) -> Path:
        """Where verified L2A products go (``<campaign>/L2A`` unless configured otherwise)."""
        return (Path(campaign_dir) / Path(self.output_dir).expanduser()).resolve()

    def scratch_root(self, campaign_dir: Path | str) -> Path:
        """Where jobs stage their work (``<campaign>/staging`` unless configured otherwise)."""
        return (Path(campaign_dir) / Path(self.scratch_dir or "staging").expanduser()).resolve()


def _section(data: dict[str, Any], name: str, source: Path | str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}]: must be a table", source)
    return value


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
