"""Plug-ins: the steps of docs/architecture.md "How to add a scheduler / processor / source", followed
with the test plug-in package (tests/plugins: the noop processor, the toy scheduler, the folder
source), which registers through the entry points exactly as a third-party package would.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
from importlib.metadata import EntryPoint

import pytest
from click.testing import CliRunner
from s2l2a_testplugins.folder import ENV as FOLDER_ENV
from s2l2a_testplugins.noop import NoopProcessor
from s2l2a_testplugins.toy import Toy

from s2l2a import registry
from s2l2a.campaign.settings import SETTINGS_FILE, CampaignSettings
from s2l2a.cli import main
from s2l2a.engines.cluster import cluster_options
from s2l2a.engines.scheduler import ElementState
from s2l2a.errors import ConfigError
from s2l2a.processors import get_processor

WORKER = ["/opt/py/bin/python", "-m", "s2l2a", "worker", "--campaign", "/data/my campaign", "--manifest", "a1"]


def cli(*args: object, env: dict[str, str] | None = None) -> object:
    return CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)


# -- step 3 of each: the entry point is all it takes to be known -------------------------------------

def test_the_registry_lists_the_installed_plugins_after_s2l2a_own():
    assert registry.processor_names()[:3] == ("auto", "builtin", "sen2cor") and "noop" in registry.processor_names()
    assert registry.scheduler_names()[:3] == ("slurm", "lsf", "pbs") and "toy" in registry.scheduler_names()
    assert registry.source_names()[:2] == ("gcs", "cdse") and "folder" in registry.source_names()
    assert registry.origin("schedulers", "toy") == "s2l2a-testplugins"
    assert registry.origin("processors", "sen2cor") == "s2l2a"
    assert registry.get_scheduler("toy") is Toy


def test_a_plugin_cannot_take_a_name_of_s2l2a_and_a_broken_one_fails_in_one_line(monkeypatch):
    fake = [EntryPoint("sen2cor", "evil:PLUGIN", "s2l2a.processors"),
            EntryPoint("auto", "evil:PLUGIN", "s2l2a.processors"),
            EntryPoint("Bad Name", "evil:PLUGIN", "s2l2a.processors"),
            EntryPoint("broken", "no_such_module_here:PLUGIN", "s2l2a.processors")]
    monkeypatch.setattr(registry, "entry_points", lambda group: fake if group == "s2l2a.processors" else [])
    registry.refresh()
    try:
        assert registry.processor_names() == ("auto", "builtin", "sen2cor", "broken")
        assert registry.origin("processors", "sen2cor") == "s2l2a"
        with pytest.raises(ConfigError) as e:
            registry.processor_plugin("broken")
        assert "\n" not in str(e.value) and "cannot be loaded: ModuleNotFoundError" in str(e.value)
        with pytest.raises(ConfigError, match="unknown processor 'nope'"):
            registry.processor_plugin("nope")
    finally:
        monkeypatch.undo()
        registry.refresh()
    assert "noop" in registry.processor_names()


# -- a scheduler: module + template ---------------------------------------------------------------------

def render(opts) -> str:
    return Toy(opts).render(campaign_name="c\nx", array_name="s2l2a_c_1", n_elements=4, products_per_element=1,
                            parallel=2, walltime_s=5400, log_dir="logs/cluster", worker_argv=WORKER)


def test_the_toy_scheduler_renders_its_template_with_its_own_setting(tmp_path):
    opts = cluster_options({"queue": "short", "toy_priority": 5, "max_concurrent": 2, "memory_mb": 1000}, "toy")
    assert opts.scheduler_settings == {"toy_priority": 5}
    text = render(opts)
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash" and "# s2l2a campaign c?x: array s2l2a_c_1 (4 elements, 1 product(s) each)" in lines
    assert "#TOY --elements=4 --at-once=2" in lines and "#TOY --queue=short" in lines
    assert "#TOY --cpus=2 --memory=2000 --time=5400 --priority=5" in lines  # two products per element
    # bash runs the one exec line: the worker's argv, quoted, with the element index from $TOY_INDEX
    stub = tmp_path / "python"
    stub.write_text('#!/bin/bash\nprintf \'%s\\0\' "$@" > "$ARGV_OUT"\n')
    stub.chmod(0o755)
    script = tmp_path / "job.sh"
    script.write_text(text.replace(shlex.quote(WORKER[0]), shlex.quote(str(stub))))
    r = subprocess.run(["/bin/bash", str(script)], env={"PATH": "/nonexistent", "ARGV_OUT": str(tmp_path / "argv"),
                                                         "TOY_INDEX": "3"}, capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "argv").read_bytes().decode().split("\0")[:-1] == [*WORKER[1:], "--index", "3"]
    assert render(cluster_options({}, "toy")).count("--priority=0") == 1  # the declared default


@pytest.mark.parametrize(("table", "overrides", "says"), [
    ({"toy_priority": 12}, {}, "[cluster] toy_priority: 12 is above 9"),
    ({}, {"toy_priority": -1}, "--toy-priority: -1 is below 0"),
    ({"queue": "a;b"}, {}, "[cluster] queue: 'a;b' is not a valid toy queue name"),
    ({"extra_directives": ["--output=/etc/passwd"]}, {},
     "[cluster] extra_directives: --output is not allowed in extra directives for toy"),
    ({"toy_prio": 1}, {}, "[cluster] toy_prio: unknown key"),
])
def test_the_toy_schedulers_values_are_checked_like_everyone_elses(table, overrides, says):
    with pytest.raises(ConfigError) as e:
        cluster_options(table, "toy", **overrides)
    assert str(e.value).startswith(says) and "\n" not in str(e.value)


def test_another_schedulers_own_setting_is_checked_whichever_runs():
    with pytest.raises(ConfigError, match=r"^\[cluster\] toy_priority: must be a whole number"):
        cluster_options({"toy_priority": "high"}, "slurm")
    assert cluster_options({"toy_priority": 1, "lsf_unit": "MB"}, "slurm").scheduler_settings == {
        "toy_priority": 1, "lsf_unit": "MB"}


def test_the_toy_schedulers_answers_are_parsed():
    t = Toy(cluster_options({}, "toy"))
    assert t.parse_submit("toy: reading script\ntoy job 42 queued\n") == "42"
    states = t.parse_status("42.1 DONE exit 0\n42.2 RUNNING\n42.3 FAILED exit 137 toy: over memory\n"
                            "42.4 OVERTIME exit 143\n43.1 DONE exit 0\n", "42")
    assert {i: s.state for i, s in states.items()} == {1: "done", 2: "running", 3: "failed", 4: "unknown"}
    assert states[3].exit_code == "137" and states[3].reason == "toy: over memory"
    assert Toy.classify_end(states[3])[0].value == "out_of_memory"
    assert Toy.classify_end(states[4])[0].value == "timeout"
    assert Toy.classify_end(ElementState(5, "failed", "FAILED", "1", "toy: out of time"))[0].value == "timeout"
    assert Toy.classify_end(states[1]) is None
    assert t.cancel_argv("42", 3) == ["toydel", "42.3"] and t.extend_argv("42", 7200) == ["toyextend", "42", "7200"]


def test_the_toy_scheduler_is_offered_by_the_commands():
    r = cli("selftest", "--help")
    assert "toy" in r.output and "--toy-priority" in r.output
    r = cli("run", "--help")
    assert "toy" in r.output and "noop" in r.output


def test_a_dry_run_through_the_toy_scheduler(tmp_path, sample_l1c):
    camp = tmp_path / "camp"
    assert cli("init", camp, "--processor", "builtin").exit_code == 0
    with open(camp / SETTINGS_FILE, "a") as f:
        f.write('\n[cluster]\ntoy_priority = 7\nrun_limit = "2h"\n')
    assert cli("plan", camp, sample_l1c).exit_code == 0
    r = cli("run", camp, "--engine", "toy", "--dry-run", "--processor", "noop")
    assert r.exit_code == 0, r.output
    assert "#TOY --elements=1" in r.stdout and "--priority=7" in r.stdout
    assert not (camp / "cluster").exists()


# -- a processor: one module ------------------------------------------------------------------------------

def test_the_noop_processor_comes_from_its_entry_point_with_its_section(tmp_path):
    p = get_processor("noop", {"sleep_s": 0.5})
    assert isinstance(p, NoopProcessor) and p.sleep_s == 0.5
    assert registry.processor_plugin("noop").test_only
    ok = CampaignSettings.from_dict({"campaign": {"processor": "noop"}, "noop": {"fail": "dem_error"}})
    assert ok.processor_options() == {"fail": "dem_error"} and ok.job_settings().extra == {"fail": "dem_error"}
    for table, says in (({"sleep_s": -1}, "[noop] sleep_s: must be a number of seconds"),
                        ({"fail": "sometimes"}, "[noop] fail: one of timeout"),
                        ({"colour": "red"}, "[noop] colour: unknown key")):
        with pytest.raises(ConfigError) as e:
            CampaignSettings.from_dict({"noop": table}, source="s2l2a.toml")
        assert str(e.value).startswith(f"s2l2a.toml: {says}") and "\n" not in str(e.value)


def test_a_plugin_processor_runs_a_campaign(tmp_path, sample_l1c):
    camp = tmp_path / "camp"
    assert cli("init", camp, "--processor", "builtin").exit_code == 0
    s = CampaignSettings.load(camp)
    s.processor = "noop"
    s.section("noop")["sleep_s"] = 0
    s.save(camp)
    assert cli("plan", camp, sample_l1c).exit_code == 0
    r = cli("run", camp, "--workers", "1")
    assert r.exit_code == 0, r.output
    assert "1 done, 0 failed" in r.output
    (result,) = (camp / "results" / "folded").glob("*.json") if (camp / "results" / "folded").is_dir() else [None]
    if result is not None:
        assert json.loads(result.read_text())["processor"] == "noop"


def test_sections_nothing_declares_are_kept_and_named_once(tmp_path, caplog):
    (tmp_path / SETTINGS_FILE).write_text('[campaign]\nprocessor = "builtin"\n\n[clustr]\nqueue = "x"\n')
    with caplog.at_level(logging.WARNING, logger="s2l2a.campaign.settings"):
        s = CampaignSettings.load(tmp_path)
        CampaignSettings.load(tmp_path)
    assert s.extra == {"clustr": {"queue": "x"}} and s.unknown_sections() == ["clustr"]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "[clustr] not known to s2l2a or an installed plug-in" in lines[0]


# -- a source: one module -----------------------------------------------------------------------------------

def test_fetch_through_the_folder_source(tmp_path, sample_l1c):
    folder = tmp_path / "mirror"
    folder.mkdir()
    (folder / sample_l1c.name).symlink_to(sample_l1c, target_is_directory=True)
    env = {FOLDER_ENV: str(folder)}
    r = cli("search", "--source", "folder", "--tile", "56JMM", "--json", env=env)
    assert r.exit_code == 0, r.output
    assert [p["source"] for p in json.loads(r.stdout)["products"]] == ["folder"]
    dest = tmp_path / "L1C"
    r = cli("fetch", dest, "--source", "folder", "--tile", "56JMM", env=env)
    assert r.exit_code == 0, r.output
    assert (dest / sample_l1c.name / "MTD_MSIL1C.xml").is_file()
    assert json.loads((dest / ".s2l2a-fetched" / f"{sample_l1c.stem}.json").read_text())["source"] == "folder"
    r = cli("fetch", dest, "--source", "folder", "--tile", "56JMM", env=env)  # complete: skipped
    assert r.exit_code == 0 and "fetched 0, already complete 1" in r.stdout, r.output
