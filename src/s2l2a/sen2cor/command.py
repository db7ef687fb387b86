"""The exact argv and environment of one Sen2Cor run (which ``L2A_Process``: :mod:`.locate`).

Everything a run writes must land below the job's staging directory: Sen2Cor puts logs and a
copy of its configuration under ``$SEN2COR_HOME`` (users' 1 GB home quotas filled up), so each
job gets its own home there. ``Nr_Threads=AUTO`` and the numeric libraries would use every core
of a node shared by N jobs, so thread counts are pinned to the job's cores. Sen2Cor breaks on
input paths with spaces, so such inputs are passed through a space-free link. The argv is a
list, never a shell string, and carries only flags the installed release understands.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from s2l2a.errors import ConfigError
from s2l2a.sen2cor.version import Sen2CorInfo

#: GIPP kinds accepted in the ``gipp`` setting and the flag each is passed with, in argv order.
#: Both Sen2Cor's option names and the file stems (``sen2cor.gipp`` writes ``<stem>.xml``) work.
GIPP_FLAGS = {
    "GIP_L2A": "--GIP_L2A", "L2A_GIPP": "--GIP_L2A",
    "GIP_L2A_SC": "--GIP_L2A_SC", "L2A_CAL_SC_GIPP": "--GIP_L2A_SC",
    "GIP_L2A_AC": "--GIP_L2A_AC", "L2A_CAL_AC_GIPP": "--GIP_L2A_AC",
    "GIP_L2A_PB": "--GIP_L2A_PB", "L2A_PB_GIPP": "--GIP_L2A_PB",
}
_GIPP_ORDER = ("--GIP_L2A", "--GIP_L2A_SC", "--GIP_L2A_AC", "--GIP_L2A_PB")
_GIPP_STEMS = ("L2A_GIPP", "L2A_CAL_SC_GIPP", "L2A_CAL_AC_GIPP", "L2A_PB_GIPP")

#: environment variables that size thread pools (OpenMP, BLAS flavours, numexpr, GDAL)
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "NUMEXPR_MAX_THREADS", "GDAL_NUM_THREADS")

_BASELINE_RE = re.compile(r"^\d{2}\.\d{2}$")


class Sen2CorOptionError(ConfigError):
    """A setting that the installed Sen2Cor release cannot honour."""


@dataclass
class Sen2CorCommand:
    """One ready-to-run Sen2Cor invocation; every path in it is below the staging directory."""

    argv: list[str]
    env: dict[str, str]
    input_dir: Path          # what Sen2Cor is given (the product itself or a space-free link)
    output_dir: Path         # where the new *MSIL2A*.SAFE will appear
    work_dir: Path
    sen2cor_home: Path
    staged_input: bool = False
    notes: list[str] = field(default_factory=list)


def stage_input(product_dir: Path, staging_dir: Path) -> tuple[Path, bool]:
    """A space-free path to the L1C: the product itself, or a link to it under ``staging_dir/input``.

    Returns ``(path, staged)``.
    """
    product_dir = Path(product_dir).absolute()
    if " " not in str(product_dir):
        return product_dir, False
    staging_dir = Path(staging_dir).absolute()
    if " " in str(staging_dir):
        raise Sen2CorOptionError("Sen2Cor cannot read inputs from a path with spaces and the staging "
                                 "directory has spaces too; use a campaign directory without spaces",
                                 staging_dir)
    link = staging_dir / "input" / product_dir.name.replace(" ", "_")
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(product_dir.resolve(), target_is_directory=True)
    return link, True


def _gipp_args(gipp: str | Path | Mapping[str, str | Path] | None) -> list[tuple[str, Path]]:
    """``(flag, file)`` pairs from a GIPP file (the main L2A_GIPP), a folder of ``<stem>.xml``
    copies, or a mapping of kind -> file."""
    if gipp is None or gipp == "" or gipp == {}:
        return []
    if isinstance(gipp, (str, Path)):
        path = Path(str(gipp)).expanduser()
        if path.is_dir():
            items: dict[str, str | Path] = {s: path / f"{s}.xml" for s in _GIPP_STEMS
                                            if (path / f"{s}.xml").is_file()}
            if not items:
                raise Sen2CorOptionError(f"no {', '.join(s + '.xml' for s in _GIPP_STEMS)} in the GIPP "
                                         "folder", path)
        else:
            items = {"GIP_L2A": path}
    else:
        items = dict(gipp)
    found: dict[str, Path] = {}
    for key, value in items.items():
        flag = GIPP_FLAGS.get(str(key).removeprefix("--").removesuffix(".xml"))
        if flag is None:
            raise Sen2CorOptionError(f"unknown GIPP kind {key!r} (use GIP_L2A, GIP_L2A_SC, GIP_L2A_AC, "
                                     "GIP_L2A_PB or the file stems L2A_GIPP, L2A_CAL_SC_GIPP, ...)")
        path = Path(str(value)).expanduser().absolute()
        if not path.is_file():
            raise Sen2CorOptionError(f"{key} file does not exist", path)
        if flag in found and found[flag] != path:
            raise Sen2CorOptionError(f"two files given for {flag}: {found[flag]} and {path}")
        found[flag] = path
    return [(flag, found[flag]) for flag in _GIPP_ORDER if flag in found]


def _require(info: Sen2CorInfo, flag: str, setting: str) -> None:
    if not info.supports(flag):
        first = "3.0" if flag in ("--sc_cog", "--sc_classic") else "2.8"
        raise Sen2CorOptionError(f"Sen2Cor {info.version} has no {flag} option, so {setting} cannot be "
                                 f"honoured; remove it from [sen2cor] or install Sen2Cor {first} or newer")


def thread_env(cores: int) -> dict[str, str]:
    """Thread-count variables pinned to ``cores`` (never fewer than 1)."""
    n = str(max(1, int(cores)))
    return dict.fromkeys(THREAD_VARS, n)


def build_command(l2a_process: str | Path | Sequence[str | Path], info: Sen2CorInfo, product_dir: Path,
                  staging_dir: Path, *, resolution: int | None = None, processing_baseline: str | None = None,
                  gipp: str | Path | Mapping[str, str | Path] | None = None, cores: int = 1,
                  tif: bool = False, sc_cog: bool = False, sc_classic: bool = False,
                  base_env: Mapping[str, str] | None = None) -> Sen2CorCommand:
    """The argv and environment for converting ``product_dir`` inside ``staging_dir``.

    ``l2a_process`` is the program (2.x: ``bin/L2A_Process``) or the argv that starts it (3.x:
    ``[python, .../SEN2COR_3/L2A_Process.py]``). ``tif`` (GeoTIFF images), ``sc_cog`` (SCL as COG) and
    ``sc_classic`` (2.9-mode scene classification) are Sen2Cor's ``--tif``, ``--sc_cog``, ``--sc_classic``.
    Raises Sen2CorOptionError for a setting this release cannot do (e.g. a processing baseline
    on 2.3, resolution 30 before 3.0, ``--sc_cog`` before 3.0) instead of letting Sen2Cor die on a
    usage error.
    """
    staging_dir = Path(staging_dir).absolute()
    out_dir = staging_dir / "out"
    work_dir = staging_dir / "work"
    home = staging_dir / "sen2cor_home"
    notes: list[str] = []

    if resolution is not None:
        resolution = int(resolution)
        if resolution not in info.resolutions:
            raise Sen2CorOptionError(f"Sen2Cor {info.version} cannot process resolution {resolution} m "
                                     f"(it offers {', '.join(map(str, info.resolutions))})")
        _require(info, "--resolution", f"resolution = {resolution}")
    if processing_baseline is not None:
        processing_baseline = str(processing_baseline)
        if not _BASELINE_RE.match(processing_baseline):
            raise Sen2CorOptionError(f"processing_baseline {processing_baseline!r} is not of the form "
                                     "'dd.dd' (e.g. '05.10')")
        _require(info, "--processing_baseline", f"processing_baseline = {processing_baseline!r}")
    gipps = _gipp_args(gipp)
    for flag, _path in gipps:
        _require(info, flag, f"a {flag.removeprefix('--')} file")
    switches = [flag for flag, on in (("--tif", tif), ("--sc_cog", sc_cog), ("--sc_classic", sc_classic)) if on]
    for flag in switches:
        _require(info, flag, f"{flag.removeprefix('--')} = true")

    if info.supports("--output_dir"):
        input_dir, staged = stage_input(product_dir, staging_dir)
    else:
        # Releases without --output_dir write next to their input: give them a link inside out/
        # so that the product still appears below the staging directory.
        src = Path(product_dir).absolute()
        link = out_dir / src.name.replace(" ", "_")
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(src.resolve(), target_is_directory=True)
        input_dir, staged = link, True
        notes.append(f"Sen2Cor {info.version} has no --output_dir: input linked into {out_dir}")

    launcher = [str(l2a_process)] if isinstance(l2a_process, (str, Path)) else [str(a) for a in l2a_process]
    argv = [*launcher, str(input_dir)]
    if info.supports("--output_dir"):
        argv += ["--output_dir", str(out_dir)]
    if info.supports("--work_dir"):
        argv += ["--work_dir", str(work_dir)]
    if resolution is not None:
        argv += ["--resolution", str(resolution)]
    if processing_baseline is not None:
        argv += ["--processing_baseline", processing_baseline]
    for flag, path in gipps:
        argv += [flag, str(path)]
    argv += switches

    env = dict(os.environ if base_env is None else base_env)
    env["SEN2COR_HOME"] = str(home)
    env.update(thread_env(cores))
    for d in (out_dir, work_dir, home / "log"):
        d.mkdir(parents=True, exist_ok=True)
    return Sen2CorCommand(argv=argv, env=env, input_dir=input_dir, output_dir=out_dir, work_dir=work_dir,
                          sen2cor_home=home, staged_input=staged, notes=notes)
