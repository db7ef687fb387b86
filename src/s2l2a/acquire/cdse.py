"""Copernicus Data Space Ecosystem: OData search, token handling, resumable archive download, safe unzip.

Credentials come from ``CDSE_USERNAME``/``CDSE_PASSWORD`` or ``~/.netrc`` (machine = the identity
host) and are never logged or shown in errors: a malformed ``.netrc`` is reported by file and line
only (Python's own message quotes the offending token, which may be part of a password), and the
password and every token are registered with :meth:`Http.hide` before they are first sent. Tokens are refreshed before they expire and after a
401, so a download longer than a token's life (10 minutes on CDSE) resumes instead of restarting.
"""

from __future__ import annotations

import ast
import logging
import netrc
import os
import re
import shutil
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import shapely

from s2l2a.acquire.download import Checksum, Http, TransferError, file_digest
from s2l2a.acquire.query import Candidate, Query, is_l1c, metadata_match
from s2l2a.acquire.staging import HELD, finish, held, product_files, stage_dir
from s2l2a.archive import (
    ArchiveLimits,
    UnsafeArchiveError,  # noqa: F401 - part of this module's errors
)
from s2l2a.archive import safe_extract as checked_extract
from s2l2a.errors import ConfigError, ProductError, S2L2AError
from s2l2a.safe.errors import ProductNameError

log = logging.getLogger(__name__)
SOURCE = "cdse"
_TILES_PER_QUERY = 20


class AuthError(S2L2AError):
    """CDSE refused the credentials or the token endpoint failed."""


#: what an OAuth2 bearer token may hold (RFC 6750 b64token); anything else is not sent
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


@dataclass(frozen=True)
class Credentials:
    username: str = field(repr=False)
    password: str = field(repr=False)
    source: str = ""   # where they came from, for messages: "CDSE_USERNAME/CDSE_PASSWORD" or "<netrc> line N"


def _read_netrc(path: Path, host: str) -> Credentials | None:
    """The login for ``host`` in a netrc file; errors name the file and line, never the text there."""
    try:
        auth = netrc.netrc(str(path)).authenticators(host)
    except netrc.NetrcParseError as exc:
        raise ConfigError(f"malformed at line {_netrc_line(path, exc)} (the line is not shown: it may hold a password; "
                          "quote a password that contains spaces or '#', e.g. password \"pass word\")",
                          path) from None
    except UnicodeError:
        raise ConfigError("not readable as text (the bytes are not shown: they may hold a password)", path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or type(exc).__name__}", path) from None
    if auth and auth[0] and auth[2]:
        return Credentials(auth[0], auth[2], f"{path} (machine {host})")
    return None


def _netrc_line(path: Path, exc: netrc.NetrcParseError) -> int:
    """The line holding the token the parser choked on (its own count may be one line further on)."""
    m = re.fullmatch(r"bad (?:follower|toplevel) token (.+)", exc.msg or "")
    try:
        token = ast.literal_eval(m[1]) if m else None
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except (ValueError, SyntaxError, OSError):
        return exc.lineno
    if isinstance(token, str) and token:
        for i in range(min(exc.lineno, len(lines)), 0, -1):
            if token in lines[i - 1]:
                return i
    return exc.lineno


def load_credentials(token_url: str, env: dict[str, str] | None = None, netrc_file: Path | None = None) -> Credentials:
    """From the environment, else ``~/.netrc`` (``NETRC`` honoured); ConfigError saying how to set them."""
    env = dict(os.environ) if env is None else env
    user, pwd = env.get("CDSE_USERNAME"), env.get("CDSE_PASSWORD")
    if user and pwd:
        return Credentials(user, pwd, "CDSE_USERNAME/CDSE_PASSWORD")
    if bool(user) != bool(pwd):
        given, lacking = ("CDSE_USERNAME", "CDSE_PASSWORD") if user else ("CDSE_PASSWORD", "CDSE_USERNAME")
        raise ConfigError(f"CDSE credentials incomplete: {given} is set but {lacking} is not (set both, or "
                          "neither to use ~/.netrc)")
    path = netrc_file or Path(env.get("NETRC") or Path.home() / ".netrc").expanduser()
    host = urlsplit(token_url).hostname or ""
    if path.is_file():
        creds = _read_netrc(path, host)
        if creds is not None:
            return creds
    raise ConfigError(f"CDSE credentials missing: set CDSE_USERNAME and CDSE_PASSWORD, or add 'machine {host} "
                      f"login … password …' to {path}")


