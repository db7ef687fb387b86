"""Derived indices on real L2A pixels of both encodings, with offsets from MTD_MSIL2A.xml."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from s2l2a.outputs.cog import cog_problems
from s2l2a.outputs.derive import DeriveError, DeriveSpec, derive_product, verify_derived
from s2l2a.safe import open_l2a

from .conftest import L2A_0214, L2A_0500, L2A_N0400_META


def _band(product: Path, res: int, band: str) -> np.ndarray:
    f = next((product / "GRANULE").glob(f"*/IMG_DATA/R{res}m/*_{band}_{res}m.tif"))
    with rasterio.open(f) as ds:
        return ds.read(1).astype(np.float64)


def _hand_ndvi(product: Path, res: int, offset: float, nir: str = "B08") -> np.ndarray:
    """NDVI written out by hand: reflectance = (DN + offset) / 10000, DN 0 nodata."""
    if nir == "B08" and res != 10:  # B08 exists only at 10 m: 2x2 / 6x6 means of the 10 m DN
        k = res // 10
        b = _band(product, 10, "B08")
        nir_dn = b.reshape(b.shape[0] // k, k, b.shape[1] // k, k).mean(axis=(1, 3))
    else:
        nir_dn = _band(product, res, nir)
    red_dn = _band(product, res, "B04")
    r_nir, r_red = (nir_dn + offset) / 10000.0, (red_dn + offset) / 10000.0
    return (r_nir - r_red) / (r_nir + r_red)


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


def test_offsets_come_from_the_metadata() -> None:
    assert open_l2a(L2A_0214, require_bands=False).boa_add_offset["B04"] == 0.0
    assert open_l2a(L2A_0500, require_bands=False).boa_add_offset["B04"] == -1000.0
    real_0400 = open_l2a(L2A_N0400_META, require_bands=False)  # real ESA 04.00 product metadata
    assert (real_0400.baseline, real_0400.boa_add_offset["B08"], real_0400.boa_quantification_value) == (
        "04.00", -1000.0, 10000.0)


@pytest.mark.parametrize("res", [10, 20])
def test_ndvi_equals_hand_computation_on_both_baselines(tmp_path: Path, res: int) -> None:
    out = {}
    for product, offset in ((L2A_0214, 0.0), (L2A_0500, -1000.0)):
        r = derive_product(product, tmp_path, DeriveSpec(resolution=res, quicklooks=False))
        got = _read(r.path("ndvi")).astype(np.float64)
        want = _hand_ndvi(product, res, offset)
        assert got.shape == want.shape == ((96, 96) if res == 10 else (48, 48))
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
        assert r.boa_add_offset == {"B04": offset, "B08": offset}
        out[product.name] = got
    # the same reflectances in two encodings give the same NDVI
    np.testing.assert_allclose(out[L2A_0214.name], out[L2A_0500.name], rtol=0, atol=1e-6)


def test_raw_dn_ndvi_is_wrong_since_baseline_04(tmp_path: Path) -> None:
    """The lab's formula on raw DN: right for 02.14 (offset 0), biased for the offset encoding."""
    r = derive_product(L2A_0500, tmp_path, DeriveSpec(quicklooks=False))
    got = _read(r.path("ndvi")).astype(np.float64)
    raw = _hand_ndvi(L2A_0500, 10, 0.0)  # (B08 - B04) / (B08 + B04) on DN
    diff = np.abs(raw - got)
    assert diff.mean() > 0.01 and diff.max() > 0.02, (diff.mean(), diff.max())
    # raw DN adds 2000 to the denominator: on this bright desert (NDVI ~0.074) about a quarter too low
    ratio = np.mean(raw) / np.mean(got)
    assert 0.70 < ratio < 0.85, ratio
    raw_0214 = _hand_ndvi(L2A_0214, 10, 0.0)
    np.testing.assert_allclose(raw_0214, got, atol=1e-6)


