"""``s2l2a plan DIR ROOT...``: add the L1C products under the roots to a campaign."""

from __future__ import annotations

import json
import sys
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

    report = plan(campaign, roots)
    for line in report.rejected:
        click.echo(line, err=True)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(f"found {report.found}: {report.summary_line()}")
    if report.found == 0 and not report.rejected:
        click.echo(f"error: no L1C products found under {', '.join(map(str, roots))}", err=True)
        sys.exit(1)
