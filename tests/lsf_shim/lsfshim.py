"""LSF-shaped shim over the local Slurm (test only). NOT LSF: see README.md.

``bsub``/``bjobs``/``bkill``/``bmod`` as ``engines/lsf.py`` calls them, translated to
``sbatch``/``squeue``/``scancel``/``scontrol`` (argv lists, no shell). Stdlib only.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared LSF rules
from lsf_rules import (  # noqa: E402
    REASONS,
    UNIT_KB,
    embedded_options,
    parse_bsub_options,
    unit_for_limits,
)

STATES = {  # Slurm job_state -> LSF STAT
    "PENDING": "PEND", "REQUEUED": "PEND", "REQUEUE_HOLD": "PSUSP", "REQUEUE_FED": "PEND",
    "CONFIGURING": "RUN", "RUNNING": "RUN", "COMPLETING": "RUN", "RESIZING": "RUN", "SIGNALING": "RUN",
    "STAGE_OUT": "RUN", "SUSPENDED": "USUSP", "STOPPED": "USUSP",
    "COMPLETED": "DONE",
}


def die(msg: str, rc: int = 255) -> int:
    print(msg, file=sys.stderr)
    return rc


def to_mb(value: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]*)!?", value.strip())
    if not m:
        raise ValueError(value)
    return max(1, math.ceil(float(m[1]) * UNIT_KB[(m[2] or unit_for_limits()).upper()] / 1024))


def minutes(value: str) -> int:
    """``-W [hour:]minute`` -> minutes."""
    parts = [int(p) for p in value.split(":")]
    return parts[0] * 60 + parts[1] if len(parts) == 2 else parts[0]


def slurm_file_name(pattern: str) -> str:
    return pattern.replace("%J", "%A").replace("%I", "%a")


def sbatch_argv(opts: dict[str, str | bool]) -> tuple[list[str], int]:
    """Options -> sbatch arguments; returns (argv, lo) where lo is the first array index or 0."""
    argv = ["sbatch", "--parsable"]
    name = str(opts.get("-J", "NONAME"))
    lo = 0
    m = re.fullmatch(r"([^\[]+)\[(\d+)-(\d+)\](?:%(\d+))?", name)
    if m:
        name, lo = m[1], int(m[2])
        argv.append(f"--array={m[2]}-{m[3]}" + (f"%{m[4]}" if m[4] else ""))
    argv.append(f"--job-name={name}")
    if "-n" in opts:  # with span[hosts=1]: one task, n cores
        argv += ["--ntasks=1", f"--cpus-per-task={opts['-n']}"]
    mem = []
    if "-M" in opts:
        mem.append(to_mb(str(opts["-M"])))
    rm = re.search(r"rusage\[[^\]]*mem=([\d.]+[A-Za-z]*)", str(opts.get("-R", "")))
    if rm:
        mem.append(to_mb(rm[1]))
    if mem:
        argv.append(f"--mem={max(mem)}M")
    if "-W" in opts:
        argv.append(f"--time={minutes(str(opts['-W']))}")
    out = opts.get("-o") or opts.get("-oo")
    err = opts.get("-e") or opts.get("-eo")
    # without -o LSF mails the output; the shim drops it
    argv.append(f"--output={slurm_file_name(str(out)) if out else '/dev/null'}")
    if err or out:
        argv.append(f"--error={slurm_file_name(str(err or out))}")
    # -q: mapped to Slurm's default partition (not passed); -P, -x, -G, -m: accepted, not enforced
    return argv, lo


PROLOGUE = ("#!/bin/bash\n# LSF-shaped shim (NOT LSF): LSB_* from Slurm\n"
            'export LSB_JOBID="${SLURM_ARRAY_JOB_ID:-$SLURM_JOB_ID}"\n'
            'export LSB_JOBINDEX="${SLURM_ARRAY_TASK_ID:-0}"\n'
            'export LSB_JOBNAME="$SLURM_JOB_NAME"\n')


def bsub(argv: list[str]) -> int:
    try:
        opts, command = parse_bsub_options(argv)
        if not command:
            # `bsub < script`: #BSUB lines are read; command-line options win
            body = sys.stdin.read()
            file_opts, _ = parse_bsub_options(embedded_options(body))
            opts = {**file_opts, **opts}
            # sbatch itself reads #BSUB (and #PBS) lines anywhere in a script: hide them from it
            script = PROLOGUE + re.sub(r"(?m)^(\s*)#(BSUB|PBS)", r"\1# (shim) \2", body)
        else:
            # `bsub command` / `bsub script_file`: #BSUB lines are comments (LSB_BSUB_PARSE_SCRIPT unset)
            script = PROLOGUE + "exec " + shlex.join(command) + "\n"
        sb, _ = sbatch_argv(opts)
    except ValueError as exc:
        return die(f"{exc}. Job not submitted." if "Job not submitted" not in str(exc) else str(exc))
    with tempfile.NamedTemporaryFile("w", suffix=".sh", prefix="lsf-shim-", delete=False) as f:
        f.write(script)
    try:
        r = subprocess.run([*sb, f.name], capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(f.name)  # sbatch copied it
    if r.returncode != 0:
        return die(f"{r.stderr.strip()}\nJob not submitted.")
    job_id = r.stdout.strip().split(";")[0]
    print(f"Job <{job_id}> is submitted to queue <normal>.")
    return 0


def _indices(task_string: str) -> list[int]:
    out: list[int] = []
    for part in task_string.split("%")[0].split(","):
        if not part:
            continue
        rng, _, step = part.partition(":")
        a, _, b = rng.partition("-")
        out += list(range(int(a), int(b or a) + 1, int(step or 1)))
    return out


def _state(job: dict) -> str:
    s = job.get("job_state", "")
    return str(s[0] if isinstance(s, list) and s else s)


def _exit(job: dict) -> tuple[int | None, int | None]:
    """(exit status, signal) from Slurm's exit_code (a wait status in 22.05, a dict later)."""
    code = job.get("exit_code")
    if isinstance(code, dict):
        sig = (code.get("signal") or {}).get("id") if isinstance(code.get("signal"), dict) else code.get("signal")
        rc = code.get("return_code")
        rc = rc.get("number") if isinstance(rc, dict) else rc
        return rc, sig or None
    if isinstance(code, int):
        return (code >> 8) & 0xFF, (code & 0x7F) or None
    return None, None


