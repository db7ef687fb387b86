"""``s2l2a init DIR``: create a campaign directory with its s2l2a.toml."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import click

from s2l2a import defaults
from s2l2a.cli._common import Duration, campaign_argument, human_duration, user_errors
from s2l2a.errors import CampaignError, ConfigError
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
    from s2l2a.campaign.settings import SETTINGS_FILE, CampaignSettings
    from s2l2a.campaign.store import CampaignStore

    if (campaign / SETTINGS_FILE).exists() and not force:
        raise CampaignError(f"a campaign exists here ({SETTINGS_FILE}); change a setting with 's2l2a config "
                            f"{campaign} KEY VALUE', or use --force to overwrite them all", campaign)
    if campaign.exists() and not campaign.is_dir():
        raise CampaignError("exists and is not a directory", campaign)
    settings = CampaignSettings(
        name=name or campaign.resolve().name, processor=processor, memory_mb=memory_mb,
        cores_per_job=cores_per_job, timeout_s=int(timeout_s) if float(timeout_s).is_integer() else timeout_s)
    if sen2cor_path is not None:
        settings.sen2cor["l2a_process"] = str(sen2cor_path.resolve())
    settings.validate()
    require_sen2cor(settings, "--sen2cor", "give --sen2cor PATH")
    created = not campaign.exists()
    campaign.mkdir(parents=True, exist_ok=True)
    try:
        path = settings.save(campaign)
    except BaseException:
        if created:  # leave nothing behind for a refused init (rmdir: only while still empty)
            with contextlib.suppress(OSError):
                campaign.rmdir()
        raise
    for note in settings.above_machine():
        click.echo(f"Warning: {note}; fine for bigger cluster nodes, but a local run refuses it", err=True)
    (campaign / "logs").mkdir(exist_ok=True)
    CampaignStore.open(campaign, create=True).close()
    click.echo(f"created {path} (processor {processor}, {memory_mb} MB and {cores_per_job} core(s) per job, "
               f"timeout {human_duration(settings.timeout_s)})")
    click.echo(f"next: s2l2a plan {campaign} <folder with L1C products>")


def require_sen2cor(settings: Any, option: str, how: str) -> None:
    """Refuse, in one line, settings that name a Sen2Cor that cannot be found.

    ``processor = "sen2cor"`` needs one (configured, ``$SEN2COR_BIN`` or on PATH), and a configured
    ``l2a_process`` must lead to an executable whatever the processor ("auto" would silently fall
    back to the built-in one). Shared with ``s2l2a config``.
    """
    from s2l2a.processors import find_sen2cor

    configured = settings.sen2cor.get("l2a_process")
    if find_sen2cor(settings.sen2cor) is not None:
        return
    if configured:
        raise ConfigError(f"{option} {configured}: no executable Sen2Cor L2A_Process there (give the "
                          "L2A_Process file or the Sen2Cor install folder)")
    if settings.processor == "sen2cor":
        raise ConfigError("processor sen2cor: no Sen2Cor L2A_Process found (none configured, no $SEN2COR_BIN, "
                          f"none on PATH); {how}, or choose the built-in processor")
