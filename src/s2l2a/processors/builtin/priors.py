"""Atmospheric priors from the product's own AUX_DATA (ECMWF / CAMS GRIB read through GDAL).

They are fallbacks: water vapour and AOT are retrieved from the image where it can be done, and
the priors (or, without AUX_DATA, the documented defaults below) fill what the image cannot say.
Scene means are enough: the ECMWF grid is ~12 km and covers the tile with a few nodes.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: defaults without AUX_DATA: mid-latitude values (6S mid-latitude summer has 2.9 g/cm2 water vapour,
#: 319 DU ozone; Sen2Cor's GIPP uses 331 DU), standard sea-level pressure, and a clean-continental AOT
DEFAULT_OZONE_DU = 331.0
DEFAULT_WV_GCM2 = 2.0
DEFAULT_PRESSURE_HPA = 1013.25
DEFAULT_AOT550 = 0.12
KG_M2_PER_DU = 2.1415e-5   # 1 Dobson unit of ozone in kg/m2
KG_M2_PER_GCM2 = 10.0      # 1 g/cm2 of precipitable water = 10 kg/m2


@dataclass
class AuxPriors:
    """Scene-mean priors with where each came from ("AUX_ECMWFT", "AUX_CAMSFO" or "default")."""

    ozone_du: float = DEFAULT_OZONE_DU
    wv_gcm2: float = DEFAULT_WV_GCM2
    pressure_hpa: float = DEFAULT_PRESSURE_HPA
    aot550: float = DEFAULT_AOT550
    sources: dict[str, str] = field(default_factory=lambda: {
        "ozone": "default", "wv": "default", "pressure": "default", "aot": "default"})


def _grib_fields(path: Path) -> dict[str, float]:
    """Scene mean of every GRIB message, keyed by its upper-cased GRIB element and comment."""
    import rasterio

    out: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path) as ds:
            for i in range(1, ds.count + 1):
                tags = ds.tags(i)
                data = ds.read(i, masked=True).astype(np.float64)
                if data.count() == 0:
                    continue
                value = float(data.mean())
                for key in (tags.get("GRIB_ELEMENT", ""), tags.get("GRIB_COMMENT", "")):
                    if key:
                        out.setdefault(key.upper(), value)
    return out


def _pick(fields: dict[str, float], *needles: str) -> float | None:
    for key, value in fields.items():
        if any(n in key for n in needles):
            return value
    return None


def read_priors(aux_files: dict[str, Path] | None) -> AuxPriors:
    """Priors from AUX_ECMWFT (ozone, total column water vapour, pressure) and AUX_CAMSFO (AOD550)."""
    pri = AuxPriors()
    for name, path in (aux_files or {}).items():
        try:
            fields = _grib_fields(Path(path))
        except Exception as exc:  # a broken aux file must not stop the conversion: it is a fallback
            log.warning("cannot read %s (%s): using defaults", path, exc)
            continue
        tco3 = _pick(fields, "TCO3", "GTCO3", "OZONE")
        tcwv = _pick(fields, "TCWV", "PWC", "PRECIPITABLE WATER", "TOTAL COLUMN WATER VAPOUR")
        msl = _pick(fields, "MSL", "PRMSL", "MEAN SEA LEVEL PRESSURE")
        aod = _pick(fields, "AOD550", "TOTAL AEROSOL OPTICAL DEPTH AT 550")
        if tco3 is not None and 100.0 < tco3 / KG_M2_PER_DU < 700.0:
            pri.ozone_du, pri.sources["ozone"] = tco3 / KG_M2_PER_DU, name
        if tcwv is not None and 0.0 <= tcwv < 100.0:
            pri.wv_gcm2, pri.sources["wv"] = tcwv / KG_M2_PER_GCM2, name
        if msl is not None and 50000.0 < msl < 110000.0:
            pri.pressure_hpa, pri.sources["pressure"] = msl / 100.0, name
        if aod is not None and 0.0 <= aod < 5.0:
            pri.aot550, pri.sources["aot"] = aod, name
    return pri
