"""What may reach a cluster job script: every value checked in one place before it is rendered.

A job script is read twice: the scheduler reads its ``#SBATCH``/``#BSUB``/``#PBS`` lines and bash
runs every other line. A line break inside a value ends a directive or comment line and starts one
that bash executes; a ``;``, quote or bracket changes what the scheduler's own parser sees. So every
value that reaches a script or a directive is checked where it enters (command-line option,
``[cluster]`` setting, campaign name, paths) and anything else is refused with one line naming the
option (``--queue: ...``, ``[cluster] select: ...``) before a script is written or submitted.

- **No line breaks or control characters anywhere**: Unicode categories Cc (NUL, CR, LF, NEL
  U+0085 ...), Cf (bidirectional overrides ...), Zl/Zp (U+2028, U+2029) and Cs.
- **Names** (queue/partition, account/project, job/array name) use what the scheduler allows,
  narrowed to characters that mean nothing to bash or to a directive parser (each scheduler
  module declares its ``name_rules``; a scheduler that declares none gets :data:`COMMON_NAME`):

  - Slurm: sbatch(1) ``--partition`` takes a comma-separated list of partitions; slurm.conf(5)
    ``PartitionName`` values end at white space and ``#`` starts a comment there; no other
    character rule is documented, so letters, digits, ``_ . -`` (and ``,`` between partitions),
    at most 255 characters (our limit).
  - LSF: lsb.queues(5) ``QUEUE_NAME``: letters, digits, ``_`` and ``-``, at most 59 characters;
    bsub ``-P``: project names up to 511 characters; bsub ``-J``: job names up to 4094 characters.
  - PBS: qsub(1B) ``-q queue[@server]`` with queue names of at most 15 characters
    (``PBS_MAXQUEUENAME`` in pbs_ifl.h, OpenPBS and Torque); ``-N``: up to 236 characters, an
    alphanumeric first, then printable non-white-space; ``-A``: any string (we allow a name).

- **Paths** (campaign directory, Python, log directory) may hold spaces and quotes: they are
  quoted with :func:`shlex.quote` in the ``exec`` line, the only line bash reads; the log
  directory is relative to the submit directory and of name characters only, because directive
  lines (``#SBATCH --output=``) are not read by a shell and cannot quote.
- **The campaign name** only appears in a comment line, with anything but printable characters
  replaced (:func:`comment_text`).
- **LSF ``select``** (lsf.py's own setting) is rendered inside ``-R "... select[...]"``: resource
  names, numbers and LSF's operators only; ``[``, ``]`` and quotes would end the string early.
- **Extra directives** are whole options for the scheduler (``--gres=gpu:1``, ``-R "span[ptile=16]"``,
  ``-l feature=x``): printable ASCII without ``$``, backtick, ``;``, backslash or ``#``, with
  balanced quotes, and none of the options that run a command, change the job's shell,
  environment, input or output files, or clash with what s2l2a sets itself (array, job name,
  output paths): each scheduler module's ``denied_options`` (:class:`DeniedOptions`).
- **Numbers** that reach directives are whole, finite and in range: cores and memory per job
  positive and at most the node's (``node_cores``/``node_memory_mb``, ``--node-cores``/
  ``--node-memory-mb``) when known, else at most ``MAX_NODE_CORES``/``MAX_NODE_MEMORY_MB``; run
  limits and estimates positive and at most ``MAX_RUN_LIMIT_S``; array sizes and throttles at most
  ``MAX_ARRAY_SIZE``. The submitting machine's own size says nothing about the nodes, so it is
  not used here.
"""

from __future__ import annotations

import math
import re
import shlex
import unicodedata
from dataclasses import dataclass
from typing import Any

from s2l2a.errors import ConfigError

