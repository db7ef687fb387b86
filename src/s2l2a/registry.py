"""The pluggable kinds in one place: processors, schedulers and acquisition sources.

Each plug-in is one object that declares its name, its settings and (schedulers) its failure
words; s2l2a's own are listed in :data:`BUILTIN`, third-party ones come from the entry point groups
``s2l2a.processors``, ``s2l2a.schedulers`` and ``s2l2a.sources`` of installed packages::

    [project.entry-points."s2l2a.processors"]
    mine = "my_package.processor:PLUGIN"          # a ProcessorPlugin
    [project.entry-points."s2l2a.schedulers"]
    condor = "my_package.condor:HTCondor"         # a s2l2a.engines.scheduler.Scheduler subclass
    [project.entry-points."s2l2a.sources"]
    mirror = "my_package.mirror:MirrorSource"     # a class with name, search() and download()

Names are known without importing anything (``s2l2a --help`` stays fast, running Sen2Cor never
imports the built-in processor's numerical stack); a plug-in's module is imported when it is used.
A plug-in cannot take the name of one of s2l2a's own (or ``auto``): such an entry point is ignored.

Settings: a processor's options are the campaign section named after it (``[builtin]``); a
scheduler's own keys live in ``[cluster]`` next to the shared ones; sources share ``[acquire]``
(s2l2a's knobs: a plug-in source cannot declare keys there yet).
:class:`Section` and :class:`Setting` describe them (defaults, kinds, checks, command-line options)
for ``campaign/settings.py``, ``s2l2a config`` and the docs.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from s2l2a.errors import ConfigError

#: the kinds of plug-in and their entry point groups
GROUPS = {"processors": "s2l2a.processors", "schedulers": "s2l2a.schedulers", "sources": "s2l2a.sources"}

#: s2l2a's own plug-ins: name -> "module:attribute", imported on first use
BUILTIN: dict[str, dict[str, str]] = {
    "processors": {"builtin": "s2l2a.processors.builtin:PLUGIN", "sen2cor": "s2l2a.processors.sen2cor:PLUGIN"},
    "schedulers": {"slurm": "s2l2a.engines.slurm:Slurm", "lsf": "s2l2a.engines.lsf:LSF",
                   "pbs": "s2l2a.engines.pbs:PBS"},
    "sources": {"gcs": "s2l2a.acquire.gcs:GcsSource", "cdse": "s2l2a.acquire.cdse:CdseSource"},
}

#: the processor name that is a rule, not a plug-in: Sen2Cor when one is found, else the built-in one
AUTO = "auto"

#: campaign sections owned by a part of s2l2a rather than a processor: name -> "module:attribute"
#: of a Section (or of a function returning one)
SECTIONS: dict[str, str] = {
    "cluster": "s2l2a.engines.scheduler:cluster_section",
    "derive": "s2l2a.outputs.derive:DERIVE_SECTION",
    "acquire": "s2l2a.acquire.settings:ACQUIRE_SECTION",
}


# -- settings declarations ------------------------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """One key of a settings section.

    ``kind`` types a value typed on the command line (``s2l2a config``) and in the docs: str, int,
    float, bool, path (made absolute), dir (kept relative), duration (seconds or 90m/3h), list, any.
    ``check(label, value)`` raises ConfigError("label: why") for a bad value. ``option`` is the
    command-line option that overrides the key, where one does.
    """

    key: str
    kind: str = "str"
    default: Any = None
    choices: tuple[Any, ...] = ()
    help: str = ""
    option: str | None = None
    check: Callable[[str, Any], Any] | None = None

    def validate(self, section: str, value: Any) -> None:
        self.check_value(f"[{section}] {self.key}", value)

    def check_value(self, label: str, value: Any) -> None:
        """``value`` checked (choices, then ``check``); errors name ``label`` (``--lsf-unit``)."""
        if value is None:
            return
        if self.choices and value not in self.choices:
            shown = ", ".join(str(c) for c in self.choices)
            raise ConfigError(f"{label}: must be one of {shown}, not {value!r}")
        if self.check is not None:
            self.check(label, value)


@dataclass(frozen=True)
class Section:
    """A ``[name]`` table of s2l2a.toml: its keys and how they are checked when the file is read.

    ``open``: keys not declared are allowed (they are checked by their owner when used, e.g. the
    built-in processor refuses unknown options when it is built); otherwise they are typos.
    ``check(table)`` runs after the per-key checks, for rules that span keys. ``lazy``: reading
    the file checks the keys only; the owner checks the values where it uses them, with what it
    knows then (``[cluster]``: the chosen scheduler's name rules; ``[acquire]``: the environment).
    """

    name: str
    settings: tuple[Setting, ...] = ()
    open: bool = False
    help: str = ""
    check: Callable[[dict[str, Any]], None] | None = None
    lazy: bool = False

    def keys(self) -> tuple[str, ...]:
        return tuple(s.key for s in self.settings)

    def get(self, key: str) -> Setting | None:
        return next((s for s in self.settings if s.key == key), None)

    def validate(self, table: Any) -> dict[str, Any]:
        """``table`` checked: a table, known keys (unless open), each value; one-line ConfigError."""
        if not isinstance(table, dict):
            raise ConfigError(f"[{self.name}]: must be a table")
        for key, value in table.items():
            setting = self.get(key)
            if setting is None:
                if not self.open:
                    raise ConfigError(f"[{self.name}] {key}: unknown key (known: {', '.join(sorted(self.keys()))})")
                continue
            if not self.lazy:
                setting.validate(self.name, value)
        if self.check is not None and not self.lazy:
            self.check(table)
        return table


# -- small checks for Setting.check ------------------------------------------------------------------

def non_empty_path(label: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{label}: must be a non-empty path")


def non_negative_seconds(label: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{label}: must be a number of seconds, 0 or more, not {value!r}")


def boolean(label: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{label}: must be true or false, not {value!r}")


def string_list(label: str, value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{label}: must be a list of strings, not {value!r}")


# -- processors ------------------------------------------------------------------------------------

#: keys every processor's section accepts besides its own: read by the campaign's job runner
#: (``campaign/execute.run_job``), not by the processor
RUNNER_SETTINGS = (
    Setting("verify", "bool", True, check=boolean,
            help="check the finished L2A (verify_l2a) before publishing it; off only for benchmarks"),
    Setting("keep_failed_staging", "bool", False, check=boolean,
            help="keep a failed job's staging folder to look into (never on a full disk)"),
)

@dataclass(frozen=True)
class ProcessorPlugin:
    """A processor as the registry knows it; the processor itself is built by :meth:`create`.

    ``factory`` ("module:attribute", or the callable) is called with the options of the campaign's
    ``[name]`` section and returns an object following ``s2l2a.processors.base.Processor``.
    ``output_mb``: the disk one product's outputs take (the run's free-space floor before history).
    ``max_duration_s``: how long one product may take on a job's cores, an upper bound; cluster
    arrays are sized with it until durations are measured (None: the job timeout is used).
    """

    name: str
    factory: str | Callable[..., Any]
    section: Section
    summary: str = ""
    output_mb: int = 1200
    test_only: bool = False
    max_duration_s: float | None = None

    def create(self, options: dict[str, Any] | None = None) -> Any:
        make = _load(self.factory, f"processor {self.name!r}") if isinstance(self.factory, str) else self.factory
        return make(**dict(options or {}))


@dataclass
class _Entry:
    name: str
    target: str
    origin: str                       # "s2l2a" or the distribution that declared the entry point
    loaded: Any = field(default=None)


def _load(target: str, what: str) -> Any:
    module, _, attr = target.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split(".") if attr else ():
            obj = getattr(obj, part)
    except Exception as e:  # noqa: BLE001 - a broken plug-in is one line, not a traceback
        raise ConfigError(f"{what} ({target}) cannot be loaded: {type(e).__name__}: {e}") from None
    return obj


@cache
def _entries(kind: str) -> dict[str, _Entry]:
    """Every plug-in of ``kind``: s2l2a's own first, then installed entry points (sorted by name)."""
    out = {name: _Entry(name, target, "s2l2a") for name, target in BUILTIN[kind].items()}
    plugins = sorted(entry_points(group=GROUPS[kind]), key=lambda ep: ep.name)
    for ep in plugins:
        if ep.name in out or ep.name == AUTO or not _valid_name(ep.name):
            continue  # s2l2a's own names (and odd ones) cannot be taken over by a plug-in
        dist = getattr(ep, "dist", None)
        out[ep.name] = _Entry(ep.name, ep.value, getattr(dist, "name", None) or "a plug-in")
    return out


