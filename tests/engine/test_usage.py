"""What a job and an element used, as the worker measures it (campaign/usage.py): the result file
carries the job's CPU seconds and peak memory, the element writes its own record, the store keeps
them (also in a store made before they existed), and the memory proposal reads them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from s2l2a.campaign.jobspec import JobOutcome, JobSpec, read_result, write_manifest
from s2l2a.campaign.layout import DB_FILE
from s2l2a.campaign.store import MIGRATIONS, SCHEMA_VERSION, CampaignStore
from s2l2a.campaign.usage import Meter, measured_peaks, read_elements
from s2l2a.engines.sizing import propose_memory_mb

from .conftest import clone_l1c, make_campaign, s2l2a


def test_worker_writes_cpu_and_peak_per_job_and_per_element(tmp_path: Path) -> None:
    camp = tmp_path / "camp"
    camp.mkdir()
    specs = [JobSpec(job_id=i + 1, product_path=str(clone_l1c(tmp_path / "l1c", i)), tile="56JMM",
                     processor="noop", processor_options={"alloc_mb": mb}) for i, mb in enumerate((40, 200))]
    write_manifest(camp, "arr", [[specs[0], specs[1]]])
    r = s2l2a("worker", "--campaign", camp, "--index", "1")
    assert r.returncode == 0, r.stderr
    small, big = (read_result(camp / "results" / f"{i}.json") for i in (1, 2))
    # the job's own high-water mark (reset at its start): the 200 MB job sees its 200 MB ...
    assert 200 <= big.peak_mb < 600 and big.cpu_s is not None and big.cpu_s > 0
    # ... the 40 MB job before it does not (the 200 MB are allocated after it ended)
    assert small.peak_mb is not None and small.peak_mb < big.peak_mb - 100
    raw = json.loads((camp / "results" / "2.json").read_text())
    assert raw["peak_mb"] == big.peak_mb and raw["cpu_s"] == big.cpu_s
    (element,) = read_elements(camp, "arr").values()
    assert element.index == 1 and element.state == "done" and element.source == "worker"
    assert element.peak_mb >= big.peak_mb and element.cpu_s >= big.cpu_s + small.cpu_s
    assert element.wall_s > 0
    assert (camp / "results" / "elements" / "arr.1.json").is_file()


def test_meter_sees_a_child_process(tmp_path: Path) -> None:
    import subprocess
    import sys

    meter = Meter.start()
    subprocess.run([sys.executable, "-c", "b = bytearray(150 * 2**20)"], check=True)
    cpu_s, peak = meter.read()
    assert peak >= 150 and cpu_s > 0


def _outcome(job_id: int, **kw: object) -> JobOutcome:
    return JobOutcome(job_id=job_id, state="done", attempt=1, **kw)


def test_store_keeps_usage_and_a_v2_store_gains_the_columns(tmp_path: Path) -> None:
    camp = make_campaign(tmp_path, 4)
    db = sqlite3.connect(camp / DB_FILE)                 # as s2l2a before the usage columns left it
    db.execute("DROP TABLE attempts")
    for stmt in MIGRATIONS[0][1].split(";"):
        if stmt.strip().startswith(("CREATE TABLE attempts", "CREATE INDEX attempts_end")):
            db.execute(stmt)
    db.execute("UPDATE schema_version SET version = 2")
    db.commit()
    db.close()
    with CampaignStore.open(camp) as store:
        assert sqlite3.connect(camp / DB_FILE).execute("SELECT version FROM schema_version").fetchone() == (
            SCHEMA_VERSION,)
        for job, peak in zip((1, 2, 3, 4), (900.0, float("nan"), 1000.0, None), strict=True):
            store.start_attempt(job, "here", 1, None)
            store.finish_attempt(job, _outcome(job, cpu_s=12.5, peak_mb=peak))
        got = {a.job_id: (a.cpu_s, a.peak_mb) for a in store.attempts()}
        assert got == {1: (12.5, 900.0), 2: (12.5, None), 3: (12.5, 1000.0), 4: (12.5, None)}
        assert sorted(measured_peaks(store.attempts())) == [900.0, 1000.0]


def test_memory_proposal_from_peaks() -> None:
    assert propose_memory_mb([2150.0] * 12, 4096) == (
        2816, "memory per product: proposed memory_mb 2816 from p95 peak 2.1 GB over 12 products (x1.2, at least "
              "1024 MB); configured 4096; set [cluster] memory_mb (or --memory-mb) to use it")
    # p95 of 20 peaks is the 19th: one outlier does not set the size
    mb, why = propose_memory_mb([1000.0] * 19 + [9000.0], 4096)
    assert mb == 1280 and "p95 peak 1000 MB over 20 products" in why
    assert propose_memory_mb([50.0, 60.0, 70.0], 512)[0] == 1024               # never below the floor
    assert propose_memory_mb([2000.0, float("nan"), -1.0, 0.0], 4096) == (
        None, "memory per product: 1 measured peak(s), fewer than 3; memory_mb 4096 as configured")
    mb, why = propose_memory_mb([2000.0] * 3, 2560)
    assert mb == 2560 and why.startswith("memory per product: memory_mb 2560 is what the measured peaks propose")
