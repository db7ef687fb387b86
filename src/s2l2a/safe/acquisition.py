"""Which products are one acquisition, and which of its reprocessings to keep.

ESA reprocesses archives (new processing baseline, new generation time); catalogues, mirrors and
output folders then hold several products of the same acquisition. Every part of s2l2a that must
tell them apart (plan, search, publication, "already done" checks) asks this module.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from s2l2a.safe.errors import ProductNameError
from s2l2a.safe.names import parse_product_name

#: an acquisition: (MGRS tile, UTC sensing time to the second, "YYYY-MM-DDTHH:MM:SS")
AcquisitionKey = tuple[str, str]
#: ISO UTC as the store writes it; its key is its first 19 characters (planning keys 100,000s)
_STORE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def acquisition_key(tile: str | None, sensing_time: datetime | str) -> AcquisitionKey:
    """The identity of an acquisition: its MGRS tile and its sensing time to the second (UTC).

    Reprocessings of one acquisition share both (the name's sensing time is the datatake's start,
    the same for every tile and every reprocessing of it). Mission and relative orbit are left out
    on purpose: at a given second a satellite is on one relative orbit, and the satellites share
    one orbital plane at different phases, so two of them never image one tile at the same second;
    neither adds anything, and leaving them out keeps the rule usable for records that lack them
    (catalogue entries, stores planned before the mission was recorded). Old OPER multi-tile names
    carry no tile: the caller passes the tile the product was planned or published under, or
    ``None`` to compare within one tile's folder.

    ``sensing_time`` is a datetime (naive means UTC) or an ISO string as the store keeps it.
    """
    if isinstance(sensing_time, str):
        if _STORE_TIME.fullmatch(sensing_time):  # the store's own spelling, already UTC: no parse
            return (tile or "", sensing_time[:19])
        try:
            sensing_time = datetime.fromisoformat(sensing_time.replace("Z", "+00:00"))
        except ValueError:
            return (tile or "", sensing_time[:19])
    if sensing_time.tzinfo is not None:
        sensing_time = sensing_time.astimezone(UTC)
    return (tile or "", sensing_time.strftime("%Y-%m-%dT%H:%M:%S"))


def same_acquisition(a: str, b: str) -> bool:
    """Two product names (L1C or L2A, any generation or baseline) of the same acquisition.

    Names that do not parse are the same only when equal.
    """
    try:
        na, nb = parse_product_name(a), parse_product_name(b)
    except ProductNameError:
        return a == b
    return acquisition_key(na.tile, na.sensing_time) == acquisition_key(nb.tile, nb.sensing_time)


# -- which reprocessing to keep --------------------------------------------------------------------


class Candidate(Protocol):
    """What the choice looks at (the store's jobs and product records both fit)."""

    name: str
    tile: str
    sensing_time: str
    baseline: str | None
    generation_time: str | None


T = TypeVar("T", bound=Candidate)

_BASELINE_RE = re.compile(r"(\d+)\.(\d+)")


def acquisition_of(c: Candidate) -> AcquisitionKey:
    """The acquisition a product record belongs to (see :func:`acquisition_key`)."""
    return acquisition_key(c.tile, c.sensing_time)


def baseline_rank(baseline: str | None) -> tuple[int, int]:
    """"05.10" -> (5, 10); unknown baselines rank lowest."""
    m = _BASELINE_RE.search(baseline or "")
    return (int(m.group(1)), int(m.group(2))) if m else (-1, -1)


def rank(c: Candidate) -> tuple[tuple[int, int], str]:
    """Higher is better: baseline first, then generation time (ISO strings sort as times)."""
    return (baseline_rank(c.baseline), c.generation_time or "")


def pick_winners(items: Iterable[T], order: Callable[[T], object] | None = None) -> dict[AcquisitionKey, T]:
    """The product kept for every acquisition: the highest processing baseline, then the latest
    generation time; on a full tie the first item in ``order`` (default: input order) wins, which
    keeps the choice stable across re-plans."""
    groups: dict[AcquisitionKey, list[T]] = defaultdict(list)
    for it in items:
        groups[acquisition_of(it)].append(it)
    winners: dict[AcquisitionKey, T] = {}
    for key, members in groups.items():
        if order is not None:
            members.sort(key=order)  # type: ignore[arg-type]
        best = members[0]
        for m in members[1:]:
            if rank(m) > rank(best):
                best = m
        winners[key] = best
    return winners
