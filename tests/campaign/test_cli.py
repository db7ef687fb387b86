"""The init / plan / status / retry commands, through click's runner and the real console script."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from s2l2a.campaign.states import JobState
from s2l2a.campaign.store import AttemptOutcome, CampaignStore, ProductRecord
from s2l2a.cli import main

from .conftest import REPO, SAMPLE, STANDIN, clone_product


def run(*args: object) -> object:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_init_writes_settings_and_refuses_to_overwrite(tmp_path: Path) -> None:
    d = tmp_path / "camp"
    r = run("init", d, "--processor", "sen2cor", "--memory-mb", 6000, "--cores-per-job", 2,
            "--timeout", "90m", "--sen2cor", STANDIN)
    assert r.exit_code == 0, r.output
    data = tomllib.loads((d / "s2l2a.toml").read_text())
    assert data["campaign"] == {"name": "camp", "processor": "sen2cor", "output_dir": "L2A"}
    assert data["resources"] == {"memory_mb": 6000, "cores_per_job": 2, "timeout_s": 5400,
                                 "max_attempts": 3, "workers": 0}
    assert data["sen2cor"] == {"l2a_process": str(STANDIN.resolve())}
    assert (d / "campaign.sqlite").exists() and (d / "logs").is_dir()

    again = run("init", d, "--processor", "builtin")
    assert again.exit_code == 1
    assert again.stderr.count("\n") == 1 and "--force" in again.stderr and "Traceback" not in again.output
    forced = run("init", d, "--processor", "builtin", "--force")
    assert forced.exit_code == 0
    assert tomllib.loads((d / "s2l2a.toml").read_text())["campaign"]["processor"] == "builtin"


@pytest.mark.parametrize("args", [["--processor", "magic"], ["--memory-mb", "0"], ["--timeout", "soon"],
                                  ["--bogus"]])
def test_init_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    r = run("init", tmp_path / "c", *args)
    assert r.exit_code == 2 and not (tmp_path / "c" / "s2l2a.toml").exists()


def test_commands_on_a_non_campaign_are_one_line_user_errors(tmp_path: Path) -> None:
    for cmd in (["status"], ["retry"], ["plan", ".", "."]):
        r = run(cmd[0], tmp_path, *cmd[1:])
        assert r.exit_code == 1, (cmd, r.output)
        assert r.stderr.count("\n") == 1 and "not a campaign" in r.stderr and "Traceback" not in r.output


def test_plan_prints_the_report_and_rejected_lines_on_stderr(tmp_path: Path) -> None:
    d = tmp_path / "camp"
    run("init", d)
    root = tmp_path / "in"
    clone_product(root, "02.06")
    clone_product(root, "05.00", "20220101T000000")
    (root / "junk.SAFE").mkdir()
    r = run("plan", d, root)
    assert r.exit_code == 0
    assert r.stdout.strip() == ("found 3: 2 added, 0 already planned, 1 skipped duplicate, 0 skipped done, "
                                "1 rejected")
    assert r.stderr.splitlines() == [f"{root / 'junk.SAFE'}: not a Sentinel-2 product: no MTD_MSIL1C.xml, "
                                     "MTD_MSIL2A.xml or S2?_OPER_MTD_SAF*.xml inside"]
    r = run("plan", d, root, "--json")
    rep = json.loads(r.stdout)
    assert (rep["added"], rep["already_planned"], rep["rejected"]) == (0, 2, 1)
    st = json.loads(run("status", d, "--json").stdout)
    assert st["skipped"] == {"duplicate": 1, "output_exists": 0, "waiting": 0, "other": 0}
    assert "skipped: 1 duplicate (older reprocessing), 0 already converted" in run("status", d).stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run("plan", d, empty).exit_code == 1


def test_status_json_matches_the_database_and_retry_requeues(tmp_path: Path) -> None:
    d = tmp_path / "camp"
    run("init", d)
    with CampaignStore.open(d) as store:   # four acquisitions, three on one tile
        for i in range(4):
            store.add_product(ProductRecord(path=tmp_path / f"p{i}.SAFE", name=f"P{i}",
                                            tile="56JMM" if i < 3 else "33UUP",
                                            sensing_time=f"2022-01-0{i + 1}T00:00:00Z", baseline="05.00"))
        for jid, fc in ((1, "timeout"), (2, "dem_error")):
            log = store.log_path(jid)
            log.write_text("\n".join(f"{jid} log line {n}" for n in range(8)) + "\n")
            store.start_attempt(jid, "node1", 1000 + jid, log)
            store.finish_attempt(jid, AttemptOutcome("failed", fc, f"{fc} happened", exit_status=1))
        store.start_attempt(3, "node1", 1003, None)
        store.finish_attempt(3, AttemptOutcome("done", output_path=d / "L2A" / "x.SAFE"))
        expected = store.summary()

    r = run("status", d, "--json")
    assert r.exit_code == 0
    got = json.loads(r.stdout)
    assert got["counts"] == {"queued": 1, "running": 0, "done": 1, "failed": 2, "skipped": 0}
    assert got["tiles"] == expected["tiles"] and got["counts"] == expected["counts"]
    assert [(f["job_id"], f["failure_class"], f["log_tail"][-1]) for f in got["failures"]] == [
        (1, "timeout", "1 log line 7"), (2, "dem_error", "2 log line 7")]
    assert all(len(f["log_tail"]) == 5 for f in got["failures"])
    assert got["throughput_per_hour"] > 0 and got["eta_s"] is not None

    text = run("status", d)
    assert text.exit_code == 0
    assert "failed 2" in text.stdout and "dem_error happened" in text.stdout and "2 log line 7" in text.stdout
    assert "56JMM" in text.stdout and "33UUP" in text.stdout

    assert run("retry", d, "--class", "nonsense").exit_code == 2
    r = run("retry", d, "--class", "dem_error")
    assert r.exit_code == 0 and r.stdout.strip() == "requeued 1 failed job"
    r = run("retry", d, "--job", 3, "--job", 1)
    assert r.exit_code == 0 and r.stdout.strip() == "requeued 1 failed job"
    assert "job 3: is done" in r.stderr
    assert run("retry", d, "--job", 99).exit_code == 1
    with CampaignStore.open(d) as store:
        assert [j.state for j in store.jobs()] == [JobState.QUEUED, JobState.QUEUED, JobState.DONE,
                                                   JobState.QUEUED]


def test_real_console_script(tmp_path: Path) -> None:
    exe = REPO / ".venv" / "bin" / "s2l2a"
    d = tmp_path / "camp with space"
    subprocess.run([str(exe), "init", str(d), "--processor", "builtin"], check=True, capture_output=True,
                   timeout=60)
    p = subprocess.run([str(exe), "plan", str(d), str(SAMPLE)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("found 1: 1 added")
    p = subprocess.run([str(exe), "status", str(d), "--json"], capture_output=True, text=True, timeout=60)
    assert json.loads(p.stdout)["counts"]["queued"] == 1
    p = subprocess.run([str(exe), "status", str(tmp_path / "nope")], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr


def test_status_text_is_bounded_for_big_campaigns(tmp_path: Path, monkeypatch) -> None:
    from s2l2a.cli import status

    monkeypatch.setattr(status, "MAX_ROWS", 2)
    d = tmp_path / "camp"
    run("init", d)
    with CampaignStore.open(d) as store:
        for i in range(5):
            store.add_product(ProductRecord(path=tmp_path / f"p{i}", name=f"P{i}", tile=f"3{i}UUP",
                                            sensing_time="2022-01-01T00:00:00Z"))
            store.start_attempt(i + 1, "h", 1, None)
            store.finish_attempt(i + 1, AttemptOutcome("failed", "timeout" if i else "killed", "boom"))
    out = run("status", d).stdout
    assert "failed (5): timeout 4, killed 1" in out
    assert "... and 3 more tiles" in out and "... and 3 more failures" in out
    out = run("status", d, "--all").stdout
    assert "more tiles" not in out and all(f"job {i}  P{i - 1}" in out for i in range(1, 6))
