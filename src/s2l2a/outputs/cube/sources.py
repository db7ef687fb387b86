"""Which products go into a cube: a campaign's done products, each with its derived index and SCL.

The cube never reads an L2A band itself. Every product contributes the index COG and the SCL COG of
its derived folder (``<campaign>/derived/<tile>/<product>/``, see :mod:`s2l2a.outputs.derive`), so
the reflectance rule (``(DN + BOA_ADD_OFFSET) / quantification`` from the product's own metadata)
has one home and products of baselines before and after 04.00 mix safely. A product whose derived
folder is missing or lacks the index is derived here, while its L2A is still on disk.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from s2l2a.errors import CampaignError, ProductError
from s2l2a.outputs.indices import INDICES


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


@dataclass
class Collected:
    """The observations to stack, the tiles the campaign planned, and one line per product left out."""

    observations: list[Observation] = field(default_factory=list)
    planned_tiles: set[str] = field(default_factory=set)
    done_tiles: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def _utc(text: str) -> datetime:
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _derived_usable(res: Any, index: str) -> bool:
    return index in res.files and (Path(res.out_dir) / res.files[index]).is_file()


def _derive(l2a: Path, out_dir: Path, index: str, resolution: int, old: Any | None) -> Any:
    """Derive ``index`` (and SCL) for one product; an existing folder keeps its other indices."""
    from s2l2a.outputs.derive import DeriveSpec, derive_product

    if old is None:
        spec = DeriveSpec(indices=(index,), resolution=resolution)
    else:  # re-derive at the folder's own resolution with everything it had, plus the index
        formulas = tuple(f"{n}={e}" for n, e in old.formulas.items() if n != index)
        spec = DeriveSpec(indices=(index,), formulas=formulas, resolution=old.resolution,
                          clear_classes=tuple(old.clear_classes) if old.clear_classes else None,
                          quicklooks=bool(old.quicklooks))
    return derive_product(l2a, out_dir, spec)


def _offsets_recorded(res: Any, bands: tuple[str, ...]) -> bool:
    """Whether the derived manifest records the BOA_ADD_OFFSET it applied to every band of the index."""
    return all(b in (res.boa_add_offset or {}) for b in bands)


def collect(campaign_dir: Path | str, index: str, resolution: int, *, start: date | None = None,
            end: date | None = None, tiles: set[str] | None = None, aoi: Any = None,
            derive_missing: bool = True) -> Collected:
    """Every done product of the campaign within the dates, tiles and AOI (lon/lat), with its derived
    index and SCL; products that cannot take part are left out with one line each in ``notes``."""
    from s2l2a.acquire.tiles import TileError, tile_footprint
    from s2l2a.campaign.layout import CampaignLayout
    from s2l2a.campaign.states import JobState
    from s2l2a.campaign.store import CampaignStore
    from s2l2a.outputs.derive import DerivedResult, DeriveError, find_derived
    from s2l2a.outputs.indices import FormulaError, builtin_index
    from s2l2a.safe.acquisition import pick_winners

    campaign_dir = Path(campaign_dir)
    layout = CampaignLayout.of(campaign_dir)  # derived outputs live in the campaign whatever output_dir says
    with CampaignStore.open(campaign_dir) as store:
        jobs = store.jobs()
    out = Collected(planned_tiles={j.tile for j in jobs})
    done = [j for j in jobs if j.state == JobState.DONE and j.output_path]
    out.done_tiles = {j.tile for j in done}
    winners = {id(w) for w in pick_winners(done, order=lambda j: j.id).values()}
    bands: tuple[str, ...] = ()
    try:
        bands = builtin_index(index).bands
    except FormulaError:
        pass  # a user formula already derived under this name: its bands are in the manifest
    existing = find_derived(layout.derived)
    for job in sorted(done, key=lambda j: (j.sensing_time, j.tile, j.name)):
        l2a = Path(job.output_path)
        name = l2a.name.removesuffix(".SAFE")
        if id(job) not in winners:
            out.notes.append(f"{name}: an older processing of an acquisition the campaign holds again; left out")
            continue
        when = _utc(job.sensing_time)
        if (start and when.date() < start) or (end and when.date() > end) or (tiles and job.tile not in tiles):
            continue
        if aoi is not None:
            try:
                if not tile_footprint(job.tile).intersects(aoi):
                    continue
            except TileError:
                pass  # not a grid tile name: its files' bounds decide later
        folder = existing.get(name)
        res = None
        if folder is not None:
            try:
                res = DerivedResult.load(folder)
            except DeriveError:
                res = None
        if res is None or not _derived_usable(res, index):
            if index not in INDICES:
                out.notes.append(f"{name}: no derived {index!r} (a --formula index must be derived first); left out")
                continue
            if not derive_missing or not l2a.is_dir():
                why = "its L2A is gone" if not l2a.is_dir() else "deriving is off"
                out.notes.append(f"{name}: no derived {index} and {why}; left out")
                continue
            try:
                res = _derive(l2a, layout.derived / job.tile, index, resolution, res)
            except (DeriveError, ProductError, FormulaError) as e:
                out.notes.append(f"{name}: deriving {index} failed: {e}; left out")
                continue
        if "SCL" not in res.files or not (Path(res.out_dir) / res.files["SCL"]).is_file():
            out.notes.append(f"{name}: no SCL (scene classification), so its clouds cannot be masked; left out")
            continue
        need = bands or tuple(b for b in res.boa_add_offset)
        if not _offsets_recorded(res, need):
            out.notes.append(f"{name}: its derived {index} does not record the BOA_ADD_OFFSET it applied; "
                             "derive it again with --force; left out")
            continue
        out.observations.append(Observation(
            product=res.product, tile=job.tile, sensing_time=when, baseline=res.baseline,
            processor=job.processor, processor_version=job.processor_version,
            index_path=Path(res.out_dir) / res.files[index], scl_path=Path(res.out_dir) / res.files["SCL"],
            resolution=int(res.resolution)))
    return out


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


def require_some(c: Collected, campaign_dir: Path | str) -> None:
    """A campaign with nothing to stack is a one-line error, not an empty cube."""
    if c.observations:
        return
    if not c.done_tiles:
        raise CampaignError("no done product yet: run the campaign first", campaign_dir)
    raise CampaignError("no done product matches the cube's dates, tiles and area of interest"
                        + (f" ({len(c.notes)} left out: {c.notes[0]})" if c.notes else ""), campaign_dir)
