"""``s2l2a selftest --engine slurm|lsf|pbs``: check a site's scheduler the way campaigns use it.

Submits one 3-element array rendered from the very template campaigns use (so the site's
answers to our directives are what is tested), throttled to one element at a time:

1. writes what it sees (array index variable, job id, host, memory variables) and exits 0;
2. the same, then allocates three times its memory limit: the scheduler must kill it, and we
   must classify that as out_of_memory (wrong LSF_UNIT_FOR_LIMITS shows up here: a KB-vs-MB
   mistake makes the limit 1024 times too large or too small);
3. is cancelled while still pending, so it must never run.

Then it prints a report meant to be attached to a bug report. The elements run
``python -m s2l2a.engines.selftest`` (this module) with the submitting Python, like workers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from s2l2a.clock import stamp, utcnow
from s2l2a.engines.scheduler import ClusterOptions, ElementState, SchedulerError


def env_keys() -> tuple[str, ...]:
    """The environment variables an element records: every registered scheduler's."""
    from s2l2a.registry import schedulers

    return tuple(dict.fromkeys(k for cls in schedulers() for k in (*cls.index_variables, *cls.env_keys)))


HOLD_S = 2.0


# -- inside an element --------------------------------------------------------------------------------

def element_main(argv: list[str] | None = None) -> int:
    """What each array element runs: record, then (element 2) eat memory."""
    p = argparse.ArgumentParser(prog="s2l2a-selftest-element")
    p.add_argument("--dir", required=True)
    p.add_argument("--memory-mb", type=int, required=True)
    p.add_argument("--hold-s", type=float, default=HOLD_S)
    p.add_argument("--index", required=True)
    a = p.parse_args(argv)
    record = {"index": a.index, "host": socket.gethostname(), "pid": os.getpid(), "start": utcnow(),
              "env": {k: os.environ[k] for k in env_keys() if k in os.environ}}
    path = Path(a.dir) / f"element_{a.index}.json"
    path.write_text(json.dumps(record, indent=1))
    if a.index == "2":
        chunks = []
        for _ in range(3 * a.memory_mb // 64):
            chunks.append(b"x" * (64 * 2**20))  # touched pages: resident, as a real overrun is
            time.sleep(0.05)
        time.sleep(60)
        return 0
    time.sleep(a.hold_s)  # keeps element 3 pending long enough to be cancelled
    return 0


# -- on the submitting side ----------------------------------------------------------------------------

@dataclass
class Check:
    name: str
    ok: bool | None          # None: could not tell (warning)
    detail: str


@dataclass
class SelftestReport:
    scheduler: str
    lines: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks)

    def text(self) -> str:
        out = list(self.lines)
        out.append("")
        out.append("checks:")
        for c in self.checks:
            mark = "PASS" if c.ok else ("WARN" if c.ok is None else "FAIL")
            out.append(f"  [{mark}] {c.name}: {c.detail}")
        out.append("")
        out.append("result: " + ("all checks passed" if self.ok else "some checks FAILED (attach this report)"))
        return "\n".join(out)


def _version(argv: list[str]) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"({shlex.join(argv)}: {e})"
    text = (r.stdout or r.stderr).strip().splitlines()
    return text[0] if text else f"({shlex.join(argv)} printed nothing)"


