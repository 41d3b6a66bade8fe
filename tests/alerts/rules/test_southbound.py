"""southbound_level: holdings history → exact alerts (level crossings, 5-session moves), plus a property test."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings

from alerts.model import Fact
from alerts.rules import load_params
from alerts.rules.southbound import evaluate_southbound_level
from tests.alerts.rules.frames import DAY, context, days, frame, frames, sessions_before

PARAMS = load_params()


def holdings(code: str, pcts: list[float | None]) -> list[dict[str, Any]]:
    """Rows of one stock: pcts on the sessions up to DAY (last value = DAY); None = absent that day."""
    dates = [*sessions_before(DAY, len(pcts) - 1), DAY]
    return [
        {"date": d, "code": code, "name": f"STOCK {code}", "shares": round(p * 1_000_000), "pct_of_issued": p}
        for d, p in zip(dates, pcts, strict=True)
        if p is not None
    ]


def run(rows: list[dict], **extra: Any) -> list:
    alerts, notes = evaluate_southbound_level(context(southbound=frame("southbound", rows), **extra), PARAMS)
    assert notes == []
    return sorted(alerts, key=lambda a: (a.code, a.identity))


CASES = [
    pytest.param(
        [19.8, 20.35],
        [
            (
                "up:20",
                "notice",
                "southbound holding rose above 20% of issued shares: 20.35% on 2025-11-27 vs 19.80% on "
                "2025-11-26 (+0.55pp), 20,350,000 shares",
            )
        ],
        id="up-20",
    ),
    pytest.param(
        [10.11, 9.76],
        [
            (
                "down:10",
                "notice",
                "southbound holding fell below 10% of issued shares: 9.76% on 2025-11-27 vs 10.11% on "
                "2025-11-26 (-0.35pp), 9,760,000 shares",
            )
        ],
        id="down-10",
    ),
    pytest.param(
        [21.0, 14.0],
        [
            (
                "down:15",
                "warning",
                "southbound holding fell below 15% of issued shares: 14.00% on 2025-11-27 vs 21.00% on "
                "2025-11-26 (-7.00pp), 14,000,000 shares",
            )
        ],
        id="down-two-levels-names-the-lowest",
    ),
    pytest.param(
        [4.0, 11.0],
        [
            (
                "up:10",
                "warning",
                "southbound holding rose above 10% of issued shares: 11.00% on 2025-11-27 vs 4.00% on "
                "2025-11-26 (+7.00pp), 11,000,000 shares",
            )
        ],
        id="up-two-levels-names-the-highest",
    ),
    pytest.param(
        [19.99, 20.0],
        [
            (
                "up:20",
                "notice",
                "southbound holding rose above 20% of issued shares: 20.00% on 2025-11-27 vs 19.99% on "
                "2025-11-26 (+0.01pp), 20,000,000 shares",
            )
        ],
        id="reaching-the-level-counts",
    ),
    pytest.param([19.0, 19.9], [], id="no-level-silent"),
    pytest.param([20.0, 20.0], [], id="staying-on-level-silent"),
    pytest.param([None, 25.0], [], id="newly-listed-silent"),
    pytest.param([19.8, None], [], id="absent-today-silent"),
    pytest.param(
        [10.0, 11.0, 11.5, 11.8, 11.9, 12.1],
        [
            (
                "change5",
                "notice",
                "southbound holding +2.10pp in 5 sessions: 12.10% on 2025-11-27 vs 10.00% on 2025-11-20 "
                "(+2.10pp), 12,100,000 shares",
            )
        ],
        id="change5",
    ),
    pytest.param([10.0, 11.0, 11.5, 11.8, 11.9, 11.9], [], id="change-1.9pp-silent"),
    pytest.param(
        [8.0, 9.0, 9.5, 9.6, 9.8, 10.2],
        [
            (
                "change5",
                "notice",
                "southbound holding +2.20pp in 5 sessions: 10.20% on 2025-11-27 vs 8.00% on "
                "2025-11-20 (+2.20pp), 10,200,000 shares",
            ),
            (
                "up:10",
                "notice",
                "southbound holding rose above 10% of issued shares: 10.20% on 2025-11-27 vs 9.80% "
                "on 2025-11-26 (+0.40pp), 10,200,000 shares",
            ),
        ],
        id="crossing-and-change5",
    ),
    pytest.param([6.0, 7.0, 7.5, 7.9, 8.2], [], id="only-4-earlier-dates-no-change5"),
    pytest.param([3.0, 4.0, 4.5, 4.6, 4.8, 4.9], [], id="reference-5-sessions-ago-only"),
]


@pytest.mark.parametrize(("pcts", "expected"), CASES)
def test_table(pcts: list[float | None], expected: list) -> None:
    alerts = run(holdings("00700", pcts))
    assert [(a.identity, a.severity, a.why) for a in alerts] == expected
    assert all(a.rule == "southbound_level" and a.code == "00700" and a.trade_date == DAY for a in alerts)


def test_alert_in_full() -> None:
    (alert,) = run(holdings("00700", [19.8, 20.35]))
    assert alert.facts == (
        Fact("pct_of_issued", 20.35, "%"),
        Fact("compared_pct", 19.8, "%"),
        Fact("change", 0.55, "pp"),
        Fact("compared_date", "2025-11-26", "date"),
        Fact("shares", 20_350_000, "shares"),
    )
    assert alert.links == ("https://www3.hkexnews.hk/sdw/search/mutualmarket.aspx?t=hk",)
    assert alert.published_at == datetime(2025, 11, 28, 6, 0, tzinfo=ZoneInfo("Asia/Hong_Kong"))


def test_previous_date_is_the_last_one_in_the_data() -> None:
    rows = holdings(
        "00700", [19.8, None, None, 20.35]
    )  # two sessions missing: compare with the latest present
    rows += holdings("00005", [1.0, 1.0, 1.0, 1.0])
    (alert,) = run(rows)
    assert alert.identity == "up:20"
    assert "vs 19.80% on 2025-11-24" in alert.why


def test_codes_filter() -> None:
    rows = holdings("00700", [19.8, 20.35]) + holdings("00005", [9.0, 10.5])
    assert [a.code for a in run(rows)] == ["00005", "00700"]
    assert [a.code for a in run(rows, codes=frozenset({"00005"}))] == ["00005"]
    ctx = context(southbound=frame("southbound", rows))
    assert evaluate_southbound_level(replace(ctx, day=date(2025, 11, 28)), PARAMS) == ([], [])


@settings(max_examples=50, deadline=None)
@given(southbound=frames("southbound"), day=days())
def test_never_raises_on_random_frames(southbound: Any, day: date) -> None:
    for when in (day, DAY):
        alerts, _ = evaluate_southbound_level(context(day=when, southbound=southbound), PARAMS)
        assert all(a.identity.startswith(("up:", "down:", "change")) for a in alerts)
