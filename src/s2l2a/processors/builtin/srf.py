"""Sentinel-2 MSI spectral response functions (SRFs) used to band-integrate the 6S simulations.

The SRFs come from Py6S (``PredefinedWavelengths.S2A_MSI_*`` / ``S2B_MSI_*``), which resampled ESA's
published Sentinel-2A/2B spectral responses to 6S's 2.5 nm filter grid. Py6S ships no Sentinel-2C
responses, so S2C uses the S2B responses as a stand-in (documented in docs/lut.md); the three MSIs were
built to the same band specification and differ by a few nanometres at most.

B10 (1375 nm cirrus band) is not part of the table: the surface is not visible through the water-vapour
absorption at 1375 nm and no L2A product carries a surface reflectance for it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Bands the look-up table covers (every L1C band except the cirrus band B10).
LUT_BANDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12",
)

#: Missions with their own responses, and the stand-in for missions without published ones in Py6S.
SRF_STAND_IN: dict[str, str] = {"S2A": "S2A", "S2B": "S2B", "S2C": "S2B"}

SRF_SOURCE = (
    "Py6S PredefinedWavelengths S2A_MSI_* / S2B_MSI_* (ESA Sentinel-2A/2B spectral responses "
    "resampled to 2.5 nm); S2C uses the S2B responses as stand-in"
)


def srf_mission(mission: str) -> str:
    """Mission whose responses are used for ``mission`` (S2C -> S2B); raises ValueError if unknown."""
    key = mission.upper()
    if key not in SRF_STAND_IN:
        raise ValueError(f"unknown Sentinel-2 mission {mission!r}; expected one of {sorted(SRF_STAND_IN)}")
    return SRF_STAND_IN[key]


def _py6s_name(band: str, mission: str) -> str:
    if band not in LUT_BANDS:
        raise ValueError(f"band {band!r} is not in the look-up table (bands: {', '.join(LUT_BANDS)})")
    return f"{srf_mission(mission)}_MSI_{band[1:]}"


def srf(band: str, mission: str = "S2A") -> tuple[np.ndarray, np.ndarray]:
    """Return (wavelength_um, response) on the 2.5 nm grid for one band; needs Py6S (extra ``lutgen``)."""
    from Py6S import PredefinedWavelengths

    _, start, end, values = getattr(PredefinedWavelengths, _py6s_name(band, mission))
    values = np.asarray(values, dtype=float)
    wl = start + 0.0025 * np.arange(values.size)
    return wl, values


def sixs_wavelength(band: str, mission: str = "S2A") -> Any:
    """The Py6S ``Wavelength`` object that makes 6S integrate over this band's response."""
    from Py6S import PredefinedWavelengths, Wavelength

    return Wavelength(getattr(PredefinedWavelengths, _py6s_name(band, mission)))
