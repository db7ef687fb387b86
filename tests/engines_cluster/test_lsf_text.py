"""The LSF text parsers (engines/lsf_text.py) on answers recorded from a real OpenLava 4.0
(tests/data/engines/openlava/, see its SOURCE.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from s2l2a.campaign.cluster import load_records, reconcile, submit_arrays
from s2l2a.campaign.jobspec import JobSpec
from s2l2a.campaign.store import CampaignStore, ProductRecord
from s2l2a.engines import lsf as lsf_module
from s2l2a.engines.cluster import ClusterEngine
from s2l2a.engines.lsf import LSF
from s2l2a.engines.lsf_text import (
    HostSize,
    LongRecord,
    QueueLimits,
    explain_exit,
    max_memory_mb,
    parse_bjobs_l,
    parse_bjobs_w,
    parse_bqueues_l,
    parse_lshosts,
    unwrap,
)
from s2l2a.engines.scheduler import ClusterOptions, SchedulerError
from s2l2a.errors import CampaignError

RECORDED = Path(__file__).parent.parent / "data" / "engines" / "openlava"


def answer(name: str) -> tuple[str, int]:
    """A transcript's command output (stdout and stderr as recorded) and its exit status."""
    lines = (RECORDED / name).read_text().splitlines()
    assert lines[0].startswith("# ") and lines[1].startswith("$ ") and lines[-1].startswith("[exit ")
    return "\n".join(lines[2:-1]) + "\n", int(lines[-1][6:-1])


def test_bjobs_w_indices_from_job_names():
    assert parse_bjobs_w(answer("13_bjobs_w_array_running.txt")[0], "101") == {
        1: "RUN", 2: "RUN", 3: "PEND", 4: "PEND", 5: "PEND"}
    # a user name and a JOB_NAME wider than their columns shift everything: split on whitespace
    text = answer("s2l2a_21_bjobs_w_a_s2l2a_array_killed_while_pending.txt")[0]
    assert parse_bjobs_w(text, "304") == {1: "EXIT", 2: "EXIT"}
    assert parse_bjobs_w(text, "30") == {}
    assert parse_bjobs_w(answer("150c_bjobs_unknown_id.txt")[0], "99999") == {}


def test_bjobs_l_unwrapped():
    lines = unwrap(answer("32_bjobs_l_memkilled.txt")[0])
    assert any("Status <EXIT>" in ln for ln in lines)
    assert any("Exited with exit code 130. The CPU time used is 0.3 seconds." in ln for ln in lines)


def test_bjobs_l_array_blocks():
    recs = parse_bjobs_l(answer("14_bjobs_l_array.txt")[0])
    assert [(r.index, r.status, r.started) for r in recs] == [
        (2, "RUN", True), (1, "RUN", True), (3, "PEND", False), (4, "PEND", False), (5, "PEND", False)]
    r = recs[0]
    assert (r.job_id, r.memlimit_kb, r.runlimit_min, r.cwd, r.output_file) == (
        "101", 100000, 5.0, "/opt/openlava/jobs", "logs/%J_%I.out")
    assert r.output_path() == Path("/opt/openlava/jobs/logs/101_2.out")


def test_memory_kill_told_from_bkill_by_the_report():
    rec, = parse_bjobs_l(answer("117_bjobs_l_mem_array_elem2.txt")[0])
    assert (rec.index, rec.status, rec.exit_code, rec.memlimit_kb) == (2, "EXIT", 130, 200000)
    report = answer("33_mem_output.txt")[0]
    assert max_memory_mb(report) == 516
    state, reason = explain_exit(rec, report)
    assert state == "failed" and "memory usage limit" in reason and "516 MB" in reason
    # the same exit code under the limit, or with no report, is a bkill
    assert explain_exit(rec, report.replace("516 MB", "20 MB"))[0] == "cancelled"
    killed, = parse_bjobs_l(answer("59b_bjobs_l_killed_element.txt")[0])
    assert (killed.exit_code, killed.memlimit_kb) == (130, None)
    assert explain_exit(killed, "")[0] == "cancelled"
    pending, = parse_bjobs_l(answer("59c_bjobs_l_killed_pending_element.txt")[0])
    assert (pending.exit_code, pending.started) == (None, False)
    assert explain_exit(pending)[0] == "cancelled"


