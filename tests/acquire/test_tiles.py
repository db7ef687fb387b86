"""The shipped grid against a real tile footprint, AOI handling, tile names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shapely.geometry import Point, shape

from s2l2a.acquire import tiles

DATA = Path(__file__).resolve().parents[1] / "data" / "acquire"


def test_footprint_matches_real_31TFJ() -> None:
    real = shape(json.loads((DATA / "sen2like_tile_mgrs_31TFJ.json").read_text())["features"][0]["geometry"])
    ours = tiles.tile_footprint("31TFJ")
    assert ours.symmetric_difference(real).area / real.area < 0.01
    assert tiles.tiles_for_geometry(real.centroid.buffer(0.01)) == ["31TFJ"]


def test_aoi_file_and_bbox(tmp_path: Path) -> None:
    aoi = tmp_path / "aoi.geojson"
    aoi.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [152.5, -30.3]}}]}))
    assert "56JMM" in tiles.tiles_for_geometry(tiles.read_aoi(aoi))
    box = tiles.parse_bbox("152.4,-30.4,152.6,-30.2")
    assert "56JMM" in tiles.tiles_for_geometry(box)
    with pytest.raises(tiles.TileError, match="west,south,east,north"):
        tiles.parse_bbox("1,2,3")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(tiles.TileError, match="cannot read GeoJSON"):
        tiles.read_aoi(bad)


def test_tile_names_and_antimeridian() -> None:
    assert tiles.normalise_tile("t56jmm") == "56JMM"
    assert tiles.normalise_tile("T1CCV") == "01CCV"
    assert tiles.gcs_tile_prefix("01CCV") == "tiles/1/C/CV/"
    with pytest.raises(tiles.TileError, match="not an MGRS tile"):
        tiles.normalise_tile("56JM")
    assert tiles.tile_footprint("01CCV").geom_type == "MultiPolygon"  # split at 180°
    assert "01CCV" in tiles.tiles_for_geometry(Point(-179.9, -72.5))
    assert len(tiles.known_tiles()) == 56686