def _memory_words(job: dict) -> bool:
    path = str(job.get("standard_output") or job.get("standard_error") or "")
    if not path:
        return False
    for k, v in (("%A", job.get("array_job_id")), ("%a", job.get("array_task_id")), ("%j", job.get("job_id")),
                 ("%x", job.get("name"))):
        path = path.replace(k, str(v))
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4096))
            return b"exceeded memory limit" in f.read().lower()
    except OSError:
        return False


def record(job: dict, job_id: str, index: int) -> dict[str, str]:
    state = _state(job)
    stat, code, reason = STATES.get(state, "EXIT"), "", ""
    rc, sig = _exit(job)
    if stat == "EXIT":
        code = str(128 + sig if sig else rc or "")
        # Slurm 22.05 shows its memory kill as FAILED with signal 9 (or 137), sometimes CANCELLED;
        # slurmstepd says "exceeded memory limit" in the element's output file
        if state == "OUT_OF_MEMORY" or (state == "FAILED" and (sig == 9 or rc == 137)) or (
                state in ("FAILED", "CANCELLED") and _memory_words(job)):
            reason = REASONS["TERM_MEMLIMIT"]
        elif state in ("TIMEOUT", "DEADLINE"):
            reason = REASONS["TERM_RUNLIMIT"]
        elif state == "CANCELLED":
            reason = REASONS["TERM_OWNER"]
    return {"JOBID": job_id, "JOBINDEX": str(index), "STAT": stat, "EXIT_CODE": code, "EXIT_REASON": reason,
            "JOB_NAME": f"{job.get('name', '')}[{index}]" if index else str(job.get("name", ""))}


