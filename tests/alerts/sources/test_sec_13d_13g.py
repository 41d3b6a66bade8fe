"""Tests for the SEC Schedule 13D/13G XML parser (sec-13d-13g), over the real filings in tests/fixtures."""

from __future__ import annotations

import hashlib
from datetime import date

import pandas as pd
import pytest

from alerts.errors import MalformedFile
from alerts.sources import SOURCES
from alerts.sources.sec_13d_13g import (
    INDEX_FORM_TYPES,
    NAME,
    SCHEMA,
    SOURCE,
    filings,
    parse,
    parse_filing,
    paths,
)
from alerts.sources.sec_edgar import fill_tickers, parse_daily_index
from tests.support.paths import FIXTURES as _FIXTURES

FIXTURES = _FIXTURES / "sec-13d-13g"
SHA256 = {
    "schedule13d.xml": "ccd6be606ab6eb092a038fce0207687514906ccd413d0319b55f3190ad056316",
    "schedule13d_nested_cusip.xml": "1453f4a369248ceb77d37af3eeb9d32a3da70cfde9521c123774fea8f79fe172",
    "schedule13g.xml": "90c1bdf2844a307e67c39b451d97f8982c277b7d7900793ed3137753e350bf01",
    "schedule13g_nested_cusip.xml": "45f427d41f5ecdab61e18d83b8f9e1551a4a9cac9276eb1e1fa5790c8edd941f",
}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.mark.parametrize("name", sorted(SHA256))
def test_fixtures_are_the_real_copies(name: str) -> None:
    assert hashlib.sha256(fixture(name)).hexdigest() == SHA256[name]


def test_schedule_13d_exact_values() -> None:
    frame = parse(fixture("schedule13d.xml"))
    assert list(frame.columns) == list(SCHEMA)
    assert {c: str(t) for c, t in frame.dtypes.items()} == SCHEMA
    assert frame["person_name"].tolist() == ["BML Investment Partners, L.P.", "Leonard Braden Michael"]
    assert frame["person_cik"].tolist() == ["1373604", "1373603"]
    assert frame["percent_of_class"].tolist() == [8.5, 9.9]
    assert frame["shares_aggregate"].tolist() == [2_100_000.0, 2_435_000.0]
    assert frame["sole_voting"].tolist() == [0.0, 335_000.0]
    assert frame["shared_voting"].tolist() == [2_100_000.0, 2_100_000.0]
    assert frame["sole_dispositive"].tolist() == [0.0, 335_000.0]
    assert frame["shared_dispositive"].tolist() == [2_100_000.0, 2_100_000.0]
    first = frame.iloc[0]
    assert first["form_type"] == "SCHEDULE 13D" and first["schedule"] == "13D" and not first["amendment"]
    assert pd.isna(first["amendment_no"]) and pd.isna(first["accession"]) and pd.isna(first["filed_date"])
    assert (first["issuer_cik"], first["issuer_cusip"]) == ("1422142", "00032Q104")
    assert first["issuer_name"] == "Aadi Bioscience, Inc." and first["filer_cik"] == "1373604"
    assert first["event_date"] == pd.Timestamp("2024-12-31") and pd.isna(first["ticker"])
    assert first["purpose"].startswith("The Reporting Persons purchased the Common Stock reported hereunder")
    assert "not in the best interests of shareholders." in first["purpose"]
    # Shares aggregate = sole + shared dispositive power, person by person (the cover page's own arithmetic).
    assert (frame["sole_dispositive"] + frame["shared_dispositive"] == frame["shares_aggregate"]).all()
    assert frame.attrs["file_date"] == date(2024, 12, 31) and frame.attrs["layout"] == "schedule13D"


def test_schedule_13d_with_nested_cusip_and_seven_persons() -> None:
    frame = parse(fixture("schedule13d_nested_cusip.xml"))
    assert len(frame) == 7 and set(frame["issuer_cusip"]) == {"81221K108"}
    assert frame["person_name"].iloc[-1] == "Steven Gillis" and set(frame["percent_of_class"]) == {11.9}
    assert set(frame["shares_aggregate"]) == {6_294_951.0}
    assert frame["event_date"].iloc[0] == pd.Timestamp("2026-05-04")


def test_schedule_13g_exact_values_and_item4_reconciled() -> None:
    frame = parse(fixture("schedule13g.xml"))
    assert frame["person_name"].tolist() == ["Marex Securities Products Inc.", "Marex Group plc"]
    assert frame["person_cik"].isna().all()  # a 13G cover page names no person CIK
    assert frame["percent_of_class"].tolist() == [5.1, 5.1]
    assert frame["shares_aggregate"].tolist() == [10_000_000.0, 10_000_000.0]  # "10000000.00"
    assert (
        frame["sole_voting"].tolist() == [10_000_000.0] * 2 and frame["shared_voting"].tolist() == [0.0] * 2
    )
    first = frame.iloc[0]
    assert (first["schedule"], first["form_type"], first["issuer_cik"]) == ("13G", "SCHEDULE 13G", "1909747")
    assert first["issuer_cusip"] == "48213Y107" and pd.isna(first["purpose"])
    assert frame.attrs["reconciled"] == {"item4_shares": (10_000_000.0, 10_000_000.0)}


