"""Which Sen2Cor is installed and which command-line options it understands.

Sen2Cor's options changed between releases (2.3 has no ``--output_dir``/``--work_dir``, 3.x adds
resolution 30 and ``--sc_cog``), and a flag a release does not know makes it exit with a usage
error after a slow start. So the version and the flag set are read from the program's own
``--help`` text; a table derived from the real help texts of 2.3.0, 2.8.0 and 3.02.00 is the
fallback when a help text lists no options.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from s2l2a.errors import S2L2AError

# Flags (with whether they take a value) as printed by the real --help texts of three releases.
_FLAGS_2_3: dict[str, bool] = {
    "--resolution": True, "--sc_only": False, "--cr_only": False, "--refresh": False,
    "--GIP_L2A": True, "--GIP_L2A_SC": True, "--GIP_L2A_AC": True,
}
_FLAGS_2_8: dict[str, bool] = {
    "--mode": True, "--resolution": True, "--datastrip": True, "--tile": True, "--output_dir": True,
    "--work_dir": True, "--img_database_dir": True, "--res_database_dir": True,
    "--processing_centre": True, "--archiving_centre": True, "--processing_baseline": True,
    "--raw": False, "--tif": False, "--sc_only": False, "--cr_only": False, "--debug": False,
    "--GIP_L2A": True, "--GIP_L2A_SC": True, "--GIP_L2A_AC": True, "--GIP_L2A_PB": True,
}
_FLAGS_3_0: dict[str, bool] = {**_FLAGS_2_8, "--sc_classic": False, "--sc_cog": False, "--Hyper_MS": False}

_VERSION_RE = re.compile(r"Version:\s*v?(\d+)\.(\d+)(?:\.(\d+))?")
_USAGE_FLAG_RE = re.compile(r"\[(--[A-Za-z0-9_]+)(?: ([^\]]+))?\]")


class Sen2CorVersionError(S2L2AError):
    """The output of ``L2A_Process --help`` does not say which Sen2Cor it is."""


@dataclass(frozen=True)
class Sen2CorInfo:
    """What one installed Sen2Cor is and can do."""

    number: tuple[int, int, int]
    banner: str = ""
    flags: dict[str, bool] = field(default_factory=dict)  # "--output_dir" -> takes a value
    resolutions: tuple[int, ...] = (10, 20, 60)

    @property
    def version(self) -> str:
        """ESA's zero-padded form ("02.08.00"), the same for every release so versions sort as text."""
        return "{:02d}.{:02d}.{:02d}".format(*self.number)

    def supports(self, flag: str) -> bool:
        return flag in self.flags


def parse_version(text: str) -> tuple[int, int, int]:
    """The ``(major, minor, patch)`` in a Sen2Cor banner: "Version: 2.8.0" and "Version: 03.02.00" alike."""
    m = _VERSION_RE.search(text)
    if not m:
        raise Sen2CorVersionError("no 'Version: X.Y.Z' in the L2A_Process --help output")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def known_flags(number: tuple[int, int, int]) -> dict[str, bool]:
    """Flags of a release by number, from the real help texts (2.9–2.12 share 2.8's set).

    Releases between 2.3 and 2.8 are not recorded; they get the 2.3 set, the safe side.
    """
    if number >= (3, 0, 0):
        return dict(_FLAGS_3_0)
    if number >= (2, 8, 0):
        return dict(_FLAGS_2_8)
    return dict(_FLAGS_2_3)


def _banner(text: str) -> str:
    """The description paragraph holding "Version:", joined into one line."""
    for para in re.split(r"\n\s*\n", text):
        if "Version:" in para:
            return " ".join(para.split())
    return ""


def _usage_block(text: str) -> str:
    start = text.find("usage:")
    if start < 0:
        return ""
    end = text.find("\n\n", start)
    return text[start:end if end >= 0 else None]


def parse_help(text: str) -> Sen2CorInfo:
    """Version, flags and resolutions from the text ``L2A_Process --help`` printed."""
    number = parse_version(text)
    flags: dict[str, bool] = {}
    resolutions: tuple[int, ...] = ()
    for flag, metavar in _USAGE_FLAG_RE.findall(_usage_block(text)):
        if flag == "--help":
            continue
        flags[flag] = bool(metavar)
        if flag == "--resolution" and metavar.startswith("{"):
            resolutions = tuple(int(v) for v in metavar.strip("{}").split(",") if v.strip().isdigit())
    if not flags:
        flags = known_flags(number)
    if not resolutions:
        resolutions = (10, 20, 30, 60) if number >= (3, 0, 0) else (10, 20, 60)
    return Sen2CorInfo(number=number, banner=_banner(text), flags=flags, resolutions=resolutions)


def info_for(number: tuple[int, int, int]) -> Sen2CorInfo:
    """Capabilities of a release known only by number (tests, or a help text that lists nothing)."""
    res = (10, 20, 30, 60) if number >= (3, 0, 0) else (10, 20, 60)
    return Sen2CorInfo(number=number, flags=known_flags(number), resolutions=res)