def test_run_limit_and_plain_failure():
    rec, = parse_bjobs_l(answer("42_bjobs_l_runlimit.txt")[0])
    assert (rec.exit_code, rec.runlimit_min, rec.output_file) == (140, 1.0, "logs/runlim_%J.out")
    assert explain_exit(rec, answer("43_runlimit_output.txt")[0]) == ("failed", "run limit of 1 min: exit code 140 (SIGUSR2)")
    three, = parse_bjobs_l(answer("62_bjobs_l_exit3_element.txt")[0])
    assert three.exit_code == 3 and explain_exit(three) == ("failed", None)
    # s2l2a's worker turns SIGINT into exit 1: the report's peak over MEMLIMIT still tells
    three.memlimit_kb = 307200
    assert explain_exit(three, "    Max Memory :      1263 MB\n")[0] == "failed"
    assert "Max Memory 1263 MB over MEMLIMIT 307200 KB" in explain_exit(three, "Max Memory : 1263 MB")[1]
    assert explain_exit(three, "Max Memory : 299 MB") == ("failed", None)


def test_report_values():
    assert max_memory_mb("    Max Memory :         2 GB\n") == 2048
    assert max_memory_mb("no report") is None
    assert LongRecord("1", 0, "EXIT").output_path() is None


# -- the LSF scheduler on a bjobs without -o/-json (a fake answering with the recorded text) --------


FAKE = """#!/bin/sh
echo "$*" >> "$FAKE_LOG"
case "$*" in
  *-o*) printf "bjobs: invalid option -- 'o'\\nUsage: bjobs [-h] [-V] [-w |-l] ...\\n" >&2; exit 255 ;;
  *-w*) [ -n "$FAKE_DOWN" ] && { echo "LSF is down. Please wait..." >&2; exit 255; }
        [ -n "$FAKE_GONE" ] && { echo "Job <415> is not found" >&2; exit 255; }
        sed '1,2d;$d' "$DATA/${DATA_W:-116_bjobs_mem_array.txt}" ;;
  *-l*) sed '1,2d;$d' "$DATA/117_bjobs_l_mem_array_elem2.txt" ;;
esac
"""


@pytest.fixture
def text_only_bjobs(tmp_path, monkeypatch):
    (tmp_path / "bjobs").write_text(FAKE)
    (tmp_path / "bjobs").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DATA", str(RECORDED))
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "calls"))
    monkeypatch.setenv("LSF_ENVDIR", str(tmp_path))  # the memo of the form is per LSF_ENVDIR
    monkeypatch.setattr(lsf_module, "_TEXT_ONLY", set())
    report, _ = answer("118_mem_array_outputs.txt")
    reports = {Path("/opt/openlava/jobs/logs/415_2.out"): report.split("== 415_2")[1].split("== 415_3")[0]}
    monkeypatch.setattr(lsf_module.lsf_text, "read_report", lambda path: reports.get(path, ""))
    return tmp_path / "calls"


def test_status_falls_back_to_the_text_forms_once(text_only_bjobs):
    lsf = LSF(ClusterOptions())
    st = lsf.status("415")
    assert {i: (s.state, s.raw_state) for i, s in st.items()} == {
        1: ("done", "DONE"), 2: ("failed", "EXIT"), 3: ("done", "DONE")}
    assert st[2].exit_code == "130" and "Max Memory 416 MB over MEMLIMIT 200000 KB" in st[2].reason
    assert LSF.classify_end(st[2])[0].value == "out_of_memory"
    calls = text_only_bjobs.read_text().splitlines()
    assert calls == ["-a -o jobid jobindex stat exit_code exit_reason -json 415", "-w -a 415", "-l 415[2]"]
    lsf.status("415")  # the refused form is not asked again in this process
    assert text_only_bjobs.read_text().splitlines()[3:] == ["-w -a 415", "-l 415[2]"]


