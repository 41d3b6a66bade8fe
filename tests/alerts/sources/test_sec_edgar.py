"""Tests for SEC EDGAR discovery: daily index, Atom feeds, ticker map, filing folders, and the day's Form 4 fetch
over real HTTP against the local origin (data-formats.md §8)."""

from __future__ import annotations

import json
import time
from datetime import date

import httpx
import pandas as pd
import pytest

import alerts.sources.sec_edgar as sec_edgar_module
from alerts.errors import MalformedFile, NotPublishedYet
from alerts.fetch import make_client
from alerts.sources import sec_form4
from alerts.sources.sec_edgar import (
    ATOM_SCHEMA,
    INDEX_SCHEMA,
    RateLimiter,
    accession_folder,
    check_user_agent,
    current_feed_path,
    daily_index_path,
    dedupe_accessions,
    fetch_form4_day,
    filing_folder,
    filing_index_path,
    filing_xml_path,
    form4_filings,
    parse_atom,
    parse_company_tickers,
    parse_daily_index,
    parse_filing_index_json,
)
from config.settings import ConfigError
from tests.support.origin import Origin
from tests.support.paths import FIXTURES as _FIXTURES

FIXTURES = _FIXTURES / "sec-form4"
DAY = date(2020, 3, 18)
UA = "Positioning Bot ops@positioning-bot.example"


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


# --- User-Agent and rate limit --------------------------------------------------------------------------------


@pytest.mark.parametrize("agent", [UA, "Acme Bot ops@acme.hk", "positioning-bot/0.1 (contact: a.b@c.co.uk)"])
def test_user_agent_with_email_is_accepted(agent: str) -> None:
    assert check_user_agent(agent) == agent


@pytest.mark.parametrize("agent", ["", "positioning-bot/0.1", "ops at acme dot hk", "me@localhost"])
def test_user_agent_without_email_is_refused(agent: str) -> None:
    with pytest.raises(ConfigError, match="SEC_USER_AGENT") as info:
        check_user_agent(agent)
    assert isinstance(info.value, ValueError)


class FakeTime:
    """A clock that only moves when the limiter sleeps (optionally waking early)."""

    def __init__(self, early: float = 0.0) -> None:
        self.now = 100.0
        self.early = early
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds * (1 - self.early)


async def test_rate_limiter_spaces_starts_without_bursts() -> None:
    fake = FakeTime()
    limiter = RateLimiter(10, clock=fake.clock, sleep=fake.sleep)
    starts = []
    for _ in range(5):
        await limiter.wait()
        starts.append(fake.now)
    assert starts == pytest.approx([100.0, 100.1, 100.2, 100.3, 100.4])
    fake.now += 5.0  # idle for a while: no saved-up burst afterwards
    await limiter.wait()
    first = fake.now
    await limiter.wait()
    assert fake.now - first == pytest.approx(0.1)


async def test_rate_limiter_survives_early_wakeups() -> None:
    fake = FakeTime(early=0.5)
    limiter = RateLimiter(4, clock=fake.clock, sleep=fake.sleep)
    starts = []
    for _ in range(4):
        await limiter.wait()
        starts.append(fake.now)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(gap >= 0.25 - 1e-9 for gap in gaps), gaps
    assert len(fake.sleeps) > 3  # it had to sleep again after waking early


def test_rate_limiter_rejects_non_positive_rate() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(0)


# --- fetch_form4_day over HTTP --------------------------------------------------------------------------------

# Three distinct Form 4/4A filings (five index rows: two are the same filings under another filer's CIK),
# plus a Form 3 and an 8-K that must not be fetched.
KEEP = (
    "0000899243-20-008926.txt",
    "0000899243-20-008928.txt",
    "0001638599-20-000321.txt",
    "0001209191-20-019882.txt",
    "0001564590-20-011604.txt",
)
GOOD_10X = ("/Archives/edgar/data/1770787/000089924320008928/", "doc4.xml", "374WaterForm4.xml")
GOOD_BAKER = (
    "/Archives/edgar/data/1551139/000163859920000321/",
    "wf-form4_158456284653329.xml",
    "form4_purchase_P.xml",
)
BROKEN_ARENA = "/Archives/edgar/data/1080709/000120919120019882/"


def three_filing_index(index_bytes: bytes) -> bytes:
    lines = index_bytes.split(b"\n")
    rows = [line for line in lines[10:] if any(name.encode() in line for name in KEEP)]
    rows = [
        row
        for row in rows
        if b"/1551139/" in row or b"0001638599-20-000321" not in row or b"/1087940/" in row
    ]
    return b"\n".join(lines[:10] + rows) + b"\n"


