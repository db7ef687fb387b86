"""``s2l2a status DIR``: where a campaign stands (counts, tiles, failures, throughput, ETA)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import click

from s2l2a.cli._common import campaign_argument, human_duration, user_errors

STATES = ("queued", "running", "done", "failed", "skipped")
MAX_ROWS = 30
STYLE = {"queued": "cyan", "running": "yellow", "done": "green", "failed": "red", "skipped": "dim"}


@click.command("status")
@campaign_argument
@click.option("--json", "as_json", is_flag=True, help="Print everything as one JSON document.")
@click.option("--log-lines", type=click.IntRange(min=0), default=5, show_default=True,
              help="Lines of each failed job's log to show.")
@click.option("--all", "show_all", is_flag=True, help="List every tile and every failure (default: the first "
              f"{MAX_ROWS} of each).")
@click.option("--verify", is_flag=True, help="First check every done output against the manifest written at "
              "publish (and open each raster); requeue those gone or incomplete.")
@user_errors
def cmd(campaign: Path, as_json: bool, log_lines: int, show_all: bool, verify: bool) -> None:
    """Show job counts per state and per tile, failures with their log tail, throughput and ETA."""
    from s2l2a.api import Campaign

    c = Campaign(campaign)
    if verify:
        _verify(c)
    summary = c.status(log_tail=log_lines)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    _print(summary, None if show_all else MAX_ROWS)
    for line in format_arrays(summary.get("cluster") or [], None if show_all else MAX_ROWS):
        click.echo(line)


def _verify(c: Any) -> None:
    """Full check of every done output; requeues under the run lock (a running run is refused)."""
    found = c.verify()
    for job_id, problem in found:
        click.echo(f"requeued job {job_id}: output {problem}", err=True)
    click.echo(f"verify: {len(found)} done output(s) gone or incomplete, requeued"
               + (f"; convert them again with 's2l2a run {c.path}'" if found else ""), err=True)


def format_arrays(views: list[dict[str, Any]], max_rows: int | None = None) -> list[str]:
    """One line per job array, then what it used: in sum, and per element (at most ``max_rows``)."""
    lines = []
    for v in views:
        if not v["open"] and v["scheduler_states"] is None:
            sched = "not asked (every job folded)"
        elif v["scheduler_states"] is None:
            sched = "scheduler did not answer"
        elif not v["scheduler_knows"]:
            sched = "forgotten by the scheduler (result files are the truth)"
        else:
            sched = ", ".join(f"{k} {n}" for k, n in sorted(v["scheduler_states"].items()))
        lines.append(f"{v['scheduler']} array {v['job_id']} ({v['array']}): {v['elements']} element(s); "
                     f"scheduler: {sched}; result files: {v['result_files']}/{v['jobs']}")
        lines += format_usage(v.get("usage"), max_rows)
    return lines


def format_usage(usage: dict[str, Any] | None, max_rows: int | None) -> list[str]:
    """``  used: CPU 14 s, peak 95 MB (p95 95 MB) over 6/6 element(s) (worker)`` and one line per
    element: its state, CPU time, peak memory and who measured them."""
    from s2l2a.campaign.usage import cpu, mb

    if not usage or not usage.get("elements"):
        return []
    elements = usage["elements"]
    lines = [f"  used: CPU {cpu(usage['cpu_s'])}, peak {mb(usage['peak_mb'])} (p95 {mb(usage['p95_peak_mb'])}) "
             f"over {usage['measured']}/{len(elements)} element(s)"
             + (f" ({', '.join(usage['sources'])})" if usage["sources"] else "")]
    for e in elements[:max_rows]:
        jobs = e["jobs"]
        which = f"job {jobs[0]}" if len(jobs) == 1 else f"{len(jobs)} jobs"
        now = f", in use now {mb(e['mem_mb'])}" if e.get("mem_mb") is not None else ""
        lines.append(f"  element {e['index']} ({which}): {e['state'] or '-'}, CPU {cpu(e['cpu_s'])}, "
                     f"peak {mb(e['peak_mb'])}{now} ({e['source']})")
    if max_rows is not None and len(elements) > max_rows:
        lines.append(f"  ... and {len(elements) - max_rows} more elements (--all, or --json)")
    return lines


def _print(s: dict[str, Any], max_rows: int | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=True)
    counts = s["counts"]
    console.print(f"[bold]{s['campaign']}[/]: {s['total']} jobs  " + "  ".join(
        f"[{STYLE[k]}]{k} {counts[k]}[/]" for k in STATES))
    if counts["skipped"]:
        sk = s["skipped"]
        console.print(f"skipped: {sk['duplicate']} duplicate (older reprocessing), {sk['output_exists']} "
                      f"already converted" + (f", {sk['other']} other" if sk["other"] else ""), style="dim")
        if sk.get("waiting"):
            console.print(f"waiting: {sk['waiting']} newer reprocessing(s) wait for their older one to finish "
                          f"running; 's2l2a plan DIR ROOT' after that run queues them")
    tp, eta = s["throughput_per_hour"], s["eta_s"]
    console.print(f"throughput: {f'{tp:.1f} done/hour' if tp else '-'}   "
                  f"ETA: {human_duration(eta) if eta is not None else '-'}"
                  + (f" ({s['eta']})" if s.get("eta") and eta else ""))
    if s["tiles"]:
        table = Table(title="per tile", title_justify="left")
        table.add_column("tile")
        for k in STATES:
            table.add_column(k, justify="right", style=STYLE[k])
        tiles = list(s["tiles"].items())
        for tile, c in tiles[:max_rows]:
            table.add_row(tile, *(str(c[k]) for k in STATES))
        console.print(table)
        if max_rows is not None and len(tiles) > max_rows:
            console.print(f"... and {len(tiles) - max_rows} more tiles (--all, or --json)", style="dim")
    if s["running"]:
        console.print("[bold yellow]running[/]")
        for r in s["running"]:
            console.print(f"  job {r['job_id']}  {r['product']}  attempt {r['attempt']}  since {r['start']}"
                          f"  on {r['host']} pid {r['pid']}", markup=False)
    if s["failures"]:
        classes = Counter(f["failure_class"] for f in s["failures"])
        console.print(f"[bold red]failed ({len(s['failures'])})[/]: "
                      + ", ".join(f"{c} {n}" for c, n in classes.most_common())
                      + "   retry: s2l2a retry DIR [--class CLASS]")
        for f in s["failures"][:max_rows]:
            console.print(f"  job {f['job_id']}  {f['product']}  [{f['failure_class']}] "
                          f"after {f['attempts']} attempt(s): {f['message']}", markup=False)
            console.print(f"    log: {f['log_path']}", markup=False, style="dim")
            for line in f["log_tail"]:
                console.print(f"    | {line}", markup=False, style="dim")
        if max_rows is not None and len(s["failures"]) > max_rows:
            console.print(f"... and {len(s['failures']) - max_rows} more failures (--all, or --json)", style="dim")
    rejected = s.get("rejected") or []
    if rejected:
        console.print(f"[bold]rejected inputs ({len(rejected)})[/]: not planned; fix or remove them, then plan again")
        for r in rejected[:max_rows]:
            console.print(f"  {r['path']}: {r['reason']}  ({r['last_seen']})", markup=False)
        if max_rows is not None and len(rejected) > max_rows:
            console.print(f"... and {len(rejected) - max_rows} more (--all, or --json)", style="dim")
