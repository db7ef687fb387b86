"""PBS Pro (``qsub -J``) and Torque (``qsub -t``); status from ``qstat -f``."""

from __future__ import annotations

import re
from pathlib import Path

from s2l2a.engines.scheduler import ElementState, Scheduler, SchedulerError, run_command

_STATES = {"Q": "pending", "H": "pending", "W": "pending", "T": "pending", "S": "pending",
           "R": "running", "E": "running", "B": "running", "X": "done", "F": "done", "C": "done"}


class PBS(Scheduler):
    name = "pbs"
    template = "pbs.sh.j2"
    index_variable = "PBS_ARRAY_INDEX"

    def submit(self, script: Path, cwd: Path) -> str:
        return self.parse_submit(run_command(["qsub", str(script)], cwd=cwd))

    def parse_submit(self, stdout: str) -> str:
        m = re.search(r"^(\d+)(\[\])?(\.\S+)?$", stdout.strip())
        if not m:
            raise SchedulerError(f"qsub answered something unexpected: {stdout.strip()[:200]!r}")
        return stdout.strip()

    def status_argv(self, job_id: str) -> list[str]:
        # Pro: -x includes finished jobs, -t expands array elements; Torque knows -t
        return ["qstat", "-f", "-t", "-x", job_id] if self.options.pbs_flavour == "pro" else ["qstat", "-f", "-t", job_id]

    def parse_status(self, stdout: str, job_id: str) -> dict[int, ElementState]:
        states: dict[int, ElementState] = {}
        base = job_id.split("[")[0].split(".")[0]
        for block in re.split(r"\n(?=Job Id:)", stdout.strip()):
            m = re.match(r"Job Id:\s*(\d+)\[(\d+)\]", block)
            if not m or m[1] != base:
                continue
            index = int(m[2])
            attrs = dict(re.findall(r"^\s+([\w.]+) = (.*)$", block, flags=re.M))
            raw = attrs.get("job_state", "")
            exit_status = attrs.get("Exit_status") or attrs.get("exit_status")
            state = _STATES.get(raw, "unknown")
            if state == "done" and exit_status not in (None, "0"):
                state = "failed"
            states[index] = ElementState(index, state, raw, exit_status, attrs.get("comment"))
        return states

    def cancel_argv(self, job_id: str, index: int | None = None) -> list[str]:
        if index is None:
            return ["qdel", job_id]
        base, _, rest = job_id.partition("[]")
        return ["qdel", f"{base}[{index}]{rest}"]

    def extend_argv(self, job_id: str, walltime_s: int) -> list[str]:
        hms = f"{walltime_s // 3600:02d}:{(walltime_s % 3600) // 60:02d}:{walltime_s % 60:02d}"
        return ["qalter", "-l", f"walltime={hms}", job_id]
