"""What a batch scheduler already knows about a queue and its nodes, read instead of asked.

A queue's run limit and memory limit, and the cores and memory of the nodes that run its jobs,
are written down at every site; the seed looked them up by hand (``bqueues queue-name``,
``lshosts``). Each scheduler module reads them with its own commands (LSF: ``bqueues -l`` and
``lshosts``; Slurm: ``scontrol show partition`` and ``sinfo``; PBS: ``qstat -Qf`` and
``pbsnodes -a``) and parses the answer here into a :class:`SiteInfo`. Reading never fails a run:
a missing command, an unknown queue or an answer we cannot read leaves a number unknown (None)
with a note saying why, and sizing falls back on the options and s2l2a's defaults.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: what every number is (the key of ``SiteInfo.sources``), for the lines --dry-run prints
FIELDS = ("run_limit_s", "memory_limit_mb", "node_cores", "node_memory_mb", "nodes")


@dataclass
class SiteInfo:
    """A queue and its nodes as the scheduler describes them; None where it said nothing.

    ``sources`` names the command each known number was read from (``bqueues -l normal``);
    ``notes`` say why a number is unknown or what else the answer said (``MaxTime=UNLIMITED``).
    """

    queue: str | None = None               # the queue read (the default queue's name when none was asked)
    run_limit_s: int | None = None         # the most a job may run in this queue
    memory_limit_mb: int | None = None     # the most memory one job may ask in this queue
    node_cores: int | None = None          # cores of the smallest usable node of the queue
    node_memory_mb: int | None = None      # memory of the smallest usable node, MB
    nodes: int | None = None               # usable nodes that run this queue's jobs
    largest_cores: int | None = None       # the biggest usable node (what a one-product job must fit)
    largest_memory_mb: int | None = None
    sources: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def merge(self, other: SiteInfo) -> SiteInfo:
        """This reading completed by ``other`` (what this one knows wins)."""
        out = SiteInfo(self.queue or other.queue, sources=dict(other.sources), notes=self.notes + other.notes)
        for name in (*FIELDS, "largest_cores", "largest_memory_mb"):
            mine = getattr(self, name)
            setattr(out, name, mine if mine is not None else getattr(other, name))
            if mine is not None and name in self.sources:
                out.sources[name] = self.sources[name]
        return out

    def known(self, name: str) -> tuple[int, str] | None:
        """(value, the command it came from) of a known number; None when unknown."""
        value = getattr(self, name)
        return None if value is None else (int(value), self.sources.get(name, "the scheduler"))


def _smallest(nodes: list[tuple[str, int | None, int | None]], source: str, what: str) -> SiteInfo:
    """SiteInfo of a list of (name, cores, memory MB): the smallest node bounds a whole-node element."""
    info = SiteInfo(sources={})
    usable = [n for n in nodes if n[1] or n[2]]
    if not usable:
        info.notes.append(f"{source} lists no usable {what}")
        return info
    cores = [c for _, c, _ in usable if c]
    mems = [m for _, _, m in usable if m]
    info.nodes = len({n for n, _, _ in usable})
    info.sources["nodes"] = source
    if cores:
        info.node_cores, info.largest_cores, info.sources["node_cores"] = min(cores), max(cores), source
    if mems:
        info.node_memory_mb, info.largest_memory_mb, info.sources["node_memory_mb"] = min(mems), max(mems), source
    if len(set(cores)) > 1 or len(set(mems)) > 1:
        info.notes.append(f"{source}: {what} differ in size ({min(cores, default=0)}-{max(cores, default=0)} "
                          f"cores, {min(mems, default=0)}-{max(mems, default=0)} MB); sized for the smallest")
    return info


# -- Slurm ----------------------------------------------------------------------------------------

def slurm_seconds(text: str) -> float | None:
    """Slurm's time forms, for partition limits (slurm.conf(5) MaxTime) and accounting (sacct/sstat
    TotalCPU, Elapsed): ``[days-]hours:minutes:seconds``, ``minutes:seconds[.mmm]``, ``minutes``,
    ``days-hours[:minutes]``; None for UNLIMITED/INFINITE/NONE, empty or anything else."""
    t = text.strip()
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?(\.\d+)?", t)
    if not m or (m[5] and m[3] is None):  # a fraction only on seconds
        return None
    days, a, b, c = (int(x) if x is not None else None for x in m.groups()[:4])
    frac = float(m[5]) if m[5] else 0.0
    if days is not None:      # days-hours[:minutes[:seconds]]
        return days * 86400 + a * 3600 + (b or 0) * 60 + (c or 0) + frac
    if c is not None:         # hours:minutes:seconds
        return a * 3600 + (b or 0) * 60 + c + frac
    if b is not None:         # minutes:seconds
        return a * 60 + b + frac
    return a * 60             # minutes


def parse_scontrol_partitions(text: str) -> dict[str, dict[str, str]]:
    """``scontrol show partition [NAME] -o`` -> partition name -> its ``Key=Value`` pairs."""
    out: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        pairs = dict(re.findall(r"(\w+)=(\S*)", line))
        if pairs.get("PartitionName"):
            out[pairs["PartitionName"]] = pairs
    return out


def slurm_partition(text: str, name: str | None) -> SiteInfo:
    """The run limit and memory limit of partition ``name`` (the Default=YES one when None)."""
    parts = parse_scontrol_partitions(text)
    if name is None:
        name = next((n for n, p in parts.items() if p.get("Default") == "YES"), None)
    p = parts.get(name or "")
    if p is None:
        return SiteInfo(name, notes=[f"scontrol show partition lists no partition {name or '(default)'}"])
    source = f"scontrol show partition {name}"
    info = SiteInfo(name)
    max_time = p.get("MaxTime", "")
    if (s := slurm_seconds(max_time)) is not None and s > 0:
        info.run_limit_s, info.sources["run_limit_s"] = int(s), source
    elif max_time:
        info.notes.append(f"{source}: MaxTime={max_time} (no run limit)")
    mem = p.get("MaxMemPerNode", "")
    if mem.isdigit() and int(mem) > 0:
        info.memory_limit_mb, info.sources["memory_limit_mb"] = int(mem), source
    elif p.get("MaxMemPerCPU", "").isdigit():
        info.notes.append(f"{source}: MaxMemPerCPU={p['MaxMemPerCPU']} MB (per core, not checked)")
    if p.get("State") not in (None, "UP"):
        info.notes.append(f"{source}: State={p['State']}")
    return info


#: sinfo node states that take no job (a trailing '*' means not responding)
_SLURM_UNUSABLE = ("down", "drain", "fail", "maint", "inval", "future", "power_down", "powered_down")


def sinfo_nodes(text: str, partition: str) -> SiteInfo:
    """``sinfo -N -h -p NAME -o %N|%c|%m|%T`` -> the smallest usable node and how many there are."""
    nodes: list[tuple[str, int | None, int | None]] = []
    for line in text.splitlines():
        words = line.strip().split("|")
        if len(words) != 4:
            continue
        name, cpus, mem, state = words
        state = state.lower()
        if state.endswith("*") or any(state.startswith(w) for w in _SLURM_UNUSABLE):
            continue
        nodes.append((name, int(cpus) if cpus.isdigit() else None,
                      int(mem.rstrip("+")) if mem.rstrip("+").isdigit() else None))
    return _smallest(nodes, f"sinfo -N -p {partition}", f"node of partition {partition}")


# -- PBS (PBS Pro / OpenPBS and Torque) -----------------------------------------------------------

_PBS_UNIT = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4, "pb": 1024**5}


def pbs_size_mb(text: str) -> int | None:
    """PBS sizes (pbs_resources(7B): an integer with b, kb, mb, gb, tb, pb, or w-words; bytes
    without a suffix) -> MB, rounded down; None when unreadable."""
    m = re.fullmatch(r"(\d+)\s*([kmgtp]?)(b|w)?", text.strip().lower())
    if not m:
        return None
    unit = _PBS_UNIT[(m[2] + "b") if m[2] else "b"] * (8 if m[3] == "w" else 1)
    return int(m[1]) * unit // 1024**2


def pbs_seconds(text: str) -> int | None:
    """PBS walltime ``[[hours:]minutes:]seconds[.ms]`` -> seconds; None when unreadable."""
    parts = text.strip().split(".")[0].split(":")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        return None
    seconds = 0
    for p in parts:
        seconds = seconds * 60 + int(p)
    return seconds


def _pbs_blocks(text: str, head: str) -> dict[str, dict[str, str]]:
    """``Head: name`` blocks (or bare-name blocks when ``head`` is empty) -> name -> attributes."""
    out: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            name = line.strip()
            if head:
                if not name.startswith(head + ":"):
                    current = None
                    continue
                name = name[len(head) + 1:].strip()
            current = out.setdefault(name, {})
            continue
        if current is not None and (m := re.match(r"\s+([\w.]+)\s*=\s*(.*?)\s*$", line)):
            current[m[1]] = m[2]
    return out


def pbs_default_queue(text: str) -> str | None:
    """``qstat -Bf`` -> the server's ``default_queue``."""
    m = re.search(r"^\s+default_queue\s*=\s*(\S+)", text, flags=re.M)
    return m[1] if m else None


