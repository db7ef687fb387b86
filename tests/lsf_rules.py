"""The LSF rules both test-only LSF tools follow (tests/lsf_standin, tests/lsf_shim): one place, so
the simulator and the Slurm shim cannot drift apart on the defaults that bite.

- ``bsub`` options: which take a value, which are flags; anything else is LSF's "Illegal option".
- ``bsub < script`` reads ``#BSUB`` lines from standard input up to the first command line.
- ``-M`` / ``rusage[mem=]`` are in LSF_UNIT_FOR_LIMITS from ``$LSF_ENVDIR/lsf.conf``; when it is unset
  ``-M`` is in KB and ``rusage[mem=]`` in MB (as a real OpenLava shows, tests/data/engines/openlava).
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

UNIT_KB = {"KB": 1, "K": 1, "MB": 1024, "M": 1024, "GB": 1024**2, "G": 1024**2, "TB": 1024**3, "T": 1024**3}
REASONS = {
    "TERM_MEMLIMIT": "TERM_MEMLIMIT: job killed after reaching LSF memory usage limit",
    "TERM_RUNLIMIT": "TERM_RUNLIMIT: job killed after reaching LSF run time limit",
    "TERM_OWNER": "TERM_OWNER: job killed by owner",
}
WITH_VALUE = {"-J", "-n", "-R", "-M", "-W", "-o", "-e", "-oo", "-eo", "-q", "-P", "-G", "-m"}
FLAGS = {"-x", "-K", "-I"}


def unit_for_limits() -> str:
    """LSF_UNIT_FOR_LIMITS from $LSF_ENVDIR/lsf.conf; KB when unset (LSF's default)."""
    envdir = os.environ.get("LSF_ENVDIR")
    if envdir and (Path(envdir) / "lsf.conf").is_file():
        for line in (Path(envdir) / "lsf.conf").read_text(errors="replace").splitlines():
            m = re.match(r"\s*LSF_UNIT_FOR_LIMITS\s*=\s*\"?(\w+)", line)
            if m and m[1].upper() in UNIT_KB:
                return m[1].upper()
    return "KB"


def parse_bsub_options(argv: list[str]) -> tuple[dict[str, str | bool], list[str]]:
    """Options, then the command (empty for ``bsub < script``); ValueError for an unknown option."""
    opts: dict[str, str | bool] = {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in FLAGS:
            opts[a] = True
            i += 1
        elif a in WITH_VALUE and i + 1 < len(argv):
            opts[a] = argv[i + 1]
            i += 2
        elif a.startswith("-"):
            raise ValueError(f"{a}: Illegal option. Job not submitted.")
        else:
            break
    return opts, argv[i:]


def embedded_options(script: str) -> list[str]:
    """``#BSUB`` words up to the first command line (what LSF reads from ``bsub < script``)."""
    words: list[str] = []
    lines = script.splitlines()
    for line in lines[1:] if script.startswith("#!") else lines:
        s = line.strip()
        if s.startswith("#BSUB"):
            words += shlex.split(s[5:])
        elif s and not s.startswith("#"):
            break
    return words
