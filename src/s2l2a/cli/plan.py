"""``s2l2a plan DIR ROOT...``: add the L1C products under the roots to a campaign."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from s2l2a.cli._common import campaign_argument, user_errors
from s2l2a.errors import CampaignError

EXIT_NOTHING_NEW = 4   # every product found was planned before: nothing to do, not an error


@click.command("plan")
@campaign_argument
@click.argument("roots", nargs=-1, required=True, metavar="ROOT...",
                type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@user_errors
def cmd(campaign: Path, roots: tuple[Path, ...], as_json: bool) -> None:
    """Find L1C products under ROOT... and plan one job per product (safe to re-run).

    Reprocessings of one acquisition keep the highest baseline, products already converted are
    skipped, zipped products (CDSE's .SAFE.zip) are unpacked into DIR/inputs/, and each unusable
    input is reported on one line on stderr and kept for 's2l2a status'. Exit status: 0 jobs were
    added or changed, 1 error (a ROOT that does not exist, nothing usable found), 4 nothing new
    (every product found is planned already).
    """
    from s2l2a.api import Campaign, NothingPlanned

    c = Campaign(campaign)
    nothing = None
    try:
        with _bar() if sys.stderr.isatty() else _lines() as on_progress:
            report = c.plan(roots, on_progress=on_progress)
    except KeyboardInterrupt:
        click.echo("interrupted: products read so far are planned; run the same plan again to continue",
                   err=True)
        sys.exit(130)
    except NothingPlanned as e:
        nothing, report = e, e.report
    for line in report.rejected:
        click.echo(line, err=True)
    for line in report.waiting_lines:
        click.echo(line, err=True)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(f"found {report.found}: {report.summary_line()}")
    where = ", ".join(map(str, roots))
    if nothing is not None:
        if report.rejected:
            raise CampaignError(f"nothing planned: every input under {where} was rejected (reasons above, "
                                f"also in 's2l2a status {campaign}')")
        raise nothing
    if not report.changed:
        click.echo(f"nothing new under {where}: {report.already_planned} product(s) planned before"
                   f"{'; rejected inputs are listed above' if report.rejected else ''}; "
                   f"next: s2l2a run {campaign}", err=True)
        sys.exit(EXIT_NOTHING_NEW)


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


#: seconds between progress lines when stderr is not a terminal (a batch job's log)
LINE_EVERY_S = 10.0


@contextmanager
def _lines() -> Iterator[Callable[[int, int], None]]:
    """Off a terminal, one progress line every LINE_EVERY_S seconds (none for a short plan)."""
    import time

    start = last = time.monotonic()

    def update(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= LINE_EVERY_S or (done == total and last != start):
            last = now
            rate = done / max(now - start, 1e-9)
            click.echo(f"plan: read {done:,} of {total:,} products ({rate:,.0f}/s)", err=True)

    yield update
