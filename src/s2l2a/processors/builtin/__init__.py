"""The built-in physically based L2A processor (no Sen2Cor needed).

``BuiltinProcessor`` is imported lazily so that ``lut``/``invert`` (and the LUT generator) can be
used without pulling in the whole pipeline.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BuiltinProcessor"]


def __getattr__(name: str) -> Any:
    if name == "BuiltinProcessor":
        from s2l2a.processors.builtin.processor import BuiltinProcessor

        return BuiltinProcessor
    raise AttributeError(name)
