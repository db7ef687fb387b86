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

from s2l2a.errors import ConfigError
from s2l2a.safe.psd import ProductVersion

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
#: "supporting Level-1C product version 14.2 - 14.9" / "<= 14.5" / "15.0" / (2.3) "version: 14."
_SUPPORTS_RE = re.compile(r"supporting Level-1C product version:?\s*(<=)?\s*(\d+)\.(\d*)"
                          r"(?:\s*-\s*(\d+)\.(\d+))?")
_USAGE_FLAG_RE = re.compile(r"\[(--[A-Za-z0-9_]+)(?: ([^\]]+))?\]")


class Sen2CorVersionError(ConfigError):
    """The output of ``L2A_Process --help`` does not say which Sen2Cor it is (or it gave none)."""


@dataclass(frozen=True)
class ProductRange:
    """The L1C product (PSD) versions a Sen2Cor says it supports, as its banner words them.

    Banners seen: 2.3.0 "version: 14." (any 14.x), 2.5.5 "<= 14.5", 2.8.0 "14.2 - 14.5", 2.11
    and 3.1.0 "14.2 - 14.9", 3.2.0 and 3.3.0 "15.0", 3.3.2 "15.1". A single number is read as that
    version and the earlier ones of its major (3.3.2's "15.1" includes the 15.0 that 3.3.0 names).
    """

    low: tuple[int, int] | None      # None: no lower bound ("<= 14.5")
    high: tuple[int, int]
    text: str                        # as the banner says it, e.g. "14.2 - 14.9"

    def __str__(self) -> str:
        return self.text

    def verdict(self, product: ProductVersion | None, sen2cor: tuple[int, int, int]) -> str | None:
        """None when ``sen2cor`` can read a product of this version, else why not (a phrase).

        An unknown version passes (nothing to refuse on). Older products than a 2.x range are read:
        Sen2Cor 2.x converts them ("Product version is below 14.5, will be converted"); 3.x
        banners name no older version, so older products are refused.
        """
        if product is None:
            return None
        number = product.number or (product.major, -1)
        newer = number[0] > self.high[0] if product.minor is None else number > self.high
        older = self.low is not None and sen2cor >= (3, 0, 0) and (
            number[0] < self.low[0] if product.minor is None else number < self.low)
        if not (newer or older):
            return None
        return (f"product version {product} is outside what Sen2Cor {'.'.join(map(str, sen2cor))} reads "
                f"({self.text})")


@dataclass(frozen=True)
class Sen2CorInfo:
    """What one installed Sen2Cor is and can do."""

    number: tuple[int, int, int]
    banner: str = ""
    flags: dict[str, bool] = field(default_factory=dict)  # "--output_dir" -> takes a value
    resolutions: tuple[int, ...] = (10, 20, 60)
    products: ProductRange | None = None   # the L1C product versions its banner names

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


def parse_products(text: str) -> ProductRange | None:
    """The product versions a banner (``--help`` or a run log's first line) says it supports."""
    m = _SUPPORTS_RE.search(text)
    if not m:
        return None
    at_most, major, minor, major2, minor2 = m.groups()
    if major2 is not None:
        low, high = (int(major), int(minor or 0)), (int(major2), int(minor2))
        return ProductRange(low, high, f"{low[0]}.{low[1]} - {high[0]}.{high[1]}")
    if not minor:  # 2.3.0: "version: 14." -- every 14.x
        return ProductRange((int(major), 0), (int(major), 99), f"{int(major)}.x")
    number = (int(major), int(minor))
    if at_most:
        return ProductRange(None, number, f"<= {number[0]}.{number[1]}")
    return ProductRange((number[0], 0), number, f"{number[0]}.{number[1]}")


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
    banner = _banner(text)
    return Sen2CorInfo(number=number, banner=banner, flags=flags, resolutions=resolutions,
                       products=parse_products(banner or text))


def info_for(number: tuple[int, int, int]) -> Sen2CorInfo:
    """Capabilities of a release known only by number (tests, or a help text that lists nothing)."""
    res = (10, 20, 30, 60) if number >= (3, 0, 0) else (10, 20, 60)
    return Sen2CorInfo(number=number, flags=known_flags(number), resolutions=res)
