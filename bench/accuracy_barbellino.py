"""Built-in processor against ESA's/Sen2Cor's L2A on the real Barbellino pixel pair (docs/accuracy.md).

The crop (24 x 42 px, 10 m, Sentinel-2A, 2017-07-03, relative orbit 22, Italian Alps) comes without
metadata, so the scene facts the processor would read from MTD files are set here, each from an
outside source and never fitted to the reference BOA:

* sun angles: computed for 2017-07-03 10:10 UTC (orbit 22's descending pass over the Alps) at the
  crop's centre (NOAA solar-position equations);
* view angles: unknown inside the swath; nadir-ish 5 deg and a 90 deg relative azimuth, with the
  sensitivity to that guess reported (vza 0-10 deg, raa 0-180 deg);
* surface elevation: 2.1 km (Lago del Barbellino, 2128 m a.s.l.); ozone 331 DU (Sen2Cor's default);
* B8A is absent from both crops: B08 stands in for it in the classification and the water vapour.

Run: ``.venv/bin/python bench/accuracy_barbellino.py`` (prints markdown tables).
"""

from __future__ import annotations

import math
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import rasterio

from s2l2a.processors.builtin import scl as sclmod
from s2l2a.processors.builtin.aerosol import retrieve_aot
from s2l2a.processors.builtin.geometry import CellGrid, Geometry
from s2l2a.processors.builtin.invert import boa_to_toa, toa_to_boa
from s2l2a.processors.builtin.lut import load_lut
from s2l2a.processors.builtin.pipeline import Atmosphere
from s2l2a.processors.builtin.priors import DEFAULT_AOT550, DEFAULT_OZONE_DU, DEFAULT_WV_GCM2
from s2l2a.processors.builtin.radiometry import resample_mean
from s2l2a.processors.builtin.watervapour import retrieve_wv

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "builtin" / "barbellino"
TOA_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12")
BOA_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B11", "B12")
SENSING = datetime(2017, 7, 3, 10, 10, tzinfo=UTC)
LAT, LON = 46.07, 10.04          # crop centre (EPSG:32632 580680, 5101910)
ELEVATION_KM = 2.1
VZA, RAA = 5.0, 90.0
CLEAR = (4, 5, 6)                # ESA SCL classes whose BOA is a surface reflectance worth comparing


def sun_position(t: datetime, lat: float, lon: float) -> tuple[float, float]:
    """(zenith, azimuth clockwise from north) in degrees, NOAA's low-precision equations (~0.1 deg)."""
    doy = t.timetuple().tm_yday
    hour = t.hour + t.minute / 60 + t.second / 3600
    g = 2 * math.pi / 365 * (doy - 1 + (hour - 12) / 24)
    eqt = 229.18 * (0.000075 + 0.001868 * math.cos(g) - 0.032077 * math.sin(g)
                    - 0.014615 * math.cos(2 * g) - 0.040849 * math.sin(2 * g))
    decl = (0.006918 - 0.399912 * math.cos(g) + 0.070257 * math.sin(g) - 0.006758 * math.cos(2 * g)
            + 0.000907 * math.sin(2 * g) - 0.002697 * math.cos(3 * g) + 0.00148 * math.sin(3 * g))
    tst = hour * 60 + eqt + 4 * lon
    ha = math.radians(tst / 4 - 180)
    la = math.radians(lat)
    cz = math.sin(la) * math.sin(decl) + math.cos(la) * math.cos(decl) * math.cos(ha)
    zen = math.acos(max(-1.0, min(1.0, cz)))
    az = math.degrees(math.atan2(math.sin(ha), math.cos(ha) * math.sin(la) - math.tan(decl) * math.cos(la))) + 180
    return math.degrees(zen), az % 360


def _read(name: str) -> tuple[np.ndarray, float | None]:
    with rasterio.open(DATA / name) as ds:
        return ds.read().astype(np.float64), ds.nodata


