"""Sen2CorProcessor end to end against the stand-in: success, every failure mode, staging rules."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from s2l2a.campaign.failures import FailureClass
from s2l2a.processors.base import JobSettings, ProcessingFailed, Processor
from s2l2a.processors.sen2cor import Sen2CorProcessor
from s2l2a.safe import open_l1c, verify_l2a

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / \
    "S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042.SAFE"
NAME = re.compile(r"^S2A_MSIL2A_20180629T000241_N9999_R030_T56JMM_\d{8}T\d{6}\.SAFE$")


@pytest.fixture(scope="module")
def l1c():
    return open_l1c(SAMPLE)


def _settings(**kw) -> JobSettings:
    return JobSettings(**{"cores": 2, "timeout_s": 60, **kw})


def test_success_returns_one_verified_product(standin: Path, tmp_path: Path, l1c) -> None:
    proc = Sen2CorProcessor(l2a_process=standin)
    assert isinstance(proc, Processor)
    assert proc.version() == "02.08.00"
    staging, log = tmp_path / "staging", tmp_path / "logs" / "1.log"
    res = proc.process(l1c, staging, _settings(), log)
    assert NAME.match(res.product_dir.name), res.product_dir.name
    assert res.product_dir.parent == staging / "out"
    assert res.processor == "sen2cor" and res.processor_version == "02.08.00" and res.log_path == log
    product = verify_l2a(res.product_dir)
    assert product.granules[0].images[10]["B04"].stat().st_size > 0
    argv = res.details["argv"]
    assert argv[:6] == [str(standin), str(SAMPLE.absolute()), "--output_dir", str((staging / "out").absolute()),
                        "--work_dir", str((staging / "work").absolute())]
    # Sen2Cor's own log went to the per-job SEN2COR_HOME, threads were pinned to the job's cores
    own_logs = list((staging / "sen2cor_home" / "log").glob("L2A_*.log"))
    assert own_logs and "STANDIN: Number of threads: 2" in own_logs[0].read_text()
    text = log.read_text()
    assert text.rstrip().endswith("Progress[%]: 100.00 : Application terminated successfully.")
    assert "Sen2Cor. Version" not in text and "Sen2Cor). Version: 2.8.0, created: 2019.02.20, supporting Level-1C " \
        "product version 14.2 - 14.5 started ..." in text
    assert not (staging / "work").exists()


def test_resolution_20_and_baseline(standin: Path, tmp_path: Path, l1c) -> None:
    proc = Sen2CorProcessor(l2a_process=standin, resolution=20)
    res = proc.process(l1c, tmp_path / "st", _settings(processing_baseline="05.10"), tmp_path / "l.log")
    assert "_N0510_" in res.product_dir.name
    assert res.details["resolutions"] == [20, 60]
    assert not (next((res.product_dir / "GRANULE").iterdir()) / "IMG_DATA" / "R10m").exists()
    assert res.details["argv"][-4:] == ["--resolution", "20", "--processing_baseline", "05.10"]


def test_input_path_with_spaces_is_staged(standin: Path, tmp_path: Path) -> None:
    src = tmp_path / "my products" / SAMPLE.name
    shutil.copytree(SAMPLE, src)
    staging = tmp_path / "staging"
    res = Sen2CorProcessor(l2a_process=standin).process(src, staging, _settings(), tmp_path / "l.log")
    assert res.details["staged_input"] is True
    assert res.details["argv"][1] == str((staging / "input" / SAMPLE.name).absolute())
    verify_l2a(res.product_dir)


@pytest.mark.parametrize("mode,expected,words", [
    ("exit", FailureClass.OTHER, "exit 1: Product S2A_MSIL1C"),
    ("empty", FailureClass.EMPTY_OUTPUT, "output is incomplete"),
    ("dem", FailureClass.DEM_ERROR, "L2A_DEM: error: DEM tile"),
    ("aux", FailureClass.MISSING_AUX, "ESACCI-LC-L4-WB-Map"),
    ("kill", FailureClass.KILLED, "killed by SIGKILL"),
    ("oom", FailureClass.OUT_OF_MEMORY, "MemoryError"),
])
def test_failure_modes(standin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, l1c,
                       mode: str, expected: FailureClass, words: str) -> None:
    monkeypatch.setenv("STANDIN_FAIL", mode)
    log = tmp_path / "job.log"
    with pytest.raises(ProcessingFailed) as err:
        Sen2CorProcessor(l2a_process=standin).process(l1c, tmp_path / "st", _settings(), log)
    exc = err.value
    assert exc.failure_class == expected
    msg = str(exc)
    assert "\n" not in msg and words in msg and str(log) in msg, msg
    assert exc.log_path == log
    assert exc.exit_status == {"empty": 0, "kill": -9}.get(mode, 1)


def test_timeout(standin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, l1c) -> None:
    monkeypatch.setenv("STANDIN_FAIL", "hang")
    with pytest.raises(ProcessingFailed) as err:
        Sen2CorProcessor(l2a_process=standin, kill_grace_s=1).process(
            l1c, tmp_path / "st", _settings(timeout_s=1.0), tmp_path / "job.log")
    assert err.value.failure_class == FailureClass.TIMEOUT
    assert re.search(r"timed out after 1 s \(limit 1 s\), process group killed \(last: Progress\[%\]: 17\.00 : "
                     r"PID-\d+, L2A_AtmCorr: end of interpolation LUTs, elapsed time\[s\]: [\d.]+, total: [\d:.]+\); "
                     r"see ", str(err.value)), str(err.value)


def test_only_selected_tiles_fail(standin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, l1c) -> None:
    monkeypatch.setenv("STANDIN_FAIL_TILES", "33XWJ:exit,56JMM:dem")
    monkeypatch.setenv("STANDIN_STATE_DIR", str(tmp_path / "state"))
    proc = Sen2CorProcessor(l2a_process=standin)
    with pytest.raises(ProcessingFailed) as err:
        proc.process(l1c, tmp_path / "a", _settings(), tmp_path / "a.log")
    assert err.value.failure_class == FailureClass.DEM_ERROR
    # with STANDIN_STATE_DIR each product fails once: the retry succeeds
    assert verify_l2a(proc.process(l1c, tmp_path / "b", _settings(), tmp_path / "b.log").product_dir)


def test_unsupported_setting_is_one_line(standin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         l1c) -> None:
    monkeypatch.setenv("STANDIN_VERSION", "2.8.0")
    with pytest.raises(ProcessingFailed) as err:
        Sen2CorProcessor(l2a_process=standin, resolution=30).process(l1c, tmp_path / "s", _settings(),
                                                                     tmp_path / "l.log")
    assert "Sen2Cor 02.08.00 cannot process resolution 30 m" in str(err.value)


@pytest.mark.parametrize("selected,expected", [("2.10", "02.10.01"), ("2.11", "02.11.00"),
                                               ("3.02", "03.02.00"), ("2.3.0", "02.03.00")])
def test_version_from_banner(standin: Path, monkeypatch: pytest.MonkeyPatch, selected: str,
                             expected: str) -> None:
    monkeypatch.setenv("STANDIN_VERSION", selected)
    proc = Sen2CorProcessor(l2a_process=standin)
    assert proc.version() == expected
    assert proc.info().supports("--output_dir") == (selected != "2.3.0")


def test_2_3_writes_into_staging(standin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, l1c) -> None:
    monkeypatch.setenv("STANDIN_VERSION", "2.3.0")
    res = Sen2CorProcessor(l2a_process=standin).process(l1c, tmp_path / "st", _settings(), tmp_path / "l.log")
    assert res.product_dir.parent == (tmp_path / "st" / "out").absolute()
    assert res.details["argv"] == [str(standin), str((tmp_path / "st" / "out" / SAMPLE.name).absolute())]


def test_no_sen2cor_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEN2COR_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ProcessingFailed) as err:
        Sen2CorProcessor().version()
    msg = str(err.value)
    assert "\n" not in msg and "no Sen2Cor" in msg and "s2l2a config DIR sen2cor.l2a_process PATH" in msg
    assert "l2a_process" in msg and "s2l2a.toml" in msg
    with pytest.raises(ProcessingFailed, match="no executable Sen2Cor"):
        Sen2CorProcessor(l2a_process=tmp_path / "nope").version()


def test_found_via_sen2cor_bin_and_path(standin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEN2COR_BIN", str(standin.parent))
    assert Sen2CorProcessor().executable == standin
    monkeypatch.delenv("SEN2COR_BIN")
    monkeypatch.setenv("PATH", f"{standin.parent}{os.pathsep}{os.environ['PATH']}")
    assert Sen2CorProcessor().executable == standin


def test_error_only_in_sen2cor_own_log_is_kept_and_classified(standin: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch, l1c) -> None:
    monkeypatch.setenv("STANDIN_FAIL", "dem")
    monkeypatch.setenv("STANDIN_QUIET", "1")
    log = tmp_path / "job.log"
    with pytest.raises(ProcessingFailed) as err:
        Sen2CorProcessor(l2a_process=standin).process(l1c, tmp_path / "st", _settings(), log)
    assert err.value.failure_class == FailureClass.DEM_ERROR
    text = log.read_text()
    stdout_part = text.split("---- Sen2Cor's own")[0]
    assert "DEM" not in stdout_part                       # the console said nothing specific ...
    assert "L2A_DEM: error: DEM tile" in text             # ... the kept tail of its own log did


@pytest.mark.parametrize("mode,expected,shown", [
    ("user_product", FailureClass.BAD_INPUT, "exit 1: L2A_Config: Error in creating L2A User Product — Sen2Cor "
     "could not build the output tree from this L1C"),
    ("xml", FailureClass.BAD_INPUT, "exit 1: wrong identifier for xml structure; AttributeError: 'NoneType' object "
     "has no attribute 'fatal' (in L2A_Config.py setSchemes) — "),
    ("valueerror", FailureClass.OTHER, "exit 1: ValueError: zero-size array to reduction operation maximum which "
     "has no identity (in L2A_Tables.py sceneCouldHaveSnow); see "),
    ("dem_shade", FailureClass.DEM_ERROR, "exit 1: IndexError: boolean index did not match indexed array along axis "
     "0; size of axis is 3691 but size of cor (in L2A_BandIO_Landsat.py gdalDEM_Shade_Cast) — "),
])
def test_real_failure_texts_replayed_by_the_standin(standin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    l1c, mode: str, expected: FailureClass, shown: str) -> None:
    """The stand-in prints the real Sen2Cor logs; the user sees Sen2Cor's meaningful line, not a frame."""
    monkeypatch.setenv("STANDIN_FAIL", mode)
    with pytest.raises(ProcessingFailed) as err:
        Sen2CorProcessor(l2a_process=standin).process(l1c, tmp_path / "st", _settings(), tmp_path / "job.log")
    assert err.value.failure_class == expected
    assert f"Sen2Cor 02.08.00 {shown}" in str(err.value), str(err.value)
    assert "\n" not in str(err.value) and "File \"" not in str(err.value)


