"""eligibility_change: table of firing and non-firing cases over short-selling lists and index reviews."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.rules import load_params
from alerts.rules.eligibility import RULE, SPEC, direction, evaluate_eligibility_change
from alerts.sources.common import conform, empty_frame
from alerts.sources.hkex_shortable import SCHEMA as SHORTABLE
from alerts.sources.hkex_shortable import parse
from tests.alerts.rules.frames import context
from tests.support.paths import FIXTURES

PARAMS = load_params()
OLD, NEW = date(2025, 9, 8), date(2025, 12, 8)  # two Mondays, a quarter apart
REVIEWS = {
    "index": "string",
    "code": "string",
    "name": "string",
    "change": "string",
    "announced": "datetime64[ns]",
    "effective": "datetime64[ns]",
}


def listing(day: date, codes: list[str]) -> list[dict[str, Any]]:
    """One revision of the list: the given codes, numbered 1..N."""
    return [
        {
            "effective_date": pd.Timestamp(day),
            "no": i,
            "code": code,
            "name": f"NAME {code}",
            "currency": "HKD",
            "type": "EQTY",
            "tick_rule_exempt": False,
            "remarks": None,
        }
        for i, code in enumerate(codes, start=1)
    ]


def shortable(*lists: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [row for rows in lists for row in rows]
    return conform(pd.DataFrame(rows, columns=list(SHORTABLE)), SHORTABLE) if rows else empty_frame(SHORTABLE)


def run(day: date, frame: pd.DataFrame, **extra: Any) -> tuple[list[tuple[str, str]], list[str]]:
    feeds = {"shortable": frame, **extra.pop("feeds", {})}
    alerts, notes = evaluate_eligibility_change(context(day, feeds=feeds, **extra), PARAMS)
    return [(a.code, str(a.fact("event").value)) for a in alerts if a.fact("event")], [
        n.reason for n in notes
    ]


CASES = [
    pytest.param(
        NEW,
        shortable(listing(OLD, ["00001", "00002"]), listing(NEW, ["00001", "00003"])),
        [("00002", "shortable_removed"), ("00003", "shortable_added")],
        0,
        id="added-and-removed",
    ),
    pytest.param(
        NEW,
        shortable(listing(OLD, ["00001", "00002"]), listing(NEW, ["00001", "00002"])),
        [],
        0,
        id="same-list-no-change",
    ),
    pytest.param(NEW, shortable(listing(NEW, ["00001", "00002", "00003"])), [], 1, id="first-list-is-a-note"),
    pytest.param(
        date(2025, 12, 9),
        shortable(listing(OLD, ["00001"]), listing(NEW, ["00001", "00003"])),
        [],
        0,
        id="day-after-the-revision-nothing",
    ),
    pytest.param(
        NEW,
        shortable(listing(date(2024, 6, 3), ["00001"]), listing(NEW, ["00001", "00003"])),
        [],
        1,
        id="previous-list-too-old-is-a-note",
    ),
    pytest.param(NEW, shortable(), [], 0, id="no-list-at-all"),
    pytest.param(
        NEW,
        shortable(listing(OLD, ["00001"]), listing(NEW, ["00001"]), listing(date(2026, 3, 9), ["00009"])),
        [],
        0,
        id="later-list-in-frame-ignored",
    ),
]


@pytest.mark.parametrize(("day", "frame", "expected", "notes"), CASES)
def test_table(day: date, frame: pd.DataFrame, expected: list[tuple[str, str]], notes: int) -> None:
    fired, said = run(day, frame)
    assert fired == expected
    assert len(said) == notes


def test_first_list_note_names_the_date() -> None:
    _, notes = run(NEW, shortable(listing(NEW, ["00001"])))
    assert notes == ["first short-selling list seen (effective 2025-12-08): no previous list to compare"]


def test_alert_carries_effective_and_previous_dates() -> None:
    frame = shortable(listing(OLD, ["00001"]), listing(NEW, ["00001", "00700"]))
    alerts, _ = evaluate_eligibility_change(context(NEW, feeds={"shortable": frame}), PARAMS)
    (alert,) = alerts
    assert (alert.rule, alert.code, alert.name, alert.trade_date, alert.severity) == (
        RULE,
        "00700",
        "NAME 00700",
        NEW,
        "notice",
    )
    assert alert.why == (
        "added to HKEX's list of securities eligible for short selling, effective 2025-12-08 "
        "(previous list 2025-09-08): it can be sold short from that date"
    )
    assert {f.name: f.value for f in alert.facts} == {
        "event": "shortable_added",
        "effective": "2025-12-08",
        "previous_list": "2025-09-08",
        "listed": 2,
    }
    assert alert.links[0].endswith("/ds_list20251208.csv")
    assert direction(alert) == -1


def test_codes_filter_keeps_only_watched() -> None:
    frame = shortable(listing(OLD, ["00001", "00002"]), listing(NEW, ["00003", "00004"]))
    fired, _ = run(NEW, frame, codes=frozenset({"00002", "00004"}))
    assert fired == [("00002", "shortable_removed"), ("00004", "shortable_added")]


def test_directions() -> None:
    frame = shortable(listing(OLD, ["00001"]), listing(NEW, ["00002"]))
    alerts, _ = evaluate_eligibility_change(context(NEW, feeds={"shortable": frame}), PARAMS)
    assert {a.code: direction(a) for a in alerts} == {"00001": 1, "00002": -1}


def test_real_list_against_itself_minus_one_stock() -> None:
    real = parse((FIXTURES / "hkex-shortable-list" / "ds_list20230518.csv").read_bytes())
    before = real[real["code"] != "02800"].assign(effective_date=pd.Timestamp("2023-03-06"))
    frame = pd.concat([before, real], ignore_index=True)
    fired, notes = run(date(2023, 5, 18), frame)
    assert fired == [("02800", "shortable_added")] and notes == []


def reviews(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return conform(pd.DataFrame(rows, columns=list(REVIEWS)), REVIEWS)


ANNOUNCED, EFFECTIVE = date(2025, 5, 16), date(2025, 6, 9)
REVIEW_ROWS = [
    {"index": "HSI", "code": "00300", "name": "MIDEA GROUP", "change": "add"},
    {"index": "HSTECH", "code": "00772", "name": "CHINA LIT", "change": "delete"},
    {"index": "HSCI", "code": "09999", "name": "OTHER", "change": "add"},  # not a watched index
    {"index": "HSI", "code": "02057", "name": "ZTO", "change": "weight"},  # not a constituent change
]


def test_index_review_fires_on_the_announcement_day() -> None:
    frame = reviews([{**row, "announced": ANNOUNCED, "effective": EFFECTIVE} for row in REVIEW_ROWS])
    alerts, _ = evaluate_eligibility_change(
        context(ANNOUNCED, feeds={"shortable": shortable(), "index_reviews": frame}), PARAMS
    )
    assert [(a.code, a.identity, a.severity, direction(a)) for a in alerts] == [
        ("00300", "index_added:HSI", "warning", 1),
        ("00772", "index_removed:HSTECH", "warning", -1),
    ]
    assert alerts[0].fact("effective") is not None and alerts[0].fact("effective").value == "2025-06-09"
    assert "may also change whether mainland investors can buy it" in alerts[0].why
    assert alerts[0].links == ("https://www.hsi.com.hk/data/eng/download/notices.json",)
    # The day after the announcement: nothing.
    later, _ = evaluate_eligibility_change(
        context(date(2025, 5, 19), feeds={"shortable": shortable(), "index_reviews": frame}), PARAMS
    )
    assert later == []


def test_spec() -> None:
    assert SPEC.name == "eligibility_change" and SPEC.feeds == ("shortable", "index_reviews")
    assert SPEC.triggers == ("hkex-shortable-list", "hsi-index-reviews")


codes = st.sampled_from(["00001", "00002", "00700", "09988", ""])
days = st.sampled_from([OLD, NEW, date(2025, 12, 9), date(2024, 1, 2)])


@st.composite
def random_lists(draw: st.DrawFn) -> pd.DataFrame:
    rows = []
    for _ in range(draw(st.integers(0, 12))):
        rows.append(
            {
                "effective_date": draw(st.one_of(st.none(), days.map(pd.Timestamp))),
                "no": draw(st.one_of(st.none(), st.integers(-5, 50))),
                "code": draw(st.one_of(st.none(), codes)),
                "name": draw(st.one_of(st.none(), st.text(max_size=5))),
                "currency": "HKD",
                "type": "EQTY",
                "tick_rule_exempt": draw(st.booleans()),
                "remarks": None,
            }
        )
    return conform(pd.DataFrame(rows, columns=list(SHORTABLE)), SHORTABLE)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=random_lists(), day=days)
def test_never_raises_on_random_frames(frame: pd.DataFrame, day: date) -> None:
    alerts, notes = evaluate_eligibility_change(context(day, feeds={"shortable": frame}), PARAMS)
    assert all(a.rule == RULE and a.trade_date == day for a in alerts)
    assert all(n.rule == RULE for n in notes)
