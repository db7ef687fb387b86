"""Campaigns: settings, the SQLite store of jobs, the planner, the progress log.

Names are imported on first use (PEP 562), so that a leaf such as ``campaign.failures`` can be
imported by processors and engines without loading the store and the settings.
"""

from __future__ import annotations

from s2l2a import lazy

_EXPORTS = {
    "CampaignSettings": "s2l2a.campaign.settings",
    "IllegalTransition": "s2l2a.campaign.states", "JobState": "s2l2a.campaign.states",
    "AttemptOutcome": "s2l2a.campaign.store", "CampaignStore": "s2l2a.campaign.store",
    "Job": "s2l2a.campaign.store", "ProductRecord": "s2l2a.campaign.store", "StateChange": "s2l2a.campaign.store",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy.exports(__name__, _EXPORTS)
