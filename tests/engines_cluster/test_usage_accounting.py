"""What a scheduler's accounting says an element used (Scheduler.usage): LSF's text forms on
answers recorded from a real OpenLava 4.0 (tests/data/engines/openlava/, see its SOURCE.md),
LSF 10.1's ``bjobs -o ... -json`` and Slurm's ``sacct``/``sstat`` in the forms their manuals give."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from s2l2a.engines import lsf as lsf_module
from s2l2a.engines.lsf import LSF
from s2l2a.engines.lsf_text import cpu_seconds, max_memory_mb, parse_bjobs_l, report_cpu_s, size_mb
from s2l2a.engines.scheduler import ClusterOptions
from s2l2a.engines.site import slurm_seconds
from s2l2a.engines.slurm import Slurm, parse_sacct, slurm_mb

RECORDED = Path(__file__).parent.parent / "data" / "engines" / "openlava"


def answer(name: str) -> str:
    """A transcript's command output (stdout and stderr as recorded)."""
    lines = (RECORDED / name).read_text().splitlines()
    assert lines[0].startswith("# ") and lines[1].startswith("$ ") and lines[-1].startswith("[exit ")
    return "\n".join(lines[2:-1]) + "\n"


def test_bjobs_l_cpu_time_and_memory_in_use():
    running = {r.index: r for r in parse_bjobs_l(answer("14_bjobs_l_array.txt"))}
    assert {i: (r.status, r.cpu_s, r.mem_mb, r.max_mem_mb) for i, r in running.items()} == {
        1: ("RUN", None, 4.0, None), 2: ("RUN", None, 4.0, None),
        **{i: ("PEND", None, None, None) for i in (3, 4, 5)}}
    (done,) = parse_bjobs_l(answer("112_bjobs_l_mem_noenforce.txt"))
    assert (done.status, done.cpu_s, done.mem_mb) == ("DONE", 0.3, None)
    (killed,) = parse_bjobs_l(answer("117_bjobs_l_mem_array_elem2.txt"))  # "0.2 second" + wrapped "s."
    assert (killed.index, killed.status, killed.cpu_s) == (2, "EXIT", 0.2)
    (el,) = parse_bjobs_l(answer("s2l2a_17_bjobs_l_done_element.txt"))
    assert (el.job_id, el.index, el.cpu_s) == ("306", 2, 0.2)
    (el,) = parse_bjobs_l(answer("s2l2a_14_bjobs_l_running_element_usage.txt"))
    assert (el.index, el.status, el.mem_mb, el.cpu_s) == (1, "RUN", 4.0, None)
    # IBM LSF's MEMORY USAGE block (OpenLava's -UF writes "MAX MEM: N/A MBytes"): the peak, not AVG/MEM
    (ibm,) = parse_bjobs_l("Job Id <5>, Job Name <a>, User <u>, Project <default>, Status <DONE>, Queue <q>\n"
                           " MEMORY USAGE:\n MAX MEM: 163 Mbytes;  AVG MEM: 120 Mbytes\n")
    assert (ibm.max_mem_mb, ibm.mem_mb) == (163.0, None)
    (na,) = parse_bjobs_l("Job Id <5>, Status <RUN>\n MAX MEM: N/A MBytes;  AVG MEM: N/A MBytes\n")
    assert (na.max_mem_mb, na.mem_mb) == (None, None)


def test_the_output_files_job_report():
    report = answer("s2l2a_16_output_resource_summary.txt")
    assert (report_cpu_s(report), max_memory_mb(report)) == (0.16, 163.0)
    assert LSF.usage_from_output(answer("33_mem_output.txt")) == (0.27, 516.0)
    assert LSF.usage_from_output("no report here") == (None, None)


