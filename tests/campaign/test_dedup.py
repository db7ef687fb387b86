"""The reprocessing rule on its own: baseline first, then generation time, then planning order."""

from __future__ import annotations

from dataclasses import dataclass

from s2l2a.campaign.dedup import baseline_rank, duplicate_reason, group_key, pick_winners


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
    assert duplicate_reason(w[group_key(items[0])]) == "duplicate of c (baseline 05.00)"


def test_full_tie_keeps_the_first_in_order() -> None:
    x, y = C("x", "05.00", "2022-01-01T00:00:00Z"), C("y", "05.00", "2022-01-01T00:00:00Z")
    assert next(iter(pick_winners([x, y]).values())).name == "x"
    assert next(iter(pick_winners([y, x], order=lambda c: c.name).values())).name == "x"
