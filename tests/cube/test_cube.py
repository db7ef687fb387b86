"""The index cube of a campaign: values by hand, masking, the mosaic rule, append, kill, bad input.

Campaign (clones of the real L2A test products, see conftest): tile 29RKH and a "29RKJ" whose images
are moved 3 km east and north (15 pixels of the 200 m "20 m" level), three days, both encodings:

    day 0:  RKH 02.14 (SCL boxes below)     RKJ 05.00 (SCL boxes below)
    day 10: RKH 05.00 (real SCL: 5,7,8,10)  RKJ 02.14 (all cloud, 9)
    day 20: RKH 02.14 (all cloud, 8)        RKJ 05.00 (all water, 6)
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from click.testing import CliRunner
from cube_clones import FIXTURES, add_products, make_campaign, scl_all, scl_box
from pyproj import Transformer

from s2l2a.campaign.cubes import build_campaign_cube as build_cube
from s2l2a.cli import main
from s2l2a.outputs.cube import CubeSpec, open_cube
from s2l2a.outputs.cube.store import CubeStore

SHIFT = (3000.0, 3000.0)
RKJ = dict(tile="29RKJ", shift=SHIFT)
# day 0 clouds: RKH loses a 1 x 1 km box west of RKJ and one in the overlap; RKJ one in the overlap


def RKH_DAY0(shape: tuple[int, int], t: object) -> np.ndarray:  # noqa: N802 - a constant of the campaign
    cloud = scl_box(1, 0, 259580, 260580, 2798020, 2799020)(shape, t) | scl_box(1, 0, 262580, 263580, 2798020,
                                                                                 2799020)(shape, t)
    return np.where(cloud > 0, 8, 5)


RKJ_DAY0 = scl_box(9, 4, 261580, 262580, 2799020, 2800020)
PRODUCTS = [
    dict(day=0, baseline="02.14", scl=RKH_DAY0),
    dict(day=0, baseline="05.00", scl=RKJ_DAY0, processor="builtin", version="s2l2a 0.1.0", **RKJ),
    dict(day=10, baseline="05.00"),
    dict(day=10, baseline="02.14", scl=scl_all(9), **RKJ),
    dict(day=20, baseline="02.14", scl=scl_all(8)),
    dict(day=20, baseline="05.00", scl=scl_all(6), **RKJ),
]
# the AOI: a 4 x 4 km square (UTM 29N) across RKH's top edge (y 2800020) and RKJ's west edge (x 260580)
AOI_UTM = (259580.0, 2798020.0, 263580.0, 2802020.0)


def hand_ndvi_20m() -> np.ndarray:
    """NDVI of the 29RKH fixture on its 20 m level, by hand: B04 from R20m, B08 as the mean of its 2 x 2
    10 m pixels (nodata if any is 0); reflectance = (DN + offset) / 10000 with offset 0 (02.14)."""
    g = next((FIXTURES["02.14"] / "GRANULE").iterdir()) / "IMG_DATA"
    with rasterio.open(next((g / "R20m").glob("*_B04_20m.tif"))) as ds:
        b4 = ds.read(1).astype(float)
    with rasterio.open(next((g / "R10m").glob("*_B08_10m.tif"))) as ds:
        b8_10 = ds.read(1).astype(float)
    blocks = b8_10.reshape(48, 2, 48, 2)
    b8 = np.where((blocks > 0).all(axis=(1, 3)), blocks.mean(axis=(1, 3)), 0)
    r4, r8 = b4 / 10000, b8 / 10000
    with np.errstate(invalid="ignore", divide="ignore"):
        v = np.where((b4 > 0) & (b8 > 0), (r8 - r4) / (r8 + r4), np.nan)
    return np.round(v / 1e-4) * 1e-4


def real_scl_20m() -> np.ndarray:
    g = next((FIXTURES["02.14"] / "GRANULE").iterdir()) / "IMG_DATA" / "R20m"
    with rasterio.open(next(g.glob("*_SCL_20m.tif"))) as ds:
        return ds.read(1)


def fixture_value(x: float, y: float, shift: tuple[float, float] = (0.0, 0.0)) -> float:
    """The hand NDVI a product shows at UTM point (x, y): RKH's 20 m pixel, RKJ's is RKH's moved by ``shift``."""
    col = int((x - shift[0] - 257580) // 200)
    row = int((2800020 + shift[1] - y) // 200)
    return float(hand_ndvi_20m()[row, col])


def aoi_file(folder: Path, box: tuple[float, float, float, float] = AOI_UTM, extra: dict | None = None) -> Path:
    tr = Transformer.from_crs(32629, 4326, always_xy=True)
    x0, y0, x1, y1 = box
    ring = [list(tr.transform(x, y)) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0))]
    doc = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
                                                      "geometry": {"type": "Polygon", "coordinates": [ring]}}]}
    doc.update(extra or {})
    p = folder / "aoi.geojson"
    p.write_text(json.dumps(doc))
    return p


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_campaign(tmp_path_factory.mktemp("cube") / "camp", PRODUCTS)