def test_schedule_13g_amendment() -> None:
    frame = parse(fixture("schedule13g_nested_cusip.xml"))
    first = frame.iloc[0]
    assert first["form_type"] == "SCHEDULE 13G/A" and bool(first["amendment"]) and first["amendment_no"] == 3
    assert (first["issuer_cik"], first["issuer_cusip"]) == ("723612", "053774105")
    assert frame["percent_of_class"].tolist() == [22.2, 22.2]
    assert frame.attrs["reconciled"] == {}  # item 4 states its amount in words only


def test_parse_filing_sets_what_the_index_knows_and_tickers_fill_by_cik() -> None:
    frame = parse_filing(fixture("schedule13d.xml"), "0001373604-25-000001", "SCHEDULE 13D", date(2025, 1, 2))
    assert set(frame["accession"]) == {"0001373604-25-000001"}
    assert set(frame["filed_date"]) == {pd.Timestamp("2025-01-02")}
    filled = fill_tickers(frame, {"1422142": "AADI"})
    assert set(filled["ticker"]) == {"AADI"} and str(filled["ticker"].dtype) == "string"
    assert fill_tickers(frame, {"1": "X"})["ticker"].isna().all()


def test_index_filter_keeps_old_and_new_form_type_names() -> None:
    index = parse_daily_index((_FIXTURES / "sec-form4" / "form.20200318.idx").read_bytes())
    kept = filings(index)
    assert len(kept) == 88 and set(kept["form_type"]) <= set(INDEX_FORM_TYPES)
    assert {"SC 13D", "SC 13D/A", "SC 13G", "SC 13G/A"} <= set(kept["form_type"])
    assert "SCHEDULE 13D/A" in INDEX_FORM_TYPES and "SCHEDULE 13G" in INDEX_FORM_TYPES


def test_source_record() -> None:
    assert SOURCES[NAME] is SOURCE and SOURCE.fetch_day == "edgar-13d" and SOURCE.calendar == "XNYS"
    assert paths(date(2026, 5, 8)) == ["/Archives/edgar/daily-index/2026/QTR2/form.20260508.idx"]
    assert SOURCE.feeds["holders_13dg"].date_column == "filed_date"


def _cut(data: bytes) -> bytes:
    return data[: len(data) // 2]


BROKEN = {
    "truncated": (lambda: _cut(fixture("schedule13d.xml")), "not well-formed XML"),
    "error page (200)": (
        lambda: (
            b"<!DOCTYPE html><html><head><title>SEC.gov | Request Rate Threshold Exceeded</title></head>"
            b"<body><h1>Your Request Originates from an Undeclared Automated Tool</h1></body></html>"
        ),
        "root element is <html>, not <edgarSubmission>",
    ),
    "changed root": (
        lambda: fixture("schedule13g.xml").replace(b"edgarSubmission", b"edgarFiling"),
        "root element is <edgarFiling>",
    ),
    "foreign namespace": (
        lambda: fixture("schedule13g.xml").replace(b"edgar/schedule13g", b"edgar/schedule13x"),
        "neither",
    ),
    "form type of another schedule": (
        lambda: fixture("schedule13g.xml").replace(b"SCHEDULE 13G<", b"SCHEDULE 13D<"),
        "is not a Schedule 13G",
    ),
    "no issuer CIK": (
        lambda: fixture("schedule13d.xml").replace(b"<issuerCIK>0001422142</issuerCIK>", b""),
        "no issuer CIK",
    ),
    "no reporting person": (
        lambda: fixture("schedule13g.xml").replace(
            b"coverPageHeaderReportingPersonDetails", b"coverPageHeaderSomethingElse"
        ),
        "no reporting person",
    ),
    "percent out of range": (
        lambda: fixture("schedule13d.xml").replace(b"<percentOfClass>8.5<", b"<percentOfClass>850<"),
        "outside 0",
    ),
    "number in words": (
        lambda: fixture("schedule13d.xml").replace(
            b"<aggregateAmountOwned>2100000<", b"<aggregateAmountOwned>lots<"
        ),
        "is not a number",
    ),
    "bad event date": (
        lambda: fixture("schedule13d.xml").replace(b"12/31/2024</dateOfEvent>", b"31/12/2024</dateOfEvent>"),
        "MM/DD/YYYY",
    ),
    "empty": (lambda: b"", "empty"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_files_raise_malformed_with_evidence(case: str) -> None:
    build, evidence = BROKEN[case]
    with pytest.raises(MalformedFile) as info:
        SOURCE.parse(build())
    assert evidence in str(info.value)
