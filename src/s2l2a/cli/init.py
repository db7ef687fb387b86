"""``s2l2a init DIR``: create a campaign directory with its s2l2a.toml."""

from __future__ import annotations

from pathlib import Path

import click

from s2l2a.cli._common import Duration, campaign_argument, human_duration, user_errors
from s2l2a.errors import CampaignError


@click.command("init")
@campaign_argument
@click.option("--processor", type=click.Choice(["auto", "builtin", "sen2cor"]), default="auto",
              show_default=True, help="auto: Sen2Cor when configured or on PATH, else the built-in one.")
@click.option("--memory-mb", type=click.IntRange(min=256), default=4096, show_default=True,
              help="Memory one job may use.")
@click.option("--cores-per-job", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--timeout", "timeout_s", type=Duration(), default="3h", show_default=True,
              help="Wall-clock limit per job (seconds, or 90m, 3h).")
@click.option("--sen2cor", "sen2cor_path", type=click.Path(exists=True, path_type=Path),
              help="Sen2Cor's L2A_Process (or its installation directory).")
@click.option("--name", default=None, help="Campaign name (default: the directory name).")
@click.option("--force", is_flag=True, help="Overwrite the settings of an existing campaign (jobs are kept).")
@user_errors
def cmd(campaign: Path, processor: str, memory_mb: int, cores_per_job: int, timeout_s: float,
        sen2cor_path: Path | None, name: str | None, force: bool) -> None:
    """Create a campaign in DIR: settings file, job database, log folder."""
    from s2l2a.campaign.settings import SETTINGS_FILE, CampaignSettings
    from s2l2a.campaign.store import CampaignStore

    if (campaign / SETTINGS_FILE).exists() and not force:
        raise CampaignError(f"a campaign exists here ({SETTINGS_FILE}); use --force to overwrite its settings",
                            campaign)
    if campaign.exists() and not campaign.is_dir():
        raise CampaignError("exists and is not a directory", campaign)
    campaign.mkdir(parents=True, exist_ok=True)
    settings = CampaignSettings(
        name=name or campaign.resolve().name, processor=processor, memory_mb=memory_mb,
        cores_per_job=cores_per_job, timeout_s=int(timeout_s) if float(timeout_s).is_integer() else timeout_s)
    if sen2cor_path is not None:
        settings.sen2cor["l2a_process"] = str(sen2cor_path.resolve())
    path = settings.save(campaign)
    (campaign / "logs").mkdir(exist_ok=True)
    CampaignStore.open(campaign, create=True).close()
    click.echo(f"created {path} (processor {processor}, {memory_mb} MB and {cores_per_job} core(s) per job, "
               f"timeout {human_duration(settings.timeout_s)})")
    click.echo(f"next: s2l2a plan {campaign} <folder with L1C products>")
