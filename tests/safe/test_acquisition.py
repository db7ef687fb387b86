"""Which products are one acquisition, and which reprocessing is kept: baseline first, then
generation time, then planning order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest

from s2l2a.campaign.dedup import duplicate_reason
from s2l2a.safe.acquisition import (
    acquisition_key,
    acquisition_of,
    baseline_rank,
    pick_winners,
    same_acquisition,
)

OLD = "S2A_MSIL1C_20180629T000241_N0206_R030_T56JMM_20180629T012042"
NEW = "S2A_MSIL1C_20180629T000241_N0500_R030_T56JMM_20230101T000000"
L2A = "S2A_MSIL2A_20180629T000241_N9999_R030_T56JMM_20240102T101010.SAFE"
OPER = "S2A_OPER_PRD_MSIL1C_PDMC_20161205T220814_R065_V20161205T104432_20161205T104432"


@dataclass
class C:
    name: str
    baseline: str | None
    generation_time: str | None
    tile: str = "56JMM"
    sensing_time: str = "2018-06-29T00:02:41Z"


def test_baseline_rank_is_numeric() -> None:
    assert baseline_rank("05.10") > baseline_rank("05.09") > baseline_rank("04.00") > baseline_rank("02.14")
    assert baseline_rank("02.14") > baseline_rank("02.06") > baseline_rank(None) == baseline_rank("junk")


def test_winner_per_acquisition() -> None:
    items = [
        C("a", "02.06", "2018-06-29T01:20:42Z"),
        C("b", "05.00", "2021-01-01T00:00:00Z"),
        C("c", "05.00", "2022-01-01T00:00:00Z"),
        C("d", "04.00", "2023-01-01T00:00:00Z"),
        C("e", "02.06", None, tile="33UUP"),
        C("f", "02.06", None, sensing_time="2018-07-01T00:00:00Z"),
    ]
    w = pick_winners(items)
    assert {k: v.name for k, v in w.items()} == {
        ("56JMM", "2018-06-29T00:02:41"): "c",
        ("33UUP", "2018-06-29T00:02:41"): "e",
        ("56JMM", "2018-07-01T00:00:00"): "f",
    }
    assert duplicate_reason(w[acquisition_of(items[0])]) == "duplicate of c (baseline 05.00)"


def test_full_tie_keeps_the_first_in_order() -> None:
    x, y = C("x", "05.00", "2022-01-01T00:00:00Z"), C("y", "05.00", "2022-01-01T00:00:00Z")
    assert next(iter(pick_winners([x, y]).values())).name == "x"
    assert next(iter(pick_winners([y, x], order=lambda c: c.name).values())).name == "x"


def test_key_is_tile_and_utc_second_whatever_the_spelling() -> None:
    t = datetime(2018, 6, 29, 0, 2, 41, 456000, tzinfo=UTC)
    want = ("56JMM", "2018-06-29T00:02:41")
    assert acquisition_key("56JMM", t) == want
    assert acquisition_key("56JMM", t.replace(tzinfo=None)) == want          # naive = UTC
    assert acquisition_key("56JMM", t.astimezone(timezone(timedelta(hours=2)))) == want
    assert acquisition_key("56JMM", "2018-06-29T00:02:41.456000+00:00") == want  # as the store keeps it
    assert acquisition_key("56JMM", "2018-06-29T00:02:41Z") == want
    assert acquisition_key("56JMM", "2018-06-29T02:02:41+02:00") == want
    assert acquisition_key(None, "not a time at all") == ("", "not a time at all")  # kept, never raises


def test_reprocessings_and_their_l2a_are_one_acquisition() -> None:
    assert same_acquisition(OLD, NEW) and same_acquisition(f"{OLD}.SAFE", L2A)
    assert not same_acquisition(OLD, OLD.replace("T56JMM", "T56JNM"))
    assert not same_acquisition(OLD, OLD.replace("T000241", "T000242"))
    assert same_acquisition(OPER, OPER.replace("PDMC_20161205T220814", "PDMC_20170101T000000"))


@pytest.mark.parametrize("odd", [".", "..", "a\nb", "it's", "0", "nan", ""])
def test_names_that_do_not_parse_are_only_the_same_when_equal(odd: str) -> None:
    assert same_acquisition(odd, odd)
    assert not same_acquisition(odd, OLD) and not same_acquisition(OLD, odd)


def test_store_spelling_keys_like_a_parsed_time() -> None:
    """The store's ISO UTC strings take a fast path; it must key exactly as parsing them does."""
    from datetime import UTC, datetime

    from s2l2a.safe.acquisition import acquisition_key

    t = datetime(2020, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    for s in ("2020-01-02T03:04:05Z", "2020-01-02T03:04:05.678Z", "2020-01-02T03:04:05.678000Z"):
        assert acquisition_key("31TDH", s) == acquisition_key("31TDH", t) == ("31TDH", "2020-01-02T03:04:05")
    assert acquisition_key("31TDH", "2020-01-02T04:04:05+01:00") == ("31TDH", "2020-01-02T03:04:05")
    assert acquisition_key(None, "2020-01-02T03:04Z") == ("", "2020-01-02T03:04:00")
    assert acquisition_key("x", "2020-13-02T03:04:05Z") == ("x", "2020-13-02T03:04:05")  # as unparsable