def evaluate(lut=None, vza: float = VZA, raa: float = RAA, elevation_km: float = ELEVATION_KM,
             adjacency: bool = False) -> dict:
    """Run the built-in steps on the crop and compare with the reference BOA and SCL.

    ``adjacency``: the processor's adjacency correction, with the crop as the only surroundings known
    (the environment beyond it counts as the crop's weighted mean), and its retrieval rounds.
    """
    lut = lut or load_lut("S2A")
    toa_raw, nd = _read("S2A1C_20170703_022_Barbellino_TOA_10.tif")
    boa_raw, nd2 = _read("S2A2A_20170703_022_Barbellino_BOA_10.tif")
    scl_ref, _ = _read("S2A2A_20170703_022_Barbellino_SCL_10.tif")
    scl_ref = scl_ref[0].astype(np.uint8)
    valid = (toa_raw != nd).all(axis=0) & (boa_raw != nd2).all(axis=0)
    toa = {b: np.where(valid, toa_raw[i] / 10000.0, np.nan).astype(np.float32) for i, b in enumerate(TOA_BANDS)}
    toa["B8A"] = toa["B08"]  # absent from the crop
    sza, saa = sun_position(SENSING, LAT, LON)

    # scene classification at 20 m, like Sen2Cor's SCL_20m
    toa20 = {b: resample_mean(toa[b], scl_ref.shape) for b in sclmod.SCL_BANDS}
    ours20, *_ = sclmod.classify(toa20)
    sclmod.clean_clouds(ours20, 20.0)  # the processor's default (no morphology)
    ref_valid = scl_ref > 0
    agree = float((ours20[ref_valid] == scl_ref[ref_valid]).mean())
    confusion = {}
    for c in np.unique(scl_ref[ref_valid]):
        m = ref_valid & (scl_ref == c)
        confusion[int(c)] = {int(k): int(v) for k, v in zip(*np.unique(ours20[m], return_counts=True), strict=True)}

    # atmosphere: one cell, DDV aerosol and B9/B8 water vapour as the processor does at 60 m
    cells = CellGrid(1, 1)
    one = np.ones((1, 1))
    geom = Geometry(sza=sza * one, saa=saa * one, vza={b: vza * one for b in BOA_BANDS + ("B8A",)},
                    raa={b: raa * one for b in BOA_BANDS + ("B8A",)})
    atm = Atmosphere(lut, geom, elevation_km, DEFAULT_OZONE_DU)
    ours10, *_ = sclmod.classify({b: toa[b] for b in sclmod.SCL_BANDS})
    usable = np.isin(ours10, (sclmod.VEG, sclmod.NOT_VEG))
    toa_b9 = dict(toa)
    toa_b9["B8A"] = toa["B08"]
    wv = retrieve_wv(toa_b9, usable, cells, atm.coeffs, toa_to_boa, boa_to_toa, DEFAULT_AOT550 * one,
                     DEFAULT_WV_GCM2, "default")
    aot = retrieve_aot(toa, usable, cells, atm.coeffs, toa_to_boa, wv.cells, DEFAULT_AOT550, "default")
    wv = retrieve_wv(toa_b9, usable, cells, atm.coeffs, toa_to_boa, boa_to_toa, aot.cells,
                     DEFAULT_WV_GCM2, "default")
    clear = valid & np.isin(np.repeat(np.repeat(scl_ref, 2, 0), 2, 1)[:valid.shape[0], :valid.shape[1]], CLEAR)
    model = None
    if adjacency:
        from s2l2a.processors.builtin.correction import (
            RETRIEVAL_BANDS,
            RETRIEVAL_ROUNDS,
            build_model,
            flat_equivalent_toa,
        )

        surround = valid & ~np.isin(ours10, (sclmod.NO_DATA, sclmod.SATURATED, sclmod.CLD_MED, sclmod.CLD_HIGH))
        ozone = DEFAULT_OZONE_DU / 1000.0
        nan0 = {b: np.where(valid, v, np.nan).astype(np.float32) for b, v in toa_b9.items()}

        def model_for(bands: list[str]):
            return build_model(lut, geom, cells, bands, aot.cells, wv.cells, 0.0, ozone, None, elevation_km,
                               True, nan0, surround, 10.0)

        for _ in range(RETRIEVAL_ROUNDS):
            flat = flat_equivalent_toa(model_for([b for b in RETRIEVAL_BANDS if b in nan0]), nan0, None)
            prev = aot.cells, wv.cells
            wv = retrieve_wv(flat, usable, cells, atm.coeffs, toa_to_boa, boa_to_toa, aot.cells,
                             DEFAULT_WV_GCM2, "default")
            aot = retrieve_aot(flat, usable, cells, atm.coeffs, toa_to_boa, wv.cells, DEFAULT_AOT550, "default")
            aot.cells, wv.cells = 0.5 * (prev[0] + aot.cells), 0.5 * (prev[1] + wv.cells)
        model = model_for(list(BOA_BANDS))
    rows = []
    for i, b in enumerate(BOA_BANDS):
        c = atm.cell_coefficients(b, aot.cells, wv.cells)
        if model is not None:
            from s2l2a.processors.builtin.invert import surface_reflectance

            shape = toa[b].shape
            env = model.env_grid.upsample(model.env[b], shape)
            ours = surface_reflectance(toa[b], model.stack.pixels(b, shape, 0, shape[0], None), -1.0, 1.0, env)
        else:
            ours = toa_to_boa(toa[b], type(c)(*(np.asarray(x).reshape(()) for x in (
                c.path_reflectance, c.t_gas, c.t_down, c.t_up, c.s_albedo))))
        ref = boa_raw[i] / 10000.0
        d = (ours - ref)[clear]
        rows.append({"band": b, "bias": float(np.mean(d)), "rmse": float(np.sqrt(np.mean(d ** 2))),
                     "ref_mean": float(np.mean(ref[clear])), "toa_mean": float(np.mean(toa[b][clear]))})
    return {"sza": sza, "saa": saa, "aot": float(aot.cells[0, 0]), "aot_source": aot.source,
            "ddv_pixels": aot.details.get("ddv_pixels"), "wv": float(wv.cells[0, 0]), "wv_source": wv.source,
            "scl_agreement": agree, "scl_pixels": int(ref_valid.sum()), "confusion": confusion,
            "clear_pixels": int(clear.sum()), "bands": rows, "lut": getattr(lut, "provenance", {})}


