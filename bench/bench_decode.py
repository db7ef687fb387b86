"""Benchmark: OpenJPEG decoding of one full-resolution 10 m band with GDAL's and OpenJPEG's threads.

The band: 10980 x 10980 uint16, lossless JPEG 2000 with 1024 px tiles and 6 resolution levels like
ESA's (bench_builtin.py's B04: smooth classes plus sensor noise), made once into
``$S2L2A_BENCH_CACHE`` (default ``~/.cache/s2l2a/bench``). Each case runs in its own process and
decodes the band the way the built-in processor does (windows of whole tile rows into one
buffer); ``pairs`` decodes two bands at once in two threads, as ``read_bands`` does on 2 cores.

    .venv/bin/python bench/bench_decode.py [--repeat 2]
    .venv/bin/python bench/bench_decode.py --quick     # the bundled (decimated) sample's B04: does it work?

Which JPEG 2000 drivers this GDAL has: ``gdalinfo --formats | grep -i -E "jp2|grok"``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE_B04 = next((REPO / "data" / "sample").glob("*.SAFE/GRANULE/*/IMG_DATA/*_B04.jp2"))

#: name -> (environment, bands decoded at once)
CASES = {
    "GDAL_NUM_THREADS=1": ({"GDAL_NUM_THREADS": "1", "OPJ_NUM_THREADS": "1"}, 1),
    "GDAL_NUM_THREADS=2": ({"GDAL_NUM_THREADS": "2", "OPJ_NUM_THREADS": "1"}, 1),
    "GDAL_NUM_THREADS=ALL_CPUS": ({"GDAL_NUM_THREADS": "ALL_CPUS", "OPJ_NUM_THREADS": "1"}, 1),
    "GDAL_NUM_THREADS=1, OPJ_NUM_THREADS=2": ({"GDAL_NUM_THREADS": "1", "OPJ_NUM_THREADS": "2"}, 1),
    "GDAL_NUM_THREADS=2, OPJ_NUM_THREADS=2": ({"GDAL_NUM_THREADS": "2", "OPJ_NUM_THREADS": "2"}, 1),
    "pairs: 2 bands at once, GDAL_NUM_THREADS=1 each": ({"GDAL_NUM_THREADS": "1", "OPJ_NUM_THREADS": "1"}, 2),
}


def cache_dir() -> Path:
    return Path(os.environ.get("S2L2A_BENCH_CACHE", Path.home() / ".cache" / "s2l2a" / "bench"))


def make_band(dest: Path) -> Path:
    """One full-size 10 m band encoded like ESA's (once)."""
    import rasterio
    from affine import Affine

    path = dest / "decode" / "B04_10980.jp2"
    if path.exists():
        return path
    sys.path.insert(0, str(REPO / "bench"))
    from bench_builtin import LEVELS, _scene

    n = 10980
    rng = np.random.default_rng(1)
    dn = np.array(LEVELS["B04"], np.float32)[_scene(n)]
    for r0 in range(0, n, 2048):
        dn[r0:r0 + 2048] += rng.normal(0, 25, size=dn[r0:r0 + 2048].shape).astype(np.float32)
    dn = np.clip(dn, 1, 65534).astype(np.uint16)
    dn[:, : n // 12] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.jp2")
    with rasterio.open(tmp, "w", driver="JP2OpenJPEG", width=n, height=n, count=1, dtype="uint16",
                       crs="EPSG:32756", transform=Affine(10, 0, 399960.0, 0, -10, 6700000.0), quality=100,
                       reversible="YES", blockxsize=1024, blockysize=1024, resolutions=6,
                       num_threads="ALL_CPUS") as ds:
        ds.write(dn, 1)
    os.replace(tmp, path)
    return path


def decode(path: Path) -> float:
    """The processor's read: windows of whole tile rows into one buffer; returns a checksum."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.Env(GDAL_NUM_THREADS=os.environ["GDAL_NUM_THREADS"], GDAL_CACHEMAX=256):
        with rasterio.open(path) as ds:
            h, w = ds.height, ds.width
            bh = ds.block_shapes[0][0] if 0 < ds.block_shapes[0][0] < h else h
            out = np.empty((h, w), dtype=np.uint16)
            for r0 in range(0, h, bh):
                r1 = min(h, r0 + bh)
                ds.read(1, window=Window(0, r0, w, r1 - r0), out=out[r0:r1])
    return float(out[::97, ::89].sum())


def run_case(name: str, path: Path) -> dict:
    _, at_once = CASES[name]
    t, ru0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    with ThreadPoolExecutor(at_once) as pool:
        sums = list(pool.map(decode, [path] * at_once))
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"wall": (time.perf_counter() - t) / at_once, "bands": at_once, "sum": sums[0],
            "cpu": (ru.ru_utime - ru0.ru_utime + ru.ru_stime - ru0.ru_stime) / at_once,
            "peak_mb": ru.ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=sorted(CASES))
    ap.add_argument("--path", type=Path)
    ap.add_argument("--repeat", type=int, default=2, help="runs per case; the best is shown (shared machine)")
    ap.add_argument("--quick", action="store_true", help="the bundled sample's (decimated) B04, one run")
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.path)))
        return
    path = SAMPLE_B04 if args.quick else make_band(cache_dir())
    repeat = 1 if args.quick else args.repeat
    import rasterio

    with rasterio.open(path) as ds:
        size = f"{ds.width} x {ds.height}, blocks {ds.block_shapes[0]}, overviews {ds.overviews(1)}"
    print(f"decoding {path.name} ({size}) with GDAL {rasterio.__gdal_version__} JP2OpenJPEG, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, best of {repeat}")
    print(f"{'case':<52} {'wall s/band':>11} {'CPU s/band':>10} {'peak MB':>8}")
    sums = set()
    for name, (env, _) in CASES.items():
        runs = []
        for _ in range(repeat):
            p = subprocess.run([sys.executable, __file__, "--case", name, "--path", str(path)], capture_output=True,
                               text=True, env={**os.environ, **env})
            if p.returncode != 0:
                sys.exit(f"case {name} failed:\n{p.stderr}")
            runs.append(json.loads(p.stdout))
        r = min(runs, key=lambda x: x["wall"])
        sums.add(r["sum"])
        print(f"{name:<52} {r['wall']:>11.2f} {r['cpu']:>10.2f} {r['peak_mb']:>8.0f}")
    assert len(sums) == 1, f"cases decoded different pixels: {sums}"
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
