"""Running an external program with a wall-clock limit that kills its whole process group.

Sen2Cor can hang after an internal error, and it starts worker processes of its own: killing
only the top process would leave the workers holding memory and cores on a shared node. So the
program runs in a new session (its own process group), and both on timeout and after a normal
exit every process left in that group is killed. The leader is waited for without reaping
(``waitid(..., WNOWAIT)``) so its pid — and thereby the group id — cannot be reused by an
unrelated process before the group is killed.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from s2l2a.clock import utcnow


@dataclass
class RunResult:
    """How one run ended."""

    argv: list[str]
    returncode: int | None       # negative: killed by that signal (subprocess convention)
    duration_s: float
    timed_out: bool
    log_path: Path
    log_offset: int              # where this run's output starts in the log
    pid: int | None = None

    @property
    def signal(self) -> int | None:
        """The signal that ended the program, if one did."""
        if self.returncode is not None and self.returncode < 0:
            return -self.returncode
        return None

    @property
    def killed_by_signal(self) -> bool:
        return self.signal is not None


def _leader_exited(pid: int) -> bool:
    """True once ``pid`` has exited; leaves it unreaped so its pid stays reserved."""
    try:
        res = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return res is not None and res.si_pid == pid


def _wait_leader(pid: int, deadline: float | None) -> bool:
    """Poll until the leader exits (True) or ``deadline`` (monotonic) passes (False)."""
    delay = 0.01
    while not _leader_exited(pid):
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return False
        pause = min(delay, 0.5) if deadline is None else min(delay, 0.5, max(deadline - now, 0.0))
        time.sleep(pause)
        delay *= 1.5
    return True


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class _KillGroupOnTermination:
    """While a run is in progress, SIGTERM/SIGHUP to this process first kill the run's group.

    The program runs in its own session, so a signal that ends this process (a scheduler's
    cancel, a closed terminal) would otherwise leave Sen2Cor running as an orphan. Only default
    handlers in the main thread are replaced; after the cleanup the signal is re-delivered with
    its default action, so this process still ends exactly as it would have.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGHUP)

    def __init__(self, pgid: int) -> None:
        self.pgid = pgid
        self.saved: dict[int, object] = {}

    def _handler(self, signum: int, _frame: object) -> None:
        _killpg(self.pgid, signal.SIGKILL)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def __enter__(self) -> _KillGroupOnTermination:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                if signal.getsignal(sig) is signal.SIG_DFL:
                    self.saved[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *_exc: object) -> None:
        for sig, old in self.saved.items():
            signal.signal(sig, old)  # type: ignore[arg-type]


def run_logged(argv: Sequence[str], *, log_path: Path, timeout_s: float | None,
               env: Mapping[str, str] | None = None, cwd: Path | None = None,
               grace_s: float = 10.0) -> RunResult:
    """Run ``argv`` (no shell) with stdout+stderr appended to ``log_path``; kill its group on timeout.

    On timeout: SIGTERM to the group, up to ``grace_s`` for it to end, then SIGKILL to the group.
    Any exception while waiting (e.g. KeyboardInterrupt) also kills the group before propagating.
    """
    argv = [str(a) for a in argv]
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        header = f"---- {utcnow()} run: {shlex.join(argv)}\n"
        log.write(header.encode())
        log.flush()
        offset = log.tell()
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=dict(env) if env is not None else None, cwd=cwd,
                                start_new_session=True, close_fds=True)
    pgid = proc.pid  # start_new_session makes the child the leader of a group with its own pid
    timed_out = False
    try:
        with _KillGroupOnTermination(pgid):
            deadline = start + timeout_s if timeout_s is not None else None
            if not _wait_leader(proc.pid, deadline):
                timed_out = True
                _killpg(pgid, signal.SIGTERM)
                _wait_leader(proc.pid, time.monotonic() + grace_s)
            # The leader has exited (or ignored SIGTERM for grace_s): clear the whole group.
            _killpg(pgid, signal.SIGKILL)
    except BaseException:
        _killpg(pgid, signal.SIGKILL)
        proc.wait()
        raise
    returncode = proc.wait()
    duration = time.monotonic() - start
    if timed_out:
        with open(log_path, "ab") as log:
            log.write(f"---- killed after {duration:.1f} s: wall-clock limit of {timeout_s:g} s reached\n"
                      .encode())
    return RunResult(argv=argv, returncode=returncode, duration_s=duration, timed_out=timed_out,
                     log_path=log_path, log_offset=offset, pid=proc.pid)


def read_log_tail(log_path: Path, offset: int = 0, max_bytes: int = 256 * 1024) -> str:
    """This run's part of the log (from ``offset``), at most the last ``max_bytes`` of it."""
    try:
        with open(log_path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(offset, size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace")
