"""``s2l2a retry DIR``: put failed jobs back in the queue (all, by failure class, or by id)."""

from __future__ import annotations

from pathlib import Path

import click

from s2l2a.campaign.failures import FailureClass
from s2l2a.cli._common import campaign_argument, user_errors


@click.command("retry")
@campaign_argument
@click.option("--class", "failure_class", type=click.Choice([c.value for c in FailureClass]),
              help="Only jobs that failed with this class.")
@click.option("--job", "job_ids", type=int, multiple=True, metavar="ID", help="Only this job (repeatable).")
@user_errors
def cmd(campaign: Path, failure_class: str | None, job_ids: tuple[int, ...]) -> None:
    """Requeue failed jobs; the next `s2l2a run` picks them up."""
    from s2l2a.api import Campaign

    c = Campaign(campaign)
    if job_ids:
        for job in c.jobs():
            if job.id in job_ids and str(job.state) != "failed":
                click.echo(f"job {job.id}: is {job.state}, not failed; left alone", err=True)
    n = c.retry(failure_class=failure_class, job_ids=job_ids)
    click.echo(f"requeued {n} failed job{'s' if n != 1 else ''}")
