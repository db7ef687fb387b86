"""ClusterEngine without a scheduler: manifests, records, reconciliation and classification, with a
fake scheduler module that answers like the real ones after parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from s2l2a.campaign.cluster import ArrayRecord, cluster_job_ids, load_records, reconcile, submit_arrays
from s2l2a.campaign.jobspec import JobOutcome, JobSpec, read_manifest, write_result
from s2l2a.campaign.store import CampaignStore, ProductRecord
from s2l2a.engines.cluster import ClusterEngine, classify_element, cluster_options, parse_duration
from s2l2a.engines.lsf import LSF
from s2l2a.engines.scheduler import ClusterOptions, ElementState
from s2l2a.engines.site import SiteInfo
from s2l2a.engines.slurm import Slurm
from s2l2a.errors import ConfigError


class FakeSlurm(Slurm):
    """Slurm's rendering, a scripted queue instead of sbatch/squeue."""

    def __init__(self, options: ClusterOptions, site: SiteInfo | None = None) -> None:
        super().__init__(options)
        self.submitted: list[Path] = []
        self.view: dict[int, ElementState] = {}
        self.site = site or SiteInfo(notes=["a fake scheduler"])

    # what it says about its queue and nodes, instead of asking a Slurm this machine may run
    def read_queue(self, queue: str | None) -> SiteInfo:
        return self.site

    def read_nodes(self, queue: str | None) -> SiteInfo:
        return SiteInfo()

    def submit(self, script: Path, cwd: Path) -> str:
        self.submitted.append(script)
        return str(500 + len(self.submitted))

    def status(self, job_id: str) -> dict[int, ElementState]:
        return dict(self.view)


def _campaign(tmp_path: Path, n: int) -> tuple[Path, CampaignStore]:
    camp = tmp_path / "camp"
    camp.mkdir(parents=True)
    (camp / "s2l2a.toml").write_text("")
    store = CampaignStore.open(camp, create=True)
    store.add_products([ProductRecord(path=tmp_path / f"p{i}.SAFE", name=f"S2A_MSIL1C_2018070{i}T000241_N0206_R030_"
                                      f"T56JMM_2018070{i}T012042", tile="56JMM", sensing_time="2018-07-01T00:00:00Z")
                        for i in range(1, n + 1)])
    return camp, store


def _specs(store: CampaignStore, memory_mb: int = 4096) -> list[JobSpec]:
    return [JobSpec(job_id=j.id, product_path=str(j.path), tile=j.tile, processor="noop",
                    settings={"memory_mb": memory_mb, "cores": 1}, attempt=j.attempts + 1) for j in store.jobs()]


def _submit(camp: Path, store: CampaignStore, opts: ClusterOptions,
            site: SiteInfo | None = None) -> tuple[FakeSlurm, list[ArrayRecord]]:
    sched = FakeSlurm(opts, site)
    eng = ClusterEngine(sched, opts, python="/venv/bin/python")
    recs = submit_arrays(camp, store, eng, _specs(store, opts.memory_mb), per_product_s=60)
    return sched, recs


def test_submit_writes_manifest_script_record_and_marks_running(tmp_path):
    camp, store = _campaign(tmp_path, 3)
    sched, (rec,) = _submit(camp, store, ClusterOptions(run_limit_s=3600, memory_mb=2048))
    assert rec.job_id == "501" and rec.elements == [[1], [2], [3]]
    script = (camp / rec.script).read_text()
    assert "#SBATCH --array=1-3" in script and "#SBATCH --mem=2048M" in script
    assert f"exec /venv/bin/python -m s2l2a worker --campaign {camp.resolve()} --manifest {rec.name}" in script
    m = read_manifest(camp / rec.manifest)
    assert [[s.job_id for s in el] for el in m.elements] == [[1], [2], [3]]
    assert {str(j.state) for j in store.jobs()} == {"running"}
    assert store.last_attempt(2).host == f"slurm:{rec.name}[2]"
    assert load_records(camp)[0].job_id == "501" and cluster_job_ids(camp, store) == {1, 2, 3}


