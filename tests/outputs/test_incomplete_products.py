"""No STAC item, report row or index from an incomplete L2A (issue 10, item 3).

The campaign fixture holds two done jobs whose L2A are copies of real products; one loses its
B04 behind the campaign's back, once as an older output (no manifest: its metadata lists the
file) and once as an s2l2a output (the manifest written at publish lists it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from s2l2a.campaign.exports import report_data, write_campaign_stac
from s2l2a.campaign.store import CampaignStore
from s2l2a.cli import main
from s2l2a.outputs.derive import DeriveError, DeriveSpec, derive_product
from s2l2a.outputs.manifest import write_manifest
from s2l2a.safe import IncompleteProductError


def done_outputs(campaign: Path) -> list[Path]:
    with CampaignStore.open(campaign) as store:
        return sorted(Path(j.output_path) for j in store.jobs("done") if j.output_path)


@pytest.mark.parametrize("with_manifest", [False, True])
def test_stac_writes_no_item_without_b04(campaign: Path, with_manifest: bool) -> None:
    complete, damaged = done_outputs(campaign)
    if with_manifest:
        write_manifest(complete)
        write_manifest(damaged)
    b04 = next(damaged.rglob("*_B04_10m.tif"))
    b04.unlink()
    with pytest.raises(IncompleteProductError, match="B04_10m"):
        write_campaign_stac(campaign)  # without a list for skipped products: refused, nothing half-written
    r = CliRunner().invoke(main, ["stac", str(campaign)])
    assert r.exit_code == 0, r.output
    skip_lines = [ln for ln in r.stderr.splitlines() if ln.startswith("no STAC item")]
    assert len(skip_lines) == 1 and damaged.name in skip_lines[0] and b04.name in skip_lines[0]
    items = [json.loads(f.read_text()) for f in (campaign / "stac").glob("*/*.json")]
    assert [i["id"] for i in items] == [complete.name.removesuffix(".SAFE")]
    assert all("B04" in i["assets"] for i in items)


def test_report_flags_an_incomplete_product(campaign: Path) -> None:
    complete, damaged = done_outputs(campaign)
    write_manifest(damaged)
    next(damaged.rglob("*_SCL_20m.tif")).unlink()
    rows = {Path(r.output).name: r for r in report_data(campaign)["rows"] if r.output}
    assert rows[complete.name].problem is None
    problem = rows[damaged.name].problem or ""
    assert problem.startswith(damaged.name) and "_SCL_20m.tif is missing" in problem
    assert rows[damaged.name].tci_img is None  # nothing read from it
    r = CliRunner().invoke(main, ["report", str(campaign)])
    assert r.exit_code == 0 and "incomplete output:" in (campaign / "report.html").read_text()


def test_derive_refuses_an_incomplete_product(campaign: Path, tmp_path: Path) -> None:
    _complete, damaged = done_outputs(campaign)
    write_manifest(damaged)
    band = next(damaged.rglob("*_B08_10m.tif"))
    band.write_bytes(band.read_bytes()[:100])
    with pytest.raises(DeriveError, match=r"incomplete L2A .*B08_10m\.tif has 100 bytes"):
        derive_product(damaged, tmp_path / "derived", DeriveSpec())
    assert not (tmp_path / "derived").exists() or not any((tmp_path / "derived").iterdir())
