"""Quick looks at a cube: clear observations per pixel, and the index over the area of interest per date.

- ``<name>.clear_count.tif``: per pixel, how many dates saw it clear (a COG; its tag
  ``S2L2A_CUBE_DATES`` says how many dates it counts, so a stale file is recounted, never trusted);
- ``<name>.series.csv``: per date the median and interquartile range of the index over the clear
  pixels, the clear fraction and the provenance, plus ``median_smooth``;
- ``<name>.series.png``: the same as a plot (median line, IQR band, smoothed line).

``median_smooth`` is a Whittaker smoother (second differences, on a daily axis, each date weighted by
its clear fraction, lambda = :data:`WHITTAKER_LAMBDA`): it follows the seasonal curve and damps dates
seen through little clear sky. It is a quick look, not a phenology product.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from s2l2a.fsutil import atomic_path, write_text_atomic
from s2l2a.outputs.cube.store import FILL, CubeStore, DateRecord

WHITTAKER_LAMBDA = 100.0
COUNT_TAG = "S2L2A_CUBE_DATES"


def side_path(cube: Path | str, suffix: str) -> Path:
    """``season.zarr`` -> ``season.<suffix>`` beside it."""
    cube = Path(cube)
    stem = cube.name[:-5] if cube.name.endswith(".zarr") else cube.name
    return cube.with_name(f"{stem}.{suffix}")


def load_counts(store: CubeStore) -> np.ndarray:
    """The per-pixel clear count of the committed dates: from the side file when it counts exactly
    those dates, else recounted from the cube (one pass over the stored index)."""
    h, w = store.meta["shape"]
    path = side_path(store.path, "clear_count.tif")
    if store.length == 0:
        return np.zeros((h, w), dtype=np.uint16)
    try:
        import rasterio

        with rasterio.open(path) as ds:
            if ds.tags().get(COUNT_TAG) == str(store.length) and (ds.height, ds.width) == (h, w):
                return ds.read(1).astype(np.uint16)
    except Exception:  # noqa: BLE001 - missing or damaged: recount
        pass
    arr = store.group[store.index]
    counts = np.zeros((h, w), dtype=np.uint16)
    step = arr.chunks[1]
    for r0 in range(0, h, step):
        block = arr[: store.length, r0:r0 + step, :]
        counts[r0:r0 + block.shape[1]] = (block != FILL).sum(axis=0)
    return counts


def write_counts(store: CubeStore, counts: np.ndarray) -> Path:
    from affine import Affine

    from s2l2a.outputs.cog import write_cog

    path = side_path(store.path, "clear_count.tif")
    with atomic_path(path, ".tif") as tmp:
        write_cog(tmp, counts, transform=Affine(*store.meta["transform"]), crs=store.meta["crs"], nodata=None,
                  tags={COUNT_TAG: str(store.length), "S2L2A_OUTPUT": f"clear observations of {store.index}"},
                  description="clear observations", resampling="NEAREST")
    return path


def whittaker(days: np.ndarray, values: np.ndarray, weights: np.ndarray, lam: float = WHITTAKER_LAMBDA) -> np.ndarray:
    """Whittaker smoother of irregular dates (``days`` in days) on a daily axis; NaN values weigh 0."""
    from scipy import sparse
    from scipy.sparse.linalg import spsolve

    ok = np.isfinite(values) & np.isfinite(weights) & (weights > 0)
    out = np.full(values.shape, np.nan)
    if ok.sum() < 3:
        return out
    d0 = int(np.floor(days[ok].min()))
    idx = np.rint(days - d0).astype(int)
    n = int(idx[ok].max()) + 1
    w = np.zeros(n)
    y = np.zeros(n)
    for i in np.flatnonzero(ok):  # two dates on one day: weighted mean
        w[idx[i]] += weights[i]
        y[idx[i]] += weights[i] * values[i]
    y = np.divide(y, w, out=np.zeros(n), where=w > 0)
    diff = sparse.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(n - 2, n))
    z = spsolve((sparse.diags(w) + lam * (diff.T @ diff)).tocsc(), w * y)
    out[ok] = z[idx[ok]]
    return out


def series_rows(records: list[DateRecord]) -> list[dict[str, Any]]:
    """One row per date, sorted by time, with the smoothed median."""
    recs = sorted(records, key=lambda r: r.time)
    days = np.array([r.time.astype("datetime64[s]").astype("int64") / 86400.0 for r in recs])
    med = np.array([r.median for r in recs], dtype=float)
    wts = np.array([r.clear_fraction for r in recs], dtype=float)
    smooth = whittaker(days, med, wts) if len(recs) else np.zeros(0)
    rows = []
    for r, s in zip(recs, smooth, strict=True):
        rows.append({"date": str(r.time.astype("datetime64[D]")), "time": f"{r.time}Z",
                     "median": _fmt(r.median), "q25": _fmt(r.q25), "q75": _fmt(r.q75), "median_smooth": _fmt(s),
                     "clear_fraction": _fmt(r.clear_fraction), "clear_pixels": r.clear_pixels,
                     "data_pixels": r.data_pixels, "product": r.product, "tile": r.tile, "baseline": r.baseline,
                     "processor": r.processor, "processor_version": r.processor_version})
    return rows


def _fmt(v: float) -> str:
    return "" if not np.isfinite(v) else f"{v:.4f}"


def write_series_csv(store: CubeStore, rows: list[dict[str, Any]]) -> Path:
    path = side_path(store.path, "series.csv")
    buf = io.StringIO()
    fields = ["date", "time", "median", "q25", "q75", "median_smooth", "clear_fraction", "clear_pixels",
              "data_pixels", "product", "tile", "baseline", "processor", "processor_version"]
    wr = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    wr.writeheader()
    wr.writerows(rows)
    return write_text_atomic(path, buf.getvalue())


def _series_figure(index: str, rows: list[dict[str, Any]], title: str | None) -> Any:
    """Median with the interquartile band and the smoothed line (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    def col(name: str) -> np.ndarray:
        return np.array([float(r[name]) if r[name] != "" else np.nan for r in rows])

    t = np.array([np.datetime64(r["date"]) for r in rows], dtype="datetime64[D]").astype("O")
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=100)
    if rows:
        ax.fill_between(t, col("q25"), col("q75"), color="#7fbf7f", alpha=0.35, label="interquartile range")
        ax.plot(t, col("median"), "o-", color="#1b7837", ms=4, lw=1.2, label="median")
        sm = col("median_smooth")
        if np.isfinite(sm).any():
            ax.plot(t, sm, "--", color="#444444", lw=1, label="Whittaker smoothed")
        ax.legend(loc="best", fontsize=8)
    ax.set_ylabel(index)
    ax.set_title(title or f"{index} over the area of interest (clear pixels)", fontsize=10)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(mdates.AutoDateLocator()))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def write_series_png(store: CubeStore, rows: list[dict[str, Any]], title: str | None = None) -> Path:
    """The series plot as ``<name>.series.png`` beside the store."""
    import matplotlib.pyplot as plt

    path = side_path(store.path, "series.png")
    fig = _series_figure(store.index, rows, title)
    try:
        with atomic_path(path, ".png") as tmp:
            fig.savefig(tmp)
    finally:
        plt.close(fig)
    return path


# -- the campaign report's hook --------------------------------------------------------------------

def report_entry(cube: Path) -> dict[str, Any] | None:
    """A cube as the campaign report shows it: its series as inline SVG (``svg``, safe markup), its
    path, index, number of dates and CSV; None when it no longer opens (moved, deleted, damaged)."""
    from markupsafe import Markup

    try:
        store = CubeStore.open_readonly(cube)
        rows = series_rows(store.records())
    except Exception:  # noqa: BLE001 - a cube moved, deleted or damaged is left out of the report
        return None
    if not rows:
        return None
    return {"path": str(cube), "index": store.index, "dates": len(rows),
            "csv": str(side_path(cube, "series.csv")), "svg": Markup(_series_svg(store.index, rows))}


def _series_svg(index: str, rows: list[dict[str, Any]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = _series_figure(index, rows, None)
    try:
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
    finally:
        plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]
