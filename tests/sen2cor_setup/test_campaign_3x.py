"""A campaign through two Sen2Cor installs: a 2.11 .run tree for a PSD 14.8 product and a 3.3.0 installed
from its zip for a PSD 15.0 one; the preflight's product-version and CAMS checks; GeoTIFF outputs;
what each job records about how its L2A was made."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import rasterio

from s2l2a.campaign.settings import CampaignSettings
from s2l2a.campaign.store import CampaignStore
from s2l2a.safe import verify_l2a
from s2l2a.sen2cor.install import install
from s2l2a.sen2cor.layout import LAND_COVER, SNOW_COND_NEW, WATER_BODIES
from sample_clones import clone_sample

from .conftest import STANDIN, make_install, make_zip, with_datastrip, write_raster

S2L2A = Path(sys.executable).with_name("s2l2a")
BOUNDS = (150.0, -31.0, 152.0, -29.0)


def s2l2a(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(S2L2A), *map(str, args)], capture_output=True, text=True, timeout=timeout)


def esacci(aux: Path) -> None:
    """ESA-CCI items (2.10+/3.x names) as small real GeoTIFFs."""
    write_raster(aux / LAND_COVER, BOUNDS, size=8, value=10, dtype="uint8", nodata=None)
    write_raster(aux / WATER_BODIES, BOUNDS, size=8, value=1, dtype="uint8", nodata=None)
    write_raster(aux / SNOW_COND_NEW / "snow_01.tif", BOUNDS, size=8, value=0, dtype="uint8", nodata=None)


def checks(stdout: str) -> dict[str, str]:
    return {line.split(" ", 1)[1].split(":", 1)[0]: line for line in stdout.splitlines() if " " in line}


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path, Path]:
    monkeypatch.delenv("STANDIN_VERSION", raising=False)
    old = make_install(tmp_path / "Sen2Cor-02.11.00-Linux64", "2.11.0")
    (old / "bin" / "L2A_Process").write_text(
        f"#!/bin/sh\nSTANDIN_VERSION=2.11 exec {sys.executable} {STANDIN} \"$@\"\n")
    esacci(next(old.glob("lib/python*/site-packages/sen2cor")) / "aux_data")
    new = install(make_zip(tmp_path / "dl"), tmp_path / "sen2cor3", python=sys.executable).root
    esacci(new / "SEN2COR_3" / "aux_data")
    l1c = tmp_path / "l1c"
    with_datastrip(clone_sample(l1c, day=0))                 # PSD 14.8: Sen2Cor 2.11
    with_datastrip(clone_sample(l1c, day=1), "15.00.00")     # PSD 15.0: Sen2Cor 3.3.0
    camp = tmp_path / "camp"
    r = s2l2a("init", camp, "--processor", "sen2cor", "--sen2cor", old, "--memory-mb", "512")
    assert r.returncode == 0, r.stderr
    s = CampaignSettings.load(camp)
    s.sen2cor.update(installs=[str(new)], tif=True)
    s.save(camp)
    r = s2l2a("plan", camp, l1c)
    assert r.returncode == 0 and "rejected" not in r.stderr, r.stdout + r.stderr
    return camp, old, new, tmp_path / "CAMS"


def test_a_campaign_runs_each_product_on_the_sen2cor_that_reads_it(setup: tuple[Path, Path, Path, Path]) -> None:
    camp, old, new, cams = setup
    # the preflight: both products are read by one install each, but the 3.3 one lacks CAMS for its date
    r = s2l2a("check", camp)
    c = checks(r.stdout)
    assert r.returncode == 1, r.stdout
    assert "1 on Sen2Cor 2.11.0 (14.2 - 14.9), 1 on Sen2Cor 3.3.0 (15.0)" in c["processor"]
    assert c["esacci"].startswith("✓ esacci: ESA-CCI land cover") and str(new / "SEN2COR_3" / "aux_data") in c["esacci"]
    assert c["cams"].startswith("✗ cams: Sen2Cor 3.3.0 (15.0) reads CAMS from ") and "2018-06-30" in c["cams"]
    assert f"'s2l2a sen2cor aux --cams-daily DIR --sen2cor {new}'" in c["cams"]
    run = s2l2a("run", camp)
    assert run.returncode == 1 and "check failed: cams" in run.stderr
    # CAMS for that date: the check passes and the run converts both
    (cams / "daily").mkdir(parents=True)
    (cams / "daily" / "z_cams_c_ecmf_20180630000000_prod_fc_sfc_012_aod550.nc").write_bytes(b"CDF")
    r = s2l2a("sen2cor", "aux", "--cams-daily", cams / "daily", "--sen2cor", new)
    assert r.returncode == 0, r.stdout + r.stderr
    r = s2l2a("check", camp)
    assert r.returncode == 0, r.stdout
    assert checks(r.stdout)["cams"].startswith("✓ cams: Sen2Cor 3.3.0 (15.0): 1 product date(s) covered")
    run = s2l2a("run", camp)
    assert run.returncode == 0, run.stdout + run.stderr
    with CampaignStore.open(camp) as store:
        jobs = {j.name[11:19]: j for j in store.jobs()}
    assert {d: (j.state.value, j.processor_version) for d, j in jobs.items()} == {
        "20180629": ("done", "02.11.00"), "20180630": ("done", "03.03.00")}
    old_l2a, new_l2a = Path(jobs["20180629"].output_path), Path(jobs["20180630"].output_path)
    assert "_N9999_" in old_l2a.name and "_N9933_" in new_l2a.name      # 3.3.x's own baseline 99.33
    for l2a in (old_l2a, new_l2a):                                        # tif = true: GeoTIFF, verified
        product = verify_l2a(l2a)
        b04 = product.granules[0].images[10]["B04"]
        assert b04.suffix == ".tif"
        with rasterio.open(b04) as ds:
            assert ds.driver == "GTiff" and ds.read(1).max() > 0
    # what made each: in the job log and inside the product
    new_log = (camp / "logs" / f"{jobs['20180630'].id}.log").read_text()
    script = new / "SEN2COR_3" / "L2A_Process.py"
    assert f"s2l2a: sen2cor launcher {sys.executable} {script}" in new_log
    assert "s2l2a: sen2cor version 3.3.0 layout zip" in new_log
    assert "s2l2a: sen2cor product version 15.0 (datastrip schema in MTD_DS.xml), supported 15.0" in new_log
    assert f"s2l2a: aux esacci {SNOW_COND_NEW}" in new_log
    assert "s2l2a: aux cams daily 2018-06-30 .. 2018-06-30 (1 days)" in new_log
    assert "[INFO] Progress[%]: " in new_log and "Sen2Cor. Version: 03.03.00" in new_log
    assert f"{sys.executable} {script} " in new_log and " --tif" in new_log
    prov = json.loads(next(new_l2a.glob("GRANULE/*/QI_DATA/s2l2a_sen2cor_provenance.json")).read_text())
    assert prov["sen2cor_version"] == "3.3.0" and prov["layout"] == "zip"
    assert prov["launcher"] == [sys.executable, str(script)]
    assert prov["product_version"] == "15.0" and prov["supported_product_versions"] == "15.0"
    assert prov["cams"] == {"span": "daily 2018-06-30 .. 2018-06-30 (1 days)", "covers_product_date": True}
    assert set(prov["gipp_sha256"]) == {"GIP_L2A"}                        # the per-job Nr_Threads copy
    old_prov = json.loads(next(old_l2a.glob("GRANULE/*/QI_DATA/s2l2a_sen2cor_provenance.json")).read_text())
    assert (old_prov["sen2cor_version"], old_prov["layout"], old_prov["product_version"]) == ("2.11.0", "run", "14.8")
    assert old_prov["cams"] is None and old_prov["esacci"] == SNOW_COND_NEW
