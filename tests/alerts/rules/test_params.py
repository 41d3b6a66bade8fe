"""RuleParams from config/rules.toml: defaults, per-rule overrides, refusal of unknown or ill-typed values."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from importlib import resources

import pytest

from alerts.rules import RULE_IDS, RuleParams, load_params


def toml_text() -> str:
    return resources.files("config").joinpath("rules.toml").read_text(encoding="utf-8")


def test_defaults() -> None:
    params = load_params()
    assert isinstance(params, RuleParams)
    assert params.short_ratio_spike.window == 60
    assert params.short_ratio_spike.min_turnover_hkd == 20_000_000.0
    assert params.short_ratio_drop.max_z == -2.0
    assert params.short_position_jump.min_change_value_hkd == 50_000_000.0
    assert params.buyback_filed.rate("USD") == 7.8
    assert params.buyback_filed.rate(None) == 1.0
    assert params.buyback_filed.rate("GBP") == 10.4  # HSBC, PRU and STANCHART report London purchases in GBP
    assert params.buyback_filed.rate("EUR") is None
    assert params.insider_buy_near_round_number.step_bands[-1] == (float("inf"), 50.0)
    assert params.southbound_level.levels == (5.0, 10.0, 15.0, 20.0, 25.0, 30.0)
    assert params.market_short_swing.change_pct == 25.0
    assert params.confluence.sessions == 5


def test_rule_ids_are_the_toml_tables() -> None:
    # The US short-ratio rules reuse the HK rule ids (market "US"): their thresholds are one extra table.
    tables = (*RULE_IDS, "us_short_volume")
    assert tuple(f.name for f in fields(RuleParams)) == tables
    assert tuple(tomllib.loads(toml_text())) == tables


def test_every_key_has_a_comment_right_above() -> None:
    lines = toml_text().splitlines()
    keys = [(n, line) for n, line in enumerate(lines) if line and line[0].isalpha()]
    params = load_params()
    assert len(keys) == sum(len(fields(getattr(params, f.name))) for f in fields(RuleParams))
    assert [line for n, line in keys if not lines[n - 1].startswith("#")] == []


def test_overrides_touch_only_the_named_rule() -> None:
    params = load_params({"short_ratio_spike": {"min_z": 2.5, "window": 40}})
    assert (params.short_ratio_spike.min_z, params.short_ratio_spike.window) == (2.5, 40)
    assert params.short_ratio_drop.window == 60
    assert load_params().short_ratio_spike.min_z == 2.0  # defaults unchanged
    listed = load_params({"southbound_level": {"levels": [3, 7]}})
    assert listed.southbound_level.levels == (3.0, 7.0)


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"no_such_rule": {"x": 1}}, KeyError, "unknown rule 'no_such_rule'"),
        ({"confluence": {"session": 3}}, KeyError, r"confluence: unknown key\(s\) \['session'\]"),
        ({"confluence": {"sessions": 2.5}}, ValueError, "confluence: expected an integer, got 2.5"),
        ({"confluence": {"sessions": True}}, ValueError, "confluence: expected an integer"),
        ({"market_short_swing": {"change_pct": "25"}}, ValueError, "expected a number"),
        ({"southbound_level": {"levels": 5}}, ValueError, "expected a list"),
        ({"insider_buy_near_round_number": {"step_bands": [[5.0]]}}, ValueError, "expected 2 items"),
    ],
)
def test_bad_overrides_are_refused(overrides: dict, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        load_params(overrides)
