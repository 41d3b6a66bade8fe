"""evaluate(): all rules together — holidays, ordering, code filter, links, determinism, and a property test."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.model import SEVERITIES
from alerts.rules import RULE_IDS, Evaluation, Note, RuleContext, evaluate, load_params
from tests.alerts.rules.frames import DAY, context, days, frame, frames, quote_rows, sessions_before

PARAMS = load_params()
ALT = [0.09, 0.11] * 30


def busy_day(day: date = DAY) -> RuleContext:
    """A day where a spike, an insider purchase, a market swing and (so) a confluence all fire."""
    history = sessions_before(day, 60)
    quotes = quote_rows("01810", [*ALT, 0.14], [*history, day]) + quote_rows(
        "00700", [0.1] * 5, history[-4:] + [day]
    )
    di = [
        {
            "serial": "DA20251127E00001",
            "filed_date": day,
            "event_date": date(2025, 11, 25),
            "code": "01810",
            "name": "Xiaomi Corporation",
            "holder": "Lei Jun",
            "role": "director",
            "direction": "buy",
            "shares": 2_600_000,
            "avg_price": 38.58,
            "currency": "HKD",
            "pct_after": 23.26,
            "position": "L",
        }
    ]
    market = [
        {
            "date": date(2025, 11, 20),
            "board": "main",
            "session": "close",
            "stocks_shorted": 840,
            "short_value": 58_805_000_000.0,
        },
        {
            "date": day,
            "board": "main",
            "session": "close",
            "stocks_shorted": 795,
            "short_value": 36_639_000_000.0,
        },
    ]
    return context(
        day=day, quotes=frame("quotes", quotes), di=frame("di", di), market=frame("market", market)
    )


def test_rule_ids() -> None:
    assert RULE_IDS == (
        "short_ratio_spike",
        "short_ratio_drop",
        "short_position_jump",
        "buyback_filed",
        "insider_buy_near_round_number",
        "southbound_level",
        "market_short_swing",
        "confluence",
        "eligibility_change",  # appended: /settings numbers the earlier buttons unchanged
        "southbound_net_flow",  # appended next: /settings keeps their buttons' numbers
        "corporate_finance_event",
    )


def test_busy_day_sorted_by_rule_code_identity() -> None:
    result = evaluate(busy_day(), PARAMS)
    assert [(a.rule, a.code, a.identity) for a in result.alerts] == [
        ("confluence", "01810", "insider_buy_near_round_number+short_ratio_spike"),
        ("insider_buy_near_round_number", "01810", "DA20251127E00001"),
        ("market_short_swing", "MARKET", ""),
        ("short_ratio_spike", "01810", ""),
    ]
    assert result.notes == (
        Note(
            "short_ratio_drop",
            "00700",
            "only 4 of 20 sessions of short-ratio history needed (last 120 sessions)",
        ),
        Note(
            "short_ratio_spike",
            "00700",
            "only 4 of 20 sessions of short-ratio history needed (last 120 sessions)",
        ),
    )
    confluence = result.alerts[0]
    assert confluence.parts == (result.alerts[1].fingerprint, result.alerts[3].fingerprint)
    for alert in result.alerts:
        assert alert.severity in SEVERITIES
        assert alert.published_at is not None
        assert alert.published_at.tzinfo is not None
        assert alert.links
        assert all(link.startswith("https://") for link in alert.links)
        assert alert.why
        assert "\n" not in alert.why


@pytest.mark.parametrize("holiday", [date(2025, 11, 29), date(2025, 11, 30), date(2025, 12, 25)])
def test_nothing_on_a_non_session_day(holiday: date) -> None:
    ctx = busy_day(holiday)  # the same data would fire on a session
    assert evaluate(ctx, PARAMS) == Evaluation(alerts=(), notes=())


def test_codes_filter() -> None:
    only = evaluate(replace(busy_day(), codes=frozenset({"01810"})), PARAMS)
    assert [a.rule for a in only.alerts] == [
        "confluence",
        "insider_buy_near_round_number",
        "short_ratio_spike",
    ]
    assert only.notes == ()
    market = evaluate(replace(busy_day(), codes=frozenset({"MARKET"})), PARAMS)
    assert [a.rule for a in market.alerts] == ["market_short_swing"]


def test_custom_link_function() -> None:
    def local(source: str, day: date) -> tuple[str, ...]:
        return (f"http://127.0.0.1:9/{source}/{day:%Y%m%d}",)

    result = evaluate(replace(busy_day(), link=local), PARAMS)
    spike = next(a for a in result.alerts if a.rule == "short_ratio_spike")
    assert spike.links == ("http://127.0.0.1:9/hkex-quotes/20251127",)
    insider = next(a for a in result.alerts if a.rule == "insider_buy_near_round_number")
    assert insider.links == ("http://127.0.0.1:9/hkex-di/20251127",)


def test_deterministic_and_order_free() -> None:
    ctx = busy_day()
    shuffled = replace(ctx, quotes=ctx.quotes.sample(frac=1.0, random_state=3).reset_index(drop=True))
    assert evaluate(ctx, PARAMS) == evaluate(ctx, PARAMS) == evaluate(shuffled, PARAMS)


def test_duplicated_rows_do_not_duplicate_alerts() -> None:
    ctx = busy_day()
    doubled = replace(
        ctx,
        di=pd.concat([ctx.di, ctx.di], ignore_index=True),
        market=pd.concat([ctx.market, ctx.market], ignore_index=True),
        quotes=pd.concat([ctx.quotes, ctx.quotes], ignore_index=True),
    )
    assert evaluate(doubled, PARAMS).alerts == evaluate(ctx, PARAMS).alerts


def test_recent_alerts_feed_confluence_without_refiring_old_ones() -> None:
    yesterday = evaluate(busy_day(), PARAMS).alerts
    today = evaluate(replace(context(day=date(2025, 11, 28)), recent_alerts=yesterday), PARAMS)
    assert today.alerts == ()  # nothing new today: no confluence from history alone


def test_infinite_and_missing_numbers_neither_raise_nor_warn() -> None:
    inf = float("inf")
    previous, day = date(2025, 11, 21), date(2025, 11, 28)
    sfc = [
        {"date": d, "code": "01810", "name": "X", "short_shares": 1_000_000, "short_value_hkd": v}
        for d, v in ((previous, inf), (day, -inf))
    ]
    buybacks = [
        {
            "report_date": day,
            "trade_date": previous,
            "code": "01810",
            "shares": 1,
            "total_paid": v,
            "currency": "HKD",
            "price_high": inf,
            "price_low": None,
        }
        for v in (inf, -inf)
    ]
    southbound = [{"date": d, "code": "01810", "pct_of_issued": v} for d, v in ((previous, inf), (day, 12.0))]
    market = [
        {"date": d, "board": "main", "session": "close", "short_value": v}
        for d, v in ((previous, inf), (date(2025, 11, 27), -inf), (day, 1e9))
    ]
    ctx = context(
        day=day,
        sfc=frame("sfc", sfc),
        buybacks=frame("buybacks", buybacks),
        southbound=frame("southbound", southbound),
        market=frame("market", market),
        quotes=frame("quotes", quote_rows("01810", [inf] * 30 + [0.2], [*sessions_before(day, 30), day])),
    )
    result = evaluate(ctx, PARAMS)
    assert [a.rule for a in result.alerts] == ["buyback_filed"]  # infinite history counts as no history


def test_empty_context() -> None:
    assert evaluate(context(), PARAMS) == Evaluation(alerts=(), notes=())


@settings(max_examples=50, deadline=None)
@given(data=st.data(), day=days())
def test_never_raises_on_random_frames(data: st.DataObject, day: date) -> None:
    kinds = ("quotes", "market", "sfc", "buybacks", "di", "southbound")
    ctx = context(day=day, **{kind: data.draw(frames(kind, day=day)) for kind in kinds})
    result = evaluate(ctx, PARAMS)
    keys = [(a.rule, a.code, a.identity, a.trade_date.isoformat()) for a in result.alerts]
    assert keys == sorted(keys)
    assert all(a.rule in RULE_IDS and a.severity in SEVERITIES for a in result.alerts)
    assert len({a.fingerprint for a in result.alerts}) == len(result.alerts)