def squeue_records(job_id: str, only: int | None) -> list[dict[str, str]]:
    r = subprocess.run(["squeue", "--json", "--states=all"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip() or "squeue failed")
    recs: dict[int, dict[str, str]] = {}
    for job in json.loads(r.stdout).get("jobs", []):
        # squeue 22.05 ignores --jobs together with --json: filter here
        if str(job.get("array_job_id") or "") != job_id and str(job.get("job_id")) != job_id:
            continue
        if str(job.get("array_job_id") or 0) == "0":  # not an array: element 0
            indices = [0]
        elif job.get("array_task_string"):  # the not yet started rest of an array
            indices = _indices(str(job["array_task_string"]))
        else:
            indices = [int(job.get("array_task_id") or 0)]
        for i in indices:
            if only is None or i == only:
                recs[i] = record(job, job_id, i)
    return [recs[i] for i in sorted(recs)]


def _ref(ref: str) -> tuple[str, int | None]:
    m = re.fullmatch(r"(\d+)(?:\[(\d+)\])?", ref.strip())
    if not m:
        raise ValueError(ref)
    return m[1], int(m[2]) if m[2] else None


def bjobs(argv: list[str]) -> int:
    fields, as_json, refs = None, False, []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "-o" and i + 1 < len(argv):
            fields = argv[i + 1].split()
            i += 2
            continue
        if a == "-json":
            as_json = True
        elif a in ("-a", "-w"):
            pass
        elif a.startswith("-"):
            return die(f"{a}: Illegal option.")
        else:
            refs.append(a)
        i += 1
    if as_json and not fields:
        return die("bjobs: the -json option must be used together with the -o option.")
    rows: list[dict[str, str]] = []
    errors: list[str] = []
    try:
        for ref in refs:
            job_id, idx = _ref(ref)
            got = squeue_records(job_id, idx)
            if not got:
                errors.append(f"Job <{ref}> is not found")
            rows += got
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
        return die(f"bjobs: {exc}")
    if as_json and fields:
        keys = [f.split(":")[0].upper() for f in fields]
        records: list[dict[str, str]] = [{k: r.get(k, "") for k in keys} for r in rows]
        records += [{"ERROR": e} for e in errors]
        print(json.dumps({"COMMAND": "bjobs", "JOBS": len(records), "RECORDS": records}, indent=2))
    else:
        if rows:
            print("JOBID   STAT  JOB_NAME")
            for r in rows:
                print(f"{r['JOBID']:<7} {r['STAT']:<5} {r['JOB_NAME']}")
        for e in errors:
            print(e, file=sys.stderr)
    return 255 if errors and not rows else 0


def bkill(argv: list[str]) -> int:
    rc = 0
    for ref in argv:
        try:
            job_id, idx = _ref(ref)
        except ValueError:
            rc = die(f"{ref}: Illegal job ID.")
            continue
        target = f"{job_id}_{idx}" if idx is not None else job_id
        r = subprocess.run(["scancel", target], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            rc = die(f"Job <{ref}>: No matching job found")
        else:
            print(f"Job <{ref}> is being terminated")
    return rc


def bmod(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "-W":
        return die("Usage: bmod -W [hour:]minute JOBID (shim subset)")
    try:
        mins = minutes(argv[1])
        job_id, idx = _ref(argv[2])
    except ValueError:
        return die(f"{argv[1]} {argv[2]}: Bad argument.")
    target = f"{job_id}_{idx}" if idx is not None else job_id
    r = subprocess.run(["scontrol", "update", f"JobId={target}", f"TimeLimit={mins}"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return die(f"{argv[2]}: {r.stderr.strip()}")
    print(f"Parameters of job <{job_id}> are being changed")
    return 0


def main(prog: str, argv: list[str]) -> int:
    return {"bsub": bsub, "bjobs": bjobs, "bkill": bkill, "bmod": bmod}[prog](argv)
