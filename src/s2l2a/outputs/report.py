"""``s2l2a report``: one self-contained HTML page showing what a campaign did.

Why one file: it is mailed, attached to tickets and opened on laptops far from the cluster, so it
needs no server, no network and no other file: plots are inline SVG, quicklooks are data URIs
(true colour as JPEG, SCL as PNG), there is no JavaScript (a click enlarges a quicklook through a
CSS-only checkbox), and a Content-Security-Policy forbids fetching anything. Product names and
log excerpts are untrusted text (they come from file names and from processors' output), so the
jinja2 template escapes everything (autoescape on); only our own matplotlib SVG is inserted raw.
"""

from __future__ import annotations

import base64
import io
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from s2l2a import __version__
from s2l2a.safe.scl import CLASSES as SCL_CLASSES

STATE_COLOURS = {"done": "#2e7d32", "failed": "#c62828", "running": "#1565c0", "queued": "#9e9e9e",
                 "skipped": "#f9a825"}
MAX_PRODUCT_ROWS = 500


@dataclass
class ProductRow:
    job_id: int
    name: str
    tile: str
    state: str
    attempts: int
    processor: str | None
    processor_version: str | None
    duration_s: float | None
    message: str | None
    output: str | None
    derived: list[str] = field(default_factory=list)
    tci_img: str | None = None  # data URI
    scl_img: str | None = None
    problem: str | None = None  # a done product whose L2A is incomplete (one line)
    gipp: dict[str, str] = field(default_factory=dict)  # GIPP name -> SHA-256 of the run that made it


# -- plots ---------------------------------------------------------------------------------------

def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"  # text stays text (small, searchable)
    plt.rcParams["svg.hashsalt"] = "s2l2a"  # stable ids across runs
    return plt


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    _plt().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: inline SVG in HTML


