"""ESA-CCI maps in a Sen2Cor aux_data layout (small synthetic rasters): finding, cutting onto a UTM
grid, and what the classification makes of them."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.warp import transform as warp_points

from s2l2a.campaign.failures import FailureClass
from s2l2a.processors.base import ProcessingFailed
from s2l2a.processors.builtin import pipeline
from s2l2a.processors.builtin import scl as sclmod
from s2l2a.processors.builtin.ccimaps import CciMaps, snow_excluded, snow_file
from s2l2a.sen2cor.layout import WATER_BODIES

SNOW_DIR = "ESACCI-LC-L4-Snow-Cond-500m-P13Y7D-2000-2012-v2.0"
WEST, NORTH, STEP, N = 152.0, -30.0, 0.001, 100   # a 0.1 deg square: west half land, east half water


def _write(path: Path, values: np.ndarray) -> None:
    with rasterio.open(path, "w", driver="GTiff", width=N, height=N, count=1, dtype="uint8", crs="EPSG:4326",
                       transform=Affine(STEP, 0, WEST, 0, -STEP, NORTH)) as ds:
        ds.write(values, 1)


def _aux(root: Path, land_snow: int = 5) -> Path:
    """Sen2Cor's aux_data with the water-bodies map and three weekly snow-condition files."""
    root.mkdir()
    wb = np.ones((N, N), np.uint8)
    wb[:, N // 2:] = 2
    _write(root / WATER_BODIES, wb)
    (root / SNOW_DIR).mkdir()
    for mmdd in ("0101", "0624", "0701"):
        snc = np.full((N, N), land_snow, np.uint8)
        snc[:, N // 2:] = 254
        _write(root / SNOW_DIR / f"ESACCI-LC-L4-Snow-Cond-500m-P13Y7D-2000{mmdd}-v2.0.tif", snc)
    return root


def _utm_grid(shape: tuple[int, int] = (20, 20), res: float = 200.0) -> pipeline.Grid:
    """A 4 km grid in UTM 56S centred on the square."""
    xs, ys = warp_points("EPSG:4326", "EPSG:32756", [WEST + N * STEP / 2], [NORTH - N * STEP / 2])
    x0, y0 = xs[0] - shape[1] * res / 2, ys[0] + shape[0] * res / 2
    return pipeline.Grid(res=int(res), shape=shape, transform=Affine(res, 0, x0, 0, -res, y0))


def test_snow_file_is_the_period_of_the_acquisition(tmp_path: Path) -> None:
    aux = _aux(tmp_path / "aux_data")
    assert "20000624" in snow_file(aux, date(2018, 6, 29)).name   # week of 24 June
    assert "20000101" in snow_file(aux, date(2018, 1, 3)).name
    assert "20000701" in snow_file(aux, date(2018, 12, 31)).name
    assert snow_file(tmp_path, date(2018, 6, 29)) is None          # no snow folder


@pytest.mark.parametrize("name", ["nothing", ".", "..", "0", "nan", "a\nb", "it's"])
def test_a_folder_without_the_water_map_is_missing_aux(tmp_path: Path, name: str) -> None:
    (tmp_path / "sub").mkdir()
    with pytest.raises(ProcessingFailed) as err:
        CciMaps.open(tmp_path / "sub" / name, date(2018, 6, 29))
    assert err.value.failure_class == FailureClass.MISSING_AUX and "water-bodies" in str(err.value)


def test_masks_on_a_utm_grid(tmp_path: Path) -> None:
    maps = CciMaps.open(_aux(tmp_path / "aux_data"), date(2018, 6, 29))
    g = _utm_grid()
    m = maps.masks(g.shape, g.transform, "EPSG:32756")
    assert m["water"][:, :8].sum() == 0 and m["water"][:, 12:].all()   # west land, east water
    assert (m["no_snow"] == m["water"]).all()                          # land snow 5 % < 10 %: rare
    snowy = CciMaps.open(_aux(tmp_path / "snowy", land_snow=50), date(2018, 6, 29))
    assert not snowy.masks(g.shape, g.transform, "EPSG:32756")["no_snow"].any()
    assert snowy.describe()["water_bodies"] == WATER_BODIES


def test_snow_exclusion_rule() -> None:
    snc = np.array([[0, 9, 254, 255]], np.uint8)
    assert snow_excluded(snc).tolist() == [[False, False, True, False]]    # land mean 4.5 %
    assert not snow_excluded(np.array([[0, 0, 254]], np.uint8)).any()     # no snow at all: rule off
    assert not snow_excluded(np.array([[10, 254]], np.uint8)).any()       # 10 %: not rare


def test_classify_grid_turns_dark_water_bodies_into_water(tmp_path: Path) -> None:
    maps = CciMaps.open(_aux(tmp_path / "aux_data"), date(2018, 6, 29))
    g = _utm_grid()
    # a dark surface everywhere (B04 < 0.10, 0.04 < B8A < 0.15, B02/B11 0.8): dark feature by radiometry
    dn = {b: np.full(g.shape, v, np.uint16) for b, v in
          {"B02": 800, "B03": 700, "B04": 900, "B8A": 1000, "B11": 1000, "B12": 600}.items()}
    refl = {b: (10000.0, 0.0) for b in dn}
    without, *_ = pipeline.classify_grid(dn, refl, g, (30.0, 40.0), None)
    with_cci, *_ = pipeline.classify_grid(dn, refl, g, (30.0, 40.0), None,
                                          cci=maps.masks(g.shape, g.transform, "EPSG:32756"))
    assert (without == sclmod.DARK).all()
    assert (with_cci[:, :8] == sclmod.DARK).all() and (with_cci[:, 12:] == sclmod.WATER).all()


def test_processor_reads_the_maps_named_in_its_settings(tmp_path: Path, atm_lut, monkeypatch) -> None:
    """``[builtin] esacci`` through the whole processor: the maps' names in the report; a folder
    without them fails the job as missing auxiliary data."""
    from s2l2a.processors import get_processor
    from s2l2a.processors.base import JobSettings
    from s2l2a.processors.builtin import lut as lutmod
    from s2l2a.safe import open_l1c

    from .synth import make_product

    monkeypatch.setattr(lutmod, "load_lut", lambda mission="S2A", aerosol="continental": atm_lut)
    safe_in, _ = make_product(tmp_path / "in", atm_lut, n10=120)
    aux = tmp_path / "aux_data"
    aux.mkdir()
    with rasterio.open(aux / WATER_BODIES, "w", driver="GTiff", width=500, height=500, count=1, dtype="uint8",
                       crs="EPSG:4326", transform=Affine(0.01, 0, 150.0, 0, -0.01, -27.0)) as ds:
        ds.write(np.ones((500, 500), np.uint8), 1)      # New South Wales, all land
    result = get_processor("builtin", {"output_format": "COG", "esacci": str(aux)}).process(
        open_l1c(safe_in), tmp_path / "stage", JobSettings(cores=1), tmp_path / "job.log")
    assert result.details["esacci"] == {"water_bodies": WATER_BODIES, "snow_condition": None}
    with pytest.raises(ProcessingFailed) as err:
        get_processor("builtin", {"output_format": "COG", "esacci": str(tmp_path / "none")}).process(
            open_l1c(safe_in), tmp_path / "stage2", JobSettings(cores=1), tmp_path / "job2.log")
    assert err.value.failure_class == FailureClass.MISSING_AUX
    assert "decoded" not in (tmp_path / "job2.log").read_text()   # refused before any band is decoded
