"""Unpacking archives from outside without trusting them (ESA-CCI packages, DEM zips, CDSE products).

Every member is checked before anything is written: absolute names, ``..``, links (symbolic or
hard) and device files are refused with one line naming the member; a zip's CRCs are tested first,
so a truncated download never leaves half a product behind.

Size limits (:class:`ArchiveLimits`) stop archive bombs. They are checked twice: on the sizes the
headers declare, before the first byte is written (a bomb with honest headers costs nothing), and
on the bytes actually written, chunk by chunk (headers are not trusted alone). The defaults:

- ``max_bytes`` 16 GB expanded in total (an ESA-CCI package is a few GB, a CDSE product zip ~1 GB);
- ``max_ratio`` 200: a zip member may not expand to more than 200 times its compressed size (a
  tar's whole stream likewise), once it is past ``ratio_floor`` (1 MiB; tiny XML files legitimately
  compress 1000:1). JPEG 2000, GeoTIFF and NetCDF data are already compressed: ratio about 1;
- ``max_members`` 100,000 entries.

Callers pass their own limits (``safe_extract(..., limits=ArchiveLimits(max_bytes=...))``) and a
``hint`` saying how their user raises them. A refused or failed extraction removes every file and
folder it created; files that were there before are never overwritten.
"""

from __future__ import annotations

import errno
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from s2l2a.diskspace import InsufficientSpaceError, free_bytes, human
from s2l2a.errors import S2L2AError

_CHUNK = 1 << 20


class UnsafeArchiveError(S2L2AError):
    """An archive member would escape the target directory, is not a plain file/dir, or is corrupt."""


class ArchiveTooLargeError(UnsafeArchiveError):
    """An archive expands beyond its limits (total size, compression ratio or member count)."""


@dataclass(frozen=True)
class ArchiveLimits:
    """How far an archive may expand; see the module docstring for why the defaults are what they are."""

    max_bytes: int = 16 * 10**9
    max_ratio: float = 200.0
    ratio_floor: int = 1 << 20
    max_members: int = 100_000
    hint: str = ""    # appended to a refusal: how the caller's user raises the limit

    def too_large(self, what: str) -> ArchiveTooLargeError:
        return ArchiveTooLargeError(f"{what}; refused as a possible archive bomb{self.hint}")


DEFAULT_LIMITS = ArchiveLimits()


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


class _Budget:
    """Running totals against the limits, for declared sizes and for bytes written."""

    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.total = 0

    def members(self, n: int) -> None:
        if n > self.limits.max_members:
            raise self.limits.too_large(f"archive holds more than {self.limits.max_members} members")

    def add(self, n: int) -> None:
        self.total += n
        if self.total > self.limits.max_bytes:
            raise self.limits.too_large(f"archive expands to more than {human(self.limits.max_bytes)}")

    def ratio(self, name: str, expanded: int, compressed: int) -> None:
        lim = self.limits
        if expanded > lim.ratio_floor and expanded > lim.max_ratio * max(compressed, 1):
            what = "archive" if name == "" else f"member {name!r}"
            raise lim.too_large(f"{what} has compression ratio above {lim.max_ratio:g}")


class _Writer:
    """Writes members under ``target``, counting bytes; remembers what it created so it can undo it."""

    def __init__(self, archive: Path, target: Path, budget: _Budget) -> None:
        self.archive, self.target, self.budget = archive, target, budget
        self.stream_size: int | None = None   # a compressed tar: the ratio is the whole stream's
        self.files: list[Path] = []
        self.dirs: list[Path] = []

    def mkdir(self, d: Path) -> None:
        missing = []
        p = d
        while not p.exists():
            missing.append(p)
            p = p.parent
        for m in reversed(missing):
            try:
                m.mkdir()
            except OSError as e:
                raise UnsafeArchiveError(f"cannot create {m}: {e.strerror or e}") from None
            self.dirs.append(m)
        if not d.is_dir():
            raise UnsafeArchiveError(f"{d} exists and is not a folder")

    def dest(self, p: PurePosixPath) -> Path:
        dest = self.target.joinpath(*p.parts)
        root = self.target.resolve()
        if dest.parent.resolve() != root and root not in dest.parent.resolve().parents:
            raise UnsafeArchiveError(f"member {p.as_posix()!r} would be written outside the target through "
                                     "an existing link; refused")
        return dest

    def file(self, name: str, p: PurePosixPath, src: IO[bytes], declared: int, compressed: int | None) -> Path:
        dest = self.dest(p)
        self.mkdir(dest.parent)
        if (dest.exists() or dest.is_symlink()) and dest not in self.files:
            raise UnsafeArchiveError(f"member {name!r} would replace the existing {dest}; refused")
        n = 0
        try:
            f = dest.open("wb")
        except OSError as e:
            raise UnsafeArchiveError(f"cannot create {dest}: {e.strerror or e}") from None
        with f:
            if dest not in self.files:
                self.files.append(dest)
            while chunk := src.read(_CHUNK):
                n += len(chunk)
                self.budget.add(len(chunk))
                if n > declared:
                    raise UnsafeArchiveError(f"member {name!r} holds more than the {declared} bytes its header "
                                             "declares (corrupt or forged archive)")
                if compressed is not None:
                    self.budget.ratio(name, n, compressed)
                elif self.stream_size is not None:
                    self.budget.ratio("", self.budget.total, self.stream_size)
                try:
                    f.write(chunk)
                except OSError as e:
                    if e.errno in (errno.ENOSPC, errno.EDQUOT):
                        raise InsufficientSpaceError(f"no space left while extracting {self.archive.name} "
                                                     f"({human(self.budget.total)} written)", self.target) from None
                    raise UnsafeArchiveError(f"cannot write {dest}: {e.strerror or e}") from None
        return dest

    def undo(self) -> None:
        for f in reversed(self.files):
            f.unlink(missing_ok=True)
        for d in reversed(self.dirs):
            try:
                d.rmdir()
            except OSError:
                pass  # not empty: something else wrote there meanwhile; leave it


