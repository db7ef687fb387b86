"""Names a package exports but imports on first use (PEP 562).

``import s2l2a`` must stay fast (``s2l2a --help``), and leaves such as ``campaign.failures`` must be
importable by processors and engines without loading the store; each package names its exports in
one table and gets its ``__getattr__``/``__dir__`` from here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def exports(package: str, table: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``table`` maps a name to the module defining it."""
    def getattr_(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def dir_() -> list[str]:
        return sorted(set(vars(importlib.import_module(package))) | set(table))

    return getattr_, dir_
