"""The notebook example of docs/api.md, run on clones of the real sample with the built-in processor
and with the test processor (noop): states, files and the status data, plus the API's errors and
the automatic retries of ``[resources] max_attempts``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import s2l2a
from s2l2a.campaign.lock import RunLock
from s2l2a.cli import main
from s2l2a.safe import verify_l2a
from sample_clones import clone_sample


@pytest.fixture
def l1c(tmp_path: Path) -> Path:
    """Two acquisitions of the sample (the real product, re-dated)."""
    root = tmp_path / "L1C"
    for day in (0, 1):
        clone_sample(root, day=day)
    return root


def status_json(camp: Path) -> dict:
    r = CliRunner().invoke(main, ["status", str(camp), "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_notebook_example_with_the_builtin_processor(tmp_path: Path, l1c: Path) -> None:
    c = s2l2a.Campaign.create(tmp_path / "camp", processor="builtin", memory_mb=1024)
    assert (c.path / "s2l2a.toml").is_file() and c.settings.processor == "builtin"
    report = c.plan([l1c])
    assert (report.found, report.added, report.already_planned) == (2, 2, 0)
    assert c.plan([l1c]).already_planned == 2                     # nothing new: not an error

    events: list[s2l2a.RunEvent] = []
    summary = c.run(progress=events.append)
    assert (summary.total, summary.done, summary.failed, summary.exit_code) == (2, 2, 0, 0)
    assert summary.processor == "builtin" and summary.engine == "local" and not summary.interrupted
    assert summary.counts["done"] == 2 and summary.output_root == c.path / "L2A"
    kinds = [e.kind for e in events]
    assert kinds[0] != "outcome" and kinds.count("start") == 2 and kinds.count("outcome") == 2
    assert kinds.index("begin") < kinds.index("start") and kinds[-1] == "end"
    assert all(e.outcome.ok for e in events if e.kind == "outcome")
    assert [e.message for e in events if e.kind == "info"][-1].startswith("run finished in ")
    assert events[-1].done == 2 and events[-1].total == 2

    st = c.status()
    assert st["counts"] == {"queued": 0, "running": 0, "done": 2, "failed": 0, "skipped": 0}
    assert st["total"] == 2 and st["failures"] == [] and st["tiles"]["56JMM"]["done"] == 2
    cli = status_json(c.path)                                      # the command prints the same data
    assert {k: cli[k] for k in ("counts", "total", "tiles", "failures", "running", "rejected")} == \
        {k: st[k] for k in ("counts", "total", "tiles", "failures", "running", "rejected")}
    jobs = c.jobs("done")
    assert len(jobs) == 2
    for j in jobs:
        out = Path(j.output_path)
        assert out.parent == c.path / "L2A" / "56JMM" and out.name.startswith("S2A_MSIL2A_")
        assert out.name.split("_")[2] == j.name.split("_")[2]      # the same acquisition
        verify_l2a(out)

    again = c.run(progress="quiet")
    assert again.nothing_to_run and again.total == 0 and again.exit_code == 0

    derived = c.derive(["ndvi"], clear_classes=[4, 5])
    assert len(derived) == 2 and not any(d.error for d in derived)
    for d in derived:
        assert {p.name.rsplit("_", 2)[-2] for p in Path(d.derived_dir).glob("*.tif")} >= {"NDVI", "SCL", "CLEAR"}
    stac = c.stac()
    assert stac.collection == c.path / "stac" / "collection.json" and stac.skipped == []
    items = json.loads(stac.collection.read_text())["links"]
    assert sum(link["rel"] == "item" for link in items) == 2
    assert c.report().is_file()
    assert {r.name for r in c.check()} >= {"processor", "disk", "memory"}


def test_notebook_example_with_the_test_processor(tmp_path: Path, l1c: Path) -> None:
    c = s2l2a.Campaign.create(tmp_path / "camp", processor="builtin", memory_mb=256)
    c.plan([l1c])
    summary = c.run(processor="noop", workers=1, progress="quiet")
    assert (summary.done, summary.failed, summary.processor) == (2, 0, "noop")
    st = c.status(log_tail=0)
    assert st["counts"]["done"] == 2 and st["eta_s"] == 0.0
    assert all(Path(j.output_path).is_dir() for j in c.jobs("done"))
    assert len(list((c.path / "results" / "folded").glob("*.json"))) == 2


def test_transient_failures_are_retried_up_to_max_attempts(tmp_path: Path, l1c: Path) -> None:
    """A worker killed under a job (noop's die_matching) is tried again in the same run until
    [resources] max_attempts; a job's own failure (dem_error) is not."""
    clone_sample(l1c, day=2)
    c = s2l2a.Campaign.create(tmp_path / "camp", processor="builtin", memory_mb=256)
    assert c.config("max_attempts") == 3
    assert c.config("resources.max_attempts", 2) == 2
    c.config("noop.die_matching", ["20180629T"])
    c.config("noop.fail", "dem_error")
    c.config("noop.fail_matching", ["20180630T"])
    c.plan([l1c])
    notes: list[str] = []
    summary = c.run(processor="noop", workers=1, progress=lambda e: notes.append(e.message) if e.kind == "note" else None)
    assert (summary.done, summary.failed, summary.retried, summary.exit_code) == (1, 2, 1, 3)
    by_day = {j.name.split("_")[2][:8]: j for j in c.jobs()}
    killed, dem, ok = by_day["20180629"], by_day["20180630"], by_day["20180701"]
    assert (str(killed.state), killed.failure_class, killed.attempts) == ("failed", "killed", 2)
    assert (str(dem.state), dem.failure_class, dem.attempts) == ("failed", "dem_error", 1)
    assert str(ok.state) == "done"
    assert any(n.startswith(f"job {killed.id}: killed, tried again (attempt 1 of at most 2)") for n in notes)
    assert c.retry(failure_class="dem_error") == 1
    c.config("noop.fail", unset=True)
    assert c.config("noop.fail_matching", unset=True) is None
    assert c.run(processor="noop", progress="quiet").done == 1
    assert c.status()["counts"] == {"queued": 0, "running": 0, "done": 2, "failed": 1, "skipped": 0}


def test_mistakes_are_one_line_exceptions(tmp_path: Path, l1c: Path) -> None:
    with pytest.raises(s2l2a.ConfigError, match="not a campaign"):
        s2l2a.Campaign.open(tmp_path / "nope")
    c = s2l2a.Campaign.create(tmp_path / "camp", processor="builtin")
    with pytest.raises(s2l2a.CampaignError, match="a campaign exists here"):
        s2l2a.Campaign.create(c.path)
    with pytest.raises(s2l2a.CampaignError, match="nothing planned yet"):
        c.run(progress="quiet")
    with pytest.raises(s2l2a.CampaignError, match="does not exist"):
        c.plan([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(s2l2a.NothingPlanned, match="no L1C product found") as e:
        c.plan([tmp_path / "empty"])
    assert e.value.report.found == 0
    c.plan([l1c])
    with pytest.raises(s2l2a.ConfigError, match="unknown option 'wokers'"):
        c.run(wokers=2)
    with pytest.raises(s2l2a.ConfigError, match="--scheduler-address"):
        c.run(engine="dask")
    with pytest.raises(s2l2a.ConfigError, match="derive settings"):
        c.run(formulas=["x=__import__('os')"])
    with pytest.raises(s2l2a.ConfigError, match=r"\[resources\] memory_mb"):
        c.config("memory_mb", 1)
    assert c.config("memory_mb") == 4096                           # a refused value is not saved
    with RunLock(c.path), pytest.raises(s2l2a.CampaignLocked, match="another s2l2a run holds"):
        c.run(progress="quiet")
    with pytest.raises(s2l2a.ConfigError, match="not a failure class"):
        c.retry(failure_class="bored")
    assert c.status()["counts"]["queued"] == 2                     # nothing was started
