"""Wall-clock limits kill the whole process group; leftover children never outlive a run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from s2l2a.sen2cor.runner import read_log_tail, run_logged

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / \
    "S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042.SAFE"


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for init counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _gone(pid: int, within: float = 3.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


def _child_pid(log: Path) -> int:
    m = re.search(r"STANDIN: worker pid (\d+)", log.read_text())
    assert m, log.read_text()
    return int(m.group(1))


def test_timeout_kills_the_process_group(standin: Path, tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    env = {**os.environ, "STANDIN_FAIL": "hang"}
    res = run_logged([standin, SAMPLE, "--output_dir", tmp_path / "out"], log_path=log, timeout_s=1.5,
                     env=env, grace_s=2.0)
    assert res.timed_out and res.returncode == -15 and res.signal == 15
    assert 1.4 < res.duration_s < 3.0
    assert _gone(_child_pid(log)), "the hung program's child survived the group kill"
    assert "wall-clock limit of 1.5 s reached" in log.read_text()


def test_sigterm_ignored_escalates_to_sigkill(standin: Path, tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    env = {**os.environ, "STANDIN_FAIL": "hang", "STANDIN_IGNORE_TERM": "1"}
    res = run_logged([standin, SAMPLE, "--output_dir", tmp_path / "out"], log_path=log, timeout_s=1.0,
                     env=env, grace_s=0.5)
    assert res.timed_out and res.returncode == -9
    assert 1.4 < res.duration_s < 3.0
    assert _gone(_child_pid(log))


def test_leftover_children_are_killed_after_a_normal_exit(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    code = ("import subprocess, sys\n"
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            "print('child', p.pid, flush=True)\n")
    res = run_logged([sys.executable, "-c", code], log_path=log, timeout_s=30)
    assert res.returncode == 0 and not res.timed_out and res.duration_s < 10
    pid = int(re.search(r"child (\d+)", log.read_text()).group(1))
    assert _gone(pid)


def test_log_is_appended_and_offset_marks_this_run(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("==== attempt 1\n")
    res = run_logged([sys.executable, "-c", "print('hello'); raise SystemExit(3)"], log_path=log,
                     timeout_s=30)
    assert res.returncode == 3 and res.signal is None
    text = log.read_text()
    assert text.startswith("==== attempt 1\n---- ") and "run: " in text
    assert read_log_tail(log, res.log_offset) == "hello\n"
    assert read_log_tail(tmp_path / "missing.log") == ""


def test_sigterm_to_the_caller_kills_the_group_too(standin: Path, tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    argv = [str(standin), str(SAMPLE), "--output_dir", str(tmp_path / "out")]
    code = ("from s2l2a.sen2cor.runner import run_logged\n"
            f"run_logged({argv!r}, log_path={str(log)!r}, timeout_s=60)\n")
    caller = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "STANDIN_FAIL": "hang"})
    try:
        end = time.monotonic() + 15
        while "worker pid" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < end and caller.poll() is None, "stand-in did not start"
            time.sleep(0.05)
        child = _child_pid(log)
        with open(f"/proc/{child}/stat") as f:
            leader = int(f.read().rsplit(")", 1)[1].split()[1])
        caller.send_signal(signal.SIGTERM)
        assert caller.wait(10) == -signal.SIGTERM  # the caller still dies of SIGTERM ...
        assert _gone(leader) and _gone(child)      # ... but not before killing the group
    finally:
        if caller.poll() is None:
            caller.kill()
