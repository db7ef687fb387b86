"""The campaign's own DEM reaches the built-in processor: ``s2l2a dem``'s folder (``aux/dem``) is used
when ``[builtin] dem`` is unset, a relative ``dem`` is the campaign's, ``dem = false`` is flat, and
values that cannot name a DEM are refused in one line when the settings are read.

The DEM here is laid out as ``s2l2a dem`` lays out the Copernicus tiles (``dem.json`` listing one
cached tile and one sea tile), a smooth 0-800 m hill over the sample's tile, so the sample converts
with terrain on through ``s2l2a run`` as a user would run it.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
from affine import Affine

from s2l2a.campaign.execute import build_specs
from s2l2a.campaign.settings import CampaignSettings
from s2l2a.errors import ConfigError
from s2l2a.outputs.provenance import read_provenance

from .conftest import make_campaign, s2l2a

TILE = "Copernicus_DSM_COG_30_S31_00_E152_00_DEM"


def _hill(path: Path) -> Path:
    """A 30 arc-second tile (lat -31..-30, lon 152..153) with a smooth hill up to 800 m."""
    y, x = np.mgrid[0:120, 0:120] / 120.0
    z = 800.0 * np.exp(-((x - 0.5) ** 2 + (y - 0.4) ** 2) / 0.08)
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=120, height=120, count=1, dtype="float32",
                       crs="EPSG:4326", transform=Affine(1 / 120, 0, 152.0, 0, -1 / 120, -30.0),
                       nodata=-32768.0) as ds:
        ds.write(z.astype(np.float32), 1)
    return path


def _campaign_dem(camp: Path, cache: Path) -> Path:
    """``<camp>/aux/dem`` as ``s2l2a dem`` leaves it (manifest written last)."""
    tif = _hill(cache / f"{TILE}.tif")
    d = camp / "aux" / "dem"
    d.mkdir(parents=True)
    (d / "dem.json").write_text(json.dumps({
        "directory": str(d), "kind": "copernicus", "source": "cop90", "version": "2.11",
        "dem_reference": "Copernicus_DSM_COG_30_S??_00_E???_00_DEM.tif",
        "tiles": {TILE: str(tif), "Copernicus_DSM_COG_30_S31_00_E153_00_DEM": None}, "mosaic": None}))
    return d


def _report(camp: Path) -> tuple[Path, dict]:
    (l2a,) = (camp / "L2A").glob("*/*MSIL2A*.SAFE")
    (rep,) = l2a.glob("GRANULE/*/QI_DATA/builtin_report.json")
    return l2a, json.loads(rep.read_text())


def test_campaign_dem_folder_turns_terrain_on(tmp_path: Path) -> None:
    camp = make_campaign(tmp_path, 1)
    dem_dir = _campaign_dem(camp, tmp_path / "cache")
    r = s2l2a("run", camp, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    l2a, rep = _report(camp)
    assert rep["terrain"] == "DEM" and rep["adjacency"] is True
    assert rep["dem"]["dem"] == f"cop90 tiles listed in {dem_dir / 'dem.json'}"
    assert 0 < rep["dem"]["dem_max_m"] <= 800.5 and rep["dem"]["dem_outside_percent"] < 100
    log = (camp / "logs" / "1.log").read_text()
    assert f"terrain: DEM cop90 tiles listed in {dem_dir / 'dem.json'}" in log
    assert read_provenance(l2a).terrain == f"DEM cop90 tiles listed in {dem_dir / 'dem.json'}"


def test_campaign_without_dem_is_flat_and_says_so(tmp_path: Path) -> None:
    camp = make_campaign(tmp_path, 1)
    (camp / "aux" / "dem").mkdir(parents=True)  # a folder 's2l2a dem' did not finish: no manifest
    r = s2l2a("run", camp, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    l2a, rep = _report(camp)
    assert rep["dem"] is None and rep["terrain"] == "flat at 0.0 km (no DEM)" and rep["adjacency"] is False
    assert "terrain: flat (no DEM) at 0.0 km" in (camp / "logs" / "1.log").read_text()
    assert read_provenance(l2a).terrain == "flat (no DEM) at 0.0 km"


def _set_dem(camp: Path, toml: str, value: str) -> None:
    """``dem = <value>`` (TOML text) under the ``[builtin]`` table ``s2l2a init`` wrote."""
    assert "\n[builtin]\n" in toml
    (camp / "s2l2a.toml").write_text(toml.replace("\n[builtin]\n", f"\n[builtin]\ndem = {value}\n", 1))


def _specs_dem(camp: Path) -> object:
    settings = CampaignSettings.load(camp)
    job = SimpleNamespace(id=1, path=camp / "x.SAFE", tile="56JMM", name="x", attempts=0)
    _, job_settings, (spec,) = build_specs(camp, settings, [job])
    assert job_settings.extra.get("dem") == spec.processor_options.get("dem")
    return spec.processor_options.get("dem")


def test_which_dem_the_jobs_get(tmp_path: Path) -> None:
    camp = make_campaign(tmp_path, 0, plan=False)
    assert _specs_dem(camp) is None                                   # nothing prepared: flat
    dem_dir = _campaign_dem(camp, tmp_path / "cache")
    assert _specs_dem(camp) == str(dem_dir.resolve())                 # the campaign's own, absolute
    toml = (camp / "s2l2a.toml").read_text()
    for value, want in (("false", None), ('"mosaic.tif"', str((camp / "mosaic.tif").resolve())),
                        ('"aux/dem"', str(dem_dir.resolve())), ('"../elsewhere/dem.tif"',
                                                                     str((tmp_path / "elsewhere" / "dem.tif").resolve())),
                        (f'"{tmp_path / "abs.tif"}"', str(tmp_path / "abs.tif"))):
        _set_dem(camp, toml, value)
        assert _specs_dem(camp) == want, value


@pytest.mark.parametrize("value", ['"."', '".."', '"./"', '"../.."', '"no\\nsuch.tif"', '"a\\"b.tif"',
                                   "\"it's.tif\"", '""', '"  "', "0", "true", '"~nosuchuser/dem.tif"', '"logs"', '"campaign.sqlite"',
                                   '"s2l2a.toml"', '"/"'])
def test_dem_values_that_name_no_dem_are_refused_in_one_line(tmp_path: Path, value: str) -> None:
    camp = make_campaign(tmp_path, 0, plan=False)
    _set_dem(camp, (camp / "s2l2a.toml").read_text(), value)
    with pytest.raises(ConfigError) as err:
        CampaignSettings.load(camp)
    msg = str(err.value)
    assert "[builtin] dem" in msg and "\n" not in msg, msg
    r = s2l2a("run", camp)
    assert r.returncode == 1 and r.stderr.startswith("Error: ") and "[builtin] dem" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (camp / "logs").exists() or not any((camp / "logs").iterdir())


def test_config_sets_the_dem_as_typed(tmp_path: Path) -> None:
    camp = make_campaign(tmp_path, 0, plan=False)
    r = s2l2a("config", camp, "builtin.dem", "false")
    assert r.returncode == 0 and r.stderr == "", r.stderr            # a known key: no spelling warning
    assert CampaignSettings.load(camp).processor_options("builtin")["dem"] is False
    r = s2l2a("config", camp, "builtin.dem", "aux/dem")
    assert r.returncode == 0 and CampaignSettings.load(camp).processor_options("builtin")["dem"] == "aux/dem"
    for bad in (".", "..", "0"):
        r = s2l2a("config", camp, "builtin.dem", bad)
        assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "[builtin] dem" in r.stderr
    assert CampaignSettings.load(camp).processor_options("builtin")["dem"] == "aux/dem"  # left as it was


def test_s2l2a_dem_then_run_on_a_builtin_campaign(tmp_path: Path) -> None:
    """``s2l2a dem`` needs no Sen2Cor for a built-in campaign: it lays out the Copernicus tiles, and
    the next run reads them (tiles served by a local HTTP server, as tests/sen2cor_setup does)."""
    from sen2cor_setup.test_dem import TileServer, make_cop_tile

    www = tmp_path / "www"
    for lat in (-31, -30):
        for lon in (151, 152):
            make_cop_tile(www / "cop90", lat, lon)
    camp = make_campaign(tmp_path, 1)
    server = TileServer(www)
    try:
        r = s2l2a("dem", camp, "--base-url", server.url + "cop90/", "--cache", tmp_path / "cache")
    finally:
        server.close()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "DEM for the built-in processor: copernicus layout from cop90, 4 tile(s)" in r.stdout
    assert "DEM_Directory" not in r.stdout                              # a Sen2Cor GIPP hint, not ours
    r = s2l2a("run", camp, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    _, rep = _report(camp)
    assert rep["terrain"] == "DEM"
    assert rep["dem"]["dem"] == f"cop90 tiles listed in {(camp / 'aux' / 'dem' / 'dem.json').resolve()}"


def _dem_line(camp: Path) -> str:
    out = s2l2a("check", camp).stdout
    return next(line for line in out.splitlines() if line.split(" ", 1)[1].startswith("dem:"))


def test_check_says_which_dem_the_builtin_processor_reads(tmp_path: Path) -> None:
    camp = make_campaign(tmp_path, 1)
    assert _dem_line(camp).startswith("✓ dem: no DEM: the built-in processor corrects flat terrain")
    dem_dir = _campaign_dem(camp, tmp_path / "cache")
    assert _dem_line(camp) == f"✓ dem: the built-in processor reads cop90 tiles listed in {dem_dir / 'dem.json'}"
    toml = (camp / "s2l2a.toml").read_text()
    _set_dem(camp, toml, '"nosuch.tif"')
    assert _dem_line(camp).startswith(f"✗ dem: the built-in processor's DEM: {camp.resolve() / 'nosuch.tif'}: "
                                      "DEM not found")
    r = s2l2a("run", camp)
    assert r.returncode == 1 and "check failed: dem:" in r.stderr
    _set_dem(camp, toml, "false")
    assert _dem_line(camp) == "✓ dem: [builtin] dem = false: the built-in processor corrects flat terrain"
