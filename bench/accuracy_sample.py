"""Negative surface reflectance on the bundled real sample (T56JMM, 2018-06-29), per band and setting.

No reference L2A exists for this product (docs/accuracy.md), but a surface reflectance below zero is
wrong whatever the reference: it is the atmosphere's path signal taken out of pixels that had less of
it, i.e. a sign of the pressure (surface height), aerosol or adjacency assumed. The sample is decimated
(10 m bands at ~250 m) and no DEM of its footprint is in the project's data, so the surface height is
a documented constant (see docs/accuracy.md) and the script shows the sensitivity to it.

Valid pixels: every L1C band present and above DN 10 on the output grid (the decimated 20 m bands
carry DN 5 in part of the no-data area, which the processor rightly passes through).

Run: ``.venv/bin/python bench/accuracy_sample.py`` (a few seconds per setting; prints markdown).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample" / "S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042.SAFE"
ELEVATION_KM = 0.8  # rough mean height of the sample's valid part (docs/accuracy.md)
SETTINGS = {
    "flat 0 km (default)": {},
    "flat 0 km + adjacency": {"adjacency": True},
    f"flat {ELEVATION_KM} km": {"elevation_km": ELEVATION_KM},
    f"flat {ELEVATION_KM} km + adjacency": {"elevation_km": ELEVATION_KM, "adjacency": True},
    "flat 0.4 km + adjacency": {"elevation_km": 0.4, "adjacency": True},
    "flat 1.2 km + adjacency": {"elevation_km": 1.2, "adjacency": True},
}
BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12")


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


def _valid(shape: tuple[int, int]) -> np.ndarray:
    ok = np.ones(shape, bool)
    for p in SAMPLE.glob("GRANULE/*/IMG_DATA/*_B??.jp2"):
        a = _read(p)
        iy = np.minimum(((np.arange(shape[0]) + 0.5) * a.shape[0] / shape[0]).astype(int), a.shape[0] - 1)
        ix = np.minimum(((np.arange(shape[1]) + 0.5) * a.shape[1] / shape[1]).astype(int), a.shape[1] - 1)
        ok &= a[iy[:, None], ix[None, :]] > 10
    return ok


def _image(product: Path, stem: str) -> Path:
    """The raster of ``stem`` (e.g. ``B04_20m``) in whichever format the processor wrote (JP2 or COG)."""
    res = stem.rsplit("_", 1)[1]
    return next(p for p in product.glob(f"GRANULE/*/IMG_DATA/R{res}/*_{stem}.*") if p.suffix in (".jp2", ".tif"))


def evaluate(options: dict, res: int = 20) -> dict:
    """Convert the sample with ``options``; share of valid pixels below -0.01 and below 0 per band."""
    from s2l2a.processors import get_processor
    from s2l2a.processors.base import JobSettings
    from s2l2a.safe import open_l1c

    with tempfile.TemporaryDirectory() as tmp:
        r = get_processor("builtin", options).process(open_l1c(SAMPLE), Path(tmp) / "s", JobSettings(cores=2),
                                                      Path(tmp) / "log")
        out: dict = {"aot": r.details["aot_mean"], "wv": r.details["wv_mean_gcm2"], "bands": {}}
        valid = None
        for b in BANDS:
            p = _image(r.product_dir, f"{b}_{res}m")
            boa = (_read(p).astype(float) - 1000.0) / 10000.0
            if valid is None:
                valid = _valid(boa.shape)
            v = boa[valid]
            out["bands"][b] = {"below_m001": 100.0 * float(np.mean(v < -0.01)), "below_0": 100.0 * float(np.mean(v < 0)),
                               "p1": float(np.percentile(v, 1))}
        scl = _read(_image(r.product_dir, f"SCL_{res}m"))
        out["scl"] = {int(k): int(n) for k, n in zip(*np.unique(scl[valid], return_counts=True), strict=True)}
        out["valid_pixels"] = int(valid.sum())
    return out


def main() -> int:
    results = {name: evaluate(opts) for name, opts in SETTINGS.items()}
    print(f"valid pixels at 20 m: {next(iter(results.values()))['valid_pixels']}\n")
    print("| setting | AOT | WV | " + " | ".join(BANDS) + " |")
    print("|---|---|---|" + "---|" * len(BANDS))
    for name, r in results.items():
        cells = " | ".join(f"{r['bands'][b]['below_m001']:.1f} ({r['bands'][b]['below_0']:.1f})" for b in BANDS)
        print(f"| {name} | {r['aot']:.3f} | {r['wv']:.2f} | {cells} |")
    print("\n% of valid pixels below -0.01 (below 0 in brackets), 20 m outputs")
    if "--json" in sys.argv:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
