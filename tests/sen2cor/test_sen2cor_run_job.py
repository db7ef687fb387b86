"""The Sen2Cor processor through the campaign's one job path (``campaign.execute.run_job``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from s2l2a.campaign.failures import FailureClass
from s2l2a.safe import verify_l2a

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / \
    "S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042.SAFE"

execute = pytest.importorskip("s2l2a.campaign.execute")
jobspec = pytest.importorskip("s2l2a.campaign.jobspec")


def _spec(standin: Path, job_id: int) -> object:
    return jobspec.JobSpec(job_id=job_id, product_path=str(SAMPLE), tile="56JMM", processor="sen2cor",
                           processor_options={"l2a_process": str(standin)},
                           settings={"timeout_s": 60, "cores": 1})


def test_run_job_publishes_the_sen2cor_product(standin: Path, tmp_path: Path) -> None:
    out = execute.run_job(tmp_path, _spec(standin, 1))
    assert out.state == "done", out.message
    assert out.processor == "sen2cor" and out.processor_version == "02.08.00"
    final = Path(out.output_path)
    assert final.parent == tmp_path / "L2A" / "56JMM" and "_MSIL2A_" in final.name
    verify_l2a(final)
    assert "Application terminated successfully" in Path(out.log_path).read_text()


def test_run_job_records_the_failure_class(standin: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_FAIL_TILES", "56JMM:aux")
    out = execute.run_job(tmp_path, _spec(standin, 2))
    assert out.state == "failed" and out.failure_class == FailureClass.MISSING_AUX
    assert "ESACCI" in out.message and "\n" not in out.message and out.exit_status == 1
