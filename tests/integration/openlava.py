"""The real single-node OpenLava started by ``scripts/openlava-up.sh``, as the tests reach it.

Root cannot submit to OpenLava ("User permission denied"), so whatever talks to it runs as the
submitting user, ``runuser -u USER -- env -i ... argv``, in a clean environment made from
``$S2L2A_OPENLAVA_DIR/env`` (root's HOME and pyenv PATH would leak into jobs otherwise: LSF hands
the submission environment to the job). Campaigns live under the user's work folder (pytest's
``tmp_path`` is root's alone), and jobs run the user's venv: Debian's Python with s2l2a installed
from the copy of ``src/`` that the up script refreshes on every start.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

OPENLAVA_DIR = Path(os.environ.get("S2L2A_OPENLAVA_DIR", "/tmp/s2l2a-openlava"))
#: states after which an element no longer changes
FINISHED = ("DONE", "EXIT")


def read_env_file(path: Path) -> dict[str, str]:
    """``export NAME=value`` lines of the up script's env file; ``$PATH`` in a value is left out
    (the caller decides what follows), so ``PATH`` here is only what the cluster adds."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.fullmatch(r"export (\w+)=(.*)", line.strip())
        if m:
            out[m[1]] = m[2].replace(":$PATH", "").replace("$PATH:", "")
    return out


@dataclass
class OpenLava:
    """The submitting user, its environment and its work folder."""

    user: str
    env: dict[str, str]        # the user's whole environment (no variable of root's)
    python: Path               # the jobs' interpreter (the user's venv)
    work: Path                 # owned by the user: campaigns and job files go below
    clean_period_s: int        # seconds OpenLava keeps finished jobs in bjobs

    @property
    def s2l2a_script(self) -> Path:
        return self.python.with_name("s2l2a")

    def argv(self, argv: list[str | Path], extra_env: dict[str, str] | None = None) -> list[str]:
        """``argv`` as the user, in its environment plus ``extra_env``."""
        env = {**self.env, **(extra_env or {})}
        return ["runuser", "-u", self.user, "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()),
                *map(str, argv)]

    def run(self, argv: list[str | Path], *, cwd: Path | None = None, stdin: str | None = None,
            timeout: float = 60, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command as the user (argv list, never a shell); ``cwd`` defaults to the work folder."""
        return subprocess.run(self.argv(argv, extra_env), cwd=cwd or self.work, input=stdin,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def s2l2a(self, *args: str | Path, timeout: float = 120, **kw: object) -> subprocess.CompletedProcess[str]:
        """The user's ``s2l2a`` console script (its Python is what cluster jobs will run)."""
        return self.run([self.s2l2a_script, *args], timeout=timeout, **kw)  # type: ignore[arg-type]

    def workdir(self, prefix: str) -> Path:
        """A fresh folder under the work folder, owned by the user."""
        path = Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=self.work))
        self.give(path)
        return path

    def give(self, path: Path) -> None:
        """Hand a tree root created (a campaign, cloned products) to the user, who writes into it."""
        pw = pwd.getpwnam(self.user)
        for p in [Path(path), *Path(path).rglob("*")]:
            os.chown(p, pw.pw_uid, pw.pw_gid, follow_symlinks=False)

    def submit(self, script: str, cwd: Path) -> str:
        """``bsub < script`` from ``cwd``; the job id."""
        r = self.run(["bsub"], cwd=cwd, stdin=script)
        m = re.search(r"Job <(\d+)> is submitted", r.stdout)
        assert r.returncode == 0 and m, f"bsub failed ({r.returncode}): {r.stdout}{r.stderr}"
        return m[1]

    def bjobs_states(self, job_id: str) -> dict[str, str]:
        """``bjobs -w -a JOB``: job name -> STAT (``arr[2]`` -> ``DONE``); {} once forgotten."""
        r = self.run(["bjobs", "-w", "-a", job_id])
        states = {}
        for line in r.stdout.splitlines():
            parts = line.split()
            if len(parts) >= 7 and parts[0] == job_id:
                # EXEC_HOST is "-" while pending: JOB_NAME is the 7th column either way
                states[parts[6]] = parts[2]
        return states

    def wait_finished(self, job_id: str, n: int, timeout: float) -> dict[str, str]:
        """Poll until ``n`` elements are DONE or EXIT; the last states seen."""
        t0 = time.monotonic()
        states: dict[str, str] = {}
        while time.monotonic() - t0 < timeout:
            states = self.bjobs_states(job_id)
            if len(states) >= n and all(s in FINISHED for s in states.values()):
                break
            time.sleep(1)
        return states


def openlava_or_skip() -> OpenLava:
    """The OpenLava the up script started, or a skip that says why there is none."""
    env_file = OPENLAVA_DIR / "env"
    if not env_file.is_file():
        pytest.skip(f"OpenLava is not up: no {env_file} (run 'bash scripts/openlava-up.sh' as root; "
                    "scripts/test.sh does)")
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("OpenLava tests submit as the cluster's user through runuser, which needs root")
    cfg = read_env_file(env_file)
    user = cfg.get("S2L2A_LSF_USER", "")
    try:
        home = pwd.getpwnam(user).pw_dir
    except KeyError:
        pytest.skip(f"OpenLava's submitting user {user!r} does not exist (rerun scripts/openlava-up.sh)")
    python = Path(cfg["S2L2A_LSF_PYTHON"])
    env = {"HOME": home, "USER": user, "LOGNAME": user, "LANG": "C.UTF-8",
           "PATH": f"{python.parent}:{cfg['PATH']}:/usr/local/bin:/usr/bin:/bin",
           "LSF_ENVDIR": cfg["LSF_ENVDIR"]}
    ol = OpenLava(user=user, env=env, python=python, work=Path(cfg["S2L2A_LSF_WORK"]),
                  clean_period_s=int(cfg.get("S2L2A_LSF_CLEAN_PERIOD", "3600")))
    try:
        r = ol.run(["bhosts", "-w"], timeout=15)
    except subprocess.TimeoutExpired:
        pytest.skip("OpenLava's bhosts did not answer within 15 s")
    if r.returncode != 0 or not re.search(r"^\S+\s+ok\s", r.stdout, re.M):
        last = (r.stderr.strip() or r.stdout.strip() or "no output").splitlines()[-1]
        pytest.skip(f"OpenLava is not up (bhosts: {last}); run 'bash scripts/openlava-up.sh' as root")
    return ol
