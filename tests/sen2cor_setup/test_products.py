"""Which Sen2Cor reads which product: the product (PSD) version from the metadata, a campaign's installs,
and the products 'plan' refuses in one line naming the product version and the installs' ranges."""

from __future__ import annotations

import sys
from pathlib import Path

from click.testing import CliRunner

from s2l2a.campaign.settings import CampaignSettings
from s2l2a.campaign.store import CampaignStore
from s2l2a.cli import main
from s2l2a.safe.psd import ProductVersion, read_product_version
from s2l2a.sen2cor.installs import choose, load
from sample_clones import SAMPLE, clone_sample

from .conftest import with_datastrip


def test_product_version_from_the_metadata(tmp_path: Path) -> None:
    # the sample has no datastrip metadata: its namespace gives the major version only
    assert read_product_version(SAMPLE) == ProductVersion(14, None, "namespace of MTD_MSIL1C.xml")
    p = with_datastrip(clone_sample(tmp_path / "a"))
    assert read_product_version(p) == ProductVersion(14, 8, "datastrip schema in MTD_DS.xml")
    assert str(read_product_version(p)) == "14.8" and str(read_product_version(SAMPLE)) == "14.x"
    q = with_datastrip(clone_sample(tmp_path / "b", day=1), "15.00.00")
    assert read_product_version(q).number == (15, 0)
    assert read_product_version(tmp_path) is None


def test_each_product_goes_to_the_install_that_reads_it(installs: tuple[Path, Path]) -> None:
    old, new = installs
    both = load({"l2a_process": str(old), "installs": [str(new)]})
    assert [i.label for i in both] == ["Sen2Cor 2.11.0 (14.2 - 14.9)", "Sen2Cor 3.3.0 (15.0)"]
    assert choose(both, ProductVersion(14, 8))[0] is both[0]
    assert choose(both, ProductVersion(14))[0] is both[0]            # minor unknown: the first that may
    assert choose(both, ProductVersion(15, 0))[0] is both[1]
    chosen, why = choose(both, ProductVersion(15, 1))
    assert chosen is None and why == ("product version 15.1 is outside what every configured Sen2Cor reads: "
                                      "Sen2Cor 2.11.0 (14.2 - 14.9), Sen2Cor 3.3.0 (15.0)")
    assert both[1].launcher == (sys.executable, str(new / "SEN2COR_3" / "L2A_Process.py"))


def _campaign(tmp_path: Path, old: Path) -> Path:
    camp = tmp_path / "camp"
    r = CliRunner().invoke(main, ["init", str(camp), "--processor", "sen2cor", "--sen2cor", str(old)])
    assert r.exit_code == 0, r.output
    return camp


def test_plan_refuses_what_its_sen2cor_cannot_read_and_takes_it_with_a_second_install(
        tmp_path: Path, installs: tuple[Path, Path]) -> None:
    old, new = installs
    l1c = tmp_path / "l1c"
    with_datastrip(clone_sample(l1c, day=0))                  # PSD 14.8
    clone_sample(l1c, day=1)                                  # namespace only: 14.x
    newer = with_datastrip(clone_sample(l1c, day=2), "15.00.00")
    camp = _campaign(tmp_path, old)
    r = CliRunner().invoke(main, ["plan", str(camp), str(l1c)])
    assert r.exit_code == 0, r.output
    assert f"{newer}: product version 15.0 is outside what Sen2Cor 2.11.0 reads (14.2 - 14.9)" in r.output
    with CampaignStore.open(camp) as store:
        assert sorted(j.name[11:19] for j in store.jobs()) == ["20180629", "20180630"]
    # with the 3.3 install listed too, a second plan takes it
    settings = CampaignSettings.load(camp)
    settings.sen2cor["installs"] = [str(new)]
    settings.save(camp)
    r = CliRunner().invoke(main, ["plan", str(camp), str(l1c)])
    assert r.exit_code == 0, r.output
    assert "outside" not in r.output
    with CampaignStore.open(camp) as store:
        assert len(store.jobs()) == 3