def test_whole_node_elements_hold_k_times_rounds_products(tmp_path):
    camp, store = _campaign(tmp_path, 7)
    opts = ClusterOptions(run_limit_s=3600, memory_mb=4096, placement="whole_node", node_cores=8,
                          node_memory_mb=16384, max_concurrent=2)
    sched, (rec,) = _submit(camp, store, opts)
    # k = min(8 cores / 1, 16384 MB / 4096 MB) = 4 at once; 3600 s * 0.85 - 60 s startup -> 50 rounds of
    # 60 s would fit one node, but %2 allows two nodes at once: the 7 products are spread over 2
    m = read_manifest(camp / rec.manifest)
    assert m.parallel == 4 and [len(e) for e in m.elements] == [4, 3]
    script = (camp / rec.script).read_text()
    assert "#SBATCH --cpus-per-task=4" in script and "#SBATCH --mem=16384M" in script
    assert "#SBATCH --exclusive" in script and "#SBATCH --array=1-2%2" in script
    # without a throttle, over the nodes the scheduler reports: one node takes them all (it has the time)
    camp2, store2 = _campaign(tmp_path / "b", 7)
    opts.max_concurrent = 0
    _, (rec2,) = _submit(camp2, store2, opts, SiteInfo(nodes=1, sources={"nodes": "sinfo"}))
    assert [len(e) for e in read_manifest(camp2 / rec2.manifest).elements] == [7]
    # ... and when it says nothing, over s2l2a's default of 10 nodes: two elements
    camp3, store3 = _campaign(tmp_path / "c", 7)
    _, (rec3,) = _submit(camp3, store3, opts)
    assert [len(e) for e in read_manifest(camp3 / rec3.manifest).elements] == [4, 3]


def test_reconcile_results_first_then_scheduler(tmp_path):
    camp, store = _campaign(tmp_path, 4)
    sched, (rec,) = _submit(camp, store, ClusterOptions(run_limit_s=3600))
    write_result(camp, JobOutcome(job_id=1, state="done", attempt=1, output_path="/x"))
    sched.view = {1: ElementState(1, "done", "COMPLETED", "0:0"),
                  2: ElementState(2, "failed", "OUT_OF_MEMORY", "0:125", "OutOfMemory"),
                  3: ElementState(3, "failed", "TIMEOUT", "0:15", "TimeLimit"),
                  4: ElementState(4, "running", "RUNNING", "0:0")}
    eng = ClusterEngine(sched)
    assert {i: st.state for i, st in eng.states(rec.job_id).items()} == {1: "done", 2: "failed", 3: "failed",
                                                                         4: "running"}
    r = reconcile(camp, store, {"slurm": eng})
    assert r.folded == 1 and r.in_flight == 1
    got = {j.id: (str(j.state), j.failure_class) for j in store.jobs()}
    assert got == {1: ("done", None), 2: ("failed", "out_of_memory"), 3: ("failed", "timeout"),
                   4: ("running", None)}
    # element 4 ends, Slurm forgets the whole array before anyone looks: lost, not running forever
    sched.view = {}
    r = reconcile(camp, store, {"slurm": eng})
    assert store.job(4).failure_class == "killed" and "no longer knows" in store.job(4).message
    assert load_records(camp)[0].closed and not cluster_job_ids(camp, store)
    before = (camp / "progress.log").read_text()
    assert reconcile(camp, store, {"slurm": eng}).folded == 0  # nothing twice
    assert (camp / "progress.log").read_text() == before


