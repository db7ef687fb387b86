"""The argv and environment of one Sen2Cor run, per release (exact lists, no shell)."""

from __future__ import annotations

from pathlib import Path

import pytest

from s2l2a.sen2cor.command import (
    Sen2CorOptionError,
    build_command,
    stage_input,
)
from s2l2a.sen2cor.version import info_for

V23 = info_for((2, 3, 0))
V28 = info_for((2, 8, 0))
V302 = info_for((3, 2, 0))
EXE = "/opt/Sen2Cor-02.08.00-Linux64/bin/L2A_Process"


@pytest.fixture
def l1c(tmp_path: Path) -> Path:
    p = tmp_path / "in" / "S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042.SAFE"
    p.mkdir(parents=True)
    return p


def test_2_8_minimal(tmp_path: Path, l1c: Path) -> None:
    st = tmp_path / "staging"
    cmd = build_command(EXE, V28, l1c, st, cores=3, base_env={"PATH": "/usr/bin", "HOME": "/home/u"})
    assert cmd.argv == [EXE, str(l1c), "--output_dir", f"{st}/out", "--work_dir", f"{st}/work"]
    assert cmd.env["SEN2COR_HOME"] == f"{st}/sen2cor_home"
    assert cmd.env["OMP_NUM_THREADS"] == "3" and cmd.env["OPENBLAS_NUM_THREADS"] == "3"
    assert cmd.env["PATH"] == "/usr/bin" and cmd.env["HOME"] == "/home/u"
    assert (st / "out").is_dir() and (st / "work").is_dir() and (st / "sen2cor_home" / "log").is_dir()
    assert not cmd.staged_input


def test_2_8_all_settings(tmp_path: Path, l1c: Path) -> None:
    st = tmp_path / "staging"
    gipp = tmp_path / "L2A_GIPP.xml"
    sc = tmp_path / "L2A_CAL_SC_GIPP.xml"
    gipp.write_text("<x/>")
    sc.write_text("<x/>")
    cmd = build_command(EXE, V28, l1c, st, resolution=20, processing_baseline="05.10",
                        gipp={"GIP_L2A": gipp, "GIP_L2A_SC": sc}, base_env={})
    assert cmd.argv == [EXE, str(l1c), "--output_dir", f"{st}/out", "--work_dir", f"{st}/work",
                        "--resolution", "20", "--processing_baseline", "05.10",
                        "--GIP_L2A", str(gipp), "--GIP_L2A_SC", str(sc)]
    # a plain path means the main user GIPP
    assert build_command(EXE, V28, l1c, st, gipp=gipp, base_env={}).argv[-2:] == ["--GIP_L2A", str(gipp)]


def test_3_02_resolution_30(tmp_path: Path, l1c: Path) -> None:
    st = tmp_path / "s"
    cmd = build_command(EXE, V302, l1c, st, resolution=30, base_env={})
    assert cmd.argv == [EXE, str(l1c), "--output_dir", f"{st}/out", "--work_dir", f"{st}/work",
                        "--resolution", "30"]
    with pytest.raises(Sen2CorOptionError, match="cannot process resolution 30"):
        build_command(EXE, V28, l1c, st, resolution=30, base_env={})


def test_3_3_runs_l2a_process_py_with_its_interpreter_and_options(tmp_path: Path, l1c: Path) -> None:
    st = tmp_path / "s"
    v33 = info_for((3, 3, 0))
    py, script = "/opt/s3/env/bin/python", "/opt/s3/sen2cor_3.3.0_python_3.12/SEN2COR_3/L2A_Process.py"
    cmd = build_command([py, script], v33, l1c, st, resolution=20, processing_baseline="05.11", tif=True,
                        sc_cog=True, sc_classic=True, base_env={})
    assert cmd.argv == [py, script, str(l1c), "--output_dir", f"{st}/out", "--work_dir", f"{st}/work",
                        "--resolution", "20", "--processing_baseline", "05.11", "--tif", "--sc_cog", "--sc_classic"]
    assert build_command([py, script], v33, l1c, st, base_env={}).argv[:3] == [py, script, str(l1c)]


@pytest.mark.parametrize("option,release", [("sc_cog", "3.0"), ("sc_classic", "3.0")])
def test_3x_options_are_refused_by_2x_in_one_line(tmp_path: Path, l1c: Path, option: str, release: str) -> None:
    with pytest.raises(Sen2CorOptionError) as err:
        build_command(EXE, V28, l1c, tmp_path / "s", base_env={}, **{option: True})
    assert str(err.value) == (f"Sen2Cor 02.08.00 has no --{option} option, so {option} = true cannot be honoured; "
                              f"remove it from [sen2cor] or install Sen2Cor {release} or newer")
    # --tif exists since 2.8, not in 2.3
    assert build_command(EXE, V28, l1c, tmp_path / "s", tif=True, base_env={}).argv[-1] == "--tif"
    with pytest.raises(Sen2CorOptionError, match="no --tif option"):
        build_command(EXE, V23, l1c, tmp_path / "t", tif=True, base_env={})


