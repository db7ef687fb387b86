"""Archive bombs: limits on total expanded size, compression ratio and members, checked before and while
extracting; refusals say which limit, and nothing is left behind."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from s2l2a.archive import (
    ArchiveLimits,
    ArchiveTooLargeError,
    UnsafeArchiveError,
    _Budget,
    _Writer,
    safe_extract,
)
from s2l2a.cli import main
from s2l2a.diskspace import InsufficientSpaceError
from s2l2a.sen2cor.esacci import install_esacci
from s2l2a.sen2cor.layout import describe

MB = 1 << 20


class _Zeros(io.RawIOBase):
    """``n`` zero bytes as a stream, so a 200 MB member never sits in memory."""

    def __init__(self, n: int) -> None:
        self.n = n

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        k = min(len(b), self.n)
        b[:k] = bytes(k)
        self.n -= k
        return k


def zip_bomb(path: Path, members: dict[str, int], small: dict[str, bytes] | None = None) -> Path:
    """Deflated zeros: 200 MB become about 200 KB."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in (small or {}).items():
            z.writestr(name, data)
        for name, size in members.items():
            with z.open(name, "w", force_zip64=True) as f:
                chunk = bytes(MB)
                for _ in range(size // MB):
                    f.write(chunk)
    return path


def tar_bomb(path: Path, size: int) -> Path:
    with tarfile.open(path, "w:gz") as t:
        t.addfile(tarfile.TarInfo("pkg/readme.txt"), None)
        info = tarfile.TarInfo("pkg/zeros.tif")
        info.size = size
        t.addfile(info, io.BufferedReader(_Zeros(size)))
    return path


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*")] if folder.exists() else []


def test_zip_bomb_stopped_by_total_size_before_writing(tmp_path: Path) -> None:
    arc = zip_bomb(tmp_path / "bomb.zip", {"a/zeros.tif": 200 * MB})
    assert arc.stat().st_size < 400_000                                  # ~200 KB expanding to 200 MB
    target = tmp_path / "out"
    with pytest.raises(ArchiveTooLargeError) as e:
        safe_extract(arc, target, ArchiveLimits(max_bytes=50 * MB, max_ratio=10_000, hint=" (try --x)"))
    msg = str(e.value)
    assert msg == f"{arc}: archive expands to more than 52.4 MB; refused as a possible archive bomb (try --x)"
    assert "corrupt" not in msg
    assert not target.exists()                                           # target made by us, removed again


def test_zip_ratio_bomb_refused_with_default_limits(tmp_path: Path) -> None:
    arc = zip_bomb(tmp_path / "ratio.zip", {"pkg/zeros.tif": 20 * MB},
                   small={"pkg/small-zeros.xml": bytes(500_000)})        # tiny members may compress 1000:1
    with pytest.raises(ArchiveTooLargeError, match=r"member 'pkg/zeros.tif' has compression ratio above 200;"):
        safe_extract(arc, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    ok = zip_bomb(tmp_path / "ok.zip", {}, small={"pkg/small-zeros.xml": bytes(500_000)})
    assert [p.name for p in safe_extract(ok, tmp_path / "ok")] == ["small-zeros.xml"]


def test_tar_bomb_refused_by_size_and_by_ratio(tmp_path: Path) -> None:
    arc = tar_bomb(tmp_path / "bomb.tar.gz", 200 * MB)
    assert arc.stat().st_size < 400_000
    with pytest.raises(ArchiveTooLargeError, match="archive expands to more than 52.4 MB; refused"):
        safe_extract(arc, tmp_path / "a", ArchiveLimits(max_bytes=50 * MB, max_ratio=10_000))
    with pytest.raises(ArchiveTooLargeError, match="archive has compression ratio above 200; refused"):
        safe_extract(arc, tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_too_many_members(tmp_path: Path) -> None:
    arc = tmp_path / "many.zip"
    with zipfile.ZipFile(arc, "w") as z:
        for i in range(30):
            z.writestr(f"f{i}", b"")
    with pytest.raises(ArchiveTooLargeError, match="holds more than 20 members"):
        safe_extract(arc, tmp_path / "out", ArchiveLimits(max_members=20))


def test_forged_sizes_are_not_trusted(tmp_path: Path) -> None:
    """Headers claiming 1,000 bytes for 20 MB of zeros: refused, and never more than the claim is written."""
    arc = tmp_path / "forged.zip"
    with zipfile.ZipFile(arc, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.bin", bytes(20 * MB))
    raw = bytearray(arc.read_bytes())
    for sig, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):   # local header, central directory
        i = raw.index(sig)
        assert int.from_bytes(raw[i + at:i + at + 4], "little") == 20 * MB
        raw[i + at:i + at + 4] = (1000).to_bytes(4, "little")
    arc.write_bytes(bytes(raw))
    assert zipfile.ZipFile(arc).getinfo("x.bin").file_size == 1000
    with pytest.raises(UnsafeArchiveError, match="member 'x.bin' fails its CRC check"):
        safe_extract(arc, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_written_bytes_are_counted_while_writing(tmp_path: Path) -> None:
    """The counter on written bytes stops a member whose header passed, and the partial file is removed."""
    target = tmp_path / "out"
    writer = _Writer(tmp_path / "a.zip", target, _Budget(ArchiveLimits(max_bytes=5 * MB)))
    writer.mkdir(target)
    from pathlib import PurePosixPath

    with pytest.raises(ArchiveTooLargeError, match="more than 5.2 MB"):
        writer.file("big", PurePosixPath("d/big"), io.BufferedReader(_Zeros(50 * MB)), 50 * MB, None)
    assert (target / "d" / "big").stat().st_size <= 6 * MB                # stopped early, not at 50 MB
    writer.undo()
    assert not target.exists()


def test_failed_write_leaves_no_debris_and_existing_files_alone(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    arc = tmp_path / "over.zip"
    with zipfile.ZipFile(arc, "w") as z:
        z.writestr("new/a.txt", b"a")
        z.writestr("keep.txt", b"theirs")
    with pytest.raises(UnsafeArchiveError, match="would replace the existing"):
        safe_extract(arc, target)
    assert sorted(p.name for p in target.iterdir()) == ["keep.txt"] and (target / "keep.txt").read_text() == "mine"
    # a real write failure midway (file-size limit of the process: EFBIG) removes what was written
    big = zip_bomb(tmp_path / "big.zip", {}, small={"z/1.txt": b"first", "z/2.bin": os.urandom(3 * MB)})
    code = ("import resource, signal, sys\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (2 << 20, 2 << 20))\n"
            "from s2l2a.archive import safe_extract, UnsafeArchiveError\n"
            "try:\n    safe_extract(sys.argv[1], sys.argv[2])\n"
            "except UnsafeArchiveError as e:\n    print(e)\n")
    p = subprocess.run([sys.executable, "-c", code, str(big), str(tmp_path / "t2")], capture_output=True, text=True,
                       timeout=60)
    assert "cannot write" in p.stdout and "File too large" in p.stdout, p.stdout + p.stderr
    assert not (tmp_path / "t2").exists()


def test_not_enough_space_is_said_before_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import s2l2a.archive as archive

    arc = zip_bomb(tmp_path / "a.zip", {}, small={"z.bin": os.urandom(3 * MB)})
    monkeypatch.setattr(archive, "free_bytes", lambda _p: MB)
    with pytest.raises(InsufficientSpaceError, match=r"a.zip expands to 3.1 MB but only 1.0 MB are free"):
        safe_extract(arc, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_sen2cor_aux_refuses_a_bomb_before_expanding(tmp_path: Path, install_factory) -> None:
    root = install_factory("2.8.0")
    inst = describe(root)
    arc = zip_bomb(tmp_path / "ESACCI-LC-L4-ALL-FOR-SEN2COR.zip", {"CCI4SEN2COR/zeros.tif": 200 * MB})
    r = CliRunner().invoke(main, ["sen2cor", "aux", "--esacci", str(arc), "--sen2cor", str(root),
                                  "--max-size", "0.05"])
    assert r.exit_code == 1
    prefix, _, message = r.output.strip().partition(": ")
    assert prefix.lower() == "error"                                     # 'Error' or 'error', one line
    assert message == (f"{arc}: archive expands to more than 50.0 MB; refused as a possible archive bomb "
                       "(give --max-size GB if the package is genuine)")
    assert os.listdir(inst.aux_data_dir) == []                            # no staging debris
    r = CliRunner().invoke(main, ["sen2cor", "aux", "--esacci", str(arc), "--sen2cor", str(root)])
    assert r.exit_code == 1 and "compression ratio above 200" in r.output and "corrupt" not in r.output
    assert os.listdir(inst.aux_data_dir) == []


def test_nested_archives_share_the_package_limit(tmp_path: Path, install_factory) -> None:
    """ESA's zip holds tars: a bomb inside the inner tar counts against the package's limit."""
    inner = tar_bomb(tmp_path / "inner.tar.gz", 60 * MB)
    outer = tmp_path / "pkg.zip"
    with zipfile.ZipFile(outer, "w") as z:
        z.write(inner, "CCI4SEN2COR/inner.tar.gz")
    inst = describe(install_factory("2.8.0"))
    from s2l2a.errors import ConfigError

    with pytest.raises(ConfigError, match="archive expands to more than"):
        install_esacci(outer, inst, ArchiveLimits(max_bytes=20 * MB, max_ratio=10_000))
    assert os.listdir(inst.aux_data_dir) == []


def test_dem_zip_read_in_place_is_size_checked_before_its_crcs(tmp_path: Path) -> None:
    """SRTM zips are read through /vsizip/; their CRC test would decompress a bomb: sizes are checked first."""
    from s2l2a.archive import check_zip_sizes
    from s2l2a.auxdata.dem import DEM_ZIP_LIMITS, _verifier
    from s2l2a.auxdata.dem_tiles import srtm_tile

    tile = srtm_tile(1, 1)
    arc = zip_bomb(tmp_path / tile.filename, {f"{tile.name}.tif": 60 * MB})
    with pytest.raises(ArchiveTooLargeError, match="archive expands to more than 52.4 MB"):
        check_zip_sizes(arc, ArchiveLimits(max_bytes=50 * MB, max_ratio=float("inf")))
    check_zip_sizes(arc, DEM_ZIP_LIMITS)                      # 60 MB of sea is within a DEM tile's limit
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w") as z:
        for i in range(101):
            z.writestr(f"m{i}", b"")
    with pytest.raises(ArchiveTooLargeError, match="more than 100 members"):
        _verifier(tile)(big)