def cli(*args: object) -> tuple[int, str]:
    r = CliRunner().invoke(main, [str(a) for a in args])
    return r.exit_code, r.output


def at(ds: xr.Dataset, x: float, y: float, day: int) -> float:
    return float(ds.ndvi.isel(time=day).sel(x=x, y=y, method="nearest"))


# -- values ------------------------------------------------------------------------------------------

def test_one_tile_on_its_own_grid_matches_hand_ndvi_and_masks_clouds(campaign: Path, tmp_path: Path) -> None:
    out = tmp_path / "rkh.zarr"
    code, text = cli("cube", campaign, "--tile", "29RKH", "-o", out)
    assert code == 0, text
    assert "3 new date(s), 3 in all (EPSG:32629 at 200 m, 48 x 48 px)" in text  # the fixture's 20 m pixels are 200 m
    ds = open_cube(out)
    assert ds.sizes == {"time": 3, "y": 48, "x": 48}
    assert float(ds.x[0]) == 257580 + 100 and float(ds.y[0]) == 2800020 - 100   # pixel centres of the tile grid
    hand = hand_ndvi_20m()
    rows, cols = np.mgrid[0:48, 0:48]
    xs, ys = 257580 + (cols + 0.5) * 200, 2800020 - (rows + 0.5) * 200
    in_box = lambda x0, x1, y0, y1: (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)  # noqa: E731
    cloud0 = in_box(259580, 260580, 2798020, 2799020) | in_box(262580, 263580, 2798020, 2799020)
    np.testing.assert_allclose(ds.ndvi[0].values, np.where(cloud0, np.nan, hand), atol=1e-9)
    # day 10 (05.00: DN + 1000, offset -1000) with its real SCL: only class 5 of (5, 7, 8, 10) is clear
    np.testing.assert_allclose(ds.ndvi[1].values, np.where(real_scl_20m() == 5, hand, np.nan), atol=1e-9)
    assert np.isnan(ds.ndvi[2].values).all()          # all cloud
    assert list(ds.baseline.values) == ["02.14", "05.00", "02.14"]
    assert list(ds.processor.values) == ["sen2cor"] * 3 and list(ds.processor_version.values) == ["2.11.0"] * 3
    assert ds.product.values[1] == "S2A_MSIL2A_20200229T112111_N0500_R037_T29RKH_20230401T101010"
    clear1 = float((real_scl_20m() == 5).sum())
    assert float(ds.clear_fraction[1]) == pytest.approx(clear1 / (48 * 48))
    assert "baselines 02.14, 05.00 mixed" in text
    enc = xr.open_zarr(out, mask_and_scale=False).ndvi
    assert enc.dtype == np.int16 and enc.attrs["scale_factor"] == 1e-4 and enc.attrs["_FillValue"] == -32768
    assert enc.attrs["grid_mapping"] == "spatial_ref" and "crs_wkt" in ds.spatial_ref.attrs
    assert ds.ndvi.encoding["chunks"] == (8, 48, 48)


