"""``s2l2a config DIR [KEY [VALUE]]`` and init's refusals (issue 10 items 8 and 10), as a user types them.

Every refused change leaves s2l2a.toml byte for byte as it was.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from s2l2a.campaign.settings import SETTINGS_FILE

from .conftest import STANDIN

S2L2A = Path(sys.executable).with_name("s2l2a")


def s2l2a(*args: object, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(S2L2A), *map(str, args)], capture_output=True, text=True, timeout=120, env=env,
                          cwd=cwd)


def no_sen2cor_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SEN2COR_BIN"}
    env["PATH"] = str(Path(sys.executable).parent)
    return env


@pytest.fixture
def camp(tmp_path: Path) -> Path:
    d = tmp_path / "camp"
    r = s2l2a("init", d, "--processor", "builtin")
    assert r.returncode == 0, r.stderr
    return d


def toml(camp: Path) -> dict:
    return tomllib.loads((camp / SETTINGS_FILE).read_text())


def test_show_all_one_and_change_typed_values(camp: Path) -> None:
    r = s2l2a("config", camp)
    assert r.returncode == 0
    assert r.stdout.splitlines()[:4] == ['campaign.name = "camp"', 'campaign.processor = "builtin"',
                                         'campaign.output_dir = "L2A"', "resources.memory_mb = 4096"]
    assert s2l2a("config", camp, "memory_mb").stdout == "4096\n"
    assert s2l2a("config", camp, "scratch_dir").stdout == "(unset)\n"

    r = s2l2a("config", camp, "resources.memory_mb", "8000")
    assert r.returncode == 0 and r.stdout == "resources.memory_mb = 8000  (was 4096)\n"
    r = s2l2a("config", camp, "timeout_s", "90m")
    assert r.stdout == "resources.timeout_s = 5400  (was 10800)\n"
    s2l2a("config", camp, "sen2cor.processing_baseline", "05.10")
    s2l2a("config", camp, "cluster.node_memory_mb", "65536")
    data = toml(camp)
    assert data["resources"]["memory_mb"] == 8000 and data["resources"]["timeout_s"] == 5400
    assert data["sen2cor"]["processing_baseline"] == "05.10"          # text, not the number 5.1
    assert data["cluster"]["node_memory_mb"] == 65536
    r = s2l2a("config", camp, "sen2cor.processing_baseline", "--unset")
    assert r.returncode == 0 and "processing_baseline" not in toml(camp)["sen2cor"]


@pytest.mark.parametrize(("key", "value", "says"), [
    ("timeout_s", "nan", "'nan' is not a duration"),
    ("timeout_s", "inf", "'inf' is not a duration"),
    ("resources.timeout_s", "31d", "[resources] timeout_s: must be a number of seconds above 0 and at most"),
    ("cores_per_job", "100000", "[resources] cores_per_job: must be an integer from 1 to 1024"),
    ("memory_mb", "99999999", "[resources] memory_mb: must be an integer from 256 to"),
    ("memory_mb", "nan", "resources.memory_mb: 'nan' is not a whole number"),
    ("memory_mb", "0", "[resources] memory_mb: must be an integer from 256"),
    ("campaign.processor", "magic", "[campaign] processor: must be one of"),
    ("campaign.colour", "red", "campaign.colour: unknown key; [campaign] has name, processor"),
    ("colour", "red", "'colour': give the section too"),
    (".", "1", "'.' is not a setting name"),
    ("..", "1", "'..' is not a setting name"),
    ("a\nb", "1", "'a\\nb' is not a setting name"),
    ("a'b", "1", "is not a setting name"),
    ("0", "1", "'0': give the section too"),
    ("nan", "1", "'nan': give the section too"),
    ("sen2cor.resolution", "30", "[sen2cor] resolution: must be one of 10, 20, 60"),
])
def test_refused_changes_are_one_line_and_change_nothing(camp: Path, key: str, value: str, says: str) -> None:
    before = (camp / SETTINGS_FILE).read_bytes()
    r = s2l2a("config", camp, key, value)
    assert r.returncode == 1, r.stdout
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("Error: ") and says in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert (camp / SETTINGS_FILE).read_bytes() == before


def test_init_sen2cor_without_one_is_refused_and_creates_nothing(tmp_path: Path) -> None:
    d = tmp_path / "c"
    r = s2l2a("init", d, "--processor", "sen2cor", env=no_sen2cor_env(tmp_path))
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert r.stderr.startswith("Error: processor sen2cor: no Sen2Cor L2A_Process found") and "--sen2cor PATH" in r.stderr
    assert not d.exists()
    r = s2l2a("init", d, "--sen2cor", tmp_path)          # a folder without L2A_Process
    assert r.returncode == 1 and "no executable Sen2Cor L2A_Process there" in r.stderr and not d.exists()


def test_processor_and_sen2cor_change_after_init(camp: Path, tmp_path: Path) -> None:
    env = no_sen2cor_env(tmp_path)
    r = s2l2a("config", camp, "campaign.processor", "sen2cor", env=env)
    assert r.returncode == 1 and f"set it first with 's2l2a config {camp} sen2cor.l2a_process PATH'" in r.stderr
    assert toml(camp)["campaign"]["processor"] == "builtin"
    r = s2l2a("config", camp, "sen2cor.l2a_process", tmp_path, env=env)
    assert r.returncode == 1 and "no executable Sen2Cor L2A_Process there" in r.stderr
    # a path typed relative to where the user is gets stored absolute
    r = s2l2a("config", camp, "sen2cor.l2a_process", Path(os.path.relpath(STANDIN, tmp_path)), env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert toml(camp)["sen2cor"]["l2a_process"] == str(STANDIN)
    r = s2l2a("config", camp, "campaign.processor", "sen2cor", env=env)
    assert r.returncode == 0 and r.stdout == 'campaign.processor = "sen2cor"  (was "builtin")\n'


def test_init_on_an_existing_campaign_points_at_config(camp: Path) -> None:
    r = s2l2a("init", camp, "--processor", "sen2cor")
    assert r.returncode == 1 and f"'s2l2a config {camp} KEY VALUE'" in r.stderr


def test_more_than_this_machine_is_stored_with_a_warning(camp: Path) -> None:
    r = s2l2a("config", camp, "cores_per_job", "512")     # a cluster node may have that many
    assert r.returncode == 0 and toml(camp)["resources"]["cores_per_job"] == 512
    assert r.stderr.startswith("Warning: cores_per_job = 512 is more than this machine's")
    assert "a local run refuses it" in r.stderr
