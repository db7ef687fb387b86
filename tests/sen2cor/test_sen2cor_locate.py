"""Finding L2A_Process (configured path, install folder, $SEN2COR_BIN, PATH) and asking it its version."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from s2l2a.errors import ConfigError
from s2l2a.sen2cor import locate as locate_mod
from s2l2a.sen2cor.locate import find_l2a_process, locate, read_info
from s2l2a.sen2cor.version import Sen2CorVersionError

HELP_28 = Path(__file__).resolve().parents[1] / "data" / "sen2cor" / "help" / "L2A_Process-help-2.8.0.txt"


def _exe(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_find_l2a_process(tmp_path: Path) -> None:
    root = tmp_path / "Sen2Cor-02.11.00-Linux64"
    exe = _exe(root / "bin" / "L2A_Process")
    pkg = root / "lib" / "python3.8" / "site-packages" / "sen2cor"
    pkg.mkdir(parents=True)
    other = _exe(tmp_path / "path" / "L2A_Process")
    env = {"PATH": str(other.parent)}
    assert find_l2a_process(exe, env) == exe
    assert find_l2a_process(root, env) == exe                  # an install folder
    assert find_l2a_process(tmp_path / "missing", env) is None  # configured but wrong: no fallback
    assert find_l2a_process(None, {**env, "SEN2COR_BIN": str(pkg)}) == exe  # L2A_Bashrc's SEN2COR_BIN
    assert find_l2a_process(None, env) == other                # PATH
    assert find_l2a_process(None, {"PATH": str(tmp_path / "empty")}) is None
    os.chmod(exe, 0o644)
    assert find_l2a_process(exe, env) is None                  # not executable


def test_relative_install_folder_gives_an_absolute_executable(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    exe = _exe(tmp_path / "Sen2Cor-02.08.00-Linux64" / "bin" / "L2A_Process")
    monkeypatch.chdir(tmp_path)
    assert find_l2a_process("Sen2Cor-02.08.00-Linux64", {"PATH": ""}) == exe


def test_locate_says_what_was_looked_at(tmp_path: Path) -> None:
    empty = {"PATH": str(tmp_path / "empty")}
    with pytest.raises(ConfigError, match=r"^L2A_Process not found \(no \$SEN2COR_BIN, not on PATH\)"):
        locate(None, empty)
    with pytest.raises(ConfigError, match="no such file or directory"):
        locate(tmp_path / "nope", empty)
    with pytest.raises(ConfigError, match="no bin/L2A_Process or SEN2COR_3/L2A_Process.py in this directory"):
        locate(tmp_path, empty)
    plain = tmp_path / "L2A_Process"
    plain.write_text("#!/bin/sh\n")
    with pytest.raises(ConfigError, match="not an executable file"):
        locate(plain, empty)
    two = [_exe(tmp_path / f"Sen2Cor-0{v}-Linux64" / "bin" / "L2A_Process") for v in (8, 9)]
    with pytest.raises(ConfigError, match="no bin/L2A_Process"):   # two installs below: which one?
        locate(tmp_path, empty)
    os.chmod(two[1], 0o644)
    assert locate(tmp_path, empty) == two[0]                         # the one executable install below


@pytest.mark.parametrize("odd", [".", "..", "a\nb", "it's", "0", "nan"])
def test_odd_configured_paths_find_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, odd: str) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_l2a_process(odd, {"PATH": ""}) is None
    with pytest.raises(ConfigError):
        locate(odd, {"PATH": ""})


def _script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def test_read_info_parses_the_banner_once_per_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(locate_mod, "_INFO_CACHE", {})
    calls = tmp_path / "calls"
    exe = _script(tmp_path / "L2A_Process", f'echo x >> "{calls}"; echo "HOME=$SEN2COR_HOME" >&2; '
                                            f'cat "{HELP_28}"')
    info = read_info(exe)
    assert info.number == (2, 8, 0) and info.supports("--output_dir")
    assert read_info(exe) is info and calls.read_text() == "x\n"


def test_read_info_failures_are_one_line_config_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(locate_mod, "_INFO_CACHE", {})
    silent = _script(tmp_path / "silent", "echo hello; exit 2")
    with pytest.raises(Sen2CorVersionError, match=r"silent: no 'Version:' in its --help banner \(exit 2\)"):
        read_info(silent)
    with pytest.raises(ConfigError, match="cannot be started"):
        read_info(tmp_path / "missing")
    plain = tmp_path / "plain"
    plain.write_text("#!/bin/sh\n")
    with pytest.raises(ConfigError, match="cannot be started"):
        read_info(plain)


def test_read_info_hang_kills_the_whole_process_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(locate_mod, "_INFO_CACHE", {})
    pidfile = tmp_path / "child.pid"
    hang = _script(tmp_path / "hang", f'sleep 60 & echo $! > "{pidfile}"; wait')
    t0 = time.monotonic()
    with pytest.raises(Sen2CorVersionError, match=r"did not answer within 0.5 s"):
        read_info(hang, timeout_s=0.5)
    assert time.monotonic() - t0 < 10
    child = int(pidfile.read_text())
    for _ in range(50):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the grandchild of a hung --help survived")
