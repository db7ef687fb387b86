"""A local HTTP server on 127.0.0.1 answering like Google's storage JSON API and CDSE (OData, identity,
download), with injectable faults. Built from the real recorded responses in tests/data/acquire and the
bundled real L1C sample; only the base URLs differ from the real services.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import re
import threading
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from s2l2a.acquire.download import _Crc32c

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "acquire"
SAMPLE = REPO / "data" / "sample" / "S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042.SAFE"
SAMPLE_NAME = SAMPLE.name[: -len(".SAFE")]
BUCKET = "gcp-public-data-sentinel-2"
GCS_PATH = f"/storage/v1/b/{BUCKET}/o"
TOKEN_PATH = "/auth/realms/CDSE/protocol/openid-connect/token"
SAMPLE_ID = "0b5b2a52-6b3e-4c1a-9a53-0e1f0a3c9d11"


_CRC_MEMO: dict[str, str] = {}


def crc32c_b64(data: bytes) -> str:
    key = hashlib.sha1(data).hexdigest()
    if key in _CRC_MEMO:
        return _CRC_MEMO[key]
    c = _Crc32c()
    c.update(data)
    _CRC_MEMO[key] = base64.b64encode(c.digest()).decode()
    return _CRC_MEMO[key]


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def sample_files() -> dict[str, bytes]:
    return {p.relative_to(SAMPLE).as_posix(): p.read_bytes() for p in sorted(SAMPLE.rglob("*")) if p.is_file()}


def zip_product(files: dict[str, bytes], top: str, extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, data in files.items():
            zf.writestr(f"{top}/{rel}", data)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


@dataclass
class State:
    """What the server holds and what it saw; tests add faults and read the log."""

    objects: dict[str, bytes] = field(default_factory=dict)
    crc_only: set[str] = field(default_factory=set)     # objects published without md5Hash
    products: list[dict[str, Any]] = field(default_factory=list)  # OData entries
    archives: dict[str, bytes] = field(default_factory=dict)      # product Id -> zip bytes
    faults: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    log: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    forms: list[dict[str, str]] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)
    refresh_tokens: set[str] = field(default_factory=set)
    users: dict[str, str] = field(default_factory=lambda: {"alice": "s3cret-pw"})
    page_size: int = 2
    token_counter: int = 0
    token_suffix: str = ""   # appended to issued tokens, so a test can look for them in every output
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fault(self, key: str) -> str | None:
        with self.lock:
            queue = self.faults.get(key)
            return queue.pop(0) if queue else None

    def requests(self, kind: str) -> list[tuple[str, str, dict[str, str]]]:
        return [r for r in self.log if r[0] == kind]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: State
    base: str

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    # -- helpers ------------------------------------------------------------------------------

    def _json(self, doc: Any, status: int = 200) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _echo(self, status: int, reason: str, doc: dict[str, str], headers: dict[str, str]) -> None:
        """An error answer that repeats what the client sent in its reason phrase, headers and body."""
        body = json.dumps({"error": "invalid", "echo": doc}).encode()
        self.send_response(status, reason.replace("\r", " ").replace("\n", " "))
        for k, v in headers.items():
            self.send_header(k, v.replace("\r", " ").replace("\n", " "))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _status(self, status: int, headers: dict[str, str] | None = None) -> None:
        body = json.dumps({"error": {"code": status, "message": "fault"}}).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _common_fault(self, fault: str | None) -> bool:
        if fault == "429":
            self._status(429, {"Retry-After": "2"})
        elif fault == "503":
            self._status(503)
        elif fault == "500":
            self._status(500)
        else:
            return False
        return True

    def _bytes(self, data: bytes, key: str) -> None:
        """Serve ``data`` honouring Range; faults: drop (half then close), corrupt (one byte flipped)."""
        fault = self.state.fault(key)
        if self._common_fault(fault):
            return
        if fault == "corrupt":
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = 0
        rng = self.headers.get("Range")
        m = re.match(r"bytes=(\d+)-$", rng or "")
        if m:
            start = int(m[1])
            if start >= len(data):
                self._status(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if fault == "drop":
            self.wfile.write(body[: max(1, len(body) // 2)])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    # -- routes -------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = unquote(url.path)
        if url.path.startswith(GCS_PATH + "/"):
            name = unquote(url.path[len(GCS_PATH) + 1:])
            self.state.log.append(("media", name, {k.lower(): v for k, v in self.headers.items()}))
            if name not in self.state.objects or q.get("alt") != "media":
                self._status(404)
                return
            self._bytes(self.state.objects[name], f"media:{name.rsplit('/', 1)[-1]}")
        elif url.path == GCS_PATH:
            self.state.log.append(("list", q.get("prefix", ""), q))
            if self._common_fault(self.state.fault("list")):
                return
            self._json(self._listing(q))
        elif path == "/odata/v1/Products":
            self.state.log.append(("odata", q.get("$filter", ""), q))
            if self._common_fault(self.state.fault("odata")):
                return
            page = int(q.get("page", "1"))
            entries = self.state.products[(page - 1) * self.state.page_size: page * self.state.page_size]
            doc: dict[str, Any] = {"@odata.context": "$metadata#Products(Attributes(),Assets())", "value": entries}
            if page * self.state.page_size < len(self.state.products):
                doc["@odata.nextLink"] = f"{self.base}/odata/v1/Products?page={page + 1}"
            self._json(doc)
        elif m := re.match(r"^/download/odata/v1/Products\((.+)\)/\$value$", path):
            self._download(m[1], redirect=True)
        elif m := re.match(r"^/zipper/odata/v1/Products\((.+)\)/\$value$", path):
            self._download(m[1], redirect=False)
        else:
            self._status(404)

    def _download(self, pid: str, redirect: bool) -> None:
        st = self.state
        auth = self.headers.get("Authorization", "")
        st.log.append(("download", pid, {k.lower(): v for k, v in self.headers.items()}))
        token = auth.removeprefix("Bearer ")
        if st.fault("download-echo") == "reject-echo":  # a 401 quoting the token back everywhere it can
            self._echo(401, f"Bearer {token} rejected", {"token": token, "authorization": auth},
                       {"WWW-Authenticate": f'Bearer error="invalid_token", token="{token}"'})
            return
        if token not in st.valid_tokens:
            self._status(401)
            return
        if pid not in st.archives:
            self._status(404)
            return
        if redirect:  # CDSE's download host hands over to another one
            self.send_response(302)
            self.send_header("Location", f"/zipper/odata/v1/Products({pid})/$value")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        fault = st.fault("expire")
        if fault == "expire-after-drop":  # the token dies while the transfer is cut
            st.faults["download"].insert(0, "drop")
            st.valid_tokens.discard(token)
        self._bytes(st.archives[pid], "download")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", "0"))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if urlsplit(self.path).path != TOKEN_PATH:
            self._status(404)
            return
        st = self.state
        st.forms.append(form)
        fault = st.fault("token")
        if fault == "echo":
            secret = form.get("password") or form.get("refresh_token", "")
            self._echo(401, f"Invalid password {secret}", form, {"X-Debug-Password": secret})
            return
        if fault == "bad-token":
            self._json({"access_token": f"bad\ntoken{st.token_suffix}", "expires_in": 600})
            return
        ok = False
        if form.get("client_id") != "cdse-public":
            ok = False
        elif form.get("grant_type") == "password":
            ok = st.users.get(form.get("username", "")) == form.get("password")
        elif form.get("grant_type") == "refresh_token":
            ok = form.get("refresh_token") in st.refresh_tokens
        if not ok:
            self._json({"error": "invalid_grant", "error_description": "Invalid user credentials"}, 401)
            return
        with st.lock:
            st.token_counter += 1
            n = st.token_counter
        access, refresh = f"access-{n}{st.token_suffix}", f"refresh-{n}{st.token_suffix}"
        st.valid_tokens.add(access)
        st.refresh_tokens.add(refresh)
        self._json({"access_token": access, "expires_in": 600, "refresh_expires_in": 3600,
                    "refresh_token": refresh, "token_type": "Bearer", "not-before-policy": 0,
                    "session_state": "x", "scope": "email profile"})

    def _listing(self, q: dict[str, str]) -> dict[str, Any]:
        prefix, delim = q.get("prefix", ""), q.get("delimiter")
        names = sorted(n for n in self.state.objects if n.startswith(prefix))
        items, prefixes = [], []
        for n in names:
            rest = n[len(prefix):]
            if delim and delim in rest:
                p = prefix + rest.split(delim, 1)[0] + delim
                if p not in prefixes:
                    prefixes.append(p)
            else:
                items.append(n)
        entries = [("p", p) for p in prefixes] + [("i", n) for n in items]
        size = self.state.page_size if delim else 20
        start = int(q.get("pageToken", "0"))
        chunk = entries[start:start + size]
        doc: dict[str, Any] = {"kind": "storage#objects"}
        if start + size < len(entries):
            doc["nextPageToken"] = str(start + size)
        if any(k == "p" for k, _ in chunk):
            doc["prefixes"] = [v for k, v in chunk if k == "p"]
        its = [self._item(v) for k, v in chunk if k == "i"]
        if its:
            doc["items"] = its
        return doc

    def _item(self, name: str) -> dict[str, Any]:
        data = self.state.objects[name]
        gen = "1530235406184224"
        item = {
            "kind": "storage#object", "id": f"{BUCKET}/{name}/{gen}",
            "selfLink": f"https://www.googleapis.com/storage/v1/b/{BUCKET}/o/{quote(name, safe='')}",
            "mediaLink": f"https://storage.googleapis.com/download/storage/v1/b/{BUCKET}/o/"
                         f"{quote(name, safe='')}?generation={gen}&alt=media",
            "name": name, "bucket": BUCKET, "generation": gen, "metageneration": "1",
            "contentType": "application/octet-stream", "storageClass": "MULTI_REGIONAL", "size": str(len(data)),
            "crc32c": crc32c_b64(data), "etag": "CKCg6pCe9dsCEAE=",
            "timeCreated": "2018-06-29T01:23:26.183Z", "updated": "2018-06-29T01:23:26.183Z",
            "timeStorageClassUpdated": "2018-06-29T01:23:26.183Z",
        }
        if name not in self.state.crc_only:
            item["md5Hash"] = md5_b64(data)
        return item


class FakeServices:
    """The running server: ``base`` URL, ``state``, and the environment that points s2l2a at it."""

    def __init__(self) -> None:
        self.state = State()
        handler = type("H", (Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        handler.base = self.base
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def env(self, cache: Path) -> dict[str, str]:
        return {
            "S2L2A_GCS_URL": self.base + GCS_PATH,
            "S2L2A_CDSE_CATALOGUE_URL": self.base + "/odata/v1",
            "S2L2A_CDSE_DOWNLOAD_URL": self.base + "/download/odata/v1",
            "S2L2A_CDSE_TOKEN_URL": self.base + TOKEN_PATH,
            "S2L2A_CACHE_DIR": str(cache),
            "S2L2A_BACKOFF": "0.001",
            "S2L2A_RETRY_AFTER_MAX": "0.01",
        }

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# -- content ------------------------------------------------------------------------------------

OTHER_DATE = "S2B_MSIL1C_20180709T000239_N0206_R030_T56JMM_20180709T012000"   # cloudy (MTD edited)
OLDER_COPY = "S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T005000"   # same scene, older generation
L2A_NAME = "S2A_MSIL2A_20180629T000241_N0206_R030_T56JMM_20180629T020000"


def fill_bucket(state: State, files: dict[str, bytes]) -> None:
    """Tile 56JMM holding the real sample, an older generation of it, a cloudy scene, an L2A folder."""
    prefix = "tiles/56/J/MM/"
    objs = state.objects
    for rel, data in files.items():
        objs[f"{prefix}{SAMPLE_NAME}.SAFE/{rel}"] = data
    objs[f"{prefix}{SAMPLE_NAME}.SAFE_$folder$"] = b""
    mtd = files["MTD_MSIL1C.xml"]
    objs[f"{prefix}{OLDER_COPY}.SAFE/MTD_MSIL1C.xml"] = mtd
    cloudy = re.sub(rb"<Cloud_Coverage_Assessment>[^<]*<", b"<Cloud_Coverage_Assessment>87.5<", mtd)
    objs[f"{prefix}{OTHER_DATE}.SAFE/MTD_MSIL1C.xml"] = cloudy
    objs[f"{prefix}{OTHER_DATE}.SAFE/manifest.safe"] = files["manifest.safe"]
    objs[f"{prefix}{L2A_NAME}.SAFE/MTD_MSIL2A.xml"] = b"<x/>"
    # one object published with CRC32C only (as composite uploads are)
    state.crc_only.add(f"{prefix}{SAMPLE_NAME}.SAFE/INSPIRE.xml")


def fill_catalogue(state: State, files: dict[str, bytes], base: str) -> bytes:
    """The real recorded OData entries plus one for the sample (real entry layout, sample's values)."""
    real = json.loads((DATA / "eodag_cop_dataspace_search_S2L1C.json").read_text())
    archive = zip_product(files, f"{SAMPLE_NAME}.SAFE")
    entry = copy.deepcopy(real["value"][0])
    entry.update({
        "Id": SAMPLE_ID, "Name": f"{SAMPLE_NAME}.SAFE", "ContentLength": len(archive),
        "S3Path": f"/eodata/Sentinel-2/MSI/L1C/2018/06/29/{SAMPLE_NAME}.SAFE",
        "Checksum": [{"Value": hashlib.md5(archive).hexdigest(), "Algorithm": "MD5",
                      "ChecksumDate": "2018-06-29T02:00:00.000000Z"}],
        "ContentDate": {"Start": "2018-06-29T00:02:41.024000Z", "End": "2018-06-29T00:02:41.024000Z"},
    })
    for att in entry["Attributes"]:
        if att["Name"] == "tileId":
            att["Value"] = "56JMM"
        elif att["Name"] == "cloudCover":
            att["Value"] = 0.0
        elif att["Name"] == "relativeOrbitNumber":
            att["Value"] = 30
    state.products = [*real["value"], entry]
    state.archives[SAMPLE_ID] = archive
    return archive
