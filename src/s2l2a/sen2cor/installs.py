"""A campaign's Sen2Cor installs and which one reads which product.

Sen2Cor reads only the L1C product (PSD) versions its banner names: 2.11 "14.2 - 14.9", 3.3.0
"15.0". A lab with products of every baseline keeps two installs, e.g. 2.11 for the old ones and
3.3 for 05.11 and later, and lists them in ``[sen2cor]``::

    l2a_process = "/opt/Sen2Cor-02.11.00-Linux64"            # the first choice
    installs = ["/opt/sen2cor3/sen2cor_3.3.0_python_3.12"]    # tried next, in order

Each product goes to the first install whose range holds its version (read from its metadata by
:mod:`s2l2a.safe.psd`). A product no install reads is refused by ``plan`` and by the preflight in one
line naming the product version and the ranges, instead of failing after the job ran.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s2l2a.errors import ConfigError
from s2l2a.safe.psd import ProductVersion, read_product_version
from s2l2a.sen2cor.locate import find_l2a_process, launcher, read_info
from s2l2a.sen2cor.version import Sen2CorInfo


@dataclass(frozen=True)
class Install:
    """One configured Sen2Cor: its program, the argv that starts it, what it is."""

    program: Path
    launcher: tuple[str, ...]
    info: Sen2CorInfo

    @property
    def label(self) -> str:
        """``Sen2Cor 2.11.0 (14.2 - 14.9)``."""
        rng = f" ({self.info.products})" if self.info.products is not None else ""
        return f"Sen2Cor {'.'.join(map(str, self.info.number))}{rng}"

    def refusal(self, version: ProductVersion | None) -> str | None:
        """Why this install cannot read a product of ``version`` (None: it can, or nobody knows)."""
        if self.info.products is None:
            return None
        return self.info.products.verdict(version, self.info.number)


def configured(options: Mapping[str, Any]) -> list[str]:
    """``l2a_process`` then ``installs`` of a ``[sen2cor]`` section, as written (may be empty)."""
    out: list[str] = []
    first = options.get("l2a_process")
    if first:
        out.append(str(first))
    more = options.get("installs") or []
    if isinstance(more, str):
        more = [more]
    out.extend(str(m) for m in more if m)
    return out


def load(options: Mapping[str, Any]) -> list[Install]:
    """Every install of a ``[sen2cor]`` section (l2a_process, or the one found, then installs), asked
    for its version. ConfigError (one line) for one that is not there or does not answer."""
    python = options.get("python")
    paths: list[str | None] = list(configured(options)) or [None]   # None: $SEN2COR_BIN / PATH
    out: list[Install] = []
    for p in paths:
        program = find_l2a_process(p)
        if program is None:
            where = p or "$SEN2COR_BIN or PATH"
            raise ConfigError(f"no Sen2Cor L2A_Process at {where}")
        argv = launcher(program, python)
        out.append(Install(program=program, launcher=tuple(argv), info=read_info(program, python=python)))
    return out


def choose(installs: Iterable[Install], version: ProductVersion | None) -> tuple[Install | None, str]:
    """The first install that reads ``version``, or (None, one line naming the version and every range)."""
    installs = list(installs)
    for inst in installs:
        if inst.refusal(version) is None:
            return inst, ""
    if len(installs) == 1:
        return None, str(installs[0].refusal(version))
    ranges = ", ".join(i.label for i in installs)
    return None, f"product version {version} is outside what every configured Sen2Cor reads: {ranges}"


def refusal(product_dir: Path | str, installs: Iterable[Install]) -> str | None:
    """One line when no install reads the product at ``product_dir`` (its PSD version from its metadata)."""
    chosen, why = choose(installs, read_product_version(product_dir))
    return None if chosen is not None else why


def plan_refusal(processor: str, options: Mapping[str, Any]) -> Callable[[Path], str | None] | None:
    """For ``plan``: product path -> one-line refusal when no configured Sen2Cor reads it.

    None when the campaign's processor is not Sen2Cor (``auto`` without one found) or its installs
    cannot be asked for their versions: then nothing is refused here and the preflight says why.
    """
    if processor not in ("sen2cor", "auto"):
        return None
    if processor == "auto" and find_l2a_process(options.get("l2a_process")) is None:
        return None
    try:
        installs = load(options)
    except ConfigError:
        return None
    return lambda product_dir: refusal(product_dir, installs)