def test_forgotten_and_down_on_the_text_forms(text_only_bjobs, monkeypatch):
    monkeypatch.setenv("FAKE_GONE", "1")
    assert LSF(ClusterOptions()).status("415") == {}
    monkeypatch.delenv("FAKE_GONE")
    monkeypatch.setattr(lsf_module, "_TEXT_ONLY", set())
    monkeypatch.setenv("FAKE_DOWN", "1")
    with pytest.raises(SchedulerError, match="LSF is down"):
        LSF(ClusterOptions()).status("415")
    assert lsf_module._TEXT_ONLY == set()  # nothing learnt from a scheduler that did not answer


class _SubmitsAs101(LSF):
    """The recorded array 101 (two elements running, three pending) stands for what bsub started."""

    def submit(self, script: Path, cwd: Path) -> str:
        return "101"


def test_the_form_bjobs_answers_is_kept_in_the_array_record(text_only_bjobs, tmp_path, monkeypatch):
    """Found out once per campaign, not once per process: the first reconciliation writes the
    text form into the array's record, and a later process (nothing memoised) reads it there
    instead of asking ``bjobs -o ... -json`` again."""
    monkeypatch.setenv("DATA_W", "13_bjobs_w_array_running.txt")
    camp = tmp_path / "camp"
    camp.mkdir()
    (camp / "s2l2a.toml").write_text("")
    store = CampaignStore.open(camp, create=True)
    store.add_products([ProductRecord(path=tmp_path / f"p{i}.SAFE", name=f"S2A_MSIL1C_2018070{i}T000241_N0206_"
                                      f"R030_T56JMM_2018070{i}T012042", tile="56JMM",
                                      sensing_time="2018-07-01T00:00:00Z") for i in range(1, 6)])
    specs = [JobSpec(job_id=j.id, product_path=str(j.path), tile=j.tile, processor="noop",
                     settings={"memory_mb": 300, "cores": 1}, attempt=1) for j in store.jobs()]
    engine = ClusterEngine(_SubmitsAs101(ClusterOptions(run_limit_s=3600)), python="/venv/bin/python")
    (rec,) = submit_arrays(camp, store, engine, specs, per_product_s=60)
    assert rec.job_id == "101" and rec.status_form == ""  # nobody has asked bjobs yet

    r = reconcile(camp, store, {"lsf": engine})
    assert r.in_flight == 5 and {i: s.raw_state for i, s in r.views[rec.name].items()} == {
        1: "RUN", 2: "RUN", 3: "PEND", 4: "PEND", 5: "PEND"}
    assert text_only_bjobs.read_text().splitlines() == [
        "-a -o jobid jobindex stat exit_code exit_reason -json 101", "-w -a 101"]
    assert load_records(camp)[0].status_form == "text"

    monkeypatch.setattr(lsf_module, "_TEXT_ONLY", set())  # a new process: nothing memoised
    r = reconcile(camp, store)  # default engines, as `s2l2a status` makes them
    assert r.in_flight == 5 and text_only_bjobs.read_text().splitlines()[2:] == ["-w -a 101"]
    # a record edited by hand is refused in one line, not passed on to the scheduler
    path = camp / "cluster" / f"{rec.name}.json"
    path.write_text(path.read_text().replace('"status_form": "text"', '"status_form": "-o x"'))
    with pytest.raises(CampaignError, match="bad status form"):
        load_records(camp)


@pytest.mark.parametrize("answer_name, ok", [
    ("58_bkill_whole_array.txt", True), ("88_bkill_finished_array.txt", True),
    ("s2l2a_20_bkill_finished_element.txt", True), ("52_bkill_element_running.txt", True),
    ("94_bsub_bad_queue.txt", False)])
def test_cancel_takes_what_bkill_means_by_255(tmp_path, monkeypatch, answer_name, ok):
    text, code = answer(answer_name)
    (tmp_path / "bkill").write_text(f"#!/bin/sh\ncat <<'EOF'\n{text}EOF\nexit {code}\n")
    (tmp_path / "bkill").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    if ok:
        LSF(ClusterOptions()).cancel("104", 3)
    else:
        with pytest.raises(SchedulerError):
            LSF(ClusterOptions()).cancel("104", 3)