def pbs_queue(text: str, name: str) -> SiteInfo:
    """``qstat -Qf NAME`` -> the queue's ``resources_max.walltime`` and ``resources_max.mem``."""
    q = _pbs_blocks(text, "Queue").get(name)
    if q is None:
        return SiteInfo(name, notes=[f"qstat -Qf lists no queue {name}"])
    source = f"qstat -Qf {name}"
    info = SiteInfo(name)
    if (s := pbs_seconds(q.get("resources_max.walltime", ""))) is not None and s > 0:
        info.run_limit_s, info.sources["run_limit_s"] = s, source
    else:
        info.notes.append(f"{source}: no resources_max.walltime (no run limit)")
    if (mb := pbs_size_mb(q.get("resources_max.mem", ""))) is not None and mb > 0:
        info.memory_limit_mb, info.sources["memory_limit_mb"] = mb, source
    if q.get("enabled", "True") != "True" or q.get("started", "True") != "True":
        info.notes.append(f"{source}: enabled={q.get('enabled')} started={q.get('started')}")
    return info


def pbsnodes(text: str, queue: str | None) -> SiteInfo:
    """``pbsnodes -a`` -> the smallest usable node and how many: PBS Pro's
    ``resources_available.ncpus``/``.mem``, Torque's ``np`` and ``physmem`` of ``status``. Nodes
    tied to another queue (PBS Pro's ``queue`` attribute) are left out."""
    nodes: list[tuple[str, int | None, int | None]] = []
    for name, a in _pbs_blocks(text, "").items():
        state = a.get("state", "")
        if any(w in state for w in ("down", "offline", "unknown", "unresolvable")):
            continue
        if queue and a.get("queue") not in (None, queue):
            continue
        cores = a.get("resources_available.ncpus") or a.get("np") or a.get("pcpus") or ""
        mem = a.get("resources_available.mem")
        if mem is None and (m := re.search(r"(?:^|,)physmem=(\w+)", a.get("status", ""))):
            mem = m[1]
        nodes.append((name, int(cores) if cores.isdigit() else None, pbs_size_mb(mem) if mem else None))
    return _smallest(nodes, "pbsnodes -a", "node" + (f" for queue {queue}" if queue else ""))


