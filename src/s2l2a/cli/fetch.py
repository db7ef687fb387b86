"""``s2l2a fetch DIR``: search, then download what is missing into ``DIR/L1C/`` of a campaign (or DIR)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from s2l2a.campaign.layout import SETTINGS_FILE
from s2l2a.cli._common import user_errors
from s2l2a.cli.search import build, print_products, search_options


def destination(target: Path) -> tuple[Path, Path | None]:
    """(download folder, campaign or None): a campaign gets ``<campaign>/L1C``."""
    if (target / SETTINGS_FILE).is_file():
        return target / "L1C", target
    return target, None


@click.command("fetch")
@click.argument("target", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@search_options
@click.option("--object-parallel", type=click.IntRange(min=1),
              help="Files of one bucket product transferred at once [default: 4].")
@click.option("--l2a-factor", type=click.FloatRange(min=0),
              help="L2A volume per L1C volume reserved by the space check [default: 1.1].")
@user_errors
def cmd(target: Path, object_parallel: int | None, l2a_factor: float | None, **opts: Any) -> None:
    """Search, then download every product not yet complete into DIR/L1C (DIR a campaign) or DIR.

    Complete products are skipped, partial ones resumed; nothing is downloaded when the volume plus
    the L2A estimate does not fit on the disk. Downloads need the internet: on a cluster run this on
    a login or transfer node, then `s2l2a plan`/`run` on compute nodes.
    """
    from dataclasses import replace

    from s2l2a.acquire.download import Http
    from s2l2a.acquire.fetcher import fetch, make_sources, search
    from s2l2a.diskspace import human

    dest, campaign = destination(target)
    query, settings = build(opts, campaign)
    if object_parallel is not None:
        settings = replace(settings, object_parallel=object_parallel)
    if l2a_factor is not None:
        settings = replace(settings, l2a_factor=l2a_factor)
    quiet = opts["as_json"]

    def event(kind: str, c: Any, text: str) -> None:
        if quiet:
            return
        if kind == "done":
            click.echo(f"fetched {c.name} ({human(c.size or 0)}, {text})")
        elif kind == "failed":
            click.echo(f"FAILED  {c.name}: {text}", err=True)

    with Http(settings) as http:
        sources = make_sources(list(opts["sources"]), http)
        result = search(query, sources)
        if not quiet and opts["dry_run"]:
            print_products(result.products, f"{len(result.products)} L1C product(s) for {dest}")
        report = fetch(result.products, dest, sources, settings, dry_run=opts["dry_run"], on_event=event)
    todo = [c for c in result.products if c not in report.skipped]
    if quiet:
        click.echo(json.dumps({
            "destination": str(dest), "dry_run": opts["dry_run"],
            "fetched": [str(p) for _, p in report.done], "skipped": [c.name for c in report.skipped],
            "failed": [{"name": c.name, "error": e} for c, e in report.failed],
            "to_fetch": [c.name for c in todo] if opts["dry_run"] else [],
            "bytes_to_fetch": sum(c.size or 0 for c in todo), "bytes_needed": report.bytes_needed,
        }, indent=1))
    else:
        verb = "would fetch" if opts["dry_run"] else "fetched"
        n = len(todo) if opts["dry_run"] else len(report.done)
        click.echo(f"{dest}: {verb} {n}, already complete {len(report.skipped)}, failed {len(report.failed)}; "
                   f"{human(sum(c.size or 0 for c in todo))} to download, {human(report.bytes_needed)} "
                   f"needed with the L2A estimate")
        if campaign is not None and report.done:
            click.echo(f"next: s2l2a plan {campaign} {dest}")
    if report.failed:
        sys.exit(1)
