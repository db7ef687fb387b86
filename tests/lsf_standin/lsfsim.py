"""A test-only LSF stand-in: ``bsub``, ``bjobs``, ``bkill`` and ``bmod`` as observed by a user.

NOT LSF. It reproduces the documented behaviour our code depends on (see README.md): stdlib only,
state under ``$LSF_STANDIN_DIR``, one detached runner process per submitted job that starts the
array elements, watches their memory and run time, and records what LSF would show.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared LSF rules
from lsf_rules import (  # noqa: E402
    REASONS,
    UNIT_KB,
    embedded_options,
    unit_for_limits,
)
from lsf_rules import parse_bsub_options as _parse  # noqa: E402


def state_dir() -> Path:
    d = Path(os.environ.get("LSF_STANDIN_DIR", "/tmp/lsf-standin"))
    (d / "jobs").mkdir(parents=True, exist_ok=True)
    return d


def seconds_per_minute() -> float:
    return float(os.environ.get("LSF_STANDIN_SECONDS_PER_MINUTE", "60"))


def job_file(job_id: int) -> Path:
    return state_dir() / "jobs" / f"{job_id}.json"


def load(job_id: int) -> dict | None:
    try:
        return json.loads(job_file(job_id).read_text())
    except (OSError, ValueError):
        return None


def save(job: dict) -> None:
    path = job_file(job["id"])
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(job))
    os.replace(tmp, path)


def next_id() -> int:
    import fcntl

    counter = state_dir() / "counter"
    with open(counter, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        n = int(f.read().strip() or "100") + 1
        f.seek(0)
        f.truncate()
        f.write(str(n))
    return n


# -- bsub -------------------------------------------------------------------------------------------

def parse_bsub_options(argv: list[str]) -> tuple[dict, list[str]]:
    try:
        return _parse(argv)
    except ValueError as e:
        raise SystemExit(str(e)) from None


def bsub(argv: list[str]) -> int:
    opts, command = parse_bsub_options(argv)
    script = None
    if not command:
        # `bsub < script`: the job script comes on standard input and its #BSUB lines are read
        script = sys.stdin.read()
        embedded = embedded_options(script)  # LSF stops reading #BSUB lines at the first command
        file_opts, _ = parse_bsub_options(embedded)
        opts = {**file_opts, **opts}  # command-line options win
    elif os.environ.get("LSB_BSUB_PARSE_SCRIPT", "").upper() == "Y" and Path(command[0]).is_file():
        embedded = [ln.strip()[5:] for ln in Path(command[0]).read_text().splitlines()
                    if ln.strip().startswith("#BSUB")]
        file_opts, _ = parse_bsub_options(shlex.split(" ".join(embedded)))
        opts = {**file_opts, **opts}
    name, lo, hi, limit = opts.get("-J", "NONAME"), 0, 0, 0
    m = re.fullmatch(r"([^\[]+)\[(\d+)-(\d+)\](?:%(\d+))?", name)
    if m:
        name, lo, hi, limit = m[1], int(m[2]), int(m[3]), int(m[4] or 0)
        max_size = int(os.environ.get("LSF_STANDIN_MAX_JOB_ARRAY_SIZE", "1000"))
        if hi - lo + 1 > max_size or hi > max_size:
            print("Job array index too large. Job not submitted.", file=sys.stderr)
            return 255
    mem_limit_kb = None
    if "-M" in opts:
        mm = re.fullmatch(r"(\d+)([A-Za-z]*)!?", opts["-M"])
        if not mm:
            print(f"{opts['-M']}: Bad argument for option -M. Job not submitted.", file=sys.stderr)
            return 255
        mem_limit_kb = int(mm[1]) * UNIT_KB[(mm[2] or unit_for_limits()).upper()]
    run_limit_min = None
    if "-W" in opts:
        parts = [int(p) for p in opts["-W"].split(":")]
        run_limit_min = parts[0] * 60 + parts[1] if len(parts) == 2 else parts[0]
    job_id = next_id()
    indices = list(range(lo, hi + 1)) if m else [0]
    job = {"id": job_id, "name": name, "queue": opts.get("-q", "normal"), "cwd": os.getcwd(),
           "env": dict(os.environ), "script": script, "command": command, "limit": limit,
           "mem_limit_kb": mem_limit_kb, "run_limit_min": run_limit_min, "options": opts,
           "submitted": time.time(),
           "elements": {str(i): {"stat": "PEND", "exit_code": "", "exit_reason": ""} for i in indices}}
    save(job)
    subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "_run", str(job_id)],
                     start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=open(state_dir() / f"runner-{job_id}.log", "w"))  # noqa: SIM115
    print(f"Job <{job_id}> is submitted to queue <{job['queue']}>.")
    return 0


# -- the runner (one per job) ---------------------------------------------------------------------------

def _tree_rss_kb(root: int) -> int:
    """RSS of a process and all its descendants (LSF's PIM follows the process tree, so children
    that start their own session, like a processor's process group, still count)."""
    parent: dict[int, int] = {}
    rss: dict[int, int] = {}
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
            parent[int(p.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
            for line in (p / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss[int(p.name)] = int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        for child, ppid in parent.items():
            if ppid == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(rss.get(p, 0) for p in tree)


def _tree(root: int) -> list[int]:
    parent: dict[int, int] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
                parent[int(p.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    tree, frontier = [root], [root]
    while frontier:
        pid = frontier.pop()
        for child, ppid in parent.items():
            if ppid == pid and child not in tree:
                tree.append(child)
                frontier.append(child)
    return tree


def _kill_sequence(proc: subprocess.Popen, interval: float) -> None:
    """LSF's job termination: SIGINT, SIGTERM, then SIGKILL to the whole job."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        pids = _tree(proc.pid)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if proc.poll() is not None and len(pids) == 1:
            return
        t0 = time.monotonic()
        while time.monotonic() - t0 < interval:
            if proc.poll() is not None:
                return
            time.sleep(0.05)


def _start(job: dict, index: str) -> subprocess.Popen:
    env = dict(job["env"], LSB_JOBID=str(job["id"]), LSB_JOBINDEX=index, LSB_JOBNAME=job["name"]
               + (f"[{index}]" if index != "0" else ""))
    def out_name(pattern: str | None) -> str | None:
        if not pattern:
            return None
        return pattern.replace("%J", str(job["id"])).replace("%I", index)
    o = job["options"]
    out = out_name(o.get("-o") or o.get("-oo"))
    err = out_name(o.get("-e") or o.get("-eo")) or out
    cwd = job["cwd"]
    stdout = open(Path(cwd) / out, "a") if out else subprocess.DEVNULL  # noqa: SIM115
    stderr = open(Path(cwd) / err, "a") if err else subprocess.DEVNULL  # noqa: SIM115
    if job["script"] is not None:
        argv = ["/bin/bash", "-c", job["script"]]
    else:
        argv = list(job["command"])
    return subprocess.Popen(argv, cwd=cwd, env=env, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                            start_new_session=True)


def run(job_id: int) -> None:
    job = load(job_id)
    assert job is not None
    spm = seconds_per_minute()
    slots = int(os.environ.get("LSF_STANDIN_SLOTS", "2"))
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    control = state_dir() / "jobs"
    while True:
        job = load(job_id) or job
        els = job["elements"]
        # requests from bkill / bmod
        for req in sorted(control.glob(f"{job_id}.req.*")):
            try:
                r = json.loads(req.read_text())
            except (OSError, ValueError):
                continue
            req.unlink(missing_ok=True)
            if r["op"] == "kill":
                for idx in r["indices"] or list(els):
                    e = els.get(str(idx))
                    if e is None or e["stat"] in ("DONE", "EXIT"):
                        continue
                    if str(idx) in running:
                        proc, _ = running.pop(str(idx))
                        _kill_sequence(proc, 0.5 * spm / 60)
                        e.update(stat="EXIT", exit_code=str(128 + 2), exit_reason=REASONS["TERM_OWNER"])
                    else:
                        e.update(stat="EXIT", exit_code="", exit_reason=REASONS["TERM_OWNER"])
            elif r["op"] == "runlimit":
                job["run_limit_min"] = r["minutes"]
        # finished, over memory, over time
        for idx, (proc, t0) in list(running.items()):
            e = els[idx]
            rc = proc.poll()
            if rc is not None:
                running.pop(idx)
                if rc == 0:
                    e.update(stat="DONE", exit_code="", exit_reason="")
                else:
                    e.update(stat="EXIT", exit_code=str(rc if rc > 0 else 128 - rc), exit_reason="")
                continue
            reason = None
            if job["mem_limit_kb"] and _tree_rss_kb(proc.pid) > job["mem_limit_kb"]:
                reason = "TERM_MEMLIMIT"
            elif job["run_limit_min"] and time.monotonic() - t0 > job["run_limit_min"] * spm:
                reason = "TERM_RUNLIMIT"
            if reason:
                running.pop(idx)
                _kill_sequence(proc, 0.5 * spm / 60)
                rc = proc.poll()
                e.update(stat="EXIT", exit_code=str(128 - rc if rc is not None and rc < 0 else rc or 137),
                         exit_reason=REASONS[reason])
        # start pending elements within the %K throttle and the slots
        cap = min(job["limit"] or slots, slots)
        for idx, e in els.items():
            if len(running) >= cap:
                break
            if e["stat"] == "PEND":
                running[idx] = (_start(job, idx), time.monotonic())
                e["stat"] = "RUN"
        save(job)
        if not running and all(e["stat"] in ("DONE", "EXIT") for e in els.values()):
            return
        time.sleep(0.2)


# -- bjobs / bkill / bmod ----------------------------------------------------------------------------------

def _job_ref(ref: str) -> tuple[int, int | None]:
    m = re.fullmatch(r"(\d+)(?:\[(\d+)\])?", ref)
    if not m:
        raise ValueError(ref)
    return int(m[1]), int(m[2]) if m[2] else None


def bjobs(argv: list[str]) -> int:
    fields, as_json, refs = None, False, []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "-o":
            fields = argv[i + 1].split()
            i += 2
            continue
        if a == "-json":
            as_json = True
        elif a == "-a":
            pass  # finished jobs are shown for the ids asked about anyway
        elif a.startswith("-"):
            print(f"{a}: Illegal option.", file=sys.stderr)
            return 255
        else:
            refs.append(a)
        i += 1
    rows, errors = [], []
    for ref in refs:
        job_id, idx = _job_ref(ref)
        job = load(job_id)
        if job is None:
            errors.append(f"Job <{ref}> is not found")
            continue
        for k, e in job["elements"].items():
            if idx is not None and int(k) != idx:
                continue
            rows.append({"JOBID": str(job_id), "JOBINDEX": k, "JOB_NAME": f"{job['name']}[{k}]",
                         "STAT": e["stat"], "EXIT_CODE": e["exit_code"], "EXIT_REASON": e["exit_reason"],
                         "QUEUE": job["queue"]})
    if as_json and fields:
        # per IBM: -json formats the customized (-o) output; errors become records with ERROR
        keys = [f.split(":")[0].upper() for f in fields]
        records = [{k: r.get(k, "") for k in keys} for r in rows] + [{"ERROR": e} for e in errors]
        print(json.dumps({"COMMAND": "bjobs", "JOBS": len(records), "RECORDS": records}, indent=2))
    else:
        # -json without -o has no effect (IBM): the ordinary table
        if rows:
            print("JOBID   USER    STAT  QUEUE      FROM_HOST   EXEC_HOST   JOB_NAME   SUBMIT_TIME")
            for r in rows:
                print(f"{r['JOBID']:<7} user    {r['STAT']:<5} {r['QUEUE']:<10} localhost   localhost   "
                      f"{r['JOB_NAME']}")
        for e in errors:
            print(e, file=sys.stderr)
    return 255 if errors and not rows else 0


def _request(job_id: int, data: dict) -> None:
    path = state_dir() / "jobs" / f"{job_id}.req.{time.time_ns()}"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def bkill(argv: list[str]) -> int:
    rc = 0
    for ref in argv:
        job_id, idx = _job_ref(ref)
        if load(job_id) is None:
            print(f"Job <{ref}>: No matching job found", file=sys.stderr)
            rc = 255
            continue
        _request(job_id, {"op": "kill", "indices": [idx] if idx is not None else []})
        print(f"Job <{ref}> is being terminated")
    return rc


def bmod(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "-W":
        print("Usage: bmod -W [hour:]minute JOBID (stand-in subset)", file=sys.stderr)
        return 255
    parts = [int(p) for p in argv[1].split(":")]
    minutes = parts[0] * 60 + parts[1] if len(parts) == 2 else parts[0]
    job_id, _ = _job_ref(argv[2])
    if load(job_id) is None:
        print(f"{argv[2]}: No matching job found", file=sys.stderr)
        return 255
    _request(job_id, {"op": "runlimit", "minutes": minutes})
    print(f"Parameters of job <{job_id}> are being changed")
    return 0


def main(prog: str, argv: list[str]) -> int:
    commands = {"bsub": bsub, "bjobs": bjobs, "bkill": bkill, "bmod": bmod}
    if prog == "_run":
        run(int(argv[0]))
        return 0
    return commands[prog](argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
