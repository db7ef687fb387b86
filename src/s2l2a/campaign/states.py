"""The job state machine: the one place that says which state may follow which.

Every state change in the store goes through :func:`check_transition`, so a bug in an engine
(e.g. marking a queued job done without running it) fails loudly instead of corrupting a campaign.
"""

from __future__ import annotations

from enum import StrEnum

from s2l2a.errors import CampaignError


class JobState(StrEnum):
    """Where a job stands. ``skipped`` jobs are never run (duplicate, output already there)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


#: allowed transitions; anything else raises IllegalTransition
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    # a queued job starts, or the planner finds it is a duplicate / already converted
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.SKIPPED}),
    # an attempt ends, or the run driving it died (requeue_stale)
    JobState.RUNNING: frozenset({JobState.DONE, JobState.FAILED, JobState.QUEUED}),
    # retry is explicit; a failed job that later turns out to be a duplicate is skipped
    JobState.FAILED: frozenset({JobState.QUEUED, JobState.SKIPPED}),
    # a done job is only ever redone on purpose (its output vanished), or superseded by a newer
    # reprocessing of its acquisition planned later (skipped as a duplicate; its output stays until
    # the winner's output replaces it)
    JobState.DONE: frozenset({JobState.QUEUED, JobState.SKIPPED}),
    # a skipped duplicate becomes the winner again (e.g. the winner's input was removed)
    JobState.SKIPPED: frozenset({JobState.QUEUED}),
}


#: how skip reasons start, so reports can count them by kind
SKIP_DUPLICATE = "duplicate of "
SKIP_DONE = "output exists: "
#: a newer reprocessing whose older one is running: it waits (skipped) until a later plan queues it
SKIP_WAITING = "waits for "


class IllegalTransition(CampaignError):
    """A state change the state machine does not allow (a programming error, reported in one line)."""


def check_transition(job_id: int, src: JobState | str, dst: JobState | str) -> None:
    """Raise IllegalTransition unless ``src -> dst`` is allowed."""
    s, d = JobState(src), JobState(dst)
    if d not in TRANSITIONS[s]:
        raise IllegalTransition(f"job {job_id}: illegal state change {s} -> {d}")
