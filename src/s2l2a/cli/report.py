"""``s2l2a report DIR``: one self-contained HTML page of the campaign; ``s2l2a stac DIR``: STAC."""

from __future__ import annotations

from pathlib import Path

import click

from s2l2a.cli._common import campaign_argument, user_errors


@click.command("report")
@campaign_argument
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="HTML file to write (default: <campaign>/report.html).")
@user_errors
def cmd(campaign: Path, output: Path | None) -> None:
    """Write one HTML file (no server, no network): counts, tile map, run times, failures, quicklooks, versions."""
    from s2l2a.api import Campaign

    click.echo(Campaign(campaign).report(output))


@click.command("stac")
@campaign_argument
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for collection.json and the items (default: <campaign>/stac).")
@user_errors
def stac_cmd(campaign: Path, output: Path | None) -> None:
    """Write a validated STAC collection with one item per converted product (bands, SCL, derived COGs)."""
    from s2l2a.api import Campaign

    result = Campaign(campaign).stac(output)
    for line in result.skipped:
        click.echo(line, err=True)
    if result.skipped:
        click.echo(f"{len(result.skipped)} product(s) left out; 's2l2a status --verify {campaign}' requeues "
                   "incomplete outputs", err=True)
    click.echo(result.collection)

