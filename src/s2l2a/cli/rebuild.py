"""``s2l2a rebuild DIR [ROOT...]``: a new store for a campaign whose campaign.sqlite is damaged or lost."""

from __future__ import annotations

from pathlib import Path

import click

from s2l2a.cli._common import campaign_argument, user_errors


@click.command("rebuild")
@campaign_argument
@click.argument("roots", nargs=-1, metavar="[ROOT...]", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Rebuild even a store that checks fine (it is kept aside too).")
@user_errors
def cmd(campaign: Path, roots: tuple[Path, ...], force: bool) -> None:
    """Move DIR/campaign.sqlite aside (never deleted) and rebuild it from progress.log, the outputs
    and the result files, so done products stay done and nothing runs twice.

    ROOT... (the folders you planned) fills in products an older s2l2a logged without their path
    and plans any new ones. Refused while a run holds the campaign.
    """
    from s2l2a.campaign.rebuild import rebuild

    report = rebuild(campaign, roots, force=force)
    for line in report.lines():
        click.echo(line)
    click.echo(f"next: s2l2a status {campaign}")
