"""``s2l2a search``: find L1C products by tile or area, dates, clouds, platform, orbit, baseline."""

from __future__ import annotations

import json
import logging
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from s2l2a.acquire.fetcher import DEFAULT_SOURCES
from s2l2a.campaign.layout import SETTINGS_FILE
from s2l2a.cli._common import user_errors
from s2l2a.errors import ConfigError
from s2l2a.registry import get_source, source_names


def _split(values: tuple[str, ...]) -> list[str]:
    return [v for item in values for v in item.replace(",", " ").split() if v]


def search_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by ``search`` and ``fetch`` (what to look for, where, how politely)."""
    opts = [
        click.option("--tile", "-t", "tiles", multiple=True, help="MGRS tile(s), e.g. 56JMM or T56JMM; repeat or comma-separate."),
        click.option("--aoi", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="GeoJSON file (lon/lat): every tile it touches."),
        click.option("--bbox", help="west,south,east,north in degrees: every tile it touches."),
        click.option("--start", help="First sensing day (YYYY-MM-DD)."),
        click.option("--end", help="Last sensing day (YYYY-MM-DD), inclusive."),
        click.option("--max-cloud", type=click.FloatRange(0, 100), help="Maximum cloud cover in percent."),
        click.option("--platform", "platforms", multiple=True, type=click.Choice(["S2A", "S2B", "S2C"]),
                     help="Satellite(s); repeatable."),
        click.option("--orbit", "orbits", multiple=True, type=click.IntRange(1, 143), help="Relative orbit(s); repeatable."),
        click.option("--min-baseline", help="Minimum processing baseline, e.g. 04.00."),
        click.option("--source", "sources", multiple=True, type=click.Choice(source_names()),
                     help=f"Where to search, in order of preference [default: {', '.join(DEFAULT_SOURCES)}]. "
                          + "; ".join(f"{n}: {get_source(n).summary}" for n in source_names()) + "."),
        click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
                     help="Where listings and metadata are cached [default: ~/.cache/s2l2a]."),
        click.option("--parallel", type=click.IntRange(min=1), help="Products transferred at once [default: 2]."),
        click.option("--retries", type=click.IntRange(min=0), help="Retries per request on 429/5xx/drops [default: 5]."),
        click.option("--json", "as_json", is_flag=True, help="Machine-readable output."),
        click.option("--dry-run", is_flag=True, help="Only total the volume."),
        click.option("-v", "--verbose", is_flag=True, help="Log retries and transfers."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def acquire_table(campaign: Path | None) -> dict[str, Any]:
    """The ``[acquire]`` table of a campaign's s2l2a.toml (settings shared by every fetch of it)."""
    if campaign is None or not (campaign / SETTINGS_FILE).is_file():
        return {}
    path = campaign / SETTINGS_FILE
    try:
        with path.open("rb") as fh:
            table = tomllib.load(fh).get("acquire", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path) from None
    if not isinstance(table, dict):
        raise ConfigError("[acquire] must be a table", path)
    return table


def build(opts: dict[str, Any], campaign: Path | None = None) -> tuple[Any, Any]:
    """(Query, AcquireSettings) from the command-line options."""
    from s2l2a.acquire.query import Query, parse_day
    from s2l2a.acquire.settings import AcquireSettings
    from s2l2a.acquire.tiles import (
        TileError,
        known_tiles,
        normalise_tile,
        parse_bbox,
        read_aoi,
        tiles_for_geometry,
    )

    if opts["verbose"]:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns the retries
    tiles = [normalise_tile(t) for t in _split(opts["tiles"])]
    unknown = sorted(set(tiles) - known_tiles())
    if unknown:
        raise TileError(f"not in the Sentinel-2 tile grid: {', '.join(unknown)}")
    aoi = None
    if opts["aoi"] and opts["bbox"]:
        raise TileError("give --aoi or --bbox, not both")
    if opts["aoi"]:
        aoi = read_aoi(opts["aoi"])
    elif opts["bbox"]:
        aoi = parse_bbox(opts["bbox"])
    if aoi is not None:
        found = tiles_for_geometry(aoi)
        if not found:
            raise TileError("the area of interest touches no Sentinel-2 tile")
        tiles = sorted(set(tiles) | set(found))
    query = Query(
        tiles=tiles,
        start=parse_day(opts["start"]) if opts["start"] else None,
        end=parse_day(opts["end"], end=True) if opts["end"] else None,
        max_cloud=opts["max_cloud"], platforms=list(opts["platforms"]), orbits=list(opts["orbits"]),
        min_baseline=opts["min_baseline"], aoi=aoi,
    )
    query.validate()
    settings = AcquireSettings.load(acquire_table(campaign), cache_dir=opts["cache_dir"],
                                    parallel=opts["parallel"], retries=opts["retries"])
    return query, settings


def print_products(products: list[Any], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from s2l2a.diskspace import human

    table = Table(title=title, show_lines=False)
    for col, just in (("product", "left"), ("tile", "left"), ("sensing (UTC)", "left"), ("cloud %", "right"),
                      ("baseline", "right"), ("size", "right"), ("source", "left")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for c in products:
        table.add_row(c.name, c.tile or "-", f"{c.sensing_time:%Y-%m-%d %H:%M}",
                      "-" if c.cloud_cover is None else f"{c.cloud_cover:.1f}", c.baseline or "-",
                      "-" if c.size is None else human(c.size), c.source)
    Console().print(table)


@click.command("search")
@search_options
@user_errors
def cmd(**opts: Any) -> None:
    """Find L1C products (Google bucket and/or CDSE); duplicates resolved like `plan` does."""
    from s2l2a.acquire.download import Http
    from s2l2a.acquire.fetcher import make_sources, search
    from s2l2a.diskspace import human

    query, settings = build(opts)
    with Http(settings) as http:
        result = search(query, make_sources(list(opts["sources"]), http))
    total = result.total_bytes
    l2a = int(total * settings.l2a_factor)
    if opts["as_json"]:
        doc = {"products": [c.to_json() for c in result.products],
               "duplicates": [{"dropped": d.name, "kept": k.name} for d, k in result.duplicates],
               "count": len(result.products), "total_bytes": total, "l2a_estimate_bytes": l2a}
        if opts["dry_run"]:
            doc.pop("products")
        click.echo(json.dumps(doc, indent=1))
        return
    if not opts["dry_run"]:
        print_products(result.products, f"{len(result.products)} L1C product(s)")
        for d, k in result.duplicates:
            click.echo(f"duplicate: {d.name} ({d.source}) -> kept {k.name} ({k.source})")
    click.echo(f"{len(result.products)} product(s), {human(total)} L1C (+ ~{human(l2a)} L2A estimate)")
