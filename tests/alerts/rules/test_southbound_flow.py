"""southbound_net_flow: same-day southbound top-10 turnover → exact alerts and notes, plus a property test."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from hypothesis import given, settings

from alerts.model import Fact
from alerts.rules import kind, load_params
from alerts.rules.southbound_flow import KNOWN_COLUMN, evaluate_southbound_net_flow
from alerts.store.frames import KNOWN_COLUMN as STORE_KNOWN_COLUMN
from tests.alerts.rules.frames import DAY, context, days, frame, frames, sessions_before

PARAMS = load_params()
M = 1_000_000
HK = ZoneInfo("Asia/Hong_Kong")


def flow_rows(code: str, nets: list[float | None], channel: str = "SZSE Southbound") -> list[dict[str, Any]]:
    """Top-10 rows of one stock on the sessions up to DAY (last value = DAY, HK$m); None = not in the top 10.

    Buy is HK$2bn + net and sell HK$2bn, so net is exact. A filler stock with net 0 (no streak of its own) sits in
    the top 10 every session, so every session has a file.
    """
    dates = [*sessions_before(DAY, len(nets) - 1), DAY]
    rows = []
    for when, net in zip(dates, nets, strict=True):
        rows.append(_row(when, "00005", 0.0, "SSE Southbound"))
        if net is not None:
            rows.append(_row(when, code, net, channel))
    return rows


def _row(when: date, code: str, net_m: float, channel: str) -> dict[str, Any]:
    buy, sell = 2_000 * M + net_m * M, 2_000 * M
    return {
        "date": when,
        "channel": channel,
        "rank": 1,
        "code": code,
        "name": f"STOCK {code}",
        "buy_hkd": buy,
        "sell_hkd": sell,
        "total_hkd": buy + sell,
        "net_hkd": buy - sell,
    }


def run(rows: list[dict[str, Any]], **extra: Any) -> tuple[list, list]:
    ctx = context(southbound_flow=frame("southbound_flow", rows), **extra)
    alerts, notes = evaluate_southbound_net_flow(ctx, PARAMS)
    return sorted(alerts, key=lambda a: (a.code, a.identity)), notes


STREAK_BUY = (
    "streak:buy",
    "notice",
    "southbound net buying HK$10.0m on 2025-11-27 (bought HK$2.01bn, sold HK$2.00bn): net buying on 5 "
    "southbound sessions in a row while in the top 10",
)

CASES = [
    pytest.param(
        [100, 200] * 10 + [400],
        [
            (
                "large:buy",
                "warning",
                "southbound net buying HK$400.0m on 2025-11-27 (bought HK$2.40bn, sold HK$2.00bn): +5.0σ, the "
                "100th percentile of its 20 earlier days in the southbound top 10",
            )
        ],
        id="large-buy-warning",
    ),
    pytest.param(
        [100, 300] * 10 + [450],
        [
            (
                "large:buy",
                "notice",
                "southbound net buying HK$450.0m on 2025-11-27 (bought HK$2.45bn, sold HK$2.00bn): +2.5σ, the "
                "100th percentile of its 20 earlier days in the southbound top 10",
            )
        ],
        id="large-buy-notice",
    ),
    pytest.param(
        [-100, 100] * 10 + [-500],
        [
            (
                "large:sell",
                "warning",
                "southbound net selling HK$500.0m on 2025-11-27 (bought HK$1.50bn, sold HK$2.00bn): -5.0σ, the "
                "0th percentile of its 20 earlier days in the southbound top 10",
            )
        ],
        id="large-sell",
    ),
    pytest.param([-50, 50] * 10 + [290], [], id="below-the-floor-silent"),
    pytest.param([100, 600] * 10 + [500], [], id="usual-size-silent"),
    pytest.param([0] * 18 + [1000, 1000, 800], [], id="z-without-the-percentile-silent"),
    pytest.param([-10, 10, 10, 10, 10, 10], [STREAK_BUY], id="streak-buy"),
    pytest.param(
        [10, -10, -10, -10, -10, -10],
        [
            (
                "streak:sell",
                "notice",
                "southbound net selling HK$10.0m on 2025-11-27 (bought HK$1.99bn, sold HK$2.00bn): net selling on "
                "5 southbound sessions in a row while in the top 10",
            )
        ],
        id="streak-sell",
    ),
    # A run that starts at the first file on hand has reached five too.
    pytest.param([10, 10, 10, 10, 10], [STREAK_BUY], id="streak-from-the-first-file"),
    pytest.param([-10, 10, 10, 10, 10, 10, 10], [], id="streak-6-fired-the-day-before"),
    pytest.param([-10, 10, None, 10, 10, 10], [], id="a-day-out-of-the-top-10-breaks-the-run"),
    pytest.param([-10, 10, 10, 10, 10, None], [], id="not-in-todays-top-10-silent"),
]


@pytest.mark.parametrize(("nets", "expected"), CASES)
def test_table(nets: list[float | None], expected: list) -> None:
    alerts, notes = run(flow_rows("00700", nets))
    assert [(a.identity, a.severity, a.why) for a in alerts] == expected
    assert all(a.rule == "southbound_net_flow" and a.code == "00700" and a.trade_date == DAY for a in alerts)
    assert notes == []


def test_alert_in_full() -> None:
    (alert,) = run(flow_rows("00700", [100, 200] * 10 + [400]))[0]
    assert alert.facts == (
        Fact("net_hkd", 400_000_000.0, "HKD"),
        Fact("buy_hkd", 2_400_000_000.0, "HKD"),
        Fact("sell_hkd", 2_000_000_000.0, "HKD"),
        Fact("z", 5.0, "σ"),
        Fact("percentile", 100.0, "%"),
        Fact("history", 20, "days"),
        Fact("streak", 21, "sessions"),
        Fact("flow_date", "2025-11-27", "date"),
    )
    assert alert.links == ("https://www.hkex.com.hk/eng/csm/DailyStat/data_tab_daily_20251127e.js",)
    assert alert.published_at == datetime(2025, 11, 27, 17, 30, tzinfo=HK)
    assert alert.name == "STOCK 00700"


def test_both_channels_are_summed() -> None:
    rows = flow_rows("00700", [-100, 100] * 10 + [250])
    rows.append(_row(DAY, "00700", 250, "SSE Southbound"))
    (alert,) = run(rows)[0]
    assert alert.identity == "large:buy"
    assert alert.fact("net_hkd") == Fact("net_hkd", 500_000_000.0, "HKD")
    assert alert.fact("buy_hkd") == Fact("buy_hkd", 4_500_000_000.0, "HKD")
    assert alert.fact("sell_hkd") == Fact("sell_hkd", 4_000_000_000.0, "HKD")


def test_too_little_history_is_a_note() -> None:
    alerts, notes = run(flow_rows("00700", [-100, 200, 100, 200, 900]))
    assert alerts == []
    assert [(n.rule, n.code, n.reason) for n in notes] == [
        ("southbound_net_flow", "00700", "net HK$900.0m: only 4 earlier top-10 days")
    ]


def test_northbound_rows_are_not_southbound_flows() -> None:
    rows = flow_rows("00700", [100, 200] * 10 + [None])
    rows.append(_row(DAY, "00700", 5_000, "SSE Northbound"))
    assert run(rows) == ([], [])


def test_only_rows_known_by_the_moment_count() -> None:
    rows = flow_rows("00700", [100, 200] * 10 + [400])
    flows = frame("southbound_flow", rows)
    due = [
        datetime.combine(d.date(), datetime.min.time(), tzinfo=HK) + timedelta(hours=17, minutes=30)
        for d in flows["date"]
    ]
    flows[KNOWN_COLUMN] = pd.to_datetime(due, utc=True)
    before = datetime(2025, 11, 27, 17, 0, tzinfo=HK)
    after = datetime(2025, 11, 27, 17, 31, tzinfo=HK)
    assert evaluate_southbound_net_flow(context(southbound_flow=flows, moment=before), PARAMS) == ([], [])
    (alert,) = evaluate_southbound_net_flow(context(southbound_flow=flows, moment=after), PARAMS)[0]
    assert alert.identity == "large:buy"
    # A file dated after the evaluated day never counts, known or not.
    later = frame("southbound_flow", flow_rows("00700", [100, 200] * 10 + [400]))
    assert (
        evaluate_southbound_net_flow(context(day=DAY - timedelta(days=1), southbound_flow=later), PARAMS)[0]
        == []
    )
    assert STORE_KNOWN_COLUMN == KNOWN_COLUMN


def test_codes_filter_and_direction() -> None:
    rows = flow_rows("00700", [100, 200] * 10 + [400]) + flow_rows("01810", [-100, 100] * 10 + [-500])
    alerts, _ = run(rows)
    assert [(a.code, a.identity) for a in alerts] == [("00700", "large:buy"), ("01810", "large:sell")]
    assert [a.code for a in run(rows, codes=frozenset({"01810"}))[0]] == ["01810"]
    found = kind("southbound_net_flow")
    assert found is not None and found.chart == "southbound"
    assert [found.direction(a) for a in alerts] == [1, -1]


@settings(max_examples=50, deadline=None)
@given(flows=frames("southbound_flow"), day=days())
def test_never_raises_on_random_frames(flows: Any, day: date) -> None:
    for when in (day, DAY):
        alerts, notes = evaluate_southbound_net_flow(context(day=when, southbound_flow=flows), PARAMS)
        assert all(a.identity.partition(":")[0] in ("large", "streak") for a in alerts)
        assert all(n.rule == "southbound_net_flow" for n in notes)
