"""The campaign report: one self-contained HTML file, untrusted text escaped, renders in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from s2l2a.outputs.derive import DeriveSpec
from s2l2a.outputs.keep import derive_campaign
from s2l2a.outputs.report import collect, write_report

from .conftest import HOSTILE

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
            "--enable-logging=stderr", "--v=0", *extra, url]
    return subprocess.run(argv, capture_output=True, text=True, timeout=90, check=False)


def _console_lines(stderr: str) -> list[str]:
    """Chromium logs every page console message as ':CONSOLE' (whatever its level); the page has no script,
    so any such line (a CSP refusal, a failed load) is an error."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_report_is_self_contained_and_escapes_untrusted_text(campaign: Path) -> None:
    derive_campaign(campaign, DeriveSpec(clear_classes=(4, 5, 6)), "all")
    out = write_report(campaign)
    html = out.read_text(encoding="utf-8")
    assert HOSTILE not in html and "<script" not in html.lower()
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html  # shown, as text
    assert "onerror=alert(1)&gt;" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", html, re.I)  # nothing fetched
    assert "Content-Security-Policy" in html
    assert html.count("<svg") == 3  # tile map, run-time histogram, throughput
    assert html.count('src="data:image/png;base64,') == 4  # TCI + SCL quicklooks of the two done products
    for text in ("dem_error", "2.11.0", "ab" * 32, "29RKH", "56JMM", "L2A_Process exit 1"):
        assert text in html, text
    data = collect(campaign)
    assert data["summary"]["counts"] == {"queued": 1, "running": 0, "done": 2, "failed": 1, "skipped": 0}
    assert sorted(round(d) for d in data["durations"]) == [210, 210]
    assert set(data["footprints"]) == {"29RKH", "56JMM"}  # from the L2A and from the sample L1C metadata
    assert data["footprints"]["56JMM"][1] == "failed" and data["footprints"]["29RKH"][1] == "done"


def test_report_of_an_empty_campaign(tmp_path: Path) -> None:
    from s2l2a.campaign.settings import CampaignSettings
    from s2l2a.campaign.store import CampaignStore

    CampaignSettings().save(tmp_path)
    CampaignStore.open(tmp_path, create=True).close()
    html = write_report(tmp_path, tmp_path / "r.html").read_text()
    assert "No product footprints known yet" in html and "No product has run yet" in html


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium_without_console_errors(campaign: Path, tmp_path: Path) -> None:
    derive_campaign(campaign, DeriveSpec(), "all")
    out = write_report(campaign)
    url = out.resolve().as_uri()
    # positive control: the log filter does see console output of a page
    control = tmp_path / "control.html"
    control.write_text('<html><body><script>console.error("control-message")</script></body></html>')
    ctl = _chromium(control.as_uri(), tmp_path / "p0", "--dump-dom")
    assert any("control-message" in line for line in _console_lines(ctl.stderr)), ctl.stderr[-2000:]

    shot = tmp_path / "report.png"
    run = _chromium(url, tmp_path / "p1", f"--screenshot={shot}", "--window-size=1280,2000")
    assert run.returncode == 0, run.stderr[-2000:]
    assert _console_lines(run.stderr) == []
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    artefacts = os.environ.get("S2L2A_TEST_ARTEFACTS")
    if artefacts:
        Path(artefacts).mkdir(parents=True, exist_ok=True)
        shutil.copy2(shot, Path(artefacts) / "report-screenshot.png")
        shutil.copy2(out, Path(artefacts) / "report.html")

    dom = _chromium(url, tmp_path / "p2", "--dump-dom")
    assert dom.returncode == 0 and _console_lines(dom.stderr) == []
    page = dom.stdout
    assert page.count("<tr>") >= 1 + 1 + 2 + 5  # versions, gipp, failure and product rows (with headers)
    assert 'id="tile-map"' in page and 'id="failures"' in page and 'id="products"' in page
    assert "<script" not in page.lower()  # the hostile text stayed text after parsing
