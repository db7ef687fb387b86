"""Planning real (cloned) products: idempotence, the duplicate rule, done outputs, broken inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

from s2l2a.campaign.planner import PlanReport, plan, plan_records
from s2l2a.campaign.progress import ProgressLog
from s2l2a.campaign.states import JobState
from s2l2a.campaign.store import AttemptOutcome, CampaignStore, ProductRecord

from .conftest import SAMPLE, clone_product, product_name


def jobs_by_name(campaign: Path) -> dict[str, object]:
    with CampaignStore.open(campaign) as s:
        return {j.name: j for j in s.jobs()}


def test_plan_is_idempotent(campaign: Path, tmp_path: Path) -> None:
    root = tmp_path / "in"
    p = clone_product(root / "a")
    r1 = plan(campaign, [root])
    assert (r1.found, r1.added, r1.already_planned, r1.rejected) == (1, 1, 0, [])
    # again, with the product also given directly and via a second root spelling: still one job
    r2 = plan(campaign, [root, p, root / "a" / ".." / "a"])
    assert (r2.added, r2.already_planned, r2.rejected) == (0, 1, [])
    (job,) = jobs_by_name(campaign).values()
    assert job.path == p.resolve() and job.tile == "56JMM" and job.baseline == "02.06"
    assert job.sensing_time == "2018-06-29T00:02:41Z" and job.generation_time == "2018-06-29T01:20:42Z"
    assert job.state is JobState.QUEUED and job.mission == "S2A" and job.cloud_cover == 0.0
    events = ProgressLog(campaign / "progress.log").read()
    assert [(e.product, e.state, e.tile) for e in events] == [(job.name, "queued", "56JMM")]


def test_same_product_in_two_folders_is_one_job(campaign: Path, tmp_path: Path) -> None:
    clone_product(tmp_path / "mirror1")
    clone_product(tmp_path / "mirror2")
    r = plan(campaign, [tmp_path / "mirror1", tmp_path / "mirror2"])
    assert (r.found, r.added, r.already_planned) == (2, 1, 1)
    assert len(jobs_by_name(campaign)) == 1


def test_duplicates_keep_highest_baseline_then_latest_generation(campaign: Path, tmp_path: Path) -> None:
    root = tmp_path / "in"
    clone_product(root, "02.06", "20180629T012042")
    clone_product(root, "05.00", "20210101T000000")
    clone_product(root, "05.00", "20220101T000000")   # winner: highest baseline, latest generation
    clone_product(root, "04.00", "20230101T000000")   # newest, but a lower baseline
    r = plan(campaign, [root])
    assert (r.added, r.skipped_duplicate, r.rejected) == (4, 3, [])
    jobs = jobs_by_name(campaign)
    winner = product_name("05.00", "20220101T000000")
    assert jobs[winner].state is JobState.QUEUED
    for name, job in jobs.items():
        if name != winner:
            assert job.state is JobState.SKIPPED
            assert job.skip_reason.startswith(f"duplicate of {winner}")
    # the progress log says the same as the database
    last = {e.product: e for e in ProgressLog(campaign / "progress.log").read()}
    assert {n: e.state for n, e in last.items()} == {n: j.state.value for n, j in jobs.items()}


def test_a_later_reprocessing_displaces_a_planned_job(campaign: Path, tmp_path: Path) -> None:
    clone_product(tmp_path / "old", "02.06")
    plan(campaign, [tmp_path / "old"])
    old = product_name("02.06")
    assert jobs_by_name(campaign)[old].state is JobState.QUEUED
    clone_product(tmp_path / "new", "05.10", "20240101T000000")
    r = plan(campaign, [tmp_path / "old", tmp_path / "new"])
    assert (r.added, r.already_planned, r.skipped_duplicate) == (1, 1, 1)
    jobs = jobs_by_name(campaign)
    assert jobs[old].state is JobState.SKIPPED
    assert jobs[product_name("05.10", "20240101T000000")].state is JobState.QUEUED
    # re-planning changes nothing more
    r = plan(campaign, [tmp_path / "old", tmp_path / "new"])
    assert (r.added, r.skipped_duplicate, r.requeued_winner) == (0, 0, 0)


def test_a_newer_reprocessing_supersedes_a_done_job_and_waits_for_a_running_one(campaign: Path) -> None:
    def record(i: int, baseline: str) -> ProductRecord:
        return ProductRecord(path=Path(f"/x/{i}"), name=f"P{i}", tile="56JMM", sensing_time="2020-01-01T00:00:00Z",
                             baseline=baseline, generation_time="2020-01-01T00:00:00Z")

    with CampaignStore.open(campaign) as store:
        plan_records(store, [record(1, "02.06")], None)
        store.start_attempt(1, "h", 1, None)
        store.finish_attempt(1, AttemptOutcome("done", output_path="/o"))
        r = plan_records(store, [record(2, "05.00")], None)   # README: the highest baseline is kept
        assert r.skipped_duplicate == 1
        assert [j.state for j in store.jobs()] == [JobState.SKIPPED, JobState.QUEUED]
        assert store.job(1).output_path == Path("/o")          # kept until the winner replaces it
        store.start_attempt(2, "h", 1, None)                  # the 05.00 runs; a 05.10 arrives
        r = plan_records(store, [record(3, "05.10")], None)
        assert (r.waiting, r.skipped_duplicate) == (1, 0) and "waits for job 2" in r.waiting_lines[0]
        assert store.job(3).state is JobState.SKIPPED and store.job(3).skip_reason.startswith("waits for job 2")
        store.finish_attempt(2, AttemptOutcome("done", output_path="/o"))
        r = plan_records(store, [], None)                     # the next plan queues it
        assert (r.requeued_winner, r.skipped_duplicate, r.waiting) == (1, 1, 0)
        assert [j.state for j in store.jobs()] == [JobState.SKIPPED, JobState.SKIPPED, JobState.QUEUED]


def test_verified_output_skips_the_job(campaign: Path, tmp_path: Path, standin_l2a: Path) -> None:
    out = campaign / "L2A" / "56JMM"
    out.mkdir(parents=True)
    incomplete = out / standin_l2a.name.replace("N9999", "N9998")
    shutil.copytree(standin_l2a, incomplete)      # an incomplete copy must not count
    next(incomplete.glob("GRANULE/*/IMG_DATA/R60m/*SCL*")).unlink()
    r = plan(campaign, [SAMPLE])
    assert (r.added, r.skipped_done) == (1, 0)
    shutil.copytree(standin_l2a, out / standin_l2a.name)
    r = plan(campaign, [SAMPLE])
    assert (r.added, r.already_planned, r.skipped_done) == (0, 1, 1)
    (job,) = jobs_by_name(campaign).values()
    assert job.state is JobState.SKIPPED
    assert job.skip_reason == f"output exists: {out / standin_l2a.name}"
    assert job.output_path == out / standin_l2a.name


def test_each_broken_input_is_one_line_and_the_plan_goes_on(campaign: Path, tmp_path: Path,
                                                             standin_l2a: Path) -> None:
    root = tmp_path / "in"
    odd = root / "with space" / "it's \"quoted\""
    good = clone_product(odd, "05.00", "20200101T000000")               # valid, in an awkward path
    not_product = root / "notes.SAFE"
    not_product.mkdir(parents=True)
    (not_product / "README.txt").write_text("not a product")
    shutil.copytree(standin_l2a, root / standin_l2a.name)                 # an L2A given
    truncated = clone_product(root / "trunc", "05.00", "20200102T000000")
    mtd = truncated / "MTD_MSIL1C.xml"
    mtd.write_bytes(mtd.read_bytes()[:3000])
    entity = clone_product(root / "xxe", "05.00", "20200103T000000")
    mtd = entity / "MTD_MSIL1C.xml"
    mtd.write_text('<!DOCTYPE x [<!ENTITY boom "boom">]>\n' + mtd.read_text().replace("S2MSI1C", "&boom;", 1))
    missing = clone_product(root / "miss", "05.00", "20200104T000000")
    next(missing.glob("GRANULE/*/IMG_DATA/*_B05.jp2")).unlink()
    broken_odd = clone_product(root / "odd 'name'\ttab", "05.00", "20200105T000000")
    (broken_odd / "MTD_MSIL1C.xml").write_text("<oops")

    r = plan(campaign, [root, tmp_path / "no such root"])
    assert r.added == 1 and r.found == 7
    assert len(r.rejected) == 7
    for line in r.rejected:
        assert "\n" not in line and line.count(": ") >= 1
    text = "\n".join(r.rejected)
    for path in (not_product, root / standin_l2a.name, truncated, entity, missing, tmp_path / "no such root"):
        assert sum(str(path) in ln for ln in r.rejected) == 1, (path, text)
    assert "L2A" in next(ln for ln in r.rejected if standin_l2a.name in ln)
    assert sum("odd 'name'" in ln for ln in r.rejected) == 1
    (job,) = jobs_by_name(campaign).values()
    assert job.path == good.resolve() and job.state is JobState.QUEUED


def test_report_counts_are_consistent() -> None:
    r = PlanReport(found=3, added=1, already_planned=1, rejected=["a: b"])
    d = r.to_dict()
    assert d["rejected"] == 1 and d["rejected_lines"] == ["a: b"]
    assert r.summary_line().startswith("1 added, 1 already planned")


def test_many_products_are_opened_in_worker_processes(campaign: Path, tmp_path: Path, monkeypatch) -> None:
    from s2l2a.campaign import planner

    monkeypatch.setattr(planner, "POOL_THRESHOLD", 2)
    root = tmp_path / "in"
    for i in range(3):
        clone_product(root, "05.00", f"2022010{i + 1}T000000")
    bad = clone_product(root, "05.00", "20220109T000000")
    (bad / "MTD_MSIL1C.xml").write_text("<truncated")
    r = plan(campaign, [root], workers=2)
    assert (r.found, r.added, r.skipped_duplicate, len(r.rejected)) == (4, 3, 2, 1)
    assert r.rejected[0].startswith(str(bad))
    assert [j.generation_time for j in jobs_by_name(campaign).values()] == [
        "2022-01-01T00:00:00Z", "2022-01-02T00:00:00Z", "2022-01-03T00:00:00Z"]


def test_a_reader_bug_is_one_line_not_a_crash(campaign: Path, tmp_path: Path, monkeypatch) -> None:
    from s2l2a import safe

    real = safe.open_l1c
    boom = clone_product(tmp_path / "in", "05.00", "20220101T000000")
    clone_product(tmp_path / "in", "05.10", "20230101T000000")

    def flaky(path, **kw):
        if Path(path).name == boom.name:
            raise RuntimeError("unexpected\nreader state")
        return real(path, **kw)

    monkeypatch.setattr(safe, "open_l1c", flaky)
    r = plan(campaign, [tmp_path / "in"])
    assert r.added == 1
    assert r.rejected == [f"{boom}: unreadable (RuntimeError: unexpected\\nreader state)"]


def test_an_interrupted_plan_keeps_its_committed_batches(campaign: Path, tmp_path: Path, monkeypatch) -> None:
    from s2l2a.campaign import planner

    monkeypatch.setattr(planner, "BATCH", 2)
    monkeypatch.setattr(planner, "COMMIT_S", 0.0)
    root = tmp_path / "in"
    for i in range(5):
        clone_product(root, "05.00", f"2022010{i + 1}T000000")
    seen: list[tuple[int, int]] = []

    def stop_at_3(done: int, total: int) -> None:
        seen.append((done, total))
        if done == 3:
            raise KeyboardInterrupt

    try:
        plan(campaign, [root], on_progress=stop_at_3)
    except KeyboardInterrupt:
        pass
    assert seen == [(1, 5), (2, 5), (3, 5)]
    assert len(jobs_by_name(campaign)) == 2          # the first batch was committed
    r = plan(campaign, [root])
    assert (r.found, r.already_planned, r.added) == (5, 2, 3)
    assert len(jobs_by_name(campaign)) == 5


def test_planning_reads_no_tile_metadata_or_angle_grids(campaign: Path, tmp_path: Path, monkeypatch) -> None:
    """The tile metadata (angle grids: most of a product's parse time) waits for the job."""
    from s2l2a.safe import product as product_mod

    def refuse(*a, **kw):
        raise AssertionError("planning parsed tile metadata")

    monkeypatch.setattr(product_mod, "read_tile_metadata", refuse)
    monkeypatch.setattr(product_mod, "read_angle_grids", refuse)
    root = tmp_path / "in"
    for day in range(3):
        clone_product(root, "05.00", f"2022010{day + 1}T000000")
    r = plan(campaign, [root])
    assert (r.found, r.added, r.skipped_duplicate, r.rejected) == (3, 3, 2, [])
    job = jobs_by_name(campaign)[product_name("05.00", "20220103T000000")]
    assert (job.tile, job.baseline, job.state) == ("56JMM", "05.00", JobState.QUEUED)


def test_plan_off_a_terminal_prints_progress_lines(campaign: Path, tmp_path: Path, monkeypatch) -> None:
    """A batch job's log gets a line every LINE_EVERY_S seconds while products are read."""
    from click.testing import CliRunner

    from s2l2a.cli import main
    from s2l2a.cli import plan as plan_cli

    root = tmp_path / "in"
    for day in range(3):
        clone_product(root, "05.00", f"2022010{day + 1}T000000")
    monkeypatch.setattr(plan_cli, "LINE_EVERY_S", 0.0)
    r = CliRunner().invoke(main, ["plan", str(campaign), str(root)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    lines = [x for x in r.stderr.splitlines() if x.startswith("plan: read")]
    assert [x.split(" products")[0] for x in lines] == [f"plan: read {i} of 3" for i in (1, 2, 3)]
    monkeypatch.setattr(plan_cli, "LINE_EVERY_S", 10.0)  # a short plan prints none
    r = CliRunner().invoke(main, ["plan", str(campaign), str(tmp_path / "in")], catch_exceptions=False)
    assert "plan: read" not in r.stderr


def test_small_commits_plan_like_one(tmp_path: Path, monkeypatch) -> None:
    """Intermediate commits apply the duplicate rule to their own acquisitions only; the states,
    reasons and counts equal those of one commit (reprocessings spread over several batches)."""
    from s2l2a_testplugins.samples import clone_sample

    from s2l2a.campaign import planner

    from .conftest import make_campaign

    root = tmp_path / "in"
    for day, baseline, gen in [(0, "02.06", "20180629T012042"), (1, "02.06", "20180630T012042"),
                               (0, "05.00", "20220101T000000"), (2, "02.06", "20180701T012042"),
                               (1, "04.00", "20210101T000000"), (0, "04.00", "20230101T000000")]:
        clone_sample(root / f"{day}{baseline}", day=day, baseline=baseline, generation=gen)

    def states(campaign: Path) -> dict[str, tuple]:
        return {n: (j.state, j.skip_reason) for n, j in jobs_by_name(campaign).items()}

    one = plan(make_campaign(tmp_path / "one"), [root])
    monkeypatch.setattr(planner, "BATCH", 2)
    monkeypatch.setattr(planner, "COMMIT_S", 0.0)
    many = plan(make_campaign(tmp_path / "many"), [root])
    assert many.to_dict() == one.to_dict() and (one.added, one.skipped_duplicate) == (6, 3)
    assert states(tmp_path / "many") == states(tmp_path / "one")
    with CampaignStore.open(tmp_path / "one") as s:
        assert [j.name for j in s.job_keys_of([("56JMM", "2018-06-29T00:02:41")])] == [
            j.name for j in s.job_keys() if j.sensing_time.startswith("2018-06-29")]
        assert len(s.job_keys_of([("56JMM", "2018-06-29T00:02:41"), ("56JMM", "2018-06-30T00:02:41")])) == 5
        assert s.job_keys_of([("56JMM", "2018-06-29T00:02:40"), ("31TDH", "2018-06-29T00:02:41")]) == []
