"""Install ESA's Sen2Cor without questions: 2.x from its ``.run``, 3.x from its zip.

2.x, ``Sen2Cor-02.xx.yy-Linux64.run``: a makeself archive, a shell header followed by a tarball. We
check that header before executing anything (a renamed HTML error page or a random script must never
be run), then run it with an argv list: ``bash FILE --target DIR --nox11`` extracts into DIR and runs
ESA's own setup script there, as the official instructions do, but without asking for a terminal.

3.x, ``sen2cor_3.3.0_python_3.12_20250131.zip``: unpacked with :func:`s2l2a.archive.safe_extract`
(no member outside the target, size limits) after checking it holds ``SEN2COR_3/L2A_Process.py``.
It brings no interpreter: the environment is built from its ``requirements.yml`` with conda, mamba or
micromamba (``env create --prefix <install>/env``), or the user names a Python built by hand
(``--python``, e.g. a venv with the system GDAL, see docs/sen2cor.md). Either way the interpreter is
tried with ``L2A_Process.py --help`` and recorded next to ``SEN2COR_3`` for every later run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import zipfile
from pathlib import Path, PurePosixPath

from s2l2a.clock import utcnow
from s2l2a.errors import ConfigError
from s2l2a.sen2cor.layout import Sen2CorInstall, describe
from s2l2a.sen2cor.locate import (
    PACKAGE_3,
    SCRIPT,
    interpreter_for,
    locate,
    read_info,
    read_record,
    write_record,
)

#: tools that build an environment from a conda ``requirements.yml``, in the order they are tried
ENV_TOOLS = ("mamba", "micromamba", "conda")
#: building the environment downloads a few hundred MB of packages
ENV_TIMEOUT_S = 3600.0

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
            log: Path | None = None, python: str | Path | None = None) -> Sen2CorInstall:
    """Install into ``prefix`` (idempotent: an existing complete install is kept).

    A ``.run`` runs ESA's installer; a Sen2Cor 3 zip goes to :func:`install_zip` (``python``: an
    interpreter to use instead of building one).
    """
    run_file = Path(run_file).expanduser().resolve()
    if not run_file.is_file():
        raise ConfigError("no such installer file", run_file)
    if zipfile.is_zipfile(run_file):
        return install_zip(run_file, prefix, python=python, log=log)
    if not is_makeself(run_file):
        raise ConfigError("neither a makeself self-extracting archive (ESA's Sen2Cor-*.run) nor a Sen2Cor 3 zip; "
                          "refused", run_file)
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


# -- Sen2Cor 3: the zip --------------------------------------------------------------------------

def zip_script(archive: Path) -> PurePosixPath:
    """The ``SEN2COR_3/L2A_Process.py`` member of a Sen2Cor 3 zip (at most one folder above it)."""
    try:
        with zipfile.ZipFile(archive) as z:
            names = [PurePosixPath(n) for n in z.namelist()]
    except (zipfile.BadZipFile, OSError) as e:
        raise ConfigError(f"unreadable zip: {e}", archive) from None
    hits = [n for n in names if n.name == SCRIPT and n.parent.name == PACKAGE_3 and len(n.parts) <= 3]
    if len(hits) != 1:
        raise ConfigError(f"not a Sen2Cor 3 zip (no single {PACKAGE_3}/{SCRIPT} in it); refused", archive)
    return hits[0]


def default_zip_prefix(archive: Path) -> Path:
    """``./sen2cor_3.3.0_python_3.12_20250131`` for that zip (it unpacks its own folder inside)."""
    return Path.cwd() / archive.name.removesuffix(".zip")


def env_tool() -> Path | None:
    """The first of mamba, micromamba, conda on PATH."""
    for name in ENV_TOOLS:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def env_create_argv(tool: Path, requirements: Path, env_dir: Path) -> list[str]:
    """``<tool> env create --prefix ENV --file requirements.yml`` (micromamba: ``create -y -p -f``)."""
    if tool.name.startswith("micromamba"):
        return [str(tool), "create", "--yes", "--prefix", str(env_dir), "--file", str(requirements)]
    return [str(tool), "env", "create", "--prefix", str(env_dir), "--file", str(requirements)]


def _run(argv: list[str], log: Path, timeout_s: float, what: str, where: Path) -> None:
    with log.open("ab") as out:
        out.write(f"---- {utcnow()} {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise ConfigError(f"{what} did not finish within {timeout_s:.0f} s; see {log}", where) from None
    if rc != 0:
        raise ConfigError(f"{what} exited with status {rc}; see {log}", where)


def install_zip(archive: Path | str, prefix: Path | str | None = None, *, python: str | Path | None = None,
                log: Path | None = None, env_timeout_s: float = ENV_TIMEOUT_S) -> Sen2CorInstall:
    """Unpack a Sen2Cor 3 zip into ``prefix``, give it an interpreter, record it, describe the install.

    Idempotent: an unpacked tree is kept (a second call with ``--python`` after a refusal does not
    unpack again), an environment already recorded and still present is kept.
    """
    from s2l2a.archive import ArchiveLimits, UnsafeArchiveError, safe_extract

    archive = Path(archive).expanduser().resolve()
    member = zip_script(archive)
    target = Path(prefix).expanduser().absolute() if prefix else default_zip_prefix(archive)
    script = target.joinpath(*member.parts)
    if not script.is_file():
        if target.exists() and any(target.iterdir()):
            raise ConfigError("target directory exists, is not empty and holds no Sen2Cor 3; choose another "
                              "--prefix", target)
        try:
            safe_extract(archive, target, ArchiveLimits(hint=" (is this ESA's Sen2Cor 3 zip?)"))
        except UnsafeArchiveError as e:
            raise ConfigError(e.message, archive) from None
    root = script.parent.parent
    requirements = next((p for p in (root / "requirements.yml", script.parent / "requirements.yml") if p.is_file()),
                        None)
    log = log or root / "s2l2a-install.log"
    record = read_record(root)
    how: str
    if python:
        interpreter, how = interpreter_for(script, python), "given (--python)"
    elif record.get("python") and Path(str(record["python"])).is_file():
        interpreter, how = Path(str(record["python"])), str(record.get("environment", "recorded"))
    else:
        tool = env_tool()
        if requirements is None:
            raise ConfigError(f"no requirements.yml in {root} to build Sen2Cor's environment from; give "
                              "--python PATH of a Python with its modules", archive)
        if tool is None:
            raise ConfigError("no conda, mamba or micromamba on PATH to build Sen2Cor 3's environment from "
                              f"{requirements.name}; install Miniforge (conda), or build a Python 3.12 venv with "
                              "GDAL as docs/sen2cor.md shows and give --python PATH", requirements)
        env_dir = root / "env"
        argv = env_create_argv(tool, requirements, env_dir)
        _run(argv, log, env_timeout_s, f"'{tool.name} env create'", requirements)
        interpreter, how = env_dir / "bin" / "python", " ".join(argv)
        if not interpreter.is_file():
            raise ConfigError(f"'{tool.name}' finished but left no bin/python; see {log}", env_dir)
    info = read_info(script, python=interpreter)   # refuses an environment that cannot run it, naming why
    write_record(root, {"layout": "zip", "python": str(interpreter), "environment": how,
                        "requirements": str(requirements) if requirements else None,
                        "version": "{}.{}.{}".format(*info.number), "zip": str(archive),
                        "installed": utcnow()})
    return describe(script)

