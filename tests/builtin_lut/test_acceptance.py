"""Acceptance: the shipped table inverts independent 6S forward runs (tests/data/builtin_lut)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from s2l2a.processors.builtin.invert import toa_to_boa
from s2l2a.processors.builtin.lut import load_lut
from s2l2a.processors.builtin.srf import LUT_BANDS

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "builtin_lut" / "forward_fixture.json"
NODE_MAX_ABS = 2e-4
BETWEEN_RMSE = 2e-3


def fixture_errors() -> dict[tuple[str, str], np.ndarray]:
    """(kind, band) -> retrieved minus true surface reflectance, over every case and reflectance."""
    doc = json.loads(FIXTURE.read_text())
    errs: dict[tuple[str, str], list[float]] = defaultdict(list)
    for case in doc["cases"]:
        lut = load_lut(case["mission"])
        c = lut.coefficients(case["band"], case["aot"], case["sza"], case["vza"], case["raa"],
                             case["elevation_km"], case["wv"])
        boa = toa_to_boa(np.asarray(case["rho_toa"], dtype=np.float32), c)
        errs[(case["kind"], case["band"])].extend((boa - np.asarray(case["rho"])).tolist())
    return {k: np.asarray(v) for k, v in errs.items()}


@pytest.fixture(scope="module")
def errors() -> dict[tuple[str, str], np.ndarray]:
    return fixture_errors()


@pytest.mark.parametrize("band", LUT_BANDS)
def test_recovers_surface_at_table_nodes(errors: dict, band: str) -> None:
    err = errors[("node", band)]
    assert np.max(np.abs(err)) <= NODE_MAX_ABS, f"{band}: max |error| {np.max(np.abs(err)):.2e}"


@pytest.mark.parametrize("band", LUT_BANDS)
def test_recovers_surface_between_nodes(errors: dict, band: str) -> None:
    err = errors[("off", band)]
    rmse = float(np.sqrt(np.mean(err**2)))
    assert rmse <= BETWEEN_RMSE, f"{band}: RMSE {rmse:.2e}"


if __name__ == "__main__":  # accuracy table for docs/lut.md
    table = fixture_errors()
    print("band  node max|err|  between RMSE  between max|err|")
    for b in LUT_BANDS:
        n, o = table[("node", b)], table[("off", b)]
        print(f"{b}   {np.max(np.abs(n)):.1e}       {np.sqrt(np.mean(o**2)):.1e}       {np.max(np.abs(o)):.1e}")