def test_2_3_links_input_into_out(tmp_path: Path, l1c: Path) -> None:
    st = tmp_path / "s"
    cmd = build_command(EXE, V23, l1c, st, resolution=60, base_env={})
    link = st / "out" / l1c.name
    assert cmd.argv == [EXE, str(link), "--resolution", "60"]
    assert link.is_symlink() and link.resolve() == l1c.resolve()
    assert cmd.output_dir == st / "out"


@pytest.mark.parametrize("kwargs,match", [
    ({"processing_baseline": "05.10"}, "has no --processing_baseline"),
    ({"gipp": {"GIP_L2A_PB": "PB"}}, "has no --GIP_L2A_PB"),
])
def test_2_3_refuses_what_it_cannot_do(tmp_path: Path, l1c: Path, kwargs: dict, match: str) -> None:
    if "gipp" in kwargs:
        f = tmp_path / "PB"
        f.write_text("<x/>")
        kwargs = {"gipp": {"GIP_L2A_PB": f}}
    with pytest.raises(Sen2CorOptionError, match=match) as err:
        build_command(EXE, V23, l1c, tmp_path / "s", base_env={}, **kwargs)
    assert "\n" not in str(err.value)


def test_bad_settings(tmp_path: Path, l1c: Path) -> None:
    with pytest.raises(Sen2CorOptionError, match="dd.dd"):
        build_command(EXE, V28, l1c, tmp_path / "s", processing_baseline="5.1", base_env={})
    with pytest.raises(Sen2CorOptionError, match="does not exist"):
        build_command(EXE, V28, l1c, tmp_path / "s", gipp=tmp_path / "nope.xml", base_env={})
    with pytest.raises(Sen2CorOptionError, match="unknown GIPP kind"):
        build_command(EXE, V28, l1c, tmp_path / "s", gipp={"FOO": tmp_path}, base_env={})


def test_input_with_spaces_is_staged_under_a_link(tmp_path: Path) -> None:
    src = tmp_path / "my data" / "S2B_MSIL1C_20220413T150759_N0400_R025_T33XWJ_20220413T170000.SAFE"
    src.mkdir(parents=True)
    st = tmp_path / "staging"
    cmd = build_command(EXE, V28, src, st, base_env={})
    link = st / "input" / src.name
    assert cmd.argv[1] == str(link) and " " not in cmd.argv[1]
    assert link.is_symlink() and link.resolve() == src.resolve()
    assert cmd.staged_input
    # idempotent (a retried job reuses its staging dir)
    assert stage_input(src, st) == (link, True)
    with pytest.raises(Sen2CorOptionError, match="spaces"):
        stage_input(src, tmp_path / "staging dir")


def test_gipp_folder_and_stems(tmp_path: Path, l1c: Path) -> None:
    """The per-campaign copies written by ``sen2cor.gipp`` (``<stem>.xml``) pass straight through."""
    folder = tmp_path / "gipp"
    folder.mkdir()
    for stem in ("L2A_PB_GIPP", "L2A_GIPP", "L2A_CAL_SC_GIPP"):
        (folder / f"{stem}.xml").write_text("<x/>")
    st = tmp_path / "s"
    want = ["--GIP_L2A", str(folder / "L2A_GIPP.xml"), "--GIP_L2A_SC", str(folder / "L2A_CAL_SC_GIPP.xml"),
            "--GIP_L2A_PB", str(folder / "L2A_PB_GIPP.xml")]
    assert build_command(EXE, V28, l1c, st, gipp=folder, base_env={}).argv[6:] == want
    by_stem = {"L2A_PB_GIPP": folder / "L2A_PB_GIPP.xml", "L2A_GIPP": folder / "L2A_GIPP.xml",
               "L2A_CAL_SC_GIPP": folder / "L2A_CAL_SC_GIPP.xml"}
    assert build_command(EXE, V28, l1c, st, gipp=by_stem, base_env={}).argv[6:] == want
    with pytest.raises(Sen2CorOptionError, match="has no --GIP_L2A_PB"):
        build_command(EXE, V23, l1c, st, gipp=folder, base_env={})
    with pytest.raises(Sen2CorOptionError, match="no L2A_GIPP.xml"):
        build_command(EXE, V28, l1c, st, gipp=tmp_path / "s", base_env={})