def main() -> int:
    r = evaluate()
    print(f"sun zenith {r['sza']:.1f} deg, azimuth {r['saa']:.1f} deg; AOT550 {r['aot']:.3f} ({r['aot_source']}, "
          f"{r['ddv_pixels']} DDV px); WV {r['wv']:.2f} g/cm2 ({r['wv_source']}); clear pixels {r['clear_pixels']}")
    print("\n| band | TOA mean | ref BOA mean | bias (ours - ref) | RMSE |\n|---|---|---|---|---|")
    for row in r["bands"]:
        print(f"| {row['band']} | {row['toa_mean']:.4f} | {row['ref_mean']:.4f} | {row['bias']:+.4f} | {row['rmse']:.4f} |")
    print(f"\nSCL agreement at 20 m: {100 * r['scl_agreement']:.1f} % of {r['scl_pixels']} pixels")
    print("confusion (reference class: {our class: pixels}):")
    for k, v in r["confusion"].items():
        print(f"  {k}: {v}")
    print("\nsensitivity to the unknown view geometry (RMSE over bands, mean):")
    for vza, raa in ((0.0, 90.0), (10.0, 90.0), (5.0, 0.0), (5.0, 180.0)):
        s = evaluate(vza=vza, raa=raa)
        print(f"  vza {vza:4.1f} raa {raa:5.1f}: AOT {s['aot']:.3f}, mean |bias| "
              f"{np.mean([abs(x['bias']) for x in s['bands']]):.4f}, mean RMSE {np.mean([x['rmse'] for x in s['bands']]):.4f}")
    s = evaluate(elevation_km=0.0)
    print(f"  sea-level surface instead of 2.1 km: AOT {s['aot']:.3f}, mean |bias| "
          f"{np.mean([abs(x['bias']) for x in s['bands']]):.4f}")
    a = evaluate(adjacency=True)
    print(f"\nwith the adjacency correction (the crop as its only surroundings): AOT {a['aot']:.3f}, WV {a['wv']:.2f}")
    print("| band | bias (ours - ref) | RMSE |\n|---|---|---|")
    for row in a["bands"]:
        print(f"| {row['band']} | {row['bias']:+.4f} | {row['rmse']:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
