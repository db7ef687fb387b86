"""``s2l2a cube DIR -o out.zarr``: a cloud-masked index time series (Zarr) of a campaign's done products."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from s2l2a.cli._common import campaign_argument, user_errors


def _classes(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(c) for c in text.replace(" ", "").split(",") if c)
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected SCL class numbers like 4,5,6", param_hint="--clear") from None


def _day(_ctx: click.Context, param: click.Parameter, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected a date like 2024-04-01", param_hint=f"--{param.name}") from None


@click.command("cube")
@campaign_argument
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path),
              help="The Zarr store to create, or to append the new dates to (e.g. season.zarr).")
@click.option("--index", default=None, help="Index to stack: ndvi (default), ndwi, nbr, evi, or the name of a "
              "--formula index already derived.")
@click.option("--aoi", type=click.Path(dir_okay=False, path_type=Path),
              help="Area of interest, GeoJSON in longitude/latitude: the cube covers its bounds, pixels outside "
              "it are nodata. Needed when the products cover several tiles (or give --tile).")
@click.option("--resolution", type=click.Choice(["10", "20", "60"]), default=None,
              help="Pixel size in metres (default 20).")
@click.option("--crs", help="Grid CRS with --aoi, e.g. EPSG:32633 (default: the CRS of most products' tiles).")
@click.option("--clear", "clear", metavar="N,N,...", help="SCL classes kept as clear sky (default 4,5,6: "
              "vegetation, not vegetated, water).")
@click.option("--start", callback=_day, help="First sensing date (YYYY-MM-DD), inclusive.")
@click.option("--end", callback=_day, help="Last sensing date (YYYY-MM-DD), inclusive.")
@click.option("--tile", help="Only this tile (its own grid, when there is no --aoi).")
@click.option("--time-chunk", type=click.IntRange(1, 366), default=8, show_default=True,
              help="Dates per chunk: a pixel's series reads one chunk per this many dates; a killed build keeps "
              "every chunk it finished.")
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Threads reading strips (default: "
              "up to 4 cores).")
@click.option("--netcdf", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the whole cube as this NetCDF-4 file (rewritten each time).")
@click.option("--no-derive", is_flag=True, help="Skip products without a derived index instead of deriving it.")
@user_errors
def cmd(campaign: Path, out: Path, index: str | None, aoi: Path | None, resolution: str | None, crs: str | None,
        clear: str | None, start: date | None, end: date | None, tile: str | None, time_chunk: int,
        workers: int | None, netcdf: Path | None, no_derive: bool) -> None:
    """Stack every done product's index, masked with its SCL clear classes, on one grid (the tile's,
    or the AOI's bounds), mosaicking same-day tiles (the clearest pixel wins), into a CF Zarr store;
    a re-run appends the dates done since. Beside it: clear-observation count (GeoTIFF), and the
    median and interquartile range per date over the AOI (CSV and PNG)."""
    from s2l2a.acquire.tiles import normalise_tile
    from s2l2a.campaign.cubes import build_campaign_cube
    from s2l2a.outputs.cube import CubeSpec
    from s2l2a.outputs.cube.build import default_workers

    if not campaign.is_dir():
        raise click.ClickException(f"{campaign}: no such campaign folder")
    spec = CubeSpec(index=index, resolution=int(resolution) if resolution else None, aoi=aoi, crs=crs,
                    clear_classes=_classes(clear), start=start, end=end,
                    tile=normalise_tile(tile) if tile else None, time_chunk=time_chunk,
                    workers=workers or default_workers(), derive_missing=not no_derive, netcdf=netcdf)
    res = build_campaign_cube(campaign, out, spec, progress=click.echo)
    for line in res.notes:
        click.echo(f"note: {line}", err=True)
    added = f"{len(res.added)} new date(s)" if res.added else "no new date"
    click.echo(f"{out}: {added}, {res.dates} in all ({res.grid})")
    for what, path in res.files.items():
        click.echo(f"{what.replace('_', ' '):<12} {path}")
