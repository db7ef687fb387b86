"""Campaigns: settings, the SQLite store of jobs, the planner, the progress log.

Names are imported on first use (PEP 562), so that a leaf such as ``campaign.failures`` can be
imported by processors and engines without loading the store and the settings.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CampaignSettings": "s2l2a.campaign.settings",
    "IllegalTransition": "s2l2a.campaign.states", "JobState": "s2l2a.campaign.states",
    "AttemptOutcome": "s2l2a.campaign.store", "CampaignStore": "s2l2a.campaign.store",
    "Job": "s2l2a.campaign.store", "ProductRecord": "s2l2a.campaign.store", "StateChange": "s2l2a.campaign.store",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 's2l2a.campaign' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
