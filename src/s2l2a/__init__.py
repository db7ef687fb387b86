"""s2l2a: batch Sentinel-2 L1C -> L2A conversion with Sen2Cor or a built-in processor.

The Python API (docs/api.md)::

    import s2l2a

    c = s2l2a.Campaign.create("/data/camp", processor="builtin")
    c.plan(["/data/L1C"])
    c.run()
    c.status()

Names are imported on first use, so ``import s2l2a`` (and ``s2l2a --help``) stays fast.
"""

from __future__ import annotations

from s2l2a import lazy

__version__ = "0.1.0"

_EXPORTS = {
    "Campaign": "s2l2a.api", "NothingPlanned": "s2l2a.api", "StacResult": "s2l2a.api",
    "RunOptions": "s2l2a.campaign.run", "RunSummary": "s2l2a.campaign.run",
    "RunEvent": "s2l2a.campaign.progress",
    "S2L2AError": "s2l2a.errors", "ConfigError": "s2l2a.errors", "CampaignError": "s2l2a.errors",
    "ProductError": "s2l2a.errors", "CampaignLocked": "s2l2a.campaign.lock",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


__getattr__, __dir__ = lazy.exports(__name__, _EXPORTS)
