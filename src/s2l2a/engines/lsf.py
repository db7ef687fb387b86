"""IBM Spectrum LSF: ``bsub < script``, ``bjobs -o ... -json``, ``bkill``, ``bmod -W``.

``#BSUB`` lines are only read when the script comes on standard input (``bsub < script``)
unless the site sets LSB_BSUB_PARSE_SCRIPT=Y, so we always submit that way. Memory limits
(-M, rusage[mem]) are in LSF_UNIT_FOR_LIMITS, which is KB when lsf.conf does not set it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from s2l2a.engines.scheduler import ElementState, Scheduler, SchedulerError, run_command

_STATES = {
    "PEND": "pending", "PSUSP": "pending", "WAIT": "pending",
    "RUN": "running", "USUSP": "running", "SSUSP": "running", "PROV": "running",
    "DONE": "done",
    "EXIT": "failed", "ZOMBI": "failed", "UNKWN": "unknown",
}
_UNITS = {"KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4, "PB": 1024**5, "EB": 1024**6}
FIELDS = "jobid jobindex stat exit_code exit_reason"


def detect_unit(lsf_conf: Path | None = None) -> tuple[str, str]:
    """LSF_UNIT_FOR_LIMITS from lsf.conf ($LSF_ENVDIR/lsf.conf, /etc/lsf.conf); KB when unset."""
    candidates = [lsf_conf] if lsf_conf else []
    if os.environ.get("LSF_ENVDIR"):
        candidates.append(Path(os.environ["LSF_ENVDIR"]) / "lsf.conf")
    candidates.append(Path("/etc/lsf.conf"))
    for conf in candidates:
        if conf and conf.is_file():
            for line in conf.read_text(errors="replace").splitlines():
                m = re.match(r"\s*LSF_UNIT_FOR_LIMITS\s*=\s*\"?(\w+)\"?", line)
                if m and m[1].upper() in _UNITS:
                    return m[1].upper(), f"LSF_UNIT_FOR_LIMITS={m[1].upper()} in {conf}"
            return "KB", f"LSF_UNIT_FOR_LIMITS not set in {conf}: KB"
    return "KB", "no lsf.conf found: LSF's default unit KB"


def memory_in_unit(memory_mb: int, unit: str) -> int:
    """MB -> the site's unit, rounded up so a job never gets less than asked."""
    factor = _UNITS[unit.upper()]
    return max(1, -(-memory_mb * 1024**2 // factor))


class LSF(Scheduler):
    name = "lsf"
    template = "lsf.sh.j2"
    index_variable = "LSB_JOBINDEX"

    def unit(self) -> str:
        return (self.options.lsf_unit or detect_unit()[0]).upper()

    def extra_context(self, memory_mb: int) -> dict[str, object]:
        return {"memory_lsf": memory_in_unit(memory_mb, self.unit())}

    def submit(self, script: Path, cwd: Path) -> str:
        return self.parse_submit(run_command(["bsub"], stdin_path=script, cwd=cwd))

    def parse_submit(self, stdout: str) -> str:
        m = re.search(r"Job <(\d+)> is submitted", stdout)
        if not m:
            raise SchedulerError(f"bsub answered something unexpected: {stdout.strip()[:200]!r}")
        return m.group(1)

    def status_argv(self, job_id: str) -> list[str]:
        # -a: also DONE/EXIT elements LSF still remembers; -json only works together with -o
        return ["bjobs", "-a", "-o", FIELDS, "-json", job_id]

    def status(self, job_id: str) -> dict[int, ElementState]:
        # a job LSF forgot (CLEAN_PERIOD) exits 255 with an ERROR record "Job <N> is not found";
        # 255 without such JSON (e.g. "LSF is down") stays an error: nothing must be failed for it
        return self.parse_status(run_command(self.status_argv(job_id), allow_codes=(255,)), job_id)

    def parse_status(self, stdout: str, job_id: str) -> dict[int, ElementState]:
        try:
            doc = json.loads(stdout)
        except json.JSONDecodeError as exc:
            raise SchedulerError(f"bjobs -json gave no JSON: {exc}") from exc
        errors = [str(r["ERROR"]) for r in doc.get("RECORDS", []) if r.get("ERROR")]
        if errors and not any("not found" in e for e in errors):
            raise SchedulerError(f"bjobs: {errors[0]}")
        states: dict[int, ElementState] = {}
        for rec in doc.get("RECORDS", []):
            if str(rec.get("JOBID")) != str(job_id) or rec.get("ERROR"):
                continue
            try:
                index = int(rec.get("JOBINDEX") or 0)
            except ValueError:
                continue
            raw = str(rec.get("STAT", ""))
            states[index] = ElementState(index, _STATES.get(raw, "unknown"), raw,
                                         rec.get("EXIT_CODE") or None, rec.get("EXIT_REASON") or None)
        return states

    def cancel_argv(self, job_id: str, index: int | None = None) -> list[str]:
        return ["bkill", f"{job_id}[{index}]" if index is not None else job_id]

    def extend_argv(self, job_id: str, walltime_s: int) -> list[str]:
        from s2l2a.engines.scheduler import _lsf_minutes

        return ["bmod", "-W", _lsf_minutes(walltime_s), job_id]