class Tokens:
    """OAuth2 password grant with refresh; thread-safe, shared by parallel downloads."""

    def __init__(self, http: Http, credentials: Credentials, margin_s: float = 60.0) -> None:
        self.http = http
        self._creds = credentials
        http.hide(credentials.password)
        self._lock = threading.Lock()
        self._access: str | None = None
        self._refresh: str | None = None
        self._expires = 0.0
        self._refresh_expires = 0.0
        self.margin = margin_s
        self.grants: list[str] = []  # grant types used, for diagnostics and tests

    def token(self) -> str:
        with self._lock:
            if self._access is None or time.monotonic() >= self._expires - self.margin:
                self._renew()
            assert self._access is not None
            return self._access

    def refresh(self, rejected: str) -> str:
        with self._lock:
            if self._access == rejected:  # another thread may have refreshed already
                self._renew(force=True)
            assert self._access is not None
            return self._access

    def _renew(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._refresh and now < self._refresh_expires - self.margin:
            try:
                self._grant({"grant_type": "refresh_token", "refresh_token": self._refresh})
                return
            except AuthError:
                log.info("CDSE refresh token refused; logging in again")
        self._grant({"grant_type": "password", "username": self._creds.username, "password": self._creds.password})

    def _grant(self, form: dict[str, str]) -> None:
        s = self.http.settings
        data = {**form, "client_id": s.cdse_client_id}
        try:
            resp = self.http.open("POST", s.cdse_token_url, data=data)
        except TransferError as exc:
            whose = f" (credentials from {self._creds.source})" if form["grant_type"] == "password" and \
                self._creds.source else ""
            raise AuthError(f"CDSE login failed ({form['grant_type']}): {self.http.scrub(exc.message)}{whose}") from None
        try:
            doc = resp.read() and resp.json()
        except ValueError:
            doc = None
        finally:
            resp.close()
        if not isinstance(doc, dict) or "access_token" not in doc:
            raise AuthError("CDSE token endpoint answered without an access token")
        access, refresh = doc["access_token"], doc.get("refresh_token")
        self.http.hide(access if isinstance(access, str) else None, refresh if isinstance(refresh, str) else None)
        if not isinstance(access, str) or not _TOKEN_RE.fullmatch(access):
            raise AuthError("CDSE token endpoint answered a malformed access token (not shown); is "
                            "cdse_token_url right?")
        if refresh is not None and (not isinstance(refresh, str) or not _TOKEN_RE.fullmatch(refresh)):
            refresh = None  # log in again when the access token expires
        now = time.monotonic()
        self.grants.append(form["grant_type"])
        self._access = access
        self._expires = now + _seconds(doc.get("expires_in"), 600.0)
        self._refresh = refresh
        self._refresh_expires = now + _seconds(doc.get("refresh_expires_in"), 3600.0)


def _seconds(value: Any, default: float) -> float:
    """A token lifetime from the endpoint's answer; the default when absent or not a number."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return default
    return out if out == out and 0 < out < 10**7 else default


def _attr(att_type: str, name: str, op: str, value: str) -> str:
    return (f"Attributes/OData.CSC.{att_type}/any(att:att/Name eq '{name}' and "
            f"att/OData.CSC.{att_type}/Value {op} {value})")


def _odata_time(t: Any) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def build_filters(query: Query) -> list[str]:
    """OData ``$filter`` expressions for a query (one per group of tiles, or one AOI intersection)."""
    base = ["Collection/Name eq 'SENTINEL-2'", _attr("StringAttribute", "productType", "eq", "'S2MSI1C'")]
    if query.start:
        base.append(f"ContentDate/Start ge {_odata_time(query.start)}")
    if query.end:
        base.append(f"ContentDate/Start le {_odata_time(query.end)}")
    if query.max_cloud is not None:
        base.append(_attr("DoubleAttribute", "cloudCover", "le", f"{query.max_cloud:.2f}"))
    if query.platforms:
        ors = " or ".join(_attr("StringAttribute", "platformSerialIdentifier", "eq", f"'{p[-1]}'")
                          for p in query.platforms)
        base.append(f"({ors})")
    if query.orbits:
        ors = " or ".join(_attr("IntegerAttribute", "relativeOrbitNumber", "eq", str(o)) for o in query.orbits)
        base.append(f"({ors})")
    if query.aoi is not None:
        geom = shapely.simplify(query.aoi, 0.01) if len(shapely.get_coordinates(query.aoi)) > 200 else query.aoi
        wkt = shapely.to_wkt(geom, rounding_precision=6)
        return [" and ".join([*base, f"OData.CSC.Intersects(area=geography'SRID=4326;{wkt}')"])]
    out = []
    for i in range(0, len(query.tiles), _TILES_PER_QUERY):
        group = query.tiles[i:i + _TILES_PER_QUERY]
        ors = " or ".join(_attr("StringAttribute", "tileId", "eq", f"'{t}'") for t in group)
        out.append(" and ".join([*base, f"({ors})"]))
    return out


def candidate_from_entry(entry: dict[str, Any]) -> Candidate | None:
    """A Candidate from one OData ``Products`` entry (None for anything that is not an L1C product)."""
    name = str(entry.get("Name", ""))
    if not is_l1c(name):
        return None
    attrs = {a.get("Name"): a.get("Value") for a in entry.get("Attributes") or []}
    md5 = next((c.get("Value") for c in entry.get("Checksum") or [] if str(c.get("Algorithm")).upper() == "MD5"), None)
    try:
        c = Candidate.from_name(name, SOURCE, str(entry["Id"]), size=entry.get("ContentLength"), checksum=md5,
                                online=bool(entry.get("Online", True)))
    except (KeyError, ProductNameError):
        return None
    if attrs.get("cloudCover") is not None:
        c.cloud_cover = float(attrs["cloudCover"])
    if c.tile is None and attrs.get("tileId"):
        c.tile = str(attrs["tileId"])
    if c.baseline is None and attrs.get("processorVersion"):
        c.baseline = str(attrs["processorVersion"])
    return c


class CdseSource:
    """Search the CDSE catalogue and download product archives (anonymous search, authenticated download)."""

    name = SOURCE
    summary = "Copernicus Data Space (CDSE_USERNAME/CDSE_PASSWORD or ~/.netrc)"
    archives = True  # zips: the archive and its extraction coexist briefly

    def __init__(self, http: Http, credentials: Credentials | None = None) -> None:
        self.http = http
        self.settings = http.settings
        self._credentials = credentials
        self._tokens: Tokens | None = None

    @property
    def tokens(self) -> Tokens:
        if self._tokens is None:
            creds = self._credentials or load_credentials(self.settings.cdse_token_url)
            self._tokens = Tokens(self.http, creds)
        return self._tokens

    def search(self, query: Query) -> list[Candidate]:
        url = f"{self.settings.cdse_catalogue_url.rstrip('/')}/Products"
        found: dict[str, Candidate] = {}
        for flt in build_filters(query):
            params: dict[str, Any] | None = {
                "$filter": flt, "$top": str(self.settings.page_size), "$expand": "Attributes",
                "$orderby": "ContentDate/Start asc",
            }
            next_url: str | None = url
            while next_url:
                page = self.http.get_json(next_url, params=params)
                for entry in page.get("value", []):
                    c = candidate_from_entry(entry)
                    if c is not None and metadata_match(c, query):
                        found.setdefault(c.name, c)
                next_url = page.get("@odata.nextLink")
                params = None  # the next link carries the whole query
        offline = [c.name for c in found.values() if not c.online]
        if offline:
            log.warning("%d product(s) offline at CDSE (ordering needed): %s", len(offline), ", ".join(offline[:3]))
        return list(found.values())

    def download(self, cand: Candidate, dest_dir: Path, stage_root: Path) -> Path:
        """Archive with resume and MD5 check, then safe extraction, then the move into place."""
        if not cand.online:
            raise TransferError("product is offline at CDSE (order it first)", cand.name)
        url = f"{self.settings.cdse_download_url.rstrip('/')}/Products({cand.ref})/$value"
        archive = stage_root / f"{cand.name}.zip"
        checksum = Checksum.from_hex("md5", cand.checksum) if cand.checksum else None
        if not _verified(archive, cand.size, checksum):  # a previous run may have stopped while unpacking
            self.http.download(url, archive, size=cand.size, checksum=checksum, auth=self.tokens)
        stage = stage_dir(stage_root, cand.name)
        shutil.rmtree(stage, ignore_errors=True)
        limits = ArchiveLimits(max_bytes=int(self.settings.archive_max_gb * 10**9),
                               hint=" (raise [acquire] archive_max_gb if the product is genuine)")
        safe_extract(archive, stage, strip_top=True, limits=limits)
        files = {k[: -len(HELD)] if k.endswith(HELD) else k: v for k, v in product_files(stage).items()}
        if not any(held(k) != k for k in files):
            shutil.rmtree(stage, ignore_errors=True)
            raise ProductError(f"archive holds no product metadata for {cand.name}", archive)
        final = finish(stage, dest_dir, cand, files)
        archive.unlink(missing_ok=True)
        return final


def _verified(path: Path, size: int | None, checksum: Checksum | None) -> bool:
    if not path.is_file() or (size is not None and path.stat().st_size != size):
        return False
    return checksum is None or file_digest(path, checksum.algorithm) == checksum.digest


def safe_extract(archive: Path, dest: Path, *, strip_top: bool = False,
                 limits: ArchiveLimits | None = None) -> list[Path]:
    """Unpack a CDSE product zip with the project's checked extraction (no ``..``, links, bombs: ``limits``).

    ``strip_top``: drop the single top folder (``<name>.SAFE/``) so ``dest`` becomes the product
    folder, and hold its metadata file (see ``staging``) until the product is moved into place.
    """
    if not zipfile.is_zipfile(archive):
        raise ProductError("not a zip archive", archive)
    unpack = dest.with_name(f".{dest.name}.unzip")
    shutil.rmtree(unpack, ignore_errors=True)
    try:
        checked_extract(archive, unpack, limits)
        tops = list(unpack.iterdir())
        root = tops[0] if strip_top and len(tops) == 1 and tops[0].is_dir() else unpack
        dest.mkdir(parents=True, exist_ok=True)
        for child in root.iterdir():
            name = held(child.name) if strip_top and child.is_file() else child.name
            os.replace(child, dest / name)
    finally:
        shutil.rmtree(unpack, ignore_errors=True)
    return sorted(p for p in dest.rglob("*") if p.is_file())
