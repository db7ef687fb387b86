"""The deliverable-only run (``run --keep derived`` with the built-in processor): the derived folder
straight from memory equals, array by array, what the full L2A + ``derive`` gives, and the campaign
treats the product as done and kept derived."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from s2l2a.campaign.store import CampaignStore
from s2l2a.outputs.derive import DeriveSpec, derive_product, publisher, verify_derived
from s2l2a.processors import get_processor
from s2l2a.processors.base import JobSettings
from s2l2a.safe import open_l1c

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"
L1C = SAMPLE / "S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042.SAFE"
# what legitimately differs: the product's generation time (in its name) and where things are
WHERE = {"product", "source", "out_dir", "files", "quicklooks", "created"}


def _same_manifests(full: Path, mem: Path) -> None:
    a = json.loads((full / "derived.json").read_text())
    b = json.loads((mem / "derived.json").read_text())
    assert {k: v for k, v in a.items() if k not in WHERE} == {k: v for k, v in b.items() if k not in WHERE}
    assert set(a["files"]) == set(b["files"]) and set(a["quicklooks"]) == set(b["quicklooks"])


def _hills(path: Path) -> Path:
    """A DEM over the sample's tile (EPSG:32756, 200 m): hills up to ~900 m, so terrain and adjacency run."""
    from affine import Affine

    y, x = np.mgrid[0:560, 0:560] / 560.0
    z = 450 + 300 * np.sin(6 * x) * np.cos(5 * y) + 150 * x
    with rasterio.open(path, "w", driver="GTiff", width=560, height=560, count=1, dtype="float32",
                       crs="EPSG:32756", transform=Affine(200, 0, 399000, 0, -200, 6701000)) as ds:
        ds.write(z.astype(np.float32), 1)
    return path


@pytest.mark.parametrize("resolution,dem", [(10, False), (20, False), (60, False), (10, True)])
def test_deliverables_equal_full_l2a_plus_derive(tmp_path: Path, resolution: int, dem: bool) -> None:
    spec = DeriveSpec(indices=("ndvi", "ndwi"), formulas=("nbr=(B8A-B12)/(B8A+B12)",), resolution=resolution,
                      clear_classes=(4, 5, 6))
    proc = get_processor("builtin", {"dem": str(_hills(tmp_path / "dem.tif"))} if dem else {})
    l2a = proc.process(open_l1c(L1C), tmp_path / "stage", JobSettings(cores=1), tmp_path / "full.log")
    full = derive_product(l2a.product_dir, tmp_path / "derived-full", spec)
    got = proc.deliver(open_l1c(L1C), tmp_path / "stage2", JobSettings(cores=1), tmp_path / "mem.log", spec,
                       tmp_path / "L2A" / "56JMM", publisher(tmp_path / "derived-mem", spec))
    mem = got.derived
    assert verify_derived(mem.out_dir).files.keys() == full.files.keys() == {"ndvi", "ndwi", "nbr", "SCL", "CLEAR"}
    assert mem.source == str((tmp_path / "L2A" / "56JMM").resolve() / f"{mem.product}.SAFE")
    assert not list((tmp_path / "stage2").rglob("*.jp2")) and not list((tmp_path / "stage2").rglob("*.tif"))
    _same_manifests(Path(full.out_dir), Path(mem.out_dir))
    for key in full.files:
        with rasterio.open(full.path(key)) as a, rasterio.open(mem.path(key)) as b:
            x, y = a.read(1), b.read(1)
            assert (a.transform, a.crs, a.dtypes, a.nodata is None or np.isnan(a.nodata) or a.nodata) == \
                   (b.transform, b.crs, b.dtypes, b.nodata is None or np.isnan(b.nodata) or b.nodata)
            ta, tb = a.tags(), b.tags()
            assert ta.pop("S2L2A_SOURCE_PRODUCT") == full.product and tb.pop("S2L2A_SOURCE_PRODUCT") == mem.product
            assert ta == tb, key
        if x.dtype.kind == "f":
            np.testing.assert_array_equal(np.isnan(x), np.isnan(y))
            assert np.isfinite(x).sum() > 1000
            assert float(np.nanmax(np.abs(x.astype(np.float64) - y))) <= 1e-6, key
        else:
            np.testing.assert_array_equal(x, y, err_msg=key)
    log = (tmp_path / "mem.log").read_text()
    assert "the L2A is not written" in log and "wrote and verified" in log
    assert got.details["derived_only"] is True and got.details["gipp_sha256"]
    assert (got.details["terrain"] == "DEM") == dem and got.details["adjacency"] == dem


