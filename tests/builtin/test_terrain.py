"""Terrain (DEM) and adjacency: the pieces with closed-form answers, and a synthetic rugged scene end to end.

The scene (synth_terrain.py): a fractal DEM with 1.2 km of relief under a 59 deg winter sun, forest and
fields, a lake, aerosol growing west to east, everything forwarded per pixel with terrain illumination,
cast shadows, sky view and 6S-weighted adjacency. The processor, given the DEM, must return the BOA
within 0.005 + 0.05 rho for >= 95 % of the pixels of every band (shadows included).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from s2l2a.campaign.failures import FailureClass
from s2l2a.processors import get_processor
from s2l2a.processors.base import JobSettings, ProcessingFailed
from s2l2a.processors.builtin import adjacency, levels, terrain
from s2l2a.processors.builtin.dem import DemError, read_dem
from s2l2a.processors.builtin.geometry import CellGrid, Geometry
from s2l2a.processors.builtin.invert import (
    apparent_reflectance,
    irradiance_factor,
    surface_reflectance,
    toa_to_boa,
)
from s2l2a.safe import open_l1c

from .synth import SAMPLE
from .synth_terrain import make_terrain_product

# ------------------------------------------------------------------------------ closed-form pieces


def test_sky_view_of_a_plane_and_of_a_cone_pit() -> None:
    y, x = np.mgrid[0:81, 0:81] * 30.0
    v = terrain.sky_view(0.5 * x, 30.0)  # plane rising east at atan(0.5)
    assert v[40, 40] == pytest.approx((1 + np.cos(np.arctan(0.5))) / 2, abs=2e-3)
    cone = np.hypot(y - 1200.0, x - 1200.0) * 0.5  # pit with walls at atan(0.5): V = cos^2
    assert terrain.sky_view(cone, 30.0)[40, 40] == pytest.approx(np.cos(np.arctan(0.5)) ** 2, abs=2e-3)
    assert terrain.sky_view(np.zeros((20, 20)), 30.0).min() == pytest.approx(1.0)


def test_incidence_and_cast_shadow_behind_a_wall() -> None:
    # a slope facing the sun squarely: cos i = 1
    sza, saa = 40.0, 135.0  # sun in the south-east
    p = np.tan(np.radians(sza))
    dzdx = np.full((3, 3), -p * np.sin(np.radians(saa)))
    dzdy = np.full((3, 3), -p * np.cos(np.radians(saa)))
    assert terrain.incidence_cosine(dzdx, dzdy, sza, saa)[1, 1] == pytest.approx(1.0, abs=1e-6)
    # a 100 m wall running north-south, sun in the east at 45 deg: shadow 100 m wide on its west side
    z = np.zeros((20, 60))
    z[:, 30] = 100.0
    sh = terrain.cast_shadow(z, 10.0, 45.0, 90.0)
    assert sh[10, 21:30].all() and not sh[10, 19] and not sh[10, 31:].any()


def test_environment_functions_match_6s_cumulative_shares() -> None:
    # 6S: F_aerosol(1 km) = 0.625, F_rayleigh(1 km) = 0.118; the kernels are cut at 30 km and renormalised
    for terms, f1 in ((adjacency.AEROSOL, 0.625), (adjacency.RAYLEIGH, 0.118)):
        assert adjacency.cumulative(1.0, terms) == pytest.approx(f1, abs=1e-3)
        k = adjacency.kernel(60.0, terms)
        n = k.shape[0] // 2
        yy, xx = np.mgrid[-n:n + 1, -n:n + 1] * 0.06
        within = k[np.hypot(yy, xx) <= 1.0].sum()
        assert within == pytest.approx(f1 / adjacency.cumulative(30.0, terms), abs=0.01)
    op = adjacency.EnvironmentOperator((30, 40), 120.0, np.ones((30, 40), bool))
    flat = np.full((30, 40), 0.2, np.float32)
    assert np.allclose(op.apply(flat, np.full((30, 40), 0.4, np.float32)), 0.2, atol=1e-4)
    # the FFT convolution against scipy's direct one (normalised by the kernel weight inside the image)
    from scipy import signal

    f = np.random.default_rng(1).random((30, 40)).astype(np.float32)
    ref = 0.0
    for terms, w in ((adjacency.RAYLEIGH, 0.3), (adjacency.AEROSOL, 0.7)):
        k = adjacency.kernel(120.0, terms, max_half_px=40)
        ref = ref + w * signal.convolve(f, k, mode="same") / signal.convolve(np.ones_like(f), k, mode="same")
    assert np.allclose(op.apply(f, np.full((30, 40), 0.3, np.float32)), ref, atol=1e-5)
    # clouds (masked) do not count as surroundings: the clear half stands in for them
    mask = np.ones((30, 40), bool)
    mask[:, 20:] = False
    op = adjacency.EnvironmentOperator((30, 40), 120.0, mask)
    field = np.where(mask, 0.1, 0.9).astype(np.float32)
    assert np.allclose(op.apply(field, np.full((30, 40), 0.5, np.float32))[:, :20], 0.1, atol=1e-4)


def test_rugged_model_reduces_to_the_flat_one(atm_lut) -> None:
    c = atm_lut.coefficients("B04", 0.2, 40.0, 5.0, 100.0, 0.3, 1.5)
    o = atm_lut.optics("B04", 0.2, 0.3)
    mus, muv = np.cos(np.radians(40.0)), np.cos(np.radians(5.0))
    q = np.array([c.path_reflectance, c.t_gas, c.t_down, c.t_up, c.s_albedo, np.exp(-o.tau / mus),
                  np.exp(-o.tau / muv), mus], np.float32)
    toa = np.array([0.03, 0.08, 0.3], np.float32)
    flat = toa_to_boa(toa, c)
    assert np.allclose(surface_reflectance(toa, q[:, None]), flat, atol=2e-6)
    # forward with surroundings like the pixel, back: the same reflectance
    rho = np.array([0.05, 0.2, 0.45], np.float32)
    env = rho * q[2]
    for _ in range(20):
        m = rho * irradiance_factor(q[:, None], env)
        env = m
    assert np.allclose(toa_to_boa(apparent_reflectance(m, q[:, None], env), c), rho, atol=2e-5)


def test_level_stack_reproduces_the_table_at_pixel_heights(atm_lut) -> None:
    cells = CellGrid(2, 2)
    g = Geometry(sza=np.full((2, 2), 45.0), saa=np.full((2, 2), 150.0), vza={"B02": np.full((2, 2), 6.0)},
                 raa={"B02": np.full((2, 2), 80.0)})
    lv = levels.choose_levels(0.1, 2.4, atm_lut.axes["elevation_km"])
    assert lv[0] == pytest.approx(0.1) and lv[-1] == pytest.approx(2.4) and np.all(np.diff(lv) <= 0.5 + 1e-9)
    st = levels.LevelStack.build(atm_lut, g, cells, ["B02"], lv, np.full((2, 2), 0.2), np.full((2, 2), 1.5),
                                 0.0, 0.3)
    z = np.array([[0.1, 0.77, 1.5, 2.4]])
    q = st.pixels("B02", (1, 4), 0, 1, z)
    aot = 0.2 * levels.aot_factor(z)
    c = atm_lut.coefficients("B02", aot, 45.0, 6.0, 80.0, z, 1.5 * levels.wv_factor(z), ozone=0.3)
    assert np.allclose(q[0], c.path_reflectance, rtol=3e-3)
    assert np.allclose(q[2], c.t_down, rtol=1e-3)
    assert levels.aot_factor(2.0) == pytest.approx(np.exp(-1.0))
    assert 0.45 < float(levels.wv_factor(1.5)) < 0.65  # US62: about half the vapour lies below 1.5 km


# ----------------------------------------------------------------------------------- DEM reading


def _write_tif(path: Path, arr: np.ndarray, transform: Affine, crs: str = "EPSG:32756",
               nodata: float | None = None) -> None:
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=1,
                       dtype="float32", crs=crs, transform=transform, nodata=nodata) as ds:
        ds.write(arr.astype(np.float32), 1)


def test_dem_from_a_campaign_dem_directory_with_a_sea_tile_and_a_void(tmp_path: Path) -> None:
    # a Copernicus-layout tile in geographic coordinates around a point of the T56JMM tile, a void in it
    lat, lon = -30.2, 152.3
    arr = np.full((120, 120), 500.0)
    arr[23:26, 35:38] = -32768.0  # around the point below
    tif = tmp_path / "cache" / "Copernicus_DSM_COG_30_S31_00_E152_00_DEM.tif"
    tif.parent.mkdir()
    _write_tif(tif, arr, Affine(1 / 120, 0, 152.0, 0, -1 / 120, -30.0), "EPSG:4326", nodata=-32768.0)
    d = tmp_path / "aux" / "dem"
    d.mkdir(parents=True)
    (d / "dem.json").write_text(json.dumps({
        "directory": str(d), "kind": "copernicus", "source": "cop90", "version": "2.11", "dem_reference": "x",
        "tiles": {"Copernicus_DSM_COG_30_S31_00_E152_00_DEM": str(tif),
                  "Copernicus_DSM_COG_30_S31_00_E153_00_DEM": None}, "mosaic": None}))
    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:4326", "EPSG:32756", always_xy=True).transform(lon, lat)
    got = read_dem(d, (50, 50), Affine(200, 0, x - 5000, 0, -200, y + 5000), "EPSG:32756")
    assert np.allclose(got.height_m, 500.0, atol=1e-3)  # void filled from its neighbours
    assert got.void_percent > 0 and got.outside_percent == 0
    assert "cop90" in got.source


@pytest.mark.parametrize("value", [".", "..", "0", "nan", "no\nsuch", 'a"b', "missing.tif"])
def test_bad_dem_settings_fail_as_missing_aux(tmp_path: Path, value: str, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DemError):
        read_dem(value, (4, 4), Affine(10, 0, 0, 0, -10, 0), "EPSG:32756")
    with pytest.raises(ProcessingFailed) as err:
        get_processor("builtin", {"dem": value}).process(open_l1c(SAMPLE), tmp_path / "s", JobSettings(),
                                                         tmp_path / "log")
    assert err.value.failure_class == FailureClass.MISSING_AUX
    assert "\n" not in str(err.value).replace(value, "") and "DEM" in str(err.value)


# ---------------------------------------------------------------------- synthetic rugged scene


@pytest.fixture(scope="module")
def rugged(tmp_path_factory: pytest.TempPathFactory, atm_lut):
    from s2l2a.processors.builtin import lut as lutmod

    tmp = tmp_path_factory.mktemp("terrain")
    safe, dem, truth = make_terrain_product(tmp / "in", atm_lut)
    mp = pytest.MonkeyPatch()
    mp.setattr(lutmod, "load_lut", lambda mission="S2A", aerosol="continental": atm_lut)
    try:
        result = get_processor("builtin", {"dem": str(dem), "output_format": "COG"}).process(open_l1c(safe), tmp / "stage",
                                                                     JobSettings(cores=2), tmp / "job.log")
    finally:
        mp.undo()
    return result, truth


def _image(safe: Path, res: int, key: str) -> np.ndarray:
    p = next(safe.glob(f"GRANULE/*/IMG_DATA/R{res}m/*_{key}_{res}m.tif"))
    with rasterio.open(p) as ds:
        return ds.read(1)


NATIVE_BANDS = [(10, b) for b in ("B02", "B03", "B04", "B08")] + \
    [(20, b) for b in ("B05", "B06", "B07", "B8A", "B11", "B12")] + [(60, b) for b in ("B01", "B09")]


@pytest.mark.parametrize(("res", "band"), NATIVE_BANDS)
def test_rugged_boa_within_tolerance_for_95_percent(rugged, res: int, band: str) -> None:
    result, truth = rugged
    boa = (_image(result.product_dir, res, band).astype(float) - 1000.0) / 10000.0
    ref = truth.boa(band, boa.shape)
    ok = np.abs(boa - ref) <= 0.005 + 0.05 * ref
    assert ok.mean() >= 0.95, f"{band} at {res} m: {ok.mean():.3f} within tolerance"


def test_rugged_aot_and_report(rugged) -> None:
    result, truth = rugged
    aot = _image(result.product_dir, 60, "AOT") / 1000.0
    z = truth.dem_on(aot.shape) / 1000.0
    err = aot - truth.aot(aot.shape) * levels.aot_factor(z)  # the column above each pixel
    assert np.percentile(np.abs(err), 95) <= 0.05
    d = result.details
    assert d["terrain"] == "DEM" and d["adjacency"] is True
    assert d["dem"]["dem_min_m"] > 150 and d["dem"]["dem_max_m"] < 1500 and d["dem"]["shadow_percent"] > 0
    assert len(d["levels_km"]) >= 3


def test_rugged_shadows_are_class_2(rugged) -> None:
    result, truth = rugged
    scl = _image(result.product_dir, 20, "SCL")
    shape = scl.shape
    px = truth.px10 * truth.n10 / shape[0]
    dem = truth.dem_on(shape)
    g = open_l1c(SAMPLE).granules[0]
    sh = terrain.cast_shadow(dem, px, g.mean_sun_zenith, g.mean_sun_azimuth)
    lake = truth._on(truth.lake.astype(float), shape) > 0
    assert sh.sum() > 20
    assert (scl[sh & ~lake] == 2).mean() > 0.9


def test_without_dem_the_processor_says_so(tmp_path: Path) -> None:
    result = get_processor("builtin", {}).process(open_l1c(SAMPLE), tmp_path / "s", JobSettings(cores=2),
                                                  tmp_path / "log")
    assert result.details["dem"] is None and result.details["adjacency"] is False
    assert result.details["terrain"].startswith("flat at 0.0 km")
    report = next(result.product_dir.glob("GRANULE/*/QI_DATA/builtin_report.json"))
    assert json.loads(report.read_text())["terrain"].startswith("flat")


def test_fused_and_numpy_inversions_agree(atm_lut) -> None:
    from s2l2a.processors.builtin.correction import SurfaceModel, Terrain, _kernel

    if _kernel() is None:
        pytest.skip("numba not installed: only the numpy path exists")
    rng = np.random.default_rng(5)
    cells = CellGrid(3, 3)
    g = Geometry(sza=np.full((3, 3), 50.0), saa=np.full((3, 3), 150.0), vza={"B04": np.full((3, 3), 4.0)},
                 raa={"B04": np.full((3, 3), 60.0)})
    st = levels.LevelStack.build(atm_lut, g, cells, ["B04"], np.array([0.2, 0.7, 1.2]),
                                 np.full((3, 3), 0.2), np.full((3, 3), 1.5), 0.0, 0.3)
    fields = terrain.TerrainFields(rng.integers(0, 2 * 2048, (20, 20)).astype(np.uint16),
                                   rng.integers(0, 60000, (20, 20)).astype(np.uint16),
                                   rng.integers(150, 250, (20, 20)).astype(np.uint8))
    model = SurfaceModel(st, Terrain({20: fields}, np.zeros((5, 5), np.float32), st.levels_km),
                         {"B04": rng.uniform(0.01, 0.1, (5, 5)).astype(np.float32)}, CellGrid(5, 5))
    for shape in ((40, 40), (20, 20)):  # a finer band (bilinear terrain) and the terrain grid's own
        dn = rng.integers(200, 3000, shape).astype(np.uint16)
        dn[0, :5] = 0
        a = model.invert_in_place(dn.copy(), "B04", 10000.0, 0.0, use_numba=True)
        b = model.invert_in_place(dn.copy(), "B04", 10000.0, 0.0, use_numba=False)
        assert (a[0, :5] == 0).all()
        diff = np.abs(a.astype(int) - b.astype(int))
        # the fused kernel interpolates reciprocals (1/t_gas, 1/t_dir_up) between levels: <= 6e-4 relative
        assert (diff <= np.maximum(1, 6e-4 * b)).all(), (diff.max(), b[diff == diff.max()])
