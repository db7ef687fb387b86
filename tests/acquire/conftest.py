"""Fixtures: a fresh local server per test (bucket + CDSE), pointed at by S2L2A_* variables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .fakeservers import FakeServices, fill_bucket, fill_catalogue, sample_files


@pytest.fixture(scope="session")
def files() -> dict[str, bytes]:
    return sample_files()


@pytest.fixture
def services(files: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServices]:
    srv = FakeServices()
    fill_bucket(srv.state, files)
    fill_catalogue(srv.state, files, srv.base)
    for k, v in srv.env(tmp_path / "cache").items():
        monkeypatch.setenv(k, v)
    for k in ("CDSE_USERNAME", "CDSE_PASSWORD"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    yield srv
    srv.stop()
