"""Tests for the SEC Form 4 ownershipDocument parser (data-formats.md §8)."""

from __future__ import annotations

import hashlib
import math
from datetime import date

import pandas as pd
import pytest

from alerts.errors import MalformedFile
from alerts.rules.us_insiders import buys
from alerts.sources.sec_form4 import NAME, SCHEMA, SOURCE, parse, parse_filing, paths
from tests.support.paths import FIXTURES as _FIXTURES

FIXTURES = _FIXTURES / "sec-form4"
REAL_SHA256 = "6517d04a6984015e99fc021a042278b00818eefec04e1e191d4f65d21f1f14e6"
F1 = (
    "Vesting commencement date is March 31, 2025. 25% of the shares vest and become exercisable on the first "
    "annual anniversary of the vesting commencement date and the balance vest and become exercisable equally on "
    "the last day of every month thereafter over the following 36 months, subject to the Reporting Person's "
    "continuous service through each vesting date."
)
CONTRACT = [
    "ticker",
    "issuer_cik",
    "owner_name",
    "is_director",
    "is_officer",
    "officer_title",
    "transaction_date",
    "code",
    "shares",
    "price",
    "acquired_disposed",
    "shares_after",
    "direct_indirect",
]


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture(scope="module")
def real() -> bytes:
    return fixture("374WaterForm4.xml")


def edited(data: bytes, old: bytes, new: bytes) -> bytes:
    """The bytes with `old` replaced once (and `old` must be there, so a fixture change fails loudly)."""
    assert data.count(old) >= 1, old
    return data.replace(old, new, 1)


