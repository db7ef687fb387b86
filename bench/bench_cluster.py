"""Benchmark: a campaign as one job array on Slurm and on OpenLava (LSF lineage), no-op processor.

For each scheduler that answers here (the local single-node Slurm of scripts/slurm-up.sh, the
OpenLava of scripts/openlava-up.sh), on N clones of the bundled sample, in one run:

- floor: the same N products through the local engine (``s2l2a run``, one worker per core), and a
  bare array of N ``true`` elements (what the scheduler alone costs to start N elements);
- ``s2l2a run --engine slurm|lsf``: plan, manifest, record, mark running, submit (wall, CPU, peak RSS);
- ``s2l2a status`` while half the elements have ended (it asks the scheduler), once every element
  has ended, and (not with --quick) after the scheduler forgot the array (Slurm MinJobAge, OpenLava
  CLEAN_PERIOD), on a copy of the campaign taken when the last element ended;
- the array's wall time until every element ended, the elements' CPU (every process whose command
  line is this campaign's worker, sampled from /proc every 0.1 s) and the scheduler daemons' CPU;
- per-element overhead = (array wall - floor wall) / N and (array CPU - floor CPU) / N.

``die`` products (default 2) SIGKILL their worker (no result file), so that status must ask the
scheduler about them, before and after it forgets them. So that other users' jobs are not queued
behind N elements, the Slurm array runs at ``--nice=10000`` and the OpenLava array with ``%K`` two
under the host's slots (``--all-slots``: neither).

    .venv/bin/python bench/bench_cluster.py [--jobs 200] [--scheduler slurm|lsf|all] [--write-docs]
    .venv/bin/python bench/bench_cluster.py --quick     # 4 jobs, nothing forgotten: does it work?

A scheduler that does not answer is reported SKIPPED (exit 0), so ``make bench`` runs the others.
OpenLava needs root: root cannot submit there, so everything runs as its submitting user through
``runuser`` with the user's venv (Debian's Python, the ``src/`` copy the up script installed).
The no-op processor and the sample clones come from the test plug-in package (tests/plugins).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench_engine import TreeMonitor

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks.md"
SECTION = "## Job arrays on Slurm and OpenLava: submit, run, reconcile"
OLD_SECTION = "## Slurm job arrays: submit and reconcile"
OPENLAVA_DIR = Path(os.environ.get("S2L2A_OPENLAVA_DIR", "/tmp/s2l2a-openlava"))
SLURM_ACTIVE = ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "REQUEUED", "RESIZING")
LSF_ENDED = ("DONE", "EXIT")


def sh(argv: list[str], env: dict[str, str] | None = None, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env, check=False,
                          **kw)  # type: ignore[call-overload]


# -- where each scheduler is and how it is spoken to ------------------------------------------------

@dataclass
class Target:
    """One scheduler: the environment its commands need, who submits, which Python runs s2l2a."""

    name: str                     # the engine name: slurm | lsf
    env: dict[str, str]
    python: Path                  # the interpreter of s2l2a and of the array's workers
    work: Path                    # campaigns go below (the submitting user can write there)
    slots: int                    # elements the scheduler runs at once on this machine
    daemons: frozenset[str]       # process names whose CPU is the scheduler's
    user: str | None = None       # submit as this user (runuser), None: as ourselves
    polite: dict[str, object] = field(default_factory=dict)   # [cluster] keys that leave room to others

    def argv(self, argv: list[object]) -> list[str]:
        if self.user is None:
            return [str(a) for a in argv]
        return ["runuser", "-u", self.user, "--", "env", "-i", *(f"{k}={v}" for k, v in self.env.items()),
                *map(str, argv)]

    def run(self, argv: list[object], **kw: object) -> subprocess.CompletedProcess[str]:
        kw.setdefault("cwd", self.work)
        return sh(self.argv(argv), env=None if self.user else self.env, **kw)

    def s2l2a(self, *args: object) -> list[object]:
        """The s2l2a console script of ``python`` with ``args`` (for :meth:`run` or :meth:`measure`)."""
        return [self.python.with_name("s2l2a"), *args]

    def measure(self, argv: list[object]) -> tuple[dict[str, float], str]:
        return measured(self.argv(argv), env=None if self.user else self.env, cwd=self.work)

    def give(self, path: Path) -> None:
        """Hand a tree we made to the submitting user (hard-linked images stay as they are: they
        are the repository's sample files, readable by everyone)."""
        if self.user is None:
            return
        pw = pwd.getpwnam(self.user)
        for p in [path, *path.rglob("*")]:
            st = p.lstat()
            if p.is_dir() or st.st_nlink == 1:
                os.chown(p, pw.pw_uid, pw.pw_gid, follow_symlinks=False)

    # the scheduler's view of one array

    def ended(self, job_id: str, n: int) -> int:
        """Elements of the array that have ended: those not pending or running (the first to
        end may be forgotten before the last ends: OpenLava's CLEAN_PERIOD is 60 s here)."""
        if self.name == "slurm":
            r = self.run(["squeue", "-h", "-r", "-j", job_id, "-o", "%T"])
            return n - sum(1 for s in r.stdout.split() if s in SLURM_ACTIVE) if r.returncode == 0 else n
        return n - sum(1 for s in self.lsf_states(job_id) if s not in LSF_ENDED)

    def lsf_states(self, job_id: str) -> list[str]:
        r = self.run(["bjobs", "-w", "-a", job_id])
        return [line.split()[2] for line in r.stdout.splitlines() if line.split()[:1] == [job_id]]

    def forgotten(self, job_id: str) -> bool:
        if self.name == "slurm":
            return self.run(["scontrol", "show", "job", job_id]).returncode != 0
        return not self.lsf_states(job_id)

    def submit_bare(self, n: int, cwd: Path, max_concurrent: int) -> str:
        """An array of ``n`` elements that run ``true``, asking what an s2l2a element asks."""
        if self.name == "slurm":
            r = self.run(["sbatch", "--parsable", f"--array=1-{n}", "-c", "1", "--mem=300", "-t", "10",
                          "-o", "/dev/null", *self.polite.get("extra_directives", []), "--wrap", "true"], cwd=cwd)
            assert r.returncode == 0, r.stderr
            return r.stdout.strip().split(";")[0]
        k = f"%{max_concurrent}" if max_concurrent else ""
        r = self.run(["bsub", "-J", f"bare[1-{n}]{k}", "-n", "1", "-R", "rusage[mem=300] span[hosts=1]",
                      "-W", "10", "-o", "/dev/null", "true"], cwd=cwd)
        m = re.search(r"Job <(\d+)> is submitted", r.stdout)
        assert r.returncode == 0 and m, r.stdout + r.stderr
        return m[1]


def slurm_target() -> Target | str:
    env = dict(os.environ)
    conf = Path("/tmp/s2l2a-slurm/env")
    if "SLURM_CONF" not in env and conf.is_file():
        env["SLURM_CONF"] = conf.read_text().split("=", 1)[1].strip()
    if shutil.which("sinfo") is None or sh(["sinfo", "-h"], env=env).returncode != 0:
        return "no Slurm answers here; start the local one with 'bash scripts/slurm-up.sh' (root)"
    slots = sum(int(c) for c in re.findall(r"\d+", sh(["sinfo", "-h", "-N", "-o", "%c"], env=env).stdout))
    return Target("slurm", env, Path(sys.executable), Path(tempfile.gettempdir()), slots,
                  frozenset({"slurmctld", "slurmd", "slurmstepd", "slurmscriptd"}),
                  polite={"extra_directives": ["--nice=10000"]})


def lsf_target() -> Target | str:
    env_file = OPENLAVA_DIR / "env"
    if not env_file.is_file():
        return f"OpenLava is not up (no {env_file}); start it with 'bash scripts/openlava-up.sh' (root)"
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        return "OpenLava takes jobs from its submitting user only: run this as root (runuser)"
    cfg = {m[1]: m[2].replace(":$PATH", "") for m in re.finditer(r"^export (\w+)=(.*)$",
                                                                 env_file.read_text(), re.M)}
    user, python = cfg.get("S2L2A_LSF_USER", ""), Path(cfg.get("S2L2A_LSF_PYTHON", "/nonexistent"))
    try:
        home = pwd.getpwnam(user).pw_dir
    except KeyError:
        return f"OpenLava's submitting user {user!r} does not exist (rerun scripts/openlava-up.sh)"
    env = {"HOME": home, "USER": user, "LOGNAME": user, "LANG": "C.UTF-8", "LSF_ENVDIR": cfg["LSF_ENVDIR"],
           "PATH": f"{python.parent}:{cfg['PATH']}:/usr/local/bin:/usr/bin:/bin"}
    t = Target("lsf", env, python, Path(cfg["S2L2A_LSF_WORK"]), 0,
               frozenset({"mbatchd", "sbatchd", "mbschd", "res", "lim", "pim"}), user=user)
    try:
        r = t.run(["bhosts", "-w"], timeout=15)
    except subprocess.TimeoutExpired:
        return "OpenLava's bhosts did not answer within 15 s"
    hosts = [line.split() for line in r.stdout.splitlines()[1:] if len(line.split()) > 3]
    if r.returncode != 0 or not any(h[1] == "ok" for h in hosts):
        return f"OpenLava does not answer (bhosts: {(r.stderr or r.stdout).strip()[-200:]})"
    t.slots = sum(int(h[3]) for h in hosts if h[3].isdigit())
    t.polite = {"max_concurrent": max(1, t.slots - 2)}
    return t


# -- measuring ------------------------------------------------------------------------------------

def measured(argv: list[str], env: dict[str, str] | None = None,
             cwd: Path | None = None) -> tuple[dict[str, float], str]:
    """Wall, CPU and peak RSS of a command and its children (TreeMonitor); and its stdout."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    with TreeMonitor(proc.pid) as mon:
        out, err = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{argv[-4:]}: exit {proc.returncode}\n{out}\n{err}")
    return {"wall_s": wall, "cpu_s": sum(mon.cpu.values()), "peak_mb": mon.peak_rss / 2**20}, out


class ProcScan:
    """CPU of the array's workers and of the scheduler's daemons, from /proc every 0.1 s.

    A worker is a process whose argv holds ``--campaign <campaign>`` (``s2l2a worker``); its CPU
    after the last sample is missed (at most 0.1 s of it per element). Daemons alive at the start
    count from their CPU then; those born later (slurmstepd) from zero."""

    TICK = os.sysconf("SC_CLK_TCK")
    PAGE = os.sysconf("SC_PAGE_SIZE")

    def __init__(self, campaign: Path | None, daemons: frozenset[str]) -> None:
        self.marker = ["--campaign", str(campaign)] if campaign else None
        self.daemons = daemons
        self.checked: dict[tuple[int, int], str] = {}      # (pid, start) -> comm when argv was read
        self.workers: dict[tuple[int, int], float] = {}
        self.daemon_cpu: dict[tuple[int, int], list[float]] = {}   # [at first sight, last]
        self.worker_peak_rss = 0
        self.passes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _is_worker(self, pid: int) -> bool:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            return False
        m = self.marker
        return m is not None and any(argv[i:i + 2] == m for i in range(len(argv) - 1))

    def sample(self) -> None:
        first = self.passes == 0
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                raw = Path(f"/proc/{name}/stat").read_text()
            except OSError:
                continue
            comm = raw[raw.find("(") + 1:raw.rfind(")")]
            f = raw[raw.rfind(")") + 2:].split()
            key, cpu = (int(name), int(f[19])), (int(f[11]) + int(f[12])) / self.TICK
            if comm in self.daemons:
                self.daemon_cpu.setdefault(key, [cpu if first else 0.0, cpu])[1] = cpu
            elif key in self.workers:
                self.workers[key] = cpu
                self.worker_peak_rss = max(self.worker_peak_rss, int(f[21]) * self.PAGE)
            elif self.checked.get(key) != comm:  # new, or exec'd since (a job script becomes python)
                self.checked[key] = comm
                if self._is_worker(int(name)):
                    self.workers[key] = cpu
        self.passes += 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(0.1)

    def __enter__(self) -> ProcScan:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    @property
    def worker_cpu_s(self) -> float:
        return sum(self.workers.values())

    @property
    def daemons_cpu_s(self) -> float:
        return sum(last - first for first, last in self.daemon_cpu.values())


def wait_ended(t: Target, job_id: str, n: int, timeout_s: float,
               halfway: Callable[[], None] | None = None) -> float:
    """Poll every second until every element has ended; seconds waited. ``halfway`` runs once
    when half of them have."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        ended = t.ended(job_id, n)
        if ended >= n:
            return time.monotonic() - t0
        if halfway is not None and ended >= n // 2:
            halfway()
            halfway = None
        time.sleep(1)
    raise SystemExit(f"{t.name} array {job_id}: not every element ended within {timeout_s:.0f} s")


# -- one scheduler --------------------------------------------------------------------------------

def make_campaign(t: Target, root: Path, l1c: Path, sections: dict[str, dict[str, object]]) -> Path:
    """``s2l2a init`` + ``plan`` of ``l1c`` as the submitting user, with extra toml sections."""
    camp = root / "camp"
    r = t.run(t.s2l2a("init", camp, "--processor", "builtin", "--memory-mb", "300"))
    assert r.returncode == 0, r.stdout + r.stderr
    with open(camp / "s2l2a.toml", "a", encoding="utf-8") as f:
        for name, keys in sections.items():
            f.write(f"\n[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items()))
    r = t.run(t.s2l2a("plan", camp, l1c))
    assert r.returncode == 0, r.stdout + r.stderr
    return camp


def status(t: Target, camp: Path) -> tuple[dict[str, float], dict[str, int]]:
    m, out = t.measure(t.s2l2a("status", camp, "--json"))
    return m, json.loads(out)["counts"]


def bench_one(t: Target, n: int, die: int, forget: bool, all_slots: bool) -> dict[str, object]:
    """Everything measured on one scheduler (see the module docstring)."""
    from s2l2a_testplugins.samples import clone_sample, sample_name

    polite = {} if all_slots else t.polite
    k = int(polite.get("max_concurrent", 0))  # type: ignore[call-overload]
    load0 = os.getloadavg()
    root = Path(tempfile.mkdtemp(prefix=f"s2l2a-bench-{t.name}-", dir=t.work))
    res: dict[str, object] = {"scheduler": t.name, "n": n, "slots": t.slots, "polite": polite, "die": die,
                              "start": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    try:
        for i in range(n):
            clone_sample(root / "l1c", day=i)
        t.give(root)
        cluster = {"estimate_s": 10, "startup_s": 5, "run_limit": "1h", "max_array_size": 1000, **polite}

        # floor 1: the same products through the local engine, as the same user and Python
        (root / "floor").mkdir()
        t.give(root / "floor")
        camp = make_campaign(t, root / "floor", root / "l1c", {})
        res["floor"], _ = t.measure(t.s2l2a("run", camp, "--processor", "noop"))
        _, counts = status(t, camp)
        assert counts["done"] == n, counts

        # floor 2: a bare array of `true`, what the scheduler alone takes to run n elements
        with ProcScan(None, t.daemons) as scan:
            t0 = time.monotonic()
            bare = t.submit_bare(n, root, k)
            wall = wait_ended(t, bare, n, 60 + 10 * n) + time.monotonic() - t0
        res["bare"] = {"wall_s": wall, "daemons_cpu_s": scan.daemons_cpu_s}

        # the campaign as one array; `die` products lose their worker (no result file)
        dying = [sample_name(i) for i in range(n)][n // (die + 1)::n // (die + 1)][:die] if die else []
        (root / "array").mkdir()
        t.give(root / "array")
        camp = make_campaign(t, root / "array", root / "l1c", {"cluster": cluster, "noop": {"die_matching": dying}}
                             if dying else {"cluster": cluster})
        with ProcScan(camp.resolve(), t.daemons) as scan:
            res["submit"], out = t.measure(t.s2l2a("run", camp, "--engine", t.name, "--processor", "noop"))
            (rec,) = [json.loads(p.read_text()) for p in (camp / "cluster").glob("*.json")]
            res["elements"] = len(rec["elements"])

            def halfway() -> None:
                res["status_running"], res["counts_running"] = status(t, camp)

            res["array_s"] = wait_ended(t, rec["job_id"], n, 120 + 20 * n, halfway)
        res["workers_cpu_s"], res["daemons_cpu_s"] = scan.worker_cpu_s, scan.daemons_cpu_s
        res["worker_peak_mb"], res["workers_seen"] = scan.worker_peak_rss / 2**20, len(scan.workers)
        copy = root / "array" / "camp-copy"
        shutil.copytree(camp, copy, symlinks=True)
        t.give(copy)
        res["status_ended"], res["counts"] = status(t, camp)
        if forget:
            t0 = time.monotonic()
            while not t.forgotten(rec["job_id"]):
                if time.monotonic() - t0 > 900:
                    raise SystemExit(f"{t.name} did not forget array {rec['job_id']} within 900 s")
                time.sleep(2)
            res["forgotten_after_s"] = time.monotonic() - t0
            res["status_forgotten"], res["counts_forgotten"] = status(t, copy)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    res["load"] = (load0, os.getloadavg())
    return res


def cell(m: dict[str, float]) -> str:
    return f"{m['wall_s']:.2f} s / {m['cpu_s']:.2f} s / {m['peak_mb']:.0f} MB"


def rows_of(r: dict) -> list[tuple[str, str]]:
    """The table rows of one scheduler's results."""
    n, floor = r["n"], r["floor"]
    array_cpu = r["workers_cpu_s"] + r["daemons_cpu_s"]
    shape = (f"{r['elements']} elements, {r['slots']} slots"
             + (f", %{r['polite']['max_concurrent']}" if "max_concurrent" in r["polite"] else "")
             + (", --nice=10000" if r["polite"].get("extra_directives") else ""))
    c = r["counts"]
    rows = [
        ("array (1 product per element)", shape),
        ("load average (1 min) at start / end", f"{r['load'][0][0]:.1f} / {r['load'][1][0]:.1f}"),
        ("floor: local engine `s2l2a run`, same products (wall / CPU / peak RSS)", cell(floor)),
        ("floor: bare array of `true` (wall until all ended; daemons' CPU)",
         f"{r['bare']['wall_s']:.1f} s; {r['bare']['daemons_cpu_s']:.1f} s"),
        ("submit: `s2l2a run --engine …` (wall / CPU / peak RSS)", cell(r["submit"])),
        ("array wall time until every element ended", f"{r['array_s']:.1f} s"),
        ("… / floor wall (local engine)", f"{r['array_s'] / floor['wall_s']:.1f}×"),
        ("… / bare array wall", f"{r['array_s'] / r['bare']['wall_s']:.1f}×"),
        ("elements' CPU (workers, sampled); scheduler daemons' CPU",
         f"{r['workers_cpu_s']:.1f} s; {r['daemons_cpu_s']:.1f} s"),
        ("array CPU / floor CPU", f"{array_cpu / floor['cpu_s']:.1f}×"),
        ("peak RSS of one element's worker", f"{r['worker_peak_mb']:.0f} MB"),
        ("`s2l2a status` with half the elements ended (asks the scheduler)",
         cell(r["status_running"]) if "status_running" in r else "— (they ended between two polls)"),
        ("`s2l2a status` after every element ended", cell(r["status_ended"])),
    ]
    if "status_forgotten" in r:
        rows.append(("`s2l2a status` after the scheduler forgot the array (forgotten after)",
                     f"{cell(r['status_forgotten'])} ({r['forgotten_after_s']:.0f} s)"))
    cf = r.get("counts_forgotten", c)
    rows += [
        ("done / failed (after every element ended; after forgotten)",
         f"{c['done']} / {c['failed']}; {cf['done']} / {cf['failed']}"),
        ("overhead per element, wall: (array − floor) / N", f"{(r['array_s'] - floor['wall_s']) / n:.2f} s"),
        ("overhead per element, CPU: (elements + daemons − floor) / N", f"{(array_cpu - floor['cpu_s']) / n:.2f} s"),
        ("scheduler alone per element: bare array wall / N", f"{r['bare']['wall_s'] / n:.2f} s"),
    ]
    return rows


def table(results: list[dict]) -> str:
    names = {"slurm": "Slurm", "lsf": "OpenLava (LSF)"}
    labels = [label for label, _ in rows_of(results[0])]
    cols = [dict(rows_of(r)) for r in results]
    labels += [label for c in cols for label in c if label not in labels]
    lines = ["| | " + " | ".join(names.get(r["scheduler"], r["scheduler"]) for r in results) + " |",
             "|---|" + "---:|" * len(results)]
    lines += [f"| {label} | " + " | ".join(c.get(label, "—") for c in cols) + " |" for label in labels]
    return "\n".join(lines)


NOTE = """\
How to read it: every cell "wall / CPU / peak RSS" is one command measured with its children (for
OpenLava: `runuser` + the user's s2l2a). The floors ran in the same session as the arrays: the local
engine (one worker per core) doing the same conversions, and a bare array of `true` with the same
throttle, so the ratios compare like with like on this shared machine. The elements' CPU counts the
`s2l2a worker` processes sampled from /proc every 0.1 s (up to 0.1 s per element is missed); the
daemons' CPU includes answering this bench's once-a-second polls and other sessions' jobs. Status
after forgetting ran on a copy of the campaign taken when the last element ended (the first status
closes the array on the original)."""


def write_section(text: str) -> None:
    """Replace this benchmark's section of docs/benchmarks.md (and its older Slurm-only one)."""
    old = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n"
    for title in (OLD_SECTION, SECTION):
        start = old.find(title + "\n")
        if start >= 0:
            nxt = old.find("\n## ", start + len(title))
            old = old[:start] + (old[nxt + 1:] if nxt >= 0 else "")
    DOCS.write_text(old.rstrip("\n") + "\n\n" + text, encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--scheduler", choices=("slurm", "lsf", "all"), default="all")
    ap.add_argument("--die", type=int, default=2, help="products whose worker is SIGKILLed (no result file)")
    ap.add_argument("--all-slots", action="store_true", help="no --nice / %%K: the machine is ours alone")
    ap.add_argument("--write-docs", action="store_true", help=f"write '{SECTION}' in {DOCS}")
    ap.add_argument("--quick", action="store_true", help="4 jobs, 1 dying, nothing forgotten or written")
    args = ap.parse_args()
    if args.jobs < 2 or not 0 <= args.die < args.jobs // 2:
        ap.error("--jobs must be 2 or more and --die under half of it")
    if args.quick:
        args.jobs, args.die, args.write_docs = 4, 1, False
    uptime = sh(["uptime"]).stdout.strip()
    results = []
    for name in ("slurm", "lsf") if args.scheduler == "all" else (args.scheduler,):
        t = slurm_target() if name == "slurm" else lsf_target()
        if isinstance(t, str):
            print(f"bench_cluster: {name}: SKIPPED: {t}")
            continue
        print(f"bench_cluster: {name}: {args.jobs} products as one array ...", flush=True)
        results.append(bench_one(t, args.jobs, args.die, forget=not args.quick, all_slots=args.all_slots))
        print(json.dumps(results[-1], default=str), flush=True)
    if not results:
        return 0
    text = (f"{SECTION}\n\n`.venv/bin/python bench/bench_cluster.py --jobs {args.jobs}` (as root), "
            f"{results[0]['start']}, no-op processor, {args.die} of the {args.jobs} products SIGKILL their "
            f"worker; {os.cpu_count()} CPUs ({platform.machine()}), shared with other sessions "
            f"(`uptime` before: {uptime.split('load average:')[-1].strip()}; after: "
            f"{sh(['uptime']).stdout.split('load average:')[-1].strip()}):\n\n{table(results)}\n\n{NOTE}\n")
    print(text)
    if args.write_docs:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
