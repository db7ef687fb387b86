"""``s2l2a run`` options for engines other than the local one (Dask, batch schedulers).

Kept apart from ``cli/run.py`` so ``run`` adds them with one decorator; :func:`engine_run_options`
turns them into keyword arguments of :meth:`s2l2a.Campaign.run`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from s2l2a.cli._common import Duration
from s2l2a.registry import scheduler_names

F = TypeVar("F", bound=Callable[..., Any])

ENGINES = ("local", "dask", *scheduler_names())  # batch schedulers: s2l2a's and plug-ins' (registry)
_OPTION_NAMES = ("engine", "dry_run", "wait", "queue", "account", "run_limit", "max_concurrent", "placement",
                 "node_cores", "node_memory_mb", "exclusive", "scheduler_address", "poll_interval")


def engine_options(func: F) -> F:
    """Add the cluster/Dask options to a click command."""
    opts = [
        click.option("--engine", type=click.Choice(ENGINES), default="local", show_default=True,
                     help="Where to run: this machine, an existing Dask cluster, or job arrays of a scheduler."),
        click.option("--dry-run", is_flag=True,
                     help="Cluster engines: print the array scripts and the sizing, submit nothing."),
        click.option("--wait", is_flag=True, help="Cluster engines: stay until every submitted job has ended."),
        click.option("--queue", default=None, help="Queue / partition."),
        click.option("--account", default=None, help="Account or project (Slurm --account, LSF -P, PBS -A)."),
        click.option("--run-limit", type=Duration(), default=None,
                     help="The queue's run limit per element (e.g. 4h); arrays are sized to fit it."),
        click.option("--max-concurrent", type=click.IntRange(min=0), default=None,
                     help="At most K elements of an array at once (%K)."),
        click.option("--placement", type=click.Choice(["per_product", "whole_node"]), default=None,
                     help="One product per element, or exclusive nodes running several at once."),
        click.option("--node-cores", type=click.IntRange(min=1), default=None, help="Cores of a node (whole_node)."),
        click.option("--node-memory-mb", type=click.IntRange(min=256), default=None,
                     help="Usable memory of a node in MB (whole_node)."),
        click.option("--exclusive/--shared", "exclusive", default=None,
                     help="Ask for whole nodes (LSF -x, Slurm --exclusive)."),
        click.option("--scheduler-address", default=None, metavar="tcp://HOST:PORT",
                     help="Dask engine: the scheduler of an existing Dask cluster."),
        click.option("--poll-interval", type=click.FloatRange(min=0.1), default=10.0, hidden=True,
                     help="Seconds between reconciliations while waiting."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def engine_run_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Take this module's options out of a command's keyword arguments, as ``Campaign.run`` keywords
    (unset ones left out, so the campaign's settings apply)."""
    given = {k: kwargs.pop(k) for k in _OPTION_NAMES if k in kwargs}
    out: dict[str, Any] = {"engine": given.get("engine") or "local", "dry_run": bool(given.get("dry_run")),
                           "wait": bool(given.get("wait")),
                           "poll_interval_s": float(given.get("poll_interval") or 10.0)}
    if given.get("run_limit"):
        out["run_limit_s"] = int(given["run_limit"])
    for key in ("queue", "account", "max_concurrent", "placement", "node_cores", "node_memory_mb", "exclusive",
                "scheduler_address"):
        if given.get(key) is not None:
            out[key] = given[key]
    return out
