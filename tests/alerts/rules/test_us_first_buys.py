"""first_time_insider_buy: an insider's open-market purchase with no earlier purchase of that issuer on record."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.rules import load_params
from alerts.rules.us_first_buys import SPEC, FirstBuyParams, evaluate_first_time_insider_buy
from alerts.sources import sec_form4
from tests.alerts.rules.frames import context
from tests.alerts.rules.test_us_insiders import frame, row
from tests.support.paths import FIXTURES

DAY = date(2025, 11, 24)
PARAMS = FirstBuyParams()
YEAR_AGO = DAY - timedelta(days=364)
# Today's purchase: Jane Roe (CIK 999), 10,000 ACME at $38.58 = $385,800.
TODAY = row(accession="0000000000-25-000009")


def history(*rows: dict[str, object], since: date | None = YEAR_AGO) -> pd.DataFrame:
    """The stored year of purchases, reaching back to `since` (the pipeline sets it from the stored dates)."""
    out = frame(*rows)
    out.attrs["since"] = since
    return out


EARLIER = dict(transaction_date=pd.Timestamp("2025-03-03"), accession="0000000000-25-000001")


@pytest.mark.parametrize(
    ("earlier", "today", "fires"),
    [
        ([], [TODAY], True),  # nothing before: a first purchase
        (
            [row(owner_name="John Doe", owner_cik="555", **EARLIER)],
            [TODAY],
            True,
        ),  # someone else bought before
        ([row(**EARLIER)], [TODAY], False),  # Jane bought ACME in March
        ([row(owner_name="JANE ROE", **EARLIER)], [TODAY], False),  # same CIK, name spelt otherwise
        (
            [row(issuer_cik="456", ticker="OTHR", **EARLIER)],
            [TODAY],
            True,
        ),  # her earlier buy was another issuer
        ([row(is_10b5_1=True, **EARLIER)], [TODAY], False),  # a plan purchase is a purchase before
        ([], [row(is_10b5_1=True)], False),  # today's buy is a plan trade
        ([], [row(form_type="4/A")], False),  # an amendment re-reports an old trade
        ([], [row(code="A")], False),  # an award, not a purchase
        ([], [row(shares=100.0)], False),  # $3,858 < $50,000
        ([], [row(ticker=pd.NA)], False),  # no ticker: nobody can watch it
        ([TODAY], [TODAY], True),  # the day's own filing in the stored year is not "before"
    ],
)
def test_first_buy_table(
    earlier: list[dict[str, object]], today: list[dict[str, object]], fires: bool
) -> None:
    alerts, notes = evaluate_first_time_insider_buy(history(*earlier), frame(*today), DAY, PARAMS)
    assert bool(alerts) is fires and notes == []
    if fires:
        (alert,) = alerts
        assert alert.rule == "first_time_insider_buy" and alert.market == "US" and alert.code == "ACME"
        assert alert.identity == "123:999" and alert.trade_date == DAY
        assert alert.fact("lookback").value == 364  # type: ignore[union-attr]
        assert "first time in 364 days of filings" in alert.why
        assert SPEC.kinds[0].direction(alert) == 1


@pytest.mark.parametrize("since", [None, DAY - timedelta(days=100)])
def test_a_short_history_stays_silent_with_a_note(since: date | None) -> None:
    alerts, notes = evaluate_first_time_insider_buy(history(since=since), frame(TODAY), DAY, PARAMS)
    assert alerts == []
    (note,) = notes
    assert note.rule == "first_time_insider_buy" and "350 needed" in note.reason
    # Nothing bought today: not even a note.
    assert evaluate_first_time_insider_buy(history(since=since), frame(), DAY, PARAMS) == ([], [])


def test_the_real_layout_purchase_fires_once_per_insider() -> None:
    # form4_multi_owner.xml: a fund (10% owner, first reportingOwner) buying 2,000,000 SCWO at $0.38, code P.
    filed = sec_form4.parse_filing(
        (FIXTURES / "sec-form4" / "form4_multi_owner.xml").read_bytes(), "0000950170-25-000002"
    )
    year = history(since=date(2024, 5, 1))
    alerts, _ = evaluate_first_time_insider_buy(year, filed, date(2025, 5, 21), PARAMS)
    (alert,) = alerts
    assert alert.code == "SCWO" and alert.fact("holder").value == "Example Capital Partners LP"  # type: ignore[union-attr]
    assert alert.fact("value").value == pytest.approx(760_000.0)  # type: ignore[union-attr]
    # form4_purchase_P.xml: two purchases by one officer, $31,375 together: one alert when the threshold allows.
    two = sec_form4.parse_filing(
        (FIXTURES / "sec-form4" / "form4_purchase_P.xml").read_bytes(), "0000950170-25-1"
    )
    assert evaluate_first_time_insider_buy(year, two, date(2025, 5, 13), PARAMS)[0] == []
    low = FirstBuyParams(min_value_usd=10_000.0)
    (both,) = evaluate_first_time_insider_buy(year, two, date(2025, 5, 13), low)[0]
    assert both.fact("shares").value == 75_000.0 and both.fact("date").value == "2025-05-12"  # type: ignore[union-attr]


def test_signal_reads_the_year_of_purchases() -> None:
    feeds = {"form4_buys": history(row(**EARLIER)), "form4_day": frame(TODAY)}
    assert SPEC.signal is not None
    assert SPEC.signal(context(DAY, feeds=feeds), load_params())[0] == []
    feeds["form4_buys"] = history()
    alerts, _ = SPEC.signal(context(DAY, feeds=feeds), load_params())
    assert [a.code for a in alerts] == ["ACME"]
    assert load_params().get("first_time_insider_buy", FirstBuyParams) == FirstBuyParams(350, 50_000.0)
    assert (
        sec_form4.SOURCE.feeds["form4_buys"].window == 365
        and sec_form4.SOURCE.feeds["form4_buys"].table == "buys"
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "code": st.sampled_from(["P", "S", "A", ""]),
                "acquired_disposed": st.sampled_from(["A", "D", None]),
                "shares": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
                "price": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
                "owner_name": st.one_of(st.none(), st.text(max_size=6)),
                "owner_cik": st.one_of(st.none(), st.sampled_from(["1", "2"])),
                "issuer_cik": st.one_of(st.none(), st.sampled_from(["123", "456"])),
                "ticker": st.sampled_from(["ACME", None]),
                "form_type": st.sampled_from(["4", "4/A", None]),
                "is_10b5_1": st.sampled_from([True, False, pd.NA]),
                "accession": st.sampled_from(["a", "b", None]),
            }
        ),
        max_size=12,
    ),
    st.integers(min_value=0, max_value=12),
    st.one_of(st.none(), st.dates(min_value=date(2020, 1, 1), max_value=date(2026, 1, 1))),
)
def test_never_raises(rows: list[dict[str, object]], split: int, since: date | None) -> None:
    data = frame(*(row(**r) for r in rows))
    data.attrs["since"] = since
    evaluate_first_time_insider_buy(data, data.iloc[split:], DAY, PARAMS)
