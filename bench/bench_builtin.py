"""Benchmark of the built-in processor on a full-size synthetic tile, against the I/O floor.

The tile: the bundled sample's real metadata (MTD_MSIL1C/MTD_TL/AUX_ECMWFT, so real angles) with 13
synthetic bands at full size (10980 / 5490 / 1830 px) encoded like ESA's: lossless JPEG 2000, 1024 px
tiles, 6 resolution levels. It is generated once into a cache folder outside git
(``$S2L2A_BENCH_CACHE``, default ``~/.cache/s2l2a/bench``; ~1 GB, several minutes on 2 cores).

Each measurement runs in its own subprocess that reports its own wall time, CPU time (all threads)
and peak RSS:

* floor/decode: just decode every band (tile-row aligned windows, as the processor reads them);
* floor/encode: just encode the outputs the processor writes (same files, sizes, format and
  settings), from already decoded data;
* conversion: ``BuiltinProcessor.process`` on the tile;
* conversion with a DEM (``--dem``): the same with ``[builtin] dem`` set (terrain and adjacency on).

The DEM (``--dem`` without a path): there is no real DEM of T56JMM in ../shared/realdata, so a
**synthetic** one is made once next to the tile (``dem_synthetic.tif``): a seeded fractal surface
(power spectrum ~ k^-4, wavelengths >= 1.2 km) scaled to 0-1200 m, in EPSG:4326 at 3 arc-seconds
like the Copernicus 90 m tiles ``s2l2a dem`` fetches, so the processor reprojects it as it would a
real one. It measures the cost of the terrain path, not its accuracy.

Targets (issue 3, memory from issue 16): conversion <= 1.5 x (decode + encode floor), peak memory <= 1.5 GB. Sen2Cor reference
on the lab's cluster: ~30 min and ~4 GB per tile.

Run: ``nice .venv/bin/python bench/bench_builtin.py [--cores 2] [--format COG|JP2] [--dem [PATH]]``;
``--quick`` runs the same steps on the bundled (decimated) sample instead: does it work?
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from s2l2a.processors.builtin.formats import DEFAULT_FORMAT

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample" / "S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042.SAFE"
NATIVE = {"B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20, "B08": 10,
          "B8A": 20, "B09": 60, "B10": 60, "B11": 20, "B12": 20}
#: typical TOA x 10000 of vegetation / soil / water / cloud per band, for a plausible texture
LEVELS = {"B01": (1300, 1500, 1200, 5000), "B02": (1000, 1300, 900, 5000), "B03": (800, 1400, 700, 4900),
          "B04": (500, 1700, 400, 4800), "B05": (900, 1900, 300, 4800), "B06": (2200, 2000, 200, 4900),
          "B07": (2800, 2100, 150, 4900), "B08": (3100, 2300, 120, 5000), "B8A": (3300, 2400, 100, 5000),
          "B09": (1200, 900, 50, 3600), "B10": (15, 20, 10, 200), "B11": (1700, 3200, 60, 3600),
          "B12": (800, 2800, 40, 2600)}


def cache_dir() -> Path:
    return Path(os.environ.get("S2L2A_BENCH_CACHE", Path.home() / ".cache" / "s2l2a" / "bench"))


def _scene(n: int, seed: int = 7) -> np.ndarray:
    """Class map (0 veg, 1 soil, 2 water, 3 cloud) from smooth noise, the same for every resolution."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    base = ndimage.zoom(ndimage.gaussian_filter(rng.random((46, 46)), 1.5), 1830 / 46, order=1)[:1830, :1830]
    q = np.quantile(base, [0.55, 0.8, 0.9])
    cls = np.digitize(base, q).astype(np.uint8)
    f = n // 1830
    return np.repeat(np.repeat(cls, f, axis=0), f, axis=1) if f > 1 else cls


