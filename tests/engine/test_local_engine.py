"""The LocalEngine itself (one real LocalCluster shared by the module): a worker killed under a
job, the timeout backstop, and the Engine contract (start, run, close)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from s2l2a.campaign.jobspec import JobSpec
from s2l2a.engines.base import Engine, plan_capacity
from s2l2a.engines.local import LocalEngine

from .conftest import clone_l1c


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEngine]:
    log = tmp_path_factory.mktemp("engine") / "engine.log"
    with LocalEngine(plan_capacity(1, 256, workers=2), log_file=log, timeout_grace_s=0.5, watch_s=0.2) as eng:
        yield eng


@pytest.fixture(scope="module")
def products(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("l1c")
    return [clone_l1c(root, i) for i in range(4)]


def specs(products: list[Path], **options: object) -> list[JobSpec]:
    return [JobSpec(job_id=i + 1, product_path=str(p), tile="56JMM", processor="noop",
                    processor_options=dict(options), settings={"timeout_s": 60.0})
            for i, p in enumerate(products)]


def test_engine_satisfies_the_contract(engine: LocalEngine) -> None:
    assert isinstance(engine, Engine) and engine.capacity.slots == 2


def test_killed_worker_fails_one_job_and_the_batch_goes_on(engine: LocalEngine, products: list[Path],
                                                           tmp_path: Path) -> None:
    started: list[int | str] = []
    s = specs(products, die_matching=["20180630T"])
    outs = {o.job_id: o for o in engine.run(tmp_path, s, on_start=lambda sp: started.append(sp.job_id))}
    assert sorted(started) == [1, 2, 3, 4]
    assert {k: o.state for k, o in outs.items()} == {1: "done", 2: "failed", 3: "done", 4: "done"}, outs
    assert outs[2].failure_class == "killed" and "worker process died" in outs[2].message
    assert not (tmp_path / "results" / "2.json").exists()  # it died before writing one


def test_timeout_backstop_restarts_the_stuck_worker(engine: LocalEngine, products: list[Path],
                                                    tmp_path: Path) -> None:
    s = specs(products[:2], sleep_s=30)
    s[0].settings = {"timeout_s": 0.5}
    s[1].processor_options = {}
    t0 = time.monotonic()
    outs = {o.job_id: o for o in engine.run(tmp_path, s)}
    assert time.monotonic() - t0 < 25
    assert outs[1].failure_class == "timeout" and "worker process was restarted" in outs[1].message
    assert outs[2].state == "done"

