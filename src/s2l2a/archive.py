"""Unpacking archives from outside without trusting them (ESA-CCI packages, DEM zips, CDSE products).

Every member is checked before anything is written: absolute names, ``..``, links (symbolic or
hard) and device files are refused with one line naming the member; a zip's CRCs are tested first,
so a truncated download never leaves half a product behind.
"""

from __future__ import annotations

import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from s2l2a.errors import S2L2AError


class UnsafeArchiveError(S2L2AError):
    """An archive member would escape the target directory, is not a plain file/dir, or is corrupt."""


def _check_name(name: str) -> PurePosixPath:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"member {name!r} has an absolute path; refused")
    if ".." in p.parts:
        raise UnsafeArchiveError(f"member {name!r} contains '..'; refused")
    return p


def _rel_ok(name: str) -> bool:
    try:
        _check_name(name)
    except UnsafeArchiveError:
        return False
    return True


def _inside(member: PurePosixPath, link: str) -> bool:
    """Whether a link stored at ``member`` with text ``link`` resolves inside ``target``."""
    if link.startswith("/"):
        return False
    parts: list[str] = list(member.parent.parts)
    for piece in PurePosixPath(link).parts:
        if piece == "..":
            if not parts:
                return False
            parts.pop()
        elif piece != ".":
            parts.append(piece)
    return True


def safe_extract(archive: Path, target: Path) -> list[Path]:
    """Extract a zip or tar(.gz/.bz2/.xz) into ``target`` after checking every member."""
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        return _extract_zip(archive, target)
    try:
        is_tar = tarfile.is_tarfile(archive)
    except OSError:
        is_tar = False
    if is_tar:
        return _extract_tar(archive, target)
    raise UnsafeArchiveError("neither a zip nor a tar archive", archive)


def _extract_zip(archive: Path, target: Path) -> list[Path]:
    out: list[Path] = []
    try:
        with zipfile.ZipFile(archive) as z:
            infos = z.infolist()
            for info in infos:
                p = _check_name(info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    link = z.read(info).decode("utf-8", "replace")
                    if not _inside(p, link):
                        raise UnsafeArchiveError(f"member {info.filename!r} is a link to {link!r} outside the "
                                                 "target; refused", archive)
                    raise UnsafeArchiveError(f"member {info.filename!r} is a symbolic link; refused", archive)
            bad = z.testzip()
            if bad is not None:
                raise UnsafeArchiveError(f"member {bad!r} fails its CRC check (corrupt archive)", archive)
            for info in infos:
                p = _check_name(info.filename)
                dest = target.joinpath(*p.parts)
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with z.open(info) as src, dest.open("wb") as f:
                    while chunk := src.read(1 << 20):
                        f.write(chunk)
                out.append(dest)
    except UnsafeArchiveError as e:
        raise UnsafeArchiveError(e.message, archive) from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise UnsafeArchiveError(f"corrupt or truncated zip: {e}", archive) from None
    return out


def _extract_tar(archive: Path, target: Path) -> list[Path]:
    out: list[Path] = []
    try:
        with tarfile.open(archive) as t:
            members = t.getmembers()
            for m in members:
                p = _check_name(m.name)
                if m.issym() or m.islnk():
                    # hard links name a path from the archive root, symbolic ones from their folder
                    ok = _rel_ok(m.linkname) if m.islnk() else _inside(p, m.linkname)
                    if not ok:
                        raise UnsafeArchiveError(f"member {m.name!r} links to {m.linkname!r} outside the "
                                                 "target; refused", archive)
                    raise UnsafeArchiveError(f"member {m.name!r} is a link; refused", archive)
                if not (m.isfile() or m.isdir()):
                    raise UnsafeArchiveError(f"member {m.name!r} is not a regular file or directory; refused",
                                             archive)
            for m in members:
                p = _check_name(m.name)
                dest = target.joinpath(*p.parts)
                if m.isdir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                src = t.extractfile(m)
                if src is None:
                    raise UnsafeArchiveError(f"member {m.name!r} cannot be read", archive)
                with src, dest.open("wb") as f:
                    while chunk := src.read(1 << 20):
                        f.write(chunk)
                out.append(dest)
    except UnsafeArchiveError as e:
        raise UnsafeArchiveError(e.message, archive) from None
    except (tarfile.TarError, EOFError, OSError, ValueError) as e:
        raise UnsafeArchiveError(f"corrupt or truncated tar: {e}", archive) from None
    return out
