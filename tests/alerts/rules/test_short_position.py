"""short_position_jump: table of weekly SFC positions → exact alerts, plus a property test."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings

from alerts.model import Fact
from alerts.rules import Note, load_params
from alerts.rules.short_position import evaluate_short_position_jump
from tests.alerts.rules.frames import context, days, frame, frames

PARAMS = load_params()
FRIDAY = date(2025, 11, 28)
WEEKS = [FRIDAY - timedelta(weeks=k) for k in range(13, 0, -1)]  # 13 earlier Fridays, oldest first
PREVIOUS = WEEKS[-1]


def sfc(
    code: str, history: list[tuple[float, float] | None], current: tuple[float, float] | None, **fixed: Any
) -> list[dict]:
    """Rows of one stock: `history` = (shares, HK$) on the last len(history) earlier Fridays, then FRIDAY."""
    rows = []
    dates = WEEKS[len(WEEKS) - len(history) :] + [FRIDAY]
    for day, figures in zip(dates, [*history, current], strict=True):
        if figures is not None:
            rows.append(
                {
                    "date": day,
                    "code": code,
                    "name": f"STOCK {code}",
                    "short_shares": figures[0],
                    "short_value_hkd": figures[1],
                    "non_hkd": fixed.get("non_hkd", False),
                }
            )
    return rows


def run(rows: list[dict], day: date = FRIDAY, **extra: Any) -> tuple[list, list]:
    return evaluate_short_position_jump(context(day=day, sfc=frame("sfc", rows), **extra), PARAMS)


TEN = (10_000_000, 200_000_000.0)  # 10m shares at HK$20
CASES = [
    pytest.param(
        [TEN],
        (13_000_000, 260_000_000.0),
        [
            (
                "notice",
                "short position 13,000,000 shares (HK$260.0m), +30.0% vs 10,000,000 on 2025-11-21 "
                "(+3,000,000 shares, +HK$60.0m)",
            )
        ],
        id="jump-up",
    ),
    pytest.param(
        [TEN],
        (16_000_000, 320_000_000.0),
        [
            (
                "warning",
                "short position 16,000,000 shares (HK$320.0m), +60.0% vs 10,000,000 on 2025-11-21 "
                "(+6,000,000 shares, +HK$120.0m)",
            )
        ],
        id="jump-up-warning",
    ),
    pytest.param(
        [TEN],
        (7_500_000, 150_000_000.0),
        [
            (
                "notice",
                "short position 7,500,000 shares (HK$150.0m), -25.0% vs 10,000,000 on 2025-11-21 "
                "(-2,500,000 shares, -HK$50.0m)",
            )
        ],
        id="jump-down-at-both-floors",
    ),
    pytest.param([TEN], (13_000_000, 230_000_000.0), [], id="value-change-under-50m-silent"),
    pytest.param([TEN], (11_500_000, 300_000_000.0), [], id="15pct-silent"),
    pytest.param(
        [(500_000, 10_000_000.0)],
        (0, 0.0),
        [("notice", "short position fully covered: 0 shares, from 500,000 shares (HK$10.0m) on 2025-11-21")],
        id="fully-covered",
    ),
    pytest.param([TEN], None, [], id="missing-from-current-file-silent"),
    pytest.param([(0, 0.0)], (0, 0.0), [], id="zero-to-zero-silent"),
    pytest.param(
        [(0, 0.0)],
        (5_000_000, 100_000_000.0),
        [
            (
                "warning",
                "short position 5,000,000 shares (HK$100.0m), new position vs 0 on 2025-11-21 "
                "(+5,000,000 shares, +HK$100.0m)",
            )
        ],
        id="new-position",
    ),
    pytest.param(
        [None, TEN],
        (13_000_000, 260_000_000.0),
        [
            (
                "notice",
                "short position 13,000,000 shares (HK$260.0m), +30.0% vs 10,000,000 on 2025-11-21 "
                "(+3,000,000 shares, +HK$60.0m)",
            )
        ],
        id="gap-before-previous-is-fine",
    ),
    pytest.param(
        [TEN] * 6,
        (10_600_000, 212_000_000.0),
        [
            (
                "notice",
                "short position 10,600,000 shares (HK$212.0m), +6.0% vs 10,000,000 on 2025-11-21 "
                "(+600,000 shares, +HK$12.0m); highest of the last 12 weeks",
            )
        ],
        id="12-week-high",
    ),
    pytest.param([TEN] * 3, (10_600_000, 212_000_000.0), [], id="high-with-3-weeks-silent"),
    pytest.param([TEN] * 6, (10_300_000, 206_000_000.0), [], id="high-by-3pct-silent"),
    pytest.param([(4_000_000, 40_000_000.0)] * 6, (4_400_000, 44_000_000.0), [], id="high-under-100m-silent"),
    pytest.param(
        [TEN, (11_000_000, 220e6)] + [TEN] * 4,
        (10_600_000, 212_000_000.0),
        [],
        id="earlier-week-higher-silent",
    ),
    pytest.param(
        [(50_000_000, 1e9)] + [TEN] * 11,
        (10_600_000, 212_000_000.0),
        [
            (
                "notice",
                "short position 10,600,000 shares (HK$212.0m), +6.0% vs 10,000,000 on 2025-11-21 "
                "(+600,000 shares, +HK$12.0m); highest of the last 12 weeks",
            )
        ],
        id="peak-13-weeks-ago-does-not-count",
    ),
]


@pytest.mark.parametrize(("history", "current", "expected"), CASES)
def test_table(history: list, current: tuple | None, expected: list) -> None:
    alerts, notes = run(sfc("01810", history, current))
    assert [(a.severity, a.why) for a in alerts] == expected
    assert all(
        a.rule == "short_position_jump" and a.code == "01810" and a.trade_date == FRIDAY for a in alerts
    )
    assert notes == []


def test_alert_in_full() -> None:
    (alert,), _ = run(sfc("01810", [TEN], (13_000_000, 260_000_000.0)))
    assert alert.facts == (
        Fact("shares", 13_000_000, "shares"),
        Fact("value", 260_000_000.0, "HKD"),
        Fact("previous_shares", 10_000_000, "shares"),
        Fact("delta_shares", 3_000_000, "shares"),
        Fact("delta_pct", 30.0, "%"),
        Fact("delta_value", 60_000_000.0, "HKD"),
        Fact("previous_date", "2025-11-21", "date"),
        Fact("weeks_of_history", 1, "weeks"),
        Fact("reasons", "jump", ""),
    )
    assert alert.name == "STOCK 01810"
    assert alert.identity == ""
    assert alert.links == (
        "https://www.sfc.hk/-/media/EN/pdf/spr/2025/11/28/"
        "Short_Position_Reporting_Aggregated_Data_20251128.csv",
    )
    assert alert.published_at == datetime(2025, 12, 5, 9, 0, tzinfo=ZoneInfo("Asia/Hong_Kong"))


def test_rmb_counter_skipped() -> None:
    assert run(sfc("80001", [TEN], (16_000_000, 320_000_000.0), non_hkd=True)) == ([], [])


def test_not_an_sfc_date_is_silent() -> None:
    assert run(sfc("01810", [TEN], (16_000_000, 320_000_000.0)), day=date(2025, 11, 27)) == ([], [])


def test_first_file_is_a_note() -> None:
    assert run(sfc("01810", [], (16_000_000, 320_000_000.0))) == (
        [],
        [Note("short_position_jump", "", "no SFC file before 2025-11-28 to compare with")],
    )


def test_codes_filter_and_several_stocks() -> None:
    rows = sfc("01810", [TEN], (16_000_000, 320e6)) + sfc("00700", [TEN], (5_000_000, 100e6))
    assert sorted(a.code for a in run(rows)[0]) == ["00700", "01810"]
    ctx = context(day=FRIDAY, sfc=frame("sfc", rows))
    only = evaluate_short_position_jump(replace(ctx, codes=frozenset({"00700"})), PARAMS)[0]
    assert [a.code for a in only] == ["00700"]


@settings(max_examples=50, deadline=None)
@given(sfc_frame=frames("sfc", day=FRIDAY), day=days())
def test_never_raises_on_random_frames(sfc_frame: Any, day: date) -> None:
    for when in (day, FRIDAY):
        alerts, _ = evaluate_short_position_jump(context(day=when, sfc=sfc_frame), PARAMS)
        assert all(a.trade_date == when for a in alerts)
