"""``s2l2a run`` options for engines other than the local one, and the dispatch to them.

Kept apart from ``cli/run.py`` so the local run stays readable: ``run`` adds these options with
one decorator and asks :func:`dispatch` first; ``None`` means "the local flow handles it".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
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


def pop_engine_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Take this module's options out of a command's keyword arguments."""
    return {k: kwargs.pop(k) for k in _OPTION_NAMES if k in kwargs}


def dispatch(campaign: Path, store: Any, settings: Any, engine: dict[str, Any], *, processor: str | None,
             memory_mb: int | None, job_ids: tuple[int, ...], limit: int | None,
             derive: dict[str, Any] | None = None) -> int | None:
    """Run a cluster engine's flow and return the exit status; None: continue with the local flow
    (after checking that no job of the campaign is still out on a cluster)."""
    from s2l2a.engines.cluster import SCHEDULERS, cluster_job_ids, reconcile, run_on_cluster
    from s2l2a.errors import CampaignError, ConfigError

    name = engine.get("engine") or "local"
    if name in SCHEDULERS:
        overrides = {"queue": engine.get("queue"), "account": engine.get("account"),
                     "run_limit_s": int(engine["run_limit"]) if engine.get("run_limit") else None,
                     "max_concurrent": engine.get("max_concurrent"), "placement": engine.get("placement"),
                     "node_cores": engine.get("node_cores"), "node_memory_mb": engine.get("node_memory_mb"),
                     "exclusive": engine.get("exclusive")}
        return run_on_cluster(campaign, store, settings, name, overrides, processor=processor,
                              memory_mb=memory_mb, job_ids=job_ids, limit=limit,
                              dry_run=bool(engine.get("dry_run")), wait=bool(engine.get("wait")),
                              poll_s=float(engine.get("poll_interval") or 10.0),
                              echo=click.echo, err=lambda s: click.echo(s, err=True), derive=derive)
    if engine.get("dry_run"):
        raise ConfigError("--dry-run is for cluster engines (--engine slurm|lsf|pbs)")
    if name == "dask" and not engine.get("scheduler_address"):
        raise ConfigError("--engine dask needs --scheduler-address tcp://HOST:PORT")
    if cluster_job_ids(campaign, store):
        reconcile(campaign, store)
        left = cluster_job_ids(campaign, store)
        if left:
            raise CampaignError(f"{len(left)} job(s) are still out on a cluster; follow them with "
                                "'s2l2a run DIR --engine <scheduler>' or cancel them with "
                                "'s2l2a cluster cancel DIR' before running locally", campaign)
    return None


def local_engine_factory(engine: dict[str, Any], campaign: Path) -> Callable[[Any], Any] | None:
    """For ``--engine dask``: build a DaskEngine instead of the LocalEngine (same run loop)."""
    if engine.get("engine") != "dask":
        return None
    address = str(engine["scheduler_address"])

    def make(cap: Any) -> Any:
        from s2l2a.engines.dask import DaskEngine

        return DaskEngine(address, cap, log_file=campaign / "logs" / "engine.log")

    return make
