"""Opening for planning reads the product metadata only; tile metadata and angle grids wait for a job."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from safe_helpers import SAMPLE

from s2l2a.safe import product as product_mod
from s2l2a.safe import tile as tile_mod
from s2l2a.safe.errors import MetadataError
from s2l2a.safe.product import open_l1c
from s2l2a.safe.tile import read_tile_metadata


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts of tile-metadata and angle-grid parses (through the names product.py calls)."""
    calls = {"tile": 0, "angles": 0}
    real_tile, real_angles = product_mod.read_tile_metadata, product_mod.read_angle_grids

    def tile(*a, **kw):
        calls["tile"] += 1
        return real_tile(*a, **kw)

    def angles(*a, **kw):
        calls["angles"] += 1
        return real_angles(*a, **kw)

    monkeypatch.setattr(product_mod, "read_tile_metadata", tile)
    monkeypatch.setattr(product_mod, "read_angle_grids", angles)
    return calls


def test_metadata_only_reads_no_tile_metadata(counted: dict[str, int]) -> None:
    p = open_l1c(SAMPLE, metadata_only=True)
    assert counted == {"tile": 0, "angles": 0}
    (g,) = p.granules
    assert g._tile_metadata is None and g._angles is None
    # what planning records, all from the product metadata
    assert (p.tile, p.baseline, p.mission, p.cloud_cover) == ("56JMM", "02.06", "S2A", 0.0)
    assert p.sensing_time.isoformat() == "2018-06-29T00:02:41.024000+00:00"
    assert p.footprint is not None and len(g.band_files) == 14
    # a job asks: parsed then, once each
    assert g.epsg == 32756 and g.tile_id.endswith("_T56JMM_N02.06")
    assert g.angles.sun_zenith[0, 0] == pytest.approx(59.3323)
    g.angles, g.geoposition  # noqa: B018
    assert counted == {"tile": 1, "angles": 1}


def test_full_open_parses_tile_metadata_but_not_the_grids(counted: dict[str, int]) -> None:
    p = open_l1c(SAMPLE)
    (g,) = p.granules
    assert counted == {"tile": 1, "angles": 0} and g._angles is None
    eager = read_tile_metadata(g.metadata_path)
    assert g.mean_sun_zenith == eager.mean_sun_zenith and g.geoposition == eager.geoposition
    np.testing.assert_array_equal(g.angles.sun_azimuth, eager.angles.sun_azimuth)
    assert sorted(g.angles.view_zenith) == sorted(eager.angles.view_zenith)
    for b, grid in eager.angles.view_zenith.items():
        np.testing.assert_array_equal(g.angles.view_zenith[b], grid)
    assert counted == {"tile": 1, "angles": 1}


def test_both_opens_agree_on_every_product_field() -> None:
    full, light = open_l1c(SAMPLE), open_l1c(SAMPLE, metadata_only=True)
    for f in ("path", "name", "level", "mission", "product_uri", "tile", "tiles", "sensing_time",
              "generation_time", "baseline", "cloud_cover", "footprint", "quantification_value"):
        assert getattr(full, f) == getattr(light, f), f
    (a,), (b,) = full.granules, light.granules
    assert (a.band_files, a.images, a.aux_files, a.tile, a.epsg) == (b.band_files, b.images, b.aux_files, b.tile, b.epsg)


def test_a_damaged_tile_file_fails_the_full_open_and_the_job_not_planning(tmp_path: Path) -> None:
    copy = tmp_path / SAMPLE.name
    shutil.copytree(SAMPLE, copy)
    next(copy.glob("GRANULE/*/MTD_TL.xml")).write_text("<Level-1C_Tile_ID><truncated")
    with pytest.raises(MetadataError):
        open_l1c(copy)
    light = open_l1c(copy, metadata_only=True)  # planning: product metadata and files are fine
    with pytest.raises(MetadataError):
        light.granules[0].epsg  # noqa: B018 - the job that reads it fails with the same error


def test_read_tile_metadata_without_angles() -> None:
    tl = next(SAMPLE.glob("GRANULE/*/MTD_TL.xml"))
    light, full = read_tile_metadata(tl, angles=False), read_tile_metadata(tl)
    assert light.angles is None and full.angles is not None
    assert (light.tile_id, light.epsg, light.geoposition) == (full.tile_id, full.epsg, full.geoposition)
    np.testing.assert_array_equal(tile_mod.read_angle_grids(tl).sun_zenith, full.angles.sun_zenith)