def assert_schema(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(SCHEMA)
    assert {col: str(dtype) for col, dtype in frame.dtypes.items()} == SCHEMA
    assert isinstance(frame.index, pd.RangeIndex)


def test_schema_contract_columns_come_first() -> None:
    assert list(SCHEMA)[:13] == CONTRACT
    assert SCHEMA["is_10b5_1"] == "boolean"
    assert SCHEMA["transaction_date"] == SCHEMA["period_of_report"] == "datetime64[ns]"


# --- the real 374Water Form 4 -------------------------------------------------------------------------------


def test_real_fixture_is_the_sample(real: bytes) -> None:
    assert hashlib.sha256(real).hexdigest() == REAL_SHA256


def test_real_form4_every_column(real: bytes) -> None:
    frame = parse(real)
    assert_schema(frame)
    # One non-derivative row; the derivativeTable's option grant (757,576 shares at $0.33) is ignored.
    assert len(frame) == 1
    row = frame.iloc[0].to_dict()
    assert pd.isna(row.pop("accession"))  # not inside the XML
    assert row == {
        "ticker": "SCWO",
        "issuer_cik": "933972",
        "owner_name": "Melkote Rajesh Ramaswamy",
        "is_director": False,
        "is_officer": True,
        "officer_title": "Chief Technology Officer",
        "transaction_date": pd.Timestamp("2025-04-30"),
        "code": "A",
        "shares": 757756.0,
        "price": 0.0,
        "acquired_disposed": "A",
        "shares_after": 757756.0,
        "direct_indirect": "D",
        "form_type": "4",
        "issuer_name": "374Water Inc.",
        "owner_cik": "2064133",
        "is_ten_percent_owner": False,
        "owners": "Melkote Rajesh Ramaswamy",
        "is_10b5_1": False,
        "security_title": "Common Stock (restricted stock units)",
        "period_of_report": pd.Timestamp("2025-04-30"),
        "footnotes": f"F1: {F1}",
    }
    assert frame.attrs["file_date"] == date(2025, 4, 30)
    assert type(frame.attrs["file_date"]) is date


def test_parse_filing_fills_accession_and_keeps_document_type(real: bytes) -> None:
    frame = parse_filing(real, "0001062993-25-001234", "4/A")
    assert_schema(frame)
    assert frame.loc[0, "accession"] == "0001062993-25-001234"
    # <documentType>4</documentType> wins over what the caller believed.
    assert frame.loc[0, "form_type"] == "4"


def test_parse_filing_uses_given_form_type_without_document_type(real: bytes) -> None:
    data = edited(real, b"<documentType>4</documentType>", b"")
    assert parse_filing(data, "0001062993-25-001234", "4/A").loc[0, "form_type"] == "4/A"
    assert pd.isna(parse(data).loc[0, "form_type"])


def test_no_prolog_parses_like_the_real_file(real: bytes) -> None:
    data = fixture("form4_no_prolog.xml")
    assert not data.startswith(b"<?xml") and data.startswith(b"<ownershipDocument>")
    pd.testing.assert_frame_equal(parse(data), parse(real))


def test_bom_and_leading_blank_lines_are_accepted(real: bytes) -> None:
    pd.testing.assert_frame_equal(parse(b"\xef\xbb\xbf\n\n  " + real), parse(real))


def test_source_registration_fields() -> None:
    assert SOURCE.name == NAME == "sec-form4"
    assert SOURCE.base_setting == "sec_url"
    assert SOURCE.calendar == "XNYS"
    assert SOURCE.check_file_date is False
    assert SOURCE.schema is SCHEMA
    assert paths(date(2020, 3, 18)) == ["/Archives/edgar/daily-index/2020/QTR1/form.20200318.idx"]
    assert SOURCE.dated_url


def test_source_parse_all_on_real_file(real: bytes) -> None:
    tables = SOURCE.parse_all(real)
    assert set(tables) == {"main", "buys"}
    assert_schema(tables["main"])
    assert_schema(tables["buys"])
    assert tables["buys"].empty  # the real filing's only row is a code-A award


def test_buys_table_keeps_the_purchases_only() -> None:
    tables = SOURCE.parse_all(fixture("form4_purchase_P.xml"))
    assert tables["buys"]["code"].tolist() == ["P", "P"]
    assert tables["buys"]["shares"].tolist() == tables["main"]["shares"].tolist()
    sale = SOURCE.parse_all(fixture("form4_10b5_1_sale.xml"))
    assert len(sale["main"]) == 1 and sale["buys"].empty


# --- constructed cases ----------------------------------------------------------------------------------------


def test_open_market_purchase_code_p() -> None:
    frame = parse(fixture("form4_purchase_P.xml"))
    assert_schema(frame)
    # Two transactions; the nonDerivativeHolding (200,000 by a trust) and the derivativeTable are not rows.
    assert len(frame) == 2
    assert frame["code"].tolist() == ["P", "P"]
    assert frame["acquired_disposed"].tolist() == ["A", "A"]
    assert frame["transaction_date"].tolist() == [pd.Timestamp("2025-05-12"), pd.Timestamp("2025-05-13")]
    assert frame["shares"].tolist() == [50000.0, 25000.0]
    assert frame["price"].tolist() == [0.41, 0.435]
    assert frame["shares_after"].tolist() == [807756.0, 125000.0]
    assert frame["direct_indirect"].tolist() == ["D", "I"]
    assert frame["security_title"].tolist() == ["Common Stock", "Common Stock"]
    assert pd.isna(frame.loc[0, "footnotes"])
    assert (
        frame.loc[1, "footnotes"]
        == "F2: Shares purchased by the Reporting Person's spouse in the open market."
    )
    assert 200000.0 not in frame["shares_after"].tolist()
    assert frame.attrs["file_date"] == date(2025, 5, 12)


def test_10b5_1_sale() -> None:
    frame = parse(fixture("form4_10b5_1_sale.xml"))
    assert_schema(frame)
    assert len(frame) == 1
    row = frame.iloc[0]
    assert frame["is_10b5_1"].tolist() == [True]
    assert (row["code"], row["acquired_disposed"], row["shares"], row["price"], row["shares_after"]) == (
        "S",
        "D",
        120000.0,
        0.2875,
        637756.0,
    )
    # Footnotes in document order (transactionCoding's F3 before the price's F2), the two-line text collapsed.
    assert row["footnotes"] == (
        "F3: The sale reported on this Form 4 was effected pursuant to a Rule 10b5-1 trading plan adopted by the "
        "Reporting Person on December 12, 2024. | F2: The price reported is a weighted average price. These shares "
        "were sold in multiple transactions at prices ranging from $0.28 to $0.295, inclusive. The Reporting Person "
        "undertakes to provide full information regarding the number of shares sold at each separate price."
    )


def test_multi_owner_flags_from_any_owner_names_from_first() -> None:
    frame = parse(fixture("form4_multi_owner.xml"))
    assert_schema(frame)
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["owner_name"] == "Example Capital Partners LP"
    assert row["owner_cik"] == "1999001"
    assert row["owners"] == "Example Capital Partners LP; Doe Jane"
    assert bool(row["is_director"]) is True  # the second owner
    assert bool(row["is_ten_percent_owner"]) is True  # the first owner
    assert bool(row["is_officer"]) is False
    assert pd.isna(row["officer_title"])
    # Schema X0306 predates aff10b5One: unknown, not False.
    assert pd.isna(row["is_10b5_1"])
    assert (row["code"], row["shares"], row["price"], row["shares_after"], row["direct_indirect"]) == (
        "P",
        2000000.0,
        0.38,
        14000000.0,
        "I",
    )


def test_amendment_form_type() -> None:
    frame = parse_filing(fixture("form4_amendment.xml"), "0000933972-25-000077")
    assert_schema(frame)
    assert frame["form_type"].tolist() == ["4/A"]
    assert frame["accession"].tolist() == ["0000933972-25-000077"]
    assert frame["shares"].tolist() == [757576.0]
    assert frame["shares_after"].tolist() == [757576.0]


def test_price_with_only_a_footnote_is_nan() -> None:
    frame = parse(fixture("form4_price_footnote_only.xml"))
    assert_schema(frame)
    assert len(frame) == 1
    assert math.isnan(frame.loc[0, "price"])
    assert frame.loc[0, "code"] == "G"
    assert frame.loc[0, "shares"] == 10000.0
    assert (
        frame.loc[0, "footnotes"] == "F2: Bona fide gift to a charitable organization for no consideration."
    )


def test_shares_with_only_a_footnote_is_nan(real: bytes) -> None:
    data = edited(
        real, b'<value>757756</value>\n                    <footnoteId id="F1"/>', b'<footnoteId id="F1"/>'
    )
    frame = parse(data)
    assert math.isnan(frame.loc[0, "shares"])
    assert frame.loc[0, "shares_after"] == 757756.0


def test_derivative_only_filing_is_a_valid_empty_frame() -> None:
    frame = parse(fixture("form4_derivative_only.xml"))
    assert_schema(frame)
    assert frame.empty
    assert frame.attrs["file_date"] == date(2025, 4, 30)


def test_insider_buy_rule_sees_purchases_but_not_plan_sales() -> None:
    assert len(buys(parse(fixture("form4_purchase_P.xml")))) == 2
    assert len(buys(parse(fixture("form4_multi_owner.xml")))) == 1
    assert buys(parse(fixture("form4_10b5_1_sale.xml"))).empty
    assert buys(parse(fixture("374WaterForm4.xml"))).empty


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"true", True),
        (b"TRUE", True),
        (b"True", True),
        (b"1", True),
        (b"false", False),
        (b"False", False),
        (b"0", False),
        (b"", False),
        (b" 1 ", True),
    ],
)
def test_boolean_spellings(real: bytes, raw: bytes, expected: bool) -> None:
    frame = parse(edited(real, b"<isOfficer>true</isOfficer>", b"<isOfficer>" + raw + b"</isOfficer>"))
    assert bool(frame.loc[0, "is_officer"]) is expected


