"""Fixtures for the outputs tests: the two real L2A test products and a small campaign around them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from s2l2a.campaign.settings import CampaignSettings
from s2l2a.campaign.store import AttemptOutcome, CampaignStore, ProductRecord

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "outputs"
L2A_0214 = DATA / "S2A_MSIL2A_20200219T112111_N0214_R037_T29RKH_20200219T123947.SAFE"
L2A_0500 = DATA / "S2A_MSIL2A_20200219T112111_N0500_R037_T29RKH_20230401T101010.SAFE"
L2A_N0400_META = (REPO / "tests" / "data" / "safe" / "l2a_metadata" / "stactools-sentinel2"
                  / "S2B_MSIL2A_20220413T150759_N0400_R025_T33XWJ_20220414T082126.SAFE")
SAMPLE_L1C = REPO / "data" / "sample" / "S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042.SAFE"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def l2a_copy(tmp_path: Path) -> Path:
    """A writable copy of the 05.00-encoded product (tests that delete or damage it)."""
    dest = tmp_path / "L2A" / L2A_0500.name
    shutil.copytree(L2A_0500, dest)
    return dest


def make_campaign(root: Path) -> Path:
    """A campaign with two done jobs (real L2A copies), one failed job with a hostile log, one queued."""
    root.mkdir(parents=True)
    CampaignSettings(name="outputs-test").save(root)
    l1c_dir = root / "L1C"
    l1c_dir.mkdir()
    records = []
    names = [("S2A_MSIL1C_20200219T112111_N0214_R037_T29RKH_20200219T123947", L2A_0214),
             ("S2A_MSIL1C_20200219T112111_N0500_R037_T29RKH_20230401T101010", L2A_0500),
             ("S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042", None),
             ("S2B_MSIL1C_20200301T112111_N0214_R037_T29RKJ_20200301T123947", None)]
    for i, (name, _l2a) in enumerate(names):
        if name.startswith("S2A_MSIL1C_20180629"):
            path = SAMPLE_L1C
        else:
            path = l1c_dir / f"{name}.SAFE"
            path.mkdir()
        records.append(ProductRecord(path=path, name=name, tile=name.split("_")[5][1:],
                                     sensing_time=f"2020-02-19T11:21:{i:02d}Z", baseline="02.14", mission=name[:3]))
    with CampaignStore.open(root, create=True) as store:
        store.add_products(records)
        logs = root / "logs"
        logs.mkdir(exist_ok=True)
        for job_id, (_name, l2a) in enumerate(names[:3], start=1):
            log = logs / f"{job_id}.log"
            store.start_attempt(job_id, "node1", 100 + job_id, str(log), start=f"2026-01-01T10:0{job_id}:00Z")
            if l2a is not None:
                dest = root / "L2A" / "29RKH" / l2a.name
                shutil.copytree(l2a, dest)
                log.write_text("processing\ndone\n")
                store.finish_attempt(job_id, AttemptOutcome(
                    "done", output_path=str(dest), processor="sen2cor", processor_version="2.11.0",
                    end=f"2026-01-01T10:{job_id + 3:02d}:30Z"))
            else:
                log.write_text(f"step 1\nTraceback: {HOSTILE}\nL2A_Process exit 1\n")
                store.finish_attempt(job_id, AttemptOutcome(
                    "failed", failure_class="dem_error", message=f"DEM missing {HOSTILE}", exit_status=1,
                    processor="sen2cor", processor_version="2.11.0", end="2026-01-01T10:09:00Z"))
    gipp = root / "sen2cor" / "gipp"
    gipp.mkdir(parents=True)
    (gipp / "gipp.json").write_text('{"directory": "x", "version": "2.11.0", "files": {"L2A_GIPP": "L2A_GIPP.xml"}, '
                                    '"sha256": {"L2A_GIPP": "' + "ab" * 32 + '"}}')
    return root


@pytest.fixture
def campaign(tmp_path: Path) -> Path:
    return make_campaign(tmp_path / "camp")