def test_scheduler_that_does_not_answer_fails_nothing(tmp_path):
    camp, store = _campaign(tmp_path, 2)
    sched, (rec,) = _submit(camp, store, ClusterOptions(run_limit_s=3600))

    def down(job_id: str) -> dict:
        from s2l2a.engines.scheduler import SchedulerError
        raise SchedulerError("squeue: error: slurm_receive_msg: Socket timed out")

    sched.status = down  # type: ignore[method-assign]
    r = reconcile(camp, store, {"slurm": ClusterEngine(sched)})
    assert r.unreachable and r.in_flight == 2 and store.counts()["running"] == 2


def test_submitter_killed_before_the_answer_requeues(tmp_path):
    camp, store = _campaign(tmp_path, 2)
    sched, (rec,) = _submit(camp, store, ClusterOptions(run_limit_s=3600))
    data = json.loads((camp / "cluster" / f"{rec.name}.json").read_text())
    data["job_id"] = None  # as left by a submitter killed between record and sbatch's answer
    (camp / "cluster" / f"{rec.name}.json").write_text(json.dumps(data))
    reconcile(camp, store, {"slurm": ClusterEngine(sched)})
    assert store.counts()["queued"] == 2
    assert store.last_attempt(1).failure_class == "interrupted"


@pytest.mark.parametrize(("state", "tail", "cls"), [
    (ElementState(2, "failed", "OUT_OF_MEMORY", "0:125", "OutOfMemory"), "", "out_of_memory"),
    (ElementState(2, "failed", "FAILED", "0:9", "JobLaunchFailure"), "", "out_of_memory"),
    (ElementState(2, "failed", "FAILED", "137:0", "NonZeroExitCode"),
     "slurmstepd: error: Exceeded job memory limit", "out_of_memory"),
    (ElementState(2, "failed", "TIMEOUT", "0:15", "TimeLimit"), "", "timeout"),
    (ElementState(2, "failed", "EXIT", "130", "TERM_MEMLIMIT: job killed after reaching LSF memory usage limit"),
     "", "out_of_memory"),
    (ElementState(2, "failed", "EXIT", "140", "TERM_RUNLIMIT: job killed after reaching LSF run time limit"),
     "", "timeout"),
    (ElementState(2, "failed", "EXIT", "130", "TERM_OWNER: job killed by owner"), "", "killed"),
    (ElementState(2, "cancelled", "CANCELLED", "0:15", None), "", "killed"),
    (ElementState(2, "failed", "NODE_FAIL", "0:0", None), "", "killed"),
    (ElementState(2, "done", "COMPLETED", "0:0", None), "", "other"),
    (None, "", "killed"),
    (ElementState(2, "failed", "F", "271", "Job exceeded resource walltime"), "", "timeout"),
    (ElementState(2, "failed", "F", "265", "Job exceeded resource mem"), "", "out_of_memory"),
])
def test_classify_elements_without_result(state, tail, cls):
    assert classify_element(state, "x", tail)[0].value == cls


def test_cluster_options_and_durations():
    o = cluster_options({"queue": "long", "run_limit": "4h", "max_concurrent": 50}, queue=None, account="p1")
    assert (o.queue, o.run_limit_s, o.max_concurrent, o.account) == ("long", 14400, 50, "p1")
    assert cluster_options({"run_limit_s": 60}, run_limit_s=7200).run_limit_s == 7200
    with pytest.raises(ConfigError, match="unknown key"):
        cluster_options({"queu": "x"})
    with pytest.raises(ConfigError, match="placement"):
        cluster_options({"placement": "spread"})
    assert [parse_duration(v) for v in (90, "90m", "1:30", "01:30:00", "2d")] == [90, 5400, 5400, 5400, 172800]
    with pytest.raises(ConfigError):
        parse_duration("soon")


def test_lsf_forgotten_job_is_empty_not_an_error():
    lsf = LSF(ClusterOptions())
    doc = {"COMMAND": "bjobs", "JOBS": 1, "RECORDS": [{"ERROR": "Job <5821> is not found"}]}
    assert lsf.parse_status(json.dumps(doc), "5821") == {}
    from s2l2a.engines.scheduler import SchedulerError
    with pytest.raises(SchedulerError):
        lsf.parse_status(json.dumps({"RECORDS": [{"ERROR": "LSF is down. Please wait ..."}]}), "5821")
    with pytest.raises(SchedulerError):
        lsf.parse_status("JOBID USER STAT\n5821 me DONE\n", "5821")  # -json without -o: a table


