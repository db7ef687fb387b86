"""Fixtures for the Sen2Cor set-up tests: fake install trees per version, small real-format rasters."""

from __future__ import annotations

import gzip
import shutil
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_bounds

DATA = Path(__file__).resolve().parents[1] / "data" / "sen2cor_setup"
HELP_28 = (DATA / "help" / "L2A_Process-help-2.8.0.txt").read_text()
HELP_3 = (DATA / "help" / "L2A_Process-help-3.02.00.txt").read_text()

# version -> (cfg templates folder, xsd folder or None, L2A_GIPP variant replacing the template or None)
CFG = {
    "2.5.5": (DATA / "cfg-2.8.0", None, DATA / "gipp-variants/bdc-sen2cor-docker/2.5.5/L2A_GIPP.xml"),
    "2.8.0": (DATA / "cfg-2.8.0", DATA / "cfg-2.8.0", None),
    "2.9.0": (DATA / "cfg-2.8.0", None, DATA / "gipp-variants/bdc-sen2cor-docker/2.9.0/L2A_GIPP.xml"),
    "2.10.1": (DATA / "cfg-2.8.0", DATA / "xsd-2.11", DATA / "gipp-variants/bdc-sen2cor-docker/2.10.0/L2A_GIPP.xml"),
    "2.11.0": (DATA / "cfg-2.8.0", DATA / "xsd-2.11", DATA / "gipp-variants/bdc-sen2cor-docker/2.11.0/L2A_GIPP.xml"),
    "2.12.3": (DATA / "cfg-2.8.0", DATA / "xsd-2.11", DATA / "gipp-variants/bdc-sen2cor-docker/2.12.0/L2A_GIPP.xml"),
    "3.2.0": (DATA / "cfg-2.8.0", DATA / "xsd-2.11", DATA / "gipp-variants/bdc-sen2cor-docker/2.12.0/L2A_GIPP.xml"),
}


def banner(version: str) -> str:
    """A help text with the version's banner: the real 2.8.0/3.02.00 texts, the 2.8 one re-versioned."""
    if version.startswith("3."):
        major, minor, patch = version.split(".")
        return HELP_3.replace("Version: 03.02.00", f"Version: 0{major}.{int(minor):02d}.{int(patch):02d}")
    return HELP_28.replace("Version: 2.8.0", f"Version: {version}")