def run_selftest(scheduler_name: str, workdir: Path, options: ClusterOptions, *, timeout_s: float = 300,
                 echo: object = None) -> SelftestReport:
    """Submit the 3-element array from ``workdir`` (must be on a file system the nodes see)."""
    from s2l2a import __version__
    from s2l2a.engines.cluster import LOG_DIR, classify_element, element_output_tail, make_scheduler

    say = echo if callable(echo) else (lambda s: None)
    workdir = Path(workdir).resolve()
    (workdir / LOG_DIR).mkdir(parents=True, exist_ok=True)
    options.max_concurrent = 1
    sched = make_scheduler(scheduler_name, options)
    rep = SelftestReport(scheduler_name)
    rep.lines += [f"s2l2a selftest {utcnow()}", f"s2l2a {__version__}, Python {platform.python_version()} "
                  f"({sys.executable}), {platform.platform()}", f"submit host {socket.gethostname()}, "
                  f"work dir {workdir}", f"scheduler: {_version(list(sched.version_argv))}"]
    rep.lines += sched.selftest_lines()
    name = f"s2l2a_selftest_{stamp()}"
    argv = [sys.executable, "-m", "s2l2a.engines.selftest", "--dir", str(workdir),
            "--memory-mb", str(options.memory_mb)]
    script_text = sched.render(campaign_name="selftest", array_name=name, n_elements=3, products_per_element=1,
                               parallel=1, walltime_s=max(options.run_limit_s, 60), log_dir=LOG_DIR,
                               worker_argv=argv)
    script = workdir / f"{name}.sh"
    script.write_text(script_text)
    rep.lines += ["", f"script {script}:", *("  " + ln for ln in script_text.rstrip().splitlines()), ""]
    try:
        job_id = sched.submit(script, cwd=workdir)
    except SchedulerError as e:
        rep.checks.append(Check("submit", False, str(e)))
        return rep
    rep.checks.append(Check("submit", True, f"array job id {job_id}"))
    say(f"submitted {scheduler_name} array {job_id}; waiting for its 3 elements (up to {timeout_s:.0f} s)")
    try:
        sched.cancel(job_id, 3)
        cancel_err = None
    except SchedulerError as e:
        cancel_err = str(e)
    states: dict[int, ElementState] = {}
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        try:
            states = sched.status(job_id)
        except SchedulerError as e:
            rep.lines.append(f"status query failed: {e}")
            states = {}
        final = ("done", "failed", "cancelled")
        # Slurm drops a cancelled pending element from squeue: not listed counts as ended for 3
        if all(i in states and states[i].state in final for i in (1, 2)) and \
                (3 not in states or states[3].state in final):
            break
        time.sleep(2)
    else:
        rep.checks.append(Check("finish", False, f"elements still not finished after {timeout_s:.0f} s: "
                                f"{ {i: s.raw_state for i, s in states.items()} }; cancelling"))
        try:
            sched.cancel(job_id)
        except SchedulerError:
            pass
    rep.lines.append("elements as the scheduler reports them:")
    for i in (1, 2, 3):
        st = states.get(i)
        rep.lines.append(f"  {i}: " + (f"{st.raw_state} exit {st.exit_code} reason {st.reason}" if st else "not listed"))
    seen = {}
    for i in (1, 2, 3):
        f = workdir / f"element_{i}.json"
        if f.exists():
            seen[i] = json.loads(f.read_text())
            rep.lines.append(f"  element {i} saw: {json.dumps(seen[i]['env'], sort_keys=True)} on {seen[i]['host']}")
    # indices
    idx_var = sched.index_variables[0] if sched.index_variables else "(no index variable declared)"
    got = {i: next((seen[i]["env"][v] for v in sched.index_variables if seen[i]["env"].get(v)), None)
           for i in seen}
    rep.checks.append(Check("array indices", bool(seen) and all(str(i) == str(v) for i, v in got.items()),
                            f"{idx_var} per element: {got}"))
    # exit codes / states
    s1 = states.get(1)
    rep.checks.append(Check("exit code of a good element", s1 is not None and s1.state == "done",
                            f"element 1: {s1.raw_state + ' ' + str(s1.exit_code) if s1 else 'not listed'}"))
    # memory
    s2 = states.get(2)
    cls, why = classify_element(s2, scheduler_name, element_output_tail(workdir, name, job_id, 2))
    killed = s2 is not None and s2.state == "failed"
    rep.checks.append(Check(
        "memory limit enforced and recognised", killed and cls.value == "out_of_memory",
        f"element 2 allocated {3 * options.memory_mb} MB under a {options.memory_mb} MB limit: "
        + (f"classified {cls.value}: {why}" if killed else
           f"not killed ({s2.raw_state if s2 else 'not listed'}): the limit is not enforced, or its unit is "
           "wrong (LSF: check LSF_UNIT_FOR_LIMITS)")))
    own = sched.selftest_check(seen[1]["env"]) if 1 in seen else None
    if own is not None:
        rep.checks.append(Check(*own))
    # output names
    missing = [i for i in (1, 2) if not list((workdir / LOG_DIR).glob(f"{name}_{job_id.split('.')[0].split('[')[0]}_{i}.*"))]
    rep.checks.append(Check("output file names", not missing,
                            f"expected {LOG_DIR}/{name}_{job_id}_<index>.out for elements 1 and 2"
                            + (f"; missing for {missing}: {sorted(p.name for p in (workdir / LOG_DIR).iterdir())}"
                               if missing else "")))
    # cancel of a pending element
    s3 = states.get(3)
    rep.checks.append(Check("cancel of a pending element", cancel_err is None and 3 not in seen
                            and (s3 is None or s3.state in ("cancelled", "failed")),
                            cancel_err or f"element 3: {s3.raw_state if s3 else 'not listed'}, "
                            f"{'ran (should not have)' if 3 in seen else 'never ran'}"))
    return rep


if __name__ == "__main__":
    sys.exit(element_main())
