"""Campaigns: settings, the SQLite store of jobs, the planner, the progress log."""

from s2l2a.campaign.settings import CampaignSettings
from s2l2a.campaign.states import IllegalTransition, JobState
from s2l2a.campaign.store import AttemptOutcome, CampaignStore, Job, ProductRecord, StateChange

__all__ = ["AttemptOutcome", "CampaignSettings", "CampaignStore", "IllegalTransition", "Job", "JobState",
           "ProductRecord", "StateChange"]
