"""``s2l2a sen2cor install|check|aux|gipp``: the Sen2Cor set-up people otherwise do by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from s2l2a.campaign.layout import SETTINGS_FILE, CampaignLayout
from s2l2a.cli._common import campaign_argument, user_errors
from s2l2a.fsutil import write_json_atomic

#: user-facing errors: one ``Error: ...`` line, exit status 1 (the style of every command)
one_line_errors = user_errors


@click.group("sen2cor")
def cmd() -> None:
    """Install Sen2Cor, check an installation, add ESA-CCI/CAMS aux data, write per-campaign GIPP files."""


PYTHON_HELP = ("Sen2Cor 3: the Python that runs L2A_Process.py (default: the environment 'sen2cor install' "
               "built and recorded).")


@cmd.command("install")
@click.argument("run_file", type=click.Path(path_type=Path))
@click.option("--prefix", type=click.Path(path_type=Path),
              help="Install directory (default ./Sen2Cor-xx-Linux64, or ./<zip name> for a Sen2Cor 3 zip).")
@click.option("--python", "python", help="Sen2Cor 3: use this Python (e.g. a venv you built) instead of building "
              "an environment from requirements.yml with conda/mamba.")
@one_line_errors
def install_cmd(run_file: Path, prefix: Path | None, python: str | None) -> None:
    """Install Sen2Cor non-interactively: ESA's Sen2Cor-02.xx.yy-Linux64.run (makeself archives only) or a
    Sen2Cor 3 zip (sen2cor_3.x.y_python_3.12_*.zip: unpacked safely, its environment built and recorded)."""
    from s2l2a.sen2cor.install import install

    inst = install(run_file, prefix, python=python)
    for line in inst.report_lines():
        click.echo(line)


@cmd.command("check")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--campaign", type=click.Path(path_type=Path), help="Compare with the install the campaign recorded.")
@click.option("--python", "python", help=PYTHON_HELP)
@one_line_errors
def check_cmd(path: Path | None, campaign: Path | None, python: str | None) -> None:
    """Find L2A_Process (2.x .run or 3.x zip layout), read its version and the product versions it supports,
    list its interpreter, cfg and aux data (ESA-CCI, CAMS) and what is missing (exit 1 if anything is)."""
    from s2l2a.sen2cor.layout import describe

    inst = describe(_install_path(path, campaign), python=python or _sen2cor_section(campaign).get("python"))
    for line in inst.report_lines():
        click.echo(line)
    if campaign is not None:
        note = _version_change(campaign, inst)
        if note:
            click.echo(note)
    if inst.missing:
        raise SystemExit(1)


@cmd.command("aux")
@click.option("--esacci", "package", type=click.Path(path_type=Path),
              help="ESA-CCI land-cover package for Sen2Cor (zip, tar or tar.gz).")
@click.option("--cams-daily", "cams_daily", type=click.Path(path_type=Path),
              help="Sen2Cor 3: a folder of daily ECMWF CAMS files, linked as aux_data/ECMWF/daily.")
@click.option("--cams-monthly", "cams_monthly", type=click.Path(path_type=Path),
              help="Sen2Cor 3: a folder of monthly ECMWF CAMS files, linked as aux_data/ECMWF/monthly.")
@click.option("--sen2cor", "sen2cor_path", type=click.Path(path_type=Path), help="Sen2Cor install (default: PATH).")
@click.option("--python", "python", help=PYTHON_HELP)
@click.option("--max-size", "max_gb", type=click.FloatRange(min=0.001, max=10_000), default=16.0, show_default=True,
              metavar="GB", callback=lambda _c, p, v: _finite(p, v),
              help="Refuse a package that expands to more than this (archive-bomb guard).")
@one_line_errors
def aux_cmd(package: Path | None, cams_daily: Path | None, cams_monthly: Path | None, sen2cor_path: Path | None,
            python: str | None, max_gb: float) -> None:
    """Put aux data where this Sen2Cor version reads it: the ESA-CCI package (extracted safely; 2.10+ and 3.x
    read the MONTHLY v2.4 snow package, 2.5-2.9 the weekly v2.0 one) and, for Sen2Cor 3, CAMS folders.

    Sizes are checked before and while expanding: a package larger than --max-size, with a member
    compressed more than 200:1, or larger than the free space is refused before it fills the disk.
    CAMS folders are linked, never copied or moved. The DEM is the campaign's: 's2l2a dem'.
    """
    from dataclasses import replace

    from s2l2a.errors import ConfigError
    from s2l2a.sen2cor.layout import describe

    if package is None and cams_daily is None and cams_monthly is None:
        raise ConfigError("nothing to install: give --esacci FILE, --cams-daily DIR or --cams-monthly DIR")
    inst = describe(sen2cor_path, python=python)
    if package is not None:
        from s2l2a.sen2cor.esacci import ESACCI_LIMITS, install_esacci

        limits = replace(ESACCI_LIMITS, max_bytes=int(max_gb * 10**9),
                         hint=" (give --max-size GB if the package is genuine)")
        for p in install_esacci(package, inst, limits):
            click.echo(f"ok {p}")
    for kind, folder in (("daily", cams_daily), ("monthly", cams_monthly)):
        if folder is not None:
            from s2l2a.sen2cor.cams import place

            link = place(folder, inst, kind)
            click.echo(f"ok {link} -> {folder}")
    if cams_daily is not None or cams_monthly is not None:
        from s2l2a.sen2cor.cams import coverage

        click.echo(f"CAMS covers: {coverage(inst).span()}")


@cmd.command("gipp")
@campaign_argument
@click.option("--sen2cor", "sen2cor_path", type=click.Path(path_type=Path), help="Sen2Cor install (default: "
              "[sen2cor] l2a_process of the campaign, else PATH).")
@click.option("--set", "pairs", multiple=True, metavar="KEY=VALUE", help="GIPP setting, e.g. nr_threads=1.")
@click.option("--ac", "include_ac", is_flag=True, help="Also write a copy of L2A_CAL_AC_GIPP.xml.")
@one_line_errors
def gipp_cmd(campaign: Path, sen2cor_path: Path | None, pairs: tuple[str, ...], include_ac: bool) -> None:
    """Write the campaign's GIPP copies from the install's templates, validate them, print their hashes.

    Settings come from ``[sen2cor.parameters]`` and ``processing_baseline`` in s2l2a.toml, the DEM
    prepared by ``s2l2a dem`` and ``--set`` (last wins). The installed templates are never edited.
    """
    from s2l2a.auxdata.dem import MANIFEST as DEM_MANIFEST
    from s2l2a.auxdata.dem import DemLayout
    from s2l2a.errors import ConfigError
    from s2l2a.sen2cor.gipp import write_for_install
    from s2l2a.sen2cor.layout import describe

    inst = describe(_install_path(sen2cor_path, campaign), python=_sen2cor_section(campaign).get("python"))
    note = _version_change(campaign, inst)
    if note:
        click.echo(note)
    settings: dict[str, Any] = {}
    section = _sen2cor_section(campaign)
    layout = CampaignLayout.of(campaign)
    dem_manifest = layout.dem / DEM_MANIFEST
    if dem_manifest.is_file():
        settings.update(DemLayout.load(dem_manifest.parent).gipp_settings())
    params = section.get("parameters", {})
    if not isinstance(params, dict):
        raise ConfigError("[sen2cor.parameters] must be a table", layout.settings_file)
    settings.update(params)
    if section.get("processing_baseline") and "L2A_PB_GIPP" in inst.templates:
        settings.setdefault("processing_baseline", section["processing_baseline"])
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"--set {pair!r}: expected KEY=VALUE")
        settings[key.strip()] = value.strip()
    gipps = write_for_install(inst, layout.gipp, settings, include_ac=include_ac)
    gipps.save({"install": str(inst.root), "l2a_process": str(inst.l2a_process)})
    _write_json(layout.sen2cor_install_record, {"root": str(inst.root), "version": inst.version,
                                            "l2a_process": str(inst.l2a_process)})
    for stem, path in gipps.files.items():
        click.echo(f"{path}  sha256:{gipps.hashes[stem]}  (valid against {stem}.xsd)")


# -- helpers --------------------------------------------------------------------------------------

def _finite(param: click.Parameter, value: float) -> float:
    """click's FloatRange lets NaN through (every comparison with it is false)."""
    if value != value:
        raise click.BadParameter("must be a number", param=param)
    return value


def _campaign_settings(campaign: Path | None) -> Any:
    """The campaign's settings; None where ``campaign`` is not one (yet)."""
    if campaign is None or not (campaign / SETTINGS_FILE).is_file():
        return None
    from s2l2a.campaign.settings import CampaignSettings

    return CampaignSettings.load(campaign)


def _sen2cor_section(campaign: Path | None) -> dict[str, Any]:
    settings = _campaign_settings(campaign)
    return dict(settings.sen2cor) if settings is not None else {}


def _install_path(path: Path | None, campaign: Path | None) -> Path | None:
    if path is not None:
        return path
    configured = _sen2cor_section(campaign).get("l2a_process")
    return Path(configured) if configured else None


def _version_change(campaign: Path, inst: Any) -> str | None:
    rec = CampaignLayout.of(campaign).sen2cor_install_record
    if not rec.is_file():
        return None
    try:
        old = json.loads(rec.read_text())
    except (OSError, ValueError):
        return None
    if old.get("version") != inst.version or old.get("root") != str(inst.root):
        return (f"note: Sen2Cor changed since this campaign's GIPP files were written: "
                f"{old.get('version')} at {old.get('root')} -> {inst.version} at {inst.root}")
    return None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_json_atomic(path, data, mkdir=True)
