"""Outputs every reader understands (issue 14): GDAL's SENTINEL2 driver (what QGIS uses), the band
files' own description (scale/offset, nodata, colours, class names), and the commands of
docs/outputs.md "Opening the outputs", run here as written.

Products: the built-in processor's L2A of the bundled sample in both layouts, and the Sen2Cor
stand-in's (JPEG 2000 like Sen2Cor's). GDAL is used through rasterio's wheel (GDAL 3.10) and, where
Debian's gdal-bin is installed, its command-line tools (GDAL 3.6).
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from s2l2a.safe import open_l1c, open_l2a
from s2l2a.safe.scl import CLASSES

from .conftest import REPO, SAMPLE_L1C

DOC = REPO / "docs" / "outputs.md"
GDALINFO = shutil.which("gdalinfo")
EPSG = 32756  # the sample's tile 56JMM
#: BANDNAME of the driver's bands -> the key of the image in the product
_DRIVER_KEYS = {"AOT": "AOT", "WVP": "WVP", "SCL": "SCL", "CLD": "CLDPRB", "SNW": "SNWPRB"}


def _builtin(tmp: Path, fmt: str | None) -> Path:
    from s2l2a.processors import get_processor
    from s2l2a.processors.base import JobSettings

    opts = {} if fmt is None else {"output_format": fmt}
    r = get_processor("builtin", opts).process(open_l1c(SAMPLE_L1C), tmp / "staging", JobSettings(cores=1),
                                              tmp / "job.log")
    return Path(r.product_dir)


@pytest.fixture(scope="module")
def builtin_jp2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    l2a = _builtin(tmp_path_factory.mktemp("jp2"), None)  # the default layout
    assert [p.suffix for p in open_l2a(l2a).granules[0].images[10].values()] == [".jp2"] * 7
    return l2a


@pytest.fixture(scope="module")
def builtin_cog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _builtin(tmp_path_factory.mktemp("cog"), "COG")


@pytest.fixture(scope="module")
def standin_l2a(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("standin")
    subprocess.run([sys.executable, str(REPO / "tests" / "standin" / "L2A_Process"), str(SAMPLE_L1C),
                    "--output_dir", str(out)], check=True, capture_output=True, timeout=180)
    return next(out.glob("*.SAFE"))


def _image_for(images: dict, res: str, bandname: str, index: int) -> tuple[Path, int] | None:
    """The product file (and band index in it) behind one band of a driver subdataset."""
    if res == "TCI":
        return Path(images[10]["TCI"]), index
    r = int(res.removesuffix("m"))
    key = _DRIVER_KEYS.get(bandname) or f"B{bandname[1:].zfill(2)}"
    if key in ("CLDPRB", "SNWPRB"):
        return None  # QI_DATA masks: not in the product's image list
    return Path(images[r][key]), 1


def _driver_equals_files(l2a: Path) -> dict[str, list[str]]:
    """Open every subdataset of MTD_MSIL2A.xml with GDAL's SENTINEL2 driver; each band must equal its
    file over the file's extent (and be 0 beyond it: the stand-in's files are smaller than a tile)."""
    images = open_l2a(l2a).granules[0].images
    seen: dict[str, list[str]] = {}
    with rasterio.open(l2a / "MTD_MSIL2A.xml") as ds:
        subdatasets = ds.subdatasets
    assert [s.split(":")[-2] for s in subdatasets] == ["10m", "20m", "60m", "TCI"]
    for sd in subdatasets:
        res = sd.split(":")[-2]
        with rasterio.open(sd) as ds:
            assert ds.crs.to_epsg() == EPSG
            names = [ds.tags(i).get("BANDNAME", "") for i in ds.indexes] if res != "TCI" else ["R", "G", "B"]
            seen[res] = names
            for i, name in zip(ds.indexes, names, strict=True):
                found = _image_for(images, res, name, i)
                if found is None:
                    continue
                path, band = found
                with rasterio.open(path) as f:
                    want = f.read(band)
                got = ds.read(i, window=Window(0, 0, want.shape[1], want.shape[0]))
                assert got.shape == want.shape and (got == want).all(), (res, name, path.name)
                assert want.max() > 0, (res, name)
                if ds.shape != want.shape:  # nothing but zeros beyond the file's extent
                    edge = ds.read(i, window=Window(want.shape[1], 0, 64, 64))
                    assert not edge.any(), (res, name)
    return seen


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_gdal_sentinel2_driver_reads_the_builtin_jp2_layout(builtin_jp2: Path) -> None:
    seen = _driver_equals_files(builtin_jp2)
    assert seen["10m"] == ["B4", "B3", "B2", "B8", "AOT", "WVP"]
    assert seen["20m"] == ["B5", "B6", "B7", "B8A", "B11", "B12", "AOT", "CLD", "SCL", "SNW", "WVP"]
    assert seen["60m"] == ["B1", "B9", "AOT", "CLD", "SCL", "SNW", "WVP"]
    with rasterio.open(f"SENTINEL2_L2A:{builtin_jp2}/MTD_MSIL2A.xml:20m:EPSG_{EPSG}") as ds:
        b = seen["20m"].index("B11") + 1
        assert ds.tags(b)["BOA_ADD_OFFSET"] == "-1000"  # the driver reads the offset from the metadata
        band = ds.read(b)
        with rasterio.open(open_l2a(builtin_jp2).granules[0].images[20]["B11"]) as f:
            refl = f.read(1, masked=True) * f.scales[0] + f.offsets[0]
        np.testing.assert_allclose(refl.filled(np.nan), np.where(band > 0, (band - 1000.0) / 1e4, np.nan),
                                   rtol=0, atol=1e-9)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_gdal_sentinel2_driver_reads_a_sen2cor_standin_l2a(standin_l2a: Path) -> None:
    seen = _driver_equals_files(standin_l2a)
    assert {"B4", "B8"} <= set(seen["10m"]) and "SCL" in seen["20m"]


def test_cog_layout_is_what_the_driver_cannot_read(builtin_cog: Path) -> None:
    """Documented: the COG layout's files are .tif; the driver looks for .jp2 and finds nothing."""
    images = open_l2a(builtin_cog).granules[0].images
    assert Path(images[10]["B04"]).suffix == ".tif"
    assert not list(builtin_cog.glob("GRANULE/*/IMG_DATA/*/*.jp2"))


