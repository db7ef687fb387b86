"""Benchmark: building an index cube of N dates of a full tile at 20 m, against reading its COGs once.

The floor is what no cube build can beat: reading every date's derived index COG (float32) and SCL
COG (uint8) once, whole, in one thread. The build reads the same files strip by strip, masks,
quantizes, writes the Zarr store, the clear count, the CSV and the plot. Both run in a child
process so their peak memory (max RSS) is measured apart. The products are synthetic derived
folders of a full tile (5490 x 5490 px at 20 m, EPSG:32633), written like ``s2l2a derive`` writes
them (DEFLATE COGs with overviews), with clouds and a no-data corner as real tiles have.

    .venv/bin/python bench/bench_cube.py --dates 4 [--workers 2] [--workdir /tmp/bench_cube]

Prints one JSON line: the floor's seconds (wall and CPU) and peak memory, and per worker count (1
and --workers) the build's, with its ratios to the floor, and the load average at the end. Each
child's clocks start after its imports. On a shared machine the CPU ratio is the steadier number.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

SIZE, RES = 5490, 20
ORIGIN = (399960.0, 5400000.0)
TILE = "33UVP"


def _make_campaign(root: Path, n: int) -> Path:
    """A campaign of ``n`` done products of one tile whose derived folders (ndvi + SCL, 20 m) exist."""
    from affine import Affine

    from s2l2a.campaign.settings import CampaignSettings
    from s2l2a.campaign.store import AttemptOutcome, CampaignStore, ProductRecord
    from s2l2a.outputs.cog import write_cog
    from s2l2a.outputs.derive import DerivedResult

    stamp = root / f".made-{n}-{SIZE}"
    if stamp.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    CampaignSettings(name="bench-cube").save(root)
    rng = np.random.default_rng(17)
    transform = Affine(RES, 0, ORIGIN[0], 0, -RES, ORIGIN[1])
    base = np.kron(rng.random((61, 61)), np.ones((90, 90)))[:SIZE, :SIZE]  # fields of 1.8 km
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    edge = cols > SIZE - 1 - rows // 3                                       # no-data corner (swath edge)
    with CampaignStore.open(root, create=True) as store:
        for i in range(n):
            d = date(2024, 4, 1) + timedelta(days=5 * i)
            name = f"S2B_MSIL2A_{d:%Y%m%d}T101559_N0510_R065_T{TILE}_{d:%Y%m%d}T131414"
            folder = root / "derived" / TILE / name
            folder.mkdir(parents=True)
            ndvi = (0.15 + 0.6 * base * np.sin(np.pi * (i + 1) / (n + 1)) + rng.normal(0, 0.02, (SIZE, SIZE)))
            ndvi = ndvi.astype(np.float32)
            clouds = np.kron(rng.random((22, 22)) < 0.25, np.ones((250, 250), dtype=bool))[:SIZE, :SIZE]
            scl = np.where(clouds, 9, np.where(base > 0.8, 5, 4)).astype(np.uint8)
            scl[edge] = 0
            ndvi[edge] = np.nan
            write_cog(folder / f"{name}_NDVI_20m.tif", ndvi, transform=transform, crs="EPSG:32633", nodata=float("nan"))
            write_cog(folder / f"{name}_SCL_20m.tif", scl, transform=transform, crs="EPSG:32633", nodata=0,
                      resampling="NEAREST")
            res = DerivedResult(product=name, source="", out_dir=str(folder), resolution=RES,
                                files={"ndvi": f"{name}_NDVI_20m.tif", "SCL": f"{name}_SCL_20m.tif"},
                                formulas={"ndvi": "(B08 - B04) / (B08 + B04)"},
                                boa_add_offset={"B04": -1000.0, "B08": -1000.0}, baseline="05.10", tile=TILE,
                                sensing_time=f"{d}T10:15:59+00:00")
            (folder / "derived.json").write_text(res.to_json())
            l1c = root / "L1C" / f"{name.replace('MSIL2A', 'MSIL1C')}.SAFE"
            l1c.mkdir(parents=True)
            [(job, _new)] = store.add_products([ProductRecord(path=l1c, name=l1c.stem, tile=TILE,
                                                              sensing_time=f"{d}T10:15:59Z", baseline="05.10")])
            store.start_attempt(job, "bench", os.getpid(), None)
            store.finish_attempt(job, AttemptOutcome("done", output_path=str(root / "L2A" / TILE / f"{name}.SAFE"),
                                                     processor="builtin", processor_version="bench"))
    stamp.write_text("ok")
    return root


def _peak_mib() -> float:
    """This process's peak resident memory (VmHWM: per address space, so not inherited from the parent
    the way a child's ru_maxrss is)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(mode: str, campaign: Path, out: Path, workers: int) -> None:
    import rasterio

    if mode == "build":  # the clock measures the work, not the interpreter importing its libraries
        import matplotlib.pyplot  # noqa: F401
        import odc.geo.xr  # noqa: F401
        import xarray  # noqa: F401
        import zarr  # noqa: F401

        from s2l2a.campaign.cubes import build_campaign_cube
        from s2l2a.outputs.cube import CubeSpec

        shutil.rmtree(out, ignore_errors=True)
    t0, c0 = time.perf_counter(), time.process_time()
    if mode == "floor":
        for tif in sorted((campaign / "derived").rglob("*_20m.tif")):
            with rasterio.open(tif) as ds:
                ds.read(1)
    else:
        build_campaign_cube(campaign, out, CubeSpec(resolution=RES, workers=workers))
    print(json.dumps({"seconds": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "peak_mib": _peak_mib()}))


