"""Finding Sen2Cor, reading its version from the help banner, knowing each version's layout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from s2l2a.cli import main
from s2l2a.errors import ConfigError
from s2l2a.sen2cor.layout import (
    LAND_COVER,
    SNOW_COND_NEW,
    SNOW_COND_OLD,
    WATER_BODIES,
    describe,
    parse_banner,
    traits,
)
from s2l2a.sen2cor.locate import locate

from .conftest import DATA


@pytest.mark.parametrize("name, version", [("L2A_Process-help-2.3.0.txt", "2.3.0"),
                                           ("L2A_Process-help-2.8.0.txt", "2.8.0"),
                                           ("L2A_Process-help-3.02.00.txt", "3.2.0")])
def test_version_from_real_help_banners(name: str, version: str) -> None:
    assert parse_banner((DATA / "help" / name).read_text()) == version


def test_traits_per_version() -> None:
    assert traits("2.5.5").python == "2.7" and not traits("2.5.5").has_pb_gipp
    assert traits("2.8").has_pb_gipp and traits("2.8").snow_condition_dir == SNOW_COND_OLD
    assert traits("2.9.0").srtm_merge_bug and traits("2.9.0").dem == "srtm"
    assert traits("2.10.1").snow_condition_dir == SNOW_COND_NEW and not traits("2.10.1").srtm_merge_bug
    assert traits("2.11").dem == "copernicus" and traits("02.12.03").dem == "copernicus"
    assert traits("3.02.00").python == "3"
    with pytest.raises(ConfigError):
        traits("two")


@pytest.mark.parametrize("version", ["2.5.5", "2.8.0", "2.9.0", "2.10.1", "2.11.0", "2.12.3", "3.2.0"])
def test_describe_each_version(install_factory, version: str) -> None:
    root = install_factory(version)
    inst = describe(root)
    assert inst.version == version
    assert inst.root == root.resolve()
    assert inst.cfg_dir == inst.package_dir / "cfg"
    assert inst.python == ("3.9" if version.startswith("3.") else "2.7")
    assert set(inst.templates) >= {"L2A_GIPP", "L2A_CAL_SC_GIPP", "L2A_CAL_AC_GIPP"}
    assert ("L2A_PB_GIPP" in inst.templates) == (version != "2.5.5")
    # fresh trees lack the ESA-CCI files, and 2.5.5/2.9 lack XSDs in these fixtures: both reported
    missing = "\n".join(inst.missing)
    assert LAND_COVER in missing and WATER_BODIES in missing and inst.traits.snow_condition_dir in missing
    assert ("GIPP schema" in missing) == (version in ("2.5.5", "2.9.0"))


def test_missing_package_tree_and_wrong_python(tmp_path: Path, install_factory) -> None:
    root = install_factory("2.11.0", python="3.8")
    inst = describe(root)
    assert any("bundled Python 3.8" in m for m in inst.missing)
    bare = tmp_path / "bare"
    (bare / "bin").mkdir(parents=True)
    (root / "bin" / "help.txt").rename(bare / "bin" / "help.txt")
    (root / "bin" / "L2A_Process").rename(bare / "bin" / "L2A_Process")
    inst = describe(bare)
    assert inst.package_dir is None and "package tree" in inst.missing[0]


def test_locate_on_path_and_errors(tmp_path: Path, install_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    root = install_factory("2.8.0")
    monkeypatch.setenv("PATH", f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert locate(None) == root / "bin" / "L2A_Process"
    assert locate(tmp_path) == root / "bin" / "L2A_Process"     # one Sen2Cor-* below the folder
    with pytest.raises(ConfigError, match="no such file"):
        locate(tmp_path / "nope")
    notsen2cor = tmp_path / "fake"
    notsen2cor.write_text("#!/bin/sh\necho hello\n")
    notsen2cor.chmod(0o755)
    with pytest.raises(ConfigError, match="no 'Version:'"):
        describe(notsen2cor)


def test_cli_check_lists_locations_and_missing(install_factory) -> None:
    root = install_factory("2.9.0")
    r = CliRunner().invoke(main, ["sen2cor", "check", str(root)])
    assert r.exit_code == 1, r.output
    assert "Sen2Cor 2.9.0" in r.output and "aux_data:" in r.output and "cfg:" in r.output
    assert "multi-tile merge bug" in r.output
    assert "missing:" in r.output and SNOW_COND_OLD in r.output


def test_cli_check_complete_install_exits_0(install_factory) -> None:
    root = install_factory("2.11.0")
    inst = describe(root)
    aux = inst.aux_data_dir
    (aux / LAND_COVER).write_bytes(b"x")
    (aux / WATER_BODIES).write_bytes(b"x")
    (aux / SNOW_COND_NEW).mkdir()
    r = CliRunner().invoke(main, ["sen2cor", "check", str(root)])
    assert r.exit_code == 0, r.output
    assert "nothing missing" in r.output and "Copernicus DEM" in r.output


def test_cli_check_not_found_is_one_line(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["sen2cor", "check", str(tmp_path / "none")])
    assert r.exit_code == 1
    assert r.output.strip().count("\n") == 0 and "no such file" in r.output
