"""What to look for (Query) and what was found (Candidate), the filters and the duplicate rule.

Naming rules and the duplicate rule come from ``s2l2a.safe`` (``safe.acquisition``), so a
product chosen here is the one ``plan`` would choose from the same set.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shapely.geometry.base import BaseGeometry

from s2l2a.errors import S2L2AError
from s2l2a.safe.errors import ProductNameError

try:  # the public name, once safe/__init__ re-exports it
    from s2l2a.safe import parse_product_name
except ImportError:  # pragma: no cover - during parallel development
    from s2l2a.safe.names import parse_product_name

PLATFORMS = ("S2A", "S2B", "S2C")
_BASELINE = re.compile(r"^(\d{1,2})(?:\.(\d{1,2}))?$")


class QueryError(S2L2AError):
    """A search parameter is invalid."""


def baseline_tuple(text: str | None) -> tuple[int, int] | None:
    """``"04.00"``/``"4"``/``"4.0"`` → ``(4, 0)``; None when unknown."""
    if not text:
        return None
    m = _BASELINE.match(text.strip())
    if not m:
        raise QueryError(f"not a processing baseline: {text!r} (expected e.g. 04.00)")
    return int(m[1]), int(m[2] or 0)


def parse_day(text: str, *, end: bool = False) -> datetime:
    """``YYYY-MM-DD`` (or full ISO time) → UTC datetime; an end day means up to its last second."""
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            t = datetime(d.year, d.month, d.day, tzinfo=UTC)
            return t + timedelta(days=1) - timedelta(microseconds=1) if end else t
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(f"not a date: {text!r} (expected YYYY-MM-DD)") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@dataclass
class Query:
    """Search parameters shared by every source; ``tiles`` is never empty once resolved."""

    tiles: list[str]
    start: datetime | None = None
    end: datetime | None = None
    max_cloud: float | None = None
    platforms: list[str] = field(default_factory=list)
    orbits: list[int] = field(default_factory=list)
    min_baseline: str | None = None
    aoi: BaseGeometry | None = None

    def validate(self) -> None:
        if not self.tiles:
            raise QueryError("no tiles to search: give --tile, --aoi or --bbox")
        if self.start and self.end and self.start > self.end:
            raise QueryError(f"start {self.start:%Y-%m-%d} is after end {self.end:%Y-%m-%d}")
        if self.max_cloud is not None and not 0 <= self.max_cloud <= 100:
            raise QueryError(f"max cloud cover must be 0-100, got {self.max_cloud}")
        bad = [p for p in self.platforms if p not in PLATFORMS]
        if bad:
            raise QueryError(f"unknown platform {bad[0]!r} (known: {', '.join(PLATFORMS)})")
        baseline_tuple(self.min_baseline)


@dataclass
class Candidate:
    """One L1C product found in one source; ``ref`` locates it there (bucket prefix, OData Id)."""

    name: str
    source: str
    ref: str
    tile: str | None
    mission: str
    sensing_time: datetime
    generation_time: datetime | None
    relative_orbit: int | None
    baseline: str | None
    cloud_cover: float | None = None
    size: int | None = None
    checksum: str | None = None      # CDSE archive MD5 (hex)
    online: bool = True

    @classmethod
    def from_name(cls, name: str, source: str, ref: str, **extra: Any) -> Candidate:
        """Candidate with every fact the product name carries (raises ProductNameError)."""
        pn = parse_product_name(name)
        return cls(name=pn.name, source=source, ref=ref, tile=pn.tile, mission=pn.mission,
                   sensing_time=pn.sensing_time, generation_time=pn.generation_time,
                   relative_orbit=pn.relative_orbit, baseline=pn.baseline, **extra)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["sensing_time"] = self.sensing_time.isoformat()
        d["generation_time"] = self.generation_time.isoformat() if self.generation_time else None
        return d


def is_l1c(name: str) -> bool:
    """True for an L1C product name (L2A and foreign folders in a listing are ignored)."""
    try:
        return parse_product_name(name).level == "L1C"
    except ProductNameError:
        return False


def name_match(c: Candidate, q: Query) -> bool:
    """The filters a product name can answer: date, platform, orbit, tile, baseline when known."""
    if q.start and c.sensing_time < q.start:
        return False
    if q.end and c.sensing_time > q.end:
        return False
    if q.platforms and c.mission not in q.platforms:
        return False
    if q.orbits and c.relative_orbit not in q.orbits:
        return False
    if c.tile and c.tile not in q.tiles:
        return False
    return not (q.min_baseline and c.baseline and baseline_tuple(c.baseline) < baseline_tuple(q.min_baseline))


def needs_metadata(c: Candidate, q: Query) -> bool:
    """True when a filter can only be answered from the product's metadata file."""
    return (q.max_cloud is not None and c.cloud_cover is None) or (bool(q.min_baseline) and c.baseline is None)


def metadata_match(c: Candidate, q: Query) -> bool:
    """Cloud and baseline filters; an unknown value never satisfies a filter that asks for it."""
    if q.max_cloud is not None and (c.cloud_cover is None or c.cloud_cover > q.max_cloud):
        return False
    if q.min_baseline:
        bt = baseline_tuple(c.baseline) if c.baseline else None
        if bt is None or bt < baseline_tuple(q.min_baseline):
            return False
    return name_match(c, q)


@dataclass
class _DedupView:
    """Adapter to the duplicate rule (``safe.acquisition``), which ranks generation times as ISO strings."""

    name: str
    tile: str
    sensing_time: str
    baseline: str | None
    generation_time: str | None
    cand: Candidate


def resolve_duplicates(cands: list[Candidate]) -> tuple[list[Candidate], list[tuple[Candidate, Candidate]]]:
    """Apply the duplicate rule per acquisition; also merge the same product from two sources.

    Returns the kept candidates (in sensing order) and ``(dropped, kept)`` pairs. Products without a
    tile in their name (old multi-tile OPER products) are never merged.
    """
    from s2l2a.safe.acquisition import acquisition_of, pick_winners

    seen: dict[str, Candidate] = {}
    dropped: list[tuple[Candidate, Candidate]] = []
    for c in cands:  # same product in several sources: the first source listed wins
        if c.name in seen:
            dropped.append((c, seen[c.name]))
        else:
            seen[c.name] = c
    views = [_DedupView(c.name, c.tile or c.name, c.sensing_time.isoformat(), c.baseline,
                        c.generation_time.isoformat() if c.generation_time else None, c) for c in seen.values()]
    winners = pick_winners(views)
    kept = []
    for v in views:
        w = winners[acquisition_of(v)]
        if w is v:
            kept.append(v.cand)
        else:
            dropped.append((v.cand, w.cand))
    kept.sort(key=lambda c: (c.sensing_time, c.tile or "", c.name))
    return kept, dropped