def _pam_categories(path: Path) -> list[str]:
    from lxml import etree

    root = etree.parse(f"{path}.aux.xml").getroot()
    return [c.text for c in root.iter("Category")]


@pytest.mark.parametrize("layout", ["builtin_jp2", "builtin_cog"])
def test_every_raster_describes_itself(layout: str, request: pytest.FixtureRequest) -> None:
    l2a = request.getfixturevalue(layout)
    images = open_l2a(l2a).granules[0].images
    for res, files in images.items():
        for key, path in files.items():
            with rasterio.open(path) as ds:
                assert ds.nodata == 0, (res, key)
                desc = ds.descriptions
                if key.startswith("B"):
                    assert ds.scales == (1e-4,) and ds.offsets == (-0.1,), (res, key)
                    assert desc[0].startswith(f"{key} ") and desc[0].endswith("BOA reflectance")
                    dn = ds.read(1, masked=True)
                    refl = dn * ds.scales[0] + ds.offsets[0]
                    np.testing.assert_allclose(refl.compressed(), (dn.compressed() - 1000.0) / 1e4, atol=1e-9)
                elif key == "TCI":
                    assert [c.name for c in ds.colorinterp] == ["red", "green", "blue"]
                elif key == "SCL":
                    if layout == "builtin_cog":  # JPEG 2000 (like ESA's) has no palette box: no colours
                        cmap = ds.colormap(1)
                        for c in CLASSES[1:]:
                            assert cmap[c.code][:3] == c.colour, c.name
                    assert _pam_categories(Path(path)) == [c.name for c in CLASSES]
                elif key == "AOT":
                    assert ds.scales == (1e-3,) and "aerosol" in desc[0]
                elif key == "WVP":
                    assert ds.scales == (1e-3,) and ds.units == ("cm",)


