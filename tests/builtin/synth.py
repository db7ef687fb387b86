"""Synthetic L1C products with known truth, built on the real sample's metadata.

The metadata (MTD_MSIL1C.xml, MTD_TL.xml with its real angle grids, AUX_ECMWFT) is the bundled real
sample's; the pixels are made here: a surface of known classes and BOA spectra under a known AOT
field and water vapour, forwarded to TOA with the look-up table's own ``boa_to_toa``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from s2l2a.processors.builtin.geometry import geometry_on_grid
from s2l2a.processors.builtin.invert import boa_to_toa
from s2l2a.processors.builtin.pipeline import NATIVE
from s2l2a.processors.builtin.priors import read_priors
from s2l2a.safe import open_l1c

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample" / "S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042.SAFE"
BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")

#: BOA spectra per class (B10 is not a surface band: TOA set directly)
SPECTRA = {
    "vegetation": (0.012, 0.011, 0.045, 0.022, 0.07, 0.20, 0.28, 0.32, 0.33, 0.33, 0.0, 0.12, 0.044),
    "soil": (0.08, 0.09, 0.12, 0.16, 0.18, 0.20, 0.21, 0.23, 0.24, 0.24, 0.0, 0.33, 0.28),
    "water": (0.05, 0.045, 0.035, 0.02, 0.015, 0.01, 0.008, 0.006, 0.005, 0.005, 0.0, 0.003, 0.002),
    "snow": (0.85, 0.85, 0.83, 0.80, 0.78, 0.75, 0.72, 0.68, 0.66, 0.60, 0.0, 0.08, 0.05),
}
CLOUD_TOA = (0.52, 0.50, 0.49, 0.48, 0.48, 0.49, 0.49, 0.50, 0.50, 0.36, 0.02, 0.36, 0.26)
#: rows (fraction of the tile, top to bottom) of each class; clouds at the bottom so that their
#: shadows (cast away from a NNE sun) fall outside the image
LAYOUT = (("vegetation", 0.0, 0.40), ("soil", 0.40, 0.55), ("water", 0.55, 0.70), ("snow", 0.70, 0.85),
          ("cloud", 0.85, 1.0))
SCL_TRUTH = {"vegetation": 4, "soil": 5, "water": 6, "snow": 11, "cloud": 9}


@dataclass
class Truth:
    """What the synthetic product was made of."""

    n10: int
    wv: float
    aot_min: float
    aot_max: float

    def classes(self, shape: tuple[int, int]) -> np.ndarray:
        """Class name per pixel of a grid of ``shape`` (object array)."""
        rows = (np.arange(shape[0]) + 0.5) / shape[0]
        out = np.empty(shape, dtype=object)
        for name, a, b in LAYOUT:
            out[(rows >= a) & (rows < b), :] = name
        return out

    def aot(self, shape: tuple[int, int]) -> np.ndarray:
        """AOT550 grows linearly from west to east."""
        cols = (np.arange(shape[1]) + 0.5) / shape[1]
        return np.broadcast_to(self.aot_min + (self.aot_max - self.aot_min) * cols, shape).copy()

    def boa(self, band: str, shape: tuple[int, int]) -> np.ndarray:
        cls = self.classes(shape)
        out = np.full(shape, np.nan)
        i = BANDS.index(band)
        for name, spec in SPECTRA.items():
            out[cls == name] = spec[i]
        return out


def make_product(dest: Path, lut, n10: int = 360, aot=(0.08, 0.32), wv: float = 1.6,
                 radio_offset: float = 0.0) -> tuple[Path, Truth]:
    """Write a synthetic L1C SAFE under ``dest`` (JPEG 2000 bands, ``n10`` px at the 10 m-class grid)."""
    safe = dest / SAMPLE.name
    shutil.copytree(SAMPLE, safe, ignore=shutil.ignore_patterns("*_B??.jp2", "QI_DATA", "*.gml"))
    if radio_offset:
        mtd = safe / "MTD_MSIL1C.xml"
        text = mtd.read_text()
        offs = "".join(f'<RADIO_ADD_OFFSET band_id="{i}">{radio_offset:.0f}</RADIO_ADD_OFFSET>'
                       for i in range(13))
        text = text.replace("</Reflectance_Conversion>",
                            f"</Reflectance_Conversion><Radiometric_Offset_List>{offs}</Radiometric_Offset_List>")
        mtd.write_text(text)
    product = open_l1c(SAMPLE)
    granule = product.granules[0]
    gdir = safe / "GRANULE" / granule.granule_id / "IMG_DATA"
    pri = read_priors(granule.aux_files)
    truth = Truth(n10, wv, *aot)
    for band in BANDS:
        n = n10 * 10 // NATIVE[band]
        shape = (n, n)
        geom = geometry_on_grid(granule.angles, shape, granule.mean_sun_zenith, granule.mean_sun_azimuth)
        vza, raa = geom.band(band)
        cls = truth.classes(shape)
        if band == "B10":
            toa = np.full(shape, 0.0015)
        else:
            c = lut.coefficients(band, truth.aot(shape), geom.sza, vza, raa, 0.0, wv, ozone=pri.ozone_du / 1000)
            toa = boa_to_toa(truth.boa(band, shape).astype(np.float32), c).astype(np.float64)
        toa[cls == "cloud"] = CLOUD_TOA[BANDS.index(band)]
        dn = np.clip(np.rint(toa * 10000 - radio_offset), 1, 65534).astype(np.uint16)
        px = 109800.0 / n
        with rasterio.open(gdir / f"T56JMM_20180629T000241_{band}.jp2", "w", driver="JP2OpenJPEG", width=n,
                           height=n, count=1, dtype="uint16", crs=f"EPSG:{granule.epsg}",
                           transform=Affine(px, 0, 399960.0, 0, -px, 6700000.0), quality=100,
                           reversible="YES", **({"blockxsize": 1024, "blockysize": 1024} if n > 1024 else {})) as ds:
            ds.write(dn, 1)
    return safe, truth
