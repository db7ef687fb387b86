"""HTTP shared by every source: retries with back-off, resumable verified downloads.

Why one module: politeness (429/5xx back-off honouring Retry-After), resume after a dropped
connection (HTTP Range), token refresh on 401 and checksum verification are the same problems for
the Google bucket and for CDSE; solving them once keeps both clients small and equally robust.
A file is written as ``<name>.part`` and renamed only once its size and checksum are right, so a
file without ``.part`` is always complete.

Secrets (passwords, bearer and refresh tokens, credentials in a URL) never reach a message or a log:
URLs are shown without user info and query (:func:`shown_url`), and every text that comes from a
failed request passes :meth:`Http.scrub`, which blanks the secrets registered with :meth:`Http.hide`.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import httpx

from s2l2a import __version__
from s2l2a.acquire.settings import AcquireSettings
from s2l2a.errors import S2L2AError

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
HIDDEN = "[hidden]"
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class TransferError(S2L2AError):
    """A request failed for good (after the retries it deserved)."""


class ChecksumError(TransferError):
    """A downloaded file kept failing its published checksum."""


class TokenSource(Protocol):
    """Bearer tokens for authenticated downloads (CDSE); ``refresh`` replaces a rejected one."""

    def token(self) -> str: ...

    def refresh(self, rejected: str) -> str: ...


@dataclass(frozen=True)
class Checksum:
    """A published digest: ``algorithm`` is "md5" or "crc32c", ``digest`` the raw bytes."""

    algorithm: str
    digest: bytes

    @classmethod
    def from_hex(cls, algorithm: str, value: str) -> Checksum:
        return cls(algorithm.lower(), bytes.fromhex(value))

    @classmethod
    def from_base64(cls, algorithm: str, value: str) -> Checksum:
        return cls(algorithm.lower(), base64.b64decode(value))


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


class _Crc32c:
    """CRC32C (Castagnoli) as GCS publishes it; uses google-crc32c or crc32c when installed."""

    def __init__(self) -> None:
        self._impl: Any = None
        try:
            import google_crc32c  # type: ignore[import-not-found]

            self._impl = google_crc32c.Checksum()
        except ImportError:
            self._value = 0
            try:
                import crc32c  # type: ignore[import-not-found]

                self._fast = crc32c.crc32c
            except ImportError:
                self._fast = None
                self._table = _crc32c_table()

    def update(self, data: bytes) -> None:
        if self._impl is not None:
            self._impl.update(data)
        elif self._fast is not None:
            self._value = self._fast(data, self._value)
        else:  # pure Python: slow, only used for objects that publish no MD5 (composite uploads)
            c = self._value ^ 0xFFFFFFFF
            t = self._table
            for b in data:
                c = t[(c ^ b) & 0xFF] ^ (c >> 8)
            self._value = c ^ 0xFFFFFFFF

    def digest(self) -> bytes:
        if self._impl is not None:
            return self._impl.digest()
        return self._value.to_bytes(4, "big")


def file_digest(path: Path, algorithm: str, chunk: int = 1 << 20) -> bytes:
    """Digest of a whole file with ``algorithm`` ("md5" or "crc32c")."""
    h: Any = _Crc32c() if algorithm == "crc32c" else hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.digest()


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date; None when absent/garbled."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _same_site(a: str, b: str) -> bool:
    """Keep credentials on redirects within one site (CDSE's download → zipper hosts), never elsewhere."""
    ha, hb = urlsplit(a).hostname or "", urlsplit(b).hostname or ""
    return ha == hb or ha.split(".")[-2:] == hb.split(".")[-2:] and ha.count(".") >= 1


class Http:
    """An httpx client plus the project's retry, redirect, auth and download rules."""

    def __init__(self, settings: AcquireSettings, client: httpx.Client | None = None) -> None:
        self.settings = settings
        self._secrets: set[str] = set()
        _quiet_http_traces()
        conns = max(4, settings.parallel * settings.object_parallel + 2)
        self.client = client or httpx.Client(
            timeout=httpx.Timeout(settings.timeout, connect=min(30.0, settings.timeout)),
            follow_redirects=False,
            headers={"User-Agent": f"s2l2a/{__version__}"},
            limits=httpx.Limits(max_connections=conns, max_keepalive_connections=conns),
        )

    def close(self) -> None:
        self.client.close()

    # -- secrets ------------------------------------------------------------------------------

    def hide(self, *values: str | None) -> None:
        """Register secrets (a password, tokens) that :meth:`scrub` blanks out of any text."""
        self._secrets.update(v for v in values if v and len(v) >= 4)

    def scrub(self, text: str) -> str:
        """``text`` without registered secrets and without anything after ``Bearer``/``Basic``."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, HIDDEN)
        return _BEARER.sub(lambda m: f"{m[1]} {HIDDEN}", text)

    def why(self, exc: BaseException) -> str:
        """One line for a failed request; protocol errors can quote a header, so only their kind is kept."""
        if isinstance(exc, httpx.LocalProtocolError):
            return f"{type(exc).__name__} (a request header was malformed; not shown)"
        return self.scrub(f"{type(exc).__name__}: {exc}")

    def __enter__(self) -> Http:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests -----------------------------------------------------------------------------

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait before retry ``attempt`` (0-based): Retry-After if given, else doubling."""
        s = self.settings
        if response is not None:
            ra = retry_after_seconds(response.headers.get("Retry-After"))
            if ra is not None:
                return min(ra, s.retry_after_max)
        return min(s.backoff * (2**attempt), s.backoff_max)

    def _send(self, method: str, url: str, params: Mapping[str, Any] | None, headers: dict[str, str],
              data: Mapping[str, str] | None, token: str | None) -> httpx.Response:
        origin = url
        for _ in range(10):
            hdrs = dict(headers)
            if token and _same_site(origin, url):
                hdrs["Authorization"] = f"Bearer {token}"
            req = self.client.build_request(method, url, params=params, headers=hdrs, data=data)
            resp = self.client.send(req, stream=True)
            if resp.status_code not in _REDIRECTS or "Location" not in resp.headers:
                return resp
            resp.close()
            url = urljoin(str(resp.request.url), resp.headers["Location"])
            params = None
            if resp.status_code == 303:
                method, data = "GET", None
        raise TransferError("too many redirects", url)

    def open(self, method: str, url: str, *, params: Mapping[str, Any] | None = None,
             headers: Mapping[str, str] | None = None, data: Mapping[str, str] | None = None,
             auth: TokenSource | None = None) -> httpx.Response:
        """A streamed response with a 2xx status (caller closes it); retries 429/5xx/transport errors."""
        retries = self.settings.retries
        refreshed = False
        attempt = 0
        while True:
            token = auth.token() if auth else None
            try:
                resp = self._send(method, url, params, dict(headers or {}), data, token)
            except (httpx.TransportError, UnicodeEncodeError) as exc:
                if isinstance(exc, UnicodeEncodeError | httpx.LocalProtocolError):
                    # a header that cannot be sent (a token with a newline or a non-ASCII character):
                    # retrying cannot help, and the error text would quote the header
                    raise TransferError("request refused before sending: a header (the access token?) holds "
                                        "characters HTTP does not allow; not shown", shown_url(url)) from None
                if attempt >= retries:
                    raise TransferError(f"{self.why(exc)} (after {attempt + 1} attempts)", shown_url(url)) from None
                wait = self.delay(attempt)
                log.info("%s: %s, retrying in %.1f s", shown_url(url), type(exc).__name__, wait)
                self.settings.sleep(wait)
                attempt += 1
                continue
            code = resp.status_code
            if code == 401 and auth is not None and token is not None and not refreshed:
                resp.close()
                auth.refresh(token)
                refreshed = True
                continue
            if code in RETRY_STATUS and attempt < retries:
                wait = self.delay(attempt, resp)
                resp.close()
                log.info("%s: HTTP %d, retrying in %.1f s", shown_url(url), code, wait)
                self.settings.sleep(wait)
                attempt += 1
                continue
            if code >= 400:
                resp.close()
                extra = f" after {attempt + 1} attempts" if code in RETRY_STATUS else ""
                raise TransferError(f"HTTP {code} {self.scrub(resp.reason_phrase)}{extra}", shown_url(url))
            return resp

    def get_json(self, url: str, *, params: Mapping[str, Any] | None = None,
                 auth: TokenSource | None = None) -> Any:
        """GET and decode JSON, retrying a body cut short like a failed request."""
        for attempt in range(self.settings.retries + 1):
            resp = self.open("GET", url, params=params, auth=auth)
            try:
                body = resp.read()
            except httpx.TransportError as exc:
                if attempt >= self.settings.retries:
                    raise TransferError(self.why(exc), shown_url(url)) from None
                self.settings.sleep(self.delay(attempt))
                continue
            finally:
                resp.close()
            try:
                return httpx.Response(200, content=body).json()
            except ValueError:
                raise TransferError("answer is not JSON", shown_url(url)) from None
        raise TransferError("no answer", shown_url(url))  # pragma: no cover

    # -- downloads ----------------------------------------------------------------------------

    def download(self, url: str, dest: Path, *, size: int | None = None, checksum: Checksum | None = None,
                 auth: TokenSource | None = None) -> int:
        """Download to ``dest`` via ``dest.part``, resuming what a previous try left; verify; rename.

        A connection dropped mid-file resumes with a Range request; a checksum mismatch re-fetches
        the file ``checksum_retries`` times, then raises ChecksumError.
        """
        s = self.settings
        part = dest.with_name(dest.name + ".part")
        part.parent.mkdir(parents=True, exist_ok=True)
        mismatches = failures = 0
        while True:
            have = part.stat().st_size if part.exists() else 0
            if size is not None and have > size:
                part.unlink()
                have = 0
            if size is None or have < size:
                got, error = self._fetch_into(url, part, have, auth)
                if error is not None or (size is not None and part.stat().st_size < size):
                    failures = 0 if got else failures + 1
                    if failures > s.retries:
                        raise TransferError(f"{error or 'transfer ended early'} (no progress after "
                                            f"{failures} attempts)", dest)
                    wait = self.delay(failures)
                    log.info("%s: %s after %d bytes, resuming in %.1f s", dest.name, error, got, wait)
                    s.sleep(wait)
                    continue
            actual = part.stat().st_size
            bad = size is not None and actual != size
            if not bad and checksum is not None:
                bad = file_digest(part, checksum.algorithm, s.chunk_size) != checksum.digest
            if bad:
                part.unlink()
                mismatches += 1
                what = "size" if size is not None and actual != size else checksum.algorithm if checksum else "size"
                if mismatches > s.checksum_retries:
                    raise ChecksumError(f"{what} mismatch after {mismatches} downloads "
                                        f"(the source's copy may be corrupt)", dest)
                log.warning("%s: %s mismatch, fetching it again", dest.name, what)
                continue
            os.replace(part, dest)
            return actual

    def _fetch_into(self, url: str, part: Path, have: int, auth: TokenSource | None) -> tuple[int, str | None]:
        """Append to ``part`` from byte ``have``; return (bytes received, error text or None)."""
        # identity encoding: byte offsets of a resume must count file bytes, not compressed ones
        headers = {"Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
        resp = self.open("GET", url, headers=headers, auth=auth)
        got = 0
        try:
            if have and resp.status_code == 206:
                start = _content_range_start(resp.headers.get("Content-Range"))
                if start != have:
                    return 0, f"server resumed at byte {start}, expected {have}"
                mode = "ab"
            elif resp.status_code == 200:
                mode = "wb"  # server ignored the range: start over
            else:
                return 0, f"unexpected HTTP {resp.status_code}"
            with open(part, mode) as fh:
                for chunk in resp.iter_raw():  # as received: a drop keeps every byte that arrived
                    fh.write(chunk)
                    got += len(chunk)
        except httpx.TransportError as exc:
            return got, self.why(exc)
        finally:
            resp.close()
        return got, None


def _content_range_start(value: str | None) -> int | None:
    try:
        return int((value or "").split(" ", 1)[1].split("-", 1)[0])
    except (IndexError, ValueError):
        return None


def _quiet_http_traces() -> None:
    """Keep httpcore's DEBUG trace off unless its level was set on purpose.

    That trace quotes response headers and the errors of refused requests, so a server echoing a
    token (or httpx quoting a header it cannot send) would put a secret into a debug log.
    """
    trace = logging.getLogger("httpcore")
    if trace.level == logging.NOTSET:
        trace.setLevel(logging.INFO)


def shown_url(url: str) -> str:
    """``url`` as messages and logs may show it: no user info (``user:password@``), no query, no fragment.

    The query goes because long OData filters drown the message and signed URLs carry tokens there.
    """
    text = str(url).split("#", 1)[0].split("?", 1)[0]
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    host, slash, path = rest.partition("/")
    return f"{scheme}{sep}{host.rpartition('@')[2]}{slash}{path}"
