"""Tests for SEC EDGAR discovery parsers: daily index, Atom feeds, ticker map, filing folders (data-formats.md §8).

The day's Form 4 fetch over HTTP is tests/alerts/test_edgar.py."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from alerts.errors import MalformedFile
from alerts.sources.sec_edgar import (
    ATOM_SCHEMA,
    INDEX_SCHEMA,
    accession_folder,
    current_feed_path,
    daily_index_path,
    dedupe_accessions,
    filing_folder,
    filing_index_path,
    filing_xml_path,
    form4_filings,
    parse_atom,
    parse_company_tickers,
    parse_daily_index,
    parse_filing_index_json,
)
from tests.support.paths import FIXTURES as _FIXTURES

FIXTURES = _FIXTURES / "sec-form4"
DAY = date(2020, 3, 18)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {col: str(dtype) for col, dtype in frame.dtypes.items()}


@pytest.fixture(scope="module")
def index_bytes() -> bytes:
    return fixture("form.20200318.idx")


@pytest.fixture(scope="module")
def index(index_bytes: bytes) -> pd.DataFrame:
    return parse_daily_index(index_bytes)


# --- daily index ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "path"),
    [
        (date(2020, 3, 18), "/Archives/edgar/daily-index/2020/QTR1/form.20200318.idx"),
        (date(2020, 4, 1), "/Archives/edgar/daily-index/2020/QTR2/form.20200401.idx"),
        (date(2025, 9, 30), "/Archives/edgar/daily-index/2025/QTR3/form.20250930.idx"),
        (date(2025, 10, 1), "/Archives/edgar/daily-index/2025/QTR4/form.20251001.idx"),
        (date(2025, 12, 31), "/Archives/edgar/daily-index/2025/QTR4/form.20251231.idx"),
    ],
)
def test_daily_index_path(day: date, path: str) -> None:
    assert daily_index_path(day) == path


def test_real_index_rows_and_dtypes(index: pd.DataFrame) -> None:
    assert len(index) == 4084  # 4,094 lines minus 10 header lines
    assert list(index.columns) == list(INDEX_SCHEMA)
    assert dtypes(index) == INDEX_SCHEMA
    assert index.attrs["file_date"] == DAY
    # Correspondence, uploads and SEC staff letters released that day keep their older filing dates.
    assert (index["date_filed"] == pd.Timestamp("2020-03-18")).sum() == 3940
    assert index.loc[index["date_filed"] < pd.Timestamp("2020-03-18"), "form_type"].unique().tolist() == [
        "CORRESP",
        "DOS",
        "DRS",
        "DRS/A",
        "DRSLTR",
        "EFFECT",
        "MA-A",
        "MA-I/A",
        "PREC14A",
        "QUALIF",
        "SEC STAFF",
        "UPLOAD",
    ]
    assert index.iloc[0].to_dict() == {
        "form_type": "1-A",
        "company": "DLP Positive Note Fund LLC",
        "cik": "1806014",
        "date_filed": pd.Timestamp("2020-03-18"),
        "file_name": "edgar/data/1806014/0001140361-20-006155.txt",
        "accession": "0001140361-20-006155",
    }
    assert index.iloc[-1].to_dict() == {
        "form_type": "X-17A-5/A",
        "company": "USA FINANCIAL SECURITIES CORPORATION",
        "cik": "1105608",
        "date_filed": pd.Timestamp("2020-03-18"),
        "file_name": "edgar/data/1105608/0001105608-20-000004.txt",
        "accession": "0001105608-20-000004",
    }
    # A form type with a space and a short CIK (column padding on both sides).
    assert index.iloc[3].to_dict() == {
        "form_type": "1-A POS",
        "company": "DELHI BANK CORP",
        "cik": "927719",
        "date_filed": pd.Timestamp("2020-03-18"),
        "file_name": "edgar/data/927719/0001213900-20-006773.txt",
        "accession": "0001213900-20-006773",
    }


def test_real_index_form4_rows(index: pd.DataFrame) -> None:
    form4 = form4_filings(index)
    assert dtypes(form4) == INDEX_SCHEMA
    assert (form4["form_type"] == "4").sum() == 2040
    assert (form4["form_type"] == "4/A").sum() == 34
    assert len(form4) == 2074
    assert (form4["date_filed"] == pd.Timestamp("2020-03-18")).all()
    assert form4.iloc[0].to_dict() == {
        "form_type": "4",
        "company": "10x Genomics, Inc.",
        "cik": "1770787",
        "date_filed": pd.Timestamp("2020-03-18"),
        "file_name": "edgar/data/1770787/0000899243-20-008928.txt",
        "accession": "0000899243-20-008928",
    }
    # One filing is listed once per filer: the Baker Bros. Form 4 under seven CIK folders.
    baker = form4[form4["accession"] == "0001638599-20-000321"]
    assert len(baker) == 7
    assert "ALEXION PHARMACEUTICALS, INC." in baker["company"].tolist()


def test_real_index_distinct_form4_filings(index: pd.DataFrame) -> None:
    unique = dedupe_accessions(form4_filings(index))
    assert len(unique) == 991
    assert (unique["form_type"] == "4").sum() == 974
    assert (unique["form_type"] == "4/A").sum() == 17
    assert unique["accession"].is_unique
    # The first listing is kept: 10x Genomics' own folder, not SB Investment Advisers'.
    first = unique[unique["accession"] == "0000899243-20-008928"].iloc[0]
    assert first["cik"] == "1770787"


def test_empty_index_is_a_valid_empty_frame() -> None:
    frame = parse_daily_index(fixture("empty-form.idx"))
    assert frame.empty
    assert dtypes(frame) == INDEX_SCHEMA
    assert frame.attrs["file_date"] == date(2025, 3, 29)  # "March 29, 2025": full month name
    assert form4_filings(frame).empty


def _index_text(widths: tuple[int, int, int, int], rows: list[tuple[str, str, str, str, str]]) -> bytes:
    """A daily index with the given column widths for Form Type, Company Name, CIK and Date Filed."""
    labels = ("Form Type", "Company Name", "CIK", "Date Filed", "File Name")
    line = "".join(label.ljust(width) for label, width in zip(labels, widths, strict=False)) + labels[-1]
    body = [
        "".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + row[-1] + "   "
        for row in rows
    ]
    head = (
        "Description:           Daily Index of EDGAR Dissemination Feed by Form Type\n"
        "Last Data Received:    Nov 20, 2025\n \n"
    )
    return (head + line + "\n" + "-" * 120 + "\n" + "\n".join(body) + "\n").encode()


def test_columns_come_from_the_header_not_fixed_offsets() -> None:
    data = _index_text(
        (16, 50, 12, 12),
        [
            (
                "4/A",
                "Alibaba Group Holding Ltd",
                "1577552",
                "20251120",
                "edgar/data/1577552/0001104659-25-000001.txt",
            ),
            ("SC 13G/A", "APPLE INC", "320193", "20251120", "edgar/data/320193/0000320193-25-000002.txt"),
        ],
    )
    frame = parse_daily_index(data)
    assert frame["form_type"].tolist() == ["4/A", "SC 13G/A"]
    assert frame["company"].tolist() == ["Alibaba Group Holding Ltd", "APPLE INC"]
    assert frame["cik"].tolist() == ["1577552", "320193"]
    assert frame.attrs["file_date"] == date(2025, 11, 20)


def test_overlong_company_name_does_not_shift_cik() -> None:
    name = "A VERY LONG COMPANY NAME THAT RUNS PAST ITS SIXTY-TWO CHARACTER COLUMN INTO CIK"
    line = f"4           {name} 1234567     20200318    edgar/data/1234567/0001234567-20-000001.txt"
    data = _index_text((12, 62, 12, 12), []).rstrip(b"\n") + b"\n" + line.encode() + b"\n"
    frame = parse_daily_index(data)
    assert frame.iloc[0][["form_type", "company", "cik", "accession"]].tolist() == [
        "4",
        name,
        "1234567",
        "0001234567-20-000001",
    ]


def test_master_style_iso_date_is_accepted() -> None:
    data = _index_text(
        (12, 62, 12, 12),
        [("4", "APPLE INC", "320193", "2025-11-20", "edgar/data/320193/0000320193-25-000002.txt")],
    )
    assert parse_daily_index(data)["date_filed"].tolist() == [pd.Timestamp("2025-11-20")]


def test_truncated_row_is_malformed(index_bytes: bytes) -> None:
    cut = index_bytes.index(b"edgar/data/1770787/0000899243-20-008928.txt")
    with pytest.raises(MalformedFile, match="line 275 is not an index row"):
        parse_daily_index(index_bytes[: cut - 30])


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            ("4", "APPLE INC", "320193", "20250231", "edgar/data/320193/0000320193-25-000002.txt"),
            "impossible date",
        ),
        (("4", "APPLE INC", "320193", "20251120", "edgar/data/320193/filing.txt"), "odd file name"),
        (
            ("4", "APPLE INC", "CIK", "20251120", "edgar/data/320193/0000320193-25-000002.txt"),
            "not an index row",
        ),
    ],
)
def test_bad_rows_are_malformed(row: tuple[str, str, str, str, str], message: str) -> None:
    with pytest.raises(MalformedFile, match=message):
        parse_daily_index(_index_text((12, 62, 12, 12), [row]))


def test_header_without_dashed_line_is_malformed(index_bytes: bytes) -> None:
    with pytest.raises(MalformedFile, match="dashed line"):
        parse_daily_index(index_bytes.replace(b"-" * 141 + b"\n", b"", 1))


@pytest.mark.parametrize(
    "junk",
    [
        b"",
        b"\n \n",
        b"\x00\x01garbage",
        fixture("form4_error_page.html"),
        fixture("374WaterForm4.xml"),
        b"Form Type   Company Name   CIK\n-----\n",
    ],
)
def test_junk_index_is_malformed(junk: bytes) -> None:
    with pytest.raises(MalformedFile):
        parse_daily_index(junk)


# --- Atom feeds -----------------------------------------------------------------------------------------------


def test_current_feed_path() -> None:
    assert (
        current_feed_path()
        == "/cgi-bin/browse-edgar?action=getcurrent&type=4&owner=include&count=40&output=atom"
    )
    assert current_feed_path(100).endswith("&count=100&output=atom")
    with pytest.raises(ValueError, match="count"):
        current_feed_path(0)


def test_getcurrent_feed() -> None:
    frame = parse_atom(fixture("getcurrent_form4.xml"))
    assert list(frame.columns) == list(ATOM_SCHEMA)
    assert dtypes(frame) == ATOM_SCHEMA
    assert len(frame) == 6
    assert frame.iloc[0].to_dict() == {
        "accession": "0001415889-22-009229",
        "form_type": "4",
        "title": "4 - CHASE ADAM (0001254843) (Reporting)",
        "cik": "1254843",
        "role": "Reporting",
        "updated": pd.Timestamp("2022-09-01T21:06:07Z"),
        "link": "https://www.sec.gov/Archives/edgar/data/1254843/000141588922009229/0001415889-22-009229-index.htm",
    }
    assert frame["role"].tolist() == ["Reporting", "Issuer"] * 3
    assert frame["cik"].tolist() == ["1254843", "830524", "1214156", "320193", "1999003", "1999004"]
    assert frame["form_type"].tolist() == ["4", "4", "4", "4", "4/A", "4/A"]
    # The double-spaced title is understood (and stored with single spaces).
    assert frame.loc[3, "title"] == "4 - Apple Inc. (0000320193) (Issuer)"
    # ISO-8859-1 feed: the Ü arrives decoded.
    assert frame.loc[4, "title"] == "4/A - MÜLLER KLAUS (0001999003) (Reporting)"
    assert frame.loc[2, "updated"] == pd.Timestamp("2022-09-01T20:32:11Z")


def test_getcurrent_dedupe_keeps_one_row_per_filing() -> None:
    unique = dedupe_accessions(parse_atom(fixture("getcurrent_form4.xml")))
    assert unique["accession"].tolist() == [
        "0001415889-22-009229",
        "0000320193-22-000091",
        "0001999004-22-000012",
    ]
    assert unique["role"].tolist() == ["Reporting"] * 3
    assert dtypes(unique) == ATOM_SCHEMA


def test_getcompany_feed() -> None:
    frame = parse_atom(fixture("edgarkit_atom.xml"))
    assert dtypes(frame) == ATOM_SCHEMA
    assert frame["accession"].tolist() == [
        "0001104659-21-057704",
        "0001104659-21-048133",
        "0001104659-21-042159",
        "0001104659-21-039858",
        "0001104659-21-024398",
    ]
    assert frame["form_type"].tolist() == ["S-1/A"] * 4 + ["S-1"]
    # No "(CIK) (Role)" in getcompany titles: the CIK is the feed's company, the role unknown.
    assert (frame["cik"] == "1844419").all()
    assert frame["role"].isna().all()
    assert frame.loc[0, "updated"] == pd.Timestamp("2021-04-29T20:45:49Z")
    assert frame.loc[4, "updated"] == pd.Timestamp("2021-02-16T22:25:34Z")  # -05:00 in winter
    assert (
        frame.loc[4, "title"]
        == "S-1 - General form for registration of securities under the Securities Act of 1933"
    )
    assert frame.loc[0, "link"].endswith("/1844419/000110465921057704/0001104659-21-057704-index.htm")


def test_feed_without_entries_is_empty() -> None:
    data = fixture("getcurrent_form4.xml")
    empty = data[: data.index(b"<entry>")] + b"</feed>\n"
    frame = parse_atom(empty)
    assert frame.empty
    assert dtypes(frame) == ATOM_SCHEMA


def test_entry_without_accession_is_malformed() -> None:
    data = fixture("getcurrent_form4.xml")
    first = data[data.index(b"<entry>") : data.index(b"</entry>") + len(b"</entry>")]
    stripped = first.replace(b"<id>urn:tag:sec.gov,2008:accession-number=0001415889-22-009229</id>", b"")
    stripped = stripped.replace(b"<b>AccNo:</b> 0001415889-22-009229", b"")
    with pytest.raises(MalformedFile, match="entry 1 carries no accession"):
        parse_atom(data.replace(first, stripped, 1))


def test_entry_without_offset_is_malformed() -> None:
    data = fixture("getcurrent_form4.xml").replace(
        b"2022-09-01T17:06:07-04:00</updated>", b"2022-09-01T17:06:07</updated>", 1
    )
    with pytest.raises(MalformedFile, match="no UTC offset"):
        parse_atom(data)


@pytest.mark.parametrize(
    "junk",
    [
        b"",
        b"\x00\x01garbage",
        fixture("form4_error_page.html"),
        fixture("374WaterForm4.xml"),
        fixture("getcurrent_form4.xml")[:700],
    ],
)
def test_junk_feed_is_malformed(junk: bytes) -> None:
    with pytest.raises(MalformedFile):
        parse_atom(junk)


# --- ticker map -----------------------------------------------------------------------------------------------


def test_company_tickers() -> None:
    tickers = parse_company_tickers(fixture("edgarkit_company_tickers.json"))
    assert len(tickers) == 9905
    assert tickers["AAPL"] == "320193"
    assert tickers["BABA"] == "1577552"
    assert tickers["NVDA"] == "1045810"
    assert tickers["BRK-B"] == "1067983"
    assert all(cik.isdigit() and not cik.startswith("0") for cik in tickers.values())


@pytest.mark.parametrize(
    "junk",
    [
        b"",
        b"[]",
        b"{}",
        b"<html><title>404 Not Found</title></html>",
        b'{"0": {"ticker": "AAPL"}}',
        b'{"0": {"cik_str": "abc", "ticker": "AAPL", "title": "Apple Inc."}}',
        b'{"0": [320193, "AAPL"]}',
    ],
)
def test_bad_company_tickers_are_malformed(junk: bytes) -> None:
    with pytest.raises(MalformedFile):
        parse_company_tickers(junk)


# --- filing folders -------------------------------------------------------------------------------------------


def test_filing_paths_from_index_file_name() -> None:
    name = "edgar/data/1770787/0000899243-20-008928.txt"
    assert filing_folder(name) == "/Archives/edgar/data/1770787/000089924320008928/"
    assert filing_index_path(name) == "/Archives/edgar/data/1770787/000089924320008928/index.json"
    assert filing_xml_path(name, "doc4.xml") == "/Archives/edgar/data/1770787/000089924320008928/doc4.xml"
    assert accession_folder("0001770787", "0000899243-20-008928") == filing_folder(name)
    assert accession_folder("1770787", "000089924320008928") == filing_folder(name)


@pytest.mark.parametrize("bad", ["edgar/data/1770787/doc4.xml", "0000899243-20-008928", ""])
def test_bad_file_name_is_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="not an EDGAR index file name"):
        filing_folder(bad)


def _listing(folder: str, names: list[tuple[str, str]]) -> bytes:
    """An index.json shaped like the fixture: (name, type) items."""
    items = [
        {"last-modified": "2020-03-18 21:24:36", "name": name, "type": kind, "size": ""}
        for name, kind in names
    ]
    return json.dumps(
        {
            "directory": {
                "item": items,
                "name": folder.rstrip("/"),
                "parent-dir": folder.rstrip("/").rsplit("/", 1)[0],
            }
        }
    ).encode()


def test_filing_index_json_fixture() -> None:
    assert parse_filing_index_json(fixture("index.json")) == "doc4.xml"


def test_filing_index_json_skips_index_xsl_and_summary() -> None:
    data = _listing(
        "/Archives/edgar/data/1/000000000120000001/",
        [
            ("xslF345X03", "folder.gif"),
            ("0000000001-20-000001-index.xml", "text.gif"),
            ("FilingSummary.xml", "text.gif"),
            ("xslF345X03/wf-form4_158456.xml", "text.gif"),
            ("0000000001-20-000001.txt", "text.gif"),
            ("wf-form4_158456284653329.xml", "text.gif"),
        ],
    )
    assert parse_filing_index_json(data) == "wf-form4_158456284653329.xml"


def test_filing_index_json_without_xml_is_none() -> None:
    data = _listing(
        "/Archives/edgar/data/1/000000000120000001/",
        [("0000000001-20-000001.txt", "text.gif"), ("primary_doc.html", "text.gif")],
    )
    assert parse_filing_index_json(data) is None


@pytest.mark.parametrize(
    "junk",
    [
        b"",
        b"{}",
        b'{"directory": {}}',
        b'{"directory": {"item": 3}}',
        b"<html><title>404 Not Found</title></html>",
    ],
)
def test_bad_filing_index_json_is_malformed(junk: bytes) -> None:
    with pytest.raises(MalformedFile):
        parse_filing_index_json(junk)


def test_form_types_longer_than_their_column_push_the_company_right() -> None:
    # Since December 2024 the schedules are "SCHEDULE 13D/A" (14 characters) against a 12-wide column; rows as
    # third-party parsers quote 2026 indexes (a 17-wide form type), under the header of the real 2020 file.
    real = (FIXTURES / "form.20200318.idx").read_text()
    header = real.split("-" * 20)[0].rstrip("\n")
    dashes = next(line for line in real.splitlines() if line.startswith("-----"))
    rows = [
        f"{'SCHEDULE 13D/A':<17}{'Some Holder  With Two  Spaces Inc':<62}{'1234567':<12}20260904    "
        "edgar/data/1234567/0001234567-26-000001.txt",
        f"{'SCHEDULE 13D':<17}{'New Fortress Energy Inc.':<62}{'1749723':<12}20260918    "
        "edgar/data/1749723/0001193125-26-395888.txt",
        f"{'4':<17}{'Tesla, Inc.':<62}{'1318605':<12}20260918    edgar/data/1318605/0001628280-26-043000.txt",
    ]
    frame = parse_daily_index("\n".join([header, dashes, *rows, ""]).encode())
    assert frame["form_type"].tolist() == ["SCHEDULE 13D/A", "SCHEDULE 13D", "4"]
    assert frame["company"].tolist() == [
        "Some Holder  With Two  Spaces Inc",
        "New Fortress Energy Inc.",
        "Tesla, Inc.",
    ]
    assert frame["cik"].tolist() == ["1234567", "1749723", "1318605"]
    # A row whose form type runs into the company with no gap at all is still refused.
    glued = f"{'SCHEDULE 13D/AAcme':<79}{'1':<12}20260918    edgar/data/1/0001193125-26-395889.txt"
    with pytest.raises(MalformedFile, match="not an index row"):
        parse_daily_index("\n".join([header, dashes, glued, ""]).encode())
