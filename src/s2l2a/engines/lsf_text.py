"""LSF's text answers, for the LSF-lineage schedulers without ``bjobs -o ... -json``.

OpenLava (the open-source descendant of Platform LSF) and LSF before 10.1 refuse ``-o``/``-json``
and write no TERM_* reason. What they do say, read here (recorded answers in
tests/data/engines/openlava/):

- ``bjobs -w -a ID``: one row per element, the index only in JOB_NAME (``name[3]``); columns move
  when a value is wider than its header, so rows are split on whitespace, never by position;
- ``bjobs -l ID``: per element a block wrapped at 79 columns (continuations indented 21 spaces,
  cut mid-word), with ``Exited with exit code N``, the MEMLIMIT/RUNLIMIT blocks, CWD and the
  output file's name pattern;
- the element's output file: LSF's job report at its start, ``Max Memory :  516 MB``.

A kill shows only as an exit code: 130 (SIGINT) for both ``bkill`` and the memory limit, 140
(SIGUSR2) for the run limit; a worker that handles SIGINT exits with its own code (s2l2a's
exits 1). :func:`explain_exit` tells a memory kill from the others with the output file's peak
memory against the element's MEMLIMIT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: exit codes of OpenLava's kills: 128 + SIGINT (bkill, memory limit), 128 + SIGUSR2 (run limit)
EXIT_SIGINT = 130
EXIT_RUNLIMIT = 140
_CONTINUATION = " " * 21
_WRAP = 79
_KB = {"K": 1, "KB": 1, "M": 1024, "MB": 1024, "G": 1024**2, "GB": 1024**2, "T": 1024**3, "TB": 1024**3}


def parse_bjobs_w(text: str, job_id: str) -> dict[int, str]:
    """``bjobs -w [-a] ID`` -> element index -> STAT (index 0 for a job that is no array)."""
    out: dict[int, str] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) < 3 or words[0] != str(job_id):
            continue  # the header, blank lines, other jobs
        m = re.search(r"\[(\d+)\]$", next((w for w in words[3:] if re.search(r"\[\d+\]$", w)), ""))
        out[int(m[1]) if m else 0] = words[2]
    return out


def unwrap(text: str) -> list[str]:
    """``bjobs -l`` lines with the 79-column wrapping undone (a continuation joins mid-word)."""
    lines: list[str] = []
    wrapped = False
    for line in text.splitlines():
        if wrapped and line.startswith(_CONTINUATION) and lines:
            lines[-1] += line[len(_CONTINUATION):]
        else:
            lines.append(line)
        wrapped = len(line) >= _WRAP
    return lines


@dataclass
class LongRecord:
    """What ``bjobs -l`` says about one element."""

    job_id: str
    index: int
    status: str
    exit_code: int | None = None
    memlimit_kb: int | None = None
    runlimit_min: float | None = None
    cwd: str | None = None
    output_file: str | None = None
    started: bool = False
    cpu_s: float | None = None          # "The CPU time used is 0.3 seconds."
    mem_mb: float | None = None         # "MEM: 4 Mbytes" of the last resource usage collected
    max_mem_mb: float | None = None     # "MAX MEM: 163 Mbytes" (LSF; OpenLava writes N/A)

    def output_path(self) -> Path | None:
        """The element's output file (``%J``/``%I`` filled in, relative to its CWD)."""
        if not self.output_file:
            return None
        name = self.output_file.replace("%J", self.job_id).replace("%I", str(self.index))
        path = Path(name)
        return path if path.is_absolute() or not self.cwd else Path(self.cwd) / path


def _limit(header: str, values: str, name: str) -> str | None:
    """The value under ``name`` in a limits block (``RUNLIMIT`` / ``5.0 min of vm``)."""
    heads = header.split()
    if name not in heads:
        return None
    i = heads.index(name)
    cells = re.findall(r"\S+(?: (?:K|KB|M|MB|G|GB|T|TB|min(?: of \S+)?))?", values.strip())
    return cells[i] if i < len(cells) else None


