"""Bad band files (zero-byte, text, truncated, undecodable) are bad input naming the file, and the batch goes on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from s2l2a.campaign.failures import FailureClass
from s2l2a.processors.base import JobSettings, ProcessingFailed
from s2l2a.processors.builtin.pipeline import read_bands
from s2l2a.processors.builtin.processor import BuiltinProcessor
from s2l2a.safe import open_l1c
from s2l2a.safe.bands import band_file_problem, check_band_files
from s2l2a.safe.errors import BandFileError
from sample_clones import SAMPLE, clone_sample

REPO = Path(__file__).resolve().parents[2]
S2L2A = Path(sys.executable).with_name("s2l2a")
B04 = next(SAMPLE.glob("GRANULE/*/IMG_DATA/*_B04.jp2"))

#: how each kind of damage is made from the real band's bytes, and what the message then says
DAMAGE = {
    "zero-byte": (lambda data: b"", "band B04 is empty (0 bytes)"),
    "text": (lambda data: b"<html><body>503 Service Unavailable</body></html>\n",
             "band B04 holds text, not a JPEG 2000 image (50 bytes)"),
    "truncated": (lambda data: data[: len(data) // 2],
                  f"band B04 is truncated ({B04.stat().st_size // 2} bytes, its JPEG 2000 boxes need"),
}


def damage_band(product: Path, kind: str) -> Path:
    """Replace (never write through: clones hard-link the sample's images) the clone's B04."""
    band = next(product.glob("GRANULE/*/IMG_DATA/*_B04.jp2"))
    data = band.read_bytes()
    band.unlink()
    band.write_bytes(DAMAGE[kind][0](data))
    return band


def test_real_band_files_pass_the_structure_check() -> None:
    """No false alarm on any real JPEG 2000 in the repository (ESA-written and GDAL-written)."""
    shared = REPO.parent / "shared" / "realdata"    # more real files where the team's shared data is present
    files = sorted(REPO.glob("data/**/*.jp2")) + sorted(REPO.glob("tests/data/**/*.jp2")) + sorted(shared.glob("**/*.jp2"))
    assert len(files) >= 16
    assert {str(p): band_file_problem(p) for p in files} == {str(p): None for p in files}


def test_structure_check_says_what_is_wrong(tmp_path: Path) -> None:
    data = B04.read_bytes()
    cases = {
        "zero.jp2": b"",
        "text.jp2": b"Error 404: Not Found\n",
        "half.jp2": data[: len(data) // 2],
        "header.jp2": data[:30],                              # cut inside the first boxes
        "nocode.jp2": data[: data.find(b"jp2c") - 4],         # every box complete, the code stream gone
        "binary.jp2": bytes(range(256)) * 4,
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    (tmp_path / "dir.jp2").mkdir()
    got = {p.name: band_file_problem(p) for p in sorted(tmp_path.iterdir())}
    assert got == {
        "binary.jp2": "is not a JPEG 2000 image (1024 bytes, unknown signature)",
        "dir.jp2": "is not a regular file",
        "half.jp2": f"is truncated ({len(data) // 2} bytes, its JPEG 2000 boxes need {len(data)})",
        "header.jp2": "is truncated (30 bytes, its JPEG 2000 boxes need 36)",
        "nocode.jp2": f"is truncated or damaged ({data.find(b'jp2c') - 4} bytes, no JPEG 2000 code stream)",
        "text.jp2": "holds text, not a JPEG 2000 image (21 bytes)",
        "zero.jp2": "is empty (0 bytes)",
    }
    assert band_file_problem(tmp_path / "missing.jp2") == "is missing"
    with pytest.raises(BandFileError) as err:
        check_band_files({"B02": B04, "B04": tmp_path / "zero.jp2"})
    assert str(err.value) == f"{tmp_path / 'zero.jp2'}: band B04 is empty (0 bytes)"


def test_undecodable_code_stream_is_bad_input_naming_the_file(tmp_path: Path) -> None:
    """Boxes intact, code stream zeroed: only the decoder notices; its words replace GDAL's 'See previous'."""
    data = B04.read_bytes()
    start = data.find(b"jp2c") + 4
    bad = tmp_path / "T56JMM_20180629T000241_B04.jp2"
    bad.write_bytes(data[:start] + bytes(len(data) - start))
    assert band_file_problem(bad) is None
    with pytest.raises(BandFileError) as err:
        read_bands({"B04": bad, "B02": B04})
    msg = str(err.value)
    assert msg.startswith(f"{bad}: band B04 cannot be decoded (") and "See previous exception" not in msg
    assert "lacks the end marker" in msg and "\n" not in msg


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_builtin_processor_fails_bad_input(tmp_path: Path, kind: str) -> None:
    product = clone_sample(tmp_path / "in")
    band = damage_band(product, kind)
    log = tmp_path / "job.log"
    with pytest.raises(ProcessingFailed) as err:
        BuiltinProcessor().process(open_l1c(product), tmp_path / "staging", JobSettings(cores=1), log)
    assert err.value.failure_class == FailureClass.BAD_INPUT
    assert str(err.value).startswith(f"{band}: {DAMAGE[kind][1]}")
    assert "FAILED (bad input)" in log.read_text()


def test_campaign_run_classifies_each_bad_band_and_goes_on(tmp_path: Path) -> None:
    """Through the console script: three products with a damaged B04 fail as bad_input naming the file; the
    good one in the same campaign is done."""
    l1c = tmp_path / "l1c"
    bands = {}
    for day, kind in enumerate(sorted(DAMAGE)):
        product = clone_sample(l1c, day=day)
        bands[product.name[: -len(".SAFE")]] = (kind, damage_band(product, kind))
    good = clone_sample(l1c, day=len(DAMAGE)).name[: -len(".SAFE")]
    camp = tmp_path / "camp"

    def s2l2a(*args: object) -> subprocess.CompletedProcess:
        return subprocess.run([str(S2L2A), *map(str, args)], capture_output=True, text=True, timeout=300)

    assert s2l2a("init", camp, "--processor", "builtin", "--memory-mb", 1024).returncode == 0
    assert s2l2a("plan", camp, l1c).returncode == 0
    run = s2l2a("run", camp)
    assert "1 done, 3 failed of 4" in run.stdout + run.stderr, run.stdout + run.stderr
    status = json.loads(s2l2a("status", camp, "--json").stdout)
    assert status["counts"]["done"] == 1 and status["counts"]["failed"] == 3
    failures = {f["product"]: f for f in status["failures"]}
    assert set(failures) == set(bands) and good not in failures
    for name, (kind, band) in bands.items():
        f = failures[name]
        assert f["failure_class"] == "bad_input", f
        assert f"{band}: {DAMAGE[kind][1]}" in f["message"], f["message"]
        assert "See previous exception" not in f["message"]