def _valid_name(name: str) -> bool:
    """A name that is also a TOML section name and a command-line word: [a-z0-9_-], letter first."""
    return bool(name) and name[0].isalpha() and name.isascii() and all(c.isalnum() or c in "_-" for c in name) \
        and name == name.lower()


def refresh() -> None:
    """Forget what was discovered (after installing a plug-in in a running interpreter; tests)."""
    _entries.cache_clear()


def _get(kind: str, name: str, what: str) -> Any:
    entry = _entries(kind).get(name)
    if entry is None:
        raise ConfigError(f"unknown {what} {name!r} (known: {', '.join(names(kind))})")
    if entry.loaded is None:
        entry.loaded = _load(entry.target, f"{what} {name!r}")
    return entry.loaded


def names(kind: str) -> tuple[str, ...]:
    """Names of every plug-in of ``kind`` ("processors", "schedulers", "sources"), s2l2a's own first."""
    return tuple(_entries(kind))


def origin(kind: str, name: str) -> str:
    """Who provides a plug-in: "s2l2a" or the name of the installed distribution."""
    return _entries(kind)[name].origin


def processor_names(*, auto: bool = True) -> tuple[str, ...]:
    """What ``--processor`` and ``[campaign] processor`` accept: "auto" and every processor."""
    return ((AUTO,) if auto else ()) + names("processors")