def parse_bjobs_l(text: str) -> list[LongRecord]:
    """``bjobs -l`` of one or more jobs/elements -> one record per ``Job Id <...>`` block."""
    records: list[LongRecord] = []
    lines = unwrap(text)
    for i, line in enumerate(lines):
        m = re.match(r"Job Id <(\d+)(?:\[(\d+)\])?>.*?Status ?<(\w+)>", line)
        if m:
            records.append(LongRecord(m[1], int(m[2] or 0), m[3]))
            continue
        if not records:
            continue
        rec = records[-1]
        if (c := re.search(r"Exited with exit code (\d+)", line)):
            rec.exit_code = int(c[1])
        if (c := re.search(r"The CPU time used is ([\d.]+) second", line)):
            rec.cpu_s = float(c[1])
        if (c := re.search(r"(?<![A-Z] )\bMEM: ([\d.]+) ([KMGT])bytes", line)):
            rec.mem_mb = float(c[1]) * _KB[c[2]] / 1024
        if (c := re.search(r"\bMAX MEM: ([\d.]+) ([KMGT])bytes", line)):
            rec.max_mem_mb = float(c[1]) * _KB[c[2]] / 1024
        if re.search(r":( \[\d+\])? [Ss]tarted on", line):
            rec.started = True
        if (c := re.search(r"Submitted from host <[^>]*>, CWD <([^>]*)>", line)):
            rec.cwd = c[1]
        if (c := re.search(r"Output ?File <([^>]*)>", line)):
            rec.output_file = c[1]
        if re.fullmatch(r"\s*[A-Z]+LIMIT( +[A-Z]+LIMIT)*\s*", line) and i + 1 < len(lines):
            mem = _limit(line, lines[i + 1], "MEMLIMIT")
            if mem and (v := re.fullmatch(r"([\d.]+) ?([KMGT]B?)?", mem)):
                rec.memlimit_kb = int(float(v[1]) * _KB[v[2] or "K"])
            run = _limit(line, lines[i + 1], "RUNLIMIT")
            if run and (v := re.match(r"([\d.]+) min", run)):
                rec.runlimit_min = float(v[1])
    return records


def max_memory_mb(output: str) -> float | None:
    """``Max Memory :  516 MB`` of LSF's job report (at the start of the output file); None if absent."""
    m = re.search(r"Max Memory\s*:\s*([\d.]+)\s*([KMGT]B?)", output)
    if not m:
        return None
    return float(m[1]) * _KB[m[2]] / 1024


def report_cpu_s(output: str) -> float | None:
    """``CPU time   :      0.16 sec.`` of LSF's job report; None if absent."""
    m = re.search(r"CPU time\s*:\s*([\d.]+)\s*sec", output)
    return float(m[1]) if m else None


def read_report(path: Path | None, size: int = 16384) -> str:
    """The start of an element's output file, where LSF writes its job report ('' if unreadable)."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as f:
            return f.read(size).decode("utf-8", "replace")
    except OSError:
        return ""


def explain_exit(rec: LongRecord, report: str = "") -> tuple[str, str | None]:
    """(our state, reason) of an element ``bjobs -l`` shows as EXIT, in the words the LSF
    classifier reads (:class:`s2l2a.engines.lsf.LSF`): the memory limit when the report's peak is
    at or over MEMLIMIT (any exit code), the run limit for exit 140, a cancel for 130 otherwise or
    when it never started; else a plain failure (reason None)."""
    code = rec.exit_code
    peak = max_memory_mb(report)
    # whatever the exit code: a worker that catches SIGINT exits 1 ("Aborted!" from click)
    if peak is not None and rec.memlimit_kb and peak * 1024 >= rec.memlimit_kb:
        return "failed", (f"memory usage limit: exit code {code}, Max Memory {peak:g} MB over "
                          f"MEMLIMIT {rec.memlimit_kb} KB (bjobs -l, the output file)")
    if code == EXIT_RUNLIMIT:
        limit = f" of {rec.runlimit_min:g} min" if rec.runlimit_min else ""
        return "failed", f"run limit{limit}: exit code {code} (SIGUSR2)"
    if code == EXIT_SIGINT or (code is None and not rec.started):
        return "cancelled", f"killed through bkill (exit code {code if code is not None else '-'})"
    return "failed", None


# -- what the scheduler knows about queues and hosts (bqueues -l, lshosts) -----------------------

@dataclass
class QueueLimits:
    """A queue's limits as ``bqueues -l QUEUE`` shows them (None: the queue sets none)."""

    name: str
    run_limit_s: int | None = None
    memlimit_kb: int | None = None
    exclusive: bool = False


