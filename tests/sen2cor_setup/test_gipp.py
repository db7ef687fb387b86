"""Per-campaign GIPP copies from the real templates of 2.1.2, 2.2, 2.8, 2.11 and the 2.5.5-2.12 variants."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from s2l2a.cli import main
from s2l2a.errors import ConfigError
from s2l2a.sen2cor.gipp import GippSet, sha256, verify, write_for_install, write_gipps
from s2l2a.sen2cor.layout import describe

from .conftest import DATA


def stems(folder: Path, with_xsd: bool = True) -> tuple[dict[str, Path], dict[str, Path]]:
    t = {p.stem: p for p in folder.glob("L2A_*GIPP.xml")}
    s = {p.stem: p for p in folder.glob("L2A_*GIPP.xsd")} if with_xsd else {}
    return t, s


def value(path: Path, tag: str) -> str:
    return next(etree.parse(str(path)).getroot().iter(tag)).text or ""


def test_2_8_full_settings_validate_and_hash(tmp_path: Path) -> None:
    tpl, xsd = stems(DATA / "cfg-2.8.0")
    before = {k: sha256(v) for k, v in tpl.items()}
    settings = {"dem_directory": "/data/campaign/aux/dem", "dem_reference": "/data/campaign/aux/dem/",
                "nr_threads": 1, "aerosol_type": "MARITIME", "mid_latitude": "AUTO", "ozone": 0,
                "cirrus_correction": True, "brdf_correction": 2, "terrain_correction": False,
                "downsample_20_to_60": False, "processing_baseline": "05.10",
                "esacci_land_cover_map": "ESACCI-LC-L4-LCCS-Map-300m-P1Y-2015-v2.0.7.tif"}
    g = write_gipps(tpl, tmp_path / "gipp", settings, version="2.8.0", schemas=xsd)
    assert set(g.files) == {"L2A_GIPP", "L2A_CAL_SC_GIPP", "L2A_PB_GIPP"}       # AC only when asked
    gipp = g.files["L2A_GIPP"]
    assert value(gipp, "DEM_Directory") == "/data/campaign/aux/dem/"              # trailing slash added
    assert value(gipp, "Nr_Threads") == "1" and value(gipp, "Aerosol_Type") == "MARITIME"
    assert value(gipp, "Cirrus_Correction") == "TRUE" and value(gipp, "DEM_Terrain_Correction") == "FALSE"
    assert value(gipp, "Ozone_Content") == "0" and value(gipp, "Downsample_20_to_60") == "FALSE"
    assert value(g.files["L2A_PB_GIPP"], "Baseline_Version") == "05.10"
    assert "<!--" in gipp.read_text()                                               # comments kept
    assert all(len(h) == 64 for h in g.hashes.values()) and all(g.validated.values())
    assert {k: sha256(v) for k, v in tpl.items()} == before                         # templates untouched
    assert g.options()[:2] == ["--GIP_L2A", str(gipp)] and "--GIP_L2A_PB" in g.options()
    # preflight re-check: valid and unchanged; a hand edit is caught
    assert verify(g, xsd) == g.hashes
    gipp.write_text(gipp.read_text().replace("MARITIME", "RURAL"))
    with pytest.raises(ConfigError, match="changed since"):
        verify(g, xsd)


def test_2_8_setting_absent_from_template_is_named(tmp_path: Path) -> None:
    tpl, xsd = stems(DATA / "cfg-2.8.0")
    with pytest.raises(ConfigError, match="force_exit_on_dem_error.*Force_Exit_On_DEM_Error.*2.8.0"):
        write_gipps(tpl, tmp_path, {"force_exit_on_dem_error": True}, version="2.8.0", schemas=xsd)
    with pytest.raises(ConfigError, match="unknown GIPP setting 'nr_thread'"):
        write_gipps(tpl, tmp_path, {"nr_thread": 1}, version="2.8.0", schemas=xsd)


def test_value_rejected_by_xsd_leaves_no_file(tmp_path: Path) -> None:
    tpl, xsd = stems(DATA / "cfg-2.8.0")
    with pytest.raises(ConfigError) as e:
        write_gipps(tpl, tmp_path, {"aerosol_type": "DESERT"}, version="2.8.0", schemas=xsd)
    msg = str(e.value)
    assert "\n" not in msg and "L2A_GIPP.xml" in msg and "Aerosol_Type" in msg and "line" in msg
    assert not (tmp_path / "L2A_GIPP.xml").exists() and not list(tmp_path.glob(".*tmp"))
    with pytest.raises(ConfigError, match="Nr_Threads"):
        write_gipps(tpl, tmp_path, {"nr_threads": 99}, version="2.8.0", schemas=xsd)


@pytest.mark.parametrize("folder, version", [("cfg-2.1.2", "2.1.2"), ("cfg-2.2.1", "2.2.1")])
def test_old_cfg_sets(tmp_path: Path, folder: str, version: str) -> None:
    tpl, xsd = stems(DATA / folder)
    g = write_gipps(tpl, tmp_path, {"dem_directory": "dem", "cirrus_correction": True,
                                    "snow_map": "GlobalSnowMap.tiff"}, version=version, schemas=xsd,
                    include_ac=True)
    assert set(g.files) == {"L2A_GIPP", "L2A_CAL_SC_GIPP", "L2A_CAL_AC_GIPP"}      # no PB before 2.8
    assert value(g.files["L2A_GIPP"], "Cirrus_Correction") == "1"                    # 0/1 style kept
    assert value(g.files["L2A_GIPP"], "DEM_Directory") == "dem/"
    with pytest.raises(ConfigError, match="nr_threads.*Nr_Threads"):
        write_gipps(tpl, tmp_path, {"nr_threads": 2}, version=version, schemas=xsd)
    with pytest.raises(ConfigError, match="processing_baseline.*L2A_PB_GIPP"):
        write_gipps(tpl, tmp_path, {"processing_baseline": "02.06"}, version=version, schemas=xsd)


def test_2_2_ozone_letter_codes(tmp_path: Path) -> None:
    tpl, xsd = stems(DATA / "cfg-2.2.1")
    g = write_gipps(tpl, tmp_path, {"ozone": "w", "mid_latitude": "WINTER"}, version="2.2.1", schemas=xsd)
    assert value(g.files["L2A_GIPP"], "Ozone_Content") == "w"
    with pytest.raises(ConfigError):
        write_gipps(tpl, tmp_path, {"ozone": 331}, version="2.2.1", schemas=xsd)


@pytest.mark.parametrize("variant", ["bdc-sen2cor-docker/2.10.0/L2A_GIPP.xml", "bdc-sen2cor-docker/2.11.0/L2A_GIPP.xml",
                                     "bdc-sen2cor-docker/2.12.0/L2A_GIPP.xml", "mundialis-2.11-based/L2A_GIPP.xml"])
def test_2_10_to_2_12_variants_with_2_11_xsd(tmp_path: Path, variant: str) -> None:
    tpl, _ = stems(DATA / "cfg-2.8.0")
    tpl["L2A_GIPP"] = DATA / "gipp-variants" / variant
    _, xsd = stems(DATA / "xsd-2.11")
    g = write_gipps(tpl, tmp_path, {"dem_directory": "/c/aux/dem", "force_exit_on_dem_error": True,
                                    "dem_reference": "https://copernicus-dem-90m.s3.eu-central-1.amazonaws.com/",
                                    "nr_threads": "AUTO", "ozone_content": 331, "processing_baseline": "99.99"},
                    version="2.11.0", schemas=xsd)
    gipp = g.files["L2A_GIPP"]
    assert value(gipp, "Force_Exit_On_DEM_Error") == "TRUE" and value(gipp, "DEM_Directory") == "/c/aux/dem/"
    assert all(g.validated.values())


@pytest.mark.parametrize("variant", ["bdc-sen2cor-docker/2.5.5/L2A_GIPP.xml", "bdc-sen2cor-docker/2.9.0/L2A_GIPP.xml",
                                     "ewoc-2.9or2.10-based/L2A_GIPP.xml", "dzanaga-2.8-based/L2A_GIPP.xml",
                                     "sen2like-2.12-based/sen2cor_L2A_GIPP_DEM_ON.xml"])
def test_variants_without_matching_xsd(tmp_path: Path, variant: str) -> None:
    tpl = {"L2A_GIPP": DATA / "gipp-variants" / variant}
    with pytest.raises(ConfigError, match="no L2A_GIPP.xsd"):
        write_gipps(tpl, tmp_path, {"dem_directory": "dem"}, version="2.9.0")
    g = write_gipps(tpl, tmp_path, {"dem_directory": "dem/srtm", "aerosol_type": "RURAL"}, version="2.9.0",
                    require_schema=False)
    assert value(g.files["L2A_GIPP"], "DEM_Directory") == "dem/srtm/" and not g.validated["L2A_GIPP"]


def test_2_5_5_has_no_nr_threads(tmp_path: Path) -> None:
    tpl = {"L2A_GIPP": DATA / "gipp-variants/bdc-sen2cor-docker/2.5.5/L2A_GIPP.xml"}
    with pytest.raises(ConfigError, match="'nr_threads' \\(Nr_Threads\\) is not in Sen2Cor 2.5.5"):
        write_gipps(tpl, tmp_path, {"nr_threads": 1}, version="2.5.5", require_schema=False)


def test_write_for_install_and_cli(tmp_path: Path, install_factory) -> None:
    root = install_factory("2.11.0")
    inst = describe(root)
    g = write_for_install(inst, tmp_path / "g", {"nr_threads": 2})
    assert value(g.files["L2A_GIPP"], "Nr_Threads") == "2"
    camp = tmp_path / "camp"
    camp.mkdir()
    (camp / "s2l2a.toml").write_text(
        f'[sen2cor]\nl2a_process = "{root}/bin/L2A_Process"\nprocessing_baseline = "05.10"\n'
        '[sen2cor.parameters]\naerosol_type = "AUTO"\nnr_threads = 1\n')
    r = CliRunner().invoke(main, ["sen2cor", "gipp", str(camp), "--set", "mid_latitude=WINTER"])
    assert r.exit_code == 0, r.output
    out = camp / "sen2cor" / "gipp"
    assert value(out / "L2A_GIPP.xml", "Aerosol_Type") == "AUTO"
    assert value(out / "L2A_GIPP.xml", "Mid_Latitude") == "WINTER"
    assert value(out / "L2A_PB_GIPP.xml", "Baseline_Version") == "05.10"
    assert (out / "gipp.json").is_file() and "sha256:" in r.output
    rec = GippSet.load(out)
    assert rec.version == "2.11.0" and rec.hashes["L2A_GIPP"] == sha256(out / "L2A_GIPP.xml")
    assert verify(rec, inst.schemas) == rec.hashes and "--GIP_L2A_PB" in rec.options()
    r = CliRunner().invoke(main, ["sen2cor", "gipp", str(camp), "--set", "aerosol_type=DESERT"])
    assert r.exit_code == 1 and r.output.strip().count("\n") == 0 and "Aerosol_Type" in r.output


def test_failed_rewrite_leaves_previous_set_whole(tmp_path: Path) -> None:
    tpl, xsd = stems(DATA / "cfg-2.8.0")
    g = write_gipps(tpl, tmp_path, {"aerosol_type": "RURAL", "processing_baseline": "05.10"}, version="2.8.0",
                    schemas=xsd)
    with pytest.raises(ConfigError, match="processing_baseline"):
        write_gipps(tpl, tmp_path, {"aerosol_type": "MARITIME", "processing_baseline": "5.1"}, version="2.8.0",
                    schemas=xsd)
    assert {k: sha256(v) for k, v in g.files.items()} == g.hashes
    assert not list(tmp_path.glob(".*tmp"))
