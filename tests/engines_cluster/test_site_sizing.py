"""What the scheduler knows about a queue and its nodes (engines/site.py, each scheduler's
read_queue/read_nodes), and sizing for the shortest campaign (engines/sizing.py, ClusterEngine.plan).

Slurm and OpenLava answers are recorded from the schedulers ``make test`` runs; the PBS ones are
written from PBS's documentation (tests/data/engines/site/SOURCE.md says which is which)."""

from __future__ import annotations

import math
import os
import shlex
from pathlib import Path

import pytest

from s2l2a.campaign.cluster import plan_duration
from s2l2a.campaign.jobspec import JobSpec
from s2l2a.engines import site
from s2l2a.engines.cluster import ClusterEngine, cluster_options
from s2l2a.engines.lsf import LSF
from s2l2a.engines.pbs import PBS
from s2l2a.engines.scheduler import ClusterOptions
from s2l2a.engines.sizing import DEFAULT_NODES, ELEMENT_CAP_S, Placement, estimate_duration, plan_arrays
from s2l2a.engines.slurm import Slurm
from s2l2a.errors import ConfigError

SITE = Path(__file__).resolve().parents[1] / "data" / "engines" / "site"


def answer(name: str) -> tuple[str, str, int]:
    """(command line, output, exit status) of a recorded or written answer."""
    lines = (SITE / name).read_text().splitlines()
    assert lines[0].startswith("# ") and lines[1].startswith("$ ") and lines[-1].startswith("[exit ")
    return lines[1][2:], "\n".join(lines[2:-1]) + "\n", int(lines[-1][6:-1])


def fake_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Only these answers on PATH: each program answers its recorded command line with the
    recorded output and exit status, anything else with 'unexpected' and exit 2."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    by_program: dict[str, list[tuple[str, str, int]]] = {}
    for name in names:
        cmd, out, code = answer(name)
        by_program.setdefault(shlex.split(cmd)[0], []).append((cmd, out, code))
    for program, answers in by_program.items():
        cases = ""
        for i, (cmd, out, code) in enumerate(answers):  # sh builtins only: nothing else is on PATH
            saved = bin_dir / f"{program}.{i}"
            saved.write_text(out)
            args = shlex.quote(" ".join(shlex.split(cmd)[1:]))
            cases += (f"  {args}) while IFS= read -r l; do printf '%s\\n' \"$l\"; done < {shlex.quote(str(saved))}\n"
                      f"  exit {code};;\n")
        (bin_dir / program).write_text(f'#!/bin/sh\ncase "$*" in\n{cases}esac\necho unexpected "$*" >&2\nexit 2\n')
        (bin_dir / program).chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))


# -- parsers on recorded answers ------------------------------------------------------------------

def test_slurm_partition_recorded():
    _, text, _ = answer("slurm_scontrol_partitions.txt")
    debug = site.slurm_partition(text, None)          # the Default=YES partition
    assert (debug.queue, debug.run_limit_s, debug.memory_limit_mb) == ("debug", None, None)
    assert debug.notes == ["scontrol show partition debug: MaxTime=UNLIMITED (no run limit)"]
    lim = site.slurm_partition(answer("slurm_scontrol_partition_limits.txt")[1], "s2l2a_limits")
    assert (lim.run_limit_s, lim.memory_limit_mb) == (36 * 3600, 16000)
    assert lim.sources == {"run_limit_s": "scontrol show partition s2l2a_limits",
                           "memory_limit_mb": "scontrol show partition s2l2a_limits"}
    mmss = site.slurm_partition(answer("slurm_scontrol_partition_limits_mmss.txt")[1], "s2l2a_limits")
    assert mmss.run_limit_s == 1800 and "State=DRAIN" in mmss.notes[-1]
    assert site.slurm_partition(text, "nosuch").run_limit_s is None
    nodes = site.sinfo_nodes(answer("slurm_sinfo_debug.txt")[1], "debug")
    assert (nodes.node_cores, nodes.node_memory_mb, nodes.nodes) == (2, 23081, 1)
    assert site.sinfo_nodes("", "nosuch").nodes is None