# -- LSF (bqueues -l and lshosts are parsed in lsf_text; these read what sizing needs besides) ----

def lsf_default_queue(text: str) -> str | None:
    """``bqueues -l`` -> the queue whose description says "This is the default queue." (LSF
    appends it to the default queue's description; OpenLava too, recorded)."""
    name = None
    for line in text.splitlines():
        if (m := re.match(r"QUEUE: (\S+)", line)):
            name = m[1]
        elif name and "This is the default queue" in line:
            return name
    return None


def lsf_queue_hosts(text: str, queue: str) -> list[str] | None:
    """The ``HOSTS:`` of ``queue`` in ``bqueues -l``: host names, None for all hosts (``all``,
    ``all hosts used by the LSF system``), or a list holding a group (``name/``) or ``+`` form
    (the caller then sizes on every host, saying so)."""
    name = None
    for line in text.splitlines():
        if (m := re.match(r"QUEUE: (\S+)", line)):
            name = m[1]
        elif name == queue and (m := re.match(r"\s*HOSTS:\s*(.*)$", line)):
            words = m[1].split()
            return None if not words or words[0] in ("all", "allremote") else words
    return None


def lsf_hosts(hosts: list[tuple[str, int | None, int | None]], names: list[str] | None, queue: str) -> SiteInfo:
    """The smallest of ``hosts`` (lshosts rows) that run ``queue``'s jobs (``names``: its HOSTS)."""
    picked = hosts
    notes = []
    if names:
        plain = [n.split("@")[0] for n in names if not n.endswith("/") and not n.startswith("~") and "+" not in n]
        if len(plain) == len(names):
            picked = [h for h in hosts if h[0] in plain]
        else:
            notes.append(f"queue {queue} runs on host groups ({' '.join(names)[:80]}): sized on every host lshosts lists")
    info = _smallest(picked, "lshosts", f"host of queue {queue}")
    info.notes = notes + info.notes
    return info
