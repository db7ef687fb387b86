"""Sen2Cor 3 from its zip: safe unpacking, the environment (given, built by conda/mamba, or a clear
refusal), the recorded interpreter, and 'sen2cor check' / 'sen2cor aux' on the 3.x layout."""

from __future__ import annotations

import json
import os
import stat
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from s2l2a.cli import main
from s2l2a.errors import ConfigError
from s2l2a.sen2cor.install import env_create_argv, install
from s2l2a.sen2cor.layout import describe
from s2l2a.sen2cor.locate import RECORD, find_l2a_process, launcher

from .conftest import make_zip


def _no_env_tools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A PATH with the basics but no conda, mamba or micromamba."""
    bin_dir = tmp_path / "pathbin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    return bin_dir


def test_install_with_a_given_python_records_it_and_check_reports_the_3x_layout(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _no_env_tools(monkeypatch, tmp_path)
    archive = make_zip(tmp_path / "dl")
    inst = install(archive, tmp_path / "opt", python=sys.executable)
    root = tmp_path / "opt" / "sen2cor_3.3.0_python_3.12"
    script = root / "SEN2COR_3" / "L2A_Process.py"
    assert inst.layout == "zip" and inst.version == "3.3.0" and inst.l2a_process == script
    assert inst.interpreter == Path(sys.executable).absolute()
    assert inst.products is not None and inst.products.text == "15.0"
    assert inst.cfg_dir == root / "SEN2COR_3" / "cfg" and inst.aux_data_dir == root / "SEN2COR_3" / "aux_data"
    record = json.loads((root / RECORD).read_text())
    assert record["python"] == sys.executable and record["version"] == "3.3.0" and record["layout"] == "zip"
    # found like every other install: the folder, the zip's folder, the script; run with the recorded python
    for where in (tmp_path / "opt", root, root / "SEN2COR_3", script):
        assert find_l2a_process(where, {"PATH": ""}) == script
    assert launcher(script) == [sys.executable, str(script)]
    # what is missing: ESA-CCI and CAMS (3.x reads both from aux_data)
    missing = "\n".join(inst.missing)
    assert "ESA-CCI" in missing and "CAMS daily data" in missing and "CAMS monthly data" in missing
    r = CliRunner().invoke(main, ["sen2cor", "check", str(tmp_path / "opt")])
    assert r.exit_code == 1, r.output
    assert f"Sen2Cor 3.3.0 at {root} (3.x zip layout)" in r.output
    assert f"interpreter: {sys.executable}" in r.output
    assert "supported L1C product versions: 15.0" in r.output
    assert "CAMS daily: " in r.output and "(MISSING)" in r.output and "CAMS covers: no CAMS files" in r.output
    # installing again is a no-op that keeps the recorded environment
    assert install(archive, tmp_path / "opt").interpreter == Path(sys.executable).absolute()


def test_environment_built_with_conda_from_requirements_yml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = _no_env_tools(monkeypatch, tmp_path)
    calls = tmp_path / "conda-calls.txt"
    conda = bin_dir / "conda"     # records its argv and makes the env's bin/python (this interpreter)
    conda.write_text(f"""#!{sys.executable}
