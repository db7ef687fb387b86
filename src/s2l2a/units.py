"""Durations as people type them: the one grammar shared by command-line options and settings.

``14400`` (seconds), ``90m``, ``4h``, ``2d``, ``1.5h``, ``1:30`` (LSF's hh:mm) and ``01:30:00``.
Every caller gets the same refusals in one line naming the setting or option: no text that is
not a duration, no NaN or infinity, nothing negative, and no zero unless the caller allows it.
"""

from __future__ import annotations

import math
import re
from typing import Any

from s2l2a.errors import ConfigError

_NUMBER_UNIT = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([smhd]?)")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
EXAMPLES = "e.g. 14400, 4h, 90m, 4:00"


def _shown(value: Any) -> str:
    return repr(value[:40]) if isinstance(value, str) else repr(value)


def _refuse(label: str | None, why: str) -> ConfigError:
    return ConfigError(f"{label}: {why}" if label else why)


def parse_duration(value: Any, label: str | None = None, *, allow_zero: bool = False) -> float:
    """Seconds from a number or a duration text; ConfigError ("label: why", one line) otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _refuse(label, f"must be a number of seconds or a duration ({EXAMPLES}), not {_shown(value)}")
    if isinstance(value, str):
        text = value.strip()
        m = _NUMBER_UNIT.fullmatch(text)
        parts = text.split(":")
        try:
            if m:
                seconds = float(m[1]) * _UNIT_S[m[2]]
            elif 2 <= len(parts) <= 3 and all(p.isascii() and p.isdigit() for p in parts):
                nums = [int(p) for p in parts] + ([0] if len(parts) == 2 else [])
                seconds = float(nums[0] * 3600 + nums[1] * 60 + nums[2])
            else:
                raise ValueError
        except (ValueError, OverflowError):  # also digits beyond what int() or float() take
            raise _refuse(label, f"{_shown(value)} is not a duration ({EXAMPLES})") from None
    else:
        seconds = float(value)
    if not math.isfinite(seconds):
        raise _refuse(label, f"must be a finite number of seconds, not {_shown(value)}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise _refuse(label, f"must be {'zero or ' if allow_zero else ''}positive, not {_shown(value)}")
    return seconds
