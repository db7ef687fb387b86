"""Scheduler modules: rendered scripts, submit answers, and status parsing of recorded answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from s2l2a.engines.lsf import LSF, detect_unit, memory_in_unit
from s2l2a.engines.pbs import PBS
from s2l2a.engines.scheduler import ClusterOptions, ElementState, SchedulerError
from s2l2a.engines.sizing import Placement, estimate_duration, plan_arrays
from s2l2a.engines.slurm import Slurm
from s2l2a.errors import ConfigError

DATA = Path(__file__).resolve().parents[1] / "data" / "engines"
WORKER = ["/opt/py/bin/python", "-m", "s2l2a", "worker", "--campaign", "/data/my campaign", "--manifest", "a1.json"]


def render(sched_cls, **opts):
    return sched_cls(ClusterOptions(**opts)).render(
        campaign_name="c", array_name="s2l2a_c_1", n_elements=12, products_per_element=1, parallel=1,
        walltime_s=5400, log_dir="logs/cluster", worker_argv=WORKER)


def test_slurm_script_directives():
    text = render(Slurm, queue="normal", account="p1", max_concurrent=10, memory_mb=4096)
    lines = text.splitlines()
    assert "#SBATCH --array=1-12%10" in lines
    assert "#SBATCH --mem=4096M" in lines
    assert "#SBATCH --time=01:30:00" in lines
    assert "#SBATCH --requeue" in lines
    assert "#SBATCH --partition=normal" in lines
    assert "#SBATCH --output=logs/cluster/s2l2a_c_1_%A_%a.out" in lines
    # the path with a space is quoted in the command line, the index comes from Slurm
    assert lines[-1].endswith("--campaign '/data/my campaign' --manifest a1.json --index \"$SLURM_ARRAY_TASK_ID\"")


def test_lsf_script_units_and_array():
    text = render(LSF, queue="long", account="lab", max_concurrent=50, memory_mb=4096, lsf_unit="KB",
                  exclusive=True, select="mem>64000")
    lines = text.splitlines()
    assert '#BSUB -J "s2l2a_c_1[1-12]%50"' in lines
    assert "#BSUB -M 4194304" in lines
    assert '#BSUB -R "rusage[mem=4194304] span[hosts=1] select[mem>64000]"' in lines
    assert "#BSUB -W 1:30" in lines and "#BSUB -x" in lines and "#BSUB -P lab" in lines
    assert "#BSUB -o logs/cluster/s2l2a_c_1_%J_%I.out" in lines
    assert lines[-1].endswith('--index "$LSB_JOBINDEX"')
    assert "#BSUB -M 4096" in render(LSF, memory_mb=4096, lsf_unit="MB").splitlines()
    assert "#BSUB -M 4" in render(LSF, memory_mb=4096, lsf_unit="GB").splitlines()


def test_lsf_unit_detection(tmp_path, monkeypatch):
    conf = tmp_path / "lsf.conf"
    conf.write_text("LSF_MASTER_LIST=\"m1 m2\"\nLSF_UNIT_FOR_LIMITS=MB\n")
    assert detect_unit(conf)[0] == "MB"
    conf.write_text("LSF_MASTER_LIST=m1\n")
    assert detect_unit(conf)[0] == "KB"
    monkeypatch.delenv("LSF_ENVDIR", raising=False)
    assert memory_in_unit(1, "GB") == 1 and memory_in_unit(1500, "GB") == 2


def test_pbs_pro_and_torque_scripts():
    pro = render(PBS, memory_mb=2048).splitlines()
    assert "#PBS -J 1-12" in pro and "#PBS -l select=1:ncpus=1:mem=2048mb" in pro
    torque = render(PBS, memory_mb=2048, pbs_flavour="torque", max_concurrent=4).splitlines()
    assert "#PBS -t 1-12%4" in torque and "#PBS -l nodes=1:ppn=1,mem=2048mb,walltime=01:30:00" in torque


def test_render_refuses_absolute_or_spaced_log_dir():
    s = Slurm(ClusterOptions())
    with pytest.raises(SchedulerError):
        s.render(campaign_name="c", array_name="a", n_elements=1, products_per_element=1, parallel=1,
                 walltime_s=60, log_dir="/abs/logs", worker_argv=["x"])
    with pytest.raises(SchedulerError):
        s.render(campaign_name="c", array_name="a b", n_elements=1, products_per_element=1, parallel=1,
                 walltime_s=60, log_dir="logs", worker_argv=["x"])


def test_submit_answers():
    assert Slurm(ClusterOptions()).parse_submit("1234\n") == "1234"
    assert Slurm(ClusterOptions()).parse_submit("1234;cluster2\n") == "1234"
    assert LSF(ClusterOptions()).parse_submit("Job <5821> is submitted to queue <normal>.\n") == "5821"
    assert PBS(ClusterOptions()).parse_submit("4711[].pbs01\n") == "4711[].pbs01"
    with pytest.raises(SchedulerError):
        LSF(ClusterOptions()).parse_submit("Request aborted by esub. Job not submitted.")


def test_slurm_status_from_recorded_squeue():
    states = Slurm(ClusterOptions()).parse_status((DATA / "squeue-22.05.json").read_text(), "1")
    assert {i: s.state for i, s in states.items()} == {1: "done", 2: "failed", 3: "failed"}
    assert states[2].exit_code == "0:9" and states[3].raw_state == "TIMEOUT"
    other = Slurm(ClusterOptions()).parse_status((DATA / "squeue-22.05.json").read_text(), "4")
    # the pending remainder "2-4%1" is expanded to its element indices
    assert sorted(other) == [1, 2, 3, 4] and {s.state for s in other.values()} == {"cancelled"}


def test_slurm_status_newer_json_shape():
    doc = {"jobs": [{"array_job_id": {"set": True, "number": 77}, "array_task_id": {"set": True, "number": 2},
                     "job_state": ["OUT_OF_MEMORY"], "state_reason": "OutOfMemory",
                     "exit_code": {"status": ["SIGNALED"], "return_code": {"number": 0},
                                   "signal": {"id": {"number": 9}}}}]}
    st = Slurm(ClusterOptions()).parse_status(json.dumps(doc), "77")
    assert st[2].state == "failed" and st[2].exit_code == "0:9" and st[2].raw_state == "OUT_OF_MEMORY"


def test_lsf_status_json():
    doc = {"COMMAND": "bjobs", "JOBS": 3, "RECORDS": [
        {"JOBID": "5821", "JOBINDEX": "1", "STAT": "DONE", "EXIT_CODE": "", "EXIT_REASON": ""},
        {"JOBID": "5821", "JOBINDEX": "2", "STAT": "EXIT", "EXIT_CODE": "137",
         "EXIT_REASON": "Job killed after reaching LSF memory usage limit"},
        {"JOBID": "5821", "JOBINDEX": "3", "STAT": "PEND", "EXIT_CODE": "", "EXIT_REASON": ""}]}
    st = LSF(ClusterOptions()).parse_status(json.dumps(doc), "5821")
    assert [st[i].state for i in (1, 2, 3)] == ["done", "failed", "pending"]
    assert "memory" in st[2].reason and st[2].exit_code == "137"
    assert LSF(ClusterOptions()).status_argv("5821") == ["bjobs", "-a", "-o", "jobid jobindex stat exit_code exit_reason", "-json", "5821"]


def test_pbs_status_text():
    text = ("Job Id: 4711[1].pbs01\n    job_state = F\n    Exit_status = 0\n\n"
            "Job Id: 4711[2].pbs01\n    job_state = F\n    Exit_status = 271\n    comment = Job killed\n\n"
            "Job Id: 4711[3].pbs01\n    job_state = Q\n")
    st = PBS(ClusterOptions()).parse_status(text, "4711[].pbs01")
    assert [st[i].state for i in (1, 2, 3)] == ["done", "failed", "pending"]
    assert PBS(ClusterOptions()).cancel_argv("4711[].pbs01", 3) == ["qdel", "4711[3].pbs01"]


def test_cancel_and_extend_argv():
    assert Slurm(ClusterOptions()).cancel_argv("12", 3) == ["scancel", "12_3"]
    assert Slurm(ClusterOptions()).extend_argv("12", 7200) == ["scontrol", "update", "JobId=12", "TimeLimit=120"]
    assert LSF(ClusterOptions()).cancel_argv("12", 3) == ["bkill", "12[3]"]
    assert LSF(ClusterOptions()).extend_argv("12", 7200) == ["bmod", "-W", "2:00", "12"]


def test_sizing_per_product_and_array_split():
    plan = plan_arrays(list(range(1, 2501)), per_product_s=1800, run_limit_s=4 * 3600, max_array_size=1000)
    assert [len(a) for a in plan.arrays] == [1000, 1000, 500]
    assert plan.products_per_element == 1 and plan.element_walltime_s <= 4 * 3600
    assert plan.element_walltime_s >= 1800


def test_sizing_whole_node_fits_walltime():
    # the lab's nodes: 16 images per exclusive node, 4 GB each, 24 h queue, ~30 min per image
    node = Placement("whole_node", node_cores=32, node_memory_mb=64 * 1024)
    plan = plan_arrays(list(range(1000)), per_product_s=1800, run_limit_s=24 * 3600, cores_per_job=2,
                       memory_mb_per_job=4096, placement=node)
    assert plan.parallel == 16
    rounds = plan.products_per_element // 16
    assert rounds * 1800 <= 24 * 3600 * 0.85
    assert plan.element_walltime_s <= 24 * 3600
    assert sum(len(e) for a in plan.arrays for e in a) == 1000


def test_sizing_refuses_product_longer_than_limit():
    with pytest.raises(ConfigError, match="run limit"):
        plan_arrays([1, 2], per_product_s=4000, run_limit_s=3600)


def test_duration_estimate_from_history():
    est, why = estimate_duration([100, 120, 110, 400], 1800)
    assert est >= 400 and "measured" in why
    est, why = estimate_duration([100], 1800)
    assert est == 1800 and "configured" in why


# -- each scheduler's failure words (classify_end): the cases of test_cluster_engine's
# test_classify_elements_without_result, asked of the scheduler whose words they are ----------------

@pytest.mark.parametrize(("sched", "state", "tail", "cls"), [
    (Slurm, ElementState(2, "failed", "OUT_OF_MEMORY", "0:125", "OutOfMemory"), "", "out_of_memory"),
    (Slurm, ElementState(2, "failed", "FAILED", "0:9", "JobLaunchFailure"), "", "out_of_memory"),
    (Slurm, ElementState(2, "failed", "FAILED", "137:0", "NonZeroExitCode"),
     "slurmstepd: error: Exceeded job memory limit", "out_of_memory"),
    (Slurm, ElementState(2, "failed", "TIMEOUT", "0:15", "TimeLimit"), "", "timeout"),
    (Slurm, ElementState(2, "cancelled", "CANCELLED", "0:15", None),
     "slurmstepd: error: *** JOB 7 CANCELLED AT 2024-01-01T00:00:00 DUE TO TIME LIMIT ***", None),
    (Slurm, ElementState(2, "failed", "FAILED", "1:0", None),
     "slurmstepd: error: *** JOB 7 CANCELLED AT 2024-01-01T00:00:00 DUE TO TIME LIMIT ***", "timeout"),
    (LSF, ElementState(2, "failed", "EXIT", "130", "TERM_MEMLIMIT: job killed after reaching LSF memory usage limit"),
     "", "out_of_memory"),
    (LSF, ElementState(2, "failed", "EXIT", "140", "TERM_RUNLIMIT: job killed after reaching LSF run time limit"),
     "", "timeout"),
    (LSF, ElementState(2, "failed", "EXIT", "130", "TERM_OWNER: job killed by owner"), "", "killed"),
    (PBS, ElementState(2, "failed", "F", "271", "Job exceeded resource walltime"), "", "timeout"),
    (PBS, ElementState(2, "failed", "F", "265", "Job exceeded resource mem"), "", "out_of_memory"),
    # the state alone says nothing in the scheduler's words: the caller's generic rules decide
    (Slurm, ElementState(2, "failed", "NODE_FAIL", "0:0", None), "", None),
    (LSF, ElementState(2, "done", "DONE", "0", None), "", None),
    (PBS, None, "", None),
])
def test_each_scheduler_classifies_its_own_kill_words(sched, state, tail, cls):
    found = sched.classify_end(state, tail)
    assert (found[0].value if found else None) == cls
    if found:
        assert "\n" not in found[1] and found[1]


def test_a_scheduler_does_not_read_another_schedulers_words():
    lsf_reason = ElementState(2, "failed", "EXIT", "140", "TERM_RUNLIMIT: job killed after reaching LSF run time limit")
    assert Slurm.classify_end(lsf_reason) is None
    assert PBS.classify_end(ElementState(2, "failed", "FAILED", "0:9", None)) is None  # SIGKILL is Slurm's sign only
