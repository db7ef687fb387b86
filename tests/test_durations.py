"""The one duration grammar: the same texts and the same refusals for options, settings and run limits."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from s2l2a.cli import main
from s2l2a.engines.cluster import parse_duration as run_limit
from s2l2a.errors import ConfigError
from s2l2a.units import parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    (14400, 14400), (5400.0, 5400), ("90", 90), (" 90m ", 5400), ("4h", 14400), ("1.5h", 5400),
    ("2d", 172800), ("1:30", 5400), ("01:30:00", 5400), ("10s", 10),
])
def test_one_grammar(text, seconds) -> None:
    assert parse_duration(text) == seconds
    assert run_limit(text) == seconds


@pytest.mark.parametrize(("value", "says"), [
    ("nan", "'nan' is not a duration"), ("inf", "'inf' is not a duration"), (float("nan"), "finite"),
    (float("inf"), "finite"), (0, "positive, not 0"), ("0h", "positive, not '0h'"), (-5, "positive"),
    ("-1", "is not a duration"), (True, "number of seconds"), (None, "number of seconds"),
    (".", "'.' is not a duration"), ("..", "'..' is not a duration"), ("a\nb", "'a\\nb' is not a duration"),
    ("it's", "is not a duration"), ("", "'' is not a duration"), ("1e3", "is not a duration"),
    ("9" * 5000 + ":00", "is not a duration"), ("9" * 400 + "d", "finite"), ("١٢:٠٠", "is not a duration"),
])
def test_refusals_are_one_line_and_name_the_setting(value, says) -> None:
    with pytest.raises(ConfigError) as e:
        parse_duration(value, "[resources] timeout_s")
    text = str(e.value)
    assert text.startswith("[resources] timeout_s: ") and says in text and "\n" not in text and len(text) < 200


def test_zero_only_where_allowed() -> None:
    assert parse_duration("0", allow_zero=True) == 0
    with pytest.raises(ConfigError, match="must be zero or positive, not -1"):
        parse_duration(-1, "x", allow_zero=True)


def test_run_limit_keeps_its_own_bounds() -> None:
    with pytest.raises(ConfigError, match=r"^\[cluster\] run_limit: .* more than"):
        run_limit("400d", "[cluster] run_limit")
    with pytest.raises(ConfigError, match="less than one second"):
        run_limit("0.5", "[cluster] run_limit")


def test_command_line_options_use_it(tmp_path) -> None:
    camp = tmp_path / "c"
    r = CliRunner().invoke(main, ["init", str(camp), "--timeout", "1:30"])
    assert r.exit_code == 0, r.output
    assert "timeout_s = 5400" in (camp / "s2l2a.toml").read_text()
    r = CliRunner().invoke(main, ["init", str(tmp_path / "d"), "--timeout", "nan"])
    assert r.exit_code == 2 and "'nan' is not a duration" in r.output
