"""`s2l2a search`/`fetch` against a local server answering like Google's storage JSON API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from s2l2a.cli import main
from s2l2a.safe import find_products

from .fakeservers import OLDER_COPY, OTHER_DATE, SAMPLE, SAMPLE_NAME, FakeServices

TILE = ["-t", "T56JMM", "--start", "2018-06-01", "--end", "2018-07-31"]


def run(*args: str) -> object:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def mtd_requests(services: FakeServices) -> list[str]:
    return [n for _, n, _ in services.state.requests("media") if n.endswith("MTD_MSIL1C.xml")]


def test_search_lists_dedups_and_reads_metadata_only_when_needed(services: FakeServices) -> None:
    res = run("search", *TILE, "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    names = [p["name"] for p in doc["products"]]
    assert names == [SAMPLE_NAME, OTHER_DATE]  # L2A folder ignored, older generation dropped
    assert doc["duplicates"] == [{"dropped": OLDER_COPY, "kept": SAMPLE_NAME}]
    sample = doc["products"][0]
    assert sample["size"] == sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert sample["baseline"] == "02.06" and sample["source"] == "gcs" and sample["cloud_cover"] is None
    assert mtd_requests(services) == []  # no cloud/baseline filter: metadata not read
    pages = [q for k, _, q in services.state.requests("list") if q.get("delimiter") == "/"]
    assert len(pages) == 3 and pages[1]["pageToken"] == "2"  # nextPageToken followed

    res = run("search", *TILE, "--max-cloud", "20", "--json")
    doc = json.loads(res.stdout)
    assert [p["name"] for p in doc["products"]] == [SAMPLE_NAME]
    assert doc["products"][0]["cloud_cover"] == 0.0
    first = len(mtd_requests(services))
    assert first == 3  # each candidate's MTD once
    run("search", *TILE, "--max-cloud", "20", "--json")
    assert len(mtd_requests(services)) == first  # served from the cache

    res = run("search", *TILE, "--platform", "S2B", "--dry-run")
    assert res.exit_code == 0 and res.stdout.startswith("1 product(s)")
    res = run("search", *TILE, "--min-baseline", "04.00", "--json")
    assert json.loads(res.stdout)["count"] == 0
    res = run("search", *TILE)
    assert "T56JMM" in res.stdout and "56JMM" in res.stdout and "gcs" in res.stdout


def test_search_by_bbox(services: FakeServices) -> None:
    res = run("search", "--bbox", "152.5,-30.3,152.51,-30.29", "--start", "2018-06-29", "--end", "2018-06-29",
              "--json")
    assert res.exit_code == 0, res.output
    listed = {n for _, n, q in services.state.requests("list") if q.get("delimiter") == "/"}
    assert "tiles/56/J/MM/" in listed
    assert [p["name"] for p in json.loads(res.stdout)["products"]] == [SAMPLE_NAME]


def _same_tree(a: Path, b: Path) -> None:
    fa = {p.relative_to(a).as_posix(): p.read_bytes() for p in a.rglob("*") if p.is_file()}
    fb = {p.relative_to(b).as_posix(): p.read_bytes() for p in b.rglob("*") if p.is_file()}
    assert fa == fb


def test_fetch_into_campaign_with_faults_then_skip(services: FakeServices, tmp_path: Path) -> None:
    camp = tmp_path / "camp"
    camp.mkdir()
    (camp / "s2l2a.toml").write_text("[acquire]\nobject_parallel = 3\n")
    faults = services.state.faults
    faults["list"] += ["503"]
    faults["media:T56JMM_20180629T000241_B02.jp2"] += ["drop"]
    faults["media:T56JMM_20180629T000241_B8A.jp2"] += ["429"]
    faults["media:MTD_TL.xml"] += ["corrupt"]
    res = run("fetch", str(camp), *TILE, "--max-cloud", "50")
    assert res.exit_code == 0, res.output
    product = camp / "L1C" / f"{SAMPLE_NAME}.SAFE"
    _same_tree(product, SAMPLE)
    for d in ("AUX_DATA", "HTML", "GRANULE/L1C_T56JMM_A015757_20180629T000241/AUX_DATA"):
        assert (product / d).is_dir()  # empty folders the bucket does not store
    assert not (camp / "L1C" / f"{OTHER_DATE}.SAFE").exists()  # cloudy
    assert not list((camp / "L1C" / ".s2l2a-staging").iterdir())
    assert "fetched 1" in res.stdout and "next: s2l2a plan" in res.stdout
    assert all(not f for f in faults.values())  # every fault was met

    n_media = len(services.state.requests("media"))
    res = run("fetch", str(camp), *TILE, "--max-cloud", "50")
    assert res.exit_code == 0 and "already complete 1" in res.stdout
    assert len(services.state.requests("media")) == n_media  # nothing downloaded again


def test_partial_folder_is_completed(services: FakeServices, tmp_path: Path) -> None:
    dest = tmp_path / "l1c"
    product = dest / f"{SAMPLE_NAME}.SAFE"
    (product / "GRANULE").mkdir(parents=True)
    (product / "MTD_MSIL1C.xml").write_bytes((SAMPLE / "MTD_MSIL1C.xml").read_bytes())
    (product / "manifest.safe").write_bytes((SAMPLE / "manifest.safe").read_bytes()[:100])  # truncated
    res = run("fetch", str(dest), "-t", "56JMM", "--start", "2018-06-29", "--end", "2018-06-29")
    assert res.exit_code == 0, res.output
    _same_tree(product, SAMPLE)
    fetched = {n.rsplit("/", 1)[-1] for _, n, _ in services.state.requests("media")}
    assert "manifest.safe" in fetched and "MTD_MSIL1C.xml" not in fetched  # verified file kept


def test_checksum_mismatch_reported(services: FakeServices, tmp_path: Path) -> None:
    services.state.faults["media:T56JMM_20180629T000241_B03.jp2"] += ["corrupt", "corrupt"]
    res = run("fetch", str(tmp_path), "-t", "56JMM", "--start", "2018-06-29", "--end", "2018-06-29")
    assert res.exit_code == 1
    assert "FAILED" in res.stderr and "md5 mismatch after 2 downloads" in res.stderr
    assert not (tmp_path / f"{SAMPLE_NAME}.SAFE").exists()
    staged = tmp_path / ".s2l2a-staging" / f"{SAMPLE_NAME}.partial"
    kept = [p for p in staged.rglob("*") if p.is_file()]
    assert kept and not any(p.name.endswith(".part") for p in kept)  # verified files kept for the next try ...
    assert list(find_products([tmp_path])) == []  # ... but `plan` never takes the partial folder
    n_media = len(services.state.requests("media"))
    res = run("fetch", str(tmp_path), "-t", "56JMM", "--start", "2018-06-29", "--end", "2018-06-29")
    assert res.exit_code == 0, res.output
    n_objects = sum(1 for n in services.state.objects if n.startswith(f"tiles/56/J/MM/{SAMPLE_NAME}.SAFE/"))
    assert len(services.state.requests("media")) - n_media == n_objects - len(kept)  # only what was missing
    assert list(find_products([tmp_path])) == [tmp_path / f"{SAMPLE_NAME}.SAFE"]


def test_disk_overflow_refused_before_first_byte(services: FakeServices, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    free = {"bytes": 1_000_000}
    monkeypatch.setattr("s2l2a.diskspace.free_bytes", lambda path: free["bytes"])
    res = run("fetch", str(tmp_path / "dest"), *TILE)
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "not enough free space" in lines[0] and "L2A estimate" in lines[0]
    assert services.state.requests("media") == []
    assert not (tmp_path / "dest").exists()
    res = run("fetch", str(tmp_path / "dest"), *TILE, "--dry-run", "--l2a-factor", "0")
    assert res.exit_code == 1  # still does not fit, even without the L2A estimate
    free["bytes"] = 2_000_000
    res = run("fetch", str(tmp_path / "dest"), *TILE, "--dry-run", "--l2a-factor", "0")
    assert res.exit_code == 0 and "would fetch 2" in res.stdout  # fits without the L2A estimate
    assert services.state.requests("media") == [] and not (tmp_path / "dest").exists()


def test_user_errors_are_one_line(services: FakeServices, tmp_path: Path) -> None:
    for args, text in ((["search"], "no tiles to search"),
                       (["search", "-t", "56JAA"], "not in the Sentinel-2 tile grid: 56JAA"),
                       (["search", "-t", "56JMM", "--start", "2018-07-01", "--end", "2018-06-01"], "is after end"),
                       (["search", "--bbox", "1,2,3"], "bbox must be")):
        res = run(*args)
        assert res.exit_code == 1 and text in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.output
    aoi = tmp_path / "aoi.geojson"
    aoi.write_text('{"type": "Polygon", "coordinates": [[[152.5,-30.3],[152.51,-30.3],[152.51,-30.29],[152.5,-30.3]]]}')
    res = run("search", "--aoi", str(aoi), "--start", "2018-06-29", "--end", "2018-06-29", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["count"] == 1