@pytest.mark.parametrize(("raw", "expected"), [(b"1", True), (b"FALSE", False), (b"0", False)])
def test_aff10b5one_spellings(real: bytes, raw: bytes, expected: bool) -> None:
    frame = parse(edited(real, b"<aff10b5One>false</aff10b5One>", b"<aff10b5One>" + raw + b"</aff10b5One>"))
    assert bool(frame.loc[0, "is_10b5_1"]) is expected


def test_missing_relationship_flags_are_false(real: bytes) -> None:
    frame = parse(edited(real, b"<isOfficer>true</isOfficer>", b""))
    assert bool(frame.loc[0, "is_officer"]) is False
    assert frame.loc[0, "officer_title"] == "Chief Technology Officer"


@pytest.mark.parametrize("symbol", [b"NONE", b"n/a", b""])
def test_placeholder_ticker_is_na(real: bytes, symbol: bytes) -> None:
    frame = parse(
        edited(
            real,
            b"<issuerTradingSymbol>SCWO</issuerTradingSymbol>",
            b"<issuerTradingSymbol>" + symbol + b"</issuerTradingSymbol>",
        )
    )
    assert pd.isna(frame.loc[0, "ticker"])


def test_lower_case_ticker_is_upper_cased(real: bytes) -> None:
    frame = parse(
        edited(
            real,
            b"<issuerTradingSymbol>SCWO</issuerTradingSymbol>",
            b"<issuerTradingSymbol> scwo </issuerTradingSymbol>",
        )
    )
    assert frame.loc[0, "ticker"] == "SCWO"


