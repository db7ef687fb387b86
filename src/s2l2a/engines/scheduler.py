"""What every batch scheduler has in common: render an array script, submit it, read states.

One small module per scheduler (slurm.py, lsf.py, pbs.py, or a plug-in's: see s2l2a.registry)
fills in the differences: a :class:`Scheduler` subclass declaring its name, template, commands,
its own ``[cluster]`` keys, the names and directives it accepts and the words it uses when it
kills an element, plus the argv of its commands and the parsing of its answers. Nothing here runs
a shell: commands are argv lists, and the script is handed to the scheduler as a file (or on
standard input for LSF's ``bsub < script``).
"""

from __future__ import annotations

import re
import shlex
import subprocess
from abc import ABC, abstractmethod
from dataclasses import MISSING, dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import jinja2

from s2l2a import defaults
from s2l2a.campaign.failures import FailureClass
from s2l2a.campaign.usage import ElementUsage
from s2l2a.engines.directives import (
    MAX_ARRAY_SIZE,
    DeniedOptions,
    NameRule,
    bad_character,
    check_int,
    check_name,
    check_options,
    check_path,
    comment_text,
)
from s2l2a.engines.site import SiteInfo
from s2l2a.errors import S2L2AError
from s2l2a.registry import Section, Setting


class SchedulerError(S2L2AError):
    """A scheduler command failed or answered something we cannot read."""


def _inert(value: object) -> object:
    """Jinja's last word on every ``{{ }}``: nothing with a line break or control character is
    written into a script, whatever a caller forgot to check (values are checked in directives.py)."""
    if isinstance(value, str) and bad_character(value):
        raise SchedulerError(f"refusing to render {value[:40]!r}...: it holds a line break or control character")
    return value


