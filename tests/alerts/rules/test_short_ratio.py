"""short_ratio_spike / short_ratio_drop: table of inputs → exact alerts (and notes), plus a property test."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings

from alerts.model import Alert, Fact
from alerts.rules import Note, load_params
from alerts.rules.short_ratio import (
    evaluate_short_ratio,
    evaluate_short_ratio_drop,
    evaluate_short_ratio_spike,
)
from tests.alerts.rules.frames import DAY, context, days, frame, frames, quote_rows, sessions_before

PARAMS = load_params()
H60 = sessions_before(DAY, 60)
ALT = [0.09, 0.11] * 30  # mean 10%, population std 1 point


def quotes(history: list[float | None], today: float | None, code: str = "01810", **fixed: Any) -> list[dict]:
    """Rows for `history` on the sessions just before DAY, then `today` on DAY."""
    sessions = sessions_before(DAY, len(history))
    return quote_rows(code, [*history, today], [*sessions, DAY], **fixed)


def summary(alerts: list[Alert]) -> list[tuple[str, str, str, str]]:
    return [(a.rule, a.code, a.severity, a.why) for a in alerts]


SPIKE_CASES = [
    pytest.param(
        [0.10] * 57 + [0.30] * 3,
        0.25,
        {},
        [
            (
                "short_ratio_spike",
                "01810",
                "warning",
                "short ratio 25.0% = 95th percentile of 60 sessions, 3.2σ above the 60-session mean of 11.0% "
                "(HK$25.0m shorted of HK$100.0m turnover)",
            )
        ],
        id="95th-percentile-fires",
    ),
    pytest.param([0.10] * 56 + [0.30] * 4, 0.25, {}, [], id="93rd-percentile-silent"),
    pytest.param(
        ALT,
        0.125,
        {},
        [
            (
                "short_ratio_spike",
                "01810",
                "notice",
                "short ratio 12.5% = highest of 60 sessions, 2.5σ above the 60-session mean of 10.0% "
                "(HK$12.5m shorted of HK$100.0m turnover)",
            )
        ],
        id="notice-under-3-sigma",
    ),
    pytest.param([0.05, 0.15] * 30, 0.19, {}, [], id="z-1.8-silent"),
    pytest.param([0.01, 0.02] * 30, 0.04, {}, [], id="below-min-ratio-silent"),
    pytest.param(ALT, 0.20, {"turnover": 10_000_000.0}, [], id="turnover-floor-silent"),
    pytest.param(ALT, 0.20, {"non_hkd": True}, [], id="rmb-counter-skipped"),
    pytest.param(ALT, 0.20, {"suspended": True}, [], id="suspended-silent"),
    pytest.param(ALT, None, {}, [], id="no-ratio-today-silent"),
    pytest.param(
        [0.10] * 60,
        0.12,
        {},
        [
            (
                "short_ratio_spike",
                "01810",
                "warning",
                "short ratio 12.0% = highest of 60 sessions, 4.0σ above the 60-session mean of 10.0% "
                "(HK$12.0m shorted of HK$100.0m turnover)",
            )
        ],
        id="std-floor-0.5pp",
    ),
    pytest.param(
        [0.50] * 20 + ALT,
        0.14,
        {},
        [
            (
                "short_ratio_spike",
                "01810",
                "warning",
                "short ratio 14.0% = highest of 60 sessions, 4.0σ above the 60-session mean of 10.0% "
                "(HK$14.0m shorted of HK$100.0m turnover)",
            )
        ],
        id="only-last-60-ratios",
    ),
    pytest.param(
        [v for pair in zip(ALT, [None] * 60, strict=True) for v in pair],
        0.14,
        {},
        [
            (
                "short_ratio_spike",
                "01810",
                "warning",
                "short ratio 14.0% = highest of 60 sessions, 4.0σ above the 60-session mean of 10.0% "
                "(HK$14.0m shorted of HK$100.0m turnover)",
            )
        ],
        id="sessions-without-ratio-skipped",
    ),
]


@pytest.mark.parametrize(("history", "today", "fixed", "expected"), SPIKE_CASES)
def test_spike_table(history: list[float | None], today: float | None, fixed: dict, expected: list) -> None:
    ctx = context(quotes=frame("quotes", quotes(history, today, **fixed)))
    alerts, notes = evaluate_short_ratio_spike(ctx, PARAMS)
    assert summary(alerts) == expected
    assert notes == []


def test_spike_alert_in_full() -> None:
    ctx = context(quotes=frame("quotes", quotes([0.10] * 57 + [0.30] * 3, 0.25)))
    (alert,), _ = evaluate_short_ratio_spike(ctx, PARAMS)
    assert alert == Alert(
        rule="short_ratio_spike",
        code="01810",
        name="STOCK 01810",
        trade_date=DAY,
        severity="warning",
        why=alert.why,
        facts=(
            Fact("short_ratio", 25.0, "%"),
            Fact("window_mean", 11.0, "%"),
            Fact("window_std", 4.36, "pp"),
            Fact("z", 3.21, "σ"),
            Fact("percentile", 95.0, "%"),
            Fact("window", 60, "sessions"),
            Fact("short_value", 25_000_000.0, "HKD"),
            Fact("turnover", 100_000_000.0, "HKD"),
        ),
        links=("https://www.hkex.com.hk/eng/stat/smstat/dayquot/d251127e.htm",),
        published_at=datetime(2025, 11, 27, 17, 30, tzinfo=ZoneInfo("Asia/Hong_Kong")),
        identity="",
    )


def test_spike_too_little_history_is_a_note() -> None:
    ctx = context(quotes=frame("quotes", quotes([0.10] * 12, 0.40)))
    alerts, notes = evaluate_short_ratio_spike(ctx, PARAMS)
    assert alerts == []
    assert notes == [
        Note(
            "short_ratio_spike",
            "01810",
            "only 12 of 20 sessions of short-ratio history needed (last 120 sessions)",
        )
    ]


def test_history_older_than_lookback_is_ignored() -> None:
    old = sessions_before(DAY, 200)[:60]  # all more than 120 sessions back
    rows = quote_rows("01810", ALT, old) + quote_rows("01810", [0.14], [DAY])
    alerts, notes = evaluate_short_ratio_spike(context(quotes=frame("quotes", rows)), PARAMS)
    assert alerts == []
    assert notes == [
        Note(
            "short_ratio_spike",
            "01810",
            "only 0 of 20 sessions of short-ratio history needed (last 120 sessions)",
        )
    ]


def test_only_today_rows_alert_and_codes_filter() -> None:
    rows = quotes(ALT, 0.14) + quotes(ALT, 0.14, code="00700")
    both = context(quotes=frame("quotes", rows))
    assert sorted(a.code for a in evaluate_short_ratio_spike(both, PARAMS)[0]) == ["00700", "01810"]
    only = replace(both, codes=frozenset({"00700"}))
    assert [a.code for a in evaluate_short_ratio_spike(only, PARAMS)[0]] == ["00700"]
    yesterday = replace(both, day=date(2025, 11, 28))  # no file for the 28th in the frame
    assert evaluate_short_ratio_spike(yesterday, PARAMS) == ([], [])


DROP_CASES = [
    pytest.param(
        [0.18, 0.22] * 30,
        0.15,
        {},
        [
            (
                "short_ratio_drop",
                "01810",
                "notice",
                "short ratio 15.0% = lowest of 60 sessions, 2.5σ below the 60-session mean of 20.0% "
                "(HK$15.0m shorted of HK$100.0m turnover)",
            )
        ],
        id="covering-notice",
    ),
    pytest.param(
        [0.18, 0.22] * 30,
        0.12,
        {},
        [
            (
                "short_ratio_drop",
                "01810",
                "warning",
                "short ratio 12.0% = lowest of 60 sessions, 4.0σ below the 60-session mean of 20.0% "
                "(HK$12.0m shorted of HK$100.0m turnover)",
            )
        ],
        id="covering-warning",
    ),
    pytest.param(
        [0.30] * 3 + [0.20] * 57,
        0.16,
        {},
        [
            (
                "short_ratio_drop",
                "01810",
                "notice",
                "short ratio 16.0% = lowest of 60 sessions, 2.1σ below the 60-session mean of 20.5% "
                "(HK$16.0m shorted of HK$100.0m turnover)",
            )
        ],
        id="skewed-window",
    ),
    pytest.param([0.02, 0.04] * 30, 0.001, {}, [], id="rarely-shorted-stock-silent"),
    pytest.param([0.18, 0.22] * 30, 0.17, {}, [], id="z-minus-1.5-silent"),
    pytest.param([0.18, 0.22] * 30, 0.12, {"turnover": 5_000_000.0}, [], id="turnover-floor-silent"),
    pytest.param([0.18, 0.22] * 30, None, {}, [], id="no-short-selling-today-is-not-zero"),
    pytest.param([0.18, 0.22] * 30, 0.12, {"non_hkd": True}, [], id="rmb-counter-skipped"),
]


@pytest.mark.parametrize(("history", "today", "fixed", "expected"), DROP_CASES)
def test_drop_table(history: list[float | None], today: float | None, fixed: dict, expected: list) -> None:
    ctx = context(quotes=frame("quotes", quotes(history, today, **fixed)))
    alerts, notes = evaluate_short_ratio_drop(ctx, PARAMS)
    assert summary(alerts) == expected
    assert notes == []


def test_drop_too_little_history_is_a_note_only_for_shorted_stocks() -> None:
    rows = quotes([0.20] * 5, 0.01) + quotes([0.01] * 5, 0.001, code="00700")
    alerts, notes = evaluate_short_ratio_drop(context(quotes=frame("quotes", rows)), PARAMS)
    assert alerts == []
    assert notes == [
        Note(
            "short_ratio_drop",
            "01810",
            "only 5 of 20 sessions of short-ratio history needed (last 120 sessions)",
        )
    ]


def test_combined_pass_equals_separate_rules() -> None:
    rows = (
        quotes(ALT, 0.14)
        + quotes([0.18, 0.22] * 30, 0.12, code="00700")
        + quotes([0.1] * 3, 0.3, code="00005")
    )
    ctx = context(quotes=frame("quotes", rows))
    spike, drop = evaluate_short_ratio_spike(ctx, PARAMS), evaluate_short_ratio_drop(ctx, PARAMS)
    assert evaluate_short_ratio(ctx, PARAMS) == (spike[0] + drop[0], spike[1] + drop[1])
    assert [(a.rule, a.code) for a in spike[0] + drop[0]] == [
        ("short_ratio_spike", "01810"),
        ("short_ratio_drop", "00700"),
    ]


def test_thresholds_come_from_params() -> None:
    ctx = context(quotes=frame("quotes", quotes(ALT, 0.125)))
    assert len(evaluate_short_ratio_spike(ctx, PARAMS)[0]) == 1
    stricter = load_params({"short_ratio_spike": {"min_z": 3.0}})
    assert evaluate_short_ratio_spike(ctx, stricter)[0] == []


@settings(max_examples=50, deadline=None)
@given(quotes_frame=frames("quotes"), day=days())
def test_never_raises_on_random_frames(quotes_frame: Any, day: date) -> None:
    ctx = context(day=day, quotes=quotes_frame)
    for rule in (evaluate_short_ratio_spike, evaluate_short_ratio_drop, evaluate_short_ratio):
        alerts, notes = rule(ctx, PARAMS)
        assert all(a.trade_date == day and a.rule.startswith("short_ratio") for a in alerts)
        assert all(isinstance(n, Note) for n in notes)
