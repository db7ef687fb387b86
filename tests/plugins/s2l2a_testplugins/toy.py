"""A toy batch scheduler: the worked example of adding a scheduler to s2l2a (docs/architecture.md,
"How to add a scheduler / processor / source"; tests/test_plugins.py follows the steps).

Its commands (``toysub``, ``toystat``, ``toydel``, ``toyextend``) do not exist anywhere: the test
renders its script, runs the script's one line with a stub, and parses recorded answers. What a
real scheduler module adds is only more of the same: its directives, argv and answers.
"""

from __future__ import annotations

import re
from pathlib import Path

from s2l2a.engines.directives import DeniedOptions, check_int
from s2l2a.engines.scheduler import ElementState, Scheduler, SchedulerError, run_command
from s2l2a.registry import Setting

_STATES = {"WAITING": "pending", "RUNNING": "running", "DONE": "done", "FAILED": "failed", "KILLED": "cancelled"}


def _priority(label: str, value: object) -> None:
    check_int(label, value, low=0, high=9)


class Toy(Scheduler):
    """Arrays are ``#TOY`` directives; the element index comes in ``$TOY_INDEX``."""

    name = "toy"
    template = "toy.sh.j2"
    template_package = "s2l2a_testplugins"       # templates/toy.sh.j2 of this package
    index_variables = ("TOY_INDEX",)
    env_keys = ("TOY_JOB", "TOY_INDEX")
    commands = ("toysub", "toystat", "toydel")
    version_argv = ("toysub", "--version")
    settings = (Setting("toy_priority", "int", 0, option="--toy-priority", check=_priority,
                        help="the toy queue's priority, 0-9"),)
    denied_options = DeniedOptions(long=("--elements", "--output"))
    memory_words = Scheduler.memory_words + ("toy: over memory",)
    time_words = ("toy: out of time",)
    time_states = ("OVERTIME",)

    def context(self, *, walltime_s: int, memory_mb: int) -> dict[str, object]:
        return {"priority": self.setting("toy_priority")}

    def submit(self, script: Path, cwd: Path) -> str:
        return self.parse_submit(run_command(["toysub", str(script)], cwd=cwd))

    def parse_submit(self, stdout: str) -> str:
        m = re.search(r"^toy job (\d+) queued$", stdout.strip(), flags=re.M)
        if not m:
            raise SchedulerError(f"toysub answered something unexpected: {stdout.strip()[:200]!r}")
        return m[1]

    def status_argv(self, job_id: str) -> list[str]:
        return ["toystat", job_id]

    def parse_status(self, stdout: str, job_id: str) -> dict[int, ElementState]:
        """Lines ``<job>.<index> <STATE> [exit <code>] [<reason ...>]``."""
        out: dict[int, ElementState] = {}
        for line in stdout.splitlines():
            m = re.fullmatch(r"(\d+)\.(\d+) ([A-Z]+)(?: exit (\d+))?(?: (.*))?", line.strip())
            if m and m[1] == job_id:
                index = int(m[2])
                out[index] = ElementState(index, _STATES.get(m[3], "unknown"), m[3], m[4], m[5] or None)
        return out

    forgotten_markers = ("no such toy job",)

    def cancel_argv(self, job_id: str, index: int | None = None) -> list[str]:
        return ["toydel", job_id if index is None else f"{job_id}.{index}"]

    def extend_argv(self, job_id: str, walltime_s: int) -> list[str]:
        return ["toyextend", job_id, str(int(walltime_s))]
