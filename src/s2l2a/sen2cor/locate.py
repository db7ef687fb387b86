"""Which Sen2Cor to run and what it is: the one place that finds ``L2A_Process`` and reads its version.

The processor, the preflight check (``s2l2a check``), ``s2l2a init`` ("auto") and the set-up
commands (``s2l2a sen2cor check|install``) all ask here, so they agree on which install a
campaign uses. The version and the options a release understands come from its own ``--help``
(parsed by :mod:`s2l2a.sen2cor.version`), asked once per file.

Two kinds of program are found: 2.x's executable ``bin/L2A_Process``, and 3.x's
``SEN2COR_3/L2A_Process.py`` from its zip, which is no executable: it runs as ``python L2A_Process.py``
in an environment built from the zip's ``requirements.yml``. That interpreter is ``[sen2cor] python``
when given, else the one ``s2l2a sen2cor install`` recorded in ``s2l2a-sen2cor.json`` next to
``SEN2COR_3`` (:func:`launcher`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from s2l2a.errors import ConfigError
from s2l2a.sen2cor.command import thread_env
from s2l2a.sen2cor.version import Sen2CorInfo, Sen2CorVersionError, parse_help

EXECUTABLE = "L2A_Process"
#: the 3.x zip layout: ``<root>/SEN2COR_3/L2A_Process.py``; ``<root>/s2l2a-sen2cor.json`` records its environment
SCRIPT = "L2A_Process.py"
PACKAGE_3 = "SEN2COR_3"
RECORD = "s2l2a-sen2cor.json"

#: how long ``L2A_Process --help`` may take (Sen2Cor imports a lot before it prints anything)
HELP_TIMEOUT_S = 180.0

_INFO_CACHE: dict[tuple[str, int, int], Sen2CorInfo] = {}


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def is_script(program: Path) -> bool:
    """3.x's ``L2A_Process.py`` (run by an interpreter) rather than 2.x's executable."""
    return program.name == SCRIPT


def _in_directory(folder: Path) -> Path | None:
    """L2A_Process inside an install folder, a Sen2Cor package folder ($SEN2COR_BIN points there),
    or the one ``Sen2Cor-*`` install right below ``folder`` (where the installer unpacked it); for
    3.x ``L2A_Process.py`` in ``SEN2COR_3``, its parent, or the one ``*/SEN2COR_3`` below ``folder``."""
    for cand in (folder / EXECUTABLE, folder / "bin" / EXECUTABLE):
        if _is_executable(cand):
            return cand
    for cand in (folder / SCRIPT, folder / PACKAGE_3 / SCRIPT):
        if cand.is_file():
            return cand
    scripts = sorted(folder.glob(f"*/{PACKAGE_3}/{SCRIPT}"))
    if len(scripts) == 1:
        return scripts[0]
    for parent in list(folder.parents)[:5]:  # <root>/lib/python2.7/site-packages/sen2cor -> <root>/bin
        cand = parent / "bin" / EXECUTABLE
        if _is_executable(cand):
            return cand
    subs = [p for p in sorted(folder.glob(f"Sen2Cor-*/bin/{EXECUTABLE}")) if _is_executable(p)]
    return subs[0] if len(subs) == 1 else None


def _at(path: Path) -> Path | None:
    if path.is_dir():
        return _in_directory(path)
    return path if _is_executable(path) or (is_script(path) and path.is_file()) else None


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
        raise ConfigError(f"no bin/{EXECUTABLE} or {PACKAGE_3}/{SCRIPT} in this directory", p)
    if p.is_file():
        raise ConfigError("not an executable file", p)
    raise ConfigError("no such file or directory", p)


def read_record(root: Path) -> dict[str, Any]:
    """What ``s2l2a sen2cor install`` recorded next to a 3.x ``SEN2COR_3`` ({} when nothing)."""
    try:
        data = json.loads((Path(root) / RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_record(root: Path, data: Mapping[str, Any]) -> Path:
    """Write (atomically) what an install of a 3.x zip needs to be run again: its interpreter."""
    from s2l2a.fsutil import write_json_atomic

    return write_json_atomic(Path(root) / RECORD, dict(data))


def interpreter_for(script: Path, python: str | Path | None = None) -> Path:
    """The Python that runs a 3.x ``L2A_Process.py``: ``python`` when given (a path or a command on
    PATH), else the one recorded at install. ConfigError (one line) when there is none."""
    if python:
        given = Path(str(python)).expanduser()
        if _is_executable(given):
            return given.absolute()
        found = shutil.which(str(python))
        if found is None:
            raise ConfigError("no such Python interpreter (from [sen2cor] python or --python)", given)
        return Path(found).absolute()
    root = Path(script).absolute().parent.parent
    recorded = read_record(root).get("python")
    if isinstance(recorded, str) and _is_executable(Path(recorded)):
        return Path(recorded)
    if recorded:
        raise ConfigError(f"the Python recorded for this Sen2Cor 3 is gone ({recorded}); reinstall with "
                          "'s2l2a sen2cor install ZIP' or name one with [sen2cor] python = PATH", root / RECORD)
    raise ConfigError("no Python environment recorded for this Sen2Cor 3; install it with 's2l2a sen2cor "
                      "install ZIP' or name one with [sen2cor] python = PATH", root)


def launcher(program: Path, python: str | Path | None = None) -> list[str]:
    """The argv that starts Sen2Cor: ``[.../bin/L2A_Process]`` (2.x) or ``[python, .../L2A_Process.py]``."""
    program = Path(program)
    if is_script(program):
        return [str(interpreter_for(program, python)), str(program.absolute())]
    return [str(program)]


def read_info(l2a_process: Path, timeout_s: float = HELP_TIMEOUT_S, python: str | Path | None = None) -> Sen2CorInfo:
    """Version and flags of ``l2a_process`` from its ``--help`` (cached per file, mtime and size).

    Runs as an argv in its own process group with a throw-away SEN2COR_HOME (asking for help must
    never write into the user's home) and one thread; raises Sen2CorVersionError (a ConfigError,
    one line naming the file) when it cannot be started, hangs, or prints no version banner. A 3.x
    ``L2A_Process.py`` runs with its interpreter (``python``, else the recorded one).
    """
    l2a_process = Path(l2a_process)
    try:
        st = l2a_process.stat()
    except OSError as e:
        raise Sen2CorVersionError(f"cannot be started: {e.strerror or e}", l2a_process) from None
    argv = launcher(l2a_process, python)
    key = (" ".join(argv), st.st_mtime_ns, st.st_size)
    if key in _INFO_CACHE:
        return _INFO_CACHE[key]
    with tempfile.TemporaryDirectory(prefix="s2l2a-sen2cor-help-") as home:
        env = {**os.environ, "SEN2COR_HOME": home, **thread_env(1)}
        try:
            proc = subprocess.Popen([*argv, "--help"], stdin=subprocess.DEVNULL,
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
        why = _import_failure(out + "\n" + err) if len(argv) > 1 else ""
        if why:  # a 3.x environment without a module Sen2Cor imports
            raise Sen2CorVersionError(f"its environment ({argv[0]}) cannot run it: {why}", l2a_process) from None
        raise Sen2CorVersionError(f"no 'Version:' in its --help banner (exit {proc.returncode}); is this "
                                  "Sen2Cor's L2A_Process?", l2a_process) from None
    _INFO_CACHE[key] = info
    return info


def _import_failure(text: str) -> str:
    """The ``ModuleNotFoundError: No module named 'osgeo'`` line of a failed start, or ""."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith(("ModuleNotFoundError", "ImportError", "SyntaxError")):
            return ln[:200]
    return ""
