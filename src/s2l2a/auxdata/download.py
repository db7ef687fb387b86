"""Fetching auxiliary files into a shared cache.

Downloads go to ``.<stem>.part<suffix>`` next to their final place, resume with an HTTP Range request after a
dropped connection, are verified (the caller says how: zip integrity, GeoTIFF opens, size) and only
then renamed into place, so a cache shared by several users or nodes never holds a half file under a
final name. A file lock serialises two processes fetching the same tile.

Archives are unpacked with :func:`s2l2a.archive.safe_extract`. Messages show a
URL without user info or query (a mirror's credentials or a signed URL's token stay out of them).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from s2l2a.acquire.download import shown_url
from s2l2a.errors import S2L2AError


class DownloadError(S2L2AError):
    """A file could not be fetched, or arrived corrupt twice."""


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
                    raise NotFoundOnServer("not found on the server (404)", shown_url(url))
                if r.status_code == 416 and have:
                    return                       # we already have every byte
                if r.status_code not in (200, 206):
                    raise DownloadError(f"HTTP {r.status_code}", shown_url(url))
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
    raise DownloadError(f"download failed after {attempts} attempts ({last_error})", shown_url(url))


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
                        raise DownloadError(f"corrupt after re-fetch: {e}", shown_url(url)) from None
                    continue
                os.replace(part, dest)
                return dest
    finally:
        if own:
            client.close()
    raise AssertionError("unreachable")