def tile_map_svg(footprints: dict[str, tuple[Any, str]]) -> str | None:
    """Tile footprints (lon/lat shapely geometries) coloured by tile state."""
    if not footprints:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    seen: set[str] = set()
    for tile, (geom, state) in sorted(footprints.items()):
        polys = getattr(geom, "geoms", [geom])
        for poly in polys:
            xs, ys = poly.exterior.xy
            ax.fill(xs, ys, color=STATE_COLOURS.get(state, "#777"), alpha=0.55,
                    label=state if state not in seen else None, edgecolor="black", linewidth=0.6)
            seen.add(state)
        c = geom.centroid  # a marker too: a 110 km tile is a speck on a continental map
        ax.scatter([c.x], [c.y], s=36, color=STATE_COLOURS.get(state, "#777"), edgecolor="black", linewidth=0.5,
                   zorder=3)
        ax.annotate(tile, (c.x, c.y), xytext=(4, 4), textcoords="offset points", fontsize=7)
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(True, linewidth=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.set_title("tiles by state")
    return _svg(fig)


def runtime_hist_svg(durations_s: list[float]) -> str | None:
    """Histogram of run times on an axis from 0 (a run time is never negative), in s, min or h."""
    if not durations_s:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    longest = max(max(durations_s), 0.0)
    unit, div = ("s", 1.0) if longest < 120 else ("min", 60.0) if longest < 3 * 3600 else ("h", 3600.0)
    values = [max(d, 0.0) / div for d in durations_s]
    hi = max(values) * 1.05 if max(values) > 0 else 1.0
    ax.hist(values, bins=min(30, max(5, len(values) // 3)), range=(0.0, hi), color="#1565c0")
    ax.set_xlim(0.0, hi)
    ax.set_xlabel(f"run time of successful attempts ({unit})")
    ax.set_ylabel("products")
    ax.set_title(f"run time (n = {len(values)}, median {sorted(values)[len(values) // 2]:.1f} {unit})")
    return _svg(fig)


def throughput_svg(ends: list[datetime]) -> str | None:
    if not ends:
        return None
    plt = _plt()
    ends = sorted(ends)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.step(ends, range(1, len(ends) + 1), where="post", color="#2e7d32")
    ax.plot(ends, range(1, len(ends) + 1), "o", color="#2e7d32", markersize=3)  # a lone product shows too
    if len(ends) == 1:
        from datetime import timedelta

        ax.set_xlim(ends[0] - timedelta(minutes=30), ends[0] + timedelta(minutes=30))
        ax.set_ylim(0, 2)
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("products done (cumulative)")
    span_h = max((ends[-1] - ends[0]).total_seconds() / 3600.0, 1e-9)
    rate = f"{(len(ends) - 1) / span_h:.1f} per hour" if len(ends) > 1 else "one product"
    ax.set_title(f"throughput: {rate}")
    fig.autofmt_xdate()
    return _svg(fig)


# -- data ----------------------------------------------------------------------------------------

def _image_data_uri(image: Any, fmt: str) -> str | None:
    """A quicklook (H x W x 3 uint8 array, or the path of a PNG that derive wrote) as a data URI:
    "JPEG" for true colour (a tenth of the PNG's size: 500 rows stay a few tens of MB), "PNG" for
    SCL (flat class colours, small and exact)."""
    from PIL import Image

    try:
        img = Image.open(image) if isinstance(image, Path) else Image.fromarray(image)
        img = img.convert("RGB")
    except (OSError, ValueError, TypeError):
        return None
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.save(buf, format="JPEG", quality=85)
    else:
        img.save(buf, format="PNG", optimize=True)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _parse_time(s: str | None) -> datetime | None:
    if not s:
        return None
    try:
        t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _footprint(job: Any, derived: dict[str, Path]) -> Any:
    """Footprint of a job's product in lon/lat: derived manifest, else L2A, else L1C metadata."""
    from shapely.geometry import shape

    from s2l2a.errors import S2L2AError
    from s2l2a.outputs.derive import DerivedResult

    out = Path(job.output_path) if job.output_path else None
    name = out.name.removesuffix(".SAFE") if out else None
    if name and name in derived:
        try:
            fp = DerivedResult.load(derived[name]).footprint
            if fp:
                return shape(fp)
        except S2L2AError:
            pass
    from s2l2a.safe import open_product

    for p in (out, Path(job.path)):
        if p is not None and p.exists():
            try:
                prod = open_product(p, require_bands=False)
            except S2L2AError:
                continue
            if prod.footprint is not None:
                return prod.footprint
    return None


def _tile_state(states: Counter[str]) -> str:
    if states["failed"]:
        return "failed"
    if states["running"]:
        return "running"
    if states["queued"]:
        return "queued"
    if states["done"]:
        return "done"
    return "skipped"


def _quicklooks(row: ProductRow, out: Path | None, ddir: Path | None) -> None:
    from s2l2a.errors import S2L2AError

    if ddir is not None:
        from s2l2a.outputs.derive import DerivedResult

        try:
            res = DerivedResult.load(ddir)
        except S2L2AError:
            res = None
        if res is not None:
            if "tci" in res.quicklooks:
                row.tci_img = _image_data_uri(ddir / res.quicklooks["tci"], "JPEG")
            if "scl" in res.quicklooks:
                row.scl_img = _image_data_uri(ddir / res.quicklooks["scl"], "PNG")
    if row.tci_img is None and out is not None and out.exists():
        from s2l2a.outputs.quicklook import scl_colours, true_colour
        from s2l2a.safe import open_l2a

        try:
            images = open_l2a(out, require_bands=False).granules[0].images
            tci, scl = true_colour(images), scl_colours(images)
        except (S2L2AError, OSError, IndexError):
            return
        except Exception:  # noqa: BLE001 - a damaged raster must not stop the report
            return
        row.tci_img = _image_data_uri(tci, "JPEG") if tci is not None else None
        row.scl_img = _image_data_uri(scl, "PNG") if scl is not None else None


def pace(summary: dict[str, Any]) -> str:
    """One sentence on throughput and the end of the campaign that never promises what it cannot
    know (no end estimate before a product has finished, none at all when nothing is left)."""
    counts = summary.get("counts") or {}
    remaining = int(counts.get("queued", 0)) + int(counts.get("running", 0))
    tp = summary.get("throughput_per_hour")
    if tp is None:
        return ("No product has finished yet: no throughput and no estimated end."
                if remaining else "No product has finished; nothing is queued or running.")
    text = f"Throughput (recent): {tp:g} products per hour"
    if remaining and summary.get("eta"):
        return f"{text} · {remaining} queued or running, estimated end {summary['eta']}."
    return f"{text} · nothing is queued or running."


def collect(campaign_dir: Path | str, summary: dict[str, Any], jobs: Sequence[Any], attempts: Sequence[Any], *,
            derived_dir: Path, gipp_record: Path | None = None) -> dict[str, Any]:
    """Everything the report shows, as plain data, from what the campaign holds: its store's
    summary, jobs and attempts, its derived folder and its GIPP record (read by
    :func:`s2l2a.campaign.exports.report_data`)."""
    from s2l2a.outputs.derive import find_derived
    from s2l2a.outputs.manifest import check_output
    from s2l2a.outputs.provenance import read_provenance

    campaign_dir = Path(campaign_dir).resolve()
    derived = find_derived(derived_dir)
    durations: list[float] = []
    ends: list[datetime] = []
    last_duration: dict[int, float] = {}
    done_log: dict[int, str | None] = {}
    for a in attempts:
        t0, t1 = _parse_time(a.start), _parse_time(a.end)
        if a.state == "done":
            done_log[a.job_id] = a.log_path
        if a.state == "done" and t0 and t1:
            d = (t1 - t0).total_seconds()
            durations.append(d)
            ends.append(t1)
            last_duration[a.job_id] = d
    rows: list[ProductRow] = []
    tile_states: dict[str, Counter[str]] = {}
    tile_job: dict[str, Any] = {}
    versions: Counter[tuple[str, str]] = Counter()
    gipps: Counter[tuple[str, str]] = Counter()  # (GIPP name, SHA-256) -> products made with it
    for j in jobs:
        state = str(j.state.value if hasattr(j.state, "value") else j.state)
        tile_states.setdefault(j.tile, Counter())[state] += 1
        tile_job.setdefault(j.tile, j)
        if j.output_path and not tile_job[j.tile].output_path:
            tile_job[j.tile] = j
        if j.processor:
            versions[(j.processor, j.processor_version or "unknown")] += 1
        if len(rows) < MAX_PRODUCT_ROWS:
            out = Path(j.output_path) if j.output_path else None
            name = out.name.removesuffix(".SAFE") if out else None
            ddir = derived.get(name) if name else None
            row = ProductRow(job_id=j.id, name=j.name, tile=j.tile, state=state, attempts=j.attempts,
                             processor=j.processor, processor_version=j.processor_version,
                             duration_s=last_duration.get(j.id), message=j.message,
                             output=str(out) if out else None,
                             derived=sorted(_derived_files(ddir)) if ddir else [])
            if state == "done" and out is not None and (out.exists() or ddir is None):
                row.problem = check_output(out)  # flagged, and no quicklook read from it
            _quicklooks(row, out if row.problem is None else None, ddir)
            if state == "done":
                row.gipp = read_provenance(out, done_log.get(j.id), processor=j.processor,
                                           processor_version=j.processor_version, derived=ddir).gipp_sha256
                gipps.update(row.gipp.items())
            rows.append(row)
    footprints: dict[str, tuple[Any, str]] = {}
    for tile, j in tile_job.items():
        fp = _footprint(j, derived)
        if fp is not None:
            footprints[tile] = (fp, _tile_state(tile_states[tile]))
    gipp = None
    if gipp_record is not None and gipp_record.is_file():
        try:
            gipp = json.loads(gipp_record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            gipp = {"error": f"unreadable {gipp_record}"}
    return {
        "campaign": str(campaign_dir), "name": campaign_dir.name, "summary": summary, "rows": rows,
        "truncated": max(0, len(jobs) - MAX_PRODUCT_ROWS), "durations": durations, "ends": ends,
        "footprints": footprints, "versions": sorted(versions.items()), "gipp": gipp,
        "gipps_run": sorted(gipps.items()), "pace": pace(summary),
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"), "s2l2a_version": __version__,
    }


def _derived_files(ddir: Path) -> list[str]:
    """Output names listed in a derived folder's manifest ([] when unreadable)."""
    from s2l2a.errors import S2L2AError
    from s2l2a.outputs.derive import DerivedResult

    try:
        return list(DerivedResult.load(ddir).files)
    except S2L2AError:
        return []


def render(data: dict[str, Any]) -> str:
    """The HTML page for :func:`collect`'s data (jinja2, autoescape on)."""
    import jinja2
    from markupsafe import Markup

    env = jinja2.Environment(loader=jinja2.PackageLoader("s2l2a.outputs", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)

    def svg(text: str | None) -> Markup | None:
        return Markup(text) if text else None  # our own matplotlib output, not user text

    def minutes(s: float | None) -> str:
        return "" if s is None else f"{s / 60.0:.1f}"

    env.filters["minutes"] = minutes
    return env.get_template("report.html.j2").render(
        **data,
        map_svg=svg(tile_map_svg(data["footprints"])),
        hist_svg=svg(runtime_hist_svg(data["durations"])),
        throughput_svg=svg(throughput_svg(data["ends"])),
        state_colours=STATE_COLOURS,
        scl_classes=SCL_CLASSES,
    )

