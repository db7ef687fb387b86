"""Processor lookup: the one place that turns a processor name from the settings into an object.

Processor modules are imported lazily so that running Sen2Cor never imports the built-in
processor's numerical stack, and ``s2l2a --help`` stays fast.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from s2l2a.campaign.failures import FailureClass
from s2l2a.processors.base import JobSettings, L2AResult, ProcessingFailed, Processor

__all__ = ["FailureClass", "JobSettings", "L2AResult", "ProcessingFailed", "Processor",
           "PROCESSOR_NAMES", "find_sen2cor", "get_processor", "resolve_processor", "sen2cor_missing_message"]

#: names accepted by get_processor ("noop" is for tests and the engine benchmark)
PROCESSOR_NAMES = ("auto", "builtin", "sen2cor", "noop")


def sen2cor_missing_message() -> str:
    """One line telling the user how to point s2l2a at an installed Sen2Cor."""
    return ("no Sen2Cor L2A_Process was found (not configured, not on PATH); point to one with "
            "'s2l2a config DIR sen2cor.l2a_process PATH' (l2a_process under [sen2cor] in s2l2a.toml)")


def find_sen2cor(options: dict[str, Any] | None = None) -> Path | None:
    """The L2A_Process to use: the configured one if it exists, else one on PATH, else None.

    Prefers the Sen2Cor package's own locator when it has one (it knows install layouts);
    falls back to ``[sen2cor] l2a_process``, ``$SEN2COR_BIN`` and ``PATH``.
    """
    options = options or {}
    try:
        from s2l2a.sen2cor.locate import find_l2a_process
    except ImportError:  # the Sen2Cor package is optional at this level
        find_l2a_process = None
    if find_l2a_process is not None:
        return find_l2a_process(options.get("l2a_process"))
    configured = options.get("l2a_process") or os.environ.get("SEN2COR_BIN")
    if configured:
        path = Path(str(configured)).expanduser()
        return path if path.is_file() and os.access(path, os.X_OK) else None
    which = shutil.which("L2A_Process")
    return Path(which) if which else None


def resolve_processor(name: str, options: dict[str, Any] | None = None) -> str:
    """``auto`` → "sen2cor" when one is configured or found, else "builtin"; others unchanged.

    Raises ProcessingFailed (one line) for an unknown name or for "sen2cor" without a Sen2Cor.
    """
    if name not in PROCESSOR_NAMES:
        raise ProcessingFailed(f"unknown processor {name!r} (choose from {', '.join(PROCESSOR_NAMES)})")
    if name == "auto":
        return "sen2cor" if find_sen2cor(options) is not None else "builtin"
    if name == "sen2cor" and find_sen2cor(options) is None:
        raise ProcessingFailed(sen2cor_missing_message())
    return name


def get_processor(name: str, options: dict[str, Any] | None = None) -> Processor:
    """A ready processor for ``name`` built from its TOML section ``options``."""
    options = dict(options or {})
    resolved = resolve_processor(name, options)
    if name == "auto" and resolved == "builtin":
        options = {}  # the options given were meant for Sen2Cor
    if resolved == "noop":
        from s2l2a.processors.noop import NoopProcessor
        return NoopProcessor(**options)
    if resolved == "builtin":
        from s2l2a.processors.builtin import BuiltinProcessor  # type: ignore[attr-defined]
        return BuiltinProcessor(**options)
    from s2l2a.processors.sen2cor import Sen2CorProcessor  # type: ignore[import-not-found]
    return Sen2CorProcessor(**options)