def test_node_failure_is_queued_again_while_attempts_are_left(tmp_path):
    """[resources] max_attempts: an element lost with its node (NODE_FAIL, PREEMPTED) puts its job back
    in the queue, its attempt recorded as killed; a cancel, or a job out of attempts, stays failed."""
    camp, store = _campaign(tmp_path, 3)
    sched, (rec,) = _submit(camp, store, ClusterOptions(run_limit_s=3600))
    sched.view = {1: ElementState(1, "failed", "NODE_FAIL", "0:0"), 2: ElementState(2, "failed", "PREEMPTED", "0:0"),
                  3: ElementState(3, "cancelled", "CANCELLED", "0:15")}
    r = reconcile(camp, store, {"slurm": ClusterEngine(sched)}, max_attempts=2)
    assert sorted(r.requeued) == [1, 2] and [j for j, _, _ in r.lost] == [3]
    assert {j.id: str(j.state) for j in store.jobs()} == {1: "queued", 2: "queued", 3: "failed"}
    assert store.last_attempt(1).failure_class == "killed" and "NODE_FAIL" in store.last_attempt(1).message
    # the second attempt of job 1 is lost the same way: no attempt left, it fails
    sched2 = FakeSlurm(ClusterOptions(run_limit_s=3600))
    queued = [s for s in _specs(store) if s.job_id in (1, 2)]
    (rec2,) = submit_arrays(camp, store, ClusterEngine(sched2, python="/venv/bin/python"), queued, per_product_s=60)
    assert rec2.elements == [[1], [2]] and store.job(1).attempts == 2
    sched2.view = {1: ElementState(1, "failed", "NODE_FAIL", "0:0"), 2: ElementState(2, "done", "COMPLETED", "0:0")}
    write_result(camp, JobOutcome(job_id=2, state="done", attempt=2, output_path="/x"))
    r = reconcile(camp, store, {"slurm": ClusterEngine(sched2)}, max_attempts=2)
    assert r.requeued == [] and r.lost[0][:2] == (1, "killed") and r.folded == 1
    assert (str(store.job(1).state), store.job(1).failure_class) == ("failed", "killed")
    # without max_attempts (older callers) nothing is queued again
    camp3, store3 = _campaign(tmp_path / "c", 1)
    sched3, _ = _submit(camp3, store3, ClusterOptions(run_limit_s=3600))
    sched3.view = {1: ElementState(1, "failed", "NODE_FAIL", "0:0")}
    assert reconcile(camp3, store3, {"slurm": ClusterEngine(sched3)}).requeued == []
    assert str(store3.job(1).state) == "failed"


def test_arrays_submitted_within_one_second_get_their_own_names(tmp_path, monkeypatch) -> None:
    """A node failure resubmitted by --wait in the same second as the first array must not
    overwrite that array's record, manifest and script (seen as a lost array in status)."""
    import s2l2a.engines.cluster as cluster_engine

    monkeypatch.setattr(cluster_engine, "stamp", lambda: "20261206T222222")
    first = cluster_engine._unused_stamp(tmp_path, "camp")
    assert first == "20261206T222222"
    (tmp_path / "cluster").mkdir()
    (tmp_path / "cluster" / f"s2l2a_camp_{first}_1.json").write_text("{}")
    second = cluster_engine._unused_stamp(tmp_path, "camp")
    (tmp_path / "cluster" / f"s2l2a_camp_{second}_1.sh").write_text("")
    third = cluster_engine._unused_stamp(tmp_path, "camp")
    assert len({first, second, third}) == 3
    assert cluster_engine._unused_stamp(tmp_path, "other") == first