@cache
def templates(package: str) -> jinja2.Environment:
    """The Jinja environment of the ``templates/`` folder of ``package`` (s2l2a's or a plug-in's)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        finalize=_inert,
        # shell scripts, not HTML: values are checked in directives.py, paths quoted with shlex.quote
        autoescape=False,  # noqa: S701
    )


@dataclass(init=False)
class ClusterOptions:
    """Site and queue settings for array submission (the campaign's ``[cluster]`` section).

    The fields are what every scheduler understands; a scheduler's own keys (``lsf_unit``,
    ``pbs_flavour``, ``select``, a plug-in's) are given as keywords too and kept in
    ``scheduler_settings``, where that scheduler reads them (:meth:`Scheduler.setting`).
    """

    queue: str | None = None
    account: str | None = None           # Slurm --account, LSF -P, PBS -A
    run_limit_s: int = 4 * 3600           # the queue's run limit (walltime)
    memory_mb: int = defaults.MEMORY_MB   # per product
    cores_per_job: int = defaults.CORES_PER_JOB
    max_concurrent: int = 0               # %K throttle, 0 = none
    max_array_size: int = 1000            # LSF MAX_JOB_ARRAY_SIZE / Slurm MaxArraySize - 1
    placement: str = "per_product"        # per_product | whole_node
    node_cores: int = 0
    node_memory_mb: int = 0
    exclusive: bool = False               # LSF -x, Slurm --exclusive, PBS place=excl
    extra_directives: list[str] = field(default_factory=list)
    estimate_s: float = 1800.0            # per-product duration before history exists
    startup_s: float = 60.0               # per element: node start, imports, result writing
    scheduler_settings: dict[str, Any] = field(default_factory=dict)
    #: where a value was set (``--run-limit``, ``[cluster] node_cores``): it overrides what the
    #: scheduler says (engines.cluster.cluster_options fills it)
    sources: dict[str, str] = field(default_factory=dict)

    def __init__(self, scheduler_settings: dict[str, Any] | None = None, **values: Any) -> None:
        for f in fields(self):
            if f.name != "scheduler_settings":
                default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
                setattr(self, f.name, values.pop(f.name, default))
        self.scheduler_settings = {**(scheduler_settings or {}), **values}


#: the command-line option and a word on each shared [cluster] key (for error lines and the docs)
_SHARED: dict[str, tuple[str, str | None, str]] = {
    "queue": ("str", "--queue", "queue / partition"),
    "account": ("str", "--account", "account or project (Slurm --account, LSF -P, PBS -A)"),
    "run_limit_s": ("duration", "--run-limit", "the queue's run limit per element; arrays are sized to fit it"),
    "memory_mb": ("int", "--memory-mb", "memory per product (default: [resources] memory_mb)"),
    "cores_per_job": ("int", None, "cores per product (default: [resources] cores_per_job)"),
    "max_concurrent": ("int", "--max-concurrent", "at most K elements of an array at once (%K)"),
    "max_array_size": ("int", None, "the site's largest array (LSF MAX_JOB_ARRAY_SIZE, Slurm MaxArraySize - 1)"),
    "placement": ("str", "--placement", "per_product, or whole_node: exclusive nodes running several at once"),
    "node_cores": ("int", "--node-cores", "cores of a node (whole_node; bounds a job's cores)"),
    "node_memory_mb": ("int", "--node-memory-mb", "usable memory of a node in MB (bounds a job's memory)"),
    "exclusive": ("bool", "--exclusive/--shared", "ask for whole nodes"),
    "extra_directives": ("list", None, "more directive lines, e.g. [\"--gres=gpu:1\"]"),
    "estimate_s": ("float", None, "seconds per product before the campaign has history"),
    "startup_s": ("float", None, "seconds per element for node start, imports, result writing"),
}


def cluster_section() -> Section:
    """``[cluster]``: the shared keys, ``run_limit`` (a duration such as "4h"), and every
    registered scheduler's own keys. Values are checked where they are used, with the chosen
    scheduler's rules (``engines.cluster.cluster_options``), not when s2l2a.toml is read."""
    from s2l2a.registry import schedulers

    defaults = ClusterOptions()
    shared = [Setting(name, kind, getattr(defaults, name), option=option, help=text)
              for name, (kind, option, text) in _SHARED.items()]
    shared.append(Setting("run_limit", "duration", None, option="--run-limit",
                          help="run_limit_s as a duration: 14400, 4h, 90m, 4:00"))
    own: dict[str, Setting] = {}
    for cls in schedulers():
        for setting in cls.settings:
            own.setdefault(setting.key, setting)
    return Section("cluster", tuple(shared) + tuple(own.values()), lazy=True,
                   help="job arrays on a batch scheduler (s2l2a run --engine slurm|lsf|pbs|...)")


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
    """The differences between schedulers; the submission flow lives in ``engines/cluster.py``.

    A subclass declares (class attributes) what the registry, the checks and the selftest need,
    and implements the argv/answer methods below. ``template`` is rendered from the ``templates/``
    folder of ``template_package`` with: campaign_name, array_name, n_elements,
    products_per_element, cpus, memory_mb, walltime_s, max_concurrent, queue, account, exclusive,
    extra_directives, log_dir, worker_command, and whatever :meth:`context` adds.
    """

    name: ClassVar[str]
    template: ClassVar[str]
    template_package: ClassVar[str] = "s2l2a.engines"
    #: the environment variable(s) holding the element's index, first found wins (the selftest reads them)
    index_variables: ClassVar[tuple[str, ...]] = ()
    #: other environment variables worth a line in the selftest report
    env_keys: ClassVar[tuple[str, ...]] = ()
    #: the programs it runs (``s2l2a check`` looks for them on PATH)
    commands: ClassVar[tuple[str, ...]] = ()
    #: prints the scheduler's version (first line goes into the selftest report)
    version_argv: ClassVar[tuple[str, ...]] = ()
    #: its own keys of [cluster], read with :meth:`setting`
    settings: ClassVar[tuple[Setting, ...]] = ()
    #: what it accepts as a queue, account or job name ("queue", "account", "job")
    name_rules: ClassVar[dict[str, NameRule]] = {}
    #: options refused in ``extra_directives`` (None: only the character rules)
    denied_options: ClassVar[DeniedOptions | None] = None
    #: failure vocabulary, see :meth:`classify_end`: lower-case phrases of its output files or
    #: reasons, and upper-case words of its states/reasons, meaning "killed for memory" / "for time"
    memory_words: ClassVar[tuple[str, ...]] = ("out of memory", "oom-kill")  # the kernel's, everywhere
    time_words: ClassVar[tuple[str, ...]] = ()
    memory_states: ClassVar[tuple[str, ...]] = ("MEMORY",)
    time_states: ClassVar[tuple[str, ...]] = ()
    #: upper-case words of a reason meaning a person cancelled it
    cancel_states: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: ClusterOptions) -> None:
        self.options = options

    def setting(self, key: str) -> Any:
        """This scheduler's own [cluster] key: the configured value, else its declared default."""
        declared = next((s for s in self.settings if s.key == key), None)
        if declared is None:
            raise KeyError(f"{self.name} declares no setting {key!r}")
        value = self.options.scheduler_settings.get(key)
        return declared.default if value is None else value

    def context(self, *, walltime_s: int, memory_mb: int) -> dict[str, Any]:
        """Template values only this scheduler needs (its units, time format, flavour)."""
        return {}

    def explain(self) -> list[str]:
        """Lines for the sizing explanation (``run --dry-run``)."""
        return []

    def read_queue(self, queue: str | None) -> SiteInfo:
        """The run limit and memory limit of ``queue`` (the default queue when None), as the
        scheduler states them; may raise (:meth:`read_site` turns that into "unknown")."""
        return SiteInfo(queue, notes=[f"{self.name} does not say what its queues allow"])

    def read_nodes(self, queue: str | None) -> SiteInfo:
        """The cores and memory of the nodes that run ``queue``'s jobs (the smallest bounds a
        whole-node element) and how many there are; may raise like :meth:`read_queue`."""
        return SiteInfo(queue, notes=[f"{self.name} does not say how big its nodes are"])

    def read_site(self, queue: str | None = None) -> SiteInfo:
        """:meth:`read_queue` and :meth:`read_nodes` together; never raises: a command that is
        missing, fails or answers something unreadable leaves its numbers unknown, with a note."""
        if queue is not None and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.@,-]{0,254}", queue):
            return SiteInfo(notes=[f"queue {queue[:40]!r} is not a queue name: not asked"])
        info = SiteInfo(queue)
        for read, what in ((self.read_queue, "queue limits"), (self.read_nodes, "node sizes")):
            try:
                got = read(info.queue or queue)
            except Exception as e:  # noqa: BLE001 - whatever went wrong, sizing goes on without it
                got = SiteInfo(queue, notes=[f"{what} unknown: {str(e).splitlines()[0] if str(e) else type(e).__name__}"])
            info = info.merge(got)
        return info

    def selftest_lines(self) -> list[str]:
        """Lines for the ``s2l2a selftest`` report's header (units, flavours it detected)."""
        return []

    def selftest_check(self, env: dict[str, str]) -> tuple[str, bool | None, str] | None:
        """A check of what an element saw in its environment (``env_keys``): (name, passed or None
        for "cannot tell", detail); None when this scheduler has nothing to check there."""
        return None

    @classmethod
    def memory_kill(cls, state: ElementState) -> str | None:
        """How this scheduler's memory enforcement shows when its words do not say so (e.g. a
        bare SIGKILL), as the start of a message; None when it does not show that way."""
        return None

    @classmethod
    def classify_end(cls, state: ElementState | None, output_tail: str = "") -> tuple[FailureClass, str] | None:
        """Why an element that left no result file ended, in this scheduler's words; None when
        its words say nothing (the caller then classifies by the state alone).

        ``output_tail`` is the end of the element's own output files, where the scheduler's
        daemons say why they killed it when the state alone is ambiguous (a batch shell that
        outlives its killed worker exits 137 and reads like any SIGKILL); PBS says it in the
        job's comment (``state.reason``).
        """
        if state is None:
            return None
        reason = state.reason or ""
        if state.state in ("failed", "cancelled"):
            tail = f"{output_tail} {reason}".lower()
            said = " ".join(x for x in (state.raw_state, state.exit_code or "", reason) if x)
            if any(w in tail for w in cls.memory_words):
                return FailureClass.OUT_OF_MEMORY, (f"{cls.name} killed it for exceeding its memory limit "
                                                    f"({said}; see its output file)")
            if any(w in tail for w in cls.time_words) and state.state != "cancelled":
                return FailureClass.TIMEOUT, f"{cls.name} stopped it at its run limit ({said}; see its output file)"
        text = f"{state.raw_state} {state.exit_code or ''} {reason}".strip()
        upper = f"{state.raw_state} {reason}".upper()
        if any(w in upper for w in cls.memory_states):
            return FailureClass.OUT_OF_MEMORY, f"{cls.name} killed it for exceeding its memory limit ({text})"
        killed_for_memory = cls.memory_kill(state)
        if killed_for_memory:
            return FailureClass.OUT_OF_MEMORY, f"{killed_for_memory} ({text})"
        if any(w in upper for w in cls.time_states):
            return FailureClass.TIMEOUT, f"{cls.name} stopped it at its run limit ({text})"
        if any(w in upper for w in cls.cancel_states):
            return FailureClass.KILLED, f"cancelled through {cls.name} ({text})"
        return None

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
            exclusive=o.exclusive or o.placement == "whole_node",
            extra_directives=list(o.extra_directives), log_dir=log_dir,
            worker_command=shlex.join(worker_argv), walltime_s=walltime_s,
        )
        ctx.update(self.context(walltime_s=walltime_s, memory_mb=memory_mb))
        return _only_exec_runs(templates(self.template_package).get_template(self.template).render(**ctx))

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
    #: the form of the status command this site answers once found out ("text": the richer one
    #: was refused), None while not known; kept in the array record (campaign/cluster.py) so that
    #: a later process does not ask again. Only schedulers with several forms set it (LSF).
    status_form: str | None = None

    def status(self, job_id: str) -> dict[int, ElementState]:
        """Element states; {} when the scheduler no longer knows the job (result files decide)."""
        try:
            return self.parse_status(run_command(self.status_argv(job_id)), job_id)
        except SchedulerError as e:
            if any(m in str(e) for m in self.forgotten_markers):
                return {}
            raise

    def usage(self, job_id: str) -> dict[int, ElementUsage]:
        """CPU time and peak memory per element as the scheduler's accounting knows them; {} where
        it keeps none (the workers' own measurement, :mod:`s2l2a.campaign.usage`, is then all
        there is). May raise SchedulerError."""
        return {}

    @classmethod
    def usage_from_output(cls, output_start: str) -> tuple[float | None, float | None]:
        """(CPU seconds, peak MB) from the start of an element's output file, where some
        schedulers write a job report (LSF); (None, None) when there is none."""
        return None, None

    @abstractmethod
    def cancel_argv(self, job_id: str, index: int | None = None) -> list[str]:
        ...

    def cancel(self, job_id: str, index: int | None = None) -> None:
        run_command(self.cancel_argv(job_id, index))

    @abstractmethod
    def extend_argv(self, job_id: str, walltime_s: int) -> list[str]:
        ...

    def extend(self, job_id: str, walltime_s: int) -> None:
        run_command(self.extend_argv(job_id, walltime_s))


def _only_exec_runs(script: str) -> str:
    """The invariant the checks above keep: bash runs exactly one line, the final ``exec``; every
    other line is a comment, a directive or empty."""
    lines = script.splitlines()
    code = [ln for ln in lines[1:] if ln.strip() and not ln.startswith("#")]
    if not lines or lines[0] != "#!/bin/bash" or len(code) != 1 or not code[0].startswith("exec "):
        raise SchedulerError("internal error: the rendered script has lines bash would run besides its exec line")
    return script


def hms(seconds: int) -> str:
    """``HH:MM:SS`` (Slurm --time, PBS walltime)."""
    return f"{seconds // 3600:02d}:{(seconds % 3600) // 60:02d}:{seconds % 60:02d}"
