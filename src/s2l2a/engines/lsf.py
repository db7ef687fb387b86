"""IBM Spectrum LSF and the LSF lineage (OpenLava, LSF before 10.1): ``bsub < script``, ``bjobs``,
``bkill``, ``bmod -W``.

``#BSUB`` lines are only read when the script comes on standard input (``bsub < script``)
unless the site sets LSB_BSUB_PARSE_SCRIPT=Y, so we always submit that way. ``-M`` is in
LSF_UNIT_FOR_LIMITS, KB when lsf.conf does not set it; ``rusage[mem=]`` follows
LSF_UNIT_FOR_LIMITS when it is set and is in MB (the ``mem`` load index's unit) when it is not
(IBM's lsf.conf(5); OpenLava, which has no LSF_UNIT_FOR_LIMITS, pends for ever on a KB-sized
rusage).

States come from ``bjobs -o ... -json`` (LSF 10.1: TERM_* exit reasons). Where ``bjobs`` refuses
``-o`` (OpenLava, older LSF) the text forms are read instead (:mod:`s2l2a.engines.lsf_text`):
``bjobs -w -a`` for states, ``bjobs -l`` and the element's output file for why an element
exited. Which form works is found once, from the first status call's answer, and kept in the
array record (``status_form``) so that a later ``s2l2a status`` does not ask again.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from s2l2a.campaign.usage import ElementUsage
from s2l2a.engines import lsf_text
from s2l2a.engines.directives import (
    JOB_NAME,
    WORD,
    WORD_ALLOWED,
    DeniedOptions,
    NameRule,
    check_select,
    refuse,
    shown,
)
from s2l2a.engines.scheduler import ElementState, Scheduler, SchedulerError, run_command
from s2l2a.engines.site import SiteInfo, lsf_default_queue, lsf_hosts, lsf_queue_hosts
from s2l2a.registry import Setting

_STATES = {
    "PEND": "pending", "PSUSP": "pending", "WAIT": "pending",
    "RUN": "running", "USUSP": "running", "SSUSP": "running", "PROV": "running",
    "DONE": "done",
    "EXIT": "failed", "ZOMBI": "failed", "UNKWN": "unknown",
}
_UNITS = {"KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4, "PB": 1024**5, "EB": 1024**6}
FIELDS = "jobid jobindex stat exit_code exit_reason"
#: LSF 10.1's accounting of each element (bjobs -o); the text forms give it through bjobs -l
USAGE_FIELDS = "jobid jobindex stat cpu_used run_time max_mem avg_mem"


#: LSF_ENVDIR values whose bjobs refused ``-o``/``-json`` in this process (the text forms are used)
_TEXT_ONLY: set[str] = set()
#: what bkill answers (exit 255) when it did what was asked, or there was nothing left to do
_KILL_DONE = ("Operation is in progress", "Job has already finished", "is being terminated")


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


def _unit(label: str, value: object) -> None:
    if not isinstance(value, str) or value.upper() not in _UNITS:
        raise refuse(label, f"one of {', '.join(_UNITS)}, not {shown(value)}")


def minutes(seconds: int) -> str:
    """LSF's -W is [hours:]minutes: round up, never 0:00 (which LSF reads as no time at all)."""
    m = max(1, -(-int(seconds) // 60))
    return f"{m // 60}:{m % 60:02d}"


def memory_in_unit(memory_mb: int, unit: str) -> int:
    """MB -> the site's unit, rounded up so a job never gets less than asked."""
    factor = _UNITS[unit.upper()]
    return max(1, -(-memory_mb * 1024**2 // factor))


class LSF(Scheduler):
    name = "lsf"
    template = "lsf.sh.j2"
    index_variables = ("LSB_JOBINDEX",)
    env_keys = ("LSB_JOBID", "LSB_JOBINDEX", "LSB_JOBNAME", "LSB_QUEUE")
    commands = ("bsub", "bjobs", "bkill")
    version_argv = ("lsid",)
    settings = (
        Setting("lsf_unit", "str", None, option="--lsf-unit", check=_unit,
                help="LSF_UNIT_FOR_LIMITS when lsf.conf cannot be read here (default: detected, KB when unset)"),
        Setting("select", "str", None, check=check_select, help="an LSF select[...] resource string"),
    )
    name_rules = {
        "queue": NameRule(r"[A-Za-z0-9_-]+", 59, "letters, digits, '_' and '-', at most 59",
                          "lsb.queues(5) QUEUE_NAME", "LSF queue name"),
        "account": NameRule(WORD, 511, WORD_ALLOWED + ", at most 511", "bsub -P", "LSF project name (-P)"),
        "job": JOB_NAME,
    }
    # bsub: -E/-Ep pre/post-exec commands, -f file copies, -i input, -o/-e outputs, -I* interactive;
    # options starting with a prefix are all refused (e.g. -I, -Ip, -Is; -o, -oo, -outdir)
    denied_options = DeniedOptions(
        whole_words=True,
        exact=("-E", "-Ep", "-J", "-o", "-oo", "-e", "-eo", "-i", "-is", "-f", "-cwd", "-outdir", "-L", "-Zs",
               "-K", "-env", "-pack", "-json", "-yaml", "-jsdl", "-jsdl_strict"),
        prefix=("-I", "-E", "-o", "-i", "-K", "-Z"),
    )
    # EXIT_REASON "TERM_MEMLIMIT: job killed after reaching LSF memory usage limit", TERM_RUNLIMIT ...
    memory_words = Scheduler.memory_words + ("term_memlimit", "memory usage limit", "mem limit")
    time_words = ("term_runlimit", "run limit")
    memory_states = Scheduler.memory_states + ("MEMLIMIT",)
    time_states = ("RUNLIMIT",)
    cancel_states = ("TERM_OWNER", "TERM_ADMIN")

    def unit(self) -> tuple[str, str]:
        """The memory unit of -M and rusage[mem], and where it comes from."""
        configured = self.setting("lsf_unit")
        return (configured.upper(), "configured lsf_unit") if configured else detect_unit()

    def rusage_unit(self) -> str:
        """The unit of ``rusage[mem=]``: LSF_UNIT_FOR_LIMITS when set (or configured), else MB."""
        unit, why = self.unit()
        return unit if why.startswith(("configured", "LSF_UNIT_FOR_LIMITS=")) else "MB"

    def context(self, *, walltime_s: int, memory_mb: int) -> dict[str, object]:
        return {"memory_lsf": memory_in_unit(memory_mb, self.unit()[0]),
                "rusage_mem_lsf": memory_in_unit(memory_mb, self.rusage_unit()),
                "walltime_lsf": minutes(walltime_s), "select": self.setting("select")}

    def explain(self) -> list[str]:
        unit, why = self.unit()
        return [f"LSF memory unit {unit} ({why}); rusage[mem=] in {self.rusage_unit()}"]

    def selftest_lines(self) -> list[str]:
        unit, why = self.unit()
        mb = self.options.memory_mb
        return [f"LSF memory unit: {unit} ({why}); -M for {mb} MB = {memory_in_unit(mb, unit)} {unit}"]

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
        site = os.environ.get("LSF_ENVDIR", "")
        if site in _TEXT_ONLY:
            return self.status_text(job_id)
        out = run_command(self.status_argv(job_id), allow_codes=(255,))
        if out.lstrip().startswith("{"):
            return self.parse_status(out, job_id)
        # 255 and no JSON: "bjobs: invalid option -- 'o'" and its usage (OpenLava, LSF < 10.1), or
        # LSF is down; the text form tells them apart (it raises when LSF does not answer)
        states = self.status_text(job_id)
        _TEXT_ONLY.add(site)
        return states

    @property  # type: ignore[override]
    def status_form(self) -> str | None:
        """"text" once this site's bjobs refused ``-o``/``-json`` (per LSF_ENVDIR), else None."""
        return "text" if os.environ.get("LSF_ENVDIR", "") in _TEXT_ONLY else None

    @status_form.setter
    def status_form(self, form: str | None) -> None:
        # what an array record says this site answers; only "text" changes anything
        if form == "text":
            _TEXT_ONLY.add(os.environ.get("LSF_ENVDIR", ""))

    def status_text(self, job_id: str) -> dict[int, ElementState]:
        """States from ``bjobs -w -a``; why an element exited from ``bjobs -l`` and its output file."""
        try:
            stats = lsf_text.parse_bjobs_w(run_command(["bjobs", "-w", "-a", job_id]), job_id)
        except SchedulerError as e:
            if "is not found" in str(e):  # forgotten after CLEAN_PERIOD
                return {}
            raise
        exited = sorted(i for i, s in stats.items() if s == "EXIT")
        longs: dict[int, lsf_text.LongRecord] = {}
        if exited:
            names = [f"{job_id}[{i}]" if i else job_id for i in exited]
            # 255 when one of them was forgotten meanwhile: the others are still listed
            text = run_command(["bjobs", "-l", *names], allow_codes=(255,))
            longs = {r.index: r for r in lsf_text.parse_bjobs_l(text) if r.job_id == str(job_id)}
        states: dict[int, ElementState] = {}
        for index, raw in stats.items():
            state, code, reason = _STATES.get(raw, "unknown"), None, None
            rec = longs.get(index)
            if rec is not None:
                state, reason = lsf_text.explain_exit(rec, lsf_text.read_report(rec.output_path()))
                code = None if rec.exit_code is None else str(rec.exit_code)
            states[index] = ElementState(index, state, raw, code, reason)
        return states

    def parse_status(self, stdout: str, job_id: str) -> dict[int, ElementState]:
        doc = _bjobs_json(stdout)
        errors = [str(r["ERROR"]) for r in doc.get("RECORDS", []) if r.get("ERROR")]
        if errors and not any("not found" in e for e in errors):
            raise SchedulerError(f"bjobs: {errors[0]}")
        states: dict[int, ElementState] = {}
        for index, rec in _element_records(doc, job_id):
            raw = str(rec.get("STAT", ""))
            states[index] = ElementState(index, _STATES.get(raw, "unknown"), raw,
                                         rec.get("EXIT_CODE") or None, rec.get("EXIT_REASON") or None)
        return states

    def usage(self, job_id: str) -> dict[int, ElementUsage]:
        """CPU time and peak memory per element: ``bjobs -o "cpu_used max_mem ..." -json`` (LSF
        10.1), else ``bjobs -l`` (CPU time; MAX MEM where LSF writes it, the memory in use of a
        running element). The peak of an element that ended is also in the job report at the
        start of its output file (:meth:`usage_from_output`), read only where it is needed."""
        site = os.environ.get("LSF_ENVDIR", "")
        if site not in _TEXT_ONLY:
            out = run_command(["bjobs", "-a", "-o", USAGE_FIELDS, "-json", job_id], allow_codes=(255,))
            if out.lstrip().startswith("{"):
                return self.parse_usage(out, job_id)
        records = lsf_text.parse_bjobs_l(run_command(["bjobs", "-l", job_id], allow_codes=(255,)))
        if records:  # bjobs answered in text: the -o form is not asked again in this process
            _TEXT_ONLY.add(site)
        found: dict[int, ElementUsage] = {}
        for rec in records:
            if rec.job_id != str(job_id):
                continue
            state = _STATES.get(rec.status, "unknown")
            found[rec.index] = ElementUsage(rec.index, rec.cpu_s, rec.max_mem_mb, "bjobs -l", state,
                                            mem_mb=rec.mem_mb if state == "running" else None)
        return found

    def parse_usage(self, stdout: str, job_id: str) -> dict[int, ElementUsage]:
        """``bjobs -o USAGE_FIELDS -json`` -> element index -> usage (values as ``0.3 second(s)``,
        ``163 Mbytes``; ``-`` where LSF has none yet)."""
        found: dict[int, ElementUsage] = {}
        for index, rec in _element_records(_bjobs_json(stdout), job_id):
            found[index] = ElementUsage(index, lsf_text.cpu_seconds(rec.get("CPU_USED")),
                                        lsf_text.size_mb(rec.get("MAX_MEM")), "bjobs -o",
                                        _STATES.get(str(rec.get("STAT", "")), "unknown"),
                                        lsf_text.cpu_seconds(rec.get("RUN_TIME")))
        return found

    @classmethod
    def usage_from_output(cls, output_start: str) -> tuple[float | None, float | None]:
        return lsf_text.report_cpu_s(output_start), lsf_text.max_memory_mb(output_start)

    def queue_limits(self, queue: str | None = None) -> lsf_text.QueueLimits | None:
        """The run limit, memory limit and exclusivity of ``queue`` (the default queue when None)
        from ``bqueues -l``; None when it lists no such queue."""
        text = run_command(["bqueues", "-l", *([queue] if queue else [])], timeout=15)
        name = queue or lsf_default_queue(text)
        self._queue_hosts = lsf_queue_hosts(text, name) if name else None
        return next((q for q in lsf_text.parse_bqueues_l(text) if q.name == name), None)

    def host_sizes(self) -> list[lsf_text.HostSize]:
        """Cores and memory of each host, from ``lshosts`` (for whole-node sizing)."""
        return lsf_text.parse_lshosts(run_command(["lshosts"], timeout=15))

    def read_queue(self, queue: str | None) -> SiteInfo:
        q = self.queue_limits(queue)
        if q is None:
            return SiteInfo(queue, notes=[f"bqueues -l lists no queue {queue or '(no default queue named)'}"])
        source = f"bqueues -l {q.name}"
        info = SiteInfo(q.name)
        if q.run_limit_s:
            info.run_limit_s, info.sources["run_limit_s"] = q.run_limit_s, source
        else:
            info.notes.append(f"{source}: no RUNLIMIT")
        if q.memlimit_kb:  # per process in LSF; the most a job's -M may ask
            info.memory_limit_mb, info.sources["memory_limit_mb"] = q.memlimit_kb // 1024, source
        return info

    def read_nodes(self, queue: str | None) -> SiteInfo:
        hosts = [(h.name, h.ncpus, h.maxmem_mb) for h in self.host_sizes()]
        return lsf_hosts(hosts, getattr(self, "_queue_hosts", None), queue or "(default)")

    def cancel_argv(self, job_id: str, index: int | None = None) -> list[str]:
        return ["bkill", f"{job_id}[{index}]" if index is not None else job_id]

    def cancel(self, job_id: str, index: int | None = None) -> None:
        self._bkill(job_id, index)
        if index is None:
            # OpenLava may answer "Job has already finished" for an array whose other elements
            # ended and leave a running one alone (seen right after a bmod): each element that
            # is still pending or running gets its own bkill
            for i, st in sorted(self.status(job_id).items()):
                if i and st.state in ("pending", "running"):
                    self._bkill(job_id, i)

    def _bkill(self, job_id: str, index: int | None) -> None:
        # bkill of an array with running elements answers "Operation is in progress" (255) while
        # it kills them; of a finished job "Job has already finished" (255): both are done
        try:
            run_command(self.cancel_argv(job_id, index))
        except SchedulerError as e:
            if not any(w in str(e) for w in _KILL_DONE):
                raise

    def extend_argv(self, job_id: str, walltime_s: int) -> list[str]:
        return ["bmod", "-W", minutes(walltime_s), job_id]

    def extend(self, job_id: str, walltime_s: int) -> None:
        # bmod -W on the array id changes its pending elements only (OpenLava, recorded), and is
        # refused when none is pending; a running element takes its own bmod (allowed with
        # LSB_MOD_ALL_JOBS=y, refused otherwise); one that ended meanwhile is fine
        try:
            run_command(self.extend_argv(job_id, walltime_s))
        except SchedulerError as e:
            if not any(w in str(e) for w in _KILL_DONE + ("cannot be changed now",)):
                raise
        for index, st in sorted(self.status(job_id).items()):
            if st.state == "running" and index:
                try:
                    run_command(self.extend_argv(f"{job_id}[{index}]", walltime_s))
                except SchedulerError as e:
                    if not any(w in str(e) for w in _KILL_DONE):
                        raise


def _bjobs_json(stdout: str) -> dict[str, Any]:
    """The document ``bjobs ... -json`` printed; SchedulerError when it is not JSON."""
    try:
        return json.loads(stdout)
    except json.JSONDecodeError as exc:
        raise SchedulerError(f"bjobs -json gave no JSON: {exc}") from exc


def _element_records(doc: dict[str, Any], job_id: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(element index, record) of each array element of ``job_id`` in a ``bjobs -json`` document."""
    for rec in doc.get("RECORDS", []):
        if str(rec.get("JOBID")) != str(job_id) or rec.get("ERROR"):
            continue
        try:
            index = int(rec.get("JOBINDEX") or 0)
        except ValueError:
            continue
        yield index, rec