@pytest.mark.parametrize(("text", "seconds"), [
    ("UNLIMITED", None), ("INFINITE", None), ("NONE", None), ("", None), ("1-12:00:00", 129600),
    ("02:30:00", 9000), ("30:00", 1800), ("45", 2700), ("2-6", 194400), ("1-0:30", 88200), ("x", None),
    ("1:2:3:4", None), ("\n", None), ("..", None), ("nan", None), ("0", 0),
])
def test_slurm_time_forms(text, seconds):
    assert site.slurm_seconds(text) == seconds


def test_sinfo_leaves_out_nodes_that_take_no_job():
    # written for the test (sinfo's %T words, slurm.conf(5)): only idle/mixed/allocated count
    text = "n1|16|64000|idle\nn2|32|128000|mixed\nn3|16|64000|drained\nn4|16|64000|down*\nn5|8|32000|idle*\nodd line\n"
    info = site.sinfo_nodes(text, "batch")
    assert (info.nodes, info.node_cores, info.node_memory_mb) == (2, 16, 64000)
    assert "sized for the smallest" in info.notes[0]


def test_lsf_default_queue_and_hosts_recorded():
    _, text, _ = answer("lsf_bqueues_l_all.txt")
    assert site.lsf_default_queue(text) == "normal"
    assert site.lsf_queue_hosts(text, "short") is None          # all hosts used by the OpenLava system
    hosts = [("vm", 2, 24105), ("big", 64, 512000)]
    assert site.lsf_hosts(hosts, None, "normal").node_cores == 2
    assert site.lsf_hosts(hosts, ["big"], "long").node_cores == 64
    grouped = site.lsf_hosts(hosts, ["hg_big/", "vm"], "long")
    assert grouped.nodes == 2 and "host groups" in grouped.notes[0]


def test_pbs_written_from_docs():
    assert site.pbs_default_queue(answer("pbs_pro_qstat_Bf.txt")[1]) == "workq"
    q = site.pbs_queue(answer("pbs_pro_qstat_Qf_workq.txt")[1], "workq")
    assert (q.run_limit_s, q.memory_limit_mb, q.sources["run_limit_s"]) == (86400, 65536, "qstat -Qf workq")
    long = site.pbs_queue(answer("pbs_pro_qstat_Qf_nolimit.txt")[1], "long")
    assert long.run_limit_s is None and "started=False" in long.notes[-1]
    nodes = site.pbsnodes(answer("pbs_pro_pbsnodes_a.txt")[1], "workq")   # node03 down, gpu01 tied to gpuq
    assert (nodes.nodes, nodes.node_cores, nodes.node_memory_mb) == (2, 16, 64000)
    torque = site.pbsnodes(answer("torque_pbsnodes_a.txt")[1], None)
    assert (torque.nodes, torque.node_cores, torque.node_memory_mb) == (1, 8, 32068)


@pytest.mark.parametrize(("text", "mb"), [
    ("64gb", 65536), ("65536000kb", 64000), ("1024mb", 1024), ("1048576", 1), ("2gw", 16384), ("12", 0),
    ("x", None), ("", None), ("nan", None), ("-1gb", None), ("1.5gb", None),
])
def test_pbs_sizes(text, mb):
    assert site.pbs_size_mb(text) == mb


# -- reading through the commands: never fails, unknown with a note --------------------------------

def test_read_site_through_recorded_commands(tmp_path, monkeypatch):
    fake_commands(tmp_path, monkeypatch, "slurm_scontrol_partitions.txt", "slurm_sinfo_debug.txt",
                  "slurm_scontrol_partition_unknown.txt", "slurm_sinfo_unknown.txt")
    info = Slurm(ClusterOptions()).read_site(None)
    assert (info.queue, info.node_cores, info.node_memory_mb, info.nodes) == ("debug", 2, 23081, 1)
    assert info.sources["node_cores"] == "sinfo -N -p debug" and info.run_limit_s is None
    unknown = Slurm(ClusterOptions()).read_site("nosuch")
    assert unknown.run_limit_s is None and unknown.nodes is None
    assert "Partition nosuch not found" in unknown.notes[0]


