"""One error style and one name for the campaign argument across commands (issue 10 item 10)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from s2l2a.cli import COMMANDS, main

# commands whose first argument is a campaign directory
CAMPAIGN_COMMANDS = [["init"], ["plan"], ["run"], ["status"], ["retry"], ["check"], ["config"], ["report"],
                     ["stac"], ["dem"], ["fetch"], ["sen2cor", "gipp"], ["cluster", "cancel"],
                     ["cluster", "extend"], ["rebuild"]]


@pytest.mark.parametrize("cmd", CAMPAIGN_COMMANDS, ids=" ".join)
def test_the_campaign_argument_is_called_dir(cmd: list[str]) -> None:
    if cmd[0] not in COMMANDS:
        pytest.skip(f"{cmd[0]} is not installed")
    r = CliRunner().invoke(main, [*cmd, "--help"], prog_name="s2l2a")
    assert r.exit_code == 0, r.output
    usage = r.output.splitlines()[0]
    assert usage.startswith(f"Usage: s2l2a {' '.join(cmd)} [OPTIONS] DIR"), usage
    assert "CAMPAIGN" not in r.output


@pytest.mark.parametrize("cmd", [["status"], ["retry"], ["run"], ["check"], ["config"], ["report"], ["stac"],
                                 ["dem"], ["sen2cor", "gipp"], ["plan", "."]], ids=" ".join)
def test_a_folder_that_is_no_campaign_gives_one_error_line(tmp_path: Path, cmd: list[str]) -> None:
    args = [cmd[0], *cmd[1:2], str(tmp_path)] if cmd[0] == "sen2cor" else [cmd[0], str(tmp_path), *cmd[1:]]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 1, r.output
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("Error: "), r.stderr
    assert r.exception is None or isinstance(r.exception, SystemExit)


def test_sen2cor_setup_commands_use_the_same_style(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["sen2cor", "check", str(tmp_path / "nowhere")])
    assert r.exit_code == 1 and r.stderr.startswith("Error: ") and r.stderr.count("\n") == 1
