"""Install ESA's Sen2Cor from its self-extracting ``Sen2Cor-02.xx.yy-Linux64.run`` without questions.

The ``.run`` file is a makeself archive: a shell header followed by a tarball. We check that header
before executing anything (a renamed HTML error page or a random script must never be run), then run
it with an argv list: ``bash FILE --target DIR --nox11`` extracts into DIR and runs ESA's own setup
script there, as the official instructions do, but without asking for a terminal.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

from s2l2a.errors import ConfigError
from s2l2a.sen2cor.layout import Sen2CorInstall, describe
from s2l2a.sen2cor.locate import locate

_HEADER_BYTES = 64 * 1024
_NAME_RE = re.compile(r"Sen2Cor-(\d\d)\.(\d\d)\.(\d\d)")


def is_makeself(path: Path) -> bool:
    """True when the file starts like a makeself archive (shebang + makeself header variables)."""
    try:
        with path.open("rb") as f:
            head = f.read(_HEADER_BYTES)
    except OSError:
        return False
    if not head.startswith(b"#!/bin/sh") and not head.startswith(b"#!/bin/bash"):
        return False
    return b"Makeself" in head and b"CRCsum=" in head and b"MD5=" in head


def version_from_name(path: Path) -> str | None:
    """``Sen2Cor-02.10.01-Linux64.run`` -> ``"2.10.1"`` (used to name the default prefix)."""
    m = _NAME_RE.search(path.name)
    return f"{int(m.group(1))}.{int(m.group(2))}.{int(m.group(3))}" if m else None


def default_prefix(run_file: Path) -> Path:
    """Where the installer would put itself by default: ``./Sen2Cor-02.xx.yy-Linux64``."""
    return Path.cwd() / run_file.name.removesuffix(".run")


def install(run_file: Path | str, prefix: Path | str | None = None, *, timeout_s: float = 1800.0,
            log: Path | None = None) -> Sen2CorInstall:
    """Run the installer into ``prefix`` (idempotent: an existing complete install is kept)."""
    run_file = Path(run_file).expanduser().resolve()
    if not run_file.is_file():
        raise ConfigError("no such installer file", run_file)
    if not is_makeself(run_file):
        raise ConfigError("not a makeself self-extracting archive (expected ESA's Sen2Cor-*.run); refused",
                          run_file)
    target = Path(prefix).expanduser().resolve() if prefix else default_prefix(run_file)
    if (target / "bin" / "L2A_Process").is_file():
        return describe(target)          # already installed: re-running is a no-op
    if target.exists() and any(target.iterdir()):
        raise ConfigError("target directory exists, is not empty and holds no Sen2Cor; choose another "
                          "--prefix", target)
    target.parent.mkdir(parents=True, exist_ok=True)
    argv = ["bash", str(run_file), "--target", str(target), "--nox11"]
    out = subprocess.DEVNULL if log is None else log.open("ab")
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                cwd=str(target.parent), start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise ConfigError(f"installer did not finish within {timeout_s:.0f} s", run_file) from None
    finally:
        if log is not None:
            out.close()  # type: ignore[union-attr]
    if rc != 0:
        raise ConfigError(f"installer exited with status {rc}", run_file)
    exe = locate(target)
    return describe(exe)
