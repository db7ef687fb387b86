"""Installing from a makeself ``.run`` file, refusing anything that is not one."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from s2l2a.cli import main
from s2l2a.errors import ConfigError
from s2l2a.sen2cor.install import install, is_makeself, version_from_name

from .conftest import make_install

MAKESELF = shutil.which("makeself") or shutil.which("makeself.sh")
needs_makeself = pytest.mark.skipif(MAKESELF is None, reason="makeself not installed (Debian package 'makeself')")


def build_run(tmp: Path, version: str = "2.10.1") -> Path:
    """A real makeself archive shaped like ESA's: the tree plus a setup script run after extraction."""
    content = tmp / "content"
    tree = make_install(content / "tree", version)
    # ESA's setup script finishes the install in the target folder; ours moves the tree into place
    (content / "setup.sh").write_text(
        "#!/bin/sh\nset -e\ncp -R tree/. .\nrm -rf tree\necho configured > .installed\n")
    (content / "setup.sh").chmod(0o755)
    assert tree.is_dir()
    digits = ".".join(f"{int(x):02d}" for x in version.split("."))
    run = tmp / f"Sen2Cor-{digits}-Linux64.run"
    subprocess.run([MAKESELF, "--quiet", str(content), str(run), "Sen2Cor test", "./setup.sh"],  # type: ignore[list-item]
                   check=True, stdout=subprocess.DEVNULL)
    return run


def test_refuses_non_makeself(tmp_path: Path) -> None:
    script = tmp_path / "Sen2Cor-02.10.01-Linux64.run"
    script.write_text("#!/bin/sh\ntouch pwned\n")
    html = tmp_path / "page.run"
    html.write_text("<html>404 not found</html>")
    assert not is_makeself(script) and not is_makeself(html)
    with pytest.raises(ConfigError, match="neither a makeself"):
        install(script, tmp_path / "x")
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "x").exists()
    r = CliRunner().invoke(main, ["sen2cor", "install", str(html), "--prefix", str(tmp_path / "y")])
    assert r.exit_code == 1 and r.output.strip().count("\n") == 0 and "neither a makeself" in r.output


def test_version_from_installer_name() -> None:
    assert version_from_name(Path("Sen2Cor-02.12.03-Linux64.run")) == "2.12.3"
    assert version_from_name(Path("setup.run")) is None


@needs_makeself
def test_install_real_makeself_archive_and_rerun(tmp_path: Path) -> None:
    run = build_run(tmp_path)
    assert is_makeself(run)
    prefix = tmp_path / "opt" / "sen2cor"
    inst = install(run, prefix)
    assert inst.version == "2.10.1"
    assert inst.root == prefix.resolve()
    assert (prefix / ".installed").read_text().strip() == "configured"    # setup script ran there
    assert inst.cfg_dir is not None and (inst.cfg_dir / "L2A_GIPP.xml").is_file()
    # idempotent: a second run keeps the install and does not run the installer again
    (prefix / ".installed").unlink()
    again = install(run, prefix)
    assert again.version == "2.10.1" and not (prefix / ".installed").exists()


@needs_makeself
def test_cli_install_prints_layout(tmp_path: Path) -> None:
    run = build_run(tmp_path, "2.9.0")
    r = CliRunner().invoke(main, ["sen2cor", "install", str(run), "--prefix", str(tmp_path / "s2c")])
    assert r.exit_code == 0, r.output
    assert "Sen2Cor 2.9.0" in r.output and "aux_data:" in r.output


@needs_makeself
def test_refuses_non_empty_foreign_target(tmp_path: Path) -> None:
    run = build_run(tmp_path)
    target = tmp_path / "busy"
    target.mkdir()
    (target / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match="not empty"):
        install(run, target)
    assert (target / "thesis.tex").read_text() == "precious"
