"""Campaign settings: ``<campaign>/s2l2a.toml``, with defaults and validation.

The file is the campaign's single source of configuration so that a campaign directory can be
moved, re-run or inspected without remembering command-line options. Every invalid value is
reported as one ConfigError line naming the key (``s2l2a.toml: [resources] memory_mb: ...``).
"""

from __future__ import annotations

import copy
import logging
import math
import tomllib
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomli_w

from s2l2a import defaults, registry
from s2l2a.campaign.layout import OUTPUT_DIR, SETTINGS_FILE, CampaignLayout
from s2l2a.errors import ConfigError
from s2l2a.fsutil import write_bytes_atomic

if TYPE_CHECKING:
    from s2l2a.processors.base import JobSettings


# known keys of the fixed sections; every other section is declared in the registry (a processor's
# options, [cluster], [derive], [acquire]) and checked by its declaration when the file is read
_CAMPAIGN_KEYS = ("name", "processor", "output_dir", "scratch_dir")
_RESOURCE_KEYS = ("memory_mb", "cores_per_job", "timeout_s", "max_attempts", "workers", "min_free_mb")
_FIXED = ("campaign", "resources")

# upper bounds of the numbers (a typo such as 100000 cores must not reach a scheduler directive);
# a value above this machine but within these is allowed: cluster nodes may be bigger
MAX_CORES_PER_JOB = 1024                  # more than any single node offers today
MAX_MEMORY_MB = 16 * 1024 * 1024          # 16 TiB, the largest shared-memory nodes
MAX_TIMEOUT_S = 30 * 86400                # 30 days per job
MAX_ATTEMPTS = 100
MAX_WORKERS = 4096
MAX_MIN_FREE_MB = 1024 ** 3               # 1 EiB: any finite floor

log = logging.getLogger(__name__)
_warned: set[tuple[str, tuple[str, ...]]] = set()


@dataclass(init=False)
class CampaignSettings:
    """All settings of one campaign: [campaign] and [resources] as attributes, every other section
    (``[sen2cor]``, ``[builtin]``, ``[cluster]``, a plug-in's ...) as a table in ``sections``."""

    name: str = ""
    processor: str = "auto"
    output_dir: str = OUTPUT_DIR
    scratch_dir: str | None = None          # None: <campaign>/staging
    memory_mb: int = defaults.MEMORY_MB
    cores_per_job: int = defaults.CORES_PER_JOB
    timeout_s: float = defaults.TIMEOUT_S
    max_attempts: int = defaults.MAX_ATTEMPTS
    workers: int = 0                        # 0: as many as cores and memory allow
    min_free_mb: int | None = None          # free-space floor for starting a job; None: one product's outputs
    sections: dict[str, Any] = field(default_factory=dict)

    def __init__(self, name: str = "", processor: str = "auto", output_dir: str = OUTPUT_DIR,
                 scratch_dir: str | None = None, memory_mb: int = defaults.MEMORY_MB,
                 cores_per_job: int = defaults.CORES_PER_JOB, timeout_s: float = defaults.TIMEOUT_S,
                 max_attempts: int = defaults.MAX_ATTEMPTS, workers: int = 0,
                 min_free_mb: int | None = None, sections: dict[str, Any] | None = None,
                 extra: dict[str, Any] | None = None, **named_sections: dict[str, Any]) -> None:
        """Sections may be given as ``sections={...}``, by name (``sen2cor={...}``) or as ``extra``."""
        self.name, self.processor, self.output_dir, self.scratch_dir = name, processor, output_dir, scratch_dir
        self.memory_mb, self.cores_per_job, self.timeout_s = memory_mb, cores_per_job, timeout_s
        self.max_attempts, self.workers, self.min_free_mb = max_attempts, workers, min_free_mb
        # s2l2a's own processors always have their (maybe empty) table, as s2l2a.toml always had
        self.sections = {n: {} for n in registry.BUILTIN["processors"]}
        self.sections.update({**(sections or {}), **(extra or {}), **named_sections})

    # -- sections -------------------------------------------------------------------------------

    def section(self, name: str) -> dict[str, Any]:
        """The ``[name]`` table (created empty when absent, so callers can fill it in)."""
        return self.sections.setdefault(name, {})

    @property
    def sen2cor(self) -> dict[str, Any]:
        """``[sen2cor]``: also what "auto" reads to find a Sen2Cor."""
        return self.section("sen2cor")

    @sen2cor.setter
    def sen2cor(self, value: dict[str, Any]) -> None:
        self.sections["sen2cor"] = value

    @property
    def builtin(self) -> dict[str, Any]:
        return self.section("builtin")

    @builtin.setter
    def builtin(self, value: dict[str, Any]) -> None:
        self.sections["builtin"] = value

    @property
    def extra(self) -> MutableMapping[str, Any]:
        """Every section but s2l2a's own processors' ([cluster], [derive], a plug-in's, unknown ones):
        a live view of ``sections`` (``settings.extra["cluster"] = {...}`` stores the section)."""
        return _SectionsView(self.sections, hidden=tuple(registry.BUILTIN["processors"]))

    def unknown_sections(self) -> list[str]:
        """Sections nothing declares (typos, or a plug-in that is not installed here)."""
        known = set(registry.section_names())
        return sorted(k for k in self.sections if k not in known)

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
        unknown = settings.unknown_sections()
        if unknown and (str(path), tuple(unknown)) not in _warned:  # once per process and file
            _warned.add((str(path), tuple(unknown)))
            log.warning("Warning: %s: %s not known to s2l2a or an installed plug-in (a typo?); kept, "
                        "not used", path, ", ".join(f"[{k}]" for k in unknown))
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
        s.sections.update({k: v for k, v in data.items() if k not in _FIXED})
        s.validate(source)
        return s

    def to_dict(self) -> dict[str, Any]:
        """The TOML structure (None values left out: TOML has no null)."""
        campaign = {k: getattr(self, k) for k in _CAMPAIGN_KEYS if getattr(self, k) is not None}
        resources = {k: getattr(self, k) for k in _RESOURCE_KEYS if getattr(self, k) is not None}
        out: dict[str, Any] = {"campaign": campaign, "resources": resources}
        out.update(copy.deepcopy(self.sections))
        return out

    # -- validation ---------------------------------------------------------------------------

    def validate(self, source: Path | str = SETTINGS_FILE) -> None:
        """Raise one-line ConfigError for the first invalid value."""
        def bad(key: str, what: str) -> ConfigError:
            return ConfigError(f"{key}: {what}", source)

        if not isinstance(self.name, str):
            raise bad("[campaign] name", "must be a string")
        processors = registry.processor_names()
        if self.processor not in processors:
            raise bad("[campaign] processor", f"must be one of {', '.join(processors)}, not {self.processor!r}")
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
        known = registry.section_names()
        for name, table in self.sections.items():
            if name not in known:
                continue  # unknown: reported once by load(), kept for whoever reads it
            if not isinstance(table, dict):
                raise bad(f"[{name}]", "must be a table")
            if table:
                try:
                    registry.section(name).validate(table)  # type: ignore[union-attr]
                except ConfigError as e:
                    raise ConfigError(e.message, source) from None

    # -- derived values -----------------------------------------------------------------------

    def processor_options(self, processor: str | None = None) -> dict[str, Any]:
        """The TOML section handed to ``get_processor``: the one named after the processor
        (``[sen2cor]``, ``[builtin]``, a plug-in's); {} for "auto" (resolve it first)."""
        name = processor or self.processor
        if name == registry.AUTO:
            return {}
        table = self.sections.get(name)
        return dict(table) if isinstance(table, dict) else {}

    def job_settings(self, processor: str | None = None) -> JobSettings:
        """What one job may use; ``processor`` is the resolved processor name ("auto" resolved)."""
        from s2l2a.processors.base import JobSettings

        name = processor or self.processor
        opts = self.processor_options(name)
        resolution = opts.get("resolution")
        if name == registry.AUTO:  # not resolved yet: Sen2Cor's settings, else the built-in's
            resolution = self.sen2cor.get("resolution", self.builtin.get("resolution"))
            opts = self.sen2cor
        return JobSettings(
            cores=int(self.cores_per_job),
            memory_mb=int(self.memory_mb),
            timeout_s=float(self.timeout_s),
            resolution=resolution,
            processing_baseline=opts.get("processing_baseline") if name != "builtin" else None,
            output_format=str(opts["output_format"]) if opts.get("output_format") else None,
            extra=self.processor_options(name),
        )

    def above_machine(self, machine: tuple[int, int] | None = None, memory_mb: int | None = None) -> list[str]:
        """What one job asks for beyond this machine (cores, memory), one phrase each.

        Not a validation error: a campaign run on a cluster may ask for more than its login node
        has. A local run refuses it in its preflight (``s2l2a check``); ``init``/``config`` warn.
        """
        from s2l2a.machine import machine_resources

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
        return CampaignLayout.of(campaign_dir, self).output

    def scratch_root(self, campaign_dir: Path | str) -> Path:
        """Where jobs stage their work (``<campaign>/staging`` unless configured otherwise)."""
        return CampaignLayout.of(campaign_dir, self).scratch