def test_3_1_0_replays_its_crash_on_a_psd_15_product(standin: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """3.1.0 given a PSD 15 product crashes with its real traceback (s2l2a never sends it one: its range is
    14.2 - 14.9); the classifier names the cause."""
    from s2l2a.sen2cor.classify import classify_failure, telling_line
    from sample_clones import clone_sample
    from sen2cor_setup.conftest import with_datastrip

    product = with_datastrip(clone_sample(tmp_path / "l1c"), "15.00.00")
    monkeypatch.setenv("STANDIN_VERSION", "3.1.0")
    r = subprocess.run([str(standin), str(product), "--output_dir", str(tmp_path / "out")], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1
    assert r.stdout.startswith("Sen2Cor. Version: 03.01.00, created: 2024.02.29, supporting Level-1C product "
                               "version 14.2 - 14.9 started ...\nProduct version: 14.9\n")
    assert classify_failure(r.returncode, r.stdout) == FailureClass.BAD_INPUT
    assert telling_line(r.stdout).startswith("AttributeError: 'bool' object has no attribute 'SPACECRAFT_NAME' "
                                             "(in L2A_Config.py getEntriesFromDatastrip) — ")
    with pytest.raises(ProcessingFailed) as err:   # through the processor: refused before it runs
        Sen2CorProcessor(l2a_process=standin).process(product, tmp_path / "st", _settings(), tmp_path / "j.log")
    assert err.value.failure_class == FailureClass.BAD_INPUT
    assert str(err.value).startswith("product version 15.0 is outside what Sen2Cor 3.1.0 reads (14.2 - 14.9)")