def test_lsf_value_forms():
    assert [size_mb(v) for v in ("163 Mbytes", "2 Gbytes", "4860", "512 KB", "1.5G", "-", "N/A", None, "nan")] == [
        163.0, 2048.0, 4860 / 1024, 0.5, 1536.0, None, None, None, None]
    assert [cpu_seconds(v) for v in ("0.3 second(s)", "12 seconds", "000:00:02.50", "01:02:03", "-", "")] == [
        0.3, 12.0, 2.5, 3723.0, None, None]


FAKE_BJOBS = """#!/bin/sh
echo "$*" >> "$FAKE_LOG"
case "$*" in
  *-o*) printf "bjobs: invalid option -- 'o'\\nUsage: bjobs [-h] [-V] [-w |-l] ...\\n" >&2; exit 255 ;;
  *-l*) sed '1,2d;$d' "$DATA/117_bjobs_l_mem_array_elem2.txt"; sed '1,2d;$d' "$DATA/14_bjobs_l_array.txt" ;;
esac
"""


def test_lsf_usage_on_the_text_forms(tmp_path, monkeypatch):
    """OpenLava refuses -o: CPU time from bjobs -l, the memory in use of a running element (the
    peak of one that ended is in its output file, read by the status view only where needed)."""
    (tmp_path / "bjobs").write_text(FAKE_BJOBS)
    (tmp_path / "bjobs").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DATA", str(RECORDED))
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "calls"))
    monkeypatch.setenv("LSF_ENVDIR", str(tmp_path))
    monkeypatch.setattr(lsf_module, "_TEXT_ONLY", set())
    used = LSF(ClusterOptions()).usage("415")
    assert {i: (u.state, u.cpu_s, u.peak_mb, u.mem_mb, u.source) for i, u in used.items()} == {
        2: ("failed", 0.2, None, None, "bjobs -l")}
    used = LSF(ClusterOptions()).usage("101")
    assert {i: (u.state, u.cpu_s, u.peak_mb, u.mem_mb) for i, u in used.items()} == {
        1: ("running", None, None, 4.0), 2: ("running", None, None, 4.0),
        **{i: ("pending", None, None, None) for i in (3, 4, 5)}}
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == ["-a -o jobid jobindex stat cpu_used run_time max_mem avg_mem -json 415", "-l 415", "-l 101"]


def test_lsf_usage_from_bjobs_o_json():
    doc = {"COMMAND": "bjobs", "JOBS": 3, "RECORDS": [
        {"JOBID": "1234", "JOBINDEX": "1", "STAT": "DONE", "CPU_USED": "12.5 second(s)", "RUN_TIME": "20 second(s)",
         "MAX_MEM": "2.1 Gbytes", "AVG_MEM": "1 Gbytes"},
        {"JOBID": "1234", "JOBINDEX": "2", "STAT": "RUN", "CPU_USED": "0.3 second(s)", "RUN_TIME": "4 second(s)",
         "MAX_MEM": "-", "AVG_MEM": "-"},
        {"JOBID": "999", "JOBINDEX": "1", "STAT": "RUN", "CPU_USED": "1 second(s)", "MAX_MEM": "1 Mbytes"},
        {"JOBID": "1234", "ERROR": "Job <1234[9]> is not found"}]}
    used = LSF(ClusterOptions()).parse_usage(json.dumps(doc), "1234")
    assert {i: (u.state, u.cpu_s, u.peak_mb, u.wall_s, u.source) for i, u in used.items()} == {
        1: ("done", 12.5, 2.1 * 1024, 20.0, "bjobs -o"), 2: ("running", 0.3, None, 4.0, "bjobs -o")}


