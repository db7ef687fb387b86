"""The derive, report and stac commands end to end on a small campaign."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from s2l2a.cli import main

from .conftest import L2A_0214


def test_derive_keep_derived_then_rerun_is_idempotent(campaign: Path) -> None:
    r = CliRunner().invoke(main, ["derive", str(campaign), "--index", "ndvi,ndwi", "--resolution", "20",
                                  "--clear-classes", "4,5,6", "--keep", "derived"])
    assert r.exit_code == 0, r.output
    assert "2 of 2 products ok" in r.output and r.output.count("deleted") == 2
    assert not list((campaign / "L2A" / "29RKH").glob("*.SAFE"))  # L2A freed only after verification
    folders = sorted((campaign / "derived" / "29RKH").iterdir())
    assert len(folders) == 2 and all((f / "derived.json").is_file() for f in folders)
    assert all(any(f.glob("*_NDWI_20m.tif")) and any(f.glob("*_CLEAR_20m.tif")) for f in folders)
    assert all(p.is_dir() for p in (campaign / "L1C").iterdir())  # L1C untouched without --delete-l1c

    again = CliRunner().invoke(main, ["derive", str(campaign), "--keep", "derived"])
    assert again.exit_code == 0, again.output
    assert again.output.count("already derived") == 2

    stac = CliRunner().invoke(main, ["stac", str(campaign)])
    assert stac.exit_code == 0, stac.output
    assert (campaign / "stac" / "collection.json").is_file()
    rep = CliRunner().invoke(main, ["report", str(campaign), "-o", str(campaign / "r.html")])
    assert rep.exit_code == 0, rep.output
    assert (campaign / "r.html").stat().st_size > 10_000


def test_derive_products_and_one_line_errors(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["derive", str(L2A_0214), "-o", str(out), "--formula", "ndre=(B8A-B05)/(B8A+B05)",
                                  "--index", ""])
    assert r.exit_code == 0, r.output
    assert any(out.glob("*/*_NDRE_10m.tif")) and not any(out.glob("*/*_NDVI_*"))
    bad = CliRunner().invoke(main, ["derive", str(L2A_0214), "-o", str(out), "--formula", "x=__import__('os')"])
    assert bad.exit_code != 0 and "not allowed" in bad.output and "Traceback" not in bad.output
    bad = CliRunner().invoke(main, ["derive", str(L2A_0214), "--keep", "l2a"])
    assert bad.exit_code != 0 and "derives nothing" in bad.output
    bad = CliRunner().invoke(main, ["derive", str(L2A_0214), "--delete-l1c"])
    assert bad.exit_code != 0 and "needs a campaign" in bad.output
    for n in ("0", "-1", "nan", "2;x", "."):  # compression threads: a positive integer or one clear line
        bad = CliRunner().invoke(main, ["derive", str(L2A_0214), "-o", str(out), "--threads", n])
        assert bad.exit_code == 2 and "--threads" in bad.output and "Traceback" not in bad.output
    ok = CliRunner().invoke(main, ["derive", str(L2A_0214), "-o", str(out), "--threads", "2", "--force"])
    assert ok.exit_code == 0, ok.output