def test_aoi_mosaic_clearest_pixel_wins(campaign: Path, tmp_path: Path) -> None:
    out = tmp_path / "aoi.zarr"
    code, text = cli("cube", campaign, "--aoi", aoi_file(tmp_path), "--resolution", "20", "-o", out)
    assert code == 0, text
    ds = open_cube(out)
    assert ds.sizes["time"] == 3 and abs(ds.sizes["x"] - 200) <= 3 and abs(float(ds.x[1] - ds.x[0]) - 20) < 1e-9
    assert ds.tile.values[0] == "29RKJ; 29RKH"   # RKJ is clearer over the AOI on day 0: it comes first
    # only RKH (west of RKJ); RKH's cloud box there
    assert at(ds, 260080, 2799520, 0) == pytest.approx(fixture_value(260080, 2799520))
    assert np.isnan(at(ds, 260080, 2798520, 0))
    # the overlap: both clear -> RKJ (clearer); RKJ cloudy -> RKH; RKH cloudy -> RKJ
    assert at(ds, 261080, 2799520, 0) == pytest.approx(fixture_value(261080, 2799520, SHIFT))
    assert fixture_value(261080, 2799520, SHIFT) != pytest.approx(fixture_value(261080, 2799520))
    assert at(ds, 262080, 2799520, 0) == pytest.approx(fixture_value(262080, 2799520))
    assert at(ds, 263080, 2798520, 0) == pytest.approx(fixture_value(263080, 2798520, SHIFT))
    # only RKJ (north of RKH); neither (north-west): no data
    assert at(ds, 262080, 2801120, 0) == pytest.approx(fixture_value(262080, 2801120, SHIFT))
    assert np.isnan(at(ds, 260080, 2801120, 0))
    # day 10: RKJ all cloud, RKH's real SCL; day 20: RKH all cloud, RKJ water (clear)
    assert np.isnan(at(ds, 262080, 2801120, 1))
    assert at(ds, 262080, 2801120, 2) == pytest.approx(fixture_value(262080, 2801120, SHIFT))
    assert np.isnan(at(ds, 260080, 2799520, 2))
    # statistics per date = numpy over the cube's clear pixels; clear count = clear dates per pixel
    v = ds.ndvi.values
    for t in range(3):
        if np.isfinite(v[t]).any():
            q = np.nanquantile(v[t], [0.25, 0.5, 0.75])
            assert [float(ds.ndvi_q25[t]), float(ds.ndvi_median[t]), float(ds.ndvi_q75[t])] == \
                pytest.approx(list(q), abs=1e-6)
        assert int(ds.clear_pixels[t]) == int(np.isfinite(v[t]).sum())
    with rasterio.open(tmp_path / "aoi.clear_count.tif") as c:
        np.testing.assert_array_equal(c.read(1), np.isfinite(v).sum(axis=0))
        assert c.tags()["S2L2A_CUBE_DATES"] == "3"
    csv_lines = (tmp_path / "aoi.series.csv").read_text().splitlines()
    assert csv_lines[0].startswith("date,time,median,q25,q75,median_smooth,clear_fraction")
    assert csv_lines[1].startswith(f"2020-02-19,2020-02-19T11:21:11Z,{float(ds.ndvi_median[0]):.4f}")
    assert (tmp_path / "aoi.series.png").read_bytes()[:4] == b"\x89PNG"


