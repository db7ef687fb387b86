"""PBS Pro (``qsub -J``) and Torque (``qsub -t``); status from ``qstat -f``."""

from __future__ import annotations

import re
from pathlib import Path

from s2l2a.engines import site
from s2l2a.engines.directives import JOB_NAME, WORD, WORD_ALLOWED, DeniedOptions, NameRule, refuse, shown
from s2l2a.engines.scheduler import ElementState, Scheduler, SchedulerError, hms, run_command
from s2l2a.registry import Setting


def _flavour(label: str, value: object) -> None:
    if value not in ("pro", "torque"):
        raise refuse(label, f"pro or torque, not {shown(value)}")


_STATES = {"Q": "pending", "H": "pending", "W": "pending", "T": "pending", "S": "pending",
           "R": "running", "E": "running", "B": "running", "X": "done", "F": "done", "C": "done"}


class PBS(Scheduler):
    name = "pbs"
    template = "pbs.sh.j2"
    index_variables = ("PBS_ARRAY_INDEX", "PBS_ARRAYID")  # PBS Pro, Torque
    env_keys = ("PBS_JOBID", "PBS_ARRAY_INDEX", "PBS_ARRAYID", "PBS_QUEUE")
    commands = ("qsub", "qstat", "qdel")
    version_argv = ("qstat", "--version")
    settings = (Setting("pbs_flavour", "str", "pro", option="--pbs-flavour", check=_flavour,
                        help="pro (PBS Pro, OpenPBS: qsub -J) or torque (qsub -t)"),)
    name_rules = {
        "queue": NameRule(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}(@[A-Za-z0-9][A-Za-z0-9.-]*)?", 255,
                          "queue[@server], a queue name of at most 15 " + WORD_ALLOWED,
                          "qsub(1B) -q, PBS_MAXQUEUENAME 15", "PBS queue (-q) destination"),
        "account": NameRule(WORD, 255, WORD_ALLOWED, "qsub(1B) -A", "PBS account (-A)"),
        "job": JOB_NAME,
    }
    denied_options = DeniedOptions(  # qsub(1B); -W attributes that move/delete files or wait
        short="SCJtNojekIXGvVR", flags="fGhIVXz", w_attributes=("stagein", "stageout", "sandbox", "block"))
    # "Job exceeded resource mem" / "... walltime" in the job's comment
    memory_words = Scheduler.memory_words + ("exceeded resource mem", "exceeded resource pmem")
    time_words = ("walltime",)
    time_states = ("WALLTIME",)

    def context(self, *, walltime_s: int, memory_mb: int) -> dict[str, object]:
        return {"walltime_hms": hms(walltime_s), "flavour": self.setting("pbs_flavour")}

    def submit(self, script: Path, cwd: Path) -> str:
        return self.parse_submit(run_command(["qsub", str(script)], cwd=cwd))

    def parse_submit(self, stdout: str) -> str:
        m = re.search(r"^(\d+)(\[\])?(\.\S+)?$", stdout.strip())
        if not m:
            raise SchedulerError(f"qsub answered something unexpected: {stdout.strip()[:200]!r}")
        return stdout.strip()

    def status_argv(self, job_id: str) -> list[str]:
        # Pro: -x includes finished jobs, -t expands array elements; Torque knows -t
        return ["qstat", "-f", "-t", "-x", job_id] if self.setting("pbs_flavour") == "pro" else ["qstat", "-f", "-t", job_id]

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

    def read_queue(self, queue: str | None) -> site.SiteInfo:
        # a destination "queue@server" is read on its server; no queue: the server's default_queue
        name = queue or site.pbs_default_queue(run_command(["qstat", "-Bf"], timeout=15))
        if not name:
            return site.SiteInfo(notes=["qstat -Bf names no default_queue"])
        return site.pbs_queue(run_command(["qstat", "-Qf", name], timeout=15), name.split("@")[0])

    def read_nodes(self, queue: str | None) -> site.SiteInfo:
        return site.pbsnodes(run_command(["pbsnodes", "-a"], timeout=15), (queue or "").split("@")[0] or None)

    def cancel_argv(self, job_id: str, index: int | None = None) -> list[str]:
        if index is None:
            return ["qdel", job_id]
        base, _, rest = job_id.partition("[]")
        return ["qdel", f"{base}[{index}]{rest}"]

    def extend_argv(self, job_id: str, walltime_s: int) -> list[str]:
        return ["qalter", "-l", f"walltime={hms(walltime_s)}", job_id]