def _doc_blocks() -> dict[str, tuple[str, str]]:
    """The fenced blocks of docs/outputs.md marked ``<!-- tested: NAME -->``: NAME -> (language, code)."""
    text = DOC.read_text(encoding="utf-8")
    return {m.group(1): (m.group(2), m.group(3)) for m in
            re.finditer(r"<!-- tested: ([\w-]+) -->\n```(\w+)\n(.*?)```", text, re.S)}


def test_the_documented_blocks_are_all_tested() -> None:
    assert set(_doc_blocks()) == {"gdal", "rasterio", "xarray", "stac-browser"}


@pytest.mark.skipif(GDALINFO is None, reason="Debian's gdal-bin is not installed (bootstrap installs it)")
def test_documented_gdal_commands(builtin_jp2: Path, tmp_path: Path) -> None:
    lang, code = _doc_blocks()["gdal"]
    assert lang == "sh"
    env = {**os.environ, "L2A": str(builtin_jp2), "EPSG": str(EPSG)}
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    out = run.stdout
    assert out.count("SUBDATASET_") == 8 and f"MTD_MSIL2A.xml:TCI:EPSG_{EPSG}" in out
    assert "10: thin cirrus" in out and "NoData Value=0" in out
    assert re.search(r"Offset: -0\.1,\s+Scale:0\.0001", out)
    with rasterio.open(tmp_path / "l2a_10m.tif") as got:
        images = open_l2a(builtin_jp2).granules[0].images
        keys = ("B04", "B03", "B02", "B08", "AOT", "WVP")[:got.count]  # GDAL 3.6: no AOT/WVP at 10 m
        assert len(keys) >= 4
        for i, key in enumerate(keys, start=1):
            with rasterio.open(images[10][key]) as f:
                assert (got.read(i) == f.read(1)).all(), key


@pytest.mark.parametrize("layout", ["builtin_jp2", "builtin_cog"])
def test_documented_rasterio_snippet(layout: str, request: pytest.FixtureRequest) -> None:
    l2a = request.getfixturevalue(layout)
    lang, code = _doc_blocks()["rasterio"]
    assert lang == "python"
    if layout == "builtin_cog":  # the driver part needs the JP2 layout; the band file part runs on both
        code = code.split("with rasterio.open(f\"SENTINEL2_L2A")[0]
    scope: dict = {"L2A": str(l2a), "EPSG": EPSG}
    exec(compile(code, f"docs/outputs.md:rasterio[{layout}]", "exec"), scope)  # noqa: S102 - our own docs
    dn = scope["dn"]
    assert dn.mask.any() and not dn.mask.all()
    np.testing.assert_allclose(scope["reflectance"].compressed(), (dn.compressed() - 1000.0) / 1e4, atol=1e-9)
    if layout == "builtin_jp2":
        scl = scope["scl"]
        assert set(np.unique(scl)) <= set(range(12)) and (scl == 4).mean() > 0.3


