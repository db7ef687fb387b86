"""The one rule for numba's fast paths: numba installed and ``S2L2A_NO_NUMBA`` unset.

Every compiled kernel (the built-in inversion, terrain levels, block means, the cube's strip loop)
asks here, so the variable switches all of them off together and a missing numba falls back to
numpy everywhere in the same way.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any


def numba_module() -> Any | None:
    """The numba module, or None without numba or with ``S2L2A_NO_NUMBA`` set."""
    if os.environ.get("S2L2A_NO_NUMBA"):
        return None
    try:
        import numba
    except ImportError:
        return None
    return numba


def kernel(build: Callable[[Any], Any]) -> Callable[[], Any]:
    """Decorator for a kernel builder ``build(numba) -> compiled function``: built on the first call
    and kept; None without numba or with ``S2L2A_NO_NUMBA`` set, so the caller takes its numpy path.
    ``.fresh()`` is an unbuilt copy (tests switch numba off with it)."""
    built: list[Any] = []

    @functools.wraps(build)
    def get() -> Any:
        if not built:
            numba = numba_module()
            built.append(None if numba is None else build(numba))
        return built[0]

    get.fresh = lambda: kernel(build)  # type: ignore[attr-defined]
    return get