def test_read_site_lsf_through_recorded_commands(tmp_path, monkeypatch):
    fake_commands(tmp_path, monkeypatch, "lsf_bqueues_l_all.txt", "lsf_lshosts.txt", "lsf_bqueues_l_unknown.txt")
    info = LSF(ClusterOptions()).read_site(None)
    assert (info.queue, info.run_limit_s, info.node_cores, info.node_memory_mb) == ("normal", None, 2, 24105)
    assert info.notes == ["bqueues -l normal: no RUNLIMIT"] and info.sources["node_cores"] == "lshosts"
    assert "No such queue" in LSF(ClusterOptions()).read_site("nosuch").notes[0]


@pytest.mark.parametrize("sched", [Slurm, LSF, PBS])
def test_missing_commands_and_odd_answers_leave_numbers_unknown(sched, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no scheduler command at all
    info = sched(ClusterOptions()).read_site("q")
    assert [getattr(info, f) for f in site.FIELDS] == [None] * 5 and len(info.notes) == 2
    assert all("not found" in n for n in info.notes)
    for prog in ("scontrol", "sinfo", "bqueues", "lshosts", "qstat", "pbsnodes"):
        (tmp_path / prog).write_text("#!/bin/sh\nprintf 'QUEUE: q\\nPartitionName=q MaxTime=soon\\n\\x00\\n'\n")
        (tmp_path / prog).chmod(0o755)
    odd = sched(ClusterOptions()).read_site("q")
    assert odd.run_limit_s is None and odd.node_cores is None


# -- durations before and after measurements -------------------------------------------------------

def test_duration_bounds_first_then_measured_p90():
    assert estimate_duration([], None, timeout_s=10800, processor_s=5400, processor="sen2cor")[0] == 5400
    assert estimate_duration([], None, timeout_s=3600, processor_s=5400)[0] == 3600   # the timeout caps it
    assert estimate_duration([100, 110], None, timeout_s=10800)[0] == 10800        # no figure: the timeout
    est, why = estimate_duration([100, 110], 900, timeout_s=10800, processor_s=5400)
    assert est == 900 and why.startswith("configured") and "2 of 3" in why
    est, why = estimate_duration([100, 110, 120, 400], None, timeout_s=10800, processor_s=5400)
    assert est == 500 and why.startswith("measured") and "p90 400 s" in why         # shortens the 5400
    assert estimate_duration([5000, 9000, 9500], None, timeout_s=10800)[0] == 10800
    assert estimate_duration([], None)[0] == 1800


def test_plan_duration_from_the_specs(tmp_path):
    from s2l2a.campaign.store import CampaignStore

    store = CampaignStore.open(tmp_path, create=True)
    specs = [JobSpec(job_id=1, product_path="/x", processor="builtin", settings={"timeout_s": 10800})]
    seconds, why, bound = plan_duration(store, ClusterOptions(), specs)
    assert (seconds, bound) == (600, True) and why.startswith("builtin's declared upper bound")
    sen2cor = [JobSpec(job_id=1, product_path="/x", processor="sen2cor", settings={"timeout_s": 3600})]
    assert plan_duration(store, ClusterOptions(), sen2cor)[:1] == (3600,)
    unknown = [JobSpec(job_id=1, product_path="/x", processor="auto", settings={"timeout_s": 7200})]
    assert plan_duration(store, ClusterOptions(), unknown)[0] == 7200
    seconds, why, bound = plan_duration(store, cluster_options({"estimate_s": 120}), specs)
    assert (seconds, bound) == (120, False)


# -- the shape: spread over the nodes, elements well under the limit -------------------------------

def test_whole_node_spreads_over_the_queue_nodes_not_the_fewest_elements():
    # issue 13's case: 5,000 products, 10-day limit, 16-core / 64,000 MB nodes, 30 min each
    node = Placement("whole_node", node_cores=16, node_memory_mb=64000)
    ids = list(range(5000))
    fifty = plan_arrays(ids, 1800, 10 * 86400, placement=node, nodes=50)
    assert fifty.parallel == 15 and fifty.element_walltime_s <= ELEMENT_CAP_S
    assert fifty.n_elements == 84 and sum(len(e) for a in fifty.arrays for e in a) == 5000
    assert math.isclose(fifty.campaign_s, 2 * (60 + 4 * 1800))           # 2 waves of 4 rounds: ~4 h
    assert "the fewest elements" in fifty.alternative and "7.0 d" in fifty.alternative
    unknown = plan_arrays(ids, 1800, 10 * 86400, placement=node)
    assert f"s2l2a's default {DEFAULT_NODES}" in unknown.explanation[3]
    assert unknown.element_walltime_s <= ELEMENT_CAP_S and unknown.campaign_s > fifty.campaign_s
    throttled = plan_arrays(ids, 1800, 10 * 86400, placement=node, nodes=50, spread=5)   # --max-concurrent wins
    assert "up to 5 at once (--max-concurrent)" in throttled.explanation[3]
    # a short queue bounds the element below the cap
    short = plan_arrays(ids[:100], 600, 3600, placement=node, nodes=2)
    assert short.element_walltime_s <= 3600 and short.products_per_element <= 15 * 4


def test_per_product_walltime_is_the_job_timeout_not_the_margin():
    plan = plan_arrays(list(range(10)), 10800, 4 * 3600, timeout_s=10800, startup_s=60)
    assert plan.element_walltime_s == 60 + 10800 + 120       # the worker stops a product at its timeout
    assert "twice as many elements at once" in plan.alternative


# -- ClusterEngine.plan: the options override what the scheduler says, and say where from ---------

class ToldSlurm(Slurm):
    """Slurm's rendering; its queue and nodes as given."""

    def __init__(self, options: ClusterOptions, told: site.SiteInfo) -> None:
        super().__init__(options)
        self.told = told

    def read_queue(self, queue: str | None) -> site.SiteInfo:
        return self.told

    def read_nodes(self, queue: str | None) -> site.SiteInfo:
        raise OSError("sinfo hung up")   # read_site keeps what read_queue said


def _specs(n: int, memory_mb: int = 4096, cores: int = 1) -> list[JobSpec]:
    return [JobSpec(job_id=i, product_path=f"/p{i}", processor="noop",
                    settings={"memory_mb": memory_mb, "cores": cores, "timeout_s": 3600}) for i in range(1, n + 1)]


BATCH = site.SiteInfo("batch", run_limit_s=10 * 3600, memory_limit_mb=32000, node_cores=16, node_memory_mb=64000,
                      nodes=50, sources=dict.fromkeys(site.FIELDS, "scontrol show partition batch"))


def test_plan_reads_the_scheduler_and_says_where_each_number_came_from():
    opts = cluster_options({"placement": "whole_node"}, "slurm")
    plan = ClusterEngine(ToldSlurm(opts, BATCH), opts).plan(_specs(200), 600)
    text = "\n".join(plan.explanation)
    assert "run limit 10:00:00 from scontrol show partition batch" in text
    assert "node 16 cores / 64000 MB from scontrol show partition batch" in text
    assert "50 usable node(s) in queue batch" in text and "node sizes unknown: sinfo hung up" in text
    # 32,000 MB per job: 7 products of 4,096 MB fit one element's ask, not 15
    assert plan.parallel == 7 and opts.run_limit_s == 36000


def test_options_override_the_scheduler():
    opts = cluster_options({"placement": "whole_node", "node_cores": 8}, "slurm", run_limit_s=7200,
                           node_memory_mb=16000)
    plan = ClusterEngine(ToldSlurm(opts, BATCH), opts).plan(_specs(40), 600)
    text = "\n".join(plan.explanation)
    assert "run limit 02:00:00 from --run-limit" in text
    assert "node 8 cores from [cluster] node_cores / 16000 MB from --node-memory-mb" in text
    assert plan.parallel == 3 and plan.element_walltime_s <= 7200
    above = cluster_options({}, "slurm", run_limit_s=20 * 3600)
    text = "\n".join(ClusterEngine(ToldSlurm(above, BATCH), above).plan(_specs(3), 600).explanation)
    assert "above queue batch's run limit 10:00:00" in text


def test_a_job_above_the_queue_memory_limit_is_refused_in_one_line():
    opts = cluster_options({}, "slurm")
    with pytest.raises(ConfigError, match=r"memory per job 40000 MB is above queue batch's memory limit 32000 MB "
                                          r"\(scontrol show partition batch\)"):
        ClusterEngine(ToldSlurm(opts, BATCH), opts).plan(_specs(2, memory_mb=40000), 600)


def test_an_upper_bound_longer_than_a_short_queue_plans_to_its_limit():
    short = site.SiteInfo("short", run_limit_s=600, sources={"run_limit_s": "bqueues -l short"})
    opts = cluster_options({}, "lsf")
    sched = ToldSlurm(opts, short)
    plan = ClusterEngine(sched, opts).plan(_specs(3), 5400, upper_bound=True)
    assert plan.element_walltime_s <= 600 and "slower ones will meet the run limit" in "\n".join(plan.explanation)
    with pytest.raises(ConfigError, match="run limit"):   # a measured or configured duration is not bent
        ClusterEngine(ToldSlurm(opts, short), opts).plan(_specs(3), 5400)


def test_unknown_everything_keeps_the_old_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    opts = cluster_options({}, "pbs")
    plan = ClusterEngine(PBS(opts), opts).plan(_specs(3), 600)
    text = "\n".join(plan.explanation)
    assert "run limit 04:00:00 s2l2a's default" in text and "node ? cores / ? MB unknown" in text
    assert plan.n_elements == 3 and os.environ["PATH"] == str(tmp_path)


def test_a_one_product_job_must_fit_the_largest_node_a_whole_node_element_the_smallest():
    mixed = site.sinfo_nodes("small|8|16000|idle\nbig|64|256000|idle\n", "mixed")
    mixed.queue = "mixed"
    assert (mixed.node_cores, mixed.largest_cores, mixed.largest_memory_mb) == (8, 64, 256000)
    opts = cluster_options({}, "slurm")
    plan = ClusterEngine(ToldSlurm(opts, mixed), opts).plan(_specs(2, memory_mb=64000, cores=16), 600)
    assert plan.n_elements == 2                     # fits the big node
    with pytest.raises(ConfigError, match=r"do not fit a node of queue mixed: the largest has 64 cores and 256000 MB "
                                          r"\(sinfo -N -p mixed\)"):
        ClusterEngine(ToldSlurm(opts, mixed), opts).plan(_specs(2, memory_mb=300000), 600)
    whole = cluster_options({"placement": "whole_node"}, "slurm")
    with pytest.raises(ConfigError, match="the smallest has 8 cores and 16000 MB"):
        ClusterEngine(ToldSlurm(whole, mixed), whole).plan(_specs(2, memory_mb=64000, cores=16), 600)
    # an answer beyond s2l2a's ceilings is taken for unreadable, not for a node
    odd = site.SiteInfo("odd", node_cores=10**9, node_memory_mb=10**12, sources=dict.fromkeys(site.FIELDS, "x"))
    text = "\n".join(ClusterEngine(ToldSlurm(opts, odd), opts).plan(_specs(2), 600).explanation)
    assert "node ? cores / ? MB unknown" in text


@pytest.mark.parametrize("queue", [".", "..", "\n", "'", "0", "nan", "-o", "a b", "x" * 300, ""])
def test_odd_queue_names_are_never_asked_about_and_never_fail(queue, tmp_path, monkeypatch):
    fake_commands(tmp_path, monkeypatch, "slurm_scontrol_partition_unknown.txt", "slurm_sinfo_unknown.txt")
    for sched in (Slurm, LSF, PBS):
        info = sched(ClusterOptions()).read_site(queue)
        assert [getattr(info, f) for f in site.FIELDS] == [None] * 5 and info.notes
