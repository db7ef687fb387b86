"""Campaign settings: round trip, defaults, one-line errors naming the key, JobSettings mapping."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomli_w

from s2l2a.campaign.settings import SETTINGS_FILE, CampaignSettings
from s2l2a.errors import ConfigError


def write(tmp_path: Path, data: dict) -> Path:
    (tmp_path / SETTINGS_FILE).write_bytes(tomli_w.dumps(data).encode())
    return tmp_path


def test_defaults_round_trip(tmp_path: Path) -> None:
    s = CampaignSettings(name="c", sen2cor={"l2a_process": "/opt/Sen2Cor/bin/L2A_Process", "resolution": 20},
                         extra={"slurm": {"partition": "short"}})
    s.save(tmp_path)
    back = CampaignSettings.load(tmp_path)
    assert back == s
    assert (back.memory_mb, back.cores_per_job, back.timeout_s, back.max_attempts, back.workers) == (
        4096, 1, 10800, 3, 0)
    assert back.processor == "auto" and back.output_dir == "L2A" and back.scratch_dir is None
    assert back.extra == {"slurm": {"partition": "short"}}     # other parts' sections survive


def test_missing_sections_take_defaults(tmp_path: Path) -> None:
    s = CampaignSettings.load(write(tmp_path, {"campaign": {"processor": "builtin"}}))
    assert s.processor == "builtin" and s.memory_mb == 4096 and s.sen2cor == {}


@pytest.mark.parametrize(("data", "key"), [
    ({"campaign": {"processor": "magic"}}, "[campaign] processor"),
    ({"campaign": {"colour": "red"}}, "[campaign] colour"),
    ({"campaign": {"output_dir": ""}}, "[campaign] output_dir"),
    ({"resources": {"memory_mb": "lots"}}, "[resources] memory_mb"),
    ({"resources": {"memory_mb": 10}}, "[resources] memory_mb"),
    ({"resources": {"cores_per_job": 0}}, "[resources] cores_per_job"),
    ({"resources": {"timeout_s": -1}}, "[resources] timeout_s"),
    ({"resources": {"timeout_s": True}}, "[resources] timeout_s"),
    ({"resources": {"max_attempts": 0}}, "[resources] max_attempts"),
    ({"resources": {"workers": -2}}, "[resources] workers"),
    ({"resources": {"gpus": 1}}, "[resources] gpus"),
    ({"sen2cor": {"resolution": 30}}, "[sen2cor] resolution"),
    ({"sen2cor": {"processing_baseline": "5.1"}}, "[sen2cor] processing_baseline"),
    ({"builtin": {"output_format": "PNG"}}, "[builtin] output_format"),
    ({"resources": 5}, "[resources]"),
])
def test_invalid_values_name_the_key_in_one_line(tmp_path: Path, data: dict, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        CampaignSettings.load(write(tmp_path, data))
    msg = str(e.value)
    assert "\n" not in msg and key in msg and SETTINGS_FILE in msg


def test_unreadable_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a campaign"):
        CampaignSettings.load(tmp_path)
    (tmp_path / SETTINGS_FILE).write_text("[campaign\nname=")
    with pytest.raises(ConfigError, match="invalid TOML") as e:
        CampaignSettings.load(tmp_path)
    assert "\n" not in str(e.value)


def test_job_settings() -> None:
    s = CampaignSettings(processor="sen2cor", memory_mb=8000, cores_per_job=2, timeout_s=3600,
                         sen2cor={"resolution": 20, "processing_baseline": "05.10", "gipp": "/g.xml"},
                         builtin={"output_format": "JP2"})
    js = s.job_settings()
    assert (js.cores, js.memory_mb, js.timeout_s, js.resolution, js.processing_baseline) == (
        2, 8000, 3600.0, 20, "05.10")
    assert js.extra == {"resolution": 20, "processing_baseline": "05.10", "gipp": "/g.xml"}
    b = s.job_settings("builtin")
    assert (b.output_format, b.resolution, b.processing_baseline, b.extra) == ("JP2", None, None,
                                                                               {"output_format": "JP2"})
    assert s.processor_options() == s.sen2cor and s.processor_options("builtin") == s.builtin


def test_paths_are_relative_to_the_campaign(tmp_path: Path) -> None:
    s = CampaignSettings()
    assert s.output_root(tmp_path) == tmp_path.resolve() / "L2A"
    assert s.scratch_root(tmp_path) == tmp_path.resolve() / "staging"
    s.scratch_dir = "/scratch/me"
    assert s.scratch_root(tmp_path) == Path("/scratch/me")


def test_other_sections_are_kept_and_written_through_extra(tmp_path: Path) -> None:
    s = CampaignSettings(name="c")
    s.extra["cluster"] = {"queue": "short", "run_limit": "2h"}   # what the cluster tests' helpers do
    s.save(tmp_path)
    back = CampaignSettings.load(tmp_path)
    assert back.extra["cluster"] == {"queue": "short", "run_limit": "2h"} == back.section("cluster")
    assert "sen2cor" not in back.extra and back.sen2cor == {} and back.builtin == {}
    with pytest.raises(ConfigError, match=r"\[cluster\] qeue: unknown key"):
        CampaignSettings.from_dict({"cluster": {"qeue": "short"}})
