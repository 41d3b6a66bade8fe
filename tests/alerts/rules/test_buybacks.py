"""buyback_filed: rows of today's repurchase report → exact alerts, plus a property test."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings

from alerts.model import Fact
from alerts.rules import load_params
from alerts.rules.buybacks import evaluate_buyback_filed
from alerts.sources.hkex_buybacks import parse
from tests.alerts.rules.frames import DAY, context, days, frame, frames
from tests.support.paths import fixture_bytes

PARAMS = load_params()
YESTERDAY = date(2025, 11, 26)


def row(
    code: str = "00700",
    shares: int = 1_000_000,
    high: float = 400.0,
    low: float | None = 390.0,
    paid: float = 395_000_000.0,
    currency: str | None = "HKD",
    method: str = "Exchange",
    trade: date = YESTERDAY,
    report: date = DAY,
    pct: float | None = 1.5,
) -> dict[str, Any]:
    return {
        "report_date": report,
        "trade_date": trade,
        "code": code,
        "name": f"STOCK {code}",
        "shares": shares,
        "price_high": high,
        "price_low": low,
        "currency": currency,
        "total_paid": paid,
        "method": method,
        "ytd_shares": None,
        "pct_of_issued": pct,
        "sec_type": "ORD",
    }


def run(rows: list[dict], **extra: Any) -> list:
    alerts, notes = evaluate_buyback_filed(context(buybacks=frame("buybacks", rows), **extra), PARAMS)
    assert notes == []
    return sorted(alerts, key=lambda a: (a.code, a.trade_date))


CASES = [
    pytest.param(
        [row()],
        [
            (
                "00700",
                YESTERDAY,
                "notice",
                "bought back 1,000,000 shares on 2025-11-26 at HK$390–400, HK$395.0m in total "
                "(Exchange); 1.5% of issued shares bought under the mandate",
            )
        ],
        id="one-row",
    ),
    pytest.param(
        [
            row(shares=600_000, high=401.2, low=395.0, paid=239_000_000.0, pct=1.49),
            row(
                shares=700_000,
                high=399.0,
                low=388.6,
                paid=275_000_000.0,
                method="Exchange (odd lot)",
                pct=1.52,
            ),
        ],
        [
            (
                "00700",
                YESTERDAY,
                "warning",
                "bought back 1,300,000 shares on 2025-11-26 at HK$388.6–401.2, HK$514.0m in total "
                "(Exchange; Exchange (odd lot)); 1.52% of issued shares bought under the mandate",
            )
        ],
        id="rows-aggregated-warning",
    ),
    pytest.param(
        [row(paid=500_000_000.0)],
        [
            (
                "00700",
                YESTERDAY,
                "warning",
                "bought back 1,000,000 shares on 2025-11-26 at HK$390–400, HK$500.0m in total (Exchange); "
                "1.5% of issued shares bought under the mandate",
            )
        ],
        id="exactly-500m-warning",
    ),
    pytest.param(
        [row(trade=date(2025, 11, 25)), row(shares=5, low=None, high=15.24, paid=76.2, pct=None)],
        [
            (
                "00700",
                date(2025, 11, 25),
                "notice",
                "bought back 1,000,000 shares on 2025-11-25 at HK$390–400, HK$395.0m in total (Exchange); "
                "1.5% of issued shares bought under the mandate",
            ),
            (
                "00700",
                YESTERDAY,
                "notice",
                "bought back 5 shares on 2025-11-26 at HK$15.24, HK$76.20 in total (Exchange)",
            ),
        ],
        id="one-alert-per-trade-date",
    ),
    pytest.param(
        [
            row(
                code="09988",
                currency="USD",
                high=120.5,
                low=118.0,
                paid=70_000_000.0,
                method="New York Stock Exchange",
            )
        ],
        [
            (
                "09988",
                YESTERDAY,
                "warning",
                "bought back 1,000,000 shares on 2025-11-26 at USD 118–120.5, USD 70.0m in total "
                "(New York Stock Exchange); 1.5% of issued shares bought under the mandate",
            )
        ],
        id="usd-converted-for-severity",
    ),
    pytest.param(
        [row(code="00005", currency="EUR", paid=900_000_000.0, method="Euronext Paris")],
        [
            (
                "00005",
                YESTERDAY,
                "notice",
                "bought back 1,000,000 shares on 2025-11-26 at EUR 390–400, EUR 900.0m in total "
                "(Euronext Paris); 1.5% of issued shares bought under the mandate",
            )
        ],
        id="no-rate-stays-notice",
    ),
    pytest.param(
        [row(currency="HKD", paid=100e6), row(currency="USD", paid=10e6, high=50.0, low=49.0)],
        [
            (
                "00700",
                YESTERDAY,
                "notice",
                "bought back 2,000,000 shares on 2025-11-26 at prices in HKD/USD, ≈HK$178.0m in total "
                "(Exchange); 1.5% of issued shares bought under the mandate",
            )
        ],
        id="mixed-currencies-in-hkd",
    ),
    pytest.param([row(report=YESTERDAY)], [], id="yesterdays-report-silent"),
    pytest.param([], [], id="empty-report-silent"),
]


@pytest.mark.parametrize(("rows", "expected"), CASES)
def test_table(rows: list[dict], expected: list) -> None:
    alerts = run(rows)
    assert [(a.code, a.trade_date, a.severity, a.why) for a in alerts] == expected
    assert all(a.rule == "buyback_filed" and a.identity == "" for a in alerts)


def test_real_report_of_16_march_2017() -> None:
    report = parse(fixture_bytes("hkex-buybacks", "SRRPT20170316.xls"))
    alerts = run_frame(report, date(2017, 3, 16))
    assert [(a.code, a.name, a.trade_date, a.severity, a.why) for a in alerts] == [
        (
            "00005",
            "HSBC HOLDINGS",
            date(2017, 3, 14),
            "notice",
            "bought back 3,510,000 shares on 2017-03-14 at HK$62.97–63.48, HK$221.9m in total "
            "(London Stock Exchange); 1.91% of issued shares bought under the mandate",
        ),
        (
            "00699",
            "CAR INC",
            date(2017, 3, 15),
            "notice",
            "bought back 4,071,000 shares on 2017-03-15 at HK$7.06–7.26, HK$29.3m in total (Exchange); "
            "2.93% of issued shares bought under the mandate",
        ),
    ]
    assert alerts[0].facts == (
        Fact("shares", 3_510_000, "shares"),
        Fact("price_high", 63.48, "HKD"),
        Fact("price_low", 62.97, "HKD"),
        Fact("total_paid", 221_893_422.0, "HKD"),
        Fact("total_paid_hkd", 221_893_422.0, "HKD"),
        Fact("rows", 1, "rows"),
        Fact("method", "London Stock Exchange", ""),
        Fact("ytd_pct_of_issued", 1.91, "%"),
        # The 2017 report does not say whether shares are cancelled or kept in treasury.
        Fact("for_cancellation", "n/a", "shares"),
        Fact("for_treasury", "n/a", "shares"),
        Fact("currency", "HKD", ""),
        Fact("market", "London Stock Exchange", ""),
        Fact("line", "", ""),
    )
    # The report is served by www3.hkexnews.hk today (www and www1 redirect to a 404).
    assert alerts[0].links == ("https://www3.hkexnews.hk/reports/sharerepur/documents/SRRPT20170316.xls",)
    assert alerts[0].published_at == datetime(2017, 3, 16, 6, 0, tzinfo=ZoneInfo("Asia/Hong_Kong"))


def run_frame(report: Any, day: date) -> list:
    alerts, _ = evaluate_buyback_filed(context(day=day, buybacks=report), PARAMS)
    return sorted(alerts, key=lambda a: a.code)


def test_codes_filter() -> None:
    ctx = context(buybacks=frame("buybacks", [row(), row(code="00005")]))
    assert sorted(a.code for a in evaluate_buyback_filed(ctx, PARAMS)[0]) == ["00005", "00700"]
    only = evaluate_buyback_filed(replace(ctx, codes=frozenset({"00005"})), PARAMS)[0]
    assert [a.code for a in only] == ["00005"]


@settings(max_examples=50, deadline=None)
@given(buybacks=frames("buybacks"), day=days())
def test_never_raises_on_random_frames(buybacks: Any, day: date) -> None:
    for when in (day, DAY):
        alerts, _ = evaluate_buyback_filed(context(day=when, buybacks=buybacks), PARAMS)
        assert all(a.rule == "buyback_filed" for a in alerts)


def test_real_report_of_9_september_2026() -> None:
    from tests.alerts.sources.test_hkex_buybacks import grid_xls, real_grid_2026

    report = parse(grid_xls(real_grid_2026()))
    alerts = {(a.code, a.identity): a for a in run_frame(report, date(2026, 9, 9))}
    # 113 rows: HSBC's three, STANCHART's three and PRU's two rows make one alert each; MCC and HAITIAN FLAV
    # repurchased H shares and A shares the same day: two alerts each.
    assert len(alerts) == 113 - 2 - 2 - 1
    xiaomi = alerts[("01810", "")]
    assert (xiaomi.trade_date, xiaomi.severity) == (date(2026, 9, 8), "notice")
    assert xiaomi.why == (
        "bought back 3,038,600 shares on 2026-09-08 at HK$26.72–27.1, HK$82.0m in total "
        "(Exchange); all for cancellation; 0.44% of issued shares bought under the mandate"
    )
    assert (xiaomi.fact("for_cancellation").value, xiaomi.fact("for_treasury").value) == (3_038_600, 0)
    hsbc = alerts[("00005", "")]
    assert hsbc.why == (
        "bought back 369,200 shares on 2026-09-07 at prices in GBP/HKD, ≈HK$61.7m in total "
        "(London Stock Exchange; CBOE Europe – CXE; Exchange); all for cancellation"
    )
    assert hsbc.fact("market").value == "London Stock Exchange; CBOE Europe – CXE"
    assert hsbc.fact("rows").value == 3
    treasury = alerts[("02256", "")]
    assert "all held as treasury shares (which can be sold again)" in treasury.why
    # A mainland A-share repurchase is its own alert, never a Hong Kong buyback, and never a warning.
    glms = alerts[("01456", "A SHARES")]
    assert glms.why.startswith(
        "bought back 1,100,000 shares on 2026-09-08 at RMB 8.83–8.85, RMB 9.7m in total "
        "(Shanghai Stock Exchange); A shares on the mainland: not a Hong Kong buyback"
    )
    assert (glms.fact("currency").value, glms.fact("line").value) == ("RMB", "A SHARES")
    longsys = alerts[
        ("09976", "A SHARES")
    ]  # RMB 447.9m, about HK$484m: below the line anyway; the rule caps it
    assert longsys.severity == "notice"
    haitian = sorted(identity for code, identity in alerts if code == "03288")
    assert haitian == ["", "A SHARES"]
    assert alerts[("03288", "")].fingerprint != alerts[("03288", "A SHARES")].fingerprint


def test_a_shares_over_the_threshold_stay_notice() -> None:
    rows = [
        dict(
            row(code="01456", currency="RMB", paid=900_000_000.0, method="Shanghai Stock Exchange"),
            sec_type="A SHARES",
        )
    ]
    (alert,) = run(rows)
    assert (alert.severity, alert.identity) == ("notice", "A SHARES")