def serve_day(origin: Origin, index_bytes: bytes, broken: str = "truncated") -> None:
    """Serve the 3-filing index, the two good filings, and the 4/A filing broken in the way asked."""
    origin.add(daily_index_path(DAY), three_filing_index(index_bytes))
    for folder, xml_name, source in (GOOD_10X, GOOD_BAKER):
        origin.add(
            folder + "index.json", _listing(folder, [(xml_name, "text.gif"), ("xslF345X03", "folder.gif")])
        )
        origin.add(folder + xml_name, fixture(source))
    if broken != "no_index_json":
        names = [("0001209191-20-019882.txt", "text.gif")]
        if broken != "no_xml":
            names.append(("doc4.xml", "text.gif"))
        origin.add(BROKEN_ARENA + "index.json", _listing(BROKEN_ARENA, names))
    if broken == "truncated":
        origin.add(BROKEN_ARENA + "doc4.xml", fixture("form4_truncated.xml"))
    elif broken == "error_page":
        origin.add(BROKEN_ARENA + "doc4.xml", fixture("form4_error_page.html"), content_type="text/html")


def test_three_filing_index_has_what_the_fetch_tests_assume(index_bytes: bytes) -> None:
    frame = parse_daily_index(three_filing_index(index_bytes))
    assert frame["form_type"].tolist() == ["3"] * 3 + ["4"] * 5 + ["4/A"] * 2 + ["8-K"]
    assert dedupe_accessions(form4_filings(frame))["file_name"].tolist() == [
        "edgar/data/1770787/0000899243-20-008928.txt",
        "edgar/data/1551139/0001638599-20-000321.txt",
        "edgar/data/1080709/0001209191-20-019882.txt",
    ]


