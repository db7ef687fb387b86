"""Shared HTTP rules against the local server: resume, back-off, Retry-After, checksums."""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import quote

import pytest

from s2l2a.acquire.download import Checksum, ChecksumError, Http, TransferError, retry_after_seconds
from s2l2a.acquire.settings import AcquireSettings

from .fakeservers import GCS_PATH, SAMPLE_NAME, FakeServices

B02 = f"tiles/56/J/MM/{SAMPLE_NAME}.SAFE/GRANULE/L1C_T56JMM_A015757_20180629T000241/IMG_DATA/T56JMM_20180629T000241_B02.jp2"


def _http(sleeps: list[float], **kw: object) -> Http:
    s = AcquireSettings.load(sleep=sleeps.append, **kw)
    return Http(s)


def _url(services: FakeServices, name: str) -> str:
    return f"{services.base}{GCS_PATH}/{quote(name, safe='')}?alt=media"


def test_dropped_connection_resumes_with_range(services: FakeServices, tmp_path: Path) -> None:
    data = services.state.objects[B02]
    services.state.faults["media:T56JMM_20180629T000241_B02.jp2"] += ["drop", "drop"]
    sleeps: list[float] = []
    dest = tmp_path / "B02.jp2"
    with _http(sleeps) as http:
        n = http.download(_url(services, B02), dest, size=len(data),
                          checksum=Checksum("md5", hashlib.md5(data).digest()))
    assert n == len(data) and dest.read_bytes() == data
    ranges = [h.get("range") for k, _, h in services.state.requests("media")]
    assert ranges[0] is None and ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-"
    assert len(ranges) == 3 and not (tmp_path / "B02.jp2.part").exists()


def test_429_honours_retry_after_and_503_backs_off(services: FakeServices) -> None:
    services.state.faults["list"] += ["429", "503", "503"]
    sleeps: list[float] = []
    with _http(sleeps, backoff=0.5, retry_after_max=300) as http:
        doc = http.get_json(services.base + GCS_PATH, params={"prefix": "tiles/56/J/MM/", "delimiter": "/"})
    assert doc["kind"] == "storage#objects"
    assert sleeps == [2.0, 1.0, 2.0]  # Retry-After: 2, then doubling back-off
    services.state.faults["list"] += ["503"] * 3
    with _http([], retries=2) as http, pytest.raises(TransferError, match="HTTP 503.*after 3 attempts"):
        http.get_json(services.base + GCS_PATH, params={"prefix": "x"})


def test_checksum_mismatch_refetched_then_reported(services: FakeServices, tmp_path: Path) -> None:
    data = services.state.objects[B02]
    good = Checksum("md5", hashlib.md5(data).digest())
    services.state.faults["media:T56JMM_20180629T000241_B02.jp2"] += ["corrupt"]
    with _http([]) as http:
        http.download(_url(services, B02), tmp_path / "a.jp2", size=len(data), checksum=good)
    assert (tmp_path / "a.jp2").read_bytes() == data
    services.state.faults["media:T56JMM_20180629T000241_B02.jp2"] += ["corrupt", "corrupt"]
    with _http([]) as http, pytest.raises(ChecksumError, match="md5 mismatch after 2 downloads"):
        http.download(_url(services, B02), tmp_path / "b.jp2", size=len(data), checksum=good)
    assert not (tmp_path / "b.jp2").exists() and not (tmp_path / "b.jp2.part").exists()


def test_crc32c_verification_and_retry_after_date() -> None:
    from s2l2a.acquire.download import _Crc32c

    c = _Crc32c()
    c.update(b"123456789")
    assert c.digest().hex() == "e3069283"  # the CRC-32C check value
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_seconds("7") == 7.0 and retry_after_seconds("soon") is None
