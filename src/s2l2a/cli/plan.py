"""``s2l2a plan DIR ROOT...``: add the L1C products under the roots to a campaign."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from s2l2a.cli._common import campaign_argument, user_errors


@click.command("plan")
@campaign_argument
@click.argument("roots", nargs=-1, required=True, metavar="ROOT...",
                type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@user_errors
def cmd(campaign: Path, roots: tuple[Path, ...], as_json: bool) -> None:
    """Find L1C products under ROOT... and plan one job per product (safe to re-run).

    Reprocessings of one acquisition keep the highest baseline, products already converted are
    skipped, and each unusable input is reported on one line on stderr.
    """
    from s2l2a.campaign.planner import plan

    try:
        if sys.stderr.isatty():
            with _bar() as on_progress:
                report = plan(campaign, roots, on_progress=on_progress)
        else:
            report = plan(campaign, roots)
    except KeyboardInterrupt:
        click.echo("interrupted: products read so far are planned; run the same plan again to continue",
                   err=True)
        sys.exit(130)
    for line in report.rejected:
        click.echo(line, err=True)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(f"found {report.found}: {report.summary_line()}")
    if report.found == 0 and not report.rejected:
        click.echo(f"error: no L1C products found under {', '.join(map(str, roots))}", err=True)
        sys.exit(1)


@contextmanager
def _bar() -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr while products are opened (a first plan of thousands takes minutes)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("reading products"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("read", total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update
