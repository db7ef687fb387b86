"""Every real Sen2Cor log we have (tests/data/sen2cor/logs, see its SOURCE.md): its class, the line the
user is shown, the banner's version and supported product versions, the last progress line."""

from __future__ import annotations

from pathlib import Path

import pytest

from s2l2a.campaign.failures import FailureClass as F
from s2l2a.safe.psd import ProductVersion
from s2l2a.sen2cor.classify import KNOWN, classify_failure, last_progress, succeeded, telling_line
from s2l2a.sen2cor.version import parse_help, parse_products, parse_version

LOGS = Path(__file__).resolve().parents[1] / "data" / "sen2cor" / "logs"
RUNS = sorted(p.name for p in LOGS.glob("*.txt") if not p.name.endswith("_help.txt"))


def _log(name: str) -> str:
    return (LOGS / name).read_text()


# file -> (class when it ended with exit 1, what the shown line must start with, what it must contain)
FAILED = {
    "2.3.1_traceback_wrong_xml_identifier.txt": (
        F.BAD_INPUT, "wrong identifier for xml structure; AttributeError: 'NoneType' object has no attribute "
        "'fatal' (in L2A_Config.py setSchemes)", "does not recognise the product's metadata schema"),
    "2.5.5_critical_error_creating_user_product.txt": (
        F.BAD_INPUT, "L2A_Config: Error in creating L2A User Product", "Google Cloud"),
    "2.11_traceback_valueerror_win_modbuild.txt": (
        F.OTHER, "ValueError: zero-size array to reduction operation maximum which has no identity "
        "(in L2A_Tables.py sceneCouldHaveSnow)", ""),
    "3.1.0_traceback_attributeerror_spacecraft_name_partial.txt": (
        F.BAD_INPUT, "AttributeError: 'bool' object has no attribute 'SPACECRAFT_NAME' (in L2A_Config.py "
        "getEntriesFromDatastrip)", "3.3.0 and later"),
    "3.3.0_landsat_dem_shade_indexerror_truncated.txt": (
        F.DEM_ERROR, "IndexError: boolean index did not match indexed array along axis 0; size of axis is 3691 "
        "but size of cor (in L2A_BandIO_Landsat.py gdalDEM_Shade_Cast)", "fixed in 3.3.1"),
}
SUCCEEDED = ("2.11_run_success_N0208_no_cams_win_modbuild.txt", "2.11_run_success_N0500_win_modbuild.txt")
# logs cut before any end: what a run that hung (and was killed at its wall-clock limit) leaves
UNFINISHED = ("2.5.5_atmcorr_progress_truncated.txt", "2.5.5_pdgs_reset_banner_truncated.txt",
              "3.3.1_run_start_S2_psd15.txt")


def test_every_real_log_is_covered() -> None:
    assert sorted([*FAILED, *SUCCEEDED, *UNFINISHED]) == RUNS
    assert {k.source for k in KNOWN} <= set(RUNS)


@pytest.mark.parametrize("name", sorted(FAILED))
def test_failed_runs_get_their_class_and_sen2cors_own_words(name: str) -> None:
    expected, shown, meaning = FAILED[name]
    text = _log(name)
    assert not succeeded(text)
    for rc in (1, 0):  # Sen2Cor's exit status is not recorded in any of them: both give the same class
        assert classify_failure(rc, text) == expected
    line = telling_line(text, expected)
    assert line.startswith(shown), line
    assert meaning in line and "\n" not in line
    assert "File \"" not in line and "_methods.py" not in line  # never the last frame


@pytest.mark.parametrize("name", SUCCEEDED)
def test_successful_runs_are_successes_and_missing_cams_is_not_an_error(name: str) -> None:
    text = _log(name)
    assert succeeded(text)
    assert text.rstrip().endswith("Progress[%]: 100.00 : Application terminated successfully.")
    # had it failed for an unrelated reason, the informational CAMS/version lines would not be the cause
    assert classify_failure(1, text) == F.OTHER


