"""The one rule for numba's fast paths: numba installed and ``S2L2A_NO_NUMBA`` unset.

Every compiled kernel (the built-in inversion, terrain levels, block means, the cube's strip loop)
asks here, so the variable switches all of them off together and a missing numba falls back to
numpy everywhere in the same way.
"""

from __future__ import annotations

import os
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
