"""Outputs deleted or damaged behind the campaign's back are noticed and converted again
(issue 10, item 3): by every ``run`` (names and sizes against the manifest written at publish)
and by ``status --verify`` (which also opens every raster)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from s2l2a.campaign.manifest import requeue_vanished
from s2l2a.campaign.store import CampaignStore
from s2l2a.outputs.manifest import MANIFEST_FILE, check_output, read_manifest
from s2l2a.safe import verify_l2a
from sample_clones import clone_sample

S2L2A = Path(sys.executable).with_name("s2l2a")


def s2l2a(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(S2L2A), *map(str, args)], capture_output=True, text=True, timeout=180)


@pytest.fixture
def converted(tmp_path: Path) -> Path:
    """A campaign whose three products were converted (noop processor)."""
    for day in range(3):
        clone_sample(tmp_path / "in", day=day)
    camp = tmp_path / "C"
    for args in (("init", camp, "--processor", "builtin", "--memory-mb", "256"), ("plan", camp, tmp_path / "in"),
                 ("run", camp, "--processor", "noop")):
        r = s2l2a(*args)
        assert r.returncode == 0, r.stderr
    return camp


def outputs(camp: Path) -> list[Path]:
    return sorted((camp / "L2A" / "56JMM").glob("*.SAFE"))


def states(camp: Path) -> dict[int, str]:
    with CampaignStore.open(camp) as store:
        return {j.id: str(j.state) for j in store.jobs()}


def job_of(camp: Path, product: Path) -> int:
    with CampaignStore.open(camp) as store:
        (job,) = [j for j in store.jobs() if j.output_path == product]
        return job.id


def test_publish_writes_a_manifest_inside_the_product(converted: Path) -> None:
    for product in outputs(converted):
        files = read_manifest(product)
        assert files and MANIFEST_FILE not in files
        assert sum(1 for f in product.rglob("*") if f.is_file()) == len(files) + 1
        b04 = next(rel for rel in files if rel.endswith("_B04_10m.jp2"))
        assert files[b04] == (product / b04).stat().st_size
        assert check_output(product, full=True) is None


def test_status_verify_requeues_gone_and_incomplete_outputs_and_run_converts_them_again(converted: Path) -> None:
    gone, partial, intact = outputs(converted)
    ids = {p: job_of(converted, p) for p in (gone, partial, intact)}
    shutil.rmtree(gone)
    next(partial.rglob("*_B04_10m.jp2")).unlink()
    st = s2l2a("status", converted, "--verify")
    assert st.returncode == 0, st.stderr
    assert f"requeued job {ids[gone]}: output {gone} is gone" in st.stderr
    assert f"requeued job {ids[partial]}: output {partial.name}: GRANULE/" in st.stderr
    assert "_B04_10m.jp2 is missing" in st.stderr
    assert "verify: 2 done output(s) gone or incomplete, requeued" in st.stderr
    assert states(converted) == {ids[gone]: "queued", ids[partial]: "queued", ids[intact]: "done"}
    r = s2l2a("run", converted, "--processor", "noop")
    assert r.returncode == 0 and "2 done, 0 failed of 2" in r.stdout, r.stderr
    assert set(states(converted).values()) == {"done"}
    for product in outputs(converted):
        verify_l2a(product)
        assert check_output(product, full=True) is None


def test_run_notices_missing_and_truncated_files_by_itself(converted: Path) -> None:
    a, b, _c = outputs(converted)
    next(a.rglob("*_SCL_20m.jp2")).unlink()
    band = next(b.rglob("*_B08_10m.jp2"))
    band.write_bytes(band.read_bytes()[:10])
    r = s2l2a("run", converted, "--processor", "noop")
    assert r.returncode == 0, r.stderr
    assert "2 done output(s) gone or incomplete, requeued (first: job " in r.stderr
    assert "2 done, 0 failed of 2" in r.stdout
    assert all(check_output(p) is None for p in outputs(converted))


def test_only_status_verify_opens_the_rasters(converted: Path) -> None:
    product = outputs(converted)[0]
    band = next(product.rglob("*_B02_10m.jp2"))
    band.write_bytes(b"\0" * band.stat().st_size)  # same size, unreadable content
    assert check_output(product) is None
    assert "B02_10m.jp2 does not read" in (check_output(product, full=True) or "")
    r = s2l2a("run", converted, "--processor", "noop")
    assert r.returncode == 0 and "nothing to run: 3 done" in r.stdout
    st = s2l2a("status", converted, "--verify", "--json")
    assert st.returncode == 0 and json.loads(st.stdout)["counts"]["queued"] == 1  # stdout stays JSON
    assert "B02_10m.jp2 does not read" in st.stderr


def test_an_l2a_removed_by_keep_derived_is_not_requeued(converted: Path) -> None:
    product = outputs(converted)[0]
    folder = converted / "derived" / "56JMM" / product.name.removesuffix(".SAFE")
    folder.mkdir(parents=True)
    (folder / "derived.json").write_text("{}")
    shutil.rmtree(product)
    with CampaignStore.open(converted) as store:
        assert requeue_vanished(converted, store) == []
        assert store.counts()["done"] == 3


def test_status_verify_waits_for_a_running_run(converted: Path) -> None:
    from s2l2a.campaign.lock import RunLock

    with RunLock(converted):
        st = s2l2a("status", converted, "--verify")
    assert st.returncode == 1 and st.stderr.startswith("Error: another s2l2a run holds")
