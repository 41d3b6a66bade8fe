"""RuleParams from config/rules.toml: defaults, per-rule overrides, refusal of unknown or ill-typed values."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from importlib import resources

import pytest

from alerts.rules import RULES, RuleParams, load_params
from alerts.rules import params as params_module
from alerts.rules.registry import SECTIONS


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


def test_every_rule_table_is_in_the_toml_and_nothing_else() -> None:
    # The US short-ratio rules reuse the HK rule ids (market "US"): their thresholds are one extra table.
    tables = tuple(table for spec in RULES for table in spec.params)
    assert load_params().tables == tables == tuple(SECTIONS)
    assert "us_short_volume" in tables and "insider_cluster" in tables
    assert sorted(tomllib.loads(toml_text())) == sorted(tables)


def test_a_table_left_out_of_the_toml_takes_its_dataclass_defaults() -> None:
    from alerts.rules.us_insiders import ClusterParams

    assert (
        params_module.table("insider_cluster", ClusterParams) == ClusterParams()
    )  # toml equals the defaults
    # A table with no defaults must be in the file: the loader names it.
    from alerts.rules.confluence import ConfluenceParams

    with pytest.raises(ValueError, match="missing rule table"):
        params_module._raw_table("no_such_table", ConfluenceParams)
    assert params_module._raw_table("no_such_table", ClusterParams) == {
        "days": 10,
        "min_insiders": 2,
        "min_total_usd": 100_000.0,
    }


def test_params_are_typed_by_table() -> None:
    from alerts.rules.confluence import ConfluenceParams
    from alerts.rules.market import MarketParams

    params = load_params()
    assert params.get("confluence", ConfluenceParams).sessions == 5
    with pytest.raises(TypeError, match="not MarketParams"):
        params.get("confluence", MarketParams)
    assert params == load_params() and hash(params) == hash(load_params())
    with pytest.raises(AttributeError):
        params.confluence = None  # type: ignore[misc]


def test_every_key_has_a_comment_right_above() -> None:
    lines = toml_text().splitlines()
    keys = [(n, line) for n, line in enumerate(lines) if line and line[0].isalpha()]
    params = load_params()
    assert len(keys) == sum(len(fields(getattr(params, table))) for table in params.tables)
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