def safe_extract(archive: Path, target: Path, limits: ArchiveLimits | None = None) -> list[Path]:
    """Extract a zip or tar(.gz/.bz2/.xz) into ``target`` after checking every member, within ``limits``.

    Raises UnsafeArchiveError (ArchiveTooLargeError past a limit) or InsufficientSpaceError, after
    removing whatever it had written; returns the files written.
    """
    archive, target = Path(archive), Path(target)
    limits = limits or DEFAULT_LIMITS
    if zipfile.is_zipfile(archive):
        extract = _extract_zip
    else:
        try:
            is_tar = tarfile.is_tarfile(archive)
        except OSError:
            is_tar = False
        if not is_tar:
            raise UnsafeArchiveError("neither a zip nor a tar archive", archive)
        extract = _extract_tar
    budget = _Budget(limits)
    writer = _Writer(archive, target, budget)
    try:
        writer.mkdir(target)
        extract(archive, writer, limits)
    except UnsafeArchiveError as e:
        writer.undo()
        raise type(e)(e.message, archive) from None
    except BaseException:
        writer.undo()
        raise
    return list(writer.files)


def check_zip_sizes(archive: Path, limits: ArchiveLimits | None = None) -> None:
    """Refuse a zip read in place (GDAL's /vsizip/) whose declared sizes break ``limits``: before its
    CRCs are tested, which decompresses every member."""
    budget = _Budget(limits or DEFAULT_LIMITS)
    try:
        with zipfile.ZipFile(archive) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise UnsafeArchiveError(f"corrupt or truncated zip: {e}", archive) from None
    try:
        budget.members(len(infos))
        for info in infos:
            budget.add(info.file_size)
            budget.ratio(info.filename, info.file_size, info.compress_size)
    except ArchiveTooLargeError as e:
        raise ArchiveTooLargeError(e.message, archive) from None


def _check_space(archive: Path, target: Path, declared: int) -> None:
    free = free_bytes(target)
    if declared > free:
        raise InsufficientSpaceError(f"{archive.name} expands to {human(declared)} but only {human(free)} "
                                     "are free", target)


def _extract_zip(archive: Path, writer: _Writer, limits: ArchiveLimits) -> None:
    budget = writer.budget
    try:
        with zipfile.ZipFile(archive) as z:
            infos = z.infolist()
            budget.members(len(infos))
            declared = _Budget(limits)
            for info in infos:
                p = _check_name(info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    link = z.read(info).decode("utf-8", "replace")
                    if not _inside(p, link):
                        raise UnsafeArchiveError(f"member {info.filename!r} is a link to {link!r} outside the "
                                                 "target; refused")
                    raise UnsafeArchiveError(f"member {info.filename!r} is a symbolic link; refused")
                declared.add(info.file_size)
                declared.ratio(info.filename, info.file_size, info.compress_size)
            _check_space(archive, writer.target, declared.total)
            bad = z.testzip()
            if bad is not None:
                raise UnsafeArchiveError(f"member {bad!r} fails its CRC check (corrupt archive)")
            for info in infos:
                p = _check_name(info.filename)
                if info.is_dir():
                    writer.mkdir(writer.dest(p) if p.parts else writer.target)
                    continue
                with z.open(info) as src:
                    writer.file(info.filename, p, src, info.file_size, info.compress_size)
    except (UnsafeArchiveError, InsufficientSpaceError):
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise UnsafeArchiveError(f"corrupt or truncated zip: {e}") from None


def _members(t: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """Members one header at a time, so a limit stops the scan early instead of after reading them all."""
    while (m := t.next()) is not None:
        yield m


def _extract_tar(archive: Path, writer: _Writer, limits: ArchiveLimits) -> None:
    compressed = archive.stat().st_size
    writer.stream_size = compressed
    try:
        with tarfile.open(archive) as t:
            declared = _Budget(limits)
            members: list[tarfile.TarInfo] = []
            for m in _members(t):
                members.append(m)
                declared.members(len(members))
                p = _check_name(m.name)
                if m.issym() or m.islnk():
                    # hard links name a path from the archive root, symbolic ones from their folder
                    ok = _rel_ok(m.linkname) if m.islnk() else _inside(p, m.linkname)
                    if not ok:
                        raise UnsafeArchiveError(f"member {m.name!r} links to {m.linkname!r} outside the "
                                                 "target; refused")
                    raise UnsafeArchiveError(f"member {m.name!r} is a link; refused")
                if not (m.isfile() or m.isdir()):
                    raise UnsafeArchiveError(f"member {m.name!r} is not a regular file or directory; refused")
                declared.add(m.size)
                declared.ratio("", declared.total, compressed)  # a tar is compressed as one stream
            _check_space(archive, writer.target, declared.total)
            for m in members:
                p = _check_name(m.name)
                if m.isdir():
                    writer.mkdir(writer.dest(p) if p.parts else writer.target)
                    continue
                src = t.extractfile(m)
                if src is None:
                    raise UnsafeArchiveError(f"member {m.name!r} cannot be read")
                with src:
                    writer.file(m.name, p, src, m.size, None)
    except (UnsafeArchiveError, InsufficientSpaceError):
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError) as e:
        raise UnsafeArchiveError(f"corrupt or truncated tar: {e}") from None
