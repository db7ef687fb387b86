"""What every batch scheduler has in common: render an array script, submit it, read states.

One small module per scheduler (slurm.py, lsf.py, pbs.py) fills in the differences: the
template, the argv of its commands and the parsing of its answers. Nothing here runs a
shell: commands are argv lists, and the script is handed to the scheduler as a file (or on
standard input for LSF's ``bsub < script``).
"""

from __future__ import annotations

import re
import shlex
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from s2l2a.engines.directives import (
    MAX_ARRAY_SIZE,
    bad_character,
    check_int,
    check_name,
    check_options,
    check_path,
    comment_text,
)
from s2l2a.errors import S2L2AError


class SchedulerError(S2L2AError):
    """A scheduler command failed or answered something we cannot read."""


def _inert(value: object) -> object:
    """Jinja's last word on every ``{{ }}``: nothing with a line break or control character is
    written into a script, whatever a caller forgot to check (values are checked in directives.py)."""
    if isinstance(value, str) and bad_character(value):
        raise SchedulerError(f"refusing to render {value[:40]!r}...: it holds a line break or control character")
    return value


TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("s2l2a.engines", "templates"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    finalize=_inert,
    # shell scripts, not HTML: values are checked in directives.py, paths quoted with shlex.quote
    autoescape=False,  # noqa: S701
)


@dataclass
class ClusterOptions:
    """Site and queue settings for array submission (the campaign's ``[cluster]`` section)."""

    queue: str | None = None
    account: str | None = None           # Slurm --account, LSF -P, PBS -A
    run_limit_s: int = 4 * 3600           # the queue's run limit (walltime)
    memory_mb: int = 4096                 # per product
    cores_per_job: int = 1
    max_concurrent: int = 0               # %K throttle, 0 = none
    max_array_size: int = 1000            # LSF MAX_JOB_ARRAY_SIZE / Slurm MaxArraySize - 1
    placement: str = "per_product"        # per_product | whole_node
    node_cores: int = 0
    node_memory_mb: int = 0
    exclusive: bool = False               # LSF -x, Slurm --exclusive, PBS place=excl
    select: str | None = None             # LSF select[...] string
    extra_directives: list[str] = field(default_factory=list)
    lsf_unit: str | None = None           # LSF_UNIT_FOR_LIMITS; None = detect from lsf.conf, KB if unset
    pbs_flavour: str = "pro"              # pro | torque
    estimate_s: float = 1800.0            # per-product duration before history exists
    startup_s: float = 60.0               # per element: node start, imports, result writing


@dataclass
class ElementState:
    """One array element as the scheduler sees it, mapped to our vocabulary."""

    index: int
    state: str            # pending | running | done | failed | cancelled | unknown
    raw_state: str
    exit_code: str | None = None
    reason: str | None = None


def run_command(argv: list[str], *, stdin_path: Path | None = None, cwd: Path | None = None,
                timeout: float = 120, allow_codes: tuple[int, ...] = ()) -> str:
    """Run a scheduler command; a non-zero exit becomes a one-line SchedulerError.

    Submissions run with ``cwd`` = the campaign directory, so the scripts' log paths can be
    relative: directive lines are not shell-parsed and cannot quote a path with spaces.
    """
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        proc = subprocess.run(argv, stdin=stdin, capture_output=True, text=True, timeout=timeout, check=False,
                              cwd=cwd)
    except FileNotFoundError as exc:
        raise SchedulerError(f"{argv[0]} not found: is this a login node of the cluster?") from exc
    except subprocess.TimeoutExpired as exc:
        raise SchedulerError(f"{shlex.join(argv)} did not answer within {timeout:.0f} s") from exc
    finally:
        if stdin_path:
            stdin.close()
    if proc.returncode != 0 and proc.returncode not in allow_codes:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise SchedulerError(f"{shlex.join(argv)} failed ({proc.returncode}): {msg[-1] if msg else 'no output'}")
    return proc.stdout