import os, sys
from pathlib import Path
open({str(calls)!r}, "a").write(" ".join(sys.argv[1:]) + "\\n")
prefix = Path(sys.argv[sys.argv.index("--prefix") + 1])
(prefix / "bin").mkdir(parents=True)
os.symlink({sys.executable!r}, prefix / "bin" / "python")
""")
    conda.chmod(conda.stat().st_mode | stat.S_IXUSR)
    archive = make_zip(tmp_path / "dl")
    inst = install(archive, tmp_path / "opt")
    root = tmp_path / "opt" / "sen2cor_3.3.0_python_3.12"
    assert calls.read_text().split() == ["env", "create", "--prefix", str(root / "env"), "--file",
                                         str(root / "requirements.yml")]
    assert inst.interpreter == root / "env" / "bin" / "python"
    assert json.loads((root / RECORD).read_text())["environment"].startswith(f"{conda} env create --prefix")
    assert "env create" in (root / "s2l2a-install.log").read_text()
    assert env_create_argv(Path("/x/micromamba"), Path("r.yml"), Path("e")) == [
        "/x/micromamba", "create", "--yes", "--prefix", "e", "--file", "r.yml"]


def test_no_conda_and_no_python_is_one_line_naming_what_to_install(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _no_env_tools(monkeypatch, tmp_path)
    archive = make_zip(tmp_path / "dl")
    r = CliRunner().invoke(main, ["sen2cor", "install", str(archive), "--prefix", str(tmp_path / "opt")])
    assert r.exit_code == 1 and r.output.count("\n") == 1, r.output
    assert "no conda, mamba or micromamba on PATH" in r.output and "install Miniforge" in r.output
    assert "--python PATH" in r.output
    # the unpacked tree stays: the second try with --python does not unpack again
    r = CliRunner().invoke(main, ["sen2cor", "install", str(archive), "--prefix", str(tmp_path / "opt"),
                                  "--python", sys.executable])
    assert r.exit_code == 0, r.output
    assert "(3.x zip layout)" in r.output


def test_a_python_without_sen2cors_modules_is_refused_naming_the_module(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _no_env_tools(monkeypatch, tmp_path)
    script = "import osgeo_not_installed_anywhere\n"
    archive = make_zip(tmp_path / "dl", extra={"sen2cor_3.3.0_python_3.12/SEN2COR_3/L2A_Process.py": script})
    with pytest.raises(ConfigError) as err:
        install(archive, tmp_path / "opt", python=sys.executable)
    assert "cannot run it: ModuleNotFoundError: No module named 'osgeo_not_installed_anywhere'" in str(err.value)
    assert not (tmp_path / "opt" / "sen2cor_3.3.0_python_3.12" / RECORD).exists()


def test_zips_that_are_not_sen2cor_3_or_escape_the_target_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "photos.zip"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("a/b.txt", "x")
    with pytest.raises(ConfigError, match=r"not a Sen2Cor 3 zip \(no single SEN2COR_3/L2A_Process.py in it\)"):
        install(other, tmp_path / "o1")
    assert not (tmp_path / "o1").exists()
    evil = make_zip(tmp_path / "dl", extra={"sen2cor_3.3.0_python_3.12/../../escaped.txt": "x"})
    with pytest.raises(ConfigError, match="escaped.txt"):
        install(evil, tmp_path / "o2", python=sys.executable)
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "o2" / "sen2cor_3.3.0_python_3.12").exists()
    (tmp_path / "o3").mkdir()
    (tmp_path / "o3" / "mine.txt").write_text("keep")
    with pytest.raises(ConfigError, match="not empty and holds no Sen2Cor 3"):
        install(make_zip(tmp_path / "dl2"), tmp_path / "o3", python=sys.executable)
    assert (tmp_path / "o3" / "mine.txt").read_text() == "keep"


def test_aux_links_cams_and_check_shows_its_dates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_env_tools(monkeypatch, tmp_path)
    install(make_zip(tmp_path / "dl"), tmp_path / "opt", python=sys.executable)
    root = tmp_path / "opt" / "sen2cor_3.3.0_python_3.12"
    daily = tmp_path / "CAMS" / "daily"
    daily.mkdir(parents=True)
    for day in ("20250601", "20250602"):
        (daily / f"z_cams_c_ecmf_{day}000000_prod_fc_sfc_012_aod550.nc").write_bytes(b"CDF")
    r = CliRunner().invoke(main, ["sen2cor", "aux", "--cams-daily", str(daily), "--sen2cor", str(root)])
    assert r.exit_code == 0, r.output
    link = root / "SEN2COR_3" / "aux_data" / "ECMWF" / "daily"
    assert link.is_symlink() and link.resolve() == daily.resolve()
    assert "CAMS covers: daily 2025-06-01 .. 2025-06-02 (2 days)" in r.output
    # a real folder with files there is never replaced; an empty one or a link is
    monthly = root / "SEN2COR_3" / "aux_data" / "ECMWF" / "monthly"
    monthly.mkdir()
    (monthly / "cams_202506.nc").write_bytes(b"CDF")
    r = CliRunner().invoke(main, ["sen2cor", "aux", "--cams-monthly", str(daily), "--sen2cor", str(root)])
    assert r.exit_code == 1 and "already holds CAMS monthly files" in r.output
    assert (monthly / "cams_202506.nc").exists()
    r = CliRunner().invoke(main, ["sen2cor", "check", str(root)])
    assert "CAMS daily: " in r.output and "(2 dated file(s))" in r.output
    assert "CAMS covers: daily 2025-06-01 .. 2025-06-02 (2 days); monthly 2025-06 .. 2025-06 (1 months)" in r.output
    r = CliRunner().invoke(main, ["sen2cor", "aux", "--sen2cor", str(root)])
    assert r.exit_code == 1 and "nothing to install" in r.output


def test_cams_is_refused_for_2x(tmp_path: Path, install_factory) -> None:
    daily = tmp_path / "d"
    daily.mkdir()
    (daily / "cams_20250601.nc").write_bytes(b"CDF")
    root = install_factory("2.11.0")
    r = CliRunner().invoke(main, ["sen2cor", "aux", "--cams-daily", str(daily), "--sen2cor", str(root)])
    assert r.exit_code == 1 and "reads no CAMS data from its aux_data" in r.output
    assert describe(root).cams_dirs() == {}