class _SectionsView(MutableMapping[str, Any]):
    """``sections`` without the ``hidden`` names, reading and writing through."""

    def __init__(self, sections: dict[str, Any], hidden: tuple[str, ...]) -> None:
        self._sections, self._hidden = sections, hidden

    def __getitem__(self, key: str) -> Any:
        if key in self._hidden:
            raise KeyError(key)
        return self._sections[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._sections[key] = value

    def __delitem__(self, key: str) -> None:
        if key in self._hidden:
            raise KeyError(key)
        del self._sections[key]

    def __iter__(self) -> Iterator[str]:
        return (k for k in self._sections if k not in self._hidden)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return repr(dict(self))


def _section(data: dict[str, Any], name: str, source: Path | str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}]: must be a table", source)
    return value


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def setting_key(key: str) -> tuple[str, ...]:
    """The ``(section, key)`` a user means by ``key``: ``memory_mb`` -> ("resources", "memory_mb"),
    ``sen2cor.l2a_process`` or ``sen2cor.parameters.X`` as given. The one grammar of setting names, used by ``Campaign.config``
    and ``s2l2a config``: a bare key must be one of [campaign]/[resources] (those are fixed, so a typo
    there is refused with the known keys); other sections are free-form, checked by their declarations."""
    parts = tuple(str(key).split("."))
    if not key or any(not p or not p.replace("_", "").replace("-", "").isalnum() for p in parts):
        raise ConfigError(f"{key!r} is not a setting name; use section.key, e.g. resources.memory_mb "
                          "(see 's2l2a config DIR')")
    fixed = {"campaign": _CAMPAIGN_KEYS, "resources": _RESOURCE_KEYS}
    if len(parts) == 1:
        matches = [s for s, keys in fixed.items() if key in keys]
        if len(matches) != 1:
            raise ConfigError(f"{key!r}: give the section too, e.g. resources.{key} or sen2cor.{key} "
                              "(see 's2l2a config DIR')")
        return (matches[0], key)
    if parts[0] in fixed and (len(parts) != 2 or parts[1] not in fixed[parts[0]]):
        raise ConfigError(f"{key}: unknown key; [{parts[0]}] has {', '.join(fixed[parts[0]])}")
    return parts
