"""Fixtures of the built-in processor tests: a look-up table (the shipped 6S one, else a toy one).

The toy table has the same layout and the same physics shape (Rayleigh + aerosol path reflectance,
transmittances falling with optical depth, water-vapour and ozone absorption) but made-up numbers;
tests that need *the* 6S values are in the LUT engineer's tests, ours need a consistent forward model.
"""

from __future__ import annotations

import numpy as np
import pytest

from s2l2a.processors.builtin import lut as lutmod

WAVELENGTH_UM = {"B01": 0.443, "B02": 0.49, "B03": 0.56, "B04": 0.665, "B05": 0.705, "B06": 0.74,
                 "B07": 0.783, "B08": 0.842, "B8A": 0.865, "B09": 0.945, "B10": 1.375, "B11": 1.61,
                 "B12": 2.19}
K_WV = {"B05": 0.004, "B06": 0.002, "B07": 0.002, "B08": 0.01, "B8A": 0.004, "B09": 0.12, "B10": 1.2,
        "B11": 0.004, "B12": 0.01, "B03": 0.001, "B04": 0.001}
K_O3 = {"B01": 0.005, "B02": 0.05, "B03": 0.35, "B04": 0.15, "B05": 0.07, "B06": 0.03, "B07": 0.02}


def _toy_quantities(band: str, aot, sza, vza, raa, elev, wv, ozone=0.30):
    lam = WAVELENGTH_UM[band]
    p = np.exp(-elev / 8.0)
    tau_r = p * 0.008569 * lam ** -4 * (1 + 0.0113 * lam ** -2 + 0.00013 * lam ** -4)
    tau_a = aot * (lam / 0.55) ** -1.3
    mus, muv = np.cos(np.radians(sza)), np.cos(np.radians(vza))
    m = 1 / mus + 1 / muv
    phase_a = 0.18 + 0.08 * np.cos(np.radians(raa))
    path = (tau_r * 0.75 * (1 + 0.3 * np.cos(np.radians(raa))) + 0.92 * tau_a * phase_a * 4 * 0.25) / (4 * mus * muv)
    td = np.exp(-(0.5 * tau_r + 0.16 * tau_a) / mus)
    tu = np.exp(-(0.5 * tau_r + 0.16 * tau_a) / muv)
    s = 0.92 * tau_r / (1 + tau_r) + 0.12 * tau_a / (1 + tau_a)
    to3 = np.exp(-K_O3.get(band, 0.0) * ozone * m)
    tg = to3 * np.exp(-K_WV.get(band, 0.0) * wv * m)
    return path, tg, td, tu, s, to3


def toy_lut(mission: str = "S2A") -> lutmod.AtmLUT:
    """An AtmLUT with the shipped layout filled from a simple analytic atmosphere."""
    bands = tuple(WAVELENGTH_UM)
    ax = dict(aot=np.array([0.0, 0.1, 0.2, 0.4, 0.6, 0.8, 1.2]), sza=np.array([0.0, 20, 40, 55, 65, 75]),
              vza=np.array([0.0, 6, 12]), raa=np.array([0.0, 60, 120, 180]), elevation=np.array([0.0, 2, 4]),
              wv=np.array([0.2, 0.5, 1.0, 2.0, 3.0, 4.5, 6.5]))
    wv_ref = 2.0
    wv_aot = np.array([0.0, 0.4, 1.2])
    grids = np.meshgrid(ax["aot"], ax["sza"], ax["vza"], ax["raa"], ax["elevation"], indexing="ij")
    main = np.zeros((len(bands),) + grids[0].shape + (6,))
    wvr = np.zeros((len(bands), len(wv_aot), len(ax["sza"]), len(ax["vza"]), len(ax["elevation"]),
                    len(ax["wv"]), 2))
    for ib, b in enumerate(bands):
        path, tg, td, tu, s, to3 = _toy_quantities(b, *grids, wv_ref)
        main[ib] = np.stack([tg * path, tg, td, tu, s, to3], axis=-1)
        g2 = np.meshgrid(wv_aot, ax["sza"], ax["vza"], ax["elevation"], ax["wv"], indexing="ij")
        _, tg_w, *_ = _toy_quantities(b, g2[0], g2[1], g2[2], 90.0, g2[3], g2[4])
        _, tg_r, *_ = _toy_quantities(b, g2[0], g2[1], g2[2], 90.0, g2[3], wv_ref)
        lr = np.log(tg_w / tg_r)
        wvr[ib] = np.stack([lr, lr], axis=-1)
    # optics (terrain/adjacency): the toy's own optical depths; its transmittances are exp(-k tau / mu)
    # with k = 0.5 (Rayleigh) and 0.16 (aerosol), so the rest of each column is the diffuse part
    aa, zz = np.meshgrid(ax["aot"], ax["elevation"], indexing="ij")
    optics = np.zeros((len(bands), len(ax["aot"]), len(ax["elevation"]), 4))
    for ib, b in enumerate(bands):
        lam = WAVELENGTH_UM[b]
        tau_r = np.exp(-zz / 8.0) * 0.008569 * lam ** -4 * (1 + 0.0113 * lam ** -2 + 0.00013 * lam ** -4)
        tau_a = aa * (lam / 0.55) ** -1.3
        optics[ib] = np.stack([tau_r, tau_a, np.exp(-0.5 * tau_r), np.exp(-0.16 * tau_a)], axis=-1)
    data = dict(bands=np.array(bands), wv_ref=np.array(wv_ref), ozone=np.array(0.30), aot=ax["aot"],
                sza=ax["sza"], vza=ax["vza"], raa=ax["raa"], elevation=ax["elevation"], wv=ax["wv"],
                wv_aot=wv_aot, wv_bands=np.array([b for b in bands if b in K_WV]), main=main, wv_lnratio=wvr,
                optics_S2A=optics)
    return lutmod.AtmLUT(data, "S2A", {"source": "toy table of tests/builtin/conftest.py"})


def shipped_lut_available() -> bool:
    try:
        return lutmod.table_path().exists()
    except Exception:
        return False


@pytest.fixture(scope="session")
def atm_lut() -> lutmod.AtmLUT:
    """The shipped 6S table when present, else the toy one."""
    return lutmod.load_lut("S2A") if shipped_lut_available() else toy_lut()


@pytest.fixture()
def use_lut(monkeypatch: pytest.MonkeyPatch, atm_lut: lutmod.AtmLUT) -> lutmod.AtmLUT:
    """Make the processor's ``load_lut`` return :func:`atm_lut` (whatever the mission)."""
    monkeypatch.setattr(lutmod, "load_lut", lambda mission="S2A", aerosol="continental": atm_lut)
    return atm_lut
