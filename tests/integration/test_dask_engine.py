"""``s2l2a run --engine dask``: the same jobs on an existing Dask cluster (a real ``distributed``
scheduler and workers on 127.0.0.1, started here and left running by the run)."""

from __future__ import annotations

import pytest

from s2l2a.campaign.store import CampaignStore
from s2l2a.safe import verify_l2a

from .conftest import make_cluster_campaign, s2l2a


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None)
    try:
        yield cluster
    finally:
        cluster.close()


def test_campaign_on_an_existing_dask_cluster(dask_cluster, tmp_path):
    camp = make_cluster_campaign(tmp_path, 6, processor="noop", noop={"sleep_s": 0.2})
    r = s2l2a("run", camp, "--engine", "dask", "--scheduler-address", dask_cluster.scheduler_address,
              "--processor", "noop")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "6 done, 0 failed" in r.stdout
    with CampaignStore.open(camp) as store:
        jobs = store.jobs()
        assert {str(j.state) for j in jobs} == {"done"}
        for j in jobs:
            verify_l2a(j.output_path)
        # the jobs ran in the cluster's worker processes, not in the submitting one
        assert {a.pid for a in store.attempts()}  # recorded
    # the cluster is somebody else's: still there after the run
    from distributed import Client

    with Client(dask_cluster.scheduler_address, timeout=10) as c:
        assert len(c.scheduler_info()["workers"]) == 2


def test_dask_engine_needs_an_address_that_answers(tmp_path):
    camp = make_cluster_campaign(tmp_path, 1, processor="noop")
    r = s2l2a("run", camp, "--engine", "dask", "--processor", "noop")
    assert r.returncode != 0 and "--scheduler-address" in r.stderr
    r = s2l2a("run", camp, "--engine", "dask", "--scheduler-address", "tcp://127.0.0.1:9", "--processor", "noop")
    assert r.returncode != 0 and "no Dask scheduler answers" in r.stderr, r.stderr
    with CampaignStore.open(camp) as store:
        assert store.counts()["queued"] == 1
