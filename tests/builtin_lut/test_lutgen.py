"""Generator mechanics without 6S: sharding, resume, assembly into a loadable table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from s2l2a.processors.builtin import lutgen
from s2l2a.processors.builtin.lut import read_lut


def _fake_6s(task: lutgen.Task, rho: float = 0.0, aerosol: str = "continental", ozone: float = 0.3) -> dict:
    """A smooth stand-in for 6S (closed forms in the table's variables)."""
    mu = math.cos(math.radians(task.sza))
    mv = math.cos(math.radians(task.vza))
    band = lutgen.LUT_BANDS.index(task.band) + 1
    tg = math.exp(-0.01 * band * task.wv**0.5 * (1 / mu + 1 / mv)) * (1.01 if task.mission == "S2B" else 1.0)
    return {"rho_toa": tg * (0.05 + 0.1 * task.aot) * (1 + 0.1 * math.cos(math.radians(task.raa))),
            "tg": tg, "td": math.exp(-0.2 / mu), "tu": math.exp(-0.2 / mv), "S": 0.1 + 0.05 * task.aot,
            "to3": 0.99}


def test_shards_partition_the_tasks() -> None:
    tasks = lutgen.tasks_for(lutgen.GRIDS["tiny"])
    assert len(set(tasks)) == len(tasks)
    shards = [tasks[i - 1 :: 3] for i in (1, 2, 3)]
    assert sorted(t for s in shards for t in s) == tasks
    assert lutgen.parse_shard("2/3") == (2, 3)
    with pytest.raises(Exception, match="shard"):
        lutgen.parse_shard("4/3")


def test_generate_resume_and_assemble(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lutgen, "run_6s", _fake_6s)
    grid = lutgen.GRIDS["tiny"]
    work = tmp_path / "work"
    n1 = lutgen.generate(work, grid, (1, 2), jobs=2)
    # an interrupted write leaves half a line: it is ignored and that task is redone
    with (work / "shard-1-of-2.jsonl").open("a") as fh:
        fh.write('{"key": ["S2A", "B0')
    assert lutgen.generate(work, grid, (1, 2), jobs=1) == 0
    n2 = lutgen.generate(work, grid, (2, 2), jobs=2)
    assert n1 + n2 == len(lutgen.tasks_for(grid))
    out = lutgen.assemble(work, tmp_path / "t.npz")
    prov = json.loads(out.with_suffix(".json").read_text())
    assert prov["grid"]["name"] == "tiny" and prov["ozone_cm_atm"] == lutgen.OZONE_CM_ATM
    lut = read_lut(out, "S2A")
    c = lut.coefficients("B09", 0.4, 60.0, 12.0, 180.0, 3.0, 0.5)
    ref = _fake_6s(lutgen.Task("S2A", "B09", 0.4, 60.0, 12.0, 180.0, 3.0, 0.5))
    assert float(c.t_gas) == pytest.approx(ref["tg"], rel=1e-5)
    assert float(c.path_reflectance * c.t_gas) == pytest.approx(ref["rho_toa"], rel=1e-5)
    s2b = read_lut(out, "S2B").coefficients("B09", 0.0, 0.0, 0.0, 0.0, 0.0, 2.0)
    assert float(s2b.t_gas) == pytest.approx(1.01 * float(lut.coefficients("B09", 0.0, 0.0, 0.0, 0.0).t_gas),
                                             rel=1e-5)
    assert np.isfinite(c.s_albedo)


def test_other_grid_in_same_dir_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lutgen, "run_6s", _fake_6s)
    lutgen.generate(tmp_path, lutgen.GRIDS["tiny"], (1, 50), jobs=1)
    with pytest.raises(SystemExit):
        lutgen.generate(tmp_path, lutgen.GRIDS["coarse"], (1, 50), jobs=1)


def test_water_vapour_fraction_profile() -> None:
    assert lutgen.wv_fraction_above(0.0) == pytest.approx(1.0)
    f = [lutgen.wv_fraction_above(z) for z in (0.5, 1.5, 3.0)]
    assert 1 > f[0] > f[1] > f[2] > 0.15
