"""Requeueing the jobs whose published output vanished or no longer matches its manifest.

:func:`requeue_vanished` compares every done job's output with its manifest
(:mod:`s2l2a.outputs.manifest`: names and sizes, cheap enough for each ``s2l2a run``; ``full`` also
opens every raster) and requeues the jobs whose output is gone or incomplete, so a product
deleted behind the campaign's back is converted again instead of being reported as done.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from s2l2a.outputs.manifest import check_output


def requeue_vanished(campaign_dir: Path | str, store: Any, *, full: bool = False) -> list[tuple[int, str]]:
    """Requeue every done job whose output is gone or incomplete; returns (job id, problem) each.

    An L2A removed on purpose by the keep policy ``derived`` (its derived folder exists) is not
    a problem. Only jobs in state done are looked at; the rerun publishes over the remains.
    """
    from s2l2a.campaign.layout import CampaignLayout
    from s2l2a.campaign.store import StateChange

    derived: dict[str, Path] | None = None
    found: list[tuple[int, str]] = []
    for job in store.jobs("done"):
        if not job.output_path:
            continue
        out = Path(job.output_path)
        problem = check_output(out, full=full, quick=not full)
        if problem is None:
            continue
        if not out.exists():
            if derived is None:
                from s2l2a.outputs.derive import find_derived

                derived = find_derived(CampaignLayout.of(campaign_dir).derived)
            if out.name.removesuffix(".SAFE") in derived:
                continue  # kept only the derived outputs (--keep derived)
        found.append((job.id, problem))
    if found:
        store.set_states([StateChange(job_id, "queued", reason=f"requeued: output {problem}")
                          for job_id, problem in found])
    return found