def make_tile(dest: Path) -> Path:
    """Write the full-size synthetic L1C (once; reused when complete)."""
    import rasterio
    from affine import Affine

    safe = dest / SAMPLE.name
    done = dest / "COMPLETE"
    if done.exists():
        return safe
    if safe.exists():
        shutil.rmtree(safe)
    shutil.copytree(SAMPLE, safe, ignore=shutil.ignore_patterns("*.jp2", "*.gml"))
    img = next(safe.glob("GRANULE/*/IMG_DATA"))
    rng = np.random.default_rng(1)
    for band, res in NATIVE.items():
        n = 109800 // res
        cls = _scene(n)
        lv = np.array(LEVELS[band], np.float32)
        dn = lv[cls]
        for r0 in range(0, n, 2048):  # sensor-like noise, in blocks to bound memory
            dn[r0:r0 + 2048] += rng.normal(0, 25, size=dn[r0:r0 + 2048].shape).astype(np.float32)
        dn = np.clip(dn, 1, 65534).astype(np.uint16)
        dn[:, : n // 12] = 0  # a swath edge of no data, like real tiles
        t0 = time.time()
        with rasterio.open(img / f"T56JMM_20180629T000241_{band}.jp2", "w", driver="JP2OpenJPEG", width=n,
                           height=n, count=1, dtype="uint16", crs="EPSG:32756",
                           transform=Affine(res, 0, 399960.0, 0, -res, 6700000.0), quality=100,
                           reversible="YES", blockxsize=1024, blockysize=1024, resolutions=6 if res == 10 else 5,
                           num_threads="ALL_CPUS") as ds:
            ds.write(dn, 1)
        print(f"  generated {band} ({n} px) in {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
        del dn, cls
    tci = img / "T56JMM_20180629T000241_TCI.jp2"
    shutil.copy2(next(SAMPLE.glob("GRANULE/*/IMG_DATA/*_TCI.jp2")), tci)  # not read by the processor
    done.write_text("ok\n")
    return safe


def make_dem(dest: Path, relief_m: float = 1200.0, seed: int = 11) -> Path:
    """A synthetic DEM covering the tile (once; reused): see the module docstring."""
    import rasterio
    from affine import Affine
    from rasterio.warp import transform_bounds

    path = dest / "dem_synthetic.tif"
    if path.exists():
        return path
    w, s, e, n = transform_bounds("EPSG:32756", "EPSG:4326", 399960.0, 6700000.0 - 109800.0,
                                  399960.0 + 109800.0, 6700000.0)
    step = 1.0 / 1200.0  # 3 arc-seconds
    w, s, e, n = w - 0.02, s - 0.02, e + 0.02, n + 0.02
    ny, nx = int(np.ceil((n - s) / step)), int(np.ceil((e - w) / step))
    rng = np.random.default_rng(seed)
    ky = np.fft.fftfreq(ny, d=92.0)[:, None]  # ~92 m per 3 arc-second row
    kx = np.fft.rfftfreq(nx, d=92.0 * np.cos(np.radians((n + s) / 2)))[None, :]
    k = np.hypot(ky, kx)
    amp = np.where(k > 0, np.maximum(k, 1e-12) ** -2.0, 0.0) * (k <= 1.0 / 1200.0)
    spec = amp * np.exp(2j * np.pi * rng.random(amp.shape))
    z = np.fft.irfft2(spec, s=(ny, nx))
    z = ((z - z.min()) / (z.max() - z.min()) * relief_m).astype(np.float32)
    tmp = path.with_suffix(".part.tif")
    with rasterio.open(tmp, "w", driver="GTiff", width=nx, height=ny, count=1, dtype="float32",
                       crs="EPSG:4326", transform=Affine(step, 0, w, 0, -step, n), tiled=True,
                       compress="DEFLATE", nodata=-32768.0) as ds:
        ds.write(z, 1)
    tmp.rename(path)
    return path


def _usage() -> dict:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": ru.ru_utime + ru.ru_stime, "peak_gb": ru.ru_maxrss * 1024 / 1e9}


def step_decode(safe: Path, cores: int) -> dict:
    from s2l2a.processors.builtin.pipeline import read_bands
    from s2l2a.safe import open_l1c

    g = open_l1c(safe).granules[0]
    files = {b: p for b, p in g.band_files.items() if b in NATIVE}
    c0, t0 = _usage()["cpu_s"], time.perf_counter()
    read_bands(files, cores)
    return {"wall_s": time.perf_counter() - t0, "cpu_s": _usage()["cpu_s"] - c0, "peak_gb": _usage()["peak_gb"]}


def step_encode(safe: Path, cores: int, fmt: str) -> dict:
    """Encode the processor's output set from decoded data; only the encoding is timed."""
    from s2l2a.processors.builtin.pipeline import OUTPUT_BANDS, read_bands, rows_resampled, tci_from_dn
    from s2l2a.processors.builtin.writer import write_raster
    from s2l2a.safe import open_l1c

    g = open_l1c(safe).granules[0]
    files = {b: p for b, p in g.band_files.items() if b in NATIVE and b != "B10"}
    data, transforms, crs = read_bands(files, cores)
    shapes = {r: next(data[b].shape for b in data if NATIVE[b] == r) for r in (10, 20, 60)}
    tr = {r: next(transforms[b] for b in data if NATIVE[b] == r) for r in (10, 20, 60)}
    out = Path(tempfile.mkdtemp(prefix="s2l2a-bench-enc-"))
    wall = cpu = 0.0
    try:
        def timed(name: str, arr: np.ndarray, r: int, categorical: bool = False) -> None:
            nonlocal wall, cpu
            c0, t0 = _usage()["cpu_s"], time.perf_counter()
            write_raster(out / name, arr, tr[r], crs, fmt, nodata=0, categorical=categorical, threads=cores)
            wall += time.perf_counter() - t0
            cpu += _usage()["cpu_s"] - c0
            (out / name).with_suffix(".tif" if fmt == "COG" else ".jp2").unlink()

        for b in sorted(data, key=lambda x: NATIVE[x]):
            arr = data.pop(b)
            for r in (10, 20, 60):
                if b in OUTPUT_BANDS[r]:
                    timed(f"{b}_{r}", arr if NATIVE[b] == r else rows_resampled(arr, shapes[r], 0, shapes[r][0]), r)
            if b == "B02":
                timed("TCI_10", tci_from_dn(arr, arr, arr), 10)
                for r in (20, 60):
                    x = rows_resampled(arr, shapes[r], 0, shapes[r][0])
                    timed(f"TCI_{r}", tci_from_dn(x, x, x), r)
            del arr
        for r in (10, 20, 60):
            a = np.full(shapes[r], 120, np.uint16)
            timed(f"AOT_{r}", a, r)
            timed(f"WVP_{r}", a, r)
            if r != 10:
                s = np.full(shapes[r], 4, np.uint8)
                for name in ("SCL", "CLDPRB", "SNWPRB"):
                    timed(f"{name}_{r}", s, r, categorical=True)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {"wall_s": wall, "cpu_s": cpu, "peak_gb": _usage()["peak_gb"]}


def step_convert(safe: Path, cores: int, fmt: str, dem: str | None = None) -> dict:
    from s2l2a.processors import get_processor
    from s2l2a.processors.base import JobSettings
    from s2l2a.safe import open_l1c

    stage = Path(tempfile.mkdtemp(prefix="s2l2a-bench-conv-"))
    try:
        c0, t0 = _usage()["cpu_s"], time.perf_counter()
        product = open_l1c(safe)
        options = {"output_format": fmt, **({"dem": dem} if dem else {})}
        r = get_processor("builtin", options).process(
            product, stage / "staging", JobSettings(cores=cores), stage / "job.log")
        wall = time.perf_counter() - t0
        log = (stage / "job.log").read_text()
        size = sum(p.stat().st_size for p in r.product_dir.rglob("*") if p.is_file())
        return {"wall_s": wall, "cpu_s": _usage()["cpu_s"] - c0, "peak_gb": _usage()["peak_gb"],
                "output_gb": size / 1e9, "log": log}
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def step_deliverable(safe: Path, cores: int, fmt: str) -> dict:
    """``run --keep derived`` on the tile: NDVI at 10 m, SCL (and quicklooks) without the L2A (issue 16)."""
    from s2l2a.outputs.derive import DeriveSpec, publisher
    from s2l2a.processors import get_processor
    from s2l2a.processors.base import JobSettings
    from s2l2a.safe import open_l1c

    stage = Path(tempfile.mkdtemp(prefix="s2l2a-bench-deliv-"))
    try:
        spec = DeriveSpec(indices=("ndvi",), resolution=10)
        c0, t0 = _usage()["cpu_s"], time.perf_counter()
        r = get_processor("builtin", {"output_format": fmt}).deliver(
            open_l1c(safe), stage / "staging", JobSettings(cores=cores), stage / "job.log",
            spec, stage / "L2A", publisher(stage / "derived", spec, cores))
        wall = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in Path(r.derived.out_dir).rglob("*") if p.is_file())
        return {"wall_s": wall, "cpu_s": _usage()["cpu_s"] - c0, "peak_gb": _usage()["peak_gb"],
                "output_gb": size / 1e9, "log": (stage / "job.log").read_text()}
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def run_step(step: str, safe: Path, cores: int, fmt: str, dem: Path | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--step", step, "--safe", str(safe),
           "--cores", str(cores), "--format", fmt] + (["--dem", str(dem)] if dem else [])
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        raise SystemExit(f"step {step} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--format", default=DEFAULT_FORMAT, choices=("COG", "JP2"),
                    help=f"output layout (default: the processor's, {DEFAULT_FORMAT})")
    ap.add_argument("--step", choices=("decode", "encode", "convert", "deliverable"))
    ap.add_argument("--safe")
    ap.add_argument("--quick", action="store_true", help="the bundled decimated sample, not the full tile")
    ap.add_argument("--deliverable", action="store_true",
                    help="also the deliverable-only run (run --keep derived: NDVI 10 m + SCL, no L2A)")
    ap.add_argument("--dem", nargs="?", const="synthetic", default=None,
                    help="also convert with this DEM (bare --dem: a synthetic 0-1.2 km one, see above)")
    a = ap.parse_args()
    if a.step:  # one step in this process (how the full bench runs each); alone it takes the cached tile
        safe = Path(a.safe) if a.safe else SAMPLE if a.quick else make_tile(cache_dir())
        if a.step == "deliverable":
            print(json.dumps(step_deliverable(safe, a.cores, a.format)))
            return 0
        fn = {"decode": lambda: step_decode(safe, a.cores), "encode": lambda: step_encode(safe, a.cores, a.format),
              "convert": lambda: step_convert(safe, a.cores, a.format, a.dem)}[a.step]
        print(json.dumps(fn()))
        return 0
    t0 = time.time()
    safe = SAMPLE if a.quick else make_tile(cache_dir())
    print(f"tile ready ({time.time() - t0:.0f} s): {safe}", file=sys.stderr)
    dem = None
    if a.dem:
        dem = make_dem(cache_dir()) if a.dem == "synthetic" else Path(a.dem).resolve()
        print(f"DEM: {dem}" + (" (synthetic)" if a.dem == "synthetic" else ""), file=sys.stderr)
    load = os.getloadavg()
    dec = run_step("decode", safe, a.cores, a.format)
    enc = run_step("encode", safe, a.cores, a.format)
    conv = run_step("convert", safe, a.cores, a.format)
    deliv = run_step("deliverable", safe, a.cores, a.format) if a.deliverable else None
    conv_dem = run_step("convert", safe, a.cores, a.format, dem) if dem else None
    load = (load, os.getloadavg())
    floor_wall = dec["wall_s"] + enc["wall_s"]
    floor_cpu = dec["cpu_s"] + enc["cpu_s"]
    what = "the bundled decimated sample (--quick)" if a.quick else "full synthetic tile"
    print(f"\nBuilt-in processor, {what}, {a.cores} cores, outputs {a.format}\n")
    print("| step | wall (s) | CPU (s) | peak memory (GB) |\n|---|---|---|---|")
    print(f"| floor: decode 13 bands | {dec['wall_s']:.1f} | {dec['cpu_s']:.1f} | {dec['peak_gb']:.2f} |")
    print(f"| floor: encode outputs | {enc['wall_s']:.1f} | {enc['cpu_s']:.1f} | - |")
    print(f"| floor: total | {floor_wall:.1f} | {floor_cpu:.1f} | - |")
    print(f"| conversion | {conv['wall_s']:.1f} | {conv['cpu_s']:.1f} | {conv['peak_gb']:.2f} |")
    print(f"| ratio conversion / floor | {conv['wall_s'] / floor_wall:.2f} | {conv['cpu_s'] / floor_cpu:.2f} | |")
    if conv_dem:
        print(f"| conversion with the DEM | {conv_dem['wall_s']:.1f} | {conv_dem['cpu_s']:.1f} | "
              f"{conv_dem['peak_gb']:.2f} |")
        print(f"| ratio conversion with the DEM / floor | {conv_dem['wall_s'] / floor_wall:.2f} | "
              f"{conv_dem['cpu_s'] / floor_cpu:.2f} | |")
    if deliv:
        print(f"| deliverable only (NDVI 10 m + SCL, no L2A) | {deliv['wall_s']:.1f} | {deliv['cpu_s']:.1f} | "
              f"{deliv['peak_gb']:.2f} |")
        print(f"| ratio deliverable / decode floor | {deliv['wall_s'] / dec['wall_s']:.2f} | "
              f"{deliv['cpu_s'] / dec['cpu_s']:.2f} | |")
    print("| Sen2Cor reference (lab cluster) | ~1800 | | ~4 |")
    if deliv and not a.quick:
        print(f"deliverable only (issue 16): <= 30 s wall ({'met' if deliv['wall_s'] <= 30 else 'NOT met'}), "
              f"peak <= 1.5 GB ({'met' if deliv['peak_gb'] <= 1.5 else 'NOT met'}); "
              f"output {deliv['output_gb'] * 1000:.0f} MB")
    if a.quick:  # a decimated tile: fixed costs dominate, the targets say nothing here
        print(f"\n(--quick: targets apply to the full tile); output {conv['output_gb']:.2f} GB")
    else:
        print(f"\ntargets: ratio <= 1.5 ({'met' if conv['wall_s'] / floor_wall <= 1.5 else 'NOT met'}), "
              f"peak <= 1.5 GB ({'met' if conv['peak_gb'] <= 1.5 else 'NOT met'}); output {conv['output_gb']:.2f} GB")
    if conv_dem and not a.quick:
        r = conv_dem["wall_s"] / floor_wall
        print(f"with the DEM (issue 15): ratio <= 1.5 ({'met' if r <= 1.5 else 'NOT met'}), peak <= 2.4 GB "
              f"({'met' if conv_dem['peak_gb'] <= 2.4 else 'NOT met'})")
    print(f"load average (1/5/15 min) at the start {load[0][0]:.1f}/{load[0][1]:.1f}/{load[0][2]:.1f}, "
          f"at the end {load[1][0]:.1f}/{load[1][1]:.1f}/{load[1][2]:.1f}")
    print("\nprocessor log:\n" + conv["log"])
    if deliv:
        print("\ndeliverable-only log:\n" + deliv["log"])
    if conv_dem:
        print("\nprocessor log with the DEM:\n" + conv_dem["log"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
