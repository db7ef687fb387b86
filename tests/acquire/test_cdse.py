"""CDSE: OData search (real recorded entries), login/refresh, resumable archive download, safe unzip."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from s2l2a.acquire.cdse import UnsafeArchiveError, load_credentials, safe_extract
from s2l2a.cli import main
from s2l2a.errors import ConfigError

from .fakeservers import SAMPLE, SAMPLE_ID, SAMPLE_NAME, FakeServices

PASSWORD = "s3cret-pw"


def run(*args: str) -> object:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_search_real_entries_with_paging(services: FakeServices) -> None:
    res = run("search", "--source", "cdse", "-t", "54PXA", "-t", "55PBR", "--start", "2020-08-01",
              "--end", "2020-08-31", "--max-cloud", "100", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [(p["tile"], p["size"], p["baseline"]) for p in doc["products"]] == [
        ("54PXA", 224105657, "05.00"), ("55PBR", 172342246, "05.00")]
    assert doc["total_bytes"] == 224105657 + 172342246
    queries = services.state.requests("odata")
    assert len(queries) == 2 and queries[1][2] == {"page": "2"}  # @odata.nextLink followed as given
    flt = queries[0][1]
    assert "att/OData.CSC.StringAttribute/Value eq '54PXA'" in flt and "Value le 100.00" in flt
    assert queries[0][2]["$expand"] == "Attributes"
    assert services.state.forms == []  # searching needs no login


def test_fetch_with_drop_expired_token_and_redirect(services: FakeServices, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("CDSE_USERNAME", "alice")
    monkeypatch.setenv("CDSE_PASSWORD", PASSWORD)
    services.state.faults["expire"] += ["expire-after-drop"]
    services.state.faults["odata"] += ["503"]
    caplog.set_level(logging.DEBUG)
    res = run("fetch", str(tmp_path), "--source", "cdse", "-t", "56JMM", "--start", "2018-06-29",
              "--end", "2018-06-29", "-v")
    assert res.exit_code == 0, res.output
    product = tmp_path / f"{SAMPLE_NAME}.SAFE"
    got = {p.relative_to(product).as_posix(): p.read_bytes() for p in product.rglob("*") if p.is_file()}
    assert got == {p.relative_to(SAMPLE).as_posix(): p.read_bytes() for p in SAMPLE.rglob("*") if p.is_file()}
    grants = [f["grant_type"] for f in services.state.forms]
    assert grants == ["password", "refresh_token"]  # 401 on resume -> refreshed, not a new login
    downloads = services.state.requests("download")
    ranges = [h.get("range") for _, pid, h in downloads if pid == SAMPLE_ID]
    assert any(r and r != "bytes=0-" for r in ranges)  # resumed, not restarted
    assert all(h.get("authorization", "").startswith("Bearer access-") for _, _, h in downloads)
    assert not list((tmp_path / ".s2l2a-staging").iterdir())  # archive and extraction removed
    assert PASSWORD not in res.output and PASSWORD not in caplog.text


def test_credentials_from_netrc_and_missing(tmp_path: Path) -> None:
    url = "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"
    rc = tmp_path / "netrc"
    rc.write_text(f"machine identity.dataspace.copernicus.eu login bob password {PASSWORD}\n")
    rc.chmod(0o600)
    creds = load_credentials(url, env={}, netrc_file=rc)
    assert creds.username == "bob" and PASSWORD not in repr(creds)
    with pytest.raises(ConfigError, match="CDSE_USERNAME") as err:
        load_credentials(url, env={}, netrc_file=tmp_path / "none")
    assert "\n" not in str(err.value)


def test_wrong_password_is_one_line(services: FakeServices, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDSE_USERNAME", "alice")
    monkeypatch.setenv("CDSE_PASSWORD", "wrong-pw")
    res = run("fetch", str(tmp_path), "--source", "cdse", "-t", "56JMM", "--start", "2018-06-29",
              "--end", "2018-06-29")
    assert res.exit_code == 1
    assert "CDSE login failed (password): HTTP 401" in res.stderr and "wrong-pw" not in res.output


def _zip(entries: dict[str, bytes], link: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def test_archive_with_parent_entries_refused(services: FakeServices, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    evil = _zip({f"{SAMPLE_NAME}.SAFE/MTD_MSIL1C.xml": b"<x/>", f"{SAMPLE_NAME}.SAFE/../../evil.txt": b"owned"})
    import hashlib

    services.state.archives[SAMPLE_ID] = evil
    entry = services.state.products[-1]
    entry["ContentLength"] = len(evil)
    entry["Checksum"][0]["Value"] = hashlib.md5(evil).hexdigest()
    monkeypatch.setenv("CDSE_USERNAME", "alice")
    monkeypatch.setenv("CDSE_PASSWORD", PASSWORD)
    dest = tmp_path / "a" / "b"
    res = run("fetch", str(dest), "--source", "cdse", "-t", "56JMM", "--start", "2018-06-29", "--end", "2018-06-29")
    assert res.exit_code == 1 and "contains '..'; refused" in res.stderr
    assert not list(tmp_path.rglob("evil.txt")) and not (dest / f"{SAMPLE_NAME}.SAFE").exists()


def test_safe_extract_refuses_links_and_absolute(tmp_path: Path) -> None:
    for name, data, link in (("abs", {"/etc/x": b"1"}, None), ("link", {"P.SAFE/a": b"1"}, "P.SAFE/l")):
        arc = tmp_path / f"{name}.zip"
        arc.write_bytes(_zip(data, link))
        with pytest.raises(UnsafeArchiveError):
            safe_extract(arc, tmp_path / name)
        assert not (tmp_path / name).exists()  # checked before anything is written


def test_verified_archive_left_by_a_previous_run_is_reused(services: FakeServices, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDSE_USERNAME", "alice")
    monkeypatch.setenv("CDSE_PASSWORD", PASSWORD)
    staging = tmp_path / ".s2l2a-staging"
    staging.mkdir()
    (staging / f"{SAMPLE_NAME}.zip").write_bytes(services.state.archives[SAMPLE_ID])
    res = run("fetch", str(tmp_path), "--source", "cdse", "-t", "56JMM", "--start", "2018-06-29", "--end", "2018-06-29")
    assert res.exit_code == 0, res.output
    assert services.state.requests("download") == [] and services.state.forms == []
    assert (tmp_path / f"{SAMPLE_NAME}.SAFE" / "MTD_MSIL1C.xml").is_file()


def test_product_zip_bomb_refused_without_debris(services: FakeServices, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A product zip whose member expands 1000:1 is refused on its headers; nothing is unpacked."""
    import hashlib

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{SAMPLE_NAME}.SAFE/MTD_MSIL1C.xml", (SAMPLE / "MTD_MSIL1C.xml").read_bytes())
        zf.writestr(f"{SAMPLE_NAME}.SAFE/GRANULE/x/IMG_DATA/B04.jp2", bytes(20 << 20))
    bomb = buf.getvalue()
    services.state.archives[SAMPLE_ID] = bomb
    entry = services.state.products[-1]
    entry["ContentLength"] = len(bomb)
    entry["Checksum"][0]["Value"] = hashlib.md5(bomb).hexdigest()
    monkeypatch.setenv("CDSE_USERNAME", "alice")
    monkeypatch.setenv("CDSE_PASSWORD", PASSWORD)
    res = run("fetch", str(tmp_path), "--source", "cdse", "-t", "56JMM", "--start", "2018-06-29", "--end", "2018-06-29")
    assert res.exit_code == 1
    assert "has compression ratio above 200; refused as a possible archive bomb (raise [acquire] archive_max_gb" \
        in res.output and "corrupt" not in res.output
    staged = [p.name for p in (tmp_path / ".s2l2a-staging").iterdir()]
    assert staged == [f"{SAMPLE_NAME}.zip"]          # the download is kept for inspection, nothing unpacked
    assert not (tmp_path / f"{SAMPLE_NAME}.SAFE").exists()
