"""Benchmark: submitting and reconciling a campaign as a Slurm job array (no-op processor).

Measures on the local single-node Slurm (scripts/slurm-up.sh): the time ``s2l2a run --engine
slurm`` takes to plan, write the manifest/script/record, mark every job running and call sbatch;
the wall time until Slurm has run every element; the time ``s2l2a status`` takes to fold all
result files; and the scheduler overhead per element = (array wall x slots) / N - mean job
duration (what an element costs beyond the conversion: Slurm start, Python start, imports).

    .venv/bin/python bench/bench_cluster.py [--jobs 1000] [--write-docs]
    .venv/bin/python bench/bench_cluster.py --quick     # 4 jobs: a smoke test

Without a Slurm that answers it says so and exits 0 (skipped), so ``make bench`` runs the others.
The no-op processor and the sample clones come from the test plug-in package (tests/plugins).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
S2L2A = Path(sys.executable).with_name("s2l2a")
DOCS = REPO / "docs" / "benchmarks.md"
SECTION = "## Slurm job arrays: submit and reconcile"


def sh(*argv: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env, check=False)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument("--quick", action="store_true", help="4 jobs, nothing written: does it work?")
    args = ap.parse_args()
    if args.quick:
        args.jobs, args.write_docs = 4, False
    env = dict(os.environ)
    conf = Path("/tmp/s2l2a-slurm/env")
    if "SLURM_CONF" not in env and conf.is_file():
        env["SLURM_CONF"] = conf.read_text().split("=", 1)[1].strip()
    if shutil.which("sinfo") is None or sh("sinfo", "-h", env=env).returncode != 0:
        print("bench_cluster: SKIPPED: no Slurm answers here; start the local one with "
              "'bash scripts/slurm-up.sh' (root)")
        return 0
    from s2l2a_testplugins.samples import clone_sample

    root = Path(tempfile.mkdtemp(prefix="s2l2a-bench-cluster-"))
    try:
        for i in range(args.jobs):
            clone_sample(root / "l1c", day=i)
        camp = root / "camp"
        assert sh(S2L2A, "init", camp, "--processor", "builtin", "--memory-mb", "256", env=env).returncode == 0
        with open(camp / "s2l2a.toml", "a") as f:
            f.write('\n[cluster]\nestimate_s = 10\nstartup_s = 5\nrun_limit = "1h"\nmax_array_size = 1000\n')
        assert sh(S2L2A, "plan", camp, root / "l1c", env=env).returncode == 0
        t0 = time.monotonic()
        r = sh(S2L2A, "run", camp, "--engine", "slurm", "--processor", "noop", env=env)
        submit_s = time.monotonic() - t0
        assert r.returncode == 0, r.stderr
        ids = [json.loads(p.read_text())["job_id"] for p in (camp / "cluster").glob("*.json")]
        t1 = time.monotonic()
        while True:
            q = sh("squeue", "-h", "-r", "-o", "%F %T", env=env).stdout.split("\n")
            if not any(line.split()[0] in ids for line in q if line.strip()
                       and line.split()[1] in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING")):
                break
            time.sleep(1)
        array_s = time.monotonic() - t1
        t2 = time.monotonic()
        r = sh(S2L2A, "status", camp, "--json", env=env)
        reconcile_s = time.monotonic() - t2
        doc = json.loads(r.stdout)
        durations = [json.loads(p.read_text())["duration_s"] for p in (camp / "results" / "folded").glob("*.json")]
        slots = int(re.findall(r"\d+", sh("sinfo", "-h", "-o", "%c", env=env).stdout)[0])
        mean_job = sum(durations) / max(len(durations), 1)
        overhead = array_s * slots / args.jobs - mean_job
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rows = [("jobs (array elements)", f"{args.jobs}"), ("done / failed", f"{doc['counts']['done']} / "
                                                                         f"{doc['counts']['failed']}"),
            ("submit: `s2l2a run --engine slurm` (plan, manifest, record, mark running, sbatch)", f"{submit_s:.1f} s"),
            ("array wall time until Slurm ran every element", f"{array_s:.1f} s"),
            ("reconcile: `s2l2a status` folding every result file", f"{reconcile_s:.1f} s"),
            ("mean job duration inside an element (run_job, no-op)", f"{mean_job:.2f} s"),
            ("scheduler + start overhead per element (wall x slots / N - job)", f"{overhead:.2f} s")]
    table = "\n".join(["| | |", "|---|---:|", *(f"| {a} | {b} |" for a, b in rows)])
    text = (f"{SECTION}\n\n`.venv/bin/python bench/bench_cluster.py --jobs {args.jobs}` on the local single-node "
            f"Slurm ({slots} CPUs, {platform.processor() or platform.machine()}; other work shared the machine):\n\n"
            f"{table}\n")
    print(text)
    if args.write_docs:
        old = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
        if SECTION in old:
            head, _, rest = old.partition(SECTION)
            nxt = rest.find("\n## ")
            old = head + (rest[nxt + 1:] if nxt >= 0 else "")
        DOCS.write_text(old.rstrip("\n") + "\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
