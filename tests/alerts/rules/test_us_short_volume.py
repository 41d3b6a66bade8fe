"""US short_ratio_spike / short_ratio_drop on FINRA short volume: table of inputs → exact alerts and notes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.calendar import previous_sessions
from alerts.model import Alert, Fact
from alerts.rules import Note, load_params
from alerts.rules.us_short_volume import evaluate_us_short_volume, finra_links
from alerts.sources import finra_short_volume
from alerts.sources.common import conform, empty_frame

SCHEMA = finra_short_volume.SCHEMA
PARAMS = load_params()
DAY = date(2025, 11, 26)  # a Wednesday NYSE session (the next day is Thanksgiving)
ALT = [0.40, 0.50] * 30  # mean 45%, population std 5 points
NY = ZoneInfo("America/New_York")


def sessions_before(day: date, count: int) -> list[date]:
    """The `count` XNYS sessions strictly before `day`, oldest first."""
    return [s for s in previous_sessions(day, count + 1, "XNYS") if s < day][-count:]


def finra(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """A frame with the finra-short-volume schema."""
    if not rows:
        return empty_frame(SCHEMA)
    return conform(pd.DataFrame(list(rows), columns=list(SCHEMA)), SCHEMA)


def rows_for(
    symbol: str, ratios: Sequence[float | None], days: Sequence[date], total: float = 1_000_000.0
) -> list[dict[str, Any]]:
    """One row per day with the given ratio (None: no row that day)."""
    out = []
    for day, ratio in zip(days, ratios, strict=True):
        if ratio is None:
            continue
        out.append(
            {
                "date": day,
                "symbol": symbol,
                "short_volume": ratio * total,
                "short_exempt_volume": 1000.0,
                "total_volume": total,
                "market": "B,Q,N",
                "short_ratio": ratio if total > 0 else float("nan"),
            }
        )
    return out


def history(
    past: Sequence[float | None], today: float | None, symbol: str = "AAPL", total: float = 1_000_000.0
) -> list[dict[str, Any]]:
    """`past` on the sessions just before DAY, then `today` on DAY (history volume 1m shares)."""
    return rows_for(symbol, past, sessions_before(DAY, len(past))) + rows_for(symbol, [today], [DAY], total)


def run(rows: Sequence[dict[str, Any]], day: date = DAY, **kwargs: Any) -> tuple[list[Alert], list[Note]]:
    return evaluate_us_short_volume(finra(rows), day, PARAMS, **kwargs)


def summary(alerts: list[Alert]) -> list[tuple[str, str, str, str]]:
    return [(a.rule, a.code, a.severity, a.why) for a in alerts]


CASES = [
    pytest.param(
        ALT,
        0.62,
        {},
        [
            (
                "short_ratio_spike",
                "AAPL",
                "warning",
                "short volume 62.0% of FINRA-reported volume = highest of 60 sessions, 3.4σ above the 60-session mean of "
                "45.0%; 620,000 of 1.0m shares (short volume, not short interest)",
            )
        ],
        id="spike-warning",
    ),
    pytest.param(
        ALT,
        0.56,
        {},
        [
            (
                "short_ratio_spike",
                "AAPL",
                "notice",
                "short volume 56.0% of FINRA-reported volume = highest of 60 sessions, 2.2σ above the 60-session mean of "
                "45.0%; 560,000 of 1.0m shares (short volume, not short interest)",
            )
        ],
        id="spike-notice",
    ),
    pytest.param(
        [0.45] * 57 + [0.70] * 3,
        0.65,
        {},
        [
            (
                "short_ratio_spike",
                "AAPL",
                "warning",
                "short volume 65.0% of FINRA-reported volume = 95th percentile of 60 sessions, 3.4σ above the 60-session "
                "mean of 46.3%; 650,000 of 1.0m shares (short volume, not short interest)",
            )
        ],
        id="95th-percentile-fires",
    ),
    pytest.param([0.45] * 56 + [0.70] * 4, 0.65, {}, [], id="93rd-percentile-silent"),
    pytest.param(ALT, 0.54, {}, [], id="z-1.8-silent"),
    pytest.param([0.05, 0.07] * 30, 0.25, {}, [], id="below-spike-min-ratio-silent"),
    pytest.param(ALT, 0.62, {"total": 499_999.0}, [], id="volume-floor-silent"),
    pytest.param(
        ALT,
        0.62,
        {"total": 500_000.0},
        [
            (
                "short_ratio_spike",
                "AAPL",
                "warning",
                "short volume 62.0% of FINRA-reported volume = highest of 60 sessions, 3.4σ above the 60-session mean of "
                "45.0%; 310,000 of 500,000 shares (short volume, not short interest)",
            )
        ],
        id="volume-floor-inclusive",
    ),
    pytest.param(ALT, 0.62, {"total": 0.0}, [], id="zero-volume-no-ratio-silent"),
    pytest.param(ALT, None, {}, [], id="no-row-today-silent"),
    pytest.param(
        [0.45] * 60,
        0.475,
        {},
        [
            (
                "short_ratio_spike",
                "AAPL",
                "notice",
                "short volume 47.5% of FINRA-reported volume = highest of 60 sessions, 2.5σ above the 60-session mean of "
                "45.0%; 475,000 of 1.0m shares (short volume, not short interest)",
            )
        ],
        id="std-floor-1pp",
    ),
    pytest.param(
        [0.90] * 20 + ALT,
        0.62,
        {},
        [
            (
                "short_ratio_spike",
                "AAPL",
                "warning",
                "short volume 62.0% of FINRA-reported volume = highest of 60 sessions, 3.4σ above the 60-session mean of "
                "45.0%; 620,000 of 1.0m shares (short volume, not short interest)",
            )
        ],
        id="only-last-60-ratios",
    ),
    pytest.param(
        [v for pair in zip(ALT, [None] * 60, strict=True) for v in pair],
        0.62,
        {},
        [
            (
                "short_ratio_spike",
                "AAPL",
                "warning",
                "short volume 62.0% of FINRA-reported volume = highest of 60 sessions, 3.4σ above the 60-session mean of "
                "45.0%; 620,000 of 1.0m shares (short volume, not short interest)",
            )
        ],
        id="sessions-without-rows-skipped",
    ),
    pytest.param(
        ALT,
        0.32,
        {},
        [
            (
                "short_ratio_drop",
                "AAPL",
                "notice",
                "short volume 32.0% of FINRA-reported volume = lowest of 60 sessions, 2.6σ below the 60-session mean of "
                "45.0%; 320,000 of 1.0m shares (short volume, not short interest)",
            )
        ],
        id="drop-notice",
    ),
    pytest.param(
        ALT,
        0.25,
        {"total": 2_345_678_901.0},
        [
            (
                "short_ratio_drop",
                "AAPL",
                "warning",
                "short volume 25.0% of FINRA-reported volume = lowest of 60 sessions, 4.0σ below the 60-session mean of "
                "45.0%; 586.4m of 2.35bn shares (short volume, not short interest)",
            )
        ],
        id="drop-warning",
    ),
    pytest.param(ALT, 0.37, {}, [], id="drop-z-minus-1.6-silent"),
    pytest.param([0.10, 0.12] * 30, 0.01, {}, [], id="drop-rarely-shorted-silent"),
    pytest.param(ALT, 0.25, {"total": 100_000.0}, [], id="drop-volume-floor-silent"),
]


@pytest.mark.parametrize(("past", "today", "fixed", "expected"), CASES)
def test_table(past: list[float | None], today: float | None, fixed: dict, expected: list) -> None:
    alerts, notes = run(history(past, today, **fixed))
    assert summary(alerts) == expected
    assert notes == []
    assert all("(short volume, not short interest)" in a.why for a in alerts)


def test_alert_in_full() -> None:
    (alert,), _ = run(history(ALT, 0.62, symbol="BRK/B"))
    assert alert == Alert(
        rule="short_ratio_spike",
        code="BRK/B",
        name="",
        trade_date=DAY,
        severity="warning",
        why=alert.why,
        facts=(
            Fact("short_ratio", 62.0, "%"),
            Fact("window_mean", 45.0, "%"),
            Fact("window_std", 5.0, "pp"),
            Fact("z", 3.4, "σ"),
            Fact("percentile", 100.0, "%"),
            Fact("window", 60, "sessions"),
            Fact("short_volume", 620_000.0, "shares"),
            Fact("short_exempt_volume", 1000.0, "shares"),
            Fact("total_volume", 1_000_000.0, "shares"),
        ),
        links=("https://cdn.finra.org/equity/regsho/daily/CNMSshvol20251126.txt",),
        published_at=datetime(2025, 11, 26, 18, 0, tzinfo=NY),
        identity="",
        market="US",
    )
    assert alert.why.startswith("short volume 62.0% of FINRA-reported volume")
    assert "short interest" in alert.why and "not short interest" in alert.why
    hk = Alert(rule="short_ratio_spike", code="BRK/B", trade_date=DAY, severity="warning", why="")
    assert alert.fingerprint != hk.fingerprint  # the market is part of the identity


def test_too_little_history_is_a_note_for_both_rules() -> None:
    alerts, notes = run(history([0.45] * 12, 0.80))
    assert alerts == []
    assert notes == [
        Note(
            "short_ratio_spike",
            "AAPL",
            "only 12 of 20 sessions of short-volume history needed (last 120 XNYS sessions)",
        ),
        Note(
            "short_ratio_drop",
            "AAPL",
            "only 12 of 20 sessions of short-volume history needed (last 120 XNYS sessions)",
        ),
    ]


def test_no_history_spike_note_only() -> None:
    alerts, notes = run(history([], 0.80) + history([0.10] * 5, 0.12, symbol="LOW"))
    assert alerts == []
    assert notes == [
        Note(
            "short_ratio_spike",
            "AAPL",
            "only 0 of 20 sessions of short-volume history needed (last 120 XNYS sessions)",
        )
    ]


def test_history_older_than_lookback_is_ignored() -> None:
    old = sessions_before(DAY, 200)[:60]  # all more than 120 sessions back
    alerts, notes = run(rows_for("AAPL", ALT, old) + rows_for("AAPL", [0.62], [DAY]))
    assert alerts == []
    assert [n.reason for n in notes] == [
        "only 0 of 20 sessions of short-volume history needed (last 120 XNYS sessions)"
    ]


def test_rows_on_non_sessions_are_ignored() -> None:
    holiday = date(2025, 7, 4)  # Independence Day, no NYSE session
    alerts, _ = run(history(ALT, 0.62) + rows_for("AAPL", [0.99], [holiday]))
    assert [a.fact("window_mean").value for a in alerts] == [45.0]


def test_codes_filter_other_days_and_duplicates() -> None:
    rows = history(ALT, 0.62) + history(ALT, 0.62, symbol="BRK/B")
    assert sorted(a.code for a in run(rows)[0]) == ["AAPL", "BRK/B"]
    assert [a.code for a in run(rows, codes=frozenset({"BRK/B", "TSLA"}))[0]] == ["BRK/B"]
    assert run(rows, codes=frozenset())[0] == []
    assert run(rows, day=date(2025, 11, 28)) == ([], [])  # no rows for the 28th
    rerun = rows + rows_for("AAPL", [0.45], [DAY])  # a re-read file: the last row of the day wins
    assert [a.code for a in run(rerun)[0]] == ["BRK/B"]


def test_spikes_then_drops_in_row_order() -> None:
    rows = history(ALT, 0.25, symbol="ZZ") + history(ALT, 0.62, symbol="MM") + history(ALT, 0.62, symbol="AA")
    assert [(a.rule, a.code) for a in run(rows)[0]] == [
        ("short_ratio_spike", "MM"),
        ("short_ratio_spike", "AA"),
        ("short_ratio_drop", "ZZ"),
    ]


def test_thresholds_come_from_params() -> None:
    rows = history(ALT, 0.56)
    assert len(run(rows)[0]) == 1
    stricter = load_params({"us_short_volume": {"spike_min_z": 3.0}})
    assert evaluate_us_short_volume(finra(rows), DAY, stricter)[0] == []
    thin = load_params({"us_short_volume": {"min_total_volume": 2_000_000}})
    assert evaluate_us_short_volume(finra(rows), DAY, thin)[0] == []
    assert PARAMS.us_short_volume.min_total_volume == 500_000.0
    assert PARAMS.us_short_volume.window == 60
    assert PARAMS.us_short_volume.min_history == 20


def test_link_function_is_used() -> None:
    (alert,), _ = run(history(ALT, 0.62), link=lambda source, day: (f"https://mirror.test/{source}/{day}",))
    assert alert.links == ("https://mirror.test/finra-short-volume/2025-11-26",)
    assert finra_links("finra-short-volume", date(2021, 4, 27)) == (
        "https://cdn.finra.org/equity/regsho/daily/CNMSshvol20210427.txt",
    )


def test_empty_history_is_silent() -> None:
    assert run([]) == ([], [])


# ---- hypothesis: random well-typed frames never make the rule raise -------------------------------------------

_NUMBERS = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(min_value=0, max_value=1e10),
    st.sampled_from([0.0, 0.3, 0.45, 0.62, 1.0, 500_000.0, 1e7]),
)
_DATES = st.one_of(
    st.none(),
    st.sampled_from([DAY - timedelta(days=n) for n in range(0, 15)]),
    st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 12, 31)),
)
_ROW = st.fixed_dictionaries(
    {
        "date": _DATES,
        "symbol": st.one_of(
            st.none(), st.sampled_from(["AAPL", "BRK/B", "AAICpB", "", " "]), st.text(max_size=6)
        ),
        "short_volume": _NUMBERS,
        "short_exempt_volume": _NUMBERS,
        "total_volume": _NUMBERS,
        "market": st.one_of(st.none(), st.sampled_from(["B,Q,N", "Q"])),
        "short_ratio": _NUMBERS,
    }
)
_DAYS = st.one_of(
    st.sampled_from([DAY - timedelta(days=n) for n in range(0, 10)]),
    st.dates(min_value=date(2005, 1, 1), max_value=date(2026, 6, 30)),
)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(_ROW, max_size=25), day=_DAYS, codes=st.one_of(st.none(), st.just(frozenset({"AAPL"}))))
def test_never_raises_on_random_frames(
    rows: list[dict[str, Any]], day: date, codes: frozenset[str] | None
) -> None:
    alerts, notes = evaluate_us_short_volume(finra(rows), day, PARAMS, codes=codes)
    assert all(a.market == "US" and a.trade_date == day and "not short interest" in a.why for a in alerts)
    assert all(isinstance(n, Note) for n in notes)
    if codes is not None:
        assert {a.code for a in alerts} <= codes
