"""corporate_finance_event: table of firing and non-firing announcements, the non-session day, never raises."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.calendar import HK_TZ, is_session
from alerts.rules import evaluate, load_params
from alerts.rules.corporate_finance import SPEC, direction, discount_pct, evaluate_corporate_finance_event
from alerts.sources import get_source
from alerts.sources.common import conform, empty_frame
from alerts.sources.hkexnews_announcements import CATEGORIES, SCHEMA
from tests.alerts.rules.frames import context
from tests.support.paths import FIXTURES

DAY = date(2026, 9, 9)  # a Wednesday session
SUNDAY = date(2026, 9, 13)
LATE = datetime(2026, 9, 9, 23, 59, tzinfo=HK_TZ)


def announcement(**values: Any) -> dict[str, Any]:
    """One announcement row released on DAY at 19:00 (placing of 01234), overridden by `values`."""
    released = values.pop("released_at", pd.Timestamp("2026-09-09 19:00", tz="Asia/Hong_Kong"))
    row = {
        "date": pd.Timestamp(released.date()),
        "released_at": released,
        "news_id": "12330001",
        "code": "01234",
        "name": "EXAMPLE HLDGS",
        "title": "PLACING OF NEW SHARES UNDER GENERAL MANDATE",
        "headline": "Announcements and Notices - [Placing]",
        "category": "placing",
        "category_code": "18480",
        "url": "https://www1.hkexnews.hk/listedco/listconews/sehk/2026/0909/2026090902101.pdf",
    }
    row.update(values)
    return row


def run(
    rows: list[dict[str, Any]], day: date = DAY, moment: datetime | None = LATE, **overrides: Any
) -> list:
    frame = conform(pd.DataFrame(rows), SCHEMA) if rows else empty_frame(SCHEMA)
    params = load_params({"corporate_finance_event": overrides} if overrides else None)
    ctx = context(day, feeds={"announcements": frame}, moment=moment)
    return evaluate_corporate_finance_event(ctx, params)[0]


FIRING = [
    (
        "placing, discount stated",
        announcement(title="PLACING AT A DISCOUNT OF APPROXIMATELY 9.8%"),
        "notice",
        9.8,
    ),
    (
        "placing, deep discount",
        announcement(title="PLACING AT A DISCOUNT OF ABOUT 18 PER CENT"),
        "warning",
        18.0,
    ),
    (
        "rights issue, not stated",
        announcement(category="rights_issue", title="PROPOSED RIGHTS ISSUE"),
        "notice",
        "n/a",
    ),
    ("open offer", announcement(category="open_offer", title="PROPOSED OPEN OFFER"), "notice", "n/a"),
    ("convertible", announcement(category="convertible", title="ISSUE OF CONVERTIBLE BONDS"), "notice", None),
    ("consolidation", announcement(category="consolidation", title="SHARE CONSOLIDATION"), "notice", None),
    ("buyback", announcement(category="repurchase_mandate", title="CODE ON SHARE BUY-BACKS"), "notice", None),
    (
        "NDDR",
        announcement(category="next_day_disclosure", title="Next Day Disclosure Return"),
        "notice",
        None,
    ),
    (
        "SFC",
        announcement(category="high_concentration", title="HIGH CONCENTRATION OF SHAREHOLDING"),
        "warning",
        None,
    ),
]


@pytest.mark.parametrize(("label", "row", "severity", "discount"), FIRING, ids=[f[0] for f in FIRING])
def test_fires(label: str, row: dict[str, Any], severity: str, discount: object) -> None:
    (alert,) = run([row])
    assert alert.rule == "corporate_finance_event"
    assert (alert.code, alert.name, alert.trade_date) == ("01234", "EXAMPLE HLDGS", DAY)
    assert alert.severity == severity
    assert alert.identity == "12330001"
    assert alert.links == (row["url"],)
    assert alert.published_at == datetime(2026, 9, 9, 19, 0, tzinfo=HK_TZ)
    assert alert.fact("category").value == row["category"]  # type: ignore[union-attr]
    assert row["title"] in alert.why and "2026-09-09 19:00 HKT" in alert.why
    got = alert.fact("discount")
    assert (got.value if got is not None else None) == discount


def test_sentences() -> None:
    (stated,) = run([announcement(title="PLACING AT A DISCOUNT OF APPROXIMATELY 9.8%")])
    assert "discount to the last close 9.8%" in stated.why
    (unstated,) = run([announcement(category="rights_issue", title="PROPOSED RIGHTS ISSUE")])
    assert "does not state the discount" in unstated.why
    (nddr,) = run([announcement(category="next_day_disclosure", title="Next Day Disclosure Return")])
    assert "earliest buyback signal" in nddr.why
    (sfc,) = run([announcement(category="high_concentration", title="HIGH CONCENTRATION")])
    assert "fluctuate substantially" in sfc.why


NOT_FIRING = [
    ("other category", [announcement(category="other")], {}),
    (
        "released the day before",
        [announcement(released_at=pd.Timestamp("2026-09-08 19:00", tz="Asia/Hong_Kong"))],
        {},
    ),
    (
        "released after the moment",
        [announcement(released_at=pd.Timestamp("2026-09-09 23:59:30", tz="Asia/Hong_Kong"))],
        {},
    ),
    ("category switched off", [announcement()], {"categories": ["rights_issue"]}),
    ("no rows", [], {}),
]


@pytest.mark.parametrize(("label", "rows", "overrides"), NOT_FIRING, ids=[n[0] for n in NOT_FIRING])
def test_does_not_fire(label: str, rows: list[dict[str, Any]], overrides: dict[str, Any]) -> None:
    assert run(rows, moment=datetime(2026, 9, 9, 23, 59, tzinfo=HK_TZ), **overrides) == []


def test_code_filter_and_two_counters() -> None:
    rows = [announcement(code="00700"), announcement(code="80700", name="TENCENT-R")]
    assert {a.code for a in run(rows)} == {"00700", "80700"}
    frame = conform(pd.DataFrame(rows), SCHEMA)
    ctx = context(DAY, feeds={"announcements": frame}, moment=LATE, codes=frozenset({"00700"}))
    assert [a.code for a in evaluate_corporate_finance_event(ctx, load_params())[0]] == ["00700"]


def test_repoll_keeps_the_fingerprint() -> None:
    # Identity = news id: the same announcement seen again (a re-poll, a revised title) is the same alert.
    (first,) = run([announcement()])
    (again,) = run([announcement(title="PLACING OF NEW SHARES (REVISED)")])
    assert first.fingerprint == again.fingerprint
    (other,) = run([announcement(news_id="12330002")])
    assert other.fingerprint != first.fingerprint


def test_direction() -> None:
    signs = {row["category"]: direction(run([row])[0]) for _, row, _, _ in FIRING}
    assert signs == {
        "placing": -1,
        "rights_issue": -1,
        "open_offer": -1,
        "convertible": -1,
        "consolidation": None,
        "repurchase_mandate": 1,
        "next_day_disclosure": 1,
        "high_concentration": None,
    }


@pytest.mark.parametrize(
    ("title", "pct"),
    [
        ("PLACING AT A DISCOUNT OF APPROXIMATELY 9.8%", 9.8),
        ("placing price represents a discount of about 12 per cent", 12.0),
        ("RIGHTS ISSUE AT A DISCOUNT OF 15.25 PER CENT.", 15.25),
        ("PLACING OF NEW SHARES", None),
        ("DISCOUNT OF APPROXIMATELY 250%", None),
    ],
)
def test_discount_pct(title: str, pct: float | None) -> None:
    assert discount_pct(title) == pct


def test_runs_on_a_day_without_a_session() -> None:
    # A placing announced on a Sunday evening alerts that evening; the session rules say nothing that day.
    assert not is_session(SUNDAY)
    released = pd.Timestamp("2026-09-13 20:15", tz="Asia/Hong_Kong")
    frame = conform(pd.DataFrame([announcement(released_at=released)]), SCHEMA)
    ctx = context(SUNDAY, feeds={"announcements": frame}, moment=datetime(2026, 9, 13, 21, 0, tzinfo=HK_TZ))
    found = evaluate(ctx, load_params()).alerts
    assert [(a.rule, a.trade_date) for a in found] == [("corporate_finance_event", SUNDAY)]
    assert SPEC.any_day and SPEC.triggers == ("hkexnews-announcements",)


def test_constructed_day_end_to_end() -> None:
    data = (FIXTURES / "hkexnews-announcements" / "titleSearchServlet_20260909_constructed.json").read_bytes()
    frame = get_source("hkexnews-announcements").parse(data)
    found = run(frame.to_dict("records"))
    assert len(found) == 9  # every row but the two "other"
    assert {a.code for a in found if a.severity == "warning"} == {"06789"}


# Hypothesis takes naive bounds; the drawn moments are localised to Hong Kong below.
_FROM = datetime(2026, 9, 8)  # noqa: DTZ001
_TO = datetime(2026, 9, 10)  # noqa: DTZ001
_row = st.fixed_dictionaries(
    {
        "category": st.sampled_from(CATEGORIES + ("", "unknown")),
        "title": st.text(max_size=300),
        "news_id": st.text(max_size=12),
        "code": st.sampled_from(["01234", "00700", "", "ABCDE"]),
        "released_at": st.datetimes(min_value=_FROM, max_value=_TO).map(
            lambda d: pd.Timestamp(d).tz_localize("Asia/Hong_Kong")
        ),
    }
)


# Any threshold the configuration accepts (a NaN one is refused when the thresholds are loaded: below).
@settings(max_examples=60, deadline=None)
@given(st.lists(_row, max_size=6), st.floats(allow_nan=False, allow_infinity=True))
def test_never_raises(rows: list[dict[str, Any]], threshold: float) -> None:
    alerts = run([announcement(**row) for row in rows], warning_discount_pct=threshold)
    for alert in alerts:
        assert alert.trade_date == DAY and alert.severity in ("notice", "warning")


def test_a_nan_discount_threshold_is_refused_when_the_thresholds_load() -> None:
    with pytest.raises(ValueError, match="corporate_finance_event: expected a number, got nan"):
        run([], warning_discount_pct=float("nan"))
