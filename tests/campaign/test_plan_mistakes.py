"""``plan`` meeting ordinary mistakes, zipped and AWS inputs, and a reprocessing planned while its
older product runs, the way a user meets them (issue 10, items 4 and 10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from s2l2a.campaign.progress import ProgressLog
from s2l2a.campaign.store import CampaignStore
from s2l2a.cli import main
from sample_clones import clone_sample, sample_name

from .conftest import REPO

S2L2A = Path(sys.executable).with_name("s2l2a")
AWS = REPO / "tests" / "data" / "safe" / "l1c_metadata" / "stactools-sentinel2" / \
    "S2A_OPER_MSI_L1C_TL_SGS__20181231T203637_A018414_T10SDG"


def cli(*args: object) -> object:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def s2l2a(*args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(S2L2A), *map(str, args)], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def camp(tmp_path: Path) -> Path:
    c = tmp_path / "camp"
    assert cli("init", c, "--processor", "builtin").exit_code == 0
    return c


def zip_product(product: Path, dest: Path, name: str | None = None) -> Path:
    """A zip as CDSE delivers it: one top folder ``<name>.SAFE/``."""
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / (name or f"{product.name}.zip")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for p in sorted(product.rglob("*")):
            z.write(p, f"{product.name}/{p.relative_to(product)}")
    return out


def rejected(camp: Path) -> dict[str, str]:
    with CampaignStore.open(camp) as store:
        return {r.path: r.reason for r in store.rejections()}


def test_a_root_that_does_not_exist_is_an_error_with_a_hint(camp: Path, tmp_path: Path) -> None:
    for root in (tmp_path / "wrong" / "path", "nonexistent-folder"):
        r = cli("plan", camp, root)
        assert r.exit_code == 1 and r.stdout == ""
        assert r.stderr == (f"Error: {root}: does not exist; give the folder holding the L1C products "
                            "(S2*_MSIL1C_*.SAFE folders or their .zip)\n")
    assert rejected(camp) == {}                                  # a typo is not an input
    good = tmp_path / "in"
    clone_sample(good)
    r = cli("plan", camp, good, tmp_path / "typo")              # nothing is planned from the good one either
    assert r.exit_code == 1
    with CampaignStore.open(camp) as store:
        assert store.counts()["queued"] == 0


def test_a_plan_that_adds_nothing_exits_non_zero_with_a_hint(camp: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli("plan", camp, empty)
    assert r.exit_code == 1 and r.stderr.startswith(f"Error: no L1C product found under {empty}; give the folder")
    root = tmp_path / "in"
    clone_sample(root)
    assert cli("plan", camp, root).exit_code == 0
    r = cli("plan", camp, root)                                   # again: nothing new, not an error
    assert r.exit_code == 4
    assert r.stdout == "found 1: 0 added, 1 already planned, 0 skipped duplicate, 0 skipped done, 0 rejected\n"
    assert r.stderr == f"nothing new under {root}: 1 product(s) planned before; next: s2l2a run {camp}\n"
    junk = tmp_path / "junk"
    (junk / "notes.SAFE").mkdir(parents=True)
    r = cli("plan", camp, junk)                                   # only unusable inputs
    assert r.exit_code == 1
    assert r.stderr.splitlines()[-1] == (f"Error: nothing planned: every input under {junk} was rejected "
                                         f"(reasons above, also in 's2l2a status {camp}')")


def test_dot_as_root_never_takes_the_campaigns_own_files_for_inputs(camp: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    clone_sample(tmp_path / "in")
    monkeypatch.chdir(tmp_path)                                  # the campaign lies under "."
    assert cli("plan", camp, ".").exit_code == 0
    assert s2l2a("run", camp, "--processor", "noop").returncode == 0
    (camp / "aux").mkdir()
    with zipfile.ZipFile(camp / "aux" / "esacci.zip", "w") as z:  # the campaign's own zips are no input
        z.writestr("ESACCI-LC-L4-WB-Map-150m-P13Y-2000-v4.0.tif", "x")
    r = cli("plan", camp, ".")
    assert r.exit_code == 4 and r.stderr.startswith("nothing new under .:"), r.output   # no L2A "rejected"
    assert rejected(camp) == {}


def test_rejected_inputs_are_kept_listed_and_logged(camp: Path, tmp_path: Path) -> None:
    root = tmp_path / "in"
    clone_sample(root)
    notes = root / "notes.SAFE"
    notes.mkdir()
    odd = root / "odd\nname 'q'.SAFE"                            # a newline and quotes in a name
    odd.mkdir()
    truncated = clone_sample(root / "t", day=3)
    (truncated / "MTD_MSIL1C.xml").write_text("<truncated")
    r = cli("plan", camp, root)
    assert r.exit_code == 0
    assert r.stdout.strip().endswith("3 rejected")               # counted in the summary
    assert len(r.stderr.splitlines()) == 3                       # one line each on stderr
    kept = rejected(camp)
    assert set(kept) == {str(notes), str(odd), str(truncated)}
    assert kept[str(notes)].startswith("not a Sentinel-2 product: no MTD_MSIL1C.xml")
    assert all("\n" not in reason for reason in kept.values())
    # status: count and list, text and JSON
    st = json.loads(cli("status", camp, "--json").stdout)
    assert [r["path"] for r in st["rejected"]] == sorted(kept) and all(r["reason"] for r in st["rejected"])
    text = cli("status", camp).stdout
    assert "rejected inputs (3)" in text and f"{notes}: not a Sentinel-2 product" in text
    # progress.log: one "rejected" line per input
    events = [e for e in ProgressLog(camp / "progress.log").read() if e.state == "rejected"]
    assert len(events) == 3 and {e.detail.split(": ")[0] for e in events} >= {str(notes), str(truncated)}
    # the report has a section for them
    html = (Path(cli("report", camp, "-o", tmp_path / "r.html").stdout.strip())).read_text()
    assert "<h2>Rejected inputs (3)</h2>" in html and str(notes) in html
    # planning again keeps one row per input; a fixed input leaves the list
    (truncated / "MTD_MSIL1C.xml").unlink()
    clone_sample(tmp_path / "fix", day=3)
    os.replace(tmp_path / "fix" / truncated.name / "MTD_MSIL1C.xml", truncated / "MTD_MSIL1C.xml")
    r = cli("plan", camp, root)
    assert r.exit_code == 0 and "1 added" in r.stdout
    assert set(rejected(camp)) == {str(notes), str(odd)}


def test_zipped_products_are_unpacked_into_the_campaign_and_planned(camp: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    product = clone_sample(src, day=1)
    root = tmp_path / "downloads"
    zipped = zip_product(product, root)                                   # <name>.SAFE.zip
    zip_product(clone_sample(src, day=2), root, name="3f1c-uuid.zip")     # any file name
    before = zipped.read_bytes()
    r = cli("plan", camp, root)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == ("found 2: 2 added, 0 already planned, 0 skipped duplicate, 0 skipped done, "
                                "0 rejected, 2 unpacked from zip")
    with CampaignStore.open(camp) as store:
        paths = sorted(j.path for j in store.jobs())
    assert paths == [(camp / "inputs" / f"{sample_name(d)}.SAFE").resolve() for d in (1, 2)]
    assert zipped.read_bytes() == before                                  # the zip is left alone
    assert not [p for p in (camp / "inputs").iterdir() if p.name.startswith(".unpack-")]
    mtime = (paths[0] / "MTD_MSIL1C.xml").stat().st_mtime_ns
    r = cli("plan", camp, root)                                           # once only
    assert r.exit_code == 4 and "2 already planned" in r.stdout and "unpacked" not in r.stdout
    assert (paths[0] / "MTD_MSIL1C.xml").stat().st_mtime_ns == mtime
    r = s2l2a("run", camp, "--processor", "noop")
    assert r.returncode == 0 and "2 done, 0 failed of 2" in r.stdout, r.stderr


def test_zips_that_are_not_usable_products_are_rejected_in_one_line(camp: Path, tmp_path: Path,
                                                                    standin_l2a: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    evil = root / "S2A_MSIL1C_evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr(f"{sample_name(day=5)}.SAFE/MTD_MSIL1C.xml", "<x/>")
        z.writestr("../../escaped.txt", "gotcha")
    zip_product(standin_l2a, root)                                          # an L2A
    with zipfile.ZipFile(root / "dem.zip", "w") as z:                       # not a product at all
        z.writestr("srtm_01_02.tif", "x")
    good = zip_product(clone_sample(tmp_path / "src"), root)
    (root / "broken.SAFE.zip").write_bytes(good.read_bytes()[:5000])       # a torn download
    r = cli("plan", camp, root)
    assert r.exit_code == 0 and "1 added" in r.stdout and "4 rejected" in r.stdout, r.output
    kept = rejected(camp)
    assert set(kept) == {str(evil), str(root / f"{standin_l2a.name}.zip"), str(root / "dem.zip"),
                         str(root / "broken.SAFE.zip")}
    assert "'..'" in kept[str(evil)]
    assert "an L2A product, expected L1C" in kept[str(root / f"{standin_l2a.name}.zip")]
    assert "no .SAFE folder" in kept[str(root / "dem.zip")]
    assert "not a readable zip" in kept[str(root / "broken.SAFE.zip")]
    assert not list(tmp_path.rglob("escaped.txt"))
    assert sorted(p.name for p in (camp / "inputs").iterdir() if not p.name.startswith(".s2l2a")) == [
        f"{sample_name()}.SAFE"]


def test_an_aws_tile_folder_gets_the_refusal_line(camp: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "in"
    shutil.copytree(AWS, root / "tiles" / "10" / "S" / "DG" / "2018" / "12" / "31" / "0")
    r = cli("plan", camp, root)
    assert r.exit_code == 1
    aws = root / "tiles" / "10" / "S" / "DG" / "2018" / "12" / "31" / "0"
    line = (f"{aws}: AWS sentinel-s2 tile folder layout (tileInfo.json), not a SAFE product; "
            "fetch the SAFE product instead")
    assert r.stderr.splitlines()[0] == line
    assert rejected(camp) == {str(aws): line.split(": ", 1)[1]}


# -- a newer reprocessing ---------------------------------------------------------------------------

def test_a_newer_reprocessing_planned_while_the_older_runs_waits_then_replaces_it(camp: Path,
                                                                                 tmp_path: Path) -> None:
    with open(camp / "s2l2a.toml", "a", encoding="utf-8") as f:
        f.write("\n[noop]\nsleep_s = 2.0\n")
    old, new = tmp_path / "old", tmp_path / "new"
    clone_sample(old, baseline="02.06")
    clone_sample(new, baseline="05.00", generation="20220101T000000")
    assert s2l2a("plan", camp, old).returncode == 0
    run = subprocess.Popen([str(S2L2A), "run", str(camp), "--processor", "noop"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(e.state == "running" for e in ProgressLog(camp / "progress.log").read()):
        assert time.monotonic() < deadline and run.poll() is None, run.communicate()
        time.sleep(0.05)
    r = s2l2a("plan", camp, old, new)                           # while job 1 (02.06) runs
    assert r.returncode == 0, r.stderr
    assert "1 added" in r.stdout and "1 waiting" in r.stdout
    assert r.stderr.strip() == (f"{sample_name(baseline='05.00', generation='20220101T000000')}: waits for job 1 "
                                f"({sample_name()}, an older reprocessing) that is running; plan again after "
                                "that run to queue it")
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0 and "1 done, 0 failed of 1" in out, err   # the older one is not disturbed
    st = json.loads(s2l2a("status", camp, "--json").stdout)
    assert st["counts"]["done"] == 1 and st["skipped"]["waiting"] == 1

    r = s2l2a("plan", camp, old, new)                           # after the run: queued, the older superseded
    assert r.returncode == 0 and "1 skipped duplicate" in r.stdout, r.stdout + r.stderr
    r = s2l2a("run", camp, "--processor", "noop")
    assert r.returncode == 0 and "1 done, 0 failed of 1" in r.stdout, r.stderr   # never a failed job
    tile = camp / "L2A" / "56JMM"
    products = sorted(p.name for p in tile.iterdir() if not p.name.startswith("."))
    assert products == ["S2A_MSIL2A_20180629T000241_N0500_R030_T56JMM_20220101T000000.SAFE"]  # replaced
    with CampaignStore.open(camp) as store:
        jobs = store.jobs()
        assert [(j.baseline, j.state.value) for j in jobs] == [("02.06", "skipped"), ("05.00", "done")]
        assert jobs[0].skip_reason.startswith(f"duplicate of {jobs[1].name}")
    assert (tile / f".{products[0]}.source").read_text().strip() == jobs[1].name


def test_a_newer_reprocessing_planned_after_the_older_is_done_replaces_it(camp: Path, tmp_path: Path) -> None:
    clone_sample(tmp_path / "old", baseline="02.06")
    assert s2l2a("plan", camp, tmp_path / "old").returncode == 0
    assert s2l2a("run", camp, "--processor", "noop").returncode == 0
    clone_sample(tmp_path / "new", baseline="05.00", generation="20220101T000000")
    r = s2l2a("plan", camp, tmp_path / "new")
    assert r.returncode == 0
    assert r.stdout.strip() == ("found 1: 1 added, 0 already planned, 1 skipped duplicate, 0 skipped done, "
                                "0 rejected")   # not "skipped done": the older output is to be replaced
    r = s2l2a("run", camp, "--processor", "noop")
    assert r.returncode == 0 and "1 done, 0 failed of 1" in r.stdout, r.stderr
    outputs = [p.name for p in (camp / "L2A" / "56JMM").iterdir() if not p.name.startswith(".")]
    assert outputs == ["S2A_MSIL2A_20180629T000241_N0500_R030_T56JMM_20220101T000000.SAFE"]
