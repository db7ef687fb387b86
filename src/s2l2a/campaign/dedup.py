"""How a campaign records the reprocessings it does not convert.

Which products are one acquisition and which of its reprocessings is kept (highest processing
baseline, then latest generation time) is a product rule: :mod:`s2l2a.safe.acquisition`. The
planner applies it to the store's jobs; the losers are skipped with the reason made here.
"""

from __future__ import annotations

from s2l2a.campaign.states import SKIP_DUPLICATE
from s2l2a.safe.acquisition import Candidate

DUPLICATE_PREFIX = SKIP_DUPLICATE


def duplicate_reason(winner: Candidate) -> str:
    """The skip reason of a loser, naming the product kept."""
    return f"{DUPLICATE_PREFIX}{winner.name} (baseline {winner.baseline or '?'})"