def test_date_with_offset_and_decimal_shares(real: bytes) -> None:
    data = edited(
        real,
        b"<value>2025-04-30</value>\n            </transactionDate>",
        b"<value>2025-04-30-05:00</value>\n            </transactionDate>",
    )
    data = edited(
        data,
        b"<value>757756</value>\n                    <footnoteId",
        b"<value>1234.5678</value>\n                    <footnoteId",
    )
    frame = parse(data)
    assert frame.loc[0, "transaction_date"] == pd.Timestamp("2025-04-30")
    assert frame.loc[0, "shares"] == 1234.5678


# --- broken input -------------------------------------------------------------------------------------------


def test_truncated_xml_is_malformed() -> None:
    with pytest.raises(MalformedFile, match="not well-formed XML"):
        parse(fixture("form4_truncated.xml"))


def test_html_error_page_is_malformed() -> None:
    with pytest.raises(MalformedFile, match="error page"):
        parse(fixture("form4_error_page.html"))


@pytest.mark.parametrize("junk", [b"", b"   \n", b"\x00\x01garbage", b"Form Type   Company Name"])
def test_junk_is_malformed(junk: bytes) -> None:
    with pytest.raises(MalformedFile):
        parse(junk)


def test_other_xml_is_not_an_ownership_document() -> None:
    with pytest.raises(MalformedFile, match="root element is <feed>"):
        parse(fixture("getcurrent_form4.xml"))


def test_missing_issuer_is_malformed(real: bytes) -> None:
    start, end = real.index(b"<issuer>"), real.index(b"</issuer>") + len(b"</issuer>")
    with pytest.raises(MalformedFile, match="no <issuer>"):
        parse(real[:start] + real[end:])


def test_missing_issuer_cik_is_malformed(real: bytes) -> None:
    with pytest.raises(MalformedFile, match="issuerCik"):
        parse(edited(real, b"<issuerCik>0000933972</issuerCik>", b""))


def test_missing_reporting_owner_is_malformed(real: bytes) -> None:
    start = real.index(b"<reportingOwner>")
    end = real.index(b"</reportingOwner>") + len(b"</reportingOwner>")
    with pytest.raises(MalformedFile, match="reportingOwner"):
        parse(real[:start] + real[end:])


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b"<isOfficer>true</isOfficer>", b"<isOfficer>yes</isOfficer>", "not 0/1/true/false"),
        (b"<documentType>4</documentType>", b"<documentType>5</documentType>", "not a Form 4"),
        (
            b"<value>2025-04-30</value>\n            </transactionDate>",
            b"<value>30/04/2025</value>\n            </transactionDate>",
            "transactionDate",
        ),
        (
            b"<value>2025-04-30</value>\n            </transactionDate>",
            b"<value>2025-02-30</value>\n            </transactionDate>",
            "transactionDate",
        ),
        (
            b"<value>757756</value>\n                    <footnoteId",
            b"<value>12abc</value>\n                    <footnoteId",
            "not a number",
        ),
        (
            b"<transactionAcquiredDisposedCode>\n                    <value>A</value>",
            b"<transactionAcquiredDisposedCode>\n                    <value>X</value>",
            "not one of A|D",
        ),
        (
            b"<directOrIndirectOwnership>\n                    <value>D</value>",
            b"<directOrIndirectOwnership>\n                    <value>Q</value>",
            "not one of D|I",
        ),
        (b"<issuerCik>0000933972</issuerCik>", b"<issuerCik>CIK933972</issuerCik>", "not a CIK"),
    ],
)
def test_bad_values_are_malformed(real: bytes, old: bytes, new: bytes, message: str) -> None:
    with pytest.raises(MalformedFile, match=message):
        parse(edited(real, old, new))


def test_transaction_without_date_is_malformed(real: bytes) -> None:
    start = real.index(b"<transactionDate>")
    end = real.index(b"</transactionDate>") + len(b"</transactionDate>")
    with pytest.raises(MalformedFile, match="no transactionDate"):
        parse(real[:start] + real[end:])
