"""Sen2Cor jobs: a bad band file is bad input naming the file, found before Sen2Cor is started."""

from __future__ import annotations

from pathlib import Path

import pytest

from s2l2a.campaign.failures import FailureClass
from s2l2a.processors.base import JobSettings, ProcessingFailed
from s2l2a.processors.sen2cor import Sen2CorProcessor
from s2l2a.safe import open_l1c
from sample_clones import clone_sample


@pytest.mark.parametrize("content, words", [(b"", "band B04 is empty (0 bytes)"),
                                            (b"Not Found\n", "band B04 holds text, not a JPEG 2000 image")])
def test_bad_band_is_bad_input_before_sen2cor_runs(standin: Path, tmp_path: Path, content: bytes,
                                                   words: str) -> None:
    product = clone_sample(tmp_path / "in")
    band = next(product.glob("GRANULE/*/IMG_DATA/*_B04.jp2"))
    band.unlink()                      # the clone hard-links the sample's images: replace, never write through
    band.write_bytes(content)
    log = tmp_path / "job.log"
    with pytest.raises(ProcessingFailed) as err:
        Sen2CorProcessor(l2a_process=standin).process(open_l1c(product), tmp_path / "st", JobSettings(cores=1), log)
    assert err.value.failure_class == FailureClass.BAD_INPUT
    assert str(err.value) == f"{band}: {words}" + ("" if content == b"" else f" ({len(content)} bytes)")
    assert not (tmp_path / "st" / "out").exists()        # Sen2Cor was never started