def test_cancel_of_an_array_follows_up_on_each_element_left(text_only_bjobs, tmp_path, monkeypatch):
    """bkill of the array, then its own bkill for each element still pending or running."""
    (tmp_path / "bkill").write_text('#!/bin/sh\necho "bkill $*" >> "$FAKE_LOG"\n'
                                    'echo "Job <$1>: Job has already finished"; exit 255\n')
    (tmp_path / "bkill").chmod(0o755)
    monkeypatch.setenv("DATA_W", "13_bjobs_w_array_running.txt")  # 101: [1], [2] RUN; [3-5] PEND
    LSF(ClusterOptions()).cancel("101")
    kills = [c for c in text_only_bjobs.read_text().splitlines() if c.startswith("bkill")]
    assert kills == ["bkill 101", "bkill 101[1]", "bkill 101[2]", "bkill 101[3]", "bkill 101[4]", "bkill 101[5]"]


def test_rusage_unit_follows_lsf_unit_for_limits_only_when_set(tmp_path, monkeypatch):
    monkeypatch.setenv("LSF_ENVDIR", str(tmp_path))
    (tmp_path / "lsf.conf").write_text("LSF_MASTER_LIST=m1\n")
    unset = LSF(ClusterOptions(memory_mb=300)).context(walltime_s=60, memory_mb=300)
    assert (unset["memory_lsf"], unset["rusage_mem_lsf"]) == (307200, 300)
    (tmp_path / "lsf.conf").write_text("LSF_UNIT_FOR_LIMITS=GB\n")
    gb = LSF(ClusterOptions()).context(walltime_s=60, memory_mb=4096)
    assert (gb["memory_lsf"], gb["rusage_mem_lsf"]) == (4, 4)
    kb = LSF(ClusterOptions(lsf_unit="KB")).context(walltime_s=60, memory_mb=300)
    assert (kb["memory_lsf"], kb["rusage_mem_lsf"]) == (307200, 307200)


def test_queue_and_host_sizes():
    assert parse_bqueues_l(answer("s2l2a_06_bqueues_l_normal_exclusive.txt")[0]) == [
        QueueLimits("normal", None, None, True)]
    assert parse_bqueues_l(answer("s2l2a_07_bqueues_l_short_runlimit.txt")[0]) == [
        QueueLimits("short", 600, None, False)]
    # IBM's form without "of HOST", and a MEMLIMIT with default and maximum: the maximum counts
    text = "QUEUE: long\n\n RUNLIMIT\n 10080.0 min\n\n MEMLIMIT\n 2 G      64 G\n"
    assert parse_bqueues_l(text) == [QueueLimits("long", 604800, 64 * 1024**2, False)]
    assert parse_lshosts(answer("s2l2a_09_lshosts.txt")[0]) == [HostSize("vm", 2, 24105)]
    assert parse_lshosts("HOST_NAME type model cpuf ncpus maxmem maxswp server RESOURCES\n"
                         "n1 X86_64 Opteron 60.0 - - - Yes ()\n") == [HostSize("n1", None, None)]


def test_queue_limits_through_bqueues(tmp_path, monkeypatch):
    text, _ = answer("s2l2a_07_bqueues_l_short_runlimit.txt")
    (tmp_path / "bqueues").write_text(f"#!/bin/sh\ncat <<'EOF'\n{text}EOF\n")
    (tmp_path / "bqueues").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert LSF(ClusterOptions()).queue_limits("short") == QueueLimits("short", 600, None, False)
    assert LSF(ClusterOptions()).queue_limits("normal") is None


def test_submit_answers_recorded():
    lsf = LSF(ClusterOptions())
    assert lsf.parse_submit(answer("10_bsub_array_stdin.txt")[0]) == "101"
    assert lsf.parse_submit(answer("80_bsub_bmodW.txt")[0]) == "206"  # "... to default queue <normal>."
    with pytest.raises(SchedulerError, match="No such queue"):
        lsf.parse_submit(answer("94_bsub_bad_queue.txt")[0])
