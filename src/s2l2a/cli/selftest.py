"""``s2l2a selftest --engine slurm|lsf|pbs``: try the site's scheduler with a tiny array and print
a report (indices, exit codes, output names, memory unit and enforcement, cancelling)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from s2l2a.cli._common import Duration, user_errors
from s2l2a.clock import stamp
from s2l2a.registry import scheduler_names

_TYPES = {"int": int, "float": float}


def _scheduler_options(func: Any) -> Any:
    """One option per scheduler's own [cluster] key that declares one (``--lsf-unit``, ...)."""
    from s2l2a.registry import schedulers

    seen: dict[str, Any] = {}
    for cls in schedulers():
        for setting in cls.settings:
            if setting.option and setting.option not in seen:
                seen[setting.option] = setting
    for option, setting in reversed(seen.items()):
        func = click.option(option, setting.key, default=None, type=_TYPES.get(setting.kind, str),
                            help=f"{setting.help} ({', '.join(c.name for c in schedulers() if setting in c.settings)}).")(func)
    return func


@click.command("selftest")
@click.option("--engine", type=click.Choice(scheduler_names()), required=True, help="The scheduler to try.")
@click.option("--queue", default=None, help="Queue / partition to submit to.")
@click.option("--account", default=None, help="Account or project.")
@click.option("--memory-mb", type=click.IntRange(min=64), default=256, show_default=True,
              help="Memory limit of each element (element 2 allocates three times this).")
@click.option("--dir", "workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Work folder on a file system the compute nodes see (default: ./s2l2a-selftest-<time>).")
@click.option("--timeout", "timeout_s", type=Duration(), default=600, show_default=True,
              help="How long to wait for the elements.")
@_scheduler_options
@user_errors
def cmd(engine: str, queue: str | None, account: str | None, memory_mb: int, workdir: Path | None,
        timeout_s: float, **own: Any) -> None:
    """Submit a 3-element test array (one element over its memory limit, one cancelled while
    pending) and print a report to attach to a bug report. Exit status 1 when a check fails."""
    from s2l2a.engines.cluster import cluster_options
    from s2l2a.engines.selftest import run_selftest

    # checked like a campaign's options (one line naming --queue/--account) before anything is made
    opts = cluster_options({}, engine, queue=queue, account=account, memory_mb=memory_mb, run_limit_s=600,
                           **{k: v for k, v in own.items() if v is not None})
    workdir = workdir or Path.cwd() / f"s2l2a-selftest-{stamp()}"
    workdir.mkdir(parents=True, exist_ok=True)
    report = run_selftest(engine, workdir, opts, timeout_s=timeout_s, echo=lambda s: click.echo(s, err=True))
    text = report.text()
    (workdir / "report.txt").write_text(text + "\n")
    click.echo(text)
    click.echo(f"(saved to {workdir / 'report.txt'})", err=True)
    sys.exit(0 if report.ok else 1)
