"""CAMS data for Sen2Cor 3: which dates a daily/monthly folder covers, placing a user's folder safely."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from s2l2a.sen2cor.cams import dated_files, scan, uncovered


def _touch(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"CDF\x01")
    return folder


def test_daily_and_monthly_coverage(tmp_path: Path) -> None:
    daily = _touch(tmp_path / "daily", "z_cams_c_ecmf_20240101000000_prod_fc_sfc_012_aod550.nc",
                   "cams_2024-01-03.nc", "CAMS_AOT_20240104_UTC_1200.nc", "README.txt", ".hidden_20240105.nc")
    monthly = _touch(tmp_path / "monthly", "cams_monthly_202402.nc", "x_2024-03.grib", "notes_2024.txt")
    cov = scan(daily, monthly)
    assert cov.days == {date(2024, 1, 1), date(2024, 1, 3), date(2024, 1, 4)}
    assert cov.months == {(2024, 2), (2024, 3)}
    assert cov.undated == 2                               # README.txt, notes_2024.txt (hidden files ignored)
    assert cov.covers(date(2024, 1, 3)) and cov.covers(date(2024, 2, 29)) and not cov.covers(date(2024, 1, 2))
    assert uncovered([date(2024, 1, 2), date(2024, 1, 1), date(2024, 1, 2), date(2024, 4, 1)], cov) == \
        [date(2024, 1, 2), date(2024, 4, 1)]
    assert cov.span() == ("daily 2024-01-01 .. 2024-01-04 (3 days); monthly 2024-02 .. 2024-03 (2 months); "
                          "2 file(s) without a date in their name")


def test_missing_folders_and_impossible_dates_cover_nothing(tmp_path: Path) -> None:
    odd = _touch(tmp_path / "odd", "cams_20241399.nc", "cams_2024-13.nc")
    cov = scan(tmp_path / "nope", odd)
    assert cov.empty and cov.undated == 2 and cov.span() == "2 file(s) without a date in their name"
    assert scan(None, None).span() == "no CAMS files"
    assert dated_files(tmp_path / "nope") == []
    linked = tmp_path / "linked"
    linked.symlink_to(_touch(tmp_path / "real", "cams_20240601.nc"), target_is_directory=True)
    assert [p.name for p in dated_files(linked)] == ["cams_20240601.nc"]   # links followed
