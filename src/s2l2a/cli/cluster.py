"""``s2l2a cluster cancel|extend DIR``: act on the job arrays a campaign has on a scheduler.

Cancelled elements are reconciled like any other element that ended without a result file
(failure class ``killed``); extending raises the run limit of arrays still queued or running,
for the day a queue turns out slower than the campaign's history said.
"""

from __future__ import annotations

from pathlib import Path

import click

from s2l2a.cli._common import Duration, campaign_argument, user_errors


@click.group("cluster")
def cmd() -> None:
    """Cancel or extend the job arrays a campaign submitted (Slurm, LSF, PBS)."""


def _engines_and_records(campaign: Path) -> tuple[dict, list]:
    from s2l2a.engines.cluster import ClusterEngine, load_records, make_scheduler
    from s2l2a.engines.scheduler import ClusterOptions

    records = load_records(campaign, open_only=True)
    engines = {r.scheduler: ClusterEngine(make_scheduler(r.scheduler, ClusterOptions())) for r in records}
    return engines, records


@cmd.command("cancel")
@campaign_argument
@user_errors
def cancel(campaign: Path) -> None:
    """Cancel every unfinished array of the campaign and record its jobs as killed."""
    from s2l2a.campaign.lock import RunLock
    from s2l2a.campaign.store import CampaignStore
    from s2l2a.engines.cluster import reconcile

    campaign = campaign.resolve()
    engines, records = _engines_and_records(campaign)
    if not records:
        click.echo("no unfinished arrays")
        return
    for rec in records:
        engines[rec.scheduler].cancel([rec])
        click.echo(f"cancelled {rec.scheduler} array {rec.job_id} ({rec.name})")
    with RunLock(campaign), CampaignStore.open(campaign) as store:
        import time

        lost = folded = 0
        for _ in range(10):  # the scheduler needs a moment to move elements to CANCELLED
            r = reconcile(campaign, store, engines)
            lost, folded = lost + len(r.lost), folded + r.folded
            if not r.in_flight:
                break
            time.sleep(1)
    click.echo(f"{lost} job(s) recorded as killed, {folded} finished result(s) recorded"
               + (f", {r.in_flight} still ending" if r.in_flight else ""))


@cmd.command("extend")
@campaign_argument
@click.option("--run-limit", type=Duration(), required=True, help="New run limit per element (e.g. 8h).")
@user_errors
def extend(campaign: Path, run_limit: float) -> None:
    """Raise the run limit of unfinished arrays (bmod -W, scontrol update TimeLimit, qalter)."""
    from s2l2a.engines.directives import check_seconds, refuse

    run_limit = check_seconds("--run-limit", run_limit)
    if run_limit < 60:
        raise refuse("--run-limit", f"{run_limit:.0f} s is less than one minute")
    engines, records = _engines_and_records(campaign.resolve())
    for rec in records:
        for job_id in engines[rec.scheduler].extend([rec], int(run_limit)):
            click.echo(f"{rec.scheduler} array {job_id}: run limit now {int(run_limit)} s")
    if not records:
        click.echo("no unfinished arrays")