def test_clear_classes_option_keeps_more(campaign: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.zarr"
    code, text = cli("cube", campaign, "--tile", "29RKH", "--clear", "5,7", "--start", "2020-02-20", "-o", out)
    assert code == 0, text
    ds = open_cube(out)
    assert ds.sizes["time"] == 2   # --start leaves day 0 out
    np.testing.assert_allclose(ds.ndvi[0].values, np.where(np.isin(real_scl_20m(), (5, 7)), hand_ndvi_20m(), np.nan),
                               atol=1e-9)


# -- append, kill ------------------------------------------------------------------------------------

def _chunk_files(store: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (store / "ndvi").iterdir()
            if not p.name.startswith(".")}


def test_append_adds_new_dates_without_touching_old_chunks(tmp_path: Path) -> None:
    camp = make_campaign(tmp_path / "camp", [p for p in PRODUCTS if p.get("tile") != "29RKJ"])
    out = tmp_path / "s.zarr"
    first = build_cube(camp, out, CubeSpec(time_chunk=3))
    assert first.added == ["2020-02-19", "2020-02-29", "2020-03-10"]
    before = _chunk_files(out)
    old = open_cube(out).ndvi.values
    again = build_cube(camp, out, CubeSpec())
    assert again.added == [] and again.dates == 3 and _chunk_files(out) == before
    add_products(camp, [dict(day=30, baseline="05.00", scl=scl_all(4)), dict(day=-10, baseline="02.14")])
    res = build_cube(camp, out, CubeSpec())
    assert res.added == ["2020-02-09", "2020-03-20"] and res.dates == 5
    assert any("older than the cube's last date" in n for n in res.notes)
    after = _chunk_files(out)
    assert {k: after[k] for k in before} == before          # the full first time chunk is not rewritten
    ds = xr.open_zarr(out)
    np.testing.assert_array_equal(ds.ndvi.values[:3], old)
    assert list(ds.time.dt.day.values) == [19, 29, 10, 9, 20]   # appended in the order they came
    np.testing.assert_allclose(ds.ndvi.values[4], hand_ndvi_20m(), atol=1e-9)   # day 30: all clear (4)
    assert list(open_cube(out).time.dt.day.values) == [9, 19, 29, 10, 20]
    with rasterio.open(tmp_path / "s.clear_count.tif") as c:
        np.testing.assert_array_equal(c.read(1), np.isfinite(ds.ndvi.values).sum(axis=0))
    add_products(camp, [dict(day=0, baseline="05.00", **RKJ)])   # a tile of day 0 done after day 0 was stacked
    res = build_cube(camp, out, CubeSpec(index="NDVI"))
    assert res.added == [] and res.notes[-1:] == ["2020-02-19 is in the cube already; S2A_MSIL2A_20200219T112111_N0500_"
                                             "R037_T29RKJ_20230401T101010 done since is not added (dates are never "
                                             "rewritten: build a new cube to include it)"]


def test_killed_build_leaves_the_committed_dates_and_the_next_run_finishes(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    camp = make_campaign(tmp_path / "camp", [p for p in PRODUCTS if p.get("tile") != "29RKJ"])
    out = tmp_path / "k.zarr"
    real_commit = CubeStore.commit
    calls = []

    def dies_second_time(self: CubeStore, k: int) -> None:
        calls.append(k)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed after writing the second date's pixels, before committing it
        real_commit(self, k)

    monkeypatch.setattr(CubeStore, "commit", dies_second_time)
    with pytest.raises(KeyboardInterrupt):
        build_cube(camp, out, CubeSpec(time_chunk=1))
    ds = xr.open_zarr(out)      # readable, with the one date it finished
    assert ds.sizes["time"] == 1 and ds.product.values[0].startswith("S2A_MSIL2A_20200219")
    assert np.isfinite(ds.ndvi.values).any()
    monkeypatch.setattr(CubeStore, "commit", real_commit)
    res = build_cube(camp, out, CubeSpec())
    assert res.added == ["2020-02-29", "2020-03-10"] and res.dates == 3
    ds = open_cube(out)
    np.testing.assert_allclose(ds.ndvi[1].values, np.where(real_scl_20m() == 5, hand_ndvi_20m(), np.nan), atol=1e-9)
    assert xr.open_zarr(out, consolidated=False).sizes["time"] == 3


def test_documented_one_liner_opens_the_cube_and_plots_a_pixel(campaign: Path, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = tmp_path / "season.zarr"
    build_cube(campaign, out, CubeSpec(tile="29RKH"))
    doc = (Path(__file__).resolve().parents[2] / "docs" / "cube.md").read_text()
    line = re.search(r"^(import xarray as xr; .+)$", doc, re.M).group(1)
    assert "season.zarr" in line
    code = line.replace("season.zarr", str(out)).replace("x=X, y=Y", "x=258680, y=2799520")
    exec(code, {})  # noqa: S102 - our own documentation, run as a user would paste it
    fig = plt.gcf()
    xs = fig.axes[0].lines[0].get_xdata()
    assert len(xs) == 3
    plt.close(fig)


def test_netcdf_copy(campaign: Path, tmp_path: Path) -> None:
    out, nc = tmp_path / "n.zarr", tmp_path / "n.nc"
    build_cube(campaign, out, CubeSpec(tile="29RKH", netcdf=nc, quicklooks=False))
    a, b = xr.open_zarr(out), xr.open_dataset(nc, engine="h5netcdf")
    np.testing.assert_array_equal(a.ndvi.values, b.ndvi.values)
    assert list(b.product.values) == list(a.product.values) and b.ndvi.attrs["grid_mapping"] == "spatial_ref"
    b.close()


# -- bad input: one line each --------------------------------------------------------------------------

def _one_line_error(code: int, text: str, *needles: str) -> None:
    assert code == 1, text
    err = [line for line in text.splitlines() if line.startswith("Error:")]
    assert len(err) == 1 and "Traceback" not in text, text
    for n in needles:
        assert n in err[0], err[0]


def test_several_tiles_without_aoi(campaign: Path, tmp_path: Path) -> None:
    _one_line_error(*cli("cube", campaign, "-o", tmp_path / "x.zarr"), "2 tiles (29RKH, 29RKJ): give --aoi")
    assert not (tmp_path / "x.zarr").exists()


def test_aoi_outside_every_tile(campaign: Path, tmp_path: Path) -> None:
    far = tmp_path / "far.geojson"
    far.write_text(json.dumps({"type": "Polygon", "coordinates": [[[150, -30], [150.1, -30], [150.1, -29.9],
                                                                   [150, -29.9], [150, -30]]]}))
    _one_line_error(*cli("cube", campaign, "--aoi", far, "-o", tmp_path / "x.zarr"),
                    "lies outside every tile of the campaign (29RKH, 29RKJ)")


@pytest.mark.parametrize("content, needle", [
    ("{not json", "cannot read GeoJSON"),
    ('{"type": "Feature", "properties": {}}', "holds no geometry"),
    ('{"type": "Polygon", "coordinates": [[[257580, 2798020], [259580, 2798020], [259580, 2800020], '
     '[257580, 2798020]]]}', "are not longitude/latitude"),
    ('{"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}', "not valid (Self-intersection"),
    ('{"type": "Point", "coordinates": [-11.4, 25.2]}', "no area"),
    ("nan", "cannot read GeoJSON"),
    ('{"type": "Polygon", "coordinates": [[[-11.4, 25.2], [-11.39, 25.2], [-11.4, 25.2]]]}', "not valid"),
])
def test_aoi_that_is_not_usable_geojson(campaign: Path, tmp_path: Path, content: str, needle: str) -> None:
    f = tmp_path / "bad.geojson"
    f.write_text(content)
    _one_line_error(*cli("cube", campaign, "--aoi", f, "-o", tmp_path / "x.zarr"), needle)


def test_aoi_in_another_crs(campaign: Path, tmp_path: Path) -> None:
    f = aoi_file(tmp_path, extra={"crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32629"}}})
    _one_line_error(*cli("cube", campaign, "--aoi", f, "-o", tmp_path / "x.zarr"),
                    "GeoJSON in urn:ogc:def:crs:EPSG::32629", "ogr2ogr")
    ok = aoi_file(tmp_path, extra={"crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}})
    code, text = cli("cube", campaign, "--aoi", ok, "--resolution", "60", "-o", tmp_path / "ok.zarr")
    assert code == 0, text


def test_product_without_scl_is_left_out_with_one_line(tmp_path: Path) -> None:
    camp = make_campaign(tmp_path / "camp", [dict(day=0), dict(day=10, baseline="05.00")])
    l2a = next((camp / "L2A" / "29RKH").glob("*20200229*"))
    for f in l2a.rglob("*_SCL_*.tif"):
        f.unlink()
    mtd = l2a / "MTD_MSIL2A.xml"
    mtd.write_text(re.sub(r"<IMAGE_FILE>[^<]*_SCL_\d0m</IMAGE_FILE>", "", mtd.read_text()))
    code, text = cli("cube", camp, "-o", tmp_path / "s.zarr")
    assert code == 0, text
    assert "note: S2A_MSIL2A_20200229T112111_N0500_R037_T29RKH_20230401T101010: no SCL (scene classification), " \
           "so its clouds cannot be masked; left out" in text
    assert "1 new date(s), 1 in all" in text


def test_rerun_with_other_rules_is_refused(campaign: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.zarr"
    assert cli("cube", campaign, "--tile", "29RKH", "-o", out)[0] == 0
    _one_line_error(*cli("cube", campaign, "--tile", "29RKH", "--clear", "4,5,6,7", "-o", out),
                    "was built with clear_classes [4, 5, 6] (asked: [4, 5, 6, 7])", "give another -o")
    code, text = cli("cube", campaign, "-o", out)   # unset options: the store's own
    assert code == 0 and "no new date, 3 in all" in text


@pytest.mark.parametrize("args, needle", [
    (("--clear", "12"), "SCL class 12 does not exist"),
    (("--clear", ","), "give at least one SCL class"),
    (("--crs", "EPSG:999999"), "not a coordinate reference system"),
    (("--crs", "EPSG:4326", "--tile", "29RKH"), "is in degrees"),
    (("--index", "x y"), "an index name such as ndvi"),
    (("--start", "2020-03-01", "--end", "2020-02-01"), "is after --end"),
    (("--index", "ndre", "--tile", "29RKH"), "no done product matches"),
])
def test_bad_options(campaign: Path, tmp_path: Path, args: tuple[str, ...], needle: str) -> None:
    _one_line_error(*cli("cube", campaign, *args, "-o", tmp_path / "x.zarr"), needle)


@pytest.mark.parametrize("name", [".", "..", "plain"])
def test_output_that_is_not_a_cube(campaign: Path, tmp_path: Path, name: str) -> None:
    target = tmp_path / "sub" / name
    (tmp_path / "sub" / "plain").mkdir(parents=True)
    (tmp_path / "sub" / "plain" / "keep.txt").write_text("mine")
    _one_line_error(*cli("cube", campaign, "--tile", "29RKH", "-o", target), "is not an s2l2a cube")
    assert (tmp_path / "sub" / "plain" / "keep.txt").read_text() == "mine"


def test_not_a_campaign(tmp_path: Path) -> None:
    _one_line_error(*cli("cube", tmp_path, "-o", tmp_path / "x.zarr"))
    shutil.rmtree(tmp_path / "x.zarr", ignore_errors=True)


def test_report_hook_lists_the_campaigns_cubes(campaign: Path, tmp_path: Path) -> None:
    from s2l2a.campaign.cubes import report_cubes

    out = tmp_path / "h.zarr"
    build_cube(campaign, out, CubeSpec(tile="29RKH", quicklooks=False))
    mine = lambda: [c for c in report_cubes(campaign) if c["path"] == str(out.resolve())]  # noqa: E731
    [c] = mine()
    assert c["dates"] == 3 and c["index"] == "ndvi" and str(c["svg"]).startswith("<svg")
    from s2l2a.campaign.exports import write_report

    html = write_report(campaign, tmp_path / "report.html").read_text()
    assert "<h2>Index time series</h2>" in html and f"ndvi, 3 dates: {out.resolve()}" in html
    shutil.rmtree(out)
    assert mine() == []   # a deleted cube is left out, nothing raised


def test_threaded_strips_and_a_crs_change(campaign: Path, tmp_path: Path) -> None:
    """Many small chunk rows written by two threads give the one-strip result; a cube in Web Mercator
    (another CRS: GDAL warps each strip's source window) shows each product's pixel at its place."""
    one = build_cube(campaign, tmp_path / "one.zarr", CubeSpec(aoi=aoi_file(tmp_path), workers=1)).path
    many = build_cube(campaign, tmp_path / "many.zarr", CubeSpec(aoi=aoi_file(tmp_path), workers=2,
                                                                  spatial_chunk=16)).path
    a, b = xr.open_zarr(one), xr.open_zarr(many)
    assert b.ndvi.encoding["chunks"] == (8, 16, 16) and a.sizes["y"] > 10 * 16
    np.testing.assert_array_equal(a.ndvi.values, b.ndvi.values)
    np.testing.assert_array_equal(a.ndvi_median.values, b.ndvi_median.values)
    merc = open_cube(build_cube(campaign, tmp_path / "m.zarr", CubeSpec(aoi=aoi_file(tmp_path), crs="EPSG:3857")).path)
    assert int(merc.spatial_ref) == 3857
    to3857 = Transformer.from_crs(32629, 3857, always_xy=True)
    for (x, y), shift in (((262080, 2801120), SHIFT), ((260080, 2799520), (0.0, 0.0))):
        mx, my = to3857.transform(x, y)
        assert at(merc, mx, my, 0) == pytest.approx(fixture_value(x, y, shift))


def test_cube_coarser_than_its_derived_files_averages_clear_pixels_only(tmp_path: Path) -> None:
    """Derived at the 10 m level, stacked at 20 m: each cube pixel is the mean of the clear, finite
    10 m pixels under it (cloudy ones never leak in), nodata where none is clear."""
    from s2l2a.campaign.exports import derive_campaign
    from s2l2a.outputs.derive import DeriveSpec

    camp = make_campaign(tmp_path / "camp", [dict(day=0)])     # real SCL: 5 clear; 7, 8, 10 not
    [o] = derive_campaign(camp, DeriveSpec(resolution=10, quicklooks=False))
    name = o.derived_dir.name
    with rasterio.open(o.derived_dir / f"{name}_NDVI_10m.tif") as f:
        ndvi10 = f.read(1).astype(np.float64)
    with rasterio.open(o.derived_dir / f"{name}_SCL_10m.tif", "r+", IGNORE_COG_LAYOUT_BREAK="YES") as f:
        scl10 = f.read(1)
        scl10[::2, ::2] = np.where(scl10[::2, ::2] > 0, 9, 0)   # one cloudy 10 m pixel in every 2 x 2 block
        f.write(scl10, 1)
    keep = np.where((scl10 == 5) & np.isfinite(ndvi10), ndvi10, np.nan).reshape(48, 2, 48, 2)
    n = np.isfinite(keep).sum(axis=(1, 3))
    with np.errstate(invalid="ignore"):
        mean = np.where(n > 0, np.nansum(keep, axis=(1, 3)) / np.maximum(n, 1), np.nan)
    ds = open_cube(build_cube(camp, tmp_path / "c.zarr", CubeSpec(resolution=20)).path)
    assert ds.sizes == {"time": 1, "y": 48, "x": 48}
    np.testing.assert_allclose(ds.ndvi[0].values, np.round(mean / 1e-4) * 1e-4, atol=1.5e-4)
    assert ((n > 0) & (n < 4)).sum() > 1000   # nearly every block is mixed: its clear pixels' mean


def test_one_build_per_store_at_a_time(campaign: Path, tmp_path: Path) -> None:
    out = tmp_path / "l.zarr"
    build_cube(campaign, out, CubeSpec(tile="29RKH", quicklooks=False))
    holder = CubeStore.open(out)          # a build in progress
    try:
        _one_line_error(*cli("cube", campaign, "-o", out), "another s2l2a cube is adding to this store now")
    finally:
        holder.close()
    assert cli("cube", campaign, "-o", out)[0] == 0


def test_numpy_path_gives_the_same_cube_as_the_numba_loop(campaign: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The fused numba loop and the numpy fallback (no numba, or S2L2A_NO_NUMBA) store the same codes
    and statistics, masked one product at a time and mosaicked, over an AOI."""
    from s2l2a.outputs.cube import build

    pytest.importorskip("numba")
    a = build_cube(campaign, tmp_path / "a.zarr", CubeSpec(aoi=aoi_file(tmp_path), quicklooks=False)).path
    monkeypatch.setenv("S2L2A_NO_NUMBA", "1")
    monkeypatch.setattr(build, "_finish_kernel", build._finish_kernel.fresh())
    b = build_cube(campaign, tmp_path / "b.zarr", CubeSpec(aoi=aoi_file(tmp_path), quicklooks=False)).path
    assert build._finish_kernel() is None
    x, y = xr.open_zarr(a, mask_and_scale=False), xr.open_zarr(b, mask_and_scale=False)
    for name in ("ndvi", "ndvi_median", "ndvi_q25", "ndvi_q75", "clear_pixels", "data_pixels"):
        np.testing.assert_array_equal(x[name].values, y[name].values)
    c = build_cube(campaign, tmp_path / "c.zarr", CubeSpec(tile="29RKH", quicklooks=False)).path
    np.testing.assert_allclose(open_cube(c).ndvi[1].values, np.where(real_scl_20m() == 5, hand_ndvi_20m(), np.nan),
                               atol=1e-9)


def test_python_api_campaign_cube(campaign: Path, tmp_path: Path) -> None:
    from s2l2a.api import Campaign
    from s2l2a.errors import ConfigError

    c = Campaign.open(campaign)
    res = c.cube(tmp_path / "api.zarr", tile="29RKH", quicklooks=False)
    assert res.dates == 3 and res.added[0] == "2020-02-19"
    assert c.cube(tmp_path / "api.zarr").added == []          # a re-run: nothing new
    with pytest.raises(ConfigError, match="unknown option"):
        c.cube(tmp_path / "x.zarr", colour="red")
