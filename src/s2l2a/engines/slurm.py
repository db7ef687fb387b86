"""Slurm: ``sbatch --array``, ``squeue --json``, ``scancel``, ``scontrol update TimeLimit``.

Slurm forgets finished jobs after MinJobAge (300 s by default), so what squeue does not list
any more is 'unknown' here; the campaign's result files are the truth.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from s2l2a.campaign.usage import ElementUsage
from s2l2a.engines import site
from s2l2a.engines.directives import JOB_NAME, WORD, WORD_ALLOWED, DeniedOptions, NameRule
from s2l2a.engines.scheduler import ElementState, Scheduler, SchedulerError, hms, run_command

_STATES = {
    "PENDING": "pending", "CONFIGURING": "pending", "REQUEUED": "pending", "REQUEUE_HOLD": "pending",
    "REQUEUE_FED": "pending", "RESV_DEL_HOLD": "pending", "SUSPENDED": "pending",
    "RUNNING": "running", "COMPLETING": "running", "STAGE_OUT": "running", "SIGNALING": "running",
    "RESIZING": "running",
    "COMPLETED": "done",
    "FAILED": "failed", "TIMEOUT": "failed", "OUT_OF_MEMORY": "failed", "NODE_FAIL": "failed",
    "BOOT_FAIL": "failed", "DEADLINE": "failed", "PREEMPTED": "failed",
    "CANCELLED": "cancelled", "REVOKED": "cancelled",
}


def _first(value: object) -> str:
    """Slurm 22.05 gives a string, 23.02+ a list of flags."""
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return str(value or "")


def _exit_code(value: object) -> str | None:
    if isinstance(value, dict):  # 23.02+: {"status": [...], "return_code": {"number": N}, "signal": {...}}
        rc = value.get("return_code")
        rc = rc.get("number") if isinstance(rc, dict) else rc
        sig = value.get("signal", {})
        sig = sig.get("id", {}).get("number") if isinstance(sig, dict) and isinstance(sig.get("id"), dict) else None
        return f"{rc or 0}:{sig or 0}"
    if isinstance(value, int):  # 22.05: the raw wait status, as "return code:signal" like sacct
        return f"{value >> 8}:{value & 0x7F}"
    return None if value is None else str(value)


def _expand(task_string: str) -> list[int]:
    """'2-4%1' / '1,3,5-7' -> indices (the pending remainder of an array)."""
    out: list[int] = []
    for part in task_string.split("%")[0].split(","):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?(?::(\d+))?", part)
        if not m:
            continue
        lo, hi, step = int(m[1]), int(m[2] or m[1]), int(m[3] or 1)
        out.extend(range(lo, hi + 1, step))
    return out


def slurm_mb(text: str) -> float | None:
    """MaxRSS as ``--noconvert`` writes it (bytes) or with a K/M/G suffix -> MB; None when empty."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)", text.strip())
    if not m:
        return None
    return float(m[1]) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}[m[2]] / 2**20


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def parse_sacct(text: str, job_id: str) -> dict[int, ElementUsage]:
    """``sacct -j ID -P -n --noconvert --format=JobID,TotalCPU,MaxRSS,Elapsed,State`` -> per
    element: TotalCPU and Elapsed of its allocation line (``ID_3``), the largest MaxRSS of its
    steps (``ID_3.batch``, ``ID_3.0``)."""
    found: dict[int, ElementUsage] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 5:
            continue
        m = re.fullmatch(rf"{re.escape(str(job_id))}_(\d+)(\.\S+)?", parts[0])
        if not m:
            continue
        index = int(m[1])
        u = found.setdefault(index, ElementUsage(index, source="sacct"))
        u.peak_mb = _max(u.peak_mb, slurm_mb(parts[2]))
        if m[2] is None:
            u.cpu_s = site.slurm_seconds(parts[1])
            u.wall_s = site.slurm_seconds(parts[3])
            u.state = _STATES.get(parts[4].split()[0] if parts[4] else "", "unknown")
    return found


