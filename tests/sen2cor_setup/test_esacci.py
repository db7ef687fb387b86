"""ESA-CCI packages: placed where each version reads them; malicious or broken archives refused."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from s2l2a.archive import UnsafeArchiveError, safe_extract
from s2l2a.cli import main
from s2l2a.errors import ConfigError
from s2l2a.sen2cor.esacci import install_esacci
from s2l2a.sen2cor.layout import LAND_COVER, SNOW_COND_NEW, SNOW_COND_OLD, WATER_BODIES, describe

from .conftest import write_raster


def package_tree(tmp: Path, snow_dir: str) -> Path:
    """The three ESA-CCI items as small real GeoTIFFs."""
    top = tmp / "pkg" / "CCI4SEN2COR"
    write_raster(top / LAND_COVER, (-180, -90, 180, 90), size=36, value=10, dtype="uint8", nodata=None)
    write_raster(top / WATER_BODIES, (-180, -90, 180, 90), size=36, value=1, dtype="uint8", nodata=None)
    for month in ("01", "02"):
        write_raster(top / snow_dir / f"{snow_dir}-{month}.tif", (-180, -90, 180, 90), size=36, value=0,
                     dtype="uint8", nodata=None)
    return top


def esa_like_zip(tmp: Path, snow_dir: str = SNOW_COND_OLD) -> Path:
    """A zip holding a tar holding the files, as ESA's pre-2.10 package does."""
    top = package_tree(tmp, snow_dir)
    inner = tmp / "ESACCI-LC-L4-ALL-FOR-SEN2COR.tar"
    with tarfile.open(inner, "w") as t:
        for p in sorted(top.rglob("*")):
            t.add(p, arcname=str(p.relative_to(top.parent)))
    out = tmp / "ESACCI-LC-L4-ALL-FOR-SEN2COR.zip"
    with zipfile.ZipFile(out, "w") as z:
        z.write(inner, f"CCI4SEN2COR/{inner.name}")
    return out


def tar_gz(tmp: Path, snow_dir: str = SNOW_COND_NEW) -> Path:
    top = package_tree(tmp, snow_dir)
    out = tmp / "ESACCI-LC-for-Sen2Cor-data.tar.gz"
    with tarfile.open(out, "w:gz") as t:
        t.add(top, arcname="ESACCI-LC-for-Sen2Cor-data")
    return out


def test_pre_2_10_zip_of_tars_into_2_8(tmp_path: Path, install_factory) -> None:
    inst = describe(install_factory("2.8.0"))
    placed = install_esacci(esa_like_zip(tmp_path), inst)
    aux = inst.aux_data_dir
    assert placed == [aux / LAND_COVER, aux / WATER_BODIES, aux / SNOW_COND_OLD]
    assert inst.esacci_missing() == []
    assert not [p for p in aux.iterdir() if p.name.startswith(".s2l2a")]           # staging removed
    assert install_esacci(tmp_path / "ESACCI-LC-L4-ALL-FOR-SEN2COR.zip", inst) == placed   # idempotent


def test_2_10_plus_tar_gz_into_2_11_via_cli(tmp_path: Path, install_factory) -> None:
    root = install_factory("2.11.0")
    r = CliRunner().invoke(main, ["sen2cor", "aux", "--esacci", str(tar_gz(tmp_path)), "--sen2cor", str(root)])
    assert r.exit_code == 0, r.output
    assert SNOW_COND_NEW in r.output
    assert describe(root).esacci_missing() == []


def test_old_package_for_new_version_is_explained(tmp_path: Path, install_factory) -> None:
    inst = describe(install_factory("2.11.0"))
    with pytest.raises(ConfigError, match="for Sen2Cor up to 2.9.*needs .*MONTHLY"):
        install_esacci(esa_like_zip(tmp_path), inst)
    assert inst.esacci_missing()