def test_outputs_are_cogs_with_tags_nodata_scl_and_clear_mask(tmp_path: Path) -> None:
    spec = DeriveSpec(indices=("ndvi", "evi"), formulas=("ndre=(B8A-B05)/(B8A+B05)",), resolution=20,
                      clear_classes=(4, 5, 6))
    r = derive_product(L2A_0500, tmp_path, spec)
    assert set(r.files) == {"ndvi", "evi", "ndre", "SCL", "CLEAR"}
    assert Path(r.out_dir) == tmp_path / L2A_0500.name.removesuffix(".SAFE")
    assert not list(tmp_path.glob(".partial-*"))
    for name in r.files:
        p = r.path(name)
        assert cog_problems(p) == [], name
        with rasterio.open(p) as ds:
            assert ds.overviews(1) == [2], name
            assert ds.profile["tiled"]
            assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            assert ds.tags()["S2L2A_SOURCE_PRODUCT"] == L2A_0500.name.removesuffix(".SAFE")
            assert ds.crs.to_epsg() == 32629 and ds.res == (200.0, 200.0)
            ov = ds.read(1, out_shape=(24, 24))  # the overview decodes
            assert ov.shape == (24, 24)
    with rasterio.open(r.path("ndre")) as ds:
        assert ds.tags()["S2L2A_FORMULA"] == "ndre = (B8A-B05)/(B8A+B05)"
        assert ds.tags()["S2L2A_BOA_ADD_OFFSET"] == "B8A:-1000, B05:-1000"
        assert np.isnan(ds.nodata) and ds.dtypes[0] == "float32"
    scl_src = _band(L2A_0500, 20, "SCL").astype(np.uint8)
    scl = _read(r.path("SCL"))
    np.testing.assert_array_equal(scl, scl_src)
    clear = _read(r.path("CLEAR"))
    np.testing.assert_array_equal(clear, np.isin(scl_src, [4, 5, 6]).astype(np.uint8))
    assert set(np.unique(scl)) >= {5, 10}  # real classes in the crop: not vegetated, cirrus
    assert (r.quicklooks.keys() == {"tci", "scl"}) and (Path(r.out_dir) / r.quicklooks["tci"]).stat().st_size > 100
    assert verify_derived(r.out_dir).product == r.product


def test_dn_zero_is_nodata(tmp_path: Path) -> None:
    product = tmp_path / L2A_0500.name
    shutil.copytree(L2A_0500, product)
    f = next(product.glob("GRANULE/*/IMG_DATA/R10m/*_B04_10m.tif"))
    with rasterio.open(f, "r+") as ds:
        a = ds.read(1)
        a[:10, :20] = 0
        ds.write(a, 1)
    r = derive_product(product, tmp_path / "out", DeriveSpec(quicklooks=False))
    ndvi = _read(r.path("ndvi"))
    assert np.isnan(ndvi[:10, :20]).all() and np.isfinite(ndvi[10:]).all()


def test_rerun_replaces_the_folder_and_bad_requests_leave_nothing(tmp_path: Path) -> None:
    derive_product(L2A_0214, tmp_path, DeriveSpec(quicklooks=False))
    r = derive_product(L2A_0214, tmp_path, DeriveSpec(indices=("nbr",), quicklooks=False))
    assert set(r.files) == {"nbr", "SCL"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [L2A_0214.name.removesuffix(".SAFE")]
    with pytest.raises(DeriveError, match="no 60 m images|resolution"):
        derive_product(L2A_0214, tmp_path / "x", DeriveSpec(resolution=30))
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


@pytest.mark.parametrize("res", [10, 20, 60])
def test_strip_borders_change_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, res: int) -> None:
    """Reading in 6-row strips (SCL replicated up, B08 averaged down across strip borders) equals one strip."""
    import s2l2a.outputs.derive as derive_mod

    spec = DeriveSpec(indices=("ndvi", "evi"), clear_classes=(5,), resolution=res, quicklooks=False)
    whole = derive_product(L2A_0500, tmp_path / "whole", spec)
    monkeypatch.setattr(derive_mod, "STRIP_ROWS", 6)
    strips = derive_product(L2A_0500, tmp_path / "strips", spec)
    for key in ("ndvi", "evi", "SCL", "CLEAR"):
        np.testing.assert_array_equal(_read(whole.path(key)), _read(strips.path(key)), err_msg=key)
    assert not list((tmp_path / "strips").rglob(".scratch-*"))


def test_a_killed_run_leaves_a_partial_folder_that_the_next_run_removes(tmp_path: Path) -> None:
    import subprocess
    import sys

    from s2l2a.outputs import derive as derive_mod

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    name = L2A_0214.name.removesuffix(".SAFE")
    leftover = tmp_path / f"{derive_mod.PARTIAL_PREFIX}{derive_mod._HOST}-{dead}-{name}"
    leftover.mkdir(parents=True)
    (leftover / "half.tif").write_bytes(b"II*\0")
    derive_product(L2A_0214, tmp_path, DeriveSpec(quicklooks=False))
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