#: cores of the largest nodes s2l2a expects when the node size is not configured (shared-memory
#: machines reach a few thousand hardware threads); set ``[cluster] node_cores`` to go beyond
MAX_NODE_CORES = 4096
#: memory of the largest node s2l2a expects when ``node_memory_mb`` is not set: 32 TiB
MAX_NODE_MEMORY_MB = 32 * 1024 * 1024
#: one year: longer run limits or estimates are typing mistakes
MAX_RUN_LIMIT_S = 366 * 86400
#: LSF's MAX_JOB_ARRAY_SIZE upper bound (bsub -J); Slurm's MaxArraySize and PBS's are smaller
MAX_ARRAY_SIZE = 2_147_483_646
MAX_TEXT = 1024
_BAD_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def shown(value: Any, limit: int = 40) -> str:
    """The value for an error line: repr escapes line breaks and control characters; long cut."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...'"


def refuse(label: str, why: str) -> ConfigError:
    """The one-line error naming the option."""
    return ConfigError(f"{label}: {why}")


def bad_character(value: str) -> str | None:
    """The first line break / control / format character in ``value``, as U+XXXX, or None."""
    for ch in value:
        if unicodedata.category(ch) in _BAD_CATEGORIES:
            return f"U+{ord(ch):04X}"
    return None


def check_text(label: str, value: Any, *, max_len: int = MAX_TEXT) -> str:
    """A non-empty string without line breaks or control characters, at most ``max_len`` long."""
    if not isinstance(value, str):
        raise refuse(label, f"must be text, not {type(value).__name__} {shown(value)}")
    if not value:
        raise refuse(label, "must not be empty")
    bad = bad_character(value)
    if bad:
        raise refuse(label, f"{shown(value)} holds a line break or control character ({bad})")
    if len(value) > max_len:
        raise refuse(label, f"longer than {max_len} characters ({len(value)})")
    return value


def check_path(label: str, value: Any) -> str:
    """A path that goes into a script: any printable characters (it is shlex-quoted where bash
    reads it), no line breaks or control characters."""
    return check_text(label, str(value) if hasattr(value, "__fspath__") else value, max_len=4096)


def shell_word(label: str, value: Any) -> str:
    """``value`` checked and quoted for bash."""
    return shlex.quote(check_path(label, value))


def comment_text(value: Any, max_len: int = 80) -> str:
    """Free text for a ``#`` comment line: line breaks, control and format characters become
    ``?``, so the comment cannot end early; cut to ``max_len``."""
    text = "".join("?" if unicodedata.category(ch) in _BAD_CATEGORIES or (ch.isspace() and ch != " ") else ch
                   for ch in str(value))
    return text if len(text) <= max_len else text[:max_len - 3] + "..."


# -- names --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NameRule:
    """What one scheduler accepts for one kind of name, and where that is documented."""

    pattern: str
    max_len: int
    allowed: str      # for the error line
    source: str       # the documentation the rule comes from
    what: str = ""    # e.g. "Slurm partition name"; default "<scheduler> <kind> name"

    def check(self, label: str, value: Any, what: str) -> str:
        check_text(label, value, max_len=max(self.max_len, MAX_TEXT))
        if len(value) > self.max_len:
            raise refuse(label, f"{len(value)} characters: a {what} has at most {self.max_len} ({self.source})")
        if not re.fullmatch(self.pattern, value, flags=re.ASCII):
            raise refuse(label, f"{shown(value)} is not a valid {what}: {self.allowed} ({self.source})")
        return value


#: a word of letters, digits, '_', '.' and '-' (what every supported scheduler accepts as a name)
WORD = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
WORD_ALLOWED = "letters, digits, '_', '.' and '-' ('.' and '-' not first)"
#: job (array) names: what PBS -N accepts narrowed to name characters; Slurm and LSF allow more
JOB_NAME = NameRule(r"[A-Za-z0-9][A-Za-z0-9_.-]*", 230, "ASCII letters, digits, '_', '.', '-', an alphanumeric "
                    "first", "PBS qsub -N: at most 236 (older OpenPBS 230); Slurm -J, LSF -J: 4094")
#: the rule for a scheduler that declares none for a kind of name
COMMON_NAME = NameRule(WORD, 59, WORD_ALLOWED, "the characters every supported scheduler accepts")


def _scheduler(name: str | None) -> Any:
    """The registered Scheduler class of ``name``, or None (unknown or not given)."""
    from s2l2a.registry import get_scheduler, scheduler_names

    return get_scheduler(name) if name and name in scheduler_names() else None


def check_name(label: str, value: Any, scheduler: str, kind: str) -> str:
    """A queue, account or job name the scheduler accepts and nothing reads as syntax."""
    cls = _scheduler(scheduler)
    rule = (cls.name_rules.get(kind) if cls is not None else None) or (JOB_NAME if kind == "job" and cls else None)
    if rule is None:  # scheduler not known yet: the characters every scheduler accepts
        rule = COMMON_NAME
    what = rule.what or f"{scheduler or 'scheduler'} {kind} name".lstrip()
    return rule.check(label, value, what)


# -- LSF select and extra directives ------------------------------------------------------------

_SELECT = re.compile(r"[A-Za-z0-9_.:<>=!&|()~+*/, -]+", re.ASCII)


def check_select(label: str, value: Any) -> str:
    """An LSF ``select[...]`` string (rendered inside ``-R "..."``)."""
    check_text(label, value)
    if not _SELECT.fullmatch(value):
        raise refuse(label, f"{shown(value)}: an LSF select string holds resource names, numbers, spaces and "
                            "the operators < > = ! & | ( ) ~ + * / , : . - only (no brackets, quotes, $ or ;)")
    return value


_DIRECTIVE = re.compile(r"--?[A-Za-z][\x20-\x7e]*", re.ASCII)
_DIRECTIVE_FORBIDDEN = "$`;\\#"


@dataclass(frozen=True)
class DeniedOptions:
    """Options a scheduler refuses in ``extra_directives``: they run a command, change the job's
    shell, environment, input or output files (which may overwrite a user's file), or clash with
    what s2l2a sets itself (array, job name, output paths).

    getopt style (sbatch, qsub): ``long`` options by full name (Slurm accepts unambiguous
    abbreviations, so any prefix of one is refused too), ``short`` ones by letter inside grouped
    flags (``flags``: the letters that take no argument), ``-W`` attributes in ``w_attributes``.
    Whole-word style (bsub): ``exact`` words, and every word starting with one of ``prefix``.
    """

    long: tuple[str, ...] = ()
    short: str = ""
    flags: str = ""
    w_attributes: tuple[str, ...] = ()
    exact: tuple[str, ...] = ()
    prefix: tuple[str, ...] = ()
    whole_words: bool = False

    def find(self, words: list[str]) -> str | None:
        """The first denied option among ``words`` (a directive split like a shell would), or None."""
        for i, w in enumerate(words):
            if not re.match(r"-[A-Za-z-]", w):
                continue
            if self.whole_words:
                if w in self.exact or any(w.startswith(p) for p in self.prefix):
                    return w
                continue
            if w.startswith("--"):
                name = w.split("=", 1)[0]
                if len(name) > 2 and any(d.startswith(name) for d in self.long):
                    return name
                continue
            for ch in w[1:]:  # getopt: grouped flags, then one option whose argument is the rest
                if ch in self.short:
                    return f"-{ch}"
                if ch == "W" and self.w_attributes:
                    arg = " ".join(words[i:i + 2]).lower()
                    hit = next((a for a in self.w_attributes if a in arg), None)
                    if hit:
                        return f"-W {hit}"
                if ch not in self.flags:
                    break
        return None


def check_directive(label: str, value: Any, scheduler: str | None) -> str:
    """One extra directive line (the text after ``#SBATCH``/``#BSUB``/``#PBS``)."""
    check_text(label, value)
    if not _DIRECTIVE.fullmatch(value):
        raise refuse(label, f"{shown(value)}: a directive is printable ASCII starting with an option "
                            "(e.g. --gres=gpu:1, -R \"span[ptile=16]\", -l feature=x)")
    bad = [c for c in _DIRECTIVE_FORBIDDEN if c in value]
    if bad:
        raise refuse(label, f"{shown(value)}: {' '.join(bad)} not allowed in a directive")
    if value.count('"') % 2 or value.count("'") % 2:
        raise refuse(label, f"{shown(value)}: unbalanced quotes")
    try:
        words = shlex.split(value)
    except ValueError as e:
        raise refuse(label, f"{shown(value)}: {e}") from None
    from s2l2a.registry import scheduler_names

    for sched in ([scheduler] if scheduler else list(scheduler_names())):
        cls = _scheduler(sched)
        denied = cls.denied_options.find(words) if cls is not None and cls.denied_options else None
        if denied:
            raise refuse(label, f"{denied} is not allowed in extra directives for {sched}: it runs a command, "
                                "changes the job's shell, environment or files, or is set by s2l2a itself")
    return value


# -- numbers --------------------------------------------------------------------------------------

def check_int(label: str, value: Any, *, low: int, high: int, unit: str = "", why_high: str = "") -> int:
    """A whole number in [low, high]: refuses text, booleans, nan, inf and fractions."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise refuse(label, f"must be a whole number, not {shown(value)}")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise refuse(label, f"must be a whole number, not {shown(value)}")
    n = int(value)
    if n < low:
        raise refuse(label, f"{n}{unit} is below {low}{unit}")
    if n > high:
        raise refuse(label, f"{n}{unit} is above {high}{unit}" + (f" ({why_high})" if why_high else ""))
    return n


def check_seconds(label: str, value: Any, *, allow_zero: bool = False, high: int = MAX_RUN_LIMIT_S) -> float:
    """A finite duration in seconds, positive (or zero), at most ``high``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise refuse(label, f"must be a number of seconds, not {shown(value)}")
    v = float(value)
    if not math.isfinite(v):
        raise refuse(label, f"must be a finite number of seconds, not {value}")
    if v < 0 or (v == 0 and not allow_zero):
        raise refuse(label, f"must be {'zero or ' if allow_zero else ''}positive, not {value}")
    if v > high:
        raise refuse(label, f"{v:.0f} s is more than {high} s ({high // 86400} days)")
    return v


def check_job_size(cores: Any, memory_mb: Any, *, node_cores: int = 0, node_memory_mb: int = 0,
                   cores_label: str = "cores per job", memory_label: str = "memory per job") -> tuple[int, int]:
    """Cores and MB one job asks for: positive and at most what one node has (when known)."""
    c = check_int(cores_label, cores, low=1, high=node_cores or MAX_NODE_CORES,
                  why_high=(f"the node size, [cluster] node_cores / --node-cores = {node_cores}" if node_cores
                            else "s2l2a's ceiling for one node; set [cluster] node_cores if yours are bigger"))
    m = check_int(memory_label, memory_mb, low=1, high=node_memory_mb or MAX_NODE_MEMORY_MB, unit=" MB",
                  why_high=(f"the node size, [cluster] node_memory_mb / --node-memory-mb = {node_memory_mb}"
                            if node_memory_mb else
                            "s2l2a's ceiling for one node; set [cluster] node_memory_mb if yours are bigger"))
    return c, m


# -- all of ClusterOptions ----------------------------------------------------------------------

def check_options(scheduler: str | None, opts: Any, labels: dict[str, str] | None = None) -> None:
    """Every field of a ClusterOptions; ``labels`` name where a field came from (``--queue``);
    default ``[cluster] <field>``. ``scheduler`` None: the rules every scheduler shares."""
    labels = labels or {}

    def lab(name: str) -> str:
        return labels.get(name, f"[cluster] {name}")

    for kind in ("queue", "account"):
        value = getattr(opts, kind)
        if value is not None:
            check_name(lab(kind), value, scheduler or "", kind)
    if not isinstance(opts.extra_directives, list | tuple):
        raise refuse(lab("extra_directives"), f"must be a list of strings, not {shown(opts.extra_directives)}")
    for d in opts.extra_directives:
        check_directive(lab("extra_directives"), d, scheduler)
    check_seconds(lab("run_limit_s"), opts.run_limit_s)
    check_seconds(lab("estimate_s"), opts.estimate_s)
    check_seconds(lab("startup_s"), opts.startup_s, allow_zero=True)
    node_cores = check_int(lab("node_cores"), opts.node_cores, low=0, high=MAX_NODE_CORES,
                           why_high="s2l2a's ceiling for one node")
    node_mem = check_int(lab("node_memory_mb"), opts.node_memory_mb, low=0, high=MAX_NODE_MEMORY_MB, unit=" MB",
                         why_high="s2l2a's ceiling for one node")
    check_job_size(opts.cores_per_job, opts.memory_mb, node_cores=node_cores, node_memory_mb=node_mem,
                   cores_label=lab("cores_per_job"), memory_label=lab("memory_mb"))
    check_int(lab("max_concurrent"), opts.max_concurrent, low=0, high=MAX_ARRAY_SIZE)
    check_int(lab("max_array_size"), opts.max_array_size, low=1, high=MAX_ARRAY_SIZE)
    for flag in ("exclusive",):
        if not isinstance(getattr(opts, flag), bool):
            raise refuse(lab(flag), f"must be true or false, not {shown(getattr(opts, flag))}")
    if opts.placement not in ("per_product", "whole_node"):
        raise refuse(lab("placement"), f"per_product or whole_node, not {shown(opts.placement)}")
    check_scheduler_settings(opts.scheduler_settings, lab)


def check_scheduler_settings(values: dict[str, Any], label: Any = None) -> None:
    """The schedulers' own keys of [cluster] (``lsf_unit``, ``select``, ``pbs_flavour``, a plug-in's),
    each checked by the scheduler that declares it, whichever scheduler runs: the section is shared."""
    from s2l2a.registry import schedulers

    lab = label or (lambda name: f"[cluster] {name}")
    declared: dict[str, Any] = {}
    for cls in schedulers():
        for setting in cls.settings:
            declared.setdefault(setting.key, setting)
    for key, value in values.items():
        if key not in declared:
            raise refuse(lab(key), f"unknown key (known to the schedulers: {', '.join(sorted(declared)) or 'none'})")
        declared[key].check_value(lab(key), value)
