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
    from s2l2a.campaign.exports import write_report

    if output is not None:
        _require_folder(output, "-o")
    click.echo(write_report(campaign, output))


@click.command("stac")
@campaign_argument
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for collection.json and the items (default: <campaign>/stac).")
@user_errors
def stac_cmd(campaign: Path, output: Path | None) -> None:
    """Write a validated STAC collection with one item per converted product (bands, SCL, derived COGs)."""
    from s2l2a.campaign.exports import write_campaign_stac

    skipped: list[str] = []
    path = write_campaign_stac(campaign, output, skipped=skipped)
    for line in skipped:
        click.echo(line, err=True)
    if skipped:
        click.echo(f"{len(skipped)} product(s) left out; 's2l2a status --verify {campaign}' requeues incomplete "
                   "outputs", err=True)
    click.echo(path)


def _require_folder(path: Path, option: str) -> None:
    """Refuse in one line, before any work, an output whose folder does not exist."""
    from s2l2a.errors import ConfigError

    parent = path.absolute().parent
    if not parent.is_dir():
        raise ConfigError(f"{option}: the folder {parent} does not exist; create it first or choose another path")
