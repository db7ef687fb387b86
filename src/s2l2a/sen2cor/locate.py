"""Which Sen2Cor to run and what it is: the one place that finds ``L2A_Process`` and reads its version.

The processor, the preflight check (``s2l2a check``), ``s2l2a init`` ("auto") and the set-up
commands (``s2l2a sen2cor check|install``) all ask here, so they agree on which install a
campaign uses. The version and the options a release understands come from its own ``--help``
(parsed by :mod:`s2l2a.sen2cor.version`), asked once per file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from s2l2a.errors import ConfigError
from s2l2a.sen2cor.command import thread_env
from s2l2a.sen2cor.version import Sen2CorInfo, Sen2CorVersionError, parse_help

EXECUTABLE = "L2A_Process"

#: how long ``L2A_Process --help`` may take (Sen2Cor imports a lot before it prints anything)
HELP_TIMEOUT_S = 180.0

_INFO_CACHE: dict[tuple[str, int, int], Sen2CorInfo] = {}


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _in_directory(folder: Path) -> Path | None:
    """L2A_Process inside an install folder, a Sen2Cor package folder ($SEN2COR_BIN points there),
    or the one ``Sen2Cor-*`` install right below ``folder`` (where the installer unpacked it)."""
    for cand in (folder / EXECUTABLE, folder / "bin" / EXECUTABLE):
        if _is_executable(cand):
            return cand
    for parent in list(folder.parents)[:5]:  # <root>/lib/python2.7/site-packages/sen2cor -> <root>/bin
        cand = parent / "bin" / EXECUTABLE
        if _is_executable(cand):
            return cand
    subs = [p for p in sorted(folder.glob(f"Sen2Cor-*/bin/{EXECUTABLE}")) if _is_executable(p)]
    return subs[0] if len(subs) == 1 else None


def _at(path: Path) -> Path | None:
    return _in_directory(path) if path.is_dir() else (path if _is_executable(path) else None)


def find_l2a_process(configured: str | Path | None = None,
                     environ: Mapping[str, str] | None = None) -> Path | None:
    """The L2A_Process to run: the configured path, else ``$SEN2COR_BIN``, else the one on PATH.

    A configured path that does not lead to an executable gives None rather than silently
    falling back to another Sen2Cor: the user asked for that one.
    """
    env = os.environ if environ is None else environ
    if configured:
        found = _at(Path(str(configured)).expanduser())
        return found.absolute() if found else None
    bin_dir = env.get("SEN2COR_BIN")
    if bin_dir:
        found = _at(Path(bin_dir).expanduser())
        if found:
            return found.absolute()
    which = shutil.which(EXECUTABLE, path=env.get("PATH"))
    return Path(which).absolute() if which else None


def locate(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """Like :func:`find_l2a_process`, but a ConfigError saying what was looked at when there is none."""
    found = find_l2a_process(path, environ)
    if found is not None:
        return found
    if path is None:
        raise ConfigError(f"{EXECUTABLE} not found (no $SEN2COR_BIN, not on PATH); give the Sen2Cor "
                          "install directory")
    p = Path(path).expanduser()
    if p.is_dir():
        raise ConfigError(f"no bin/{EXECUTABLE} in this directory", p)
    if p.is_file():
        raise ConfigError("not an executable file", p)
    raise ConfigError("no such file or directory", p)


def read_info(l2a_process: Path, timeout_s: float = HELP_TIMEOUT_S) -> Sen2CorInfo:
    """Version and flags of ``l2a_process`` from its ``--help`` (cached per file, mtime and size).

    Runs as an argv in its own process group with a throw-away SEN2COR_HOME (asking for help must
    never write into the user's home) and one thread; raises Sen2CorVersionError (a ConfigError,
    one line naming the file) when it cannot be started, hangs, or prints no version banner.
    """
    l2a_process = Path(l2a_process)
    try:
        st = l2a_process.stat()
    except OSError as e:
        raise Sen2CorVersionError(f"cannot be started: {e.strerror or e}", l2a_process) from None
    key = (str(l2a_process), st.st_mtime_ns, st.st_size)
    if key in _INFO_CACHE:
        return _INFO_CACHE[key]
    with tempfile.TemporaryDirectory(prefix="s2l2a-sen2cor-help-") as home:
        env = {**os.environ, "SEN2COR_HOME": home, **thread_env(1)}
        try:
            proc = subprocess.Popen([str(l2a_process), "--help"], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    errors="replace", env=env, start_new_session=True)
        except OSError as e:
            raise Sen2CorVersionError(f"cannot be started: {e.strerror or e}", l2a_process) from None
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the whole group: Sen2Cor's wrapper starts Python
            proc.communicate()
            raise Sen2CorVersionError(f"'--help' did not answer within {timeout_s:g} s; is this a working "
                                      "Sen2Cor?", l2a_process) from None
    try:
        info = parse_help(out + "\n" + err)
    except Sen2CorVersionError:
        raise Sen2CorVersionError(f"no 'Version:' in its --help banner (exit {proc.returncode}); is this "
                                  "Sen2Cor's L2A_Process?", l2a_process) from None
    _INFO_CACHE[key] = info
    return info