class Scheduler(ABC):
    """The differences between schedulers; the submission flow lives in ``cluster.py``."""

    name: str
    template: str
    index_variable: str

    def __init__(self, options: ClusterOptions) -> None:
        self.options = options

    def render(self, *, campaign_name: str, array_name: str, n_elements: int, products_per_element: int,
               parallel: int, walltime_s: int, log_dir: str, worker_argv: list[str]) -> str:
        """The array script. ``log_dir`` is relative to the campaign directory (the submit cwd).

        Every value is checked first (directives.py): a hostile one is refused with one line,
        never rendered. The campaign name only reaches a comment, made inert; the worker's argv
        is the one line bash runs, each word shlex-quoted.
        """
        if (not re.fullmatch(r"[A-Za-z0-9_./-]{1,255}", log_dir) or log_dir.startswith("/")
                or ".." in log_dir.split("/")):
            raise SchedulerError(f"log directory {log_dir!r} must be relative and free of spaces/quotes")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", array_name):
            raise SchedulerError(f"array name {array_name!r} may only hold letters, digits, '.', '_' and '-'")
        o = self.options
        check_options(self.name, o)
        check_name("array name", array_name, self.name, "job")
        for i, word in enumerate(worker_argv):
            check_path("python" if i == 0 else "worker command", word)
        parallel = check_int("products per element", parallel, low=1, high=MAX_ARRAY_SIZE)
        check_int("array elements", n_elements, low=1, high=min(MAX_ARRAY_SIZE, o.max_array_size))
        check_int("products per element", products_per_element, low=1, high=MAX_ARRAY_SIZE)
        check_int("element walltime (s)", walltime_s, low=1, high=int(o.run_limit_s))
        cpus = o.cores_per_job * parallel
        memory_mb = o.memory_mb * parallel
        ctx = dict(
            campaign_name=comment_text(campaign_name), array_name=array_name, n_elements=n_elements,
            products_per_element=products_per_element, cpus=cpus, memory_mb=memory_mb,
            max_concurrent=o.max_concurrent, queue=o.queue, account=o.account,
            exclusive=o.exclusive or o.placement == "whole_node", select=o.select,
            extra_directives=list(o.extra_directives), log_dir=log_dir,
            worker_command=shlex.join(worker_argv), walltime_s=walltime_s,
            walltime_hms=_hms(walltime_s), walltime_slurm=_hms(walltime_s),
            walltime_lsf=_lsf_minutes(walltime_s),
            flavour=o.pbs_flavour,
        )
        ctx.update(self.extra_context(memory_mb))
        return _only_exec_runs(TEMPLATES.get_template(self.template).render(**ctx))

    def extra_context(self, memory_mb: int) -> dict[str, object]:
        return {}

    @abstractmethod
    def submit(self, script: Path, cwd: Path) -> str:
        """Submit the array script from ``cwd`` (the campaign directory), return the array job id."""

    @abstractmethod
    def parse_submit(self, stdout: str) -> str:
        """The job id from the submit command's answer."""

    @abstractmethod
    def status_argv(self, job_id: str) -> list[str]:
        ...

    @abstractmethod
    def parse_status(self, stdout: str, job_id: str) -> dict[int, ElementState]:
        """Element index -> state, for the elements the scheduler still remembers."""

    #: error texts meaning "no such job": the scheduler forgot it (not: the scheduler is down)
    forgotten_markers: tuple[str, ...] = ()

    def status(self, job_id: str) -> dict[int, ElementState]:
        """Element states; {} when the scheduler no longer knows the job (result files decide)."""
        try:
            return self.parse_status(run_command(self.status_argv(job_id)), job_id)
        except SchedulerError as e:
            if any(m in str(e) for m in self.forgotten_markers):
                return {}
            raise

    @abstractmethod
    def cancel_argv(self, job_id: str, index: int | None = None) -> list[str]:
        ...

    def cancel(self, job_id: str, index: int | None = None) -> None:
        run_command(self.cancel_argv(job_id, index))

    @abstractmethod
    def extend_argv(self, job_id: str, walltime_s: int) -> list[str]:
        ...


def _only_exec_runs(script: str) -> str:
    """The invariant the checks above keep: bash runs exactly one line, the final ``exec``; every
    other line is a comment, a directive or empty."""
    lines = script.splitlines()
    code = [ln for ln in lines[1:] if ln.strip() and not ln.startswith("#")]
    if not lines or lines[0] != "#!/bin/bash" or len(code) != 1 or not code[0].startswith("exec "):
        raise SchedulerError("internal error: the rendered script has lines bash would run besides its exec line")
    return script


def _hms(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{(seconds % 3600) // 60:02d}:{seconds % 60:02d}"


def _lsf_minutes(seconds: int) -> str:
    """LSF's -W is [hours:]minutes: round up, never 0:00 (which LSF reads as no time at all)."""
    minutes = max(1, -(-int(seconds) // 60))
    return f"{minutes // 60}:{minutes % 60:02d}"
