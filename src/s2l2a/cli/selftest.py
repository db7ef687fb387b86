"""``s2l2a selftest --engine slurm|lsf|pbs``: try the site's scheduler with a tiny array and print
a report (indices, exit codes, output names, memory unit and enforcement, cancelling)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from s2l2a.cli._common import Duration, user_errors


@click.command("selftest")
@click.option("--engine", type=click.Choice(["slurm", "lsf", "pbs"]), required=True, help="The scheduler to try.")
@click.option("--queue", default=None, help="Queue / partition to submit to.")
@click.option("--account", default=None, help="Account or project.")
@click.option("--memory-mb", type=click.IntRange(min=64), default=256, show_default=True,
              help="Memory limit of each element (element 2 allocates three times this).")
@click.option("--lsf-unit", type=click.Choice(["KB", "MB", "GB"]), default=None,
              help="LSF_UNIT_FOR_LIMITS if lsf.conf cannot be read here (default: detect, KB when unset).")
@click.option("--dir", "workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Work folder on a file system the compute nodes see (default: ./s2l2a-selftest-<time>).")
@click.option("--timeout", "timeout_s", type=Duration(), default=600, show_default=True,
              help="How long to wait for the elements.")
@click.option("--pbs-flavour", type=click.Choice(["pro", "torque"]), default="pro", show_default=True)
@user_errors
def cmd(engine: str, queue: str | None, account: str | None, memory_mb: int, lsf_unit: str | None,
        workdir: Path | None, timeout_s: float, pbs_flavour: str) -> None:
    """Submit a 3-element test array (one element over its memory limit, one cancelled while
    pending) and print a report to attach to a bug report. Exit status 1 when a check fails."""
    from s2l2a.engines.cluster import cluster_options
    from s2l2a.engines.selftest import run_selftest

    # checked like a campaign's options (one line naming --queue/--account) before anything is made
    opts = cluster_options({}, engine, queue=queue, account=account, memory_mb=memory_mb, lsf_unit=lsf_unit,
                           run_limit_s=600, pbs_flavour=pbs_flavour)
    workdir = workdir or Path.cwd() / f"s2l2a-selftest-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    workdir.mkdir(parents=True, exist_ok=True)
    report = run_selftest(engine, workdir, opts, timeout_s=timeout_s, echo=lambda s: click.echo(s, err=True))
    text = report.text()
    (workdir / "report.txt").write_text(text + "\n")
    click.echo(text)
    click.echo(f"(saved to {workdir / 'report.txt'})", err=True)
    sys.exit(0 if report.ok else 1)
