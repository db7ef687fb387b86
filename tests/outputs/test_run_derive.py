"""``s2l2a run --derive``: indices + SCL per product right after its L2A is verified."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import rasterio

from s2l2a.campaign.execute import _verify_resolutions
from s2l2a.campaign.store import CampaignStore
from s2l2a.processors.base import JobSettings

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"


def s2l2a(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "s2l2a", *args], capture_output=True, text=True, timeout=600)


def test_run_derive_keep_derived(tmp_path: Path) -> None:
    camp = tmp_path / "camp"
    assert s2l2a("init", str(camp), "--processor", "builtin").returncode == 0
    assert s2l2a("plan", str(camp), str(SAMPLE)).returncode == 0
    r = s2l2a("run", str(camp), "--derive", "ndvi", "--formula", "ndmi=(B8A-B11)/(B8A+B11)",
              "--clear-classes", "4,5", "--keep", "derived")
    assert r.returncode == 0, r.stderr
    with CampaignStore.open(camp) as store:
        (job,) = store.jobs("done")
    folded = json.loads(next((camp / "results" / "folded").glob("*.json")).read_text())
    derived = Path(folded["derived_path"])
    assert folded["derive_error"] is None and derived.parent == camp / "derived" / "56JMM"
    names = sorted(p.name.split("_")[-2] + "_" + p.name.split("_")[-1] for p in derived.glob("*.tif"))
    assert names == ["CLEAR_10m.tif", "NDMI_10m.tif", "NDVI_10m.tif", "SCL_10m.tif"]
    with rasterio.open(next(derived.glob("*NDVI_10m.tif"))) as ds:
        ndvi = ds.read(1, masked=True)
        assert ds.overviews(1), "derived outputs are COGs with overviews"
    valid = ndvi.compressed()
    assert valid.size > 1000
    # a vegetated Australian tile in June: NDVI mostly positive; near-zero-reflectance pixels (the
    # decimated sample's swath border mixes no-data into low DNs) may fall outside [-1, 1]
    assert 0.2 < float(np.median(valid)) < 0.9
    assert np.mean(np.abs(valid) <= 1) > 0.95
    # keep derived: the verified L2A was deleted after the derived outputs verified, the L1C stays
    assert not Path(job.output_path).exists()
    assert SAMPLE.joinpath("S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042.SAFE").is_dir()
    # the folder records where it is and how its L2A was made, and STAC shows the same provenance a
    # written L2A gives (its builtin_report.json: parameter files, software, terrain)
    manifest = json.loads((derived / "derived.json").read_text())
    assert manifest["out_dir"] == str(derived)
    prov = manifest["provenance"]
    assert prov["processor"] == "builtin" and set(prov["gipp_sha256"]) == {"GIP_L2A_AC", "GIP_L2A_SC"}
    assert prov["terrain"].startswith("flat (no DEM)") and "GDAL" in prov["software"]
    assert s2l2a("stac", str(camp)).returncode == 0
    item = json.loads(next((camp / "stac").glob("*/*.json")).read_text())
    props = item["properties"]
    assert props["s2l2a:gipp_sha256"] == prov["gipp_sha256"] and props["s2l2a:terrain"] == prov["terrain"]
    assert props["processing:software"]["GDAL"] == prov["software"]["GDAL"]
    # a lost store is rebuilt from progress.log: the product without an L2A (never written here) is
    # still done, by its derived folder, and the next run converts nothing
    (camp / "campaign.sqlite").unlink()
    r = s2l2a("rebuild", str(camp))
    assert r.returncode == 0 and "queued again" not in r.stdout, r.stdout + r.stderr
    with CampaignStore.open(camp) as store:
        assert [(j.id, j.state.value, j.output_path) for j in store.jobs()] == [(job.id, "done", job.output_path)]
    r = s2l2a("run", str(camp), "--derive", "ndvi", "--keep", "derived")
    assert r.returncode == 0 and "nothing to run: 1 done" in r.stdout, r.stdout + r.stderr


def test_run_derive_bad_formula_stops_before_work(tmp_path: Path) -> None:
    camp = tmp_path / "camp"
    s2l2a("init", str(camp), "--processor", "builtin")
    s2l2a("plan", str(camp), str(SAMPLE))
    r = s2l2a("run", str(camp), "--formula", "x=__import__('os').system('true')")
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "derive settings" in r.stderr
    with CampaignStore.open(camp) as store:
        assert store.counts()["queued"] == 1 and store.counts()["done"] == 0
    r = s2l2a("run", str(camp), "--keep", "derived")
    assert r.returncode == 1 and "need something to derive" in r.stderr


def test_verify_resolutions_follow_the_processor() -> None:
    assert _verify_resolutions(JobSettings()) is None
    assert _verify_resolutions(JobSettings(), {"resolutions": [20, 60]}) == (20, 60)
    assert _verify_resolutions(JobSettings(resolution=20), {"resolutions": [10, 20, 60]}) is None
    assert _verify_resolutions(JobSettings(resolution=60)) == (60,)


def test_run_derive_after_a_finished_run_derives_the_done_products(tmp_path: Path) -> None:
    """README's step by step: converting first, then ``run --derive ... --keep derived`` derives the
    done products that lack the outputs (it used to print 'nothing to run' and derive nothing)."""
    camp = tmp_path / "camp"
    assert s2l2a("init", str(camp), "--processor", "builtin").returncode == 0
    assert s2l2a("plan", str(camp), str(SAMPLE)).returncode == 0
    assert s2l2a("run", str(camp)).returncode == 0
    assert not (camp / "derived").exists()
    r = s2l2a("run", str(camp), "--derive", "ndvi")
    assert r.returncode == 0, r.stderr
    assert "nothing to run" in r.stdout + r.stderr and "derived 1 done product(s)" in r.stdout + r.stderr
    (folder,) = (camp / "derived" / "56JMM").iterdir()
    assert sorted(p.name.split("_")[-2] for p in folder.glob("*.tif")) == ["NDVI", "SCL"]
    r = s2l2a("run", str(camp), "--derive", "ndvi", "--keep", "derived")  # already there: keep applies
    assert "derived 0 done product(s)" in r.stdout + r.stderr and "1 already had these outputs" in r.stdout + r.stderr
    with CampaignStore.open(camp) as store:
        (job,) = store.jobs("done")
    assert not Path(job.output_path).exists() and (folder / "derived.json").is_file()
