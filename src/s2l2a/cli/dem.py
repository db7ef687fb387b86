"""``s2l2a dem DIR``: the elevation model every planned product needs, in the layout Sen2Cor reads
(for a campaign of the built-in processor without a Sen2Cor given: the Copernicus tiles as they are,
which the built-in processor reads from ``aux/dem`` on its own)."""

from __future__ import annotations

from pathlib import Path

import click

from s2l2a.campaign.layout import CampaignLayout
from s2l2a.cli._common import campaign_argument
from s2l2a.cli.sen2cor import _campaign_settings, _sen2cor_section, one_line_errors

#: the layout laid out for a built-in campaign: Sen2Cor 2.11's, the Copernicus tiles unchanged (cop90)
BUILTIN_LAYOUT_VERSION = "2.11"


@click.command("dem")
@campaign_argument
@click.option("--source", type=click.Choice(["srtm90", "cop30", "cop90"]),
              help="DEM source (default: srtm90 for Sen2Cor < 2.11, cop90 for 2.11+ and the built-in processor).")
@click.option("--cache", type=click.Path(path_type=Path), help="Shared tile cache (default ~/.cache/s2l2a/dem).")
@click.option("--base-url", help="Download base URL of the source (a mirror).")
@click.option("--products", "roots", multiple=True, type=click.Path(path_type=Path),
              help="Product paths/roots (default: the products planned in the campaign).")
@click.option("--sen2cor", "sen2cor_path", type=click.Path(path_type=Path), help="Sen2Cor install to lay out for.")
@click.option("--sen2cor-version", "version", help="Sen2Cor version to lay out for, e.g. 2.9 (instead of --sen2cor).")
@one_line_errors
def cmd(campaign: Path, source: str | None, cache: Path | None, base_url: str | None, roots: tuple[Path, ...],
        sen2cor_path: Path | None, version: str | None) -> None:
    """Select, download, merge and lay out DEM tiles; refuse when a product is not covered."""
    from s2l2a.auxdata.dem import footprints_of, prepare_dem
    from s2l2a.errors import CampaignError

    settings = _campaign_settings(campaign)
    builtin = version is None and sen2cor_path is None and settings is not None and settings.processor == "builtin"
    if builtin:
        version = BUILTIN_LAYOUT_VERSION
    elif version is None:
        from s2l2a.sen2cor.layout import describe

        configured = sen2cor_path or _sen2cor_section(campaign).get("l2a_process")
        version = describe(configured).version
    if roots:
        from s2l2a.safe import find_products

        paths = list(find_products(roots))
    else:
        paths = _planned_products(campaign)
    if not paths:
        raise CampaignError("no products found; plan the campaign or give --products", campaign)
    footprints = footprints_of(paths)
    layout = prepare_dem(footprints, CampaignLayout.of(campaign).dem, version=version, source=source, cache=cache,
                         base_url=base_url)
    sea = sum(1 for v in layout.tiles.values() if v is None)
    reader = "the built-in processor" if builtin else f"Sen2Cor {version}"
    click.echo(f"DEM for {reader}: {layout.kind} layout from {layout.source}, {len(layout.tiles)} tile(s)"
               + (f" ({sea} absent on the server: sea, height 0)" if sea else ""))
    if not builtin:
        click.echo(f"DEM_Directory {layout.directory}/")
        click.echo(f"DEM_Reference {layout.dem_reference}")
    click.echo(f"all {len(footprints)} product footprint(s) covered by valid DEM data")


def _planned_products(campaign: Path) -> list[Path]:
    from s2l2a.campaign.store import CampaignStore

    with CampaignStore.open(campaign) as store:
        return [j.path for j in store.jobs() if j.state.value != "skipped"]
