"""Which of several products of one tile and sensing time (reprocessings) a campaign keeps.

ESA reprocesses archives (new processing baseline, new generation time); catalogues and
mirrors then hold several L1C products of the same acquisition, and converting all of them
wastes hours and produces conflicting outputs. The rule: keep the highest processing baseline,
then the latest generation time; on a full tie the product planned first (stable across re-plans).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

from s2l2a.campaign.states import SKIP_DUPLICATE

DUPLICATE_PREFIX = SKIP_DUPLICATE


class Candidate(Protocol):
    """What the rule looks at (``store.Job`` and ``store.ProductRecord`` both fit)."""

    name: str
    tile: str
    sensing_time: str
    baseline: str | None
    generation_time: str | None


T = TypeVar("T", bound=Candidate)

_BASELINE_RE = re.compile(r"(\d+)\.(\d+)")


def baseline_rank(baseline: str | None) -> tuple[int, int]:
    """"05.10" -> (5, 10); unknown baselines rank lowest."""
    m = _BASELINE_RE.search(baseline or "")
    return (int(m.group(1)), int(m.group(2))) if m else (-1, -1)


def group_key(c: Candidate) -> tuple[str, str]:
    """Products of one acquisition share tile and sensing time (to the second)."""
    return (c.tile, c.sensing_time[:19])


def rank(c: Candidate) -> tuple[tuple[int, int], str]:
    """Higher is better: baseline first, then generation time (ISO strings sort as times)."""
    return (baseline_rank(c.baseline), c.generation_time or "")


def pick_winners(items: Iterable[T], order: Callable[[T], object] | None = None) -> dict[tuple[str, str], T]:
    """The winner of every (tile, sensing time) group; on a full tie the first item in
    ``order`` (default: input order) wins."""
    groups: dict[tuple[str, str], list[T]] = defaultdict(list)
    for it in items:
        groups[group_key(it)].append(it)
    winners: dict[tuple[str, str], T] = {}
    for key, members in groups.items():
        if order is not None:
            members.sort(key=order)  # type: ignore[arg-type]
        best = members[0]
        for m in members[1:]:
            if rank(m) > rank(best):
                best = m
        winners[key] = best
    return winners


def duplicate_reason(winner: Candidate) -> str:
    """The skip reason of a loser, naming the product kept."""
    return f"{DUPLICATE_PREFIX}{winner.name} (baseline {winner.baseline or '?'})"
