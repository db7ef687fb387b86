"""``s2l2a run DIR``: convert every queued product of a campaign (here, on Dask or as job arrays).

Parses options and prints; the run itself is :meth:`s2l2a.Campaign.run`
(:mod:`s2l2a.campaign.run`), which recovers from whatever a killed run left behind, checks,
starts the jobs and folds their outcomes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from s2l2a.cli._common import campaign_argument, user_errors
from s2l2a.cli._engines import engine_options, engine_run_options
from s2l2a.cli.check import skip_check_option
from s2l2a.errors import ConfigError
from s2l2a.registry import processor_names


@click.command("run")
@campaign_argument
@click.option("--processor", type=click.Choice(processor_names()), default=None,
              help="Processor for this run (default: the campaign's setting; installed plug-ins are listed too).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="At most this many conversions at once (default: as many as cores and memory allow).")
@click.option("--memory-mb", type=click.IntRange(min=256), default=None,
              help="Memory per conversion in MB (default: [resources] memory_mb).")
@click.option("--job", "job_ids", type=int, multiple=True, metavar="ID", help="Only this job (repeatable).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Run at most N jobs.")
@click.option("--derive", "derive_indices", default=None, metavar="INDICES",
              help="Derive these indices (e.g. ndvi,ndwi) + SCL as COGs right after each L2A is verified "
                   "(default: the [derive] section of s2l2a.toml, else nothing).")
@click.option("--formula", "formulas", multiple=True, metavar="NAME=EXPR",
              help="Also derive a formula over band names, e.g. 'ndmi=(B8A-B11)/(B8A+B11)' (repeatable).")
@click.option("--derive-resolution", type=click.Choice(["10", "20", "60"]), default=None,
              help="Resolution of derived outputs in m (default 10).")
@click.option("--clear-classes", default=None, metavar="CLASSES",
              help="Also write a clear-sky mask of these SCL classes, e.g. 4,5,6.")
@click.option("--keep", type=click.Choice(["all", "derived", "l2a"]), default=None,
              help="After deriving: keep all (default), only the derived outputs (deletes the verified "
                   "L2A), or only the L2A.")
@click.option("--delete-l1c", is_flag=True, default=False,
              help="Delete each L1C once its L2A is verified (never without this flag).")
@skip_check_option
@engine_options
@user_errors
def cmd(campaign: Path, processor: str | None, workers: int | None, memory_mb: int | None,
        job_ids: tuple[int, ...], limit: int | None, derive_indices: str | None, formulas: tuple[str, ...],
        derive_resolution: str | None, clear_classes: str | None, keep: str | None, delete_l1c: bool,
        skip_checks: tuple[str, ...], **engine_kw: Any) -> None:
    """Run the campaign's queued jobs, in parallel on this machine unless --engine says otherwise.

    The checks of 's2l2a check' run first; a failed one (✗) stops the run before any job starts.
    Ctrl-C stops cleanly (running jobs go back to the queue). Re-running continues where a
    run stopped, even after a crash. Exit status: 0 all done, 3 finished with failed jobs
    (see 's2l2a status'), 4 stopped starting jobs for lack of disk space, 130 interrupted,
    1 error (e.g. nothing planned, a failed check, another run holds the campaign).
    """
    from s2l2a.api import Campaign
    from s2l2a.campaign.progress import reporter_for

    options = engine_run_options(engine_kw)
    if derive_indices is not None:
        options["derive"] = [i for i in derive_indices.split(",") if i.strip()]
    if clear_classes:
        try:
            options["clear_classes"] = [int(c) for c in clear_classes.split(",") if c.strip()]
        except ValueError:
            raise ConfigError(f"--clear-classes {clear_classes!r}: give SCL class numbers like 4,5,6") from None
    reporter = reporter_for(None, out=click.echo, err=lambda line: click.echo(line, err=True))
    summary = Campaign.open(campaign).run(
        progress=reporter, processor=processor, workers=workers, memory_mb=memory_mb, job_ids=job_ids,
        limit=limit, formulas=formulas, derive_resolution=int(derive_resolution) if derive_resolution else None,
        keep=keep, delete_l1c=delete_l1c, skip_checks=skip_checks, **options)
    sys.exit(summary.exit_code)
