"""Version and flag sets read from the real ``L2A_Process --help`` texts of three releases."""

from __future__ import annotations

from pathlib import Path

import pytest

from s2l2a.sen2cor.version import Sen2CorVersionError, info_for, known_flags, parse_help, parse_version

HELP = Path(__file__).resolve().parents[1] / "data" / "sen2cor" / "help"


def _help(version: str) -> str:
    return (HELP / f"L2A_Process-help-{version}.txt").read_text()


def test_2_3_0_has_no_output_or_work_dir() -> None:
    info = parse_help(_help("2.3.0"))
    assert info.number == (2, 3, 0)
    assert info.version == "02.03.00"
    assert set(info.flags) == {"--resolution", "--sc_only", "--cr_only", "--refresh", "--GIP_L2A",
                               "--GIP_L2A_SC", "--GIP_L2A_AC"}
    assert not info.supports("--output_dir") and not info.supports("--processing_baseline")
    assert info.resolutions == (10, 20, 60)
    assert info.banner.startswith("Sentinel-2 Level 2A Prototype Processor (Sen2Cor). Version: 2.3.0")


def test_2_8_0_flags_match_the_table() -> None:
    info = parse_help(_help("2.8.0"))
    assert info.number == (2, 8, 0)
    assert info.flags == known_flags((2, 8, 0))
    assert info.flags["--output_dir"] is True and info.flags["--raw"] is False
    assert info.resolutions == (10, 20, 60)


def test_3_02_adds_resolution_30_and_cog() -> None:
    info = parse_help(_help("3.02.00"))
    assert info.number == (3, 2, 0)
    assert info.version == "03.02.00"
    assert info.resolutions == (10, 20, 30, 60)
    assert {"--sc_classic", "--sc_cog", "--Hyper_MS", "--GIP_L2A_PB"} <= set(info.flags)
    assert info.flags == known_flags((3, 2, 0))


@pytest.mark.parametrize("text,number", [
    ("Sen2Cor. Version: 02.10.01, created: 2021.12.06", (2, 10, 1)),
    ("Sentinel-2 Level 2A Processor (Sen2Cor). Version: 2.11.0, created", (2, 11, 0)),
    ("Version: 2.9", (2, 9, 0)),
])
def test_banner_variants(text: str, number: tuple[int, int, int]) -> None:
    assert parse_version(text) == number


def test_versions_compare_as_tuples() -> None:
    assert parse_version(_help("2.3.0")) < parse_version(_help("2.8.0")) < parse_version(_help("3.02.00"))


def test_help_without_usage_falls_back_to_table() -> None:
    info = parse_help("Sen2Cor. Version: 02.11.00, created: 2022")
    assert info.flags == known_flags((2, 11, 0)) and info.supports("--work_dir")
    assert info_for((2, 5, 5)).flags == known_flags((2, 3, 0))  # unrecorded releases: safe side


def test_no_banner_is_an_error() -> None:
    with pytest.raises(Sen2CorVersionError):
        parse_help("usage: something [-h]\n")
