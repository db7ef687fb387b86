"""``s2l2a check DIR``: the preflight of a run, one line per check with what to do about a failure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from s2l2a.campaign.check import CHECKS, symbols
from s2l2a.cli._common import campaign_argument, user_errors
from s2l2a.cli._engines import ENGINES
from s2l2a.registry import processor_names


def skip_check_option(func: Any) -> Any:
    """``--skip-check NAME`` (repeatable), shared by ``check`` and ``run``."""
    return click.option("--skip-check", "skip_checks", multiple=True, type=click.Choice(CHECKS),
                        metavar="NAME", help=f"Do not run this preflight check (repeatable): "
                                             f"{', '.join(CHECKS)}.")(func)


@click.command("check")
@campaign_argument
@click.option("--engine", type=click.Choice(ENGINES), default="local", show_default=True,
              help="Check for a run on this engine (scheduler commands, node sizes).")
@click.option("--processor", type=click.Choice(processor_names()), default=None,
              help="Check for this processor (default: the campaign's setting).")
@click.option("--memory-mb", type=click.IntRange(min=256), default=None, help="Memory per job in MB.")
@click.option("--node-cores", type=click.IntRange(min=1), default=None, help="Cores of a cluster node.")
@click.option("--node-memory-mb", type=click.IntRange(min=256), default=None, help="Memory of a cluster node in MB.")
@skip_check_option
@user_errors
def cmd(campaign: Path, engine: str, processor: str | None, memory_mb: int | None, node_cores: int | None,
        node_memory_mb: int | None, skip_checks: tuple[str, ...]) -> None:
    """Check that a run of DIR can succeed: processor and version, Sen2Cor's ESA-CCI, DEM and GIPP,
    memory, disk space, writable folders, scheduler commands. Exit 1 when a check fails (✗).

    's2l2a run' runs the same checks first and refuses on a failure (--skip-check NAME to override).
    """
    from s2l2a.api import Campaign

    results = Campaign.open(campaign).check(engine, processor=processor, memory_mb=memory_mb, node_cores=node_cores,
                                            node_memory_mb=node_memory_mb, skip=skip_checks)
    marks = symbols()
    for r in results:
        click.echo(r.line(marks))
    failed = [r.name for r in results if r.failed]
    if failed:
        raise SystemExit(1)
