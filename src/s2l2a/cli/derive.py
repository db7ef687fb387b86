"""``s2l2a derive DIR|L2A...``: offset-correct indices, SCL and a clear-sky mask as COGs, then the keep policy."""

from __future__ import annotations

from pathlib import Path

import click

from s2l2a.cli._common import user_errors


def _classes(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(c) for c in text.replace(" ", "").split(",") if c)
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected SCL class numbers like 4,5,6") from None


@click.command("derive")
@click.argument("targets", nargs=-1, required=True, metavar="DIR|L2A...", type=click.Path(exists=True, path_type=Path))
@click.option("--index", "indices", default="ndvi", show_default=True,
              help="Built-in indices, comma-separated: ndvi, ndwi, nbr, evi ('' for none).")
@click.option("--formula", "formulas", multiple=True, metavar="NAME=EXPR",
              help='Own index over band names, e.g. "ndre=(B8A-B05)/(B8A+B05)" (arithmetic only; repeatable).')
@click.option("--resolution", type=click.Choice(["10", "20", "60"]), default="10", show_default=True)
@click.option("--clear-classes", metavar="N,N,...", help="Also write a clear-sky mask: 1 where SCL is one of "
              "these classes (e.g. 4,5,6 = vegetation, not vegetated, water).")
@click.option("--keep", type=click.Choice(["all", "derived", "l2a"]), default="all", show_default=True,
              help="all: keep L2A and derived; derived: delete each L2A once its derived outputs verified.")
@click.option("--delete-l1c", is_flag=True, help="Delete each L1C once its L2A verified (campaigns only).")
@click.option("-o", "--out-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where derived folders go (default: <campaign>/derived/<tile>, or 'derived' beside each product).")
@click.option("--force", is_flag=True, help="Derive again even where verified outputs exist.")
@click.option("--threads", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Cores the COG compression may use (a campaign's jobs use their cores_per_job).")
@user_errors
def cmd(targets: tuple[Path, ...], indices: str, formulas: tuple[str, ...], resolution: str,
        clear_classes: str | None, keep: str, delete_l1c: bool, out_dir: Path | None, force: bool,
        threads: int) -> None:
    """Write spectral indices (reflectance = (DN + BOA_ADD_OFFSET) / quantification, from each product's
    MTD_MSIL2A.xml), SCL and an optional clear-sky mask as Cloud-Optimized GeoTIFFs."""
    from s2l2a.api import Campaign
    from s2l2a.campaign.settings import SETTINGS_FILE
    from s2l2a.outputs.derive import DeriveSpec
    from s2l2a.outputs.keep import derive_then_keep

    if keep == "l2a":
        raise click.UsageError("--keep l2a derives nothing; use --keep all or --keep derived")
    spec = DeriveSpec(indices=tuple(i for i in indices.split(",") if i.strip()), formulas=formulas,
                      resolution=int(resolution), clear_classes=_classes(clear_classes))
    formulas_checked = spec.parsed()  # a bad formula fails here, before any product is touched
    if not formulas_checked:
        raise click.UsageError("nothing to derive: give --index and/or --formula")
    outcomes = []
    for target in targets:
        if (target / SETTINGS_FILE).is_file():
            if out_dir is not None:
                raise click.UsageError("--out-dir is for products; a campaign writes to <campaign>/derived")
            outcomes += Campaign(target).derive(spec.indices, formulas=spec.formulas, resolution=spec.resolution,
                                                clear_classes=spec.clear_classes, keep=keep, delete_l1c=delete_l1c,
                                                force=force, threads=threads)
        else:
            if delete_l1c:
                raise click.UsageError("--delete-l1c needs a campaign (it knows each product's L1C)")
            dest = out_dir or target.resolve().parent / "derived"
            outcomes.append(derive_then_keep(target, dest, spec, keep, threads=threads))
    failed = 0
    for o in outcomes:
        if o.error:
            failed += 1
            click.echo(f"FAILED  {o.error}", err=True)
            continue
        what = o.skipped or "derived"
        click.echo(f"{what:<16} {o.l2a.name} -> {o.derived_dir}")
        for p in o.removed:
            click.echo(f"{'deleted':<16} {p}")
    click.echo(f"{len(outcomes) - failed} of {len(outcomes)} products ok")
    if failed:
        raise SystemExit(1)
