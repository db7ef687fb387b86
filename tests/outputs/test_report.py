"""The campaign report: one self-contained HTML file, untrusted text escaped, renders in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from s2l2a.campaign.exports import derive_campaign, report_data, write_report
from s2l2a.outputs.derive import DeriveSpec
from s2l2a.outputs.report import pace, runtime_hist_svg

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
    # quicklooks of the two done products: true colour as JPEG, SCL as PNG, each with its enlarge toggle
    assert html.count('src="data:image/jpeg;base64,') == 2 and html.count('src="data:image/png;base64,') == 2
    assert html.count('<label class="ql"') == 4 and html.count('<input type="checkbox"><img') == 4
    for text in ("dem_error", "2.11.0", "ab" * 32, "29RKH", "56JMM", "L2A_Process exit 1"):
        assert text in html, text
    data = report_data(campaign)
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


def test_runtime_axis_starts_at_zero_in_a_fitting_unit() -> None:
    for durations, unit in (([0.2, 0.3], "(s)"), ([210.0, 210.0], "(min)"), ([4 * 3600.0], "(h)")):
        svg = runtime_hist_svg(durations)
        assert unit in svg
        assert "\u2212" not in svg and "-0." not in svg  # no negative tick (matplotlib writes U+2212)


def test_pace_never_promises_an_end_it_cannot_know() -> None:
    def summary(tp, queued=0, running=0, eta=None):
        return {"counts": {"queued": queued, "running": running, "done": 0, "failed": 3},
                "throughput_per_hour": tp, "eta": eta}

    assert pace(summary(None, queued=4)) == "No product has finished yet: no throughput and no estimated end."
    assert pace(summary(None)) == "No product has finished; nothing is queued or running."
    assert pace(summary(12.5)) == "Throughput (recent): 12.5 products per hour · nothing is queued or running."
    assert pace(summary(12.5, queued=3, running=1, eta="2026-01-01T12:00:00Z")) == (
        "Throughput (recent): 12.5 products per hour · 4 queued or running, estimated end 2026-01-01T12:00:00Z.")


def test_report_lists_the_gipp_hashes_each_product_ran_with(campaign: Path) -> None:
    sha_a, sha_b = "a1" * 32, "b2" * 32
    with open(campaign / "logs" / "1.log", "a") as log:  # what Sen2CorProcessor writes per attempt
        log.write(f"s2l2a: --GIP_L2A /old/L2A_GIPP.xml {'00' * 32}\n")  # an earlier attempt
        log.write(f"s2l2a: --GIP_L2A /c/sen2cor/gipp/L2A_GIPP.xml {sha_a}\n")
        log.write(f"2026-01-01T10:00:00 s2l2a: --GIP_L2A_SC /c/L2A_CAL_SC_GIPP.xml {sha_b}\n")
    data = report_data(campaign)
    rows = {r.job_id: r for r in data["rows"]}
    assert rows[1].gipp == {"GIP_L2A": sha_a, "GIP_L2A_SC": sha_b}
    assert rows[2].gipp == {} and rows[3].gipp == {}  # nothing recorded / not done
    assert data["gipps_run"] == [(("GIP_L2A", sha_a), 1), (("GIP_L2A_SC", sha_b), 1)]
    html = write_report(campaign).read_text()
    assert sha_a in html and sha_b in html and "00" * 32 not in html
    assert "ab" * 32 in html  # the campaign's prepared GIPP copies are still listed, apart


def _overflow_probe(report: Path, dest: Path) -> Path:
    """The report with a script (the report itself has none and forbids them) that writes, once the
    page has loaded, whether anything is wider than the window."""
    html = report.read_text(encoding="utf-8")
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)
    probe = ("<script>window.addEventListener('load', () => { const d = document.documentElement;"
             " const p = document.createElement('p'); p.id = 'overflow-probe';"
             " p.textContent = `scroll=${d.scrollWidth} inner=${window.innerWidth}`;"
             " document.body.appendChild(p); });</script>")
    dest.write_text(html.replace("</body>", probe + "</body>"), encoding="utf-8")
    return dest


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)")
def test_report_has_no_horizontal_overflow_at_two_widths(campaign: Path, tmp_path: Path) -> None:
    from s2l2a.campaign.store import AttemptOutcome, CampaignStore

    long_path = "/scratch/" + "very_long_folder_name_without_any_space" * 12 + "/L2A_GIPP.xml"
    with CampaignStore.open(campaign) as store:  # a failure whose message is one long word
        store.start_attempt(4, "node2", 4242, str(campaign / "logs" / "4.log"), start="2026-01-01T11:00:00Z")
        (campaign / "logs" / "4.log").write_text(f"cannot read {long_path}\n" + "x" * 3000 + "\n")
        store.finish_attempt(4, AttemptOutcome("failed", failure_class="bad_input", message=f"missing {long_path}",
                                               exit_status=2, end="2026-01-01T11:01:00Z"))
    derive_campaign(campaign, DeriveSpec(), "all")
    out = write_report(campaign)
    probe = _overflow_probe(out, tmp_path / "probe.html")
    artefacts = os.environ.get("S2L2A_TEST_ARTEFACTS")
    for width in (1280, 540):  # headless Chromium windows are at least 500 px wide
        dom = _chromium(probe.as_uri(), tmp_path / f"d{width}", "--dump-dom", f"--window-size={width},1600")
        assert dom.returncode == 0, dom.stderr[-2000:]
        m = re.search(r'id="overflow-probe">scroll=(\d+) inner=(\d+)<', dom.stdout)
        assert m, dom.stdout[-500:]
        scroll, inner = int(m.group(1)), int(m.group(2))
        assert inner == width and scroll <= inner, (width, scroll, inner)
        shot = tmp_path / f"report-{width}.png"
        run = _chromium(out.resolve().as_uri(), tmp_path / f"s{width}", f"--screenshot={shot}",
                        f"--window-size={width},1600")
        assert run.returncode == 0 and _console_lines(run.stderr) == [] and shot.stat().st_size > 10_000
        if artefacts:
            Path(artefacts).mkdir(parents=True, exist_ok=True)
            shutil.copy2(shot, Path(artefacts) / shot.name)


def test_provenance_reads_what_the_sen2cor_processor_records(tmp_path: Path) -> None:
    """The log line format has one writer (Sen2CorProcessor) and one reader (outputs.provenance)."""
    from s2l2a.outputs.provenance import gipps_from_log
    from s2l2a.processors.sen2cor import _record_gipps

    gipp = tmp_path / "L2A_GIPP.xml"
    gipp.write_text("<L2A_GIPP/>")
    log = tmp_path / "job.log"
    written = _record_gipps(["L2A_Process", "--GIP_L2A", str(gipp), "/in/S2A.SAFE"], log)
    assert gipps_from_log(log) == written and set(written) == {"GIP_L2A"}
