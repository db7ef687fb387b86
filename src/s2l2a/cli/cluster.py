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


@cmd.command("cancel")
@campaign_argument
@user_errors
def cancel(campaign: Path) -> None:
    """Cancel every unfinished array of the campaign and record its jobs as killed."""
    from s2l2a.api import Campaign

    records, r = Campaign(campaign).cancel(
        on_cancel=lambda rec: click.echo(f"cancelled {rec.scheduler} array {rec.job_id} ({rec.name})"))
    if not records:
        click.echo("no unfinished arrays")
        return
    click.echo(f"{len(r.lost)} job(s) recorded as killed, {r.folded} finished result(s) recorded"
               + (f", {r.in_flight} still ending" if r.in_flight else ""))


@cmd.command("extend")
@campaign_argument
@click.option("--run-limit", type=Duration(), required=True, help="New run limit per element (e.g. 8h).")
@user_errors
def extend(campaign: Path, run_limit: float) -> None:
    """Raise the run limit of unfinished arrays (bmod -W, scontrol update TimeLimit, qalter)."""
    from s2l2a.api import Campaign

    records = Campaign(campaign).extend(run_limit)
    for rec in records:
        click.echo(f"{rec.scheduler} array {rec.job_id}: run limit now {int(run_limit)} s")
    if not records:
        click.echo("no unfinished arrays")
