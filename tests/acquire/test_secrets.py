"""No part of a credential is ever shown: one test per source (netrc, environment, URLs, tokens, 401s).

Each test collects everything a user or an administrator could see (stdout, stderr, every log record at
DEBUG, the exception text) and asserts the secret is in none of it.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from s2l2a.acquire.cdse import AuthError, CdseSource, Credentials, load_credentials
from s2l2a.acquire.download import Http, TransferError
from s2l2a.acquire.settings import AcquireSettings
from s2l2a.auxdata.download import DownloadError, fetch
from s2l2a.cli import main
from s2l2a.errors import ConfigError

from .fakeservers import SAMPLE_NAME, TOKEN_PATH, FakeServices

HOST = "identity.dataspace.copernicus.eu"
TOKEN_URL = f"https://{HOST}/auth/realms/CDSE/protocol/openid-connect/token"
PASSWORD = "s3cret-pw"     # the fake server's password for alice
SUFFIX = "-Zq9XsEcReT"     # appended to every token the fake server issues


def fetch_cdse(target: Path) -> Result:
    return CliRunner().invoke(main, ["fetch", str(target), "--source", "cdse", "-t", "56JMM", "--start", "2018-06-29",
                                     "--end", "2018-06-29", "-v"], catch_exceptions=False)


def seen(res: Result | None, caplog: pytest.LogCaptureFixture, *more: str) -> str:
    """Everything shown: stdout, stderr, every log record (DEBUG and up), extra texts."""
    parts = [caplog.text, *(r.getMessage() for r in caplog.records), *more]
    if res is not None:
        parts += [res.stdout, res.stderr]
    return "\n".join(parts)


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


@pytest.mark.parametrize("content, line", [
    (f"machine {HOST} login bob password Tr0ub4dor &3horse\n", 1),               # the reported case
    (f"# mine\nmachine {HOST}\n  login bob\n  password Tr0ub4dor &3horse\n", 4),
    (f"default login bob password Tr0ub4dor &3horse extra\nmachine {HOST} login x password y\n", 1),
])
def test_malformed_netrc_names_file_and_line_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture, content: str, line: int) -> None:
    rc = tmp_path / "netrc"
    rc.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_credentials(TOKEN_URL, env={}, netrc_file=rc)
    assert str(err.value).startswith(f"{rc}: malformed at line {line} (the line is not shown")
    for k in ("CDSE_USERNAME", "CDSE_PASSWORD"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("NETRC", str(rc))
    monkeypatch.setenv("S2L2A_CDSE_TOKEN_URL", TOKEN_URL)
    monkeypatch.setenv("S2L2A_CDSE_DOWNLOAD_URL", "http://127.0.0.1:9/odata/v1")
    src = CdseSource(Http(AcquireSettings.load()))
    with pytest.raises(ConfigError) as err2:
        src.tokens  # noqa: B018 - the property reads the credentials
    shown = seen(None, caplog, str(err.value), repr(err.value), str(err2.value))
    for piece in ("Tr0ub4dor", "&3horse", "3horse", "horse"):
        assert piece not in shown
    assert "\n" not in str(err.value)


def test_netrc_that_is_not_text_is_not_quoted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rc = tmp_path / "netrc"
    rc.write_bytes(f"machine {HOST} login bob password Gl\xe4nzend\xff\n".encode("latin-1"))
    try:
        creds = load_credentials(TOKEN_URL, env={}, netrc_file=rc)
    except ConfigError as e:
        assert str(e) == f"{rc}: not readable as text (the bytes are not shown: they may hold a password)"
        assert "nzend" not in seen(None, caplog, repr(e)) and "Gl" not in str(e)
    else:  # a locale that decodes Latin-1 reads it: then it is simply a password
        assert creds.username == "bob" and "nzend" not in repr(creds)


def test_credentials_never_in_repr_and_source_named(tmp_path: Path) -> None:
    creds = load_credentials(TOKEN_URL, env={"CDSE_USERNAME": "alice", "CDSE_PASSWORD": PASSWORD})
    assert PASSWORD not in repr(creds) and "alice" not in repr(creds)
    assert creds.source == "CDSE_USERNAME/CDSE_PASSWORD"
    rc = tmp_path / "netrc"
    rc.write_text(f'machine {HOST} login bob password "pass word #1"\n')
    creds = load_credentials(TOKEN_URL, env={}, netrc_file=rc)
    assert creds.password == "pass word #1" and creds.source == f"{rc} (machine {HOST})"


@pytest.mark.parametrize("env, lacking", [({"CDSE_PASSWORD": PASSWORD}, "CDSE_USERNAME"),
                                          ({"CDSE_USERNAME": "alice"}, "CDSE_PASSWORD")])
def test_incomplete_environment_credentials(env: dict[str, str], lacking: str, tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ConfigError) as err:
        load_credentials(TOKEN_URL, env=env, netrc_file=tmp_path / "none")
    assert f"but {lacking} is not" in str(err.value)
    assert PASSWORD not in seen(None, caplog, str(err.value)) and "alice" not in str(err.value)


def test_wrong_env_password_echoed_by_the_server_is_not_shown(services: FakeServices, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("CDSE_USERNAME", "alice")
    monkeypatch.setenv("CDSE_PASSWORD", "Wr0ng-pa55word")
    services.state.faults["token"] += ["echo"]          # 401 quoting the password in reason, header, body
    res = fetch_cdse(tmp_path)
    assert res.exit_code == 1
    assert "CDSE login failed (password): HTTP 401 Invalid password [hidden]" in res.stderr
    assert "(credentials from CDSE_USERNAME/CDSE_PASSWORD)" in res.stderr
    assert "Wr0ng-pa55word" not in seen(res, caplog)
    assert services.state.forms[0]["password"] == "Wr0ng-pa55word"      # it was sent, only to the server


def test_download_401_quoting_the_token_shows_no_token(services: FakeServices, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("CDSE_USERNAME", "alice")
    monkeypatch.setenv("CDSE_PASSWORD", PASSWORD)
    services.state.token_suffix = SUFFIX
    services.state.faults["download-echo"] += ["reject-echo"] * 4   # first try and the one after a refresh
    res = fetch_cdse(tmp_path)
    assert res.exit_code != 0
    sent = [h["authorization"] for kind, _, h in services.state.log if kind == "download"]
    assert sent and all(a.startswith("Bearer access-") and a.endswith(SUFFIX) for a in sent)
    assert "HTTP 401 Bearer [hidden] rejected" in res.output
    shown = seen(res, caplog)
    assert SUFFIX not in shown and PASSWORD not in shown and "access-1" not in shown and "refresh-1" not in shown
    assert not (tmp_path / f"{SAMPLE_NAME}.SAFE").exists()


def test_malformed_token_from_the_endpoint_is_refused_unshown(services: FakeServices, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    services.state.token_suffix = SUFFIX
    services.state.faults["token"] += ["bad-token"]      # an access token with a newline in it
    settings = AcquireSettings.load(env={"S2L2A_CDSE_TOKEN_URL": services.base + TOKEN_PATH})
    src = CdseSource(Http(settings), Credentials("alice", PASSWORD, "test"))
    with pytest.raises(AuthError) as err:
        src.tokens.token()
    assert "malformed access token (not shown)" in str(err.value)
    assert SUFFIX not in seen(None, caplog, str(err.value)) and PASSWORD not in str(err.value)


def test_a_header_that_cannot_be_sent_is_not_quoted(services: FakeServices, caplog: pytest.LogCaptureFixture) -> None:
    """httpx's own error would quote the header (b'Bearer ...'): the message names the header kind only."""

    class Tok:
        def token(self) -> str:
            return f"abc\nxyz{SUFFIX}"

        def refresh(self, rejected: str) -> str:
            return rejected

    http = Http(AcquireSettings.load(env={}))
    with pytest.raises(TransferError) as err:
        http.open("GET", services.base + "/download/odata/v1/Products(x)/$value", auth=Tok())
    assert "not shown" in str(err.value)
    assert SUFFIX not in seen(None, caplog, str(err.value))
    assert http.scrub(f"Authorization: Bearer abcdefgh{SUFFIX}") == "Authorization: Bearer [hidden]"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_credentials_inside_urls_are_not_shown(services: FakeServices, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    # a token URL with user info and a signed query; wrong password -> 401
    monkeypatch.setenv("S2L2A_CDSE_TOKEN_URL", services.base.replace("http://", "http://me:UrlPa55@")
                       + TOKEN_PATH + "?sig=Q5ecret")
    monkeypatch.setenv("CDSE_USERNAME", "alice")
    monkeypatch.setenv("CDSE_PASSWORD", "wrong-one")
    res = fetch_cdse(tmp_path)
    assert res.exit_code == 1 and "HTTP 401" in res.stderr
    # a mistyped scheme is refused by the settings check, URL shown without its secrets
    with pytest.raises(ConfigError) as err:
        AcquireSettings.load(env={"S2L2A_GCS_URL": "ftp://me:UrlPa55@example.org/b?sig=Q5ecret"})
    assert "ftp://example.org/b" in str(err.value)
    # a DEM mirror with credentials that does not answer
    mirror = f"http://me:UrlPa55@127.0.0.1:{_closed_port()}/dem/tile.tif?sig=Q5ecret"
    with pytest.raises(DownloadError) as err2:
        fetch(mirror, tmp_path / "dem" / "tile.tif", lambda p: None, attempts=1)
    assert f"127.0.0.1:{mirror.split(':')[3].split('/')[0]}/dem/tile.tif" in str(err2.value)
    shown = seen(res, caplog, str(err.value), str(err2.value))
    assert "UrlPa55" not in shown and "Q5ecret" not in shown and "wrong-one" not in shown