class Slurm(Scheduler):
    name = "slurm"
    template = "slurm.sh.j2"
    index_variables = ("SLURM_ARRAY_TASK_ID",)
    env_keys = ("SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_JOB_ID", "SLURM_MEM_PER_NODE",
                "SLURM_MEM_PER_CPU")
    commands = ("sbatch", "squeue", "scancel")
    version_argv = ("sbatch", "--version")
    forgotten_markers = ("Invalid job id",)
    name_rules = {
        "queue": NameRule(rf"{WORD}(,{WORD})*", 255, WORD_ALLOWED + "; ',' between partitions",
                          "sbatch(1) --partition, slurm.conf(5) PartitionName", "Slurm partition name"),
        "account": NameRule(WORD, 255, WORD_ALLOWED, "sbatch(1) --account", "Slurm account name"),
        "job": JOB_NAME,
    }
    denied_options = DeniedOptions(  # sbatch(1)
        long=("--wrap", "--export", "--export-file", "--array", "--job-name", "--output", "--error", "--input",
              "--chdir"),
        short="aJoeiD",
        flags="bhHIOQsuvV",  # sbatch's single-letter options that take no argument (getopt groups them)
    )
    # slurmstepd: "Exceeded job memory limit", "Detected 1 oom-kill event(s)"; "CANCELLED ... DUE TO TIME LIMIT"
    memory_words = Scheduler.memory_words + ("exceeded job memory limit", "exceeded memory limit",
                                             "exceeded step memory limit")
    time_words = ("due to time limit",)
    time_states = ("TIMEOUT", "DEADLINE")

    def context(self, *, walltime_s: int, memory_mb: int) -> dict[str, object]:
        return {"walltime_slurm": hms(walltime_s)}

    def selftest_check(self, env: dict[str, str]) -> tuple[str, bool | None, str] | None:
        mem, asked = env.get("SLURM_MEM_PER_NODE"), self.options.memory_mb
        return ("memory request", mem == str(asked) if mem else None, f"SLURM_MEM_PER_NODE={mem} for --mem={asked}M")

    @classmethod
    def memory_kill(cls, state: ElementState) -> str | None:
        code = state.exit_code or ""
        if state.raw_state == "FAILED" and (code.endswith(":9") or code.split(":")[0] == "137"):
            # the over-memory kill (JobAcctGatherParams=OverMemoryKill) shows as SIGKILL
            return "killed by SIGKILL, Slurm's memory enforcement"
        return None

    def submit(self, script: Path, cwd: Path) -> str:
        return self.parse_submit(run_command(["sbatch", "--parsable", str(script)], cwd=cwd))

    def parse_submit(self, stdout: str) -> str:
        line = stdout.strip().splitlines()[-1] if stdout.strip() else ""
        m = re.match(r"^(\d+)(?:;\S+)?$", line) or re.search(r"Submitted batch job (\d+)", stdout)
        if not m:
            raise SchedulerError(f"sbatch answered something unexpected: {stdout.strip()[:200]!r}")
        return m.group(1)

    def status_argv(self, job_id: str) -> list[str]:
        # squeue --json in 22.05 ignores --jobs; we filter on array_job_id ourselves
        return ["squeue", "--json", "--states=all", "--jobs", job_id]

    def parse_status(self, stdout: str, job_id: str) -> dict[int, ElementState]:
        try:
            doc = json.loads(stdout)
        except json.JSONDecodeError as exc:
            raise SchedulerError(f"squeue --json gave no JSON: {exc}") from exc
        states: dict[int, ElementState] = {}
        for job in doc.get("jobs", []):
            array_id = job.get("array_job_id")
            array_id = array_id.get("number") if isinstance(array_id, dict) else array_id
            if str(array_id) != str(job_id):
                continue
            raw = _first(job.get("job_state"))
            state = _STATES.get(raw, "unknown")
            reason = str(job.get("state_reason") or "") or None
            exit_code = _exit_code(job.get("exit_code"))
            task = job.get("array_task_id")
            task = task.get("number") if isinstance(task, dict) and task.get("set", True) else task
            indices = [int(task)] if isinstance(task, int) else _expand(str(job.get("array_task_string") or ""))
            for i in indices:
                states[i] = ElementState(i, state, raw, exit_code, reason if reason != "None" else None)
        return states

    def read_queue(self, queue: str | None) -> site.SiteInfo:
        # the first of a list of partitions ("a,b") is read; -o: one line per partition
        name = queue.split(",")[0] if queue else None
        argv = ["scontrol", "show", "partition", *([name] if name else []), "-o"]
        return site.slurm_partition(run_command(argv, timeout=15), name)

    def read_nodes(self, queue: str | None) -> site.SiteInfo:
        if not queue:
            return site.SiteInfo(notes=["no partition to ask sinfo about"])
        name = queue.split(",")[0]
        argv = ["sinfo", "-N", "-h", "-p", name, "-o", "%N|%c|%m|%T"]
        return site.sinfo_nodes(run_command(argv, timeout=15), name)

    def usage(self, job_id: str) -> dict[int, ElementUsage]:
        """CPU time and peak memory per element from ``sacct`` where accounting is kept; without
        it ("accounting storage is disabled") ``sstat`` of the running elements' batch steps."""
        try:
            return parse_sacct(run_command(["sacct", "-j", job_id, "-P", "-n", "--noconvert",
                                            "--format=JobID,TotalCPU,MaxRSS,Elapsed,State"]), job_id)
        except SchedulerError as e:
            if "accounting storage is disabled" not in str(e):
                raise
        # sstat knows a running element only by its own job id: squeue maps them
        running = run_command(["squeue", "--jobs", job_id, "--noheader", "--states=running", "--format=%i|%A"])
        ids = {}
        for line in running.splitlines():
            m = re.fullmatch(rf"{re.escape(job_id)}_(\d+)\|(\d+)", line.strip())
            if m:
                ids[m[2]] = int(m[1])
        if not ids:
            return {}
        steps = run_command(["sstat", "-a", "-j", ",".join(sorted(ids)), "-P", "-n", "--noconvert",
                             "--format=JobID,AveCPU,MaxRSS"], allow_codes=(1,))
        found: dict[int, ElementUsage] = {}
        for line in steps.splitlines():
            parts = line.strip().split("|")
            if len(parts) != 3 or parts[0].split(".")[0] not in ids:
                continue
            index = ids[parts[0].split(".")[0]]
            u = found.setdefault(index, ElementUsage(index, source="sstat", state="running"))
            u.cpu_s = _max(u.cpu_s, site.slurm_seconds(parts[1]))
            u.peak_mb = _max(u.peak_mb, slurm_mb(parts[2]))
        return found

    def cancel_argv(self, job_id: str, index: int | None = None) -> list[str]:
        return ["scancel", f"{job_id}_{index}" if index is not None else job_id]

    def extend_argv(self, job_id: str, walltime_s: int) -> list[str]:
        minutes = max(1, (walltime_s + 59) // 60)
        return ["scontrol", "update", f"JobId={job_id}", f"TimeLimit={minutes}"]