def test_corrupt_raster_in_package_is_refused(tmp_path: Path, install_factory) -> None:
    inst = describe(install_factory("2.8.0"))
    top = package_tree(tmp_path, SNOW_COND_OLD)
    (top / LAND_COVER).write_bytes(b"not a tiff")
    out = tmp_path / "bad.zip"
    with zipfile.ZipFile(out, "w") as z:
        for p in top.rglob("*"):
            z.write(p, str(p.relative_to(top.parent)))
    with pytest.raises(ConfigError, match="does not open as a raster"):
        install_esacci(out, inst)


# -- malicious and broken archives -----------------------------------------------------------------

def _tar_with(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    with tarfile.open(path, "w") as t:
        t.addfile(member, io.BytesIO(data) if data else None)
    return path


def _snapshot(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("kind", ["tar-abs", "tar-dotdot", "tar-symlink-out", "tar-hardlink-out",
                                  "zip-dotdot", "zip-abs", "zip-symlink-out"])
def test_malicious_archives_refused_naming_member(tmp_path: Path, kind: str) -> None:
    arc = tmp_path / "in" / f"{kind}.pkg"
    arc.parent.mkdir()
    if kind.startswith("tar"):
        if kind == "tar-abs":
            m = tarfile.TarInfo("/tmp/evil.tif")
            m.size = 3
            _tar_with(arc, m, b"bad")
        elif kind == "tar-dotdot":
            m = tarfile.TarInfo("CCI4SEN2COR/../../evil.tif")
            m.size = 3
            _tar_with(arc, m, b"bad")
        elif kind == "tar-symlink-out":
            m = tarfile.TarInfo("CCI4SEN2COR/link")
            m.type, m.linkname = tarfile.SYMTYPE, "../../../etc"
            _tar_with(arc, m)
        else:
            m = tarfile.TarInfo("CCI4SEN2COR/hard")
            m.type, m.linkname = tarfile.LNKTYPE, "../outside"
            _tar_with(arc, m)
    else:
        with zipfile.ZipFile(arc, "w") as z:
            if kind == "zip-dotdot":
                z.writestr("a/../../evil.tif", b"bad")
            elif kind == "zip-abs":
                z.writestr("/abs/evil.tif", b"bad")
            else:
                info = zipfile.ZipInfo("CCI4SEN2COR/link")
                info.external_attr = (0o120777 << 16)
                z.writestr(info, "../../../etc/passwd")
    target = tmp_path / "target"
    before = _snapshot(tmp_path)
    with pytest.raises(UnsafeArchiveError) as e:
        safe_extract(arc, target)
    msg = str(e.value)
    assert "\n" not in msg and "member" in msg and "refused" in msg
    assert _snapshot(tmp_path) - before <= {"target"}                         # nothing written anywhere


def test_truncated_zip_refused(tmp_path: Path, install_factory) -> None:
    good = esa_like_zip(tmp_path)
    data = good.read_bytes()
    bad = tmp_path / "truncated.zip"
    bad.write_bytes(data[: len(data) // 2])
    inst = describe(install_factory("2.8.0"))
    with pytest.raises(ConfigError) as e:
        install_esacci(bad, inst)
    assert "\n" not in str(e.value)
    assert os.listdir(inst.aux_data_dir) == []
    r = CliRunner().invoke(main, ["sen2cor", "aux", "--esacci", str(bad), "--sen2cor", str(inst.root)])
    assert r.exit_code == 1 and r.output.strip().count("\n") == 0


def test_corrupt_member_crc_refused(tmp_path: Path) -> None:
    arc = tmp_path / "crc.zip"
    with zipfile.ZipFile(arc, "w", zipfile.ZIP_STORED) as z:
        z.writestr("a.txt", b"hello world" * 100)
    raw = bytearray(arc.read_bytes())
    i = raw.find(b"hello world")
    raw[i] = ord("J")
    arc.write_bytes(bytes(raw))
    with pytest.raises(UnsafeArchiveError, match="CRC"):
        safe_extract(arc, tmp_path / "t")
