"""DEM tiles: naming, selection, download with resume/verification from a local server, layouts, coverage.

Tiles are made here in the real formats (CGIAR-style zips holding a GeoTIFF, Copernicus-style COGs
under ``<name>/<name>.tif``), only smaller, and served from 127.0.0.1.
"""

from __future__ import annotations

import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from shapely.geometry import Polygon, box

from s2l2a.auxdata.dem import DemLayout, check_coverage, layout_for, plan, prepare_dem
from s2l2a.auxdata.dem_tiles import cop_tile, parse_tile, srtm_tile, tiles_for
from s2l2a.auxdata.download import DownloadError
from s2l2a.cli import main
from s2l2a.errors import CampaignError, ConfigError
from s2l2a.sen2cor.layout import describe

from .conftest import write_raster

SAMPLE = (Path(__file__).resolve().parents[2] / "data" / "sample"
          / "S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042.SAFE")


# -- a local tile server ----------------------------------------------------------------------------

class TileServer:
    """Serves files below ``root`` with Range support; can drop a connection or corrupt a file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[tuple[str, str | None]] = []
        self.drop_once: set[str] = set()
        self.corrupt: dict[str, int] = {}          # path -> how many more times to serve it corrupt
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                path = self.path.lstrip("/")
                rng = self.headers.get("Range")
                server.requests.append((path, rng))
                f = server.root / path
                if not f.is_file():
                    self.send_error(404)
                    return
                data = f.read_bytes()
                if server.corrupt.get(path, 0) > 0:
                    server.corrupt[path] -= 1
                    mid = len(data) // 2
                    data = data[:mid] + bytes(b ^ 0xFF for b in data[mid:mid + 64]) + data[mid + 64:]
                start = 0
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if path in server.drop_once and start == 0:
                    server.drop_once.discard(path)
                    self.wfile.write(body[: len(body) // 3])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def make_srtm_zip(folder: Path, col: int, row: int, void: tuple[slice, slice] | None = None) -> Path:
    """``srtm_XX_YY.zip`` holding ``srtm_XX_YY.tif`` (+ a readme), as CGIAR publishes them."""
    t = srtm_tile(col, row)
    tif = write_raster(folder / "tmp" / f"{t.name}.tif", (t.west, t.south, t.east, t.north), size=200,
                       void=void, noise=True)
    out = folder / f"{t.name}.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(tif, f"{t.name}.tif")
        z.writestr("readme.txt", "SRTM 90m Digital Elevation Data, CGIAR-CSI v4.1 (test tile)")
    return out


def make_cop_tile(folder: Path, lat: int, lon: int, source: str = "cop90") -> Path:
    """A Copernicus-style COG ``<name>/<name>.tif`` (float32 heights)."""
    t = cop_tile(lat, lon, source)
    tmp = write_raster(folder / "tmp" / f"{t.name}.tif", (t.west, t.south, t.east, t.north), size=40,
                       dtype="float32", nodata=None)
    out = folder / t.name / f"{t.name}.tif"
    out.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(tmp) as src:
        profile = src.profile | {"driver": "COG"}
        profile.pop("blockxsize", None)
        profile.pop("blockysize", None)
        profile.pop("tiled", None)
        profile.pop("interleave", None)
        with rasterio.open(out, "w", **profile) as dst:
            dst.write(src.read())
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TileServer]:
    root = tmp_path_factory.mktemp("www")
    for col, row in ((38, 3), (39, 3), (38, 4), (67, 18), (67, 19)):
        make_srtm_zip(root / "srtm", col, row)
    # srtm_39_04 is absent (sea); srtm_40_03 has a void in its north-west corner
    make_srtm_zip(root / "srtm", 40, 3, void=(slice(0, 50), slice(0, 50)))
    for lat in (-31, -30):
        for lon in (151, 152):
            make_cop_tile(root / "cop90", lat, lon)
    for lat in (44, 45):
        for lon in (9, 10):
            make_cop_tile(root / "cop90", lat, lon)
    make_cop_tile(root / "cop90", -17, 179)     # Fiji, both sides of the antimeridian
    make_cop_tile(root / "cop90", -17, -180)
    server = TileServer(root)
    yield server
    server.close()


FP_ALPS = {"S2B_MSIL1C_20200801T101559_N0209_R065_T32TNR_20200801T124321": box(9.5, 44.5, 10.5, 45.5)}


# -- naming and selection -----------------------------------------------------------------------------

def test_tile_names_follow_cgiar_and_copernicus_naming() -> None:
    t = srtm_tile(38, 3)
    assert (t.name, t.west, t.south, t.east, t.north) == ("srtm_38_03", 5, 45, 10, 50)
    assert t.filename == "srtm_38_03.zip"
    assert cop_tile(47, 28, "cop30").name == "Copernicus_DSM_COG_10_N47_00_E028_00_DEM"
    assert cop_tile(-33, -70, "cop90").name == "Copernicus_DSM_COG_30_S33_00_W070_00_DEM"
    assert cop_tile(45, 6, "cop30").url_path == ("Copernicus_DSM_COG_10_N45_00_E006_00_DEM/"
                                                 "Copernicus_DSM_COG_10_N45_00_E006_00_DEM.tif")
    for name in ("srtm_01_24", "srtm_72_01", "Copernicus_DSM_COG_30_S33_00_W070_00_DEM"):
        assert parse_tile(name).name == name
    with pytest.raises(ValueError):
        parse_tile("srtm_99_99")


def test_selection_uses_footprint_not_bbox() -> None:
    diagonal = Polygon([(5.5, 45.5), (6.5, 45.5), (14.5, 49.5), (13.5, 49.5)])
    names = [t.name for t in tiles_for(diagonal, "cop90")[0]]
    assert "Copernicus_DSM_COG_30_N45_00_E005_00_DEM" in names
    assert "Copernicus_DSM_COG_30_N49_00_E005_00_DEM" not in names     # far corner of the bbox
    arctic = box(20, 61, 21, 62)
    tiles, outside = tiles_for(arctic, "srtm90")
    assert tiles == [] and outside.area > 0
    assert tiles_for(arctic, "cop90")[1].is_empty
    antimeridian = Polygon([(179.6, -17), (-179.6, -17), (-179.6, -16), (179.6, -16)])
    names = [t.name for t in tiles_for(antimeridian, "cop90")[0]]
    assert names == ["Copernicus_DSM_COG_30_S17_00_E179_00_DEM", "Copernicus_DSM_COG_30_S17_00_W180_00_DEM"]


def test_version_decides_layout_and_source() -> None:
    assert layout_for("2.8.0", None) == ("srtm", "srtm90")
    assert layout_for("2.9.0", None) == ("srtm-merged", "srtm90")
    assert layout_for("2.10.1", None) == ("srtm", "srtm90")
    assert layout_for("2.11.0", None) == ("copernicus", "cop90")
    assert layout_for("2.12.3", "cop30") == ("copernicus", "cop30")
    with pytest.raises(ConfigError, match="reads the Copernicus DEM"):
        layout_for("2.11.0", "srtm90")
    with pytest.raises(ConfigError, match="reads SRTM"):
        layout_for("2.9.0", "cop90")


# -- fetch, layouts, coverage ---------------------------------------------------------------------

def test_srtm_layout_for_2_8_with_sea_tile(tmp_path: Path, served: TileServer) -> None:
    lay = prepare_dem(FP_ALPS, tmp_path / "dem", version="2.8.0", cache=tmp_path / "cache",
                      base_url=served.url + "srtm/")
    assert lay.kind == "srtm"
    assert sorted(p.name for p in lay.directory.glob("*.zip")) == ["srtm_38_03.zip", "srtm_38_04.zip",
                                                                   "srtm_39_03.zip"]
    assert lay.tiles["srtm_39_04"] is None                       # 404: sea
    assert lay.dem_reference == f"{lay.directory}/"
    assert lay.gipp_settings() == {"dem_directory": str(lay.directory), "dem_reference": f"{lay.directory}/"}
    assert DemLayout.load(lay.directory).tiles == lay.tiles
    # the cache is shared and reused: a second campaign makes no request
    n = len(served.requests)
    prepare_dem(FP_ALPS, tmp_path / "dem2", version="2.8.0", cache=tmp_path / "cache",
                base_url=served.url + "srtm/")
    assert served.requests[n:] == []            # 404s are remembered too


def test_srtm_merged_workaround_for_2_9(tmp_path: Path, served: TileServer) -> None:
    lay = prepare_dem(FP_ALPS, tmp_path / "dem", version="2.9.0", cache=tmp_path / "cache",
                      base_url=served.url + "srtm/")
    assert lay.kind == "srtm-merged" and lay.gipp_settings()["force_exit_on_dem_error"] is True
    zips = sorted(lay.directory.glob("srtm_*.zip"))
    assert [z.name for z in zips] == ["srtm_38_03.zip", "srtm_38_04.zip", "srtm_39_03.zip", "srtm_39_04.zip"]
    for z in zips:   # every tile name holds the whole mosaic, under its own member name
        name = z.stem
        with rasterio.open(f"/vsizip/{z}/{name}.tif") as ds:
            assert tuple(round(v) for v in ds.bounds) == (5, 40, 15, 50)
            arr = ds.read(1)
        sea = arr[arr.shape[0] // 2 + 5:, arr.shape[1] // 2 + 5:]      # srtm_39_04 quadrant
        assert (sea == 0).all() and arr.max() > 0


def test_copernicus_layout_for_2_11(tmp_path: Path, served: TileServer) -> None:
    lay = prepare_dem(FP_ALPS, tmp_path / "dem", version="2.11.0", cache=tmp_path / "cache",
                      base_url=served.url + "cop90")
    assert lay.kind == "copernicus" and lay.source == "cop90"
    name = "Copernicus_DSM_COG_30_N44_00_E009_00_DEM"
    assert (lay.directory / name / f"{name}.tif").is_file() and (lay.directory / f"{name}.tif").is_file()
    assert lay.dem_reference == "https://copernicus-dem-90m.s3.amazonaws.com/"
    assert len([t for t in lay.tiles.values() if t]) == 4


def test_dropped_connection_resumes_with_range(tmp_path: Path, served: TileServer) -> None:
    served.drop_once.add("srtm/srtm_38_03.zip")
    n = len(served.requests)
    prepare_dem(FP_ALPS, tmp_path / "dem", version="2.8.0", cache=tmp_path / "cache", base_url=served.url + "srtm/")
    mine = [r for r in served.requests[n:] if r[0] == "srtm/srtm_38_03.zip"]
    assert mine[0][1] is None and mine[1][1] is not None and mine[1][1].startswith("bytes=")
    assert int(mine[1][1][6:-1]) > 0


def test_corrupt_zip_refetched_then_one_line_error(tmp_path: Path, served: TileServer) -> None:
    served.corrupt["srtm/srtm_38_04.zip"] = 1
    prepare_dem(FP_ALPS, tmp_path / "dem", version="2.8.0", cache=tmp_path / "c1", base_url=served.url + "srtm/")
    served.corrupt["srtm/srtm_38_04.zip"] = 2
    with pytest.raises(DownloadError) as e:
        prepare_dem(FP_ALPS, tmp_path / "dem", version="2.8.0", cache=tmp_path / "c2",
                    base_url=served.url + "srtm/")
    msg = str(e.value)
    assert "\n" not in msg and "srtm_38_04.zip" in msg and "corrupt after re-fetch" in msg
    left = [p.name for p in (tmp_path / "c2" / "srtm90").iterdir()]
    assert "srtm_38_04.zip" not in left and not [n for n in left if ".part" in n]   # no half file kept


def test_void_under_footprint_refused_naming_product(tmp_path: Path, served: TileServer) -> None:
    fps = {"S2A_GOOD": box(6, 46, 7, 47), "S2A_VOID": box(15.2, 49.0, 15.8, 49.8)}
    with pytest.raises(CampaignError) as e:
        prepare_dem(fps, tmp_path / "dem", version="2.8.0", cache=tmp_path / "cache", base_url=served.url + "srtm/")
    msg = str(e.value)
    assert "S2A_VOID" in msg and "S2A_GOOD" not in msg and "no valid DEM data" in msg
    # the layout is written; a product moved off the void passes the same check
    lay = DemLayout.load(tmp_path / "dem")
    check_coverage({"S2A_GOOD": box(6, 46, 7, 47)}, lay)
    with pytest.raises(CampaignError, match="not prepared"):
        check_coverage({"S2A_ELSEWHERE": box(100, 10, 101, 11)}, lay)


def test_beyond_srtm_and_wrong_base_url(tmp_path: Path, served: TileServer) -> None:
    with pytest.raises(CampaignError, match="S2A_ARCTIC"):
        prepare_dem({"S2A_ARCTIC": box(20, 61, 21, 62)}, tmp_path / "d", version="2.8.0",
                    cache=tmp_path / "c", base_url=served.url + "srtm/")
    with pytest.raises(ConfigError, match="base URL"):
        prepare_dem(FP_ALPS, tmp_path / "d", version="2.8.0", cache=tmp_path / "c", base_url=served.url + "nothing/")
    assert plan(FP_ALPS, "srtm90").by_product[next(iter(FP_ALPS))] == ["srtm_38_03", "srtm_38_04", "srtm_39_03",
                                                                       "srtm_39_04"]


def test_cli_dem_then_gipp_for_real_product(tmp_path: Path, served: TileServer, install_factory) -> None:
    root = install_factory("2.11.0")
    camp = tmp_path / "camp"
    camp.mkdir()
    r = CliRunner().invoke(main, ["dem", str(camp), "--products", str(SAMPLE), "--sen2cor", str(root),
                                  "--base-url", served.url + "cop90/", "--cache", str(tmp_path / "cache")])
    assert r.exit_code == 0, r.output
    assert "copernicus layout from cop90, 4 tile(s)" in r.output and "all 1 product footprint(s) covered" in r.output
    r = CliRunner().invoke(main, ["sen2cor", "gipp", str(camp), "--sen2cor", str(root)])
    assert r.exit_code == 0, r.output
    gipp = (camp / "sen2cor" / "gipp" / "L2A_GIPP.xml").read_text()
    assert f"<DEM_Directory>{camp.resolve()}/aux/dem/</DEM_Directory>" in gipp
    assert "<Force_Exit_On_DEM_Error>TRUE</Force_Exit_On_DEM_Error>" in gipp
    assert describe(root).version == "2.11.0"


def test_cli_dem_srtm_for_2_9_and_one_line_errors(tmp_path: Path, served: TileServer) -> None:
    camp = tmp_path / "camp"
    camp.mkdir()
    args = ["dem", str(camp), "--products", str(SAMPLE), "--sen2cor-version", "2.9",
            "--cache", str(tmp_path / "cache")]
    r = CliRunner().invoke(main, [*args, "--base-url", served.url + "srtm/"])
    assert r.exit_code == 0, r.output
    assert "srtm-merged" in r.output and (camp / "aux" / "dem" / "srtm_67_19.zip").is_file()
    r = CliRunner().invoke(main, [*args, "--base-url", served.url + "srtm/", "--source", "cop90"])
    assert r.exit_code == 1 and r.output.strip().count("\n") == 0 and "reads SRTM" in r.output
    with rasterio.open(f"/vsizip/{camp}/aux/dem/srtm_67_18.zip/srtm_67_18.tif") as ds:
        assert np.isfinite(ds.read(1)).all()


def test_cli_dem_reads_planned_products_from_campaign_store(tmp_path: Path, served: TileServer) -> None:
    from s2l2a.campaign.store import CampaignStore, ProductRecord
    from s2l2a.safe import open_l1c

    camp = tmp_path / "camp"
    camp.mkdir()
    (camp / "s2l2a.toml").write_text("[campaign]\nname = \"dem\"\n")
    with CampaignStore.open(camp, create=True) as store:
        store.add_product(ProductRecord.from_l1c(open_l1c(SAMPLE)))
    r = CliRunner().invoke(main, ["dem", str(camp), "--sen2cor-version", "2.10.1", "--cache",
                                  str(tmp_path / "cache"), "--base-url", served.url + "srtm/"])
    assert r.exit_code == 0, r.output
    assert "srtm layout from srtm90, 2 tile(s)" in r.output
    assert sorted(p.name for p in (camp / "aux" / "dem").glob("*.zip")) == ["srtm_67_18.zip", "srtm_67_19.zip"]
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "s2l2a.toml").write_text("[campaign]\nname = \"x\"\n")
    with CampaignStore.open(empty, create=True):
        pass
    r = CliRunner().invoke(main, ["dem", str(empty), "--sen2cor-version", "2.10.1"])
    assert r.exit_code == 1 and "no products found" in r.output


def test_antimeridian_footprint(tmp_path: Path, served: TileServer) -> None:
    fiji = {"S2A_FIJI": Polygon([(179.6, -17), (-179.6, -17), (-179.6, -16.2), (179.6, -16.2)])}
    lay = prepare_dem(fiji, tmp_path / "dem", version="2.12.3", cache=tmp_path / "c", base_url=served.url + "cop90/")
    assert sorted(k for k, v in lay.tiles.items() if v) == ["Copernicus_DSM_COG_30_S17_00_E179_00_DEM",
                                                            "Copernicus_DSM_COG_30_S17_00_W180_00_DEM"]
