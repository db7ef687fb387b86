"""One spelling of time in every record: UTC to the second with Z; compact stamps for names."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from s2l2a.clock import iso, stamp, utcnow


def test_iso_is_utc_to_the_second_whatever_the_zone() -> None:
    t = datetime(2024, 6, 1, 12, 20, 31, 999999, tzinfo=timezone(timedelta(hours=2)))
    assert iso(t) == "2024-06-01T10:20:31Z"
    assert iso(t.replace(tzinfo=None)) == "2024-06-01T12:20:31Z"   # naive is UTC
    assert stamp(t) == "20240601T102031" and stamp(t.replace(tzinfo=None)) == "20240601T122031"


def test_now_sorts_as_text_and_parses_back() -> None:
    a = utcnow()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", a)
    assert abs(datetime.fromisoformat(a.replace("Z", "+00:00")) - datetime.now(UTC)) < timedelta(seconds=5)
    assert re.fullmatch(r"\d{8}T\d{6}", stamp())
