"""Fetching auxiliary files into a shared cache, and unpacking archives without trusting them.

Downloads go to ``.<stem>.part<suffix>`` next to their final place, resume with an HTTP Range request after a
dropped connection, are verified (the caller says how: zip integrity, GeoTIFF opens, size) and only
then renamed into place, so a cache shared by several users or nodes never holds a half file under a
final name. A file lock serialises two processes fetching the same tile.

Archives from outside (ESA-CCI packages, DEM zips) are checked member by member before anything is
written: absolute names, ``..``, links pointing outside the target and device files are refused with
one line naming the member.
"""

from __future__ import annotations

import fcntl
import os
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import httpx

from s2l2a.errors import S2L2AError


class DownloadError(S2L2AError):
    """A file could not be fetched, or arrived corrupt twice."""


class UnsafeArchiveError(S2L2AError):
    """An archive member would escape the target directory or is not a plain file/dir."""


class NotFoundOnServer(DownloadError):
    """The server says the file does not exist (404): e.g. an all-sea DEM tile."""


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock = path.with_name(path.name + ".lock")
    with lock.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _fetch_once(client: httpx.Client, url: str, part: Path, attempts: int) -> None:
    """Download ``url`` into ``part``, resuming with Range after dropped connections."""
    last_error = ""
    for _ in range(attempts):
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with client.stream("GET", url, headers=headers) as r:
                if r.status_code == 404:
                    raise NotFoundOnServer("not found on the server (404)", url)
                if r.status_code == 416 and have:
                    return                       # we already have every byte
                if r.status_code not in (200, 206):
                    raise DownloadError(f"HTTP {r.status_code}", url)
                total: int | None = None
                if r.status_code == 206:
                    cr = r.headers.get("content-range", "")
                    if not cr.startswith(f"bytes {have}-"):
                        part.unlink(missing_ok=True)     # another range than asked: start again
                        last_error = f"server answered range {cr!r} for offset {have}"
                        continue
                    if "/" in cr and cr.rsplit("/", 1)[1].isdigit():
                        total = int(cr.rsplit("/", 1)[1])
                else:
                    have = 0
                    if r.headers.get("content-length", "").isdigit():
                        total = int(r.headers["content-length"])
                with part.open("ab" if have else "wb") as f:
                    for chunk in r.iter_bytes():   # as received: no bytes lost when the link drops
                        f.write(chunk)
            size = part.stat().st_size
            if total is not None and size < total:
                last_error = f"connection closed at {size} of {total} bytes"
                continue
            return
        except (httpx.TransportError, httpx.RemoteProtocolError) as e:
            last_error = f"{type(e).__name__}: {e}"
            continue
    raise DownloadError(f"download failed after {attempts} attempts ({last_error})", url)


def fetch(url: str, dest: Path, verify: Callable[[Path], None], *, client: httpx.Client | None = None,
          attempts: int = 5) -> Path:
    """Fetch ``url`` to ``dest`` (skipped when present), resume, verify, re-fetch once if corrupt.

    ``verify(path)`` raises any exception for a bad file. A file corrupt twice is a one-line
    DownloadError naming the URL and what was wrong.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    own = client is None
    client = client or httpx.Client(timeout=httpx.Timeout(60.0), follow_redirects=True)
    try:
        with _locked(dest):
            if dest.exists():
                return dest
            # hidden, and keeping the real suffix so GDAL (/vsizip/) can open it for verification
            part = dest.with_name(f".{dest.stem}.part{dest.suffix}")
            for round_ in (1, 2):
                _fetch_once(client, url, part, attempts)
                try:
                    verify(part)
                except Exception as e:  # noqa: BLE001 - any verification failure means corrupt
                    part.unlink(missing_ok=True)
                    if round_ == 2:
                        raise DownloadError(f"corrupt after re-fetch: {e}", url) from None
                    continue
                os.replace(part, dest)
                return dest
    finally:
        if own:
            client.close()
    raise AssertionError("unreachable")


# -- safe extraction ------------------------------------------------------------------------------

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