def _campaign_with(l2a: Path, root: Path) -> Path:
    """A campaign whose one done job made ``l2a`` (moved in place), with its STAC written."""
    from s2l2a.campaign.exports import write_campaign_stac
    from s2l2a.campaign.settings import CampaignSettings
    from s2l2a.campaign.store import AttemptOutcome, CampaignStore, ProductRecord

    root.mkdir(parents=True)
    CampaignSettings(name="readers").save(root)
    dest = root / "L2A" / "56JMM" / l2a.name
    with CampaignStore.open(root, create=True) as store:
        shutil.copytree(l2a, dest)
        store.add_products([ProductRecord(path=SAMPLE_L1C, name=SAMPLE_L1C.name.removesuffix(".SAFE"),
                                          tile="56JMM", sensing_time="2018-06-29T00:02:41Z", baseline="02.06",
                                          mission="S2A")])
        store.start_attempt(1, "node1", 1, str(root / "logs" / "1.log"), start="2026-01-01T10:00:00Z")
        store.finish_attempt(1, AttemptOutcome("done", output_path=str(dest), processor="builtin",
                                               processor_version="s2l2a-builtin 0.1.0", end="2026-01-01T10:01:00Z"))
    write_campaign_stac(root)
    return root


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_documented_xarray_one_liner_gives_band_values_times_scale_plus_offset(builtin_jp2: Path,
                                                                                tmp_path: Path) -> None:
    pytest.importorskip("odc.stac", reason="odc-stac is in the test extra")
    campaign = _campaign_with(builtin_jp2, tmp_path / "camp")
    lang, code = _doc_blocks()["xarray"]
    assert lang == "python" and "resolution=20" in code
    code = code.replace("resolution=20", "resolution=500")  # the sample is decimated: 250/500/1500 m pixels
    scope: dict = {"DIR": str(campaign)}
    exec(compile(code, "docs/outputs.md:xarray", "exec"), scope)  # noqa: S102 - our own docs
    cube, ndvi = scope["cube"], scope["ndvi"]
    assert cube.sizes["time"] == 1 and cube["B04"].dtype == np.float32 and ndvi.dtype == np.float32
    # on the products' own 20 m grid the cube is the 20 m band files x scale + offset
    from s2l2a.outputs.stac import load_reflectance

    native = load_reflectance(campaign / "stac" / "collection.json", ["B8A", "B11"])  # the bands' own grid
    images = open_l2a(campaign / "L2A" / "56JMM" / builtin_jp2.name).granules[0].images
    for band in ("B8A", "B11"):
        with rasterio.open(images[20][band]) as f:
            dn = f.read(1, masked=True)
            want = (dn * f.scales[0] + f.offsets[0]).filled(np.nan)
        got = native[band].isel(time=0).values
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, equal_nan=True)
    assert 0.3 < float(np.nanmedian(ndvi.values)) < 0.95 and np.isfinite(ndvi.values).mean() > 0.5  # vegetated


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_documented_stac_server_serves_the_catalog_to_a_browser(builtin_cog: Path, tmp_path: Path) -> None:
    """The documented server: collection, item and the item's assets by their relative links, with
    the CORS header a browser page on another origin needs."""
    from urllib.parse import urljoin

    campaign = _campaign_with(builtin_cog, tmp_path / "camp")
    lang, code = _doc_blocks()["stac-browser"]
    assert lang == "sh"
    port = _free_port()
    script = code.replace("8765", str(port)).replace("python3 -", f"{sys.executable} -")
    server = subprocess.Popen(["bash", "-c", script], env={**os.environ, "DIR": str(campaign)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/stac/collection.json"
        for _ in range(100):
            try:
                reply = urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the documented server did not answer")
        assert reply.headers["Access-Control-Allow-Origin"] == "*"
        coll = json.loads(reply.read())
        item_url = urljoin(url, next(link["href"] for link in coll["links"] if link["rel"] == "item"))
        item = json.loads(urllib.request.urlopen(item_url, timeout=5).read())
        assert item["properties"]["processing:software"] and "raster:bands" in item["assets"]["B04"]
        for key in ("B04", "SCL", "TCI"):
            href = urljoin(item_url, item["assets"][key]["href"])
            data = urllib.request.urlopen(href, timeout=5).read()
            assert len(data) == item["assets"][key]["file:size"], key
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=10)


def test_docs_name_the_files_the_tests_open(builtin_jp2: Path) -> None:
    """The globs of the documented commands match exactly one file each in a JP2 product."""
    for pattern in ("GRANULE/*/IMG_DATA/R20m/*_SCL_20m.jp2", "GRANULE/*/IMG_DATA/R10m/*_B04_10m.jp2"):
        assert len(glob.glob(str(builtin_jp2 / pattern))) == 1