def test_slurm_sacct_and_value_forms():
    # sacct -j 77 -P -n --noconvert --format=JobID,TotalCPU,MaxRSS,Elapsed,State
    text = ("77_1|00:01:02.500||00:01:30|COMPLETED\n77_1.batch|00:01:02.500|1073741824|00:01:30|COMPLETED\n"
            "77_1.extern|00:00:00|1048576|00:01:30|COMPLETED\n"
            "77_2|1-00:00:00||1-00:00:05|OUT_OF_MEMORY\n77_2.batch|23:59:59|4294967296|1-00:00:05|OUT_OF_MEMORY\n"
            "78_1|00:00:01|5|00:00:01|COMPLETED\n")
    used = parse_sacct(text, "77")
    assert {i: (u.state, u.cpu_s, u.peak_mb, u.wall_s, u.source) for i, u in used.items()} == {
        1: ("done", 62.5, 1024.0, 90.0, "sacct"), 2: ("failed", 86400.0, 4096.0, 86405.0, "sacct")}
    assert [slurm_seconds(v) for v in ("01:02.345", "2:03:04", "", "x")] == [62.345, 7384.0, None, None]
    assert [slurm_mb(v) for v in ("212955136", "138084K", "2G", "", ".", "nan")] == [
        212955136 / 2**20, 138084 / 1024, 2048.0, None, None, None]


FAKE_SLURM = """#!/bin/sh
case "$(basename "$0")" in
  sacct) echo "Slurm accounting storage is disabled" >&2; exit 1 ;;
  squeue) printf '177_2|179\\n177_1|178\\n' ;;
  sstat) echo "$*" > "$FAKE_LOG"; printf '178.batch|00:00:03|212955136\\n179.batch|00:00:00|199163904\\n' ;;
esac
"""


def test_slurm_without_accounting_asks_sstat_for_running_elements(tmp_path, monkeypatch):
    """sacct refuses (this node's Slurm keeps no accounting): sstat of the running elements' own job
    ids, mapped back to indices through squeue (answers as this node's Slurm 22.05 gave them)."""
    for name in ("sacct", "squeue", "sstat"):
        (tmp_path / name).write_text(FAKE_SLURM)
        (tmp_path / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "calls"))
    used = Slurm(ClusterOptions()).usage("177")
    assert {i: (u.state, u.cpu_s, u.peak_mb, u.source) for i, u in used.items()} == {
        1: ("running", 3.0, pytest.approx(203.09, abs=0.01), "sstat"),
        2: ("running", 0.0, pytest.approx(189.94, abs=0.01), "sstat")}
    assert (tmp_path / "calls").read_text().split() == [
        "-a", "-j", "178,179", "-P", "-n", "--noconvert", "--format=JobID,AveCPU,MaxRSS"]


def test_status_view_takes_the_peak_from_the_output_file_where_the_scheduler_has_none(tmp_path):
    """An element killed before its worker wrote anything: CPU time from bjobs -l, the peak from
    OpenLava's job report at the head of its output file; an element nobody measured says so."""
    from s2l2a.campaign.cluster import ArrayRecord, element_usage
    from s2l2a.campaign.usage import ElementUsage
    from s2l2a.engines.scheduler import ElementState

    rec = ArrayRecord(name="arr", scheduler="lsf", job_id="102", manifest="m", script="s", elements=[[1], [2], [3]],
                      attempts={"1": 1, "2": 1, "3": 1})
    logs = tmp_path / "logs" / "cluster"
    logs.mkdir(parents=True)
    (logs / "arr_102_2.out").write_text(answer("33_mem_output.txt"))
    (logs / "arr_102_3.out").write_text(answer("33_mem_output.txt"))
    states = {i: ElementState(i, "failed", "EXIT", "130") for i in (1, 2)} | {3: ElementState(3, "running", "RUN")}
    asked = {2: ElementUsage(2, 0.2, None, "bjobs -l", "failed")}
    got = [(u.index, u.state, u.cpu_s, u.peak_mb, u.source) for u in element_usage(tmp_path, rec, states, asked, {})]
    assert got == [(1, "failed", None, None, "-"), (2, "failed", 0.2, 516.0, "bjobs -l, output file"),
                   (3, "running", None, None, "-")]       # a running element's file is not read