def _run_child(mode: str, campaign: Path, out: Path, workers: int) -> tuple[float, float, float]:
    """(seconds, CPU seconds of all its threads, peak resident MiB) of one child run."""
    p = subprocess.run([sys.executable, __file__, "--child", mode, "--workdir", str(campaign.parent),
                        "--workers", str(workers)], stdout=subprocess.PIPE, text=True, check=False)
    if p.returncode != 0:
        raise SystemExit(f"{mode} child failed ({p.returncode})")
    got = json.loads(p.stdout.strip().splitlines()[-1])
    return got["seconds"], got["cpu_s"], got["peak_mib"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dates", type=int, default=4)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench_cube"))
    ap.add_argument("--child", choices=["floor", "build"])
    ap.add_argument("--quick", action="store_true", help="2 dates of a 1098 px tile: does it work?")
    a = ap.parse_args()
    if a.quick:
        global SIZE
        SIZE, a.dates = 1098, 2
    campaign, out = a.workdir / "campaign", a.workdir / "cube.zarr"
    if a.child:
        _child(a.child, campaign, out, a.workers)
        return
    t0 = time.perf_counter()
    _make_campaign(campaign, a.dates)
    made = time.perf_counter() - t0
    _run_child("floor", campaign, out, 1)        # warm the page cache: both then read from memory
    floor_s, floor_cpu, floor_mb = _run_child("floor", campaign, out, 1)
    runs = {}
    for w in sorted({1, a.workers}):
        build_s, build_cpu, build_mb = _run_child("build", campaign, out, w)
        runs[f"workers_{w}"] = {"build_s": round(build_s, 2), "ratio": round(build_s / floor_s, 2),
                                "build_cpu_s": round(build_cpu, 2), "cpu_ratio": round(build_cpu / floor_cpu, 2),
                                "build_peak_mib": round(build_mb)}
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 2**20
    print(json.dumps({"dates": a.dates, "pixels": f"{SIZE}x{SIZE}", "resolution_m": RES,
                      "floor_s": round(floor_s, 2), "floor_cpu_s": round(floor_cpu, 2),
                      "floor_peak_mib": round(floor_mb), **runs, "load_avg_1m": round(os.getloadavg()[0], 1),
                      "cube_mib": round(size, 1), "setup_s": round(made, 1)}))


if __name__ == "__main__":
    main()
