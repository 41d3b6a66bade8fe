"""One record per rule: every spec is complete, and a rule registered only through its spec runs everywhere."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from datetime import date
from importlib import resources

import pandas as pd
import pytest

from alerts import replay
from alerts.model import Alert, Fact
from alerts.rules import KINDS, RULES, RuleContext, evaluate, load_params, registry, rules_for, spec_for
from alerts.rules.context import RuleResult
from alerts.rules.params import RuleParams
from alerts.rules.spec import AlertKind, RuleSpec, supportive
from alerts.sources import FEEDS as SOURCE_FEEDS
from bot.i18n import has
from tests.alerts.rules.frames import DAY, context, frame


@pytest.mark.parametrize("spec", RULES, ids=lambda s: s.name)
def test_every_spec_is_complete(spec: RuleSpec) -> None:
    assert spec.kinds, "a rule emits at least one kind of alert"
    assert (spec.signal is None) != (spec.join is None)
    for feed in spec.feeds:  # each feed a source declares, of a market the rule runs in
        source, declared = SOURCE_FEEDS[feed]
        assert declared.rules and ("US" if source.calendar == "XNYS" else "HK") in spec.markets
    assert spec.markets and set(spec.markets) <= {"HK", "US"}
    table = tomllib.loads(resources.files("config").joinpath("rules.toml").read_text(encoding="utf-8"))
    for name in spec.params:
        assert name in table, f"{spec.name}: thresholds table [{name}] is not in config/rules.toml"
        assert isinstance(getattr(load_params(), name), spec.params[name])


@pytest.mark.parametrize("kind", list(KINDS.values()), ids=lambda k: k.id)
def test_every_kind_has_its_catalogue_entries(kind: AlertKind) -> None:
    for key in (kind.title_key, kind.explain_key):
        assert has(key), f"{key} is missing from the message catalogue"
    assert kind.emoji and kind.emoji.strip() == kind.emoji
    assert kind.chart in (None, "short", "position", "southbound")


def test_kind_records_are_shared_across_markets() -> None:
    # The US short-volume rule emits the HK short-ratio kinds: one record, read the same everywhere.
    hk, us = spec_for("short_ratio_spike", "HK"), spec_for("short_ratio_spike", "US")
    assert hk is not None and us is not None and hk is not us
    assert hk.kinds[0] is us.kinds[0]
    assert us.caveat_key == "caveat.us_short_volume" and hk.caveat_key is None


def test_sources_pick_their_rules() -> None:
    assert [s.name for s in rules_for("finra-short-volume", "US")] == ["confluence", "us_short_volume"]
    assert [s.name for s in rules_for("sec-form4", "US")] == [
        "confluence",
        "us_insiders",
        "insider_sell_cluster",
        "first_time_insider_buy",
    ]
    assert [s.name for s in rules_for("sec-13d-13g", "US")] == ["confluence", "large_holder_filing"]
    hk = [s.name for s in rules_for("hkex-buybacks", "HK")]
    assert hk[:2] == ["short_ratio", "short_position_jump"] and "us_insiders" not in hk


@pytest.mark.parametrize(
    ("rule", "facts", "identity", "expected"),
    [
        ("buyback_filed", (), "", 1),
        ("short_ratio_drop", (), "", 1),
        ("short_ratio_spike", (Fact("z", 2.5, "z"),), "", -1),
        ("short_position_jump", (Fact("delta_shares", -5e6, "shares"),), "", 1),
        ("short_position_jump", (Fact("delta_shares", 5e6, "shares"),), "", -1),
        ("southbound_level", (), "up:20", 1),
        ("southbound_level", (), "down:20", -1),
        ("southbound_level", (), "change:5", None),
        ("market_short_swing", (), "", None),
        ("confluence", (), "", None),
        ("no_such_rule", (), "", None),
    ],
)
def test_hit_rate_direction_comes_from_the_kind(
    rule: str, facts: tuple[Fact, ...], identity: str, expected: int | None
) -> None:
    alert = Alert(
        rule=rule,
        code="00700",
        trade_date=date(2025, 11, 20),
        severity="notice",
        why="",
        facts=facts,
        identity=identity,
    )
    assert replay.expected_direction(alert) == expected


# ---- a new rule, registered only through its spec ------------------------------------------------------------

TOY = "toy_round_lot"


def _toy(ctx: RuleContext, params: RuleParams) -> RuleResult:
    """Fires on every stock whose turnover is a multiple of HK$1m (a rule nobody needs, to show the wiring)."""
    rows = ctx.quotes[ctx.quotes["date"] == pd.Timestamp(ctx.day)]
    alerts = [
        Alert(
            rule=TOY,
            code=str(r.code),
            trade_date=ctx.day,
            severity="notice",
            why="turnover is a round million",
            facts=(Fact("turnover", float(r.turnover), "HKD"),),
        )
        for r in rows.itertuples()
        if float(r.turnover) % 1_000_000 == 0
    ]
    return alerts, []


TOY_SPEC = RuleSpec(
    name=TOY,
    kinds=(AlertKind(TOY, "🧸", ("turnover",), supportive),),
    markets=("HK",),
    signal=_toy,
    feeds=("quotes",),
)


def test_a_rule_registered_by_its_spec_alone_runs_and_is_scored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "RULES", (*registry.RULES, TOY_SPEC))
    monkeypatch.setattr(registry, "KINDS", {**registry.KINDS, TOY: TOY_SPEC.kinds[0]})
    rows = [
        {"date": DAY, "code": "00700", "turnover": 5_000_000.0},
        {"date": DAY, "code": "01810", "turnover": 5.5e6 + 1},
    ]
    found = evaluate(context(DAY, quotes=frame("quotes", rows)), load_params()).alerts
    toys = [a for a in found if a.rule == TOY]
    assert [a.code for a in toys] == ["00700"]
    assert "toy_round_lot" in [s.name for s in rules_for("hkex-quotes", "HK")]
    assert replay.expected_direction(replace(toys[0])) == 1


def test_the_bot_renders_a_new_kind_from_its_spec_and_catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot import render
    from bot.i18n import catalogue

    monkeypatch.setattr(registry, "KINDS", {**registry.KINDS, TOY: TOY_SPEC.kinds[0]})
    monkeypatch.setitem(catalogue("zh"), f"why.{TOY}", "成交額 {turnover}，剛好是整數")
    monkeypatch.setitem(catalogue("en"), f"why.{TOY}", "turnover {turnover}, a round million")
    monkeypatch.setitem(catalogue("en"), f"rule.{TOY}.title", "Round-lot turnover")
    alert = Alert(
        rule=TOY,
        code="00700",
        trade_date=DAY,
        severity="notice",
        why="",
        facts=(Fact("turnover", 5_000_000.0, "HKD"), Fact("other", 1.0, "x")),
    )
    render.render_alert.cache_clear()
    text = render.render_alert(alert, "zh")
    assert text.startswith("🧸") and "剛好是整數" in text and "turnover" not in text.split("\n")[1]
    assert render.why_text(alert, "en").startswith("turnover HK$")
    # The key-facts line shows the kind's headline facts only.
    assert "other" not in render.render_alert(alert, "en").split("\n")[2]
    render.render_alert.cache_clear()
