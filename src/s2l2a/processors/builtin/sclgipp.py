"""Sen2Cor's scene-classification and DDV calibration parameters, read from the real GIPP files.

The thresholds are not re-typed in code: they come from ``data/L2A_CAL_SC_GIPP.xml`` and
``data/L2A_CAL_AC_GIPP.xml`` (Sen2Cor 2.8.0, see ``data/SOURCE.md``) so that they can be diffed
against any Sen2Cor release, or replaced by a user's own GIPP.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from defusedxml import ElementTree

DATA = resources.files("s2l2a.processors.builtin") / "data"


@dataclass(frozen=True)
class SCGipp:
    """Class codes and thresholds of Sen2Cor's scene classification."""

    classes: dict[str, int]
    thresholds: dict[str, float]

    def t(self, name: str) -> float:
        """One threshold by its GIPP name (e.g. ``T1_B04``)."""
        return self.thresholds[name]


@dataclass(frozen=True)
class ACGipp:
    """The dark-dense-vegetation parameters of Sen2Cor's aerosol retrieval."""

    swir_lower: float          # AC_Swir_Refl_Lower_Th: darkest usable B12
    swir_upper: tuple[float, ...]  # AC_Ddv_Swir_Refl_Th1..3: B12 upper limits, widened in turn
    red_swir_ratio: float      # AC_Swir_22um_Red_Refl_Ratio: rho_red = ratio * rho_B12
    blue_red_ratio: float      # AC_Red_Blue_Refl_Ratio: rho_blue = ratio * rho_red
    min_ddv_area_pct: float    # AC_Min_Ddv_Area: percent of the tile needed before widening


def _parse(path: Path | str):
    return ElementTree.fromstring(Path(str(path)).read_bytes())


@lru_cache(maxsize=4)
def load_sc_gipp(path: str | None = None) -> SCGipp:
    """Parse an ``L2A_CAL_SC_GIPP.xml`` (the packaged Sen2Cor 2.8.0 one by default)."""
    root = _parse(path or DATA / "L2A_CAL_SC_GIPP.xml")
    classes = {el.tag: int(el.text) for el in root.find(".//Classificators")}
    thresholds = {el.tag: float(el.text) for el in root.find(".//Thresholds")
                  if isinstance(el.tag, str)}
    return SCGipp(classes=classes, thresholds=thresholds)


@lru_cache(maxsize=4)
def load_ac_gipp(path: str | None = None) -> ACGipp:
    """Parse an ``L2A_CAL_AC_GIPP.xml`` (the packaged Sen2Cor 2.8.0 one by default)."""
    root = _parse(path or DATA / "L2A_CAL_AC_GIPP.xml")

    def val(tag: str) -> float:
        el = root.find(f".//{tag}")
        if el is None or el.text is None:
            raise ValueError(f"{tag} missing from L2A_CAL_AC_GIPP")
        return float(el.text)

    return ACGipp(
        swir_lower=val("AC_Swir_Refl_Lower_Th"),
        swir_upper=(val("AC_Ddv_Swir_Refl_Th1"), val("AC_Ddv_Swir_Refl_Th2"), val("AC_Ddv_Swir_Refl_Th3")),
        red_swir_ratio=val("AC_Swir_22um_Red_Refl_Ratio"),
        blue_red_ratio=val("AC_Red_Blue_Refl_Ratio"),
        min_ddv_area_pct=val("AC_Min_Ddv_Area"),
    )
