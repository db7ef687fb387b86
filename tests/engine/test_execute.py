"""run_job, result files, folding, the run lock, manifests and `s2l2a worker` (no Dask cluster)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from s2l2a.campaign.execute import _classify, clean_leftovers, fold_results, run_job
from s2l2a.campaign.failures import FailureClass
from s2l2a.campaign.jobspec import (
    JobOutcome,
    JobSpec,
    read_manifest,
    read_result,
    write_manifest,
    write_result,
)
from s2l2a.campaign.lock import CampaignLocked, RunLock
from s2l2a.engines.base import plan_capacity
from s2l2a.errors import ProductError
from s2l2a.processors import get_processor, resolve_processor
from s2l2a.processors.base import ProcessingFailed
from s2l2a.safe import IncompleteProductError, verify_l2a

from .conftest import clone_l1c, make_campaign, s2l2a


def spec(job_id: int, product: Path, processor: str = "noop", attempt: int = 1, **options: object) -> JobSpec:
    return JobSpec(job_id=job_id, product_path=str(product), tile="56JMM", processor=processor,
                   processor_options=dict(options), attempt=attempt)


def test_run_job_publishes_verified_product_and_result(tmp_path: Path, sample_l1c: Path) -> None:
    camp = tmp_path / "camp"
    out = run_job(camp, spec(7, sample_l1c))
    assert out.state == "done" and out.failure_class is None and out.attempt == 1
    final = Path(out.output_path or "")
    assert final == camp / "L2A" / "56JMM" / "S2A_MSIL2A_20180629T000241_N0206_R030_T56JMM_20180629T012042.SAFE"
    assert verify_l2a(final).path == final
    assert list((camp / "staging").iterdir()) == []
    res = read_result(camp / "results" / "7.json")
    assert res.to_dict() == out.to_dict()
    log = (camp / "logs" / "7.log").read_text()
    assert "attempt 1 of job 7" in log and "job 7 done" in log and out.processor_version == "s2l2a-noop 0.1.0"


def test_rerun_replaces_output_without_leftovers(tmp_path: Path, sample_l1c: Path) -> None:
    camp = tmp_path / "camp"
    first = run_job(camp, spec(1, sample_l1c))
    marker = Path(first.output_path or "") / "marker"
    marker.write_text("old")
    second = run_job(camp, spec(1, sample_l1c, attempt=2))
    assert second.state == "done" and second.output_path == first.output_path
    assert not marker.exists()  # the new product replaced the old one
    name = Path(first.output_path or "").name
    assert sorted(p.name for p in (camp / "L2A" / "56JMM").iterdir()) == sorted([name, f".{name}.source"])
    assert "attempt 2 of job 1" in (camp / "logs" / "1.log").read_text()


@pytest.mark.parametrize(("options", "klass", "text"), [
    ({"fail": "timeout"}, "timeout", "failing"),
    ({"fail": "dem_error"}, "dem_error", "failing"),
    ({"write_product": False}, "empty_output", "wrote no such directory"),
])
def test_run_job_failure_classes(tmp_path: Path, sample_l1c: Path, options: dict, klass: str, text: str) -> None:
    camp = tmp_path / "camp"
    out = run_job(camp, spec(3, sample_l1c, **options))
    assert (out.state, out.failure_class) == ("failed", klass)
    assert text in out.message and "\n" not in out.message and sample_l1c.name.removesuffix(".SAFE") in out.message
    assert not (camp / "L2A").exists() or not any((camp / "L2A").rglob("*.SAFE"))
    assert read_result(camp / "results" / "3.json").failure_class == klass
    assert list((camp / "staging").iterdir()) == []


def test_bad_input_and_incomplete_output(tmp_path: Path) -> None:
    camp = tmp_path / "camp"
    broken = clone_l1c(tmp_path / "l1c", 0)
    next((broken / "GRANULE").glob("*/IMG_DATA/*_B04.jp2")).unlink()
    out = run_job(camp, spec(1, broken))
    assert (out.state, out.failure_class) == ("failed", "bad_input")
    assert "open L1C failed" in out.message and "B04" in out.message
    out = run_job(camp, spec(2, tmp_path / "does-not-exist.SAFE"))
    assert out.failure_class == "bad_input"


def test_classify_exceptions() -> None:
    assert _classify(MemoryError(), "builtin processing") == ("out_of_memory", None)
    assert _classify(ProcessingFailed("x", FailureClass.KILLED, exit_status=-9), "p") == ("killed", -9)
    assert _classify(IncompleteProductError("no B02", "/x"), "verify L2A")[0] == "empty_output"
    assert _classify(ProductError("broken", "/x"), "verify L2A")[0] == "empty_output"
    assert _classify(ProductError("broken", "/x"), "open L1C")[0] == "bad_input"
    assert _classify(RuntimeError("boom"), "publish")[0] == "other"


def test_sen2cor_missing_is_one_line(tmp_path: Path, sample_l1c: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("SEN2COR_BIN", raising=False)
    with pytest.raises(ProcessingFailed, match="no Sen2Cor L2A_Process was found.*s2l2a config DIR sen2cor.l2a_process PATH"):
        get_processor("sen2cor", {})
    assert resolve_processor("auto", {}) == "builtin"
    out = run_job(tmp_path / "camp", spec(1, sample_l1c, processor="sen2cor"))
    assert out.failure_class == "other" and "no Sen2Cor L2A_Process was found" in out.message


@pytest.mark.parametrize(("mode", "klass"), [
    ("exit", "other"), ("empty", "empty_output"), ("dem", "dem_error"), ("kill", "killed"), ("hang", "timeout"),
])
def test_standin_failures_through_run_job(tmp_path: Path, sample_l1c: Path, monkeypatch: pytest.MonkeyPatch,
                                          standin: Path, mode: str, klass: str) -> None:
    pytest.importorskip("s2l2a.processors.sen2cor")
    monkeypatch.setenv("STANDIN_FAIL", mode)
    s = spec(1, sample_l1c, processor="sen2cor", l2a_process=str(standin))
    s.settings = {"timeout_s": 1.5}
    out = run_job(tmp_path / "camp", s)
    assert (out.state, out.failure_class) == ("failed", klass), out.message
    assert not any((tmp_path / "camp" / "L2A").rglob("*.SAFE")) if (tmp_path / "camp" / "L2A").exists() else True


def test_standin_success_through_run_job(tmp_path: Path, sample_l1c: Path, monkeypatch: pytest.MonkeyPatch,
                                         standin: Path) -> None:
    pytest.importorskip("s2l2a.processors.sen2cor")
    monkeypatch.delenv("STANDIN_FAIL", raising=False)
    out = run_job(tmp_path / "camp", spec(1, sample_l1c, processor="sen2cor", l2a_process=str(standin)))
    assert out.state == "done", out.message
    verify_l2a(Path(out.output_path or ""))


def test_fold_results_is_idempotent(tmp_path: Path) -> None:
    from s2l2a.campaign.store import CampaignStore

    camp = make_campaign(tmp_path, 2)
    with CampaignStore.open(camp) as store:
        n = store.start_attempt(1, "h", 1, None)
        outcome = JobOutcome(job_id=1, state="done", attempt=n, output_path="/x", end="2026-01-01T00:00:00Z")
        write_result(camp, outcome)
        assert fold_results(camp, store) == 1
        assert not (camp / "results" / "1.json").exists() and (camp / "results" / "folded" / "1.json").exists()
        # the same result again (a crash between folding and moving the file): no second fold
        write_result(camp, outcome)
        assert fold_results(camp, store) == 0
        assert store.counts()["done"] == 1 and len(store.attempts(1)) == 1
        # an outcome of an attempt already closed as interrupted changes nothing either
        n2 = store.start_attempt(2, "h", 1, None)
        store.requeue_stale("test", [2])
        write_result(camp, JobOutcome(job_id=2, state="done", attempt=n2))
        (camp / "results" / "junk.json").write_text("{not json")
        assert fold_results(camp, store) == 0
        assert store.job(2).state == "queued"
        assert (camp / "results" / "bad" / "junk.json").exists()


def test_run_lock_excludes_second_holder(tmp_path: Path) -> None:
    with RunLock(tmp_path):
        with pytest.raises(CampaignLocked) as e:
            RunLock(tmp_path).acquire()
        msg = str(e.value)
        assert msg.startswith(f"another s2l2a run holds {tmp_path / 'run.lock'} (pid {os.getpid()}, host ")
        assert "\n" not in msg and "since 20" in msg
    RunLock(tmp_path).acquire().release()  # released with the context


def test_clean_leftovers(tmp_path: Path) -> None:
    from s2l2a.campaign.layout import OWNED_MARKER, claim_output

    (tmp_path / "staging" / "3" / "x.SAFE").mkdir(parents=True)
    tile = tmp_path / "L2A" / "56JMM"
    for name in (".partial-3-A.SAFE", ".replaced-3-B.SAFE", "C.SAFE"):
        (tile / name).mkdir(parents=True)
    assert clean_leftovers(tmp_path) == [tmp_path / "staging" / "3"]  # an unmarked output root is left alone
    assert claim_output(tmp_path / "L2A")  # holds only tile folders: s2l2a's from now on
    removed = clean_leftovers(tmp_path)
    assert len(removed) == 2 and sorted(p.name for p in tile.iterdir()) == ["C.SAFE"]
    assert (tmp_path / "L2A" / OWNED_MARKER).is_file()


def test_capacity_never_oversubscribes() -> None:
    assert plan_capacity(1, 4096, machine=(16, 32768)).slots == 8          # memory-bound
    assert plan_capacity(2, 1024, machine=(8, 65536)).slots == 4           # core-bound
    assert plan_capacity(1, 1024, workers=3, machine=(8, 65536)).slots == 3
    assert plan_capacity(1, 1024, n_jobs=2, machine=(8, 65536)).slots == 2
    big = plan_capacity(1, 99999, machine=(8, 8192))
    assert big.slots == 1 and big.limited_by == "memory"


def test_native_stderr_goes_to_the_job_log_while_the_job_runs(tmp_path: Path,
                                                               capfd: pytest.CaptureFixture[str]) -> None:
    """What native code prints on file descriptor 2 during a job lands in its log; a second job of
    the same process (Dask threads) does not steal the descriptor; afterwards stderr is stderr."""
    import os

    from s2l2a.campaign.execute import _stderr_into

    first, second = tmp_path / "logs" / "1.log", tmp_path / "logs" / "2.log"
    with _stderr_into(first):
        os.write(2, b"_tiffWriteProc: No space left on device.\n")
        with _stderr_into(second):
            os.write(2, b"from the second job\n")
    os.write(2, b"after the jobs\n")
    assert first.read_text() == "_tiffWriteProc: No space left on device.\nfrom the second job\n"
    assert not second.exists()
    assert capfd.readouterr().err == "after the jobs\n"


def test_spare_cores_go_to_the_jobs_only_when_jobs_are_fewer_than_slots() -> None:
    from s2l2a.engines.base import with_spare_cores

    one = with_spare_cores(plan_capacity(1, 1024, n_jobs=1, machine=(2, 24000)))
    assert (one.slots, one.job_cores, one.limited_by) == (1, 2, "jobs")   # one image: both cores
    three = with_spare_cores(plan_capacity(1, 1024, n_jobs=3, machine=(16, 65536)))
    assert (three.slots, three.job_cores) == (3, 5)
    assert "5 core(s)" in three.describe()
    full = with_spare_cores(plan_capacity(1, 1024, n_jobs=40, machine=(8, 65536)))
    assert (full.slots, full.job_cores) == (8, 1)                          # a full machine: as configured
    held = with_spare_cores(plan_capacity(1, 1024, workers=1, n_jobs=1, machine=(8, 65536)))
    assert held.job_cores == 1                                             # --workers: the user's choice
    memory = with_spare_cores(plan_capacity(1, 4096, n_jobs=3, machine=(16, 8192)))
    assert (memory.slots, memory.job_cores, memory.limited_by) == (2, 1, "memory")
    assert with_spare_cores(plan_capacity(4, 1024, n_jobs=1, machine=(2, 8192))).job_cores == 4  # never fewer


def test_jobspec_and_manifest_roundtrip(tmp_path: Path) -> None:
    a, b, c = (JobSpec(job_id=i, product_path=f"/p/{i}.SAFE", settings={"timeout_s": 5.0, "future": 1})
               for i in (1, 2, 3))
    assert a.job_settings().timeout_s == 5.0
    path = write_manifest(tmp_path, "arr1", [[a, b], [c]], parallel=2)
    m = read_manifest(path)
    assert m.parallel == 2 and [s.job_id for s in m.element(1)] == [1, 2] and m.element(2)[0] == c
    assert json.loads(path.read_text())["elements"][1][0]["product_path"] == "/p/3.SAFE"


def test_worker_command_runs_one_element_without_the_store(tmp_path: Path) -> None:
    camp = tmp_path / "camp"
    camp.mkdir()
    products = [clone_l1c(tmp_path / "l1c", i) for i in range(3)]
    specs = [spec(i + 1, p) for i, p in enumerate(products)]
    specs[2].processor_options = {"fail": "dem_error"}
    write_manifest(camp, "arr", [specs[0], specs[1], specs[2]])
    r = s2l2a("worker", "--campaign", camp, "--index", "2")
    assert r.returncode == 0, r.stderr
    assert read_result(camp / "results" / "2.json").state == "done"
    assert not (camp / "results" / "1.json").exists()
    r = s2l2a("worker", "--campaign", camp, "--index", "3", "--manifest", "arr")
    assert r.returncode == 1 and "dem_error" in r.stdout
    assert read_result(camp / "results" / "3.json").failure_class == "dem_error"
    r = s2l2a("worker", "--campaign", camp, "--index", "4")
    assert r.returncode == 1 and "outside 1..3" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (camp / "campaign.sqlite").exists()  # workers never open the store


def test_publish_never_replaces_another_l1c_output(tmp_path: Path) -> None:
    from s2l2a.campaign.execute import publish, source_marker

    name = "S2A_MSIL2A_20180629T000241_N9999_R030_T56JMM_20261125T150133.SAFE"
    tile = tmp_path / "L2A" / "56JMM"
    (tmp_path / "a" / name).mkdir(parents=True)
    first = publish(tmp_path / "a" / name, tile, "1", source="L1C-A")
    assert source_marker(tile, name).read_text().strip() == "L1C-A"
    # same acquisition, later generation time, made from another L1C: refused, first output intact
    other = name.replace("20261125T150133", "20261125T150200")
    (tmp_path / "b" / other).mkdir(parents=True)
    with pytest.raises(ProcessingFailed, match="holds the product of another L1C"):
        publish(tmp_path / "b" / other, tile, "2", source="L1C-B")
    assert first.is_dir() and not (tile / other).exists()
    # a re-run from the same L1C replaces it (and its marker moves to the new name)
    again = publish(tmp_path / "b" / other, tile, "1", source="L1C-A")
    assert sorted(p.name for p in tile.iterdir()) == sorted([other, f".{other}.source"])
    assert again == tile / other


def test_worker_runs_a_whole_node_element_in_parallel(tmp_path: Path) -> None:
    camp = tmp_path / "camp"
    camp.mkdir()
    specs = [spec(i + 1, clone_l1c(tmp_path / "l1c", i)) for i in range(3)]
    write_manifest(camp, "node", [specs], parallel=2)
    r = s2l2a("worker", "--campaign", camp, "--index", "1")
    assert r.returncode == 0, r.stderr
    assert [read_result(camp / "results" / f"{i}.json").state for i in (1, 2, 3)] == ["done"] * 3
    assert len(list((camp / "L2A" / "56JMM").glob("*.SAFE"))) == 3


def test_shared_scratch_gets_a_subfolder_per_campaign(tmp_path: Path) -> None:
    from s2l2a.campaign.execute import campaign_staging_root
    from s2l2a.campaign.settings import CampaignSettings

    a, b = tmp_path / "a", tmp_path / "b"
    shared = CampaignSettings(scratch_dir=str(tmp_path / "scratch"))
    ra, rb = campaign_staging_root(a, shared), campaign_staging_root(b, shared)
    assert ra.parent == rb.parent == tmp_path / "scratch" and ra != rb and ra.name.startswith("s2l2a-a-")
    assert campaign_staging_root(a, CampaignSettings()) == a.resolve() / "staging"
