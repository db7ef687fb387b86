"""``s2l2a init DIR``: create a campaign directory with its s2l2a.toml."""

from __future__ import annotations

from pathlib import Path

import click

from s2l2a import defaults
from s2l2a.campaign.layout import SETTINGS_FILE
from s2l2a.cli._common import Duration, campaign_argument, human_duration, user_errors
from s2l2a.registry import processor_names


@click.command("init")
@campaign_argument
@click.option("--processor", type=click.Choice(processor_names()), default="auto",
              show_default=True, help="auto: Sen2Cor when configured or on PATH, else the built-in one.")
@click.option("--memory-mb", type=click.IntRange(min=256), default=defaults.MEMORY_MB, show_default=True,
              help="Memory one job may use.")
@click.option("--cores-per-job", type=click.IntRange(min=1), default=defaults.CORES_PER_JOB, show_default=True)
@click.option("--timeout", "timeout_s", type=Duration(), default=f"{defaults.TIMEOUT_S / 3600:g}h", show_default=True,
              help="Wall-clock limit per job (seconds, or 90m, 3h).")
@click.option("--sen2cor", "sen2cor_path", type=click.Path(exists=True, path_type=Path),
              help="Sen2Cor's L2A_Process (or its installation directory).")
@click.option("--name", default=None, help="Campaign name (default: the directory name).")
@click.option("--force", is_flag=True, help="Overwrite the settings of an existing campaign (jobs are kept).")
@user_errors
def cmd(campaign: Path, processor: str, memory_mb: int, cores_per_job: int, timeout_s: float,
        sen2cor_path: Path | None, name: str | None, force: bool) -> None:
    """Create a campaign in DIR: settings file, job database, log folder."""
    from s2l2a.api import Campaign

    c = Campaign.create(campaign, processor, memory_mb=memory_mb, cores_per_job=cores_per_job, timeout_s=timeout_s,
                        sen2cor=sen2cor_path, name=name, force=force)
    settings = c.settings
    for note in settings.above_machine():
        click.echo(f"Warning: {note}; fine for bigger cluster nodes, but a local run refuses it", err=True)
    click.echo(f"created {campaign / SETTINGS_FILE} (processor {processor}, {memory_mb} MB and {cores_per_job} "
               f"core(s) per job, timeout {human_duration(settings.timeout_s)})")
    click.echo(f"next: s2l2a plan {campaign} <folder with L1C products>")
