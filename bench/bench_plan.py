"""Benchmark: planning 10,000 products into a campaign (store inserts + duplicate rule + done check).

Each case runs in a fresh Python process so peak memory (ru_maxrss) belongs to that case only.
XML parsing is measured separately on the real bundled sample (``open_l1c``), then the insert
path is exercised with 10,000 synthetic records shaped like real ones (200 tiles, ~10 % of
acquisitions with a reprocessing). The floor is a bare SQLite ``executemany`` of 10,000 product rows
in one transaction, the least any store could do. Peak memory of the ``plan()`` cases is the parent's;
CPU includes the worker processes.

    .venv/bin/python bench/bench_plan.py [--n 10000] [--real 200]
    .venv/bin/python bench/bench_plan.py --quick     # 500 products, 20 clones, one run each: a smoke test
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample" / "S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042.SAFE"


TILES = [f"{z:02d}{band}{a}{b}" for z in range(30, 40) for band in "TU" for a in "LMNPQ" for b in "JK"]  # 200


def records(n: int) -> list:
    """n synthetic records: 200 tiles, every 10th acquisition also present as a reprocessing."""
    from s2l2a.campaign.store import ProductRecord

    out = []
    t0 = datetime(2020, 1, 1, tzinfo=UTC)
    i = 0
    while len(out) < n:
        tile = TILES[i % len(TILES)]
        sensing = t0 + timedelta(hours=i)
        s = sensing.strftime("%Y%m%dT%H%M%S")
        versions = [("02.09", sensing + timedelta(hours=2))]
        if i % 10 == 0:
            versions.append(("05.00", sensing + timedelta(days=900)))
        for baseline, gen in versions:
            if len(out) == n:
                break
            g = gen.strftime("%Y%m%dT%H%M%S")
            name = f"S2A_MSIL1C_{s}_N{baseline.replace('.', '')}_R030_T{tile}_{g}"
            out.append(ProductRecord(path=Path(f"/data/l1c/{tile}/{name}.SAFE"), name=name, tile=tile,
                                     sensing_time=sensing.strftime("%Y-%m-%dT%H:%M:%SZ"), baseline=baseline,
                                     generation_time=gen.strftime("%Y-%m-%dT%H:%M:%SZ"), mission="S2A",
                                     cloud_cover=12.5))
        i += 1
    return out


def case_floor(n: int, tmp: Path) -> dict:
    rows = [(i, f"/data/l1c/{i}.SAFE", f"S2A_MSIL1C_{i}", "56JMM", "2020-01-01T00:00:00Z", "05.00",
             "2020-01-01T02:00:00Z", "S2A", 1.0, "2026-01-01T00:00:00Z") for i in range(n)]
    t, c = time.perf_counter(), time.process_time()
    db = sqlite3.connect(tmp / "floor.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("CREATE TABLE products (id INTEGER PRIMARY KEY, path TEXT UNIQUE, name TEXT, tile TEXT, "
               "sensing_time TEXT, baseline TEXT, generation_time TEXT, mission TEXT, cloud_cover REAL, "
               "added_at TEXT)")
    db.execute("BEGIN IMMEDIATE")
    db.executemany("INSERT INTO products VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    db.execute("COMMIT")
    db.close()
    return {"wall": time.perf_counter() - t, "cpu": time.process_time() - c}


def _campaign(tmp: Path) -> Path:
    from s2l2a.campaign.settings import CampaignSettings
    from s2l2a.campaign.store import CampaignStore

    d = tmp / "camp"
    d.mkdir()
    CampaignSettings(name="bench").save(d)
    CampaignStore.open(d, create=True).close()
    (d / "L2A").mkdir()
    return d


def case_plan(n: int, tmp: Path, replan: bool = False) -> dict:
    from s2l2a.campaign.planner import plan_records
    from s2l2a.campaign.store import CampaignStore

    d = _campaign(tmp)
    recs = records(n)
    store = CampaignStore.open(d)
    if replan:
        plan_records(store, recs, d / "L2A")
    t, c = time.perf_counter(), time.process_time()
    rep = plan_records(store, recs, d / "L2A")
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    counts = store.counts()
    store.close()
    return {"wall": wall, "cpu": cpu, "added": rep.added, "already": rep.already_planned, "dup": rep.skipped_duplicate,
            "counts": counts, "log_lines": sum(1 for _ in open(d / "progress.log"))}


def case_parse(n: int, tmp: Path) -> dict:
    from s2l2a.safe import open_l1c

    open_l1c(SAMPLE)  # imports and caches warmed
    k = 20
    t, c = time.perf_counter(), time.process_time()
    for _ in range(k):
        open_l1c(SAMPLE)
    per = (time.perf_counter() - t) / k
    return {"wall": per * k, "cpu": time.process_time() - c, "per_product_ms": per * 1000, "k": k}


def case_real(n: int, tmp: Path, workers: int, real: int) -> dict:
    """plan() end to end on ``real`` hard-linked clones of the real sample (discovery + XML parsing)."""
    from s2l2a_testplugins.samples import clone_sample

    from s2l2a.campaign.planner import plan

    root = tmp / "in"
    for i in range(real):
        clone_sample(root / f"{i // 50}", baseline="05.00",
                     generation=f"2022{1 + i // 28 % 12:02d}{1 + i % 28:02d}T{i % 24:02d}0000")
    d = _campaign(tmp)
    t, c = time.perf_counter(), time.process_time()
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    rep = plan(d, [root], workers=workers)
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - c + (ch.ru_utime - children0.ru_utime) + (ch.ru_stime - children0.ru_stime)
    return {"wall": time.perf_counter() - t, "cpu": cpu, "found": rep.found, "rejected": len(rep.rejected)}


REAL_N = 200

#: name -> case(n products, temporary folder, real clones)
CASES = {"floor": lambda n, t, r: case_floor(n, t), "plan": lambda n, t, r: case_plan(n, t),
         "replan": lambda n, t, r: case_plan(n, t, replan=True), "parse": lambda n, t, r: case_parse(n, t),
         "real1": lambda n, t, r: case_real(n, t, 1, r), "real2": lambda n, t, r: case_real(n, t, 2, r)}


def run_case(name: str, n: int, real: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = CASES[name](n, Path(tmp), real)
        out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--case", choices=sorted(CASES))
    ap.add_argument("--repeat", type=int, default=3, help="runs per fast case; the best is shown")
    ap.add_argument("--real", type=int, default=REAL_N, help="clones of the real sample for plan() end to end")
    ap.add_argument("--quick", action="store_true", help="500 products, 20 clones, one run: does it work?")
    args = ap.parse_args()
    if args.quick:
        args.n, args.real, args.repeat = 500, 20, 1
    if args.case:
        print(json.dumps(run_case(args.case, args.n, args.real)))
        return
    res: dict[str, dict] = {}
    for name in ("floor", "plan", "replan", "parse", "real1", "real2"):
        runs = []
        for _ in range(1 if name.startswith("real") else args.repeat):
            p = subprocess.run([sys.executable, __file__, "--case", name, "--n", str(args.n),
                                "--real", str(args.real)], capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit(f"case {name} failed:\n{p.stderr}")
            runs.append(json.loads(p.stdout))
        res[name] = min(runs, key=lambda r: r["wall"])  # best of: the machine is shared
    floor, floor_cpu = res["floor"]["wall"], res["floor"]["cpu"]
    print(f"planning {args.n} products, best of {args.repeat} ({sys.platform}, Python {sys.version.split()[0]}, "
          f"SQLite {sqlite3.sqlite_version})")
    print(f"{'case':<48} {'wall s':>8} {'CPU s':>8} {'peak MB':>8} {'wall/floor':>10} {'CPU/floor':>10}")
    labels = {
        "floor": f"floor: bare SQLite insert of {args.n} rows",
        "plan": f"plan {args.n} new (insert+dedup+done check+log)",
        "replan": f"re-plan the same {args.n} (all known)",
        "parse": f"open_l1c real sample x{res['parse']['k']} (XML parse)",
        "real1": f"plan() {args.real} real clones, 1 process",
        "real2": f"plan() {args.real} real clones, 2 worker processes",
    }
    for name, r in res.items():
        print(f"{labels[name]:<48} {r['wall']:>8.3f} {r['cpu']:>8.3f} {r['peak_mb']:>8.1f} "
              f"{r['wall'] / floor:>10.1f} {r['cpu'] / floor_cpu:>10.1f}")
    p = res["plan"]
    print(f"plan: {p['added']} added, {p['dup']} skipped duplicate, {p['log_lines']} progress lines; "
          f"counts {p['counts']}")
    per = res["real2"]["wall"] / args.real
    print(f"XML parse: {res['parse']['per_product_ms']:.1f} ms per product in one process; end to end with "
          f"2 workers {per * 1000:.1f} ms per product -> ~{per * args.n:.0f} s to first-plan {args.n} real products")


if __name__ == "__main__":
    main()
