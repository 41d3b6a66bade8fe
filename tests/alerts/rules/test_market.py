"""market_short_swing: market totals history → exact alerts (the seed case included), plus a property test."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings

from alerts.model import Fact
from alerts.rules import Note, load_params
from alerts.rules.market import evaluate_market_short_swing
from tests.alerts.rules.frames import DAY, context, days, frame, frames, sessions_before

PARAMS = load_params()
SEED_WEEK = date(2025, 11, 20)


def total(day: date, value: float, stocks: int = 800, board: str = "main", session: str = "close") -> dict:
    return {
        "date": day,
        "board": board,
        "session": session,
        "stocks_shorted": stocks,
        "short_value": value,
        "short_shares": 1,
        "market_turnover": value * 7,
        "short_pct": 14.3,
    }


def run(rows: list[dict], day: date = DAY, **extra: Any) -> tuple[list, list]:
    return evaluate_market_short_swing(context(day=day, market=frame("market", rows), **extra), PARAMS)


def test_seed_case_minus_37_7_pct() -> None:
    alerts, notes = run([total(SEED_WEEK, 58_805_000_000, 840), total(DAY, 36_639_000_000, 795)])
    assert notes == []
    (alert,) = alerts
    assert alert.why == (
        "market short selling HK$36.6bn on 2025-11-27, -37.7% vs HK$58.8bn on 2025-11-20 (Thu); "
        "795 stocks shorted vs 840"
    )
    assert (alert.rule, alert.code, alert.name, alert.trade_date, alert.severity, alert.identity) == (
        "market_short_swing",
        "MARKET",
        "Hong Kong market",
        DAY,
        "notice",
        "",
    )
    assert alert.facts == (
        Fact("short_value", 36_639_000_000.0, "HKD"),
        Fact("reference_value", 58_805_000_000.0, "HKD"),
        Fact("reference_date", "2025-11-20", "date"),
        Fact("change", -37.7, "%"),
        Fact("mean_value", "n/a", "HKD"),
        Fact("mean_change", "n/a", "%"),
        Fact("stocks_shorted", 795, "stocks"),
        Fact("reference_stocks_shorted", 840, "stocks"),
    )
    assert alert.links == ("https://www.hkex.com.hk/eng/stat/smstat/dayquot/d251127e.htm",)
    assert alert.published_at == datetime(2025, 11, 27, 17, 30, tzinfo=ZoneInfo("Asia/Hong_Kong"))


FIVE = sessions_before(DAY, 5)  # 20, 21, 24, 25, 26 Nov
CASES = [
    pytest.param(
        [total(SEED_WEEK, 40e9), total(DAY, 52e9)],
        [
            (
                "notice",
                "market short selling HK$52.0bn on 2025-11-27, +30.0% vs HK$40.0bn on 2025-11-20 (Thu); "
                "800 stocks shorted vs 800",
            )
        ],
        id="up-30-vs-last-week",
    ),
    pytest.param([total(SEED_WEEK, 40e9), total(DAY, 32e9)], [], id="minus-20-silent"),
    pytest.param(
        [total(SEED_WEEK, 40e9), total(DAY, 30e9)],
        [
            (
                "notice",
                "market short selling HK$30.0bn on 2025-11-27, -25.0% vs HK$40.0bn on 2025-11-20 (Thu); "
                "800 stocks shorted vs 800",
            )
        ],
        id="exactly-minus-25",
    ),
    pytest.param(
        [total(SEED_WEEK, 40e9), total(DAY, 22e9)],
        [
            (
                "warning",
                "market short selling HK$22.0bn on 2025-11-27, -45.0% vs HK$40.0bn on 2025-11-20 (Thu); "
                "800 stocks shorted vs 800",
            )
        ],
        id="warning-past-40",
    ),
    pytest.param(
        [total(FIVE[0], 45e9)] + [total(d, 40e9) for d in FIVE[1:]] + [total(DAY, 52e9)],
        [
            (
                "notice",
                "market short selling HK$52.0bn on 2025-11-27, +15.6% vs HK$45.0bn on 2025-11-20 (Thu), "
                "+26.8% vs the 5-session mean HK$41.0bn; 800 stocks shorted vs 800",
            )
        ],
        id="mean-fires-week-not",
    ),
    pytest.param(
        [total(d, 40e9) for d in FIVE[2:]] + [total(DAY, 52e9)],
        [
            (
                "notice",
                "market short selling HK$52.0bn on 2025-11-27, +30.0% vs the 3-session mean HK$40.0bn; "
                "800 stocks shorted",
            )
        ],
        id="mean-of-3-present",
    ),
    pytest.param(
        [
            total(SEED_WEEK, 40e9),
            total(DAY, 30e9, board="gem"),
            total(DAY, 39e9),
            total(DAY, 38e9, session="morning"),
        ],
        [],
        id="gem-and-morning-ignored",
    ),
    pytest.param(
        [total(SEED_WEEK, 40e9), total(DAY, 20e9), total(DAY, 39e9)], [], id="last-row-of-a-date-wins"
    ),
    pytest.param([total(SEED_WEEK, 40e9)], [], id="no-row-today"),
    pytest.param([total(SEED_WEEK, 0.0), total(DAY, 40e9)], [], id="zero-reference-silent"),
]


@pytest.mark.parametrize(("rows", "expected"), CASES)
def test_table(rows: list[dict], expected: list) -> None:
    alerts, _ = run(rows)
    assert [(a.severity, a.why) for a in alerts] == expected


def test_holiday_week_ago_falls_back_to_fifth_previous_session() -> None:
    day = date(2025, 10, 14)  # 7 Oct (a week earlier) was a holiday; 5 sessions back is Mon 6 Oct
    alerts, _ = run([total(date(2025, 10, 6), 40e9), total(day, 28e9)], day=day)
    assert [a.why for a in alerts] == [
        "market short selling HK$28.0bn on 2025-10-14, -30.0% vs HK$40.0bn on "
        "2025-10-06 (Mon); 800 stocks shorted vs 800"
    ]


def test_no_reference_is_a_note() -> None:
    assert run([total(FIVE[3], 40e9), total(FIVE[4], 40e9), total(DAY, 10e9)]) == (
        [],
        [
            Note(
                "market_short_swing",
                "MARKET",
                "no market short selling for 2025-11-20 and only 2 of 5 previous sessions",
            )
        ],
    )


def test_codes_filter() -> None:
    rows = [total(SEED_WEEK, 40e9), total(DAY, 10e9)]
    assert run(rows, codes=frozenset({"01810"})) == ([], [])
    assert [a.code for a in run(rows, codes=frozenset({"MARKET"}))[0]] == ["MARKET"]


@settings(max_examples=50, deadline=None)
@given(market=frames("market"), day=days())
def test_never_raises_on_random_frames(market: Any, day: date) -> None:
    for when in (day, DAY):
        alerts, _ = evaluate_market_short_swing(context(day=when, market=market), PARAMS)
        assert all(a.code == "MARKET" for a in alerts)
