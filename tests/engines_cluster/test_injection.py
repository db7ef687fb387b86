"""Nothing from a user reaches a shell unquoted (issue 10, item 2).

Every template is rendered with hostile values in every field. A value that could end a line or
mean something to bash or to a directive parser is refused with one line naming the option; a
value that is accepted (a campaign name, which only reaches a comment; a path with spaces, quotes,
``$(...)`` and backticks, which is shlex-quoted in the exec line) yields a script that ``bash -n``
accepts and that, executed by bash with no scheduler command on PATH and a stub in place of the
worker, runs nothing but the worker with exactly the argv s2l2a meant.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from s2l2a.campaign.jobspec import JobSpec
from s2l2a.cli import main
from s2l2a.engines.cluster import ClusterEngine, cluster_options, parse_duration
from s2l2a.engines.directives import MAX_NODE_CORES, check_directive, comment_text
from s2l2a.engines.lsf import LSF
from s2l2a.engines.pbs import PBS
from s2l2a.engines.scheduler import ClusterOptions, SchedulerError
from s2l2a.engines.slurm import Slurm
from s2l2a.errors import ConfigError, S2L2AError
from sample_clones import clone_sample

SCHEDULERS = {
    "slurm": (Slurm, {}),
    "lsf": (LSF, {"lsf_unit": "MB"}),
    "pbs_pro": (PBS, {}),
    "pbs_torque": (PBS, {"pbs_flavour": "torque"}),
}
INDEX_ENV = {"SLURM_ARRAY_TASK_ID": "3", "LSB_JOBINDEX": "3", "PBS_ARRAY_INDEX": "3", "PBS_ARRAYID": "3"}
PAYLOAD = "echo pwned > {marker}"  # bash builtins only: works with an empty PATH too
HOSTILE = {
    "newline": "x\n" + PAYLOAD + " #",
    "carriage_return": "x\r" + PAYLOAD,
    "semicolon": "x; " + PAYLOAD,
    "command_substitution": "$(" + PAYLOAD + ")",
    "backticks": "`" + PAYLOAD + "`",
    "single_quotes": "x'; " + PAYLOAD + "; '",
    "double_quotes": 'x"; ' + PAYLOAD + '; "',
    "hash": "x #" + PAYLOAD,
    "nul": "x\x00" + PAYLOAD,
    "line_separator": "x\u2028" + PAYLOAD,
    "next_line": "x\u0085" + PAYLOAD,
    "paragraph_separator": "x\u2029" + PAYLOAD,
    "bidi_override": "x\u202e" + PAYLOAD,
    "very_long": "a" * 5000,
}
LINE_BREAKING = {"newline", "carriage_return", "nul", "line_separator", "next_line", "paragraph_separator",
                 "bidi_override", "very_long"}


def _hostile(kind: str, marker: Path) -> str:
    return HOSTILE[kind].replace("{marker}", str(marker))


def _render(sched: str, opts: dict | None = None, *, campaign_name: str = "c", array_name: str = "s2l2a_c_1",
            worker_argv: list[str] | None = None, log_dir: str = "logs/cluster") -> str:
    cls, base = SCHEDULERS[sched]
    s = cls(ClusterOptions(**{**base, **(opts or {})}))
    return s.render(campaign_name=campaign_name, array_name=array_name, n_elements=4, products_per_element=1,
                    parallel=1, walltime_s=600, log_dir=log_dir,
                    worker_argv=worker_argv or ["/opt/py/bin/python", "-m", "s2l2a", "worker", "--manifest", "a"])


def _assert_one_line(err: BaseException, label: str) -> None:
    text = str(err)
    assert "\n" not in text and "\r" not in text and "\x00" not in text, text
    assert not any(ch in text for ch in "\u2028\u2029\u0085\u202e"), text
    assert text.startswith(f"{label}: "), text
    assert len(text) < 400, text


# -- every field, every hostile value: refused in one line ------------------------------------------

FIELDS = {  # option field -> how a hostile text becomes its value
    "queue": lambda v: v,
    "account": lambda v: v,
    "select": lambda v: "mem>100 " + v,
    "extra_directives": lambda v: ["--comment=" + v],
}


@pytest.mark.parametrize("sched", sorted(SCHEDULERS))
@pytest.mark.parametrize("field", sorted(FIELDS))
@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_option_values_are_refused_at_render(sched, field, kind, tmp_path):
    value = FIELDS[field](_hostile(kind, tmp_path / "marker"))
    with pytest.raises(ConfigError) as e:
        _render(sched, {field: value})
    _assert_one_line(e.value, f"[cluster] {field}")


@pytest.mark.parametrize("kind", sorted(HOSTILE))
@pytest.mark.parametrize("field", ["queue", "account"])
def test_hostile_command_line_values_are_named_by_their_option(field, kind, tmp_path):
    for sched in ("slurm", "lsf", "pbs"):
        with pytest.raises(ConfigError) as e:
            cluster_options({}, sched, **{field: _hostile(kind, tmp_path / "m")})
        _assert_one_line(e.value, f"--{field}")


@pytest.mark.parametrize("sched", sorted(SCHEDULERS))
@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_array_names_and_log_dirs_are_refused(sched, kind, tmp_path):
    value = _hostile(kind, tmp_path / "marker")
    with pytest.raises(S2L2AError) as e:
        _render(sched, array_name="s2l2a_" + value)
    assert "\n" not in str(e.value)
    with pytest.raises(SchedulerError):
        _render(sched, log_dir="logs/" + value)


@pytest.mark.parametrize("sched", sorted(SCHEDULERS))
@pytest.mark.parametrize("kind", sorted(LINE_BREAKING - {"very_long"}))
def test_paths_with_line_breaks_or_control_characters_are_refused(sched, kind, tmp_path):
    bad = str(tmp_path / ("camp" + _hostile(kind, tmp_path / "marker")))
    with pytest.raises(ConfigError) as e:
        _render(sched, worker_argv=["/opt/py/bin/python", "-m", "s2l2a", "worker", "--campaign", bad])
    _assert_one_line(e.value, "worker command")
    with pytest.raises(ConfigError) as e:
        _render(sched, worker_argv=[bad, "-m", "s2l2a"])
    _assert_one_line(e.value, "python")


def test_names_follow_each_schedulers_rules():
    assert "#SBATCH --partition=cpu,gpu-long" in _render("slurm", {"queue": "cpu,gpu-long"}).splitlines()
    assert "#BSUB -q night_2" in _render("lsf", {"queue": "night_2"}).splitlines()
    assert "#PBS -q workq@pbs01.example.org" in _render("pbs_pro", {"queue": "workq@pbs01.example.org"}).splitlines()
    with pytest.raises(ConfigError, match="LSF queue name.*lsb.queues"):
        _render("lsf", {"queue": "a.b"})  # lsb.queues: letters, digits, _ and - only
    with pytest.raises(ConfigError, match="at most 59 .lsb.queues"):
        _render("lsf", {"queue": "q" * 60})
    with pytest.raises(ConfigError, match="PBS_MAXQUEUENAME"):
        _render("pbs_pro", {"queue": "q" * 16})
    with pytest.raises(ConfigError, match="Slurm partition"):
        _render("slurm", {"queue": "-p"})  # an option, not a name
    with pytest.raises(ConfigError, match="must be text"):
        _render("slurm", {"account": 5})


@pytest.mark.parametrize(("sched", "directive", "denied"), [
    ("slurm", "--wrap=rm -rf ~", "--wrap"),
    ("slurm", "--wr=x", "--wr"),                      # sbatch accepts abbreviations of long options
    ("slurm", "--export=BASH_ENV=/tmp/x", "--export"),
    ("slurm", "-o /home/me/thesis.tex", "-o"),
    ("slurm", "-Hofile", "-o"),                        # grouped flags: -H then -o with argument "file"
    ("slurm", "--mem=1G --output=x", "--output"),      # every option of the line is looked at
    ("lsf", '-E "rm -rf ~"', "-E"),
    ("lsf", "-Ep /bin/x", "-Ep"),
    ("lsf", "-oo /home/me/thesis.tex", "-oo"),
    ("lsf", "-f 'a > b'", "-f"),
    ("lsf", "-Is", "-Is"),
    ("lsf", "-env all", "-env"),
    ("pbs_pro", "-S /tmp/evil", "-S"),
    ("pbs_pro", "-v BASH_ENV=/tmp/x", "-v"),
    ("pbs_pro", "-W stageout=x@h:/y", "-W stageout"),
    ("pbs_pro", "-hV", "-V"),
    ("pbs_torque", "-k oe", "-k"),
])
def test_directives_that_run_commands_or_touch_files_are_refused(sched, directive, denied):
    with pytest.raises(ConfigError) as e:
        _render(sched, {"extra_directives": [directive]})
    _assert_one_line(e.value, "[cluster] extra_directives")
    assert f"{denied} is not allowed" in str(e.value)


@pytest.mark.parametrize(("sched", "directive"), [
    ("slurm", "--gres=gpu:1"), ("slurm", '--constraint="haswell&ib|knl"'), ("slurm", "--mail-user=me@example.org"),
    ("slurm", "--exclusive"), ("slurm", "-C knl"),
    ("lsf", '-R "span[ptile=16]"'), ("lsf", "-ext 'x'"), ("lsf", "-Lp proj"), ("lsf", "-Jd 'a description'"),
    ("lsf", "-freq 2.0"), ("lsf", "-eptl 10"),
    ("pbs_pro", "-l feature=x"), ("pbs_pro", "-W depend=afterok:12.pbs01"), ("pbs_pro", "-m n"),
    ("pbs_torque", "-l nodes=1:ppn=4:gpus=1"),
])
def test_ordinary_directives_pass_and_render_verbatim(sched, directive):
    prefix = {"slurm": "#SBATCH", "lsf": "#BSUB"}.get(sched, "#PBS")
    assert f"{prefix} {directive}" in _render(sched, {"extra_directives": [directive]}).splitlines()


def test_select_keeps_lsf_operators_and_refuses_brackets_and_quotes():
    line = '#BSUB -R "rusage[mem=4096] span[hosts=1] select[(type==X86_64 || type==any) && mem>64000]"'
    assert line in _render("lsf", {"select": "(type==X86_64 || type==any) && mem>64000"}).splitlines()
    for bad in ("mem>1] rusage[mem=1", 'mem>1" -E "x', "defined(x)$y"):
        with pytest.raises(ConfigError, match=r"^\[cluster\] select: "):
            _render("lsf", {"select": bad})


def test_extra_directives_must_be_a_list():
    with pytest.raises(ConfigError, match=r"^\[cluster\] extra_directives: must be a list"):
        _render("slurm", {"extra_directives": "--gres=gpu:1"})
    with pytest.raises(ConfigError, match="unbalanced quotes"):
        check_directive("x", '--comment="a', "slurm")


# -- accepted values: bash -n, then executed with no scheduler and a worker stub ---------------------

def _stub(directory: Path) -> Path:
    """A 'python' that records its argv (NUL-separated) and does nothing else."""
    directory.mkdir(parents=True, exist_ok=True)
    stub = directory / "python"
    stub.write_text('#!/bin/bash\nprintf \'%s\\0\' "$0" "$@" > "$ARGV_OUT"\n')
    stub.chmod(0o755)
    return stub


def _execute(script_text: str, tmp_path: Path) -> list[str]:
    """bash -n, then bash with an empty PATH (no sbatch/bsub/qsub, no s2l2a): the worker's argv."""
    script = tmp_path / "job.sh"
    script.write_text(script_text, encoding="utf-8")
    syntax = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, timeout=10)
    assert syntax.returncode == 0, syntax.stderr
    empty = tmp_path / "empty-path"
    empty.mkdir(exist_ok=True)
    out = tmp_path / "argv.bin"
    env = {"PATH": str(empty), "ARGV_OUT": str(out), **INDEX_ENV}
    r = subprocess.run(["/bin/bash", str(script)], capture_output=True, text=True, timeout=10, env=env,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "command not found" not in r.stderr, r.stderr
    return out.read_bytes().decode("utf-8").split("\0")[:-1]


ACCEPTED_IN_PATHS = sorted(set(HOSTILE) - LINE_BREAKING)


@pytest.mark.parametrize("sched", sorted(SCHEDULERS))
@pytest.mark.parametrize("kind", ACCEPTED_IN_PATHS)
def test_paths_with_shell_syntax_are_quoted_and_only_the_worker_runs(sched, kind, tmp_path):
    marker = tmp_path / "marker"
    hostile = _hostile(kind, marker)
    python = _stub(tmp_path / f"bin {hostile}")
    campaign = str(tmp_path / f"my campaign {hostile}")
    argv = [str(python), "-m", "s2l2a", "worker", "--campaign", campaign, "--manifest", "s2l2a_c_1"]
    text = _render(sched, {"queue": "normal", "account": "p1", "extra_directives": []},
                   campaign_name=hostile, worker_argv=argv)
    got = _execute(text, tmp_path)
    assert got == [*argv, "--index", "3"]
    assert not marker.exists()


@pytest.mark.parametrize("sched", sorted(SCHEDULERS))
@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_campaign_names_only_reach_an_inert_comment(sched, kind, tmp_path):
    marker = tmp_path / "marker"
    python = _stub(tmp_path / "bin")
    argv = [str(python), "-m", "s2l2a", "worker", "--manifest", "s2l2a_c_1"]
    text = _render(sched, campaign_name=_hostile(kind, marker), worker_argv=argv)
    comment = text.splitlines()[1]
    assert comment.startswith("# s2l2a campaign ") and len(comment) < 200
    assert _execute(text, tmp_path) == [*argv, "--index", "3"]
    assert not marker.exists()


@pytest.mark.parametrize(("sched", "directive"), [
    ("slurm", '--constraint="a&b|c"'), ("lsf", '-R "span[ptile=16]"'), ("pbs_pro", "-l feature=x'y z'"),
])
def test_accepted_directives_and_select_execute_cleanly(sched, directive, tmp_path):
    python = _stub(tmp_path / "bin")
    argv = [str(python), "-m", "s2l2a", "worker", "--manifest", "s2l2a_c_1"]
    text = _render(sched, {"extra_directives": [directive], "select": "mem>1 && (a||b)"}, worker_argv=argv)
    assert _execute(text, tmp_path) == [*argv, "--index", "3"]


def test_comment_text_replaces_every_line_break():
    assert comment_text("a\nb\rc\u2028d\u0085e\x00f\tg") == "a?b?c?d?e?f?g"
    assert comment_text("Lab Müller 2024") == "Lab Müller 2024"
    assert len(comment_text("x" * 500)) == 80


# -- numbers that reach directives --------------------------------------------------------------------

@pytest.mark.parametrize(("key", "value", "says"), [
    ("run_limit", float("nan"), "finite"), ("run_limit", float("inf"), "finite"), ("run_limit", 0, "positive"),
    ("run_limit", -3600, "positive"), ("run_limit", "abc", "not a duration"), ("run_limit", "0h", "positive"),
    ("run_limit_s", 10**12, "more than"), ("run_limit", True, "seconds"),
    ("memory_mb", 99999999, "above"), ("memory_mb", 0, "below"), ("memory_mb", float("nan"), "whole number"),
    ("memory_mb", "4096", "whole number"), ("cores_per_job", 100000, "above"), ("cores_per_job", -1, "below"),
    ("cores_per_job", 1.5, "whole number"), ("node_cores", 10**6, "above"), ("node_memory_mb", -1, "below"),
    ("max_concurrent", -1, "below"), ("max_concurrent", float("inf"), "whole number"),
    ("max_array_size", 0, "below"), ("estimate_s", float("nan"), "finite"), ("startup_s", -1, "positive"),
    ("exclusive", "yes", "true or false"), ("lsf_unit", "XB", "KB"), ("pbs_flavour", "sge", "pro or torque"),
])
def test_cluster_numbers_and_kinds_are_range_checked(key, value, says):
    with pytest.raises(ConfigError) as e:
        cluster_options({key: value}, "slurm")
    _assert_one_line(e.value, f"[cluster] {key}")
    assert says in str(e.value)


def test_job_size_is_bounded_by_the_nodes_when_known():
    # node size known: a job asking more cores or memory than one node has is refused
    with pytest.raises(ConfigError, match=r"\[cluster\] cores_per_job: 32 is above 16 \(the node size"):
        cluster_options({"node_cores": 16, "cores_per_job": 32}, "lsf")
    with pytest.raises(ConfigError, match="--node-memory-mb"):
        cluster_options({"memory_mb": 8192}, "lsf", node_memory_mb=4096)
    # unknown: bounded by s2l2a's documented ceiling, not by this (login) machine's size
    assert cluster_options({"cores_per_job": (os.cpu_count() or 1) * 8}, "pbs").cores_per_job > (os.cpu_count() or 1)
    with pytest.raises(ConfigError, match=f"above {MAX_NODE_CORES}"):
        cluster_options({"cores_per_job": MAX_NODE_CORES + 1}, "pbs")
    assert parse_duration("4h") == 14400 and parse_duration(5400.0) == 5400


def test_plan_refuses_job_sizes_from_resources_beyond_the_node(tmp_path):
    spec = JobSpec(job_id=1, product_path="/x.SAFE", tile="56JMM", processor="noop",
                   settings={"memory_mb": 4096, "cores": 100000}, attempt=1)
    eng = ClusterEngine(Slurm(ClusterOptions()), python="/venv/bin/python")
    with pytest.raises(ConfigError) as e:
        eng.plan([spec], 60)
    _assert_one_line(e.value, "cores per job ([resources] cores_per_job)")
    big = replace(spec, settings={"memory_mb": 99999999, "cores": 1})
    with pytest.raises(ConfigError, match=r"memory per job .*: 99999999 MB is above"):
        eng.plan([big], 60)
    eng = ClusterEngine(Slurm(ClusterOptions(node_cores=8, node_memory_mb=16000)), python="/venv/bin/python")
    with pytest.raises(ConfigError, match="above 16000 MB"):
        eng.plan([replace(spec, settings={"memory_mb": 32000, "cores": 1})], 60)
    assert eng.plan([replace(spec, settings={"memory_mb": 4000, "cores": 8})], 60).n_elements == 1


# -- end to end through the command line ------------------------------------------------------------

def _cli(*args: object) -> object:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def hostile_campaign(tmp_path_factory) -> tuple[Path, Path]:
    """The issue's reproduction: a campaign named with a newline and a command, one product planned."""
    root = tmp_path_factory.mktemp("inject")
    marker = root / "pwned"
    l1c = root / "l1c"
    clone_sample(l1c)
    camp = root / "D"
    r = _cli("init", camp, "--processor", "builtin", "--name", f"evil\n{PAYLOAD.format(marker=marker)} #")
    assert r.exit_code == 0, r.output
    r = _cli("plan", camp, l1c)
    assert r.exit_code == 0, r.output
    return camp, marker


def _assert_error_line(stderr: str, label: str) -> None:
    """The refusal is one line naming the option (other notes, e.g. a preflight's, may precede it)."""
    errors = [ln for ln in stderr.splitlines() if ln.startswith("Error")]
    assert len(errors) == 1 and errors[0].startswith(f"Error: {label}: "), stderr
    assert stderr.endswith(errors[0] + "\n"), stderr


def _scripts(dry_run_output: str) -> list[str]:
    """The scripts a --dry-run printed (between its '# ---- cluster/...sh' headers)."""
    parts = dry_run_output.split("# ---- ")[1:]
    return ["\n".join(p.splitlines()[1:]) + "\n" for p in parts]


@pytest.mark.parametrize("engine", ["slurm", "lsf", "pbs"])
def test_dry_run_of_a_hostile_campaign_name_renders_nothing_bash_would_run(engine, hostile_campaign, tmp_path):
    camp, marker = hostile_campaign
    r = _cli("run", camp, "--engine", engine, "--dry-run")
    assert r.exit_code == 0, r.output
    (script,) = _scripts(r.stdout)
    code = [ln for ln in script.splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(code) == 1 and code[0].startswith("exec "), code
    assert "# s2l2a campaign evil?echo pwned" in script
    worker = shlex.split(code[0])[1:]
    assert worker[1:4] == ["-m", "s2l2a", "worker"] and worker[worker.index("--campaign") + 1] == str(camp.resolve())
    # executed with a stub instead of the interpreter: the worker runs with s2l2a's argv, nothing else
    stub = _stub(tmp_path / "bin")
    got = _execute(script.replace(code[0], code[0].replace(shlex.quote(worker[0]), shlex.quote(str(stub)), 1)),
                   tmp_path)
    assert got[1:-1] == worker[1:-1] and got[-1] == "3"
    assert not marker.exists()


@pytest.mark.parametrize(("option", "value"), [
    ("--queue", "normal; touch /tmp/pwned"), ("--queue", "normal\ntouch /tmp/pwned"),
    ("--account", "p1\ntouch /tmp/pwned"), ("--account", "$(touch /tmp/pwned)"), ("--queue", "q\u2028x"),
])
@pytest.mark.parametrize("engine", ["slurm", "lsf", "pbs"])
def test_hostile_options_stop_the_run_in_one_line_before_any_script(engine, option, value, hostile_campaign):
    camp, _ = hostile_campaign
    # a real submission: the preflight's scheduler check would stop it first on this machine
    for dry in (["--dry-run"], ["--skip-check", "scheduler"]):
        r = _cli("run", camp, "--engine", engine, option, value, *dry)
        assert r.exit_code == 1, r.output
        _assert_error_line(r.stderr, option)
        assert not (camp / "cluster").exists() and not (camp / "manifests").exists()


@pytest.mark.parametrize(("toml", "label"), [
    ('select = "mem>1\\ntouch /tmp/pwned"', "[cluster] select"),
    ('extra_directives = ["--gres=gpu:1\\ntouch /tmp/pwned"]', "[cluster] extra_directives"),
    ('extra_directives = ["--comment=x; touch /tmp/pwned"]', "[cluster] extra_directives"),
    ("run_limit = nan", "[cluster] run_limit"),
    ("max_concurrent = -2", "[cluster] max_concurrent"),
    ("node_cores = 8\ncores_per_job = 100000", "[cluster] cores_per_job"),
])
def test_hostile_cluster_settings_stop_the_run_in_one_line(toml, label, hostile_campaign):
    camp, _ = hostile_campaign
    settings = camp / "s2l2a.toml"
    before = settings.read_text()
    try:
        settings.write_text(before + f"\n[cluster]\n{toml}\n")
        tomllib.loads(settings.read_text())  # the file itself is valid TOML
        for engine in ("slurm", "lsf", "pbs"):
            r = _cli("run", camp, "--engine", engine, "--dry-run")
            assert r.exit_code == 1, r.output
            _assert_error_line(r.stderr, label)
    finally:
        settings.write_text(before)
    assert not (camp / "cluster").exists()


def test_cluster_extend_checks_its_run_limit(hostile_campaign):
    camp, _ = hostile_campaign
    r = _cli("cluster", "extend", camp, "--run-limit", "100000d")
    assert r.exit_code == 1 and r.stderr.startswith("Error: --run-limit: "), r.output
    r = _cli("cluster", "extend", camp, "--run-limit", "30s")
    assert r.exit_code == 1 and "less than one minute" in r.stderr, r.output
