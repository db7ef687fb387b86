"""Keep policies delete only what verified; a failed derive keeps the L2A; the L1C needs --delete-l1c."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import s2l2a.outputs.cog as cog_mod
from s2l2a.outputs.derive import DeriveSpec, derive_product
from s2l2a.outputs.keep import KeepError, apply_keep, derive_then_keep

from .conftest import SAMPLE_L1C

SPEC = DeriveSpec(quicklooks=False)


def _l1c_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "L1C" / SAMPLE_L1C.name
    shutil.copytree(SAMPLE_L1C, dest)
    return dest


def test_keep_derived_deletes_the_l2a_only_after_verified_outputs(tmp_path: Path, l2a_copy: Path) -> None:
    o = derive_then_keep(l2a_copy, tmp_path / "derived", SPEC, "derived")
    assert o.error is None, o.error
    assert o.removed == [l2a_copy] and not l2a_copy.exists()
    assert (o.derived_dir / "derived.json").is_file()


def test_keep_all_and_l2a_delete_nothing(tmp_path: Path, l2a_copy: Path) -> None:
    assert derive_then_keep(l2a_copy, tmp_path / "d", SPEC, "all").removed == []
    o = derive_then_keep(l2a_copy, tmp_path / "d2", SPEC, "l2a")
    assert (o.removed, o.derived_dir, o.skipped) == ([], None, "keep policy l2a: nothing derived")
    assert l2a_copy.is_dir() and not (tmp_path / "d2").exists()


def test_fault_derived_write_fails_the_l2a_stays(tmp_path: Path, l2a_copy: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cog_mod, "scratch_to_cog", broken)
    o = derive_then_keep(l2a_copy, tmp_path / "derived", SPEC, "derived")
    assert o.error and "No space left" in o.error and "\n" not in o.error
    assert o.removed == [] and l2a_copy.is_dir()
    assert not any((tmp_path / "derived").iterdir())  # the staging folder is gone too


def test_fault_output_folder_unwritable_the_l2a_stays(tmp_path: Path, l2a_copy: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the output folder should be")
    o = derive_then_keep(l2a_copy, blocker / "derived", SPEC, "derived")
    assert o.error and "cannot create the output folder" in o.error
    assert l2a_copy.is_dir()


def test_damaged_derived_outputs_keep_the_l2a(tmp_path: Path, l2a_copy: Path) -> None:
    r = derive_product(l2a_copy, tmp_path / "derived", SPEC)
    ndvi = r.path("ndvi")
    ndvi.write_bytes(ndvi.read_bytes()[:500])  # truncated after the fact (disk full, killed copy)
    with pytest.raises(KeepError, match="L2A kept: derived outputs do not verify"):
        apply_keep("derived", l2a_copy, r.out_dir)
    assert l2a_copy.is_dir()
    with pytest.raises(KeepError, match="no derived outputs"):
        apply_keep("derived", l2a_copy, None)
    assert l2a_copy.is_dir()


def test_derived_folder_of_another_product_keeps_the_l2a(tmp_path: Path, l2a_copy: Path) -> None:
    from .conftest import L2A_0214

    other = derive_product(L2A_0214, tmp_path / "derived", SPEC)
    with pytest.raises(KeepError, match="belongs to"):
        apply_keep("derived", l2a_copy, other.out_dir)
    assert l2a_copy.is_dir()


def test_l1c_is_deleted_only_when_asked_and_after_the_l2a_verified(tmp_path: Path, l2a_copy: Path) -> None:
    l1c = _l1c_copy(tmp_path)
    out = apply_keep("all", l2a_copy, None, l1c_path=l1c)
    assert l1c.is_dir() and out.removed == [] and "delete-l1c" in out.kept[str(l1c)]
    # an incomplete L2A (a band file missing): the L1C stays
    missing = next(l2a_copy.glob("GRANULE/*/IMG_DATA/R20m/*_SCL_20m.tif"))
    saved = missing.read_bytes()
    missing.unlink()
    with pytest.raises(KeepError, match="L1C kept"):
        apply_keep("all", l2a_copy, None, l1c_path=l1c, delete_l1c=True)
    assert l1c.is_dir()
    missing.write_bytes(saved)
    out = apply_keep("all", l2a_copy, None, l1c_path=l1c, delete_l1c=True)
    assert out.removed == [l1c] and not l1c.exists() and l2a_copy.is_dir()


def test_a_folder_that_is_not_an_l1c_is_never_deleted(tmp_path: Path, l2a_copy: Path) -> None:
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("...")
    with pytest.raises(Exception):  # noqa: B017,PT011 - any refusal will do; the folder must survive
        apply_keep("all", l2a_copy, None, l1c_path=precious, delete_l1c=True)
    assert (precious / "chapter1.tex").is_file()