@pytest.mark.parametrize("name", UNFINISHED)
def test_unfinished_runs_are_timeouts_showing_where_they_stood(name: str) -> None:
    text = _log(name)
    assert not succeeded(text)
    assert classify_failure(None, text, timed_out=True) == F.TIMEOUT
    assert classify_failure(1, text) == F.OTHER  # "Operation mode PDGS is not supported ..." is no bad input
    stood = last_progress(text)
    if "Progress[%]" in text:
        assert stood.startswith("Progress[%]: ")
    assert last_progress(_log("2.5.5_atmcorr_progress_truncated.txt")) == "Progress[%]: 14.37 : PID-58"


@pytest.mark.parametrize("name,version,supported", [
    ("2.5.5_critical_error_creating_user_product.txt", (2, 5, 5), "<= 14.5"),
    ("2.5.5_pdgs_reset_banner_truncated.txt", (2, 5, 5), "<= 14.5"),
    ("2.11_run_success_N0500_win_modbuild.txt", (2, 11, 0), "14.2 - 14.9"),
    ("2.11_run_success_N0208_no_cams_win_modbuild.txt", (2, 11, 0), "14.2 - 14.9"),
    ("3.3.1_run_start_S2_psd15.txt", (3, 3, 1), "15.0"),
    ("3.1.0_help.txt", (3, 1, 0), "14.2 - 14.9"),
    ("3.3.0_help.txt", (3, 3, 0), "15.0"),
    ("3.3.2_help.txt", (3, 3, 2), "15.1"),
])
def test_banners_give_version_and_supported_product_versions(name: str, version: tuple[int, int, int],
                                                             supported: str) -> None:
    text = _log(name)
    assert parse_version(text) == version
    products = parse_products(text)
    assert products is not None and products.text == supported


def test_help_texts_carry_the_range_into_sen2cor_info() -> None:
    info = parse_help(_log("3.3.2_help.txt"))
    assert info.number == (3, 3, 2) and info.resolutions == (10, 20, 30, 60)
    assert {"--tif", "--sc_cog", "--sc_classic", "--processing_baseline"} <= set(info.flags)
    assert info.products is not None and (info.products.low, info.products.high) == ((15, 0), (15, 1))
    help_dir = LOGS.parent / "help"
    assert parse_help((help_dir / "L2A_Process-help-2.8.0.txt").read_text()).products.text == "14.2 - 14.5"
    assert parse_help((help_dir / "L2A_Process-help-2.3.0.txt").read_text()).products.text == "14.x"


@pytest.mark.parametrize("banner,sen2cor,product,refused", [
    ("14.2 - 14.9", (2, 11, 0), ProductVersion(14, 8), False),     # baseline 04.00 datastrip: 14.08.02
    ("14.2 - 14.9", (2, 11, 0), ProductVersion(14, 10), True),     # what 2.11 warns "> 14.9" about
    ("14.2 - 14.9", (2, 11, 0), ProductVersion(15, 0), True),
    ("14.2 - 14.9", (2, 11, 0), ProductVersion(14), False),        # minor unknown: cannot refuse
    ("14.2 - 14.9", (2, 11, 0), ProductVersion(12), False),        # 2.x converts older products
    ("15.0", (3, 3, 0), ProductVersion(15, 0), False),
    ("15.0", (3, 3, 0), ProductVersion(15, 1), True),
    ("15.0", (3, 3, 0), ProductVersion(14, 9), True),              # 3.x names no older version
    ("15.0", (3, 3, 0), ProductVersion(14), True),
    ("15.1", (3, 3, 2), ProductVersion(15, 0), False),
    ("<= 14.5", (2, 5, 5), ProductVersion(14, 6), True),
    ("<= 14.5", (2, 5, 5), None, False),                           # nothing known: nothing refused
])
def test_which_sen2cor_reads_which_product(banner: str, sen2cor: tuple[int, int, int],
                                           product: ProductVersion | None, refused: bool) -> None:
    products = parse_products(f"supporting Level-1C product version {banner} started ...")
    why = products.verdict(product, sen2cor)
    assert (why is not None) == refused
    if refused:
        assert why == (f"product version {product} is outside what Sen2Cor {'.'.join(map(str, sen2cor))} reads "
                       f"({banner})")
