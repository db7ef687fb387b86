"""A campaign's index cubes: its done products handed to :mod:`s2l2a.outputs.cube`, and the cubes it has.

:func:`build_campaign_cube` is what ``s2l2a cube DIR`` and ``Campaign.cube()`` call. This module
walks the campaign (done jobs in the store, derived folders in its layout), derives an index where
a product lacks it while its L2A is on disk, and answers the cube's :class:`CollectRequest`; the
pixels are :mod:`s2l2a.outputs.cube`'s business. Every cube built from a campaign is remembered in
``<campaign>/derived/cubes.json``, so the campaign report can show each one's series.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from s2l2a.campaign.layout import CampaignLayout
from s2l2a.campaign.states import JobState
from s2l2a.campaign.store import CampaignStore
from s2l2a.errors import ProductError
from s2l2a.outputs.cube.sources import Collected, CollectRequest, Observation

CUBES_FILE = "cubes.json"  # in the campaign's derived folder: the cubes built from it


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


def collect(campaign_dir: Path | str, req: CollectRequest) -> Collected:
    """Every done product of the campaign within the dates, tiles and AOI (lon/lat), with its derived
    index and SCL; products that cannot take part are left out with one line each in ``notes``."""
    from s2l2a.acquire.tiles import TileError, tile_footprint
    from s2l2a.outputs.derive import DerivedResult, DeriveError, find_derived
    from s2l2a.outputs.indices import INDICES, FormulaError, builtin_index
    from s2l2a.safe.acquisition import pick_winners

    index, resolution, start, end, tiles, aoi = req.index, req.resolution, req.start, req.end, req.tiles, req.aoi
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
            if not req.derive_missing or not l2a.is_dir():
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


def build_campaign_cube(campaign_dir: Path | str, out: Path | str, spec: Any = None, progress: Any = None) -> Any:
    """Create the cube ``out`` from the campaign's done products, or append the dates done since
    (see :func:`s2l2a.outputs.cube.build_cube` and docs/cube.md); returns its CubeResult."""
    from s2l2a.outputs.cube import build_cube

    campaign_dir = Path(campaign_dir)
    result = build_cube(lambda req: collect(campaign_dir, req), out, spec, progress,
                        source=str(campaign_dir.resolve()))
    register_cube(campaign_dir, out)
    return result


def register_cube(campaign_dir: Path | str, cube: Path | str) -> None:
    """Remember ``cube`` in the campaign (``derived/cubes.json``)."""
    from s2l2a.fsutil import write_json_atomic

    path = CampaignLayout.of(campaign_dir).derived / CUBES_FILE
    cube = str(Path(cube).resolve())
    write_json_atomic(path, {"cubes": [c for c in campaign_cubes(campaign_dir) if c != cube] + [cube]}, mkdir=True)


def campaign_cubes(campaign_dir: Path | str) -> list[str]:
    """The cubes built from the campaign, oldest first (they may have been moved or deleted since)."""
    import json

    try:
        doc = json.loads((CampaignLayout.of(campaign_dir).derived / CUBES_FILE).read_text(encoding="utf-8"))
        return [c for c in doc.get("cubes", []) if isinstance(c, str)]
    except (OSError, ValueError, AttributeError):
        return []


def report_cubes(campaign_dir: Path | str) -> list[dict[str, Any]]:
    """For the campaign report: each of its cubes that still opens, with its series as inline SVG
    (see :func:`s2l2a.outputs.cube.series.report_entry`); never raises."""
    from s2l2a.outputs.cube.series import report_entry

    return [e for e in (report_entry(Path(c)) for c in campaign_cubes(campaign_dir)) if e is not None]