def processor_plugin(name: str) -> ProcessorPlugin:
    """The declaration of processor ``name`` (not "auto": resolve it first)."""
    plugin = _get("processors", name, "processor")
    if not isinstance(plugin, ProcessorPlugin) or plugin.name != name:
        raise ConfigError(f"processor {name!r} ({_entries('processors')[name].target}) is not a "
                          "s2l2a.registry.ProcessorPlugin of that name")
    return plugin


def scheduler_names() -> tuple[str, ...]:
    """Every batch scheduler ``--engine`` accepts."""
    return names("schedulers")


def get_scheduler(name: str) -> Any:
    """The Scheduler class of ``name`` (instantiate it with the ClusterOptions)."""
    cls = _get("schedulers", name, "scheduler")
    from s2l2a.engines.scheduler import Scheduler

    if not (isinstance(cls, type) and issubclass(cls, Scheduler)) or cls.name != name:
        raise ConfigError(f"scheduler {name!r} ({_entries('schedulers')[name].target}) is not a "
                          "s2l2a.engines.scheduler.Scheduler subclass of that name")
    return cls


def schedulers() -> list[Any]:
    """Every scheduler class (imports them; for the [cluster] section and its checks)."""
    return [get_scheduler(n) for n in scheduler_names()]


def source_names() -> tuple[str, ...]:
    """Every acquisition source ``search``/``fetch --source`` accepts."""
    return names("sources")


def get_source(name: str) -> Any:
    """The source class of ``name`` (instantiate it with an ``acquire.download.Http``)."""
    cls = _get("sources", name, "source")
    if getattr(cls, "name", None) != name or not all(callable(getattr(cls, m, None)) for m in ("search", "download")):
        raise ConfigError(f"source {name!r} ({_entries('sources')[name].target}) does not declare that name "
                          "with search() and download()")
    return cls


# -- sections ---------------------------------------------------------------------------------------

def section_names() -> tuple[str, ...]:
    """Sections s2l2a.toml may have besides [campaign] and [resources] (no plug-in is imported)."""
    return tuple(SECTIONS) + names("processors")


def section(name: str) -> Section | None:
    """The declaration of section ``[name]``; None when nothing declares it."""
    if name in SECTIONS:
        found = _load(SECTIONS[name], f"section [{name}]")
        return found() if callable(found) else found
    if name in _entries("processors"):
        own = processor_plugin(name).section
        return replace(own, settings=own.settings + tuple(r for r in RUNNER_SETTINGS if r.key not in own.keys()))
    return None
