"""Make tests/data/builtin_lut/forward_fixture.json ONCE with direct 6S forward runs (not a test).

For each point (a table node, or an off-node geometry/atmosphere) and band, 6S simulates the apparent
(TOA) reflectance of Lambertian surfaces of several reflectances. The acceptance test inverts these
TOA values with the shipped table and compares with the surface reflectance 6S was given.

    .venv/bin/python tests/builtin_lut/make_forward_fixture.py [--jobs 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
from pathlib import Path

import numpy as np

from s2l2a.processors.builtin.lutgen import OZONE_CM_ATM, Task, run_6s
from s2l2a.processors.builtin.srf import LUT_BANDS

OUT = Path(__file__).resolve().parents[1] / "data" / "builtin_lut" / "forward_fixture.json"
RHOS_NODE = (0.03, 0.15, 0.5)
RHOS_OFF = (0.05, 0.3)
# Exact nodes of the shipped (coarse) grid, also of its water-vapour table (wv at the reference 2.0,
# or aot 0 and raa 90 off nadir for wv != reference).
NODES = [
    # mission, aot, sza, vza, raa, elevation_km, wv
    ("S2A", 0.2, 45.0, 12.0, 90.0, 0.0, 2.0),
    ("S2A", 0.8, 70.0, 12.0, 180.0, 3.5, 2.0),
    ("S2A", 0.0, 60.0, 0.0, 0.0, 0.0, 5.5),
    ("S2A", 0.4, 25.0, 12.0, 0.0, 0.0, 2.0),
    ("S2A", 0.0, 25.0, 12.0, 90.0, 3.5, 1.0),
]


def off_node_points(n: int = 8, seed: int = 20261125) -> list[tuple]:
    """Points spread over Sentinel-2's range, none on a node; the last two use S2B responses.

    Sun zenith starts at 18 deg: with the 10:30 descending node the sun is never closer to the zenith
    (about 21 deg at the subsolar latitude), so the near-hot-spot geometries of SZA ~ VZA < 12 deg,
    where the path reflectance peaks sharply, do not occur in Sentinel-2 data.
    """
    rng = np.random.default_rng(seed)
    pts = []
    for i in range(n):
        pts.append((
            "S2B" if i >= n - 2 else "S2A",
            round(float(rng.uniform(0.02, 0.75)), 3),
            round(float(rng.uniform(18.0, 68.0)), 2),
            round(float(rng.uniform(1.0, 11.5)), 2),
            round(float(rng.uniform(5.0, 175.0)), 1),
            round(float(rng.uniform(0.05, 3.3)), 2),
            round(float(rng.uniform(0.4, 5.2)), 2),
        ))
    return pts


def _one(args: tuple) -> dict:
    kind, (mission, aot, sza, vza, raa, z, wv), band = args
    task = Task(mission, band, aot, sza, vza, raa, z, wv)
    rhos = RHOS_NODE if kind == "node" else RHOS_OFF
    toa = [run_6s(task, rho)["rho_toa"] for rho in rhos]
    return {"kind": kind, "mission": mission, "band": band, "aot": aot, "sza": sza, "vza": vza,
            "raa": raa, "elevation_km": z, "wv": wv, "rho": list(rhos), "rho_toa": toa}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--kinds", default="node,off", help="which cases to (re)make; others are kept")
    args = p.parse_args()
    kinds = set(args.kinds.split(","))
    kept = [c for c in json.loads(OUT.read_text())["cases"] if c["kind"] not in kinds] if OUT.exists() else []
    work = [("node", pt, b) for pt in NODES for b in LUT_BANDS] if "node" in kinds else []
    work += [("off", pt, b) for pt in off_node_points() for b in LUT_BANDS] if "off" in kinds else []
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        cases = kept + pool.map(_one, work, chunksize=1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "about": "6S V1.1 apparent reflectance of Lambertian surfaces (continental aerosol, "
                 f"ozone {OZONE_CM_ATM} cm-atm, wv = column above surface g/cm2); made by "
                 "tests/builtin_lut/make_forward_fixture.py",
        "created_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cases": cases,
    }
    OUT.write_text(json.dumps(doc, indent=0) + "\n")
    print(OUT, len(cases))


if __name__ == "__main__":
    main()
