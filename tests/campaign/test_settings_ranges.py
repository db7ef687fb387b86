"""Every number in s2l2a.toml is range-checked: finite, positive, within documented maxima.

Issue 10: ``timeout_s = nan``/``inf``, ``cores_per_job = 100000`` (rendered as
``--cpus-per-task=100000``) and ``memory_mb = 99999999`` were accepted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from s2l2a.campaign.settings import MAX_TIMEOUT_S, SETTINGS_FILE, CampaignSettings
from s2l2a.errors import ConfigError

S2L2A = Path(sys.executable).with_name("s2l2a")


def toml_with(tmp_path: Path, line: str, section: str = "resources") -> Path:
    (tmp_path / SETTINGS_FILE).write_text(f'[campaign]\nprocessor = "builtin"\n\n[{section}]\n{line}\n')
    return tmp_path


@pytest.mark.parametrize(("line", "key"), [
    ("timeout_s = nan", "timeout_s"),
    ("timeout_s = inf", "timeout_s"),
    ("timeout_s = -inf", "timeout_s"),
    ("timeout_s = 0", "timeout_s"),
    (f"timeout_s = {MAX_TIMEOUT_S + 1}", "timeout_s"),
    ("cores_per_job = 100000", "cores_per_job"),
    ("cores_per_job = 0", "cores_per_job"),
    ("memory_mb = 99999999", "memory_mb"),
    ("memory_mb = nan", "memory_mb"),
    ("memory_mb = 4096.5", "memory_mb"),
    ("workers = 1000000", "workers"),
    ("max_attempts = 0", "max_attempts"),
    ("min_free_mb = -1", "min_free_mb"),
    ("min_free_mb = inf", "min_free_mb"),
])
def test_out_of_range_numbers_are_refused_in_one_line(tmp_path: Path, line: str, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        CampaignSettings.load(toml_with(tmp_path, line))
    msg = str(e.value)
    assert "\n" not in msg and f"[resources] {key}" in msg and SETTINGS_FILE in msg


@pytest.mark.parametrize("line", ["timeout_s = 2592000", "timeout_s = 0.5", "cores_per_job = 1024",
                                  "memory_mb = 16777216", "min_free_mb = 0", "workers = 0"])
def test_values_at_the_limits_are_accepted(tmp_path: Path, line: str) -> None:
    CampaignSettings.load(toml_with(tmp_path, line))


def test_the_cli_refuses_a_nan_timeout_in_one_line_and_changes_nothing(tmp_path: Path) -> None:
    camp = tmp_path / "c"
    assert subprocess.run([S2L2A, "init", camp, "--processor", "builtin"], capture_output=True).returncode == 0
    text = (camp / SETTINGS_FILE).read_text().replace("timeout_s = 10800", "timeout_s = nan")
    (camp / SETTINGS_FILE).write_text(text)
    for cmd in (["plan", camp, tmp_path], ["run", camp]):
        r = subprocess.run([S2L2A, *map(str, cmd)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 1, (cmd, r.stderr)
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("Error: ") and "timeout_s" in r.stderr
        assert "Traceback" not in r.stderr
    assert (camp / SETTINGS_FILE).read_text() == text


def test_above_this_machine_is_a_note_not_an_error() -> None:
    s = CampaignSettings(cores_per_job=64, memory_mb=512 * 1024)   # a big cluster node's job
    s.validate()
    notes = s.above_machine(machine=(2, 24000))
    assert notes == ["cores_per_job = 64 is more than this machine's 2 core(s)",
                     "memory_mb = 524288 is more than this machine's 24000 MB"]
    assert CampaignSettings().above_machine(machine=(2, 24000)) == []