def make_install(root: Path, version: str, *, python: str | None = None, aux: bool = True,
                 xsd: bool = True) -> Path:
    """A Sen2Cor tree as ESA's installer leaves it: bin/L2A_Process + lib/pythonX/site-packages/sen2cor."""
    py = python or ("3.9" if version.startswith("3.") else "2.7")
    pkg = root / "lib" / f"python{py}" / "site-packages" / "sen2cor"
    cfg = pkg / "cfg"
    cfg.mkdir(parents=True)
    if aux:
        (pkg / "aux_data").mkdir()
    src, xsd_dir, variant = CFG[version]
    for f in src.glob("L2A_*GIPP.xml"):
        shutil.copy(f, cfg / f.name)
    if variant is not None:
        shutil.copy(variant, cfg / "L2A_GIPP.xml")
    if tuple(int(x) for x in version.split(".")[:2]) >= (2, 10):
        # 2.10+ templates name the monthly snow-condition product (as in public 2.10+ CAL_SC GIPPs)
        sc = cfg / "L2A_CAL_SC_GIPP.xml"
        sc.write_text(sc.read_text().replace("Snow-Cond-500m-P13Y7D-2000-2012-v2.0",
                                             "Snow-Cond-500m-MONTHLY-2000-2012-v2.4"))
    if xsd and xsd_dir is not None:
        for f in xsd_dir.glob("L2A_*GIPP.xsd"):
            shutil.copy(f, cfg / f.name)
    binp = root / "bin"
    binp.mkdir()
    (binp / "help.txt").write_text(banner(version))
    exe = binp / "L2A_Process"
    exe.write_text('#!/bin/sh\ncat "$(dirname "$0")/help.txt"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return root


def write_raster(path: Path, bounds: tuple[float, float, float, float], size: int = 60,
                 value: float | None = None, nodata: float | None = -32768, dtype: str = "int16",
                 void: tuple[slice, slice] | None = None, noise: bool = False) -> Path:
    """A small EPSG:4326 GeoTIFF (heights rising eastwards unless ``value``; ``noise``: rough terrain)."""
    arr = np.empty((size, size), dtype=dtype)
    arr[:] = value if value is not None else (np.arange(size) * 10)[None, :]
    if noise:
        arr += np.random.default_rng(size).integers(0, 500, arr.shape).astype(dtype)
    if void is not None:
        arr[void] = nodata
    profile = dict(driver="GTiff", width=size, height=size, count=1, dtype=dtype, crs="EPSG:4326",
                   transform=from_bounds(*bounds, size, size), nodata=nodata)
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(arr, 1)
    return path


@pytest.fixture
def install_factory(tmp_path: Path):
    def make(version: str, **kw: object) -> Path:
        return make_install(tmp_path / f"Sen2Cor-{version}-Linux64", version, **kw)  # type: ignore[arg-type]
    return make


STANDIN = Path(__file__).resolve().parents[1] / "standin" / "L2A_Process"
#: our own stand-in for the zip's requirements.yml (ESA's file is not reproduced; the shape of a conda env file)
REQUIREMENTS = """name: sen2cor_py312
channels:
  - conda-forge
dependencies:
  - python=3.12
  - gdal
  - numpy
  - lxml
"""


def make_zip(dest: Path, version: str = "3.3.0", *, script: bool = True, extra: dict[str, str] | None = None) -> Path:
    """A zip shaped like ESA's ``sen2cor_3.3.0_python_3.12_20250131.zip``: ``sen2cor_<v>_python_3.12/``
    with requirements.yml and ``SEN2COR_3/`` (L2A_Process.py running the test stand-in as that release,
    cfg templates and XSDs, an empty aux_data)."""
    import zipfile

    top = f"sen2cor_{version}_python_3.12"
    files: dict[str, str | bytes] = {f"{top}/requirements.yml": REQUIREMENTS}
    pkg = f"{top}/SEN2COR_3"
    if script:
        files[f"{pkg}/L2A_Process.py"] = (
            f"import os, runpy\nos.environ['STANDIN_VERSION'] = {version!r}  # this zip's release\n"
            f"runpy.run_path({str(STANDIN)!r}, run_name='__main__')\n")
    for f in (DATA / "cfg-2.8.0").glob("L2A_*GIPP.xml"):
        text = f.read_text()
        if f.name == "L2A_CAL_SC_GIPP.xml":
            text = text.replace("Snow-Cond-500m-P13Y7D-2000-2012-v2.0", "Snow-Cond-500m-MONTHLY-2000-2012-v2.4")
        files[f"{pkg}/cfg/{f.name}"] = text
    files[f"{pkg}/cfg/L2A_GIPP.xml"] = (DATA / "gipp-variants/bdc-sen2cor-docker/2.12.0/L2A_GIPP.xml").read_text()
    for f in (DATA / "xsd-2.11").glob("L2A_*GIPP.xsd"):
        files[f"{pkg}/cfg/{f.name}"] = f.read_bytes()
    files.update(extra or {})
    archive = dest / f"sen2cor_{version}_python_3.12_20250131.zip"
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{pkg}/aux_data/", "")
        for name, data in files.items():
            z.writestr(name, data)
    return archive


REAL_DS = next((Path(__file__).resolve().parents[1] / "data" / "safe" / "l1c_metadata" / "coprs-datastrip-N0400")
               .glob("*.xml.gz"))


def with_datastrip(product: Path, psd: str | None = None) -> Path:
    """Give a (cloned) product the datastrip metadata of a real baseline 04.00 product (schema folder
    ``14.08.02``); ``psd="15.00.00"`` edits that folder and the namespace to another PSD version, as a
    product of that version carries them. Only the head of the file (its root element) is kept."""
    lines = gzip.decompress(REAL_DS.read_bytes()).decode().splitlines()
    end = next(i for i, ln in enumerate(lines) if ln.startswith("<n1:Level-1C_DataStrip_ID"))
    text = "\n".join(lines[: end + 1]) + "\n</n1:Level-1C_DataStrip_ID>\n"
    if psd:
        text = text.replace("schemas/14.08.02/PSD", f"schemas/{psd}/PSD").replace("psd-14.", f"psd-{int(psd[:2])}.")
    ds = next((product / "DATASTRIP").iterdir())
    (ds / "MTD_DS.xml").write_text(text)
    return product


def wrapper(root: Path, version: str) -> Path:
    """A 2.x-layout install whose bin/L2A_Process runs the stand-in as ``version``."""
    exe = root / "bin" / "L2A_Process"
    exe.parent.mkdir(parents=True)
    exe.write_text(f"#!/bin/sh\nSTANDIN_VERSION={version} exec {sys.executable} {STANDIN} \"$@\"\n")
    exe.chmod(0o755)
    return root


@pytest.fixture
def installs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A 2.11 .run-layout stand-in and a 3.3.0 zip installed with this Python."""
    monkeypatch.delenv("STANDIN_VERSION", raising=False)
    old = wrapper(tmp_path / "Sen2Cor-02.11.00-Linux64", "2.11")
    from s2l2a.sen2cor.install import install

    install(make_zip(tmp_path / "dl"), tmp_path / "sen2cor3", python=sys.executable)
    return old, tmp_path / "sen2cor3" / "sen2cor_3.3.0_python_3.12"
