"""large_holder_filing: new 13D/13G holders above 5 % and 13D amendments, from the real Schedule 13D/13G XML."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.rules import load_params
from alerts.rules.us_large_holders import SPEC, LargeHolderParams, evaluate_large_holder_filing
from alerts.sources import sec_13d_13g
from alerts.sources.common import conform
from alerts.sources.sec_edgar import fill_tickers
from tests.alerts.rules.frames import context
from tests.support.paths import FIXTURES

DAY = date(2026, 5, 8)
PARAMS = LargeHolderParams()
TICKERS = {
    "1422142": "AADI",
    "1909747": "JUSH",
    "2042347": "SPTX",
    "723612": "CAR",
}  # CIK → ticker, as the map


def filing(name: str, accession: str = "0001234567-26-000001", **changes: object) -> pd.DataFrame:
    """A real fixture parsed as the day-fetcher does (accession, filing day), tickers filled, then `changes`."""
    data = (FIXTURES / "sec-13d-13g" / name).read_bytes()
    out = fill_tickers(sec_13d_13g.parse_filing(data, accession, None, DAY), TICKERS)
    for column, value in changes.items():
        out[column] = value
    return conform(out, sec_13d_13g.SCHEMA)


@pytest.mark.parametrize(
    ("name", "changes", "fires"),
    [
        ("schedule13d.xml", {}, True),  # original 13D, 9.9 % (the largest of its two persons)
        ("schedule13d_nested_cusip.xml", {}, True),  # original 13D, 11.9 %, seven persons
        ("schedule13g.xml", {}, True),  # original 13G, 5.1 %
        ("schedule13g_nested_cusip.xml", {}, False),  # a 13G/A: routine, not alerted
        ("schedule13g.xml", {"percent_of_class": 4.9}, False),  # below 5 % on the original
        (
            "schedule13d.xml",
            {"amendment": True, "form_type": "SCHEDULE 13D/A", "percent_of_class": 3.0},
            True,
        ),
        ("schedule13d.xml", {"ticker": pd.NA}, False),  # an issuer without a ticker: nobody watches it
        ("schedule13d.xml", {"filed_date": pd.NaT}, False),  # parse() alone: no filing day, no alert
    ],
)
def test_large_holder_table(name: str, changes: dict[str, object], fires: bool) -> None:
    alerts = evaluate_large_holder_filing(filing(name, **changes), PARAMS)
    assert bool(alerts) is fires
    if fires:
        (alert,) = alerts
        assert alert.rule == "large_holder_filing" and alert.market == "US"
        assert alert.trade_date == DAY and alert.identity == "0001234567-26-000001"
        assert alert.links[0].startswith("https://www.sec.gov/Archives/edgar/data/")


def test_a_13d_is_activist_and_quotes_its_purpose() -> None:
    (alert,) = evaluate_large_holder_filing(filing("schedule13d.xml"), PARAMS)
    assert alert.code == "AADI" and alert.severity == "warning"
    assert alert.fact("holder").value == "Leonard Braden Michael"  # type: ignore[union-attr]
    assert alert.fact("percent").value == 9.9 and alert.fact("shares").value == 2_435_000.0  # type: ignore[union-attr]
    assert alert.fact("persons").value == 2 and alert.fact("event_date").value == "2024-12-31"  # type: ignore[union-attr]
    assert alert.why.startswith("Leonard Braden Michael filed SCHEDULE 13D on AADI: 9.9% of the class")
    assert 'purpose: "The Reporting Persons purchased the Common Stock' in alert.why and alert.why.endswith(
        '…"'
    )
    assert alert.links == ("https://www.sec.gov/Archives/edgar/data/1422142/000123456726000001/",)
    assert SPEC.kinds[0].direction(alert) == 1


def test_a_13g_is_passive() -> None:
    (alert,) = evaluate_large_holder_filing(filing("schedule13g.xml"), PARAMS)
    assert alert.code == "JUSH" and alert.severity == "notice" and "purpose" not in alert.why
    assert alert.fact("holder").value == "Marex Securities Products Inc."  # type: ignore[union-attr]
    assert SPEC.kinds[0].direction(alert) is None


def test_one_alert_per_filing_and_codes_are_kept() -> None:
    day = pd.concat(
        [
            filing("schedule13d.xml", "0000000001-26-000001"),
            filing("schedule13g.xml", "0000000002-26-000002"),
        ],
        ignore_index=True,
    )
    assert [a.code for a in evaluate_large_holder_filing(day, PARAMS)] == ["AADI", "JUSH"]
    assert SPEC.signal is not None
    alerts, _ = SPEC.signal(
        context(DAY, feeds={"holders_13dg": day}, codes=frozenset({"JUSH"})), load_params()
    )
    assert [a.code for a in alerts] == ["JUSH"]
    assert load_params().get("large_holder_filing", LargeHolderParams) == LargeHolderParams(5.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "accession": st.sampled_from(["a", "b", None]),
                "ticker": st.sampled_from(["AADI", None]),
                "schedule": st.sampled_from(["13D", "13G", None]),
                "amendment": st.booleans(),
                "form_type": st.sampled_from(["SCHEDULE 13D", "SCHEDULE 13G/A", None]),
                "percent_of_class": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
                "shares_aggregate": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
                "person_name": st.one_of(st.none(), st.text(max_size=5)),
                "issuer_cik": st.sampled_from(["1422142", "12a", None]),
                "filed_date": st.sampled_from([pd.Timestamp(DAY), pd.NaT]),
                "purpose": st.one_of(st.none(), st.text(max_size=400)),
            }
        ),
        max_size=10,
    )
)
def test_never_raises(rows: list[dict[str, object]]) -> None:
    data = conform(pd.DataFrame(rows, columns=list(sec_13d_13g.SCHEMA)), sec_13d_13g.SCHEMA)
    for alert in evaluate_large_holder_filing(data, PARAMS):
        assert alert.code == "AADI" and alert.identity in ("a", "b")