def s2l2a(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "s2l2a", *args], capture_output=True, text=True, timeout=600)


def test_run_keep_derived_writes_no_l2a_and_counts_as_done(tmp_path: Path) -> None:
    camp = tmp_path / "camp"
    assert s2l2a("init", str(camp), "--processor", "builtin").returncode == 0
    assert s2l2a("plan", str(camp), str(SAMPLE)).returncode == 0
    r = s2l2a("run", str(camp), "--derive", "ndvi", "--keep", "derived")
    assert r.returncode == 0, r.stderr
    with CampaignStore.open(camp) as store:
        (job,) = store.jobs("done")
    out = Path(job.output_path)
    assert not out.exists() and not list(out.parent.parent.rglob("*.SAFE"))  # no L2A was ever published
    (derived,) = (camp / "derived" / "56JMM").iterdir()
    assert derived.name == out.name.removesuffix(".SAFE")
    assert verify_derived(derived).source == str(out.resolve())
    log = next((camp / "logs").glob("*.log")).read_text()
    assert "the L2A is not written" in log
    r = s2l2a("status", str(camp), "--verify")
    assert r.returncode == 0 and "0 done output(s) gone" in r.stdout + r.stderr, r.stdout + r.stderr
    with CampaignStore.open(camp) as store:
        assert store.counts()["done"] == 1
    r = s2l2a("stac", str(camp))
    assert r.returncode == 0, r.stderr
    items = [json.loads(p.read_text()) for p in (camp / "stac").rglob("*.json")]
    (assets,) = [i["assets"] for i in items if i.get("type") == "Feature"]
    assert "derived_ndvi" in assets and "derived_scl" in assets
    assert s2l2a("report", str(camp)).returncode == 0


@pytest.mark.parametrize("whole_ratios", [False, True])
def test_band_by_band_decoding_reduces_like_the_whole_bands(tmp_path: Path, whole_ratios: bool) -> None:
    """decode_reduced (both paths) gives the 60/20 m inputs and the no-data masks that whole bands give.

    ``whole_ratios``: the sample's bands cut to 438/219/73 px, grids in exact 2x/6x ratios like a real
    tile's, so the block-mean and all-zero-block paths run (the decimated sample's 439/219/73 do not)."""
    from s2l2a.processors.builtin import pipeline as pl

    granule = open_l1c(L1C).granules[0]
    files = {b: Path(p) for b, p in granule.band_files.items() if b in pl.NATIVE}
    if whole_ratios:
        cut = tmp_path / "cut"
        cut.mkdir()
        for b, f in list(files.items()):
            n = 438 * 10 // pl.NATIVE[b]
            with rasterio.open(f) as src:
                profile = dict(driver="GTiff", width=n, height=n, count=1, dtype="uint16", crs=src.crs,
                               transform=src.transform)
                files[b] = cut / f"{b}.tif"
                with rasterio.open(files[b], "w", **profile) as dst:
                    dst.write(src.read(1, window=((0, n), (0, n))), 1)
        spill_dir = tmp_path / "spill"
        spill_dir.mkdir()
    else:
        spill_dir = tmp_path
    data, transforms, _crs = pl.read_bands(files)
    grids = pl._grids(granule, {b: a.shape for b, a in data.items()}, transforms)
    if whole_ratios:
        assert {r: g.shape for r, g in grids.items()} == {10: (438, 438), 20: (219, 219), 60: (73, 73)}
    red = pl.decode_reduced(files, grids, 1, (10, 20, 60), True, keep=("B04",), spill=("B08", "B8A"),
                            spill_dir=spill_dir)
    assert list(red.data60) == list(data)  # the decoding order (the 60 m validity band depends on it)
    for r, mask in pl.shared_nodata(data, grids).items():
        np.testing.assert_array_equal(red.nodata[r], mask)
        assert mask.any()
    for b, a in data.items():
        np.testing.assert_array_equal(red.data60[b], pl.rows_resampled(a, grids[60].shape, 0, grids[60].shape[0]))
    assert set(red.data20) == set(pl.CLASSIFY_BANDS)
    for b in red.data20:
        np.testing.assert_array_equal(pl.rows_resampled(red.data20[b], grids[20].shape, 0, grids[20].shape[0]),
                                      pl.rows_resampled(data[b], grids[20].shape, 0, grids[20].shape[0]))
    assert sorted(p.name for p in spill_dir.iterdir()) == ["B08.u16", "B8A.u16"]
    for b in ("B04", "B08", "B8A"):
        np.testing.assert_array_equal(red.load(b), data[b])
    assert not list(spill_dir.iterdir())  # handed over once, then gone
