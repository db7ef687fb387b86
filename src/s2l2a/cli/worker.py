"""``s2l2a worker --campaign DIR --index N``: what one scheduler array element runs.

It reads its jobs from the manifest written at submit time and runs each through
``run_job`` (:func:`s2l2a.campaign.cluster.run_element`), which writes ``results/<job_id>.json``. It never opens the SQLite store: many
nodes writing one SQLite file on NFS/GPFS corrupts it, so the submitting side folds the result
files in. Exit status 0 when every job of the element is done, 1 otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from s2l2a.cli._common import user_errors


@click.command("worker")
@click.option("--campaign", "campaign", required=True, metavar="DIR",
              type=click.Path(file_okay=False, path_type=Path), help="The campaign directory.")
@click.option("--index", required=True, type=click.IntRange(min=1),
              help="Array element index, 1-based (the scheduler's array task id).")
@click.option("--manifest", default=None, metavar="NAME",
              help="Manifest name or path under DIR/manifests (default: the newest).")
@user_errors
def cmd(campaign: Path, index: int, manifest: str | None) -> None:
    """Run one array element's job(s) of a campaign (started by the cluster scheduler)."""
    from s2l2a.campaign.cluster import run_element

    outcomes = run_element(campaign, index, manifest)
    for o in outcomes:
        click.echo(f"job {o.job_id}: {o.state}" + (f" ({o.failure_class}) {o.message}" if not o.ok else
                                                   f" -> {o.output_path}"))
    sys.exit(0 if all(o.ok for o in outcomes) else 1)
