"""``plan`` over every real product the project ships: the expected jobs, each rejection one line."""

from __future__ import annotations

from pathlib import Path

from s2l2a.campaign.planner import plan
from s2l2a.campaign.store import CampaignStore

from .conftest import REPO, clone_product


def test_plan_over_all_real_test_data(campaign: Path, tmp_path: Path) -> None:
    # the real products in the test data, plus two reprocessings of the sample (baseline 02.07 made
    # later, and a 02.06 re-generation) to exercise the duplicate rule on real metadata
    dup_root = tmp_path / "reprocessed"
    newer = clone_product(dup_root, baseline="02.07", generation="20190101T000000")
    regen = clone_product(dup_root, baseline="02.06", generation="20181001T000000")
    roots = [REPO / "tests" / "data", REPO / "data" / "sample", dup_root]
    report = plan(campaign, roots)

    lines = report.rejected
    assert all("\n" not in line for line in lines)
    l2a = [ln for ln in lines if ln.endswith("is an L2A product, expected L1C")]
    missing_band = [ln for ln in lines if "listed in" in ln and "is missing" in ln]
    missing_granule = [ln for ln in lines if "has no folder" in ln]
    # 11 real L2A metadata sets + 2 L2A products of the outputs tests are refused as inputs
    assert len(l2a) == 13
    # metadata-only copies of real L1C (no images) and the partial real B01-only tile
    assert len(missing_band) == 6 and len(missing_granule) == 2
    # the AWS sentinel-s2 tile folders among the real metadata are refused, not skipped silently
    aws = [ln for ln in lines if "AWS sentinel-s2 tile folder layout (tileInfo.json)" in ln]
    assert len(aws) == 8
    assert len(lines) == len(l2a) + len(missing_band) + len(missing_granule) + len(aws)
    with CampaignStore.open(campaign) as store:   # every rejection is kept, one row per input
        assert len(store.rejections()) == len(lines)

    with CampaignStore.open(campaign) as store:
        jobs = store.jobs()
        queued = store.jobs("queued")
        skipped = store.jobs("skipped")
    # the sample and its two reprocessings are one acquisition: the 02.07 wins
    assert report.added == 3 and len(jobs) == 3
    assert [j.path for j in queued] == [newer.resolve()]
    assert {j.path for j in skipped} == {regen.resolve(), (REPO / "data" / "sample").joinpath(
        "S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042.SAFE").resolve()}
    assert all(newer.name.removesuffix(".SAFE") in (j.skip_reason or "") for j in skipped)

    again = plan(campaign, roots)          # idempotent: nothing new, nothing changed
    assert again.added == 0 and again.already_planned == 3
    with CampaignStore.open(campaign) as store:
        assert [(j.id, j.state) for j in store.jobs()] == [(j.id, j.state) for j in jobs]
