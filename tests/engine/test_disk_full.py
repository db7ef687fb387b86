"""A full disk is failure class disk_full, its message is capped (the log keeps it whole), and a
failed job's staging and half-copied ``.partial-*`` product do not keep the space (issue 10, item 3).

The in-process tests raise ENOSPC where a job writes; the last one mounts small tmpfs file
systems (root only) so that GDAL, libtiff and shutil meet a really full disk.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from s2l2a_testplugins.noop import NoopProcessor

from s2l2a.campaign import execute
from s2l2a.campaign.execute import MESSAGE_CAP, _classify, run_job
from s2l2a.campaign.failures import FailureClass
from s2l2a.campaign.jobspec import JobSpec, read_result
from s2l2a.errors import ProductError
from s2l2a.processors.base import ProcessingFailed

from .conftest import clone_l1c


def spec(product: Path, staging: Path | None = None, output: Path | None = None, processor: str = "noop",
         **extra: object) -> JobSpec:
    settings: dict[str, object] = {"extra": dict(extra)} if extra else {}
    if processor == "builtin":
        settings["resolution"] = 60
    return JobSpec(job_id=5, product_path=str(product), tile="56JMM", processor=processor, settings=settings,
                   staging_dir=str(staging) if staging else None, output_dir=str(output) if output else None)


def no_partials(root: Path) -> bool:
    return not any(p.name.startswith((".partial-", ".replaced-")) for p in root.rglob("*"))


def test_enospc_in_the_processor_is_disk_full_with_a_capped_message(tmp_path: Path, sample_l1c: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    long_name = "x" * 20000

    def full(*_a: object, **_k: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", long_name)

    monkeypatch.setattr(NoopProcessor, "_write", full)
    camp = tmp_path / "camp"
    out = run_job(camp, spec(sample_l1c, keep_failed_staging=True))
    assert out.state == "failed" and out.failure_class == FailureClass.DISK_FULL == "disk_full"
    assert len(out.message) <= MESSAGE_CAP and out.message.startswith("noop processing failed for ")
    assert read_result(camp / "results" / "5.json").message == out.message
    assert long_name in (camp / "logs" / "5.log").read_text()  # the log keeps the whole text
    assert list((camp / "staging").iterdir()) == []  # never kept on a full disk, even when asked to


def test_an_unnamed_write_failure_on_a_nearly_full_disk_is_disk_full(tmp_path: Path, sample_l1c: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """GDAL says 'IO error writing tag data' while libtiff printed ENOSPC to stderr only."""
    def gdal_error(*_a: object, **_k: object) -> None:
        raise ProcessingFailed("built-in processor failed: CPLE_AppDefinedError: TIFFWriteDirectoryTagData:IO "
                               "error writing tag data", FailureClass.OTHER)

    monkeypatch.setattr(NoopProcessor, "_write", gdal_error)
    assert run_job(tmp_path / "a", spec(sample_l1c)).failure_class == "other"  # plenty of space: other
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(execute.shutil, "disk_usage", lambda p: usage._replace(free=4096))
    assert run_job(tmp_path / "b", spec(sample_l1c)).failure_class == "disk_full"


def test_disk_full_is_recognised_anywhere_in_the_exception_chain() -> None:
    assert _classify(sqlite3.OperationalError("database or disk is full"), "publish")[0] == "disk_full"
    assert _classify(OSError(errno.EDQUOT, "Disk quota exceeded"), "publish")[0] == "disk_full"
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as e:
            raise ProductError("cannot write the granule") from e
    except ProductError as e:
        assert _classify(e, "open L1C")[0] == "disk_full"
    assert _classify(ProductError("broken tile"), "open L1C")[0] == "bad_input"
    assert _classify(ProcessingFailed("DEM missing", FailureClass.DEM_ERROR), "x")[0] == "dem_error"


def _other_device(tmp_path: Path) -> Path:
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK) or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs a writable /dev/shm on another file system than the test folder")
    return shm


def test_a_failed_copy_across_file_systems_leaves_no_partial_product(tmp_path: Path, sample_l1c: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    staging = Path(tempfile.mkdtemp(dir=_other_device(tmp_path)))
    real_copytree = shutil.copytree

    def copy_then_fill_up(src: str, dst: str, **kw: object) -> object:
        if "IMG_DATA" in str(dst):  # the metadata fitted, the first image does not
            raise OSError(errno.ENOSPC, "No space left on device", dst)
        return shutil.copy2(src, dst)

    def copytree(src: str, dst: str, *args: object, **kw: object) -> object:
        if not args:  # the outer call (copytree passes its own arguments on when it recurses)
            kw["copy_function"] = copy_then_fill_up
        return real_copytree(src, dst, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(shutil, "copytree", copytree)
    try:
        camp = tmp_path / "camp"
        out = run_job(camp, spec(sample_l1c, staging=staging))
        assert out.failure_class == "disk_full", out.message
        assert "publish failed" in out.message and len(out.message) <= MESSAGE_CAP
        assert no_partials(camp / "L2A") and list(staging.iterdir()) == []
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[object]:
    """Mount small tmpfs file systems under tmp_path (root only; skipped otherwise)."""
    mounted: list[Path] = []

    def mount(name: str, size: str) -> Path:
        path = tmp_path / name
        path.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
        if r.returncode != 0:
            pytest.skip("cannot mount a tmpfs here (needs root)")
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", str(path)], check=False)


@pytest.mark.parametrize(("processor", "where", "size"), [("noop", "staging", "20k"), ("noop", "output", "40k"),
                                                          ("builtin", "staging", "100k")])
def test_a_really_full_file_system(tmp_path: Path, tiny_fs: object, processor: str, where: str, size: str) -> None:
    small = tiny_fs(where, size)  # type: ignore[operator]
    product = clone_l1c(tmp_path / "l1c", 0)
    camp = tmp_path / "camp"
    out = run_job(camp, spec(product, processor=processor, **{f"{where}": small}))  # type: ignore[arg-type]
    assert out.state == "failed" and out.failure_class == "disk_full", out.message
    assert len(out.message) <= MESSAGE_CAP
    assert {p.name for p in small.iterdir()} <= {".s2l2a-owned", "56JMM"}
    assert no_partials(small)
    assert shutil.disk_usage(small).used < shutil.disk_usage(small).total // 2  # the space is free again
