"""What a cube is built from: products, each with its derived index and SCL, and what was left out.

The cube never reads an L2A band itself. Every product contributes the index COG and the SCL COG of
its derived folder (see :mod:`s2l2a.outputs.derive`), so the reflectance rule
(``(DN + BOA_ADD_OFFSET) / quantification`` from the product's own metadata) has one home and
products of baselines before and after 04.00 mix safely. Who finds the products (a campaign's done
jobs: :mod:`s2l2a.campaign.cubes`) hands them over as a :class:`Collected`, answering a
:class:`CollectRequest` once the cube's rules (from the options or the existing store) are known.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from s2l2a.errors import CampaignError


@dataclass(frozen=True)
class Observation:
    """One done product as the cube sees it: its derived index and SCL, and its provenance."""

    product: str                   # the L2A product name (no .SAFE)
    tile: str
    sensing_time: datetime         # UTC
    baseline: str | None           # the L2A's processing baseline (what its offsets depend on)
    processor: str | None
    processor_version: str | None
    index_path: Path
    scl_path: Path
    resolution: int                # of the derived files

    @property
    def day(self) -> date:
        return self.sensing_time.date()


@dataclass(frozen=True)
class CollectRequest:
    """Which products a cube wants: its index and resolution, dates, tiles and AOI (lon/lat)."""

    index: str
    resolution: int
    start: date | None = None
    end: date | None = None
    tiles: frozenset[str] | None = None
    aoi: Any = None
    derive_missing: bool = True


@dataclass
class Collected:
    """The observations to stack, the tiles the campaign planned, and one line per product left out."""

    observations: list[Observation] = field(default_factory=list)
    planned_tiles: set[str] = field(default_factory=set)
    done_tiles: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def baseline_note(observations: list[Observation]) -> str | None:
    """One line when baselines before and after 04.00 (offset 0 and -1000) are stacked together."""
    from s2l2a.safe.acquisition import baseline_rank

    counts = Counter(o.baseline or "?" for o in observations)
    old = sorted(b for b in counts if (4, 0) > baseline_rank(b) >= (0, 0))
    new = sorted(b for b in counts if baseline_rank(b) >= (4, 0))
    if not (old and new):
        return None
    return (f"baselines {', '.join(old + new)} mixed: every product's index uses the BOA_ADD_OFFSET of its own "
            "metadata (0 before 04.00, -1000 since), so their values compare")


Collector = Callable[[CollectRequest], Collected]


def require_some(c: Collected, campaign_dir: Path | str) -> None:
    """A campaign with nothing to stack is a one-line error, not an empty cube."""
    if c.observations:
        return
    if not c.done_tiles:
        raise CampaignError("no done product yet: run the campaign first", campaign_dir)
    raise CampaignError("no done product matches the cube's dates, tiles and area of interest"
                        + (f" ({len(c.notes)} left out: {c.notes[0]})" if c.notes else ""), campaign_dir)
