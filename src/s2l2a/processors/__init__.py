"""Processor lookup: the one place that turns a processor name from the settings into an object.

The processors themselves are plug-ins of :mod:`s2l2a.registry` (s2l2a's "builtin" and "sen2cor",
and whatever installed packages declare under the ``s2l2a.processors`` entry point); "auto" is
the rule here: Sen2Cor when one is configured or found, else the built-in processor. Processor
modules are imported lazily so that running Sen2Cor never imports the built-in processor's
numerical stack, and ``s2l2a --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from s2l2a.errors import ConfigError
from s2l2a.processors.base import JobSettings, L2AResult, ProcessingFailed, Processor
from s2l2a.registry import AUTO, processor_names, processor_plugin

__all__ = ["JobSettings", "L2AResult", "ProcessingFailed", "Processor", "find_sen2cor", "get_processor",
           "processor_names", "resolve_processor"]


def find_sen2cor(options: dict[str, Any] | None = None) -> Path | None:
    """The L2A_Process to use (``[sen2cor] l2a_process``, ``$SEN2COR_BIN``, PATH), or None."""
    from s2l2a.sen2cor.locate import find_l2a_process

    return find_l2a_process((options or {}).get("l2a_process"))


def resolve_processor(name: str, options: dict[str, Any] | None = None) -> str:
    """``auto`` → "sen2cor" when one is configured or found, else "builtin"; others unchanged.

    ``options`` is the ``[sen2cor]`` section for "auto" and "sen2cor". Raises ProcessingFailed
    (one line) for an unknown name or for "sen2cor" without a Sen2Cor.
    """
    known = processor_names()
    if name not in known:
        raise ProcessingFailed(f"unknown processor {name!r} (choose from {', '.join(known)})")
    if name == AUTO:
        return "sen2cor" if find_sen2cor(options) is not None else "builtin"
    if name == "sen2cor" and find_sen2cor(options) is None:
        from s2l2a.processors.sen2cor import missing_message

        raise ProcessingFailed(missing_message())
    return name


def get_processor(name: str, options: dict[str, Any] | None = None) -> Processor:
    """A ready processor for ``name`` built from its TOML section ``options``."""
    options = dict(options or {})
    resolved = resolve_processor(name, options)
    if name == AUTO and resolved == "builtin":
        options = {}  # the options given were meant for Sen2Cor
    try:
        return processor_plugin(resolved).create(options)
    except ConfigError as e:  # a plug-in that cannot be loaded: the job fails with that one line
        raise ProcessingFailed(str(e)) from None