async def test_fetch_form4_day_parses_skips_and_is_polite(
    origin: Origin, index_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_day(origin, index_bytes)
    stamps: list[float] = []
    requests_seen: list[float] = []

    class RecordingLimiter(sec_edgar_module.RateLimiter):
        """Stamps each release: where the ≤ 10/s policy is enforced, free of event-loop jitter after it."""

        async def wait(self) -> None:
            await super().wait()
            stamps.append(time.monotonic())

    monkeypatch.setattr(sec_edgar_module, "RateLimiter", RecordingLimiter)

    async def stamp(request: httpx.Request) -> None:
        requests_seen.append(time.monotonic())

    # The client's own User-Agent has no e-mail: the declared one must replace it on every request.
    async with make_client() as client:
        client.event_hooks = {"request": [stamp]}
        frame = await fetch_form4_day(client, origin.url + "/", DAY, user_agent=UA)

    assert list(frame.columns) == list(sec_form4.SCHEMA)
    assert dtypes(frame) == sec_form4.SCHEMA
    assert frame["accession"].tolist() == [
        "0000899243-20-008928",
        "0001638599-20-000321",
        "0001638599-20-000321",
    ]
    assert frame["code"].tolist() == ["A", "P", "P"]
    assert frame["shares"].tolist() == [757756.0, 50000.0, 25000.0]
    assert frame["form_type"].tolist() == ["4", "4", "4"]
    assert frame.attrs["file_date"] == DAY
    assert frame.attrs["filings"] == 3
    assert frame.attrs["skipped"] == 1
    [skip] = frame.attrs["skipped_filings"]
    assert skip["accession"] == "0001209191-20-019882"
    assert skip["file_name"] == "edgar/data/1080709/0001209191-20-019882.txt"
    assert "not well-formed XML" in skip["error"]
    assert f"<{origin.url}{BROKEN_ARENA}doc4.xml>" in skip["error"]

    # Exactly index + (index.json + XML) per distinct filing; nothing for the Form 3, the 8-K or duplicate rows.
    paths = sorted(request.path for request in origin.requests)
    assert paths == sorted(
        [
            daily_index_path(DAY),
            GOOD_10X[0] + "index.json",
            GOOD_10X[0] + "doc4.xml",
            GOOD_BAKER[0] + "index.json",
            GOOD_BAKER[0] + GOOD_BAKER[1],
            BROKEN_ARENA + "index.json",
            BROKEN_ARENA + "doc4.xml",
        ]
    )
    assert origin.requests[0].path == daily_index_path(DAY)
    assert all(request.headers["User-Agent"] == UA for request in origin.requests)

    # At most 10 requests per second: starts at least 0.1 s apart, any 11 consecutive starts span >= 1 s.
    assert len(requests_seen) == 7  # every request went through the limiter
    assert len(stamps) == 7
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert min(gaps) >= 0.095, gaps
    assert stamps[-1] - stamps[0] >= 0.6 - 0.01


@pytest.mark.parametrize(
    ("broken", "error"),
    [("error_page", "error page"), ("no_index_json", "HTTP 404"), ("no_xml", "lists no XML document")],
)
async def test_fetch_form4_day_skips_each_kind_of_broken_filing(
    origin: Origin, index_bytes: bytes, broken: str, error: str
) -> None:
    serve_day(origin, index_bytes, broken)
    async with make_client() as client:
        frame = await fetch_form4_day(client, origin.url, DAY, user_agent=UA, max_per_second=100.0)
    assert len(frame) == 3
    assert frame.attrs["skipped"] == 1
    assert error in frame.attrs["skipped_filings"][0]["error"]


async def test_fetch_form4_day_limit(origin: Origin, index_bytes: bytes) -> None:
    serve_day(origin, index_bytes)
    async with make_client() as client:
        frame = await fetch_form4_day(client, origin.url, DAY, user_agent=UA, max_per_second=100.0, limit=1)
    assert frame["accession"].tolist() == ["0000899243-20-008928"]
    assert frame.attrs["filings"] == 1
    assert frame.attrs["skipped"] == 0
    assert len(origin.requests) == 3


async def test_fetch_form4_day_empty_index(origin: Origin) -> None:
    origin.add(daily_index_path(DAY), fixture("empty-form.idx"))
    async with make_client() as client:
        frame = await fetch_form4_day(client, origin.url, DAY, user_agent=UA)
    assert frame.empty
    assert dtypes(frame) == sec_form4.SCHEMA
    assert frame.attrs["filings"] == 0
    assert len(origin.requests) == 1


@pytest.mark.parametrize("status", [404, 403])
async def test_missing_daily_index_is_not_published(origin: Origin, status: int) -> None:
    if status != 404:
        origin.add(daily_index_path(DAY), b"<html>Forbidden</html>", status=status)
    async with make_client() as client:
        with pytest.raises(NotPublishedYet) as info:
            await fetch_form4_day(client, origin.url, DAY, user_agent=UA)
    assert info.value.source == "sec-form4"
    assert len(origin.requests) == 1


async def test_broken_daily_index_is_malformed(origin: Origin) -> None:
    origin.add(daily_index_path(DAY), fixture("form4_error_page.html"))
    async with make_client() as client:
        with pytest.raises(MalformedFile) as info:
            await fetch_form4_day(client, origin.url, DAY, user_agent=UA)
    assert info.value.source == "sec-form4"
    assert info.value.url == origin.url + daily_index_path(DAY)


async def test_fetch_refuses_without_contact_email(origin: Origin) -> None:
    async with make_client() as client:
        with pytest.raises(ValueError, match="SEC_USER_AGENT"):
            await fetch_form4_day(client, origin.url, DAY, user_agent="positioning-bot/0.1")
    assert origin.requests == []


async def test_edgar_downloads_stream_under_the_byte_cap(origin: Origin) -> None:
    # EDGAR's rate-limited client streams like the plain one: an endless body is refused once it passes the cap
    # (read whole first, it would run into the deadline instead).
    import itertools

    from alerts.fetch import fetch, make_client

    origin.add("/Archives/endless.xml", chunks=lambda: (b"x" * 1000 for _ in itertools.count()))
    origin.add("/Archives/small.xml", b"x" * 5000)
    async with make_client() as raw:
        polite = sec_edgar_module._PoliteClient(
            raw, "positioning-bot tests ops@example.com", sec_edgar_module.RateLimiter(1000)
        )
        with pytest.raises(MalformedFile, match="too large"):
            await fetch(
                polite,
                origin.url + "/Archives/endless.xml",
                max_bytes=100_000,
                retries=0,  # type: ignore[arg-type]
                deadline=10,
            )
        got = await fetch(polite, origin.url + "/Archives/small.xml", max_bytes=10_000, retries=0)  # type: ignore[arg-type]
    assert len(got.content) == 5000
    assert {r.headers.get("User-Agent") for r in origin.requests} == {"positioning-bot tests ops@example.com"}
