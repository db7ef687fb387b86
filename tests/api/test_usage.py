"""``s2l2a status`` shows what each array element used, and ``run --dry-run`` proposes memory_mb
from the measured peaks: through the toy scheduler whose stand-in commands run every element as a
real ``s2l2a worker`` (tests/api/test_cluster_run.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from .test_cluster_run import campaign, toy_commands  # noqa: F401 - the fixture is used by name

pytest.importorskip("s2l2a_testplugins.toy")


def test_status_shows_cpu_and_peak_per_element_and_dry_run_proposes_memory(tmp_path: Path,
                                                                           toy_commands: Path) -> None:  # noqa: F811
    c = campaign(tmp_path, 4)
    c.config("noop.alloc_mb", 150)                      # each job holds 150 MB while it runs
    summary = c.run(engine="toy", processor="noop", wait=True, poll_interval_s=0.2, limit=3, progress="quiet")
    assert summary.exit_code == 0 and summary.done == 3

    r = subprocess.run([sys.executable, "-m", "s2l2a", "status", str(c.path)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    used = re.search(r"^  used: CPU ([\d.]+) s, peak (\d+) MB \(p95 (\d+) MB\) over 3/3 element\(s\) \(worker\)$",
                     r.stdout, re.M)
    assert used, r.stdout
    rows = re.findall(r"^  element (\d) \(job (\d)\): done, CPU ([\d.]+) s, peak (\d+) MB \(worker\)$", r.stdout, re.M)
    assert [(e, j) for e, j, _, _ in rows] == [("1", "1"), ("2", "2"), ("3", "3")], r.stdout
    for _, _, cpu_s, peak in rows:
        assert float(cpu_s) > 0 and 150 <= int(peak) < 1024   # the worker process: Python, GDAL, 150 MB
    assert int(used[2]) == max(int(p) for *_, p in rows)

    st = c.status()["cluster"][0]["usage"]               # the same as data, per element and per job
    assert [e["source"] for e in st["elements"]] == ["worker"] * 3 and st["measured"] == 3
    assert all(150 <= j["peak_mb"] < 1024 and j["cpu_s"] > 0 for j in st["jobs"].values())

    notes: list[str] = []
    dry = c.run(engine="toy", processor="noop", dry_run=True, progress=lambda e: notes.append(e.message))
    (line,) = [n for n in dry.explanation if n.startswith("memory per product")]
    assert re.fullmatch(r"memory per product: proposed memory_mb 1024 from p95 peak \d+ MB over 3 products "
                        r"\(x1.2, at least 1024 MB\); configured 256; set \[cluster\] memory_mb \(or --memory-mb\) "
                        r"to use it", line), line
    assert f"# {line}" in notes
    ((_, script),) = dry.scripts
    assert "--memory=256" in script                      # proposed, not applied

    r = subprocess.run([sys.executable, "-m", "s2l2a", "check", str(c.path), "--engine", "toy", "--processor", "noop",
                        "--skip-check", "scheduler"], capture_output=True, text=True, timeout=120)
    (memory,) = [ln for ln in r.stdout.splitlines() if "memory:" in ln]
    assert re.search(r"256 MB per job .*; proposed memory_mb 1024 from p95 peak \d+ MB over 3 products", memory), memory
    r = subprocess.run([sys.executable, "-m", "s2l2a", "check", str(c.path), "--engine", "toy", "--processor", "noop",
                        "--memory-mb", "1024", "--skip-check", "scheduler"], capture_output=True, text=True, timeout=120)
    (memory,) = [ln for ln in r.stdout.splitlines() if "memory:" in ln]
    assert "proposed" not in memory, memory               # what the run asks for is what the peaks propose