def parse_bqueues_l(text: str) -> list[QueueLimits]:
    """``bqueues -l [QUEUE]`` -> one record per ``QUEUE: name`` block: RUNLIMIT (``10.0 min of
    host``), MEMLIMIT (the maximum when a default precedes it) and ``SCHEDULING POLICIES: EXCLUSIVE``
    (what ``bsub -x`` needs)."""
    queues: list[QueueLimits] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if (m := re.match(r"QUEUE: (\S+)", line)):
            queues.append(QueueLimits(m[1]))
            continue
        if not queues:
            continue
        q = queues[-1]
        if re.match(r"\s*SCHEDULING POLICIES:.*\bEXCLUSIVE\b", line):
            q.exclusive = True
        if re.fullmatch(r"\s*[A-Z]+LIMIT( +[A-Z]+LIMIT)*\s*", line) and i + 1 < len(lines):
            run = _limit(line, lines[i + 1], "RUNLIMIT")
            if run and (v := re.match(r"([\d.]+) min", run)):
                q.run_limit_s = int(float(v[1]) * 60)
            if "MEMLIMIT" in line.split():
                # "MEMLIMIT" alone, or "MEMLIMIT" over "default maximum" values: the last is the maximum
                sizes = re.findall(r"([\d.]+) ?([KMGT]B?)?(?=\s|$)", lines[i + 1].strip())
                if sizes:
                    num, unit = sizes[-1]
                    q.memlimit_kb = int(float(num) * _KB[unit or "K"])
    return queues


@dataclass
class HostSize:
    """A server host as ``lshosts`` shows it."""

    name: str
    ncpus: int | None
    maxmem_mb: int | None


def parse_lshosts(text: str) -> list[HostSize]:
    """``lshosts`` -> the hosts with their cores and memory (``24105M``; ``-`` when unknown)."""
    hosts: list[HostSize] = []
    header: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["HOST_NAME"]:
            header = words
            continue
        if not header or len(words) < len(header) - 1:
            continue
        row = dict(zip(header, words, strict=False))
        ncpus = int(row["ncpus"]) if row.get("ncpus", "").isdigit() else None
        mem = re.fullmatch(r"([\d.]+)([KMGT])B?", row.get("maxmem", ""))
        maxmem = int(float(mem[1]) * _KB[mem[2]] / 1024) if mem else None
        hosts.append(HostSize(words[0], ncpus, maxmem))
    return hosts


# -- what an element used (bjobs -o cpu_used/max_mem, bjobs -l, the output file's report) ---------

def size_mb(text: object) -> float | None:
    """``163 Mbytes``, ``2.1 GB``, ``4860 K`` (a bare number is KB, LSF's default unit) -> MB;
    None for ``-``, ``N/A`` or anything else."""
    m = re.fullmatch(r"\s*([\d.]+)\s*(?:([KMGT])(?:B|bytes)?)?\s*", str(text or ""))
    if not m:
        return None
    try:
        return float(m[1]) * _KB[m[2] or "K"] / 1024
    except ValueError:
        return None


def cpu_seconds(text: object) -> float | None:
    """``0.3 second(s)``, ``12 seconds``, ``000:00:02.50`` or ``01:02:03`` -> seconds; None otherwise."""
    s = str(text or "").strip()
    if (m := re.fullmatch(r"([\d.]+)\s*(?:sec(?:ond)?(?:s|\(s\))?\.?)?", s)):
        try:
            return float(m[1])
        except ValueError:
            return None
    if (m := re.fullmatch(r"(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)", s)):
        return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
    return None
