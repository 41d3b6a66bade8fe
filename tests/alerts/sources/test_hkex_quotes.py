"""hkex-quotes: daily quotations file d{YYMMDD}e.htm → per-stock prices + short selling, market totals."""

from __future__ import annotations

import math
import re
from datetime import date

import pandas as pd
import pytest

from alerts.errors import MalformedFile, NotPublishedYet
from alerts.sources import hkex_quotes
from alerts.sources.hkex_quotes import SCHEMA, parse, parse_market
from alerts.sources.hkex_short import MARKET_SCHEMA
from tests.support.paths import FIXTURES as _FIXTURES

FIXTURES = _FIXTURES / "hkex-quotes"
DASHES = "-" * 79


def _read(name: str = "d251120e.htm") -> bytes:
    return (FIXTURES / name).read_bytes()


def _text(name: str = "d251120e.htm") -> str:
    return _read(name).decode("latin-1")


def _row(frame: pd.DataFrame, code: str) -> pd.Series:
    rows = frame[frame["code"] == code]
    assert len(rows) == 1, f"expected one row for {code}, got {len(rows)}"
    return rows.iloc[0]


def _dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {col: str(dtype) for col, dtype in frame.dtypes.items()}


# --- QUOTATIONS -----------------------------------------------------------------------------------------


def test_rows_and_dtypes() -> None:
    frame = parse(_read())
    assert _dtypes(frame) == SCHEMA
    assert frame.attrs["file_date"] == date(2025, 11, 20)
    assert (frame["date"] == pd.Timestamp("2025-11-20")).all()
    # 12 quoted stocks + 02800, which is only in the SHORT SELLING section; ordered by code.
    assert frame["code"].tolist() == [
        "00001",
        "00005",
        "00016",
        "00388",
        "00700",
        "01104",
        "01387",
        "01810",
        "02318",
        "02800",
        "03690",
        "09988",
        "80016",
    ]


def test_two_line_quotation_values() -> None:
    frame = parse(_read())
    tencent = _row(frame, "00700")
    assert (tencent["name"], tencent["currency"]) == ("TENCENT", "HKD")
    assert (tencent["prev_close"], tencent["ask"], tencent["high"]) == (619.50, 611.50, 623.00)
    assert (tencent["close"], tencent["bid"], tencent["low"]) == (611.00, 610.50, 608.50)
    assert tencent["shares_traded"] == 19_868_322
    assert tencent["turnover"] == 12_158_403_210.0
    hsbc = _row(frame, "00005")
    assert (hsbc["close"], hsbc["turnover"]) == (108.40, 2_317_598_406.0)
    xiaomi = _row(frame, "01810")
    assert (xiaomi["name"], xiaomi["close"], xiaomi["shares_traded"]) == ("XIAOMI-W", 39.32, 186_540_733)


def test_dash_values_are_missing() -> None:
    apac = _row(parse(_read()), "01104")
    assert math.isnan(apac["high"])
    assert math.isnan(apac["low"])
    assert (apac["prev_close"], apac["close"], apac["ask"], apac["bid"]) == (1.05, 1.05, 1.07, 1.01)
    assert apac["shares_traded"] == 0
    assert apac["turnover"] == 0.0
    assert not apac["suspended"]


def test_suspended_stock() -> None:
    frame = parse(_read())
    dili = _row(frame, "01387")
    assert (dili["name"], dili["currency"], bool(dili["suspended"])) == ("CHINA DILI", "HKD", True)
    for col in ("prev_close", "close", "ask", "bid", "high", "low", "turnover"):
        assert math.isnan(dili[col]), col
    assert pd.isna(dili["shares_traded"])
    assert frame["suspended"].sum() == 1


def test_trading_halted_counts_as_suspended() -> None:
    data = _read().replace(b"HKD TRADING SUSPENDED", b"HKD TRADING HALTED")
    assert bool(_row(parse(data), "01387")["suspended"])


def test_percent_counter_is_non_hkd_and_linked() -> None:
    frame = parse(_read())
    rmb = _row(frame, "80016")
    assert (rmb["name"], rmb["currency"], bool(rmb["non_hkd"]), rmb["hkd_code"]) == (
        "SHK PPT-R",
        "RMB",
        True,
        "00016",
    )
    assert (rmb["close"], rmb["turnover"]) == (87.00, 1_046_400.0)
    others = frame[frame["code"] != "80016"]
    assert not others["non_hkd"].any()
    assert others["hkd_code"].isna().all()


def test_currency_column_marks_non_hkd_without_marker() -> None:
    # Code 9009 is not in the 8xxxx range and the name has no -R/-U: only CUR says non-HKD.
    data = _read().replace(b"    %80016 SHK PPT-R        RMB", b"      9009 SHK PPT RMB LINE USD")
    row = _row(parse(data), "09009")
    assert (row["name"], row["currency"], bool(row["non_hkd"])) == ("SHK PPT RMB LINE", "USD", True)


# --- SHORT SELLING merge --------------------------------------------------------------------------------


def test_short_selling_columns_merged_by_code() -> None:
    frame = parse(_read())
    tencent = _row(frame, "00700")
    assert tencent["short_shares"] == 3_477_200
    assert tencent["short_value"] == 2_127_698_680.0
    assert tencent["total_shares"] == 19_868_322
    assert tencent["total_value"] == 12_158_403_210.0
    assert tencent["short_ratio"] == 2_127_698_680 / 12_158_403_210
    assert round(tencent["short_ratio"], 4) == 0.1750


def test_short_ratio_of_baba() -> None:
    baba = _row(parse(_read()), "09988")
    assert baba["short_ratio"] == 2_166_513_725 / 9_861_254_730
    assert round(baba["short_ratio"] * 100, 2) == 21.97


def test_stock_without_short_selling_has_missing_short_fields() -> None:
    frame = parse(_read())
    for code in ("01104", "01387"):
        row = _row(frame, code)
        assert pd.isna(row["short_shares"])
        assert pd.isna(row["total_shares"])
        assert math.isnan(row["short_value"])
        assert math.isnan(row["total_value"])
        assert math.isnan(row["short_ratio"])
    assert frame["short_shares"].notna().sum() == 11


def test_short_only_stock_is_kept() -> None:
    tracker = _row(parse(_read()), "02800")
    assert (tracker["name"], tracker["currency"], bool(tracker["suspended"])) == (
        "TRACKER FUND",
        "HKD",
        False,
    )
    assert math.isnan(tracker["close"])
    assert pd.isna(tracker["shares_traded"])
    assert (tracker["short_shares"], tracker["total_value"]) == (3_561_000, 1_598_116_050.0)
    assert tracker["short_ratio"] == 92_942_100 / 1_598_116_050


def test_zero_total_value_gives_nan_ratio() -> None:
    data = _read().replace(b"186,540,733       7,387,241,622", b"186,540,733                   0")
    xiaomi = _row(parse(data), "01810")
    assert xiaomi["total_value"] == 0.0
    assert math.isnan(xiaomi["short_ratio"])


# --- market totals --------------------------------------------------------------------------------------


def test_market_totals() -> None:
    market = parse_market(_read())
    assert _dtypes(market) == MARKET_SCHEMA
    assert market.attrs["file_date"] == date(2025, 11, 20)
    # The constructed fixture's totals are the sums of its own 11 short selling rows (see the fixtures README).
    assert market.to_dict("records") == [
        {
            "date": pd.Timestamp("2025-11-20"),
            "board": "main",
            "session": "close",
            "stocks_shorted": 11,
            "short_shares": 56_164_300,
            "short_value": 6_527_858_820.0,
            "market_turnover": 38_899_184_311.0,
            "short_pct": 16.78,
        }
    ]


def test_market_totals_absent_gives_empty_frame() -> None:
    text = _text()
    start = text.index("Total No. of all Securities")
    end = text.index('                       <a name = "adj_short">')
    market = parse_market((text[:start] + text[end:]).encode("latin-1"))
    assert market.empty
    assert _dtypes(market) == MARKET_SCHEMA
    assert market.attrs["file_date"] == date(2025, 11, 20)


def test_source_parse_all_yields_both_tables() -> None:
    tables = hkex_quotes.SOURCE.parse_all(_read())
    assert list(tables) == ["main", "market"]
    assert (len(tables["main"]), len(tables["market"])) == (13, 1)


# --- 2010 layout (no CUR column, no short selling section) ----------------------------------------------


def test_2010_layout_without_currency_column() -> None:
    frame = parse(_read("d100104e.htm"))
    assert _dtypes(frame) == SCHEMA
    assert frame.attrs["file_date"] == date(2010, 1, 4)
    assert frame["code"].tolist() == ["00005", "00823", "01051"]
    link = _row(frame, "00823")
    assert (link["name"], link["currency"]) == ("LINK REIT", "HKD")
    assert (link["prev_close"], link["ask"], link["high"], link["shares_traded"]) == (
        19.82,
        19.60,
        19.70,
        1_945_905,
    )
    assert (link["close"], link["bid"], link["low"], link["turnover"]) == (19.62, 19.58, 19.58, 38_218_570.0)
    assert bool(_row(frame, "01051")["suspended"])
    assert frame["short_shares"].isna().all()
    assert frame["short_ratio"].isna().all()
    assert parse_market(_read("d100104e.htm")).empty


# --- not published / broken ---------------------------------------------------------------------------


@pytest.mark.parametrize("parser", [parse, parse_market])
@pytest.mark.parametrize(
    "data",
    [
        b"<html><body><p>Information not available.</p></body></html>",
        b"<html><body><pre>20/11/2025: NO TRADING</pre></body></html>",
    ],
    ids=["not-available", "no-trading"],
)
def test_holiday_stub_is_not_published(parser, data: bytes) -> None:
    with pytest.raises(NotPublishedYet):
        parser(data)


@pytest.mark.parametrize("parser", [parse, parse_market])
def test_truncated_in_quotations_is_malformed(parser) -> None:
    with pytest.raises(MalformedFile, match="truncated"):
        parser(_read("d251120e_truncated.htm"))


@pytest.mark.parametrize("parser", [parse, parse_market])
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"<html><head><title>404 Not Found</title></head><body>Not Found</body></html>", "error page"),
        (b"<html><body><pre>DATE: 20 NOV 2025 (THURSDAY)\nsomething else</pre></body></html>", "QUOTATIONS"),
    ],
    ids=["empty", "404-page", "stub-without-sections"],
)
def test_structureless_input_is_malformed(parser, data: bytes, message: str) -> None:
    with pytest.raises(MalformedFile, match=message):
        parser(data)


@pytest.mark.parametrize("parser", [parse, parse_market])
def test_missing_date_is_malformed(parser) -> None:
    data = _read().replace(b"DATE: 20 NOV 2025", b"DAY: 20 NOV 2025")
    with pytest.raises(MalformedFile, match="DATE"):
        parser(data)


@pytest.mark.parametrize("parser", [parse, parse_market])
def test_missing_short_section_listed_in_contents_is_malformed(parser) -> None:
    data = _read().replace(b'<a name = "short_selling">', b"")
    with pytest.raises(MalformedFile, match="SHORT SELLING"):
        parser(data)


def _line_of(text: str, part: str) -> int:
    """1-based number of the fixture line holding `part`."""
    return next(i for i, line in enumerate(text.split("\n"), start=1) if part in line)


def test_garbled_quotation_line_is_malformed_with_its_line_number() -> None:
    data = _read().replace(b"HKD  619.50   611.50   623.00", b"HKD  619.50   611.50   6X3.00")
    number = _line_of(_text(), "HKD  619.50   611.50   623.00")
    with pytest.raises(MalformedFile, match="garbled quotation") as caught:
        parse(data)
    assert f"at line {number}: '700 TENCENT HKD 619.50 611.50 6X3.00 19,868,322'" in str(caught.value)


def test_garbled_short_selling_line_is_malformed_with_its_line_number() -> None:
    data = _read().replace(b"3,477,200       2,127,698,680", b"3,477,200       2,127,698,68O")
    number = _line_of(_text(), "3,477,200       2,127,698,680")
    expected = f"garbled short selling line at line {number}: '700 TENCENT 3,477,200"
    with pytest.raises(MalformedFile, match=expected):
        parse(data)


def test_long_garbled_line_is_shortened() -> None:
    data = _read().replace(b"3,477,200       2,127,698,680", b"3,477,200 " + b"X" * 200)
    with pytest.raises(MalformedFile, match=r"'700 TENCENT 3,477,200 X+\.\.\.'") as caught:
        parse(data)
    assert len(str(caught.value)) < 160


def test_quotation_without_second_line_names_its_line() -> None:
    number = _line_of(_text(), "TENCENT          HKD")
    data = _read().replace(
        b"                                 611.00   610.50   608.50       12,158,403,210\n", b""
    )
    with pytest.raises(MalformedFile, match=f"00700 \\(line {number}\\)"):
        parse(data)


def test_duplicate_quotation_is_malformed() -> None:
    data = _read().replace(b"        16 SHK PPT  ", b"         5 SHK PPT  ")
    with pytest.raises(MalformedFile, match="twice"):
        parse(data)


# --- markers before a code ------------------------------------------------------------------------------


@pytest.mark.parametrize("marker", ["*", "#", "^", "@", "!", "&", "+"])
def test_any_non_word_marker_before_a_code(marker: str) -> None:
    data = _read()
    for before, after in [
        (b"       700 TENCENT          HKD", f"     {marker} 700 TENCENT          HKD".encode()),  # quotation
        (b"      1387 CHINA DILI", f"     {marker}1387 CHINA DILI".encode()),  # suspended row
        (
            b"        700 TENCENT               3,477,200",
            f"      {marker}  700 TENCENT               3,477,200".encode(),
        ),  # short selling row
    ]:
        assert before in data
        data = data.replace(before, after)
    frame = parse(data)
    tencent = _row(frame, "00700")
    assert (tencent["name"], tencent["currency"], bool(tencent["non_hkd"])) == ("TENCENT", "HKD", False)
    assert (tencent["close"], tencent["short_value"]) == (611.00, 2_127_698_680.0)
    assert bool(_row(frame, "01387")["suspended"])
    assert len(frame) == 13


def test_percent_stays_the_non_hkd_marker_in_the_2010_layout() -> None:
    data = _read("d100104e.htm").replace(b"   823 LINK REIT      ", b"  %823 LINK REIT-R    ")
    link = _row(parse(data), "00823")
    assert (link["name"], link["currency"], bool(link["non_hkd"])) == ("LINK REIT-R", "RMB", True)


def test_a_word_character_is_not_a_marker() -> None:
    data = _read().replace(b"       700 TENCENT          HKD", b"      X700 TENCENT          HKD")
    with pytest.raises(MalformedFile):
        parse(data)


# --- reconciliation with the file's own totals -------------------------------------------------------------

RECONCILED = {
    # QUOTATIONS HKD rows vs MARKET HIGHLIGHTS; the total adds RMB 1,046,400 of 80016 at 0.91 RMB per HKD.
    "turnover": (38_898_034_421, 38_899_184_311),
    "section_short_shares": (56_164_300, 56_164_300),
    "section_total_shares": (428_533_151, 428_533_151),
    "stocks_shorted": (11, 11),
    "short_shares": (56_164_300, 56_164_300),
    # HKD rows only; the (C) total adds the RMB 174,400 of %80016 as HK$191,648.
    "short_value": (6_527_667_172, 6_527_858_820),
}


def test_every_total_is_reconciled_and_recorded() -> None:
    for frame in (parse(_read()), parse_market(_read())):
        assert frame.attrs["layout"] == "dayquot-2018"
        assert frame.attrs["reconciled"] == RECONCILED


def test_hand_check_of_the_fixture_totals() -> None:
    frame = parse(_read())
    hkd = frame[frame["currency"] == "HKD"]
    assert hkd["turnover"].sum() == 38_898_034_421
    assert frame["short_shares"].sum() == 56_164_300
    assert hkd["short_value"].sum() == 6_527_667_172
    assert frame["total_shares"].sum() == 428_533_151
    assert round(174_400 / 0.91) == 6_527_858_820 - 6_527_667_172
    assert round(1_046_400 / 0.91) == 38_899_184_311 - 38_898_034_421


def test_2010_file_without_totals_reconciles_nothing() -> None:
    frame = parse(_read("d100104e.htm"))
    assert frame.attrs["layout"] == "dayquot-2010"
    assert frame.attrs["reconciled"] == {}


@pytest.mark.parametrize(
    ("before", "after", "rows", "total", "check"),
    [
        (
            b"TURNOVER ($)                                  38,899,184,311",
            b"TURNOVER ($)                                  39,899,184,311",
            "38,898,034,421",
            "39,899,184,311",
            "turnover",
        ),
        (
            b"Total Shares (SH):        56,164,300",
            b"Total Shares (SH):        57,164,300",
            "56,164,300",
            "57,164,300",
            "section_short_shares",
        ),
        (b"428,533,151", b"438,533,151", "428,533,151", "438,533,151", "section_total_shares"),
        (
            b"recording Short Selling                        :    11",
            b"recording Short Selling                        :    12",
            "11",
            "12",
            "stocks_shorted",
        ),
        (b": HKD  6,527,858,820", b": HKD  6,627,858,820", "6,527,667,172", "6,627,858,820", "short_value"),
    ],
    ids=["turnover", "section-short-shares", "section-total-shares", "count", "short-value"],
)
def test_rows_that_do_not_add_up_are_malformed(
    before: bytes, after: bytes, rows: str, total: str, check: str
) -> None:
    assert _read().count(before) == 1
    data = _read().replace(before, after)
    for parser in (parse, parse_market):
        with pytest.raises(MalformedFile) as caught:
            parser(data)
        assert f"rows add up to {rows} but the file's total says {total} ({check}:" in str(caught.value)
        assert caught.value.layout == "dayquot-2018"


def test_rows_within_half_a_percent_of_the_total_are_accepted() -> None:
    # +0.4% on the market turnover and on the (C) value: accepted, both figures recorded as printed.
    data = _read().replace(
        b"TURNOVER ($)                                  38,899,184,311",
        b"TURNOVER ($)                                  39,054,780,000",
    )
    data = data.replace(b": HKD  6,527,858,820", b": HKD  6,553,970,000")
    reconciled = parse(data).attrs["reconciled"]
    assert reconciled["turnover"] == (38_898_034_421, 39_054_780_000)
    assert reconciled["short_value"] == (6_527_667_172, 6_553_970_000)
    too_far = data.replace(
        b"39,054,780,000", b"39,094,000,000"
    )  # +0.5% of the rows is over 0.5% of the total
    with pytest.raises(MalformedFile, match="turnover"):
        parse(too_far)


def test_absent_totals_are_skipped_not_reconciled() -> None:
    text = _text()
    start = text.index("Total No. of all Securities")
    end = text.index('                       <a name = "adj_short">')
    text = text[:start] + text[end:]  # no summary block
    text = text.replace('<a name = "market_highlights">', "")  # no MARKET HIGHLIGHTS section
    text = "\n".join(line for line in text.split("\n") if "Total Shares (SH):" not in line)
    frame = parse(text.encode("latin-1"))
    assert frame.attrs["reconciled"] == {}
    assert len(frame) == 13


def test_highlights_column_is_chosen_by_date() -> None:
    data = _read().replace(b"20 NOV 2025      19 NOV 2025", b"19 NOV 2025      20 NOV 2025")
    data = data.replace(b"38,899,184,311   37,512,468,205", b"37,512,468,205   38,899,184,311")
    assert parse(data).attrs["reconciled"]["turnover"] == (38_898_034_421, 38_899_184_311)
    wrong = _read().replace(b"20 NOV 2025      19 NOV 2025", b"18 NOV 2025      19 NOV 2025")
    with pytest.raises(MalformedFile, match="no column for 20 NOV 2025"):
        parse(wrong)


# --- full-size file ------------------------------------------------------------------------------------


def _set_totals(
    text: str, *, turnover: int, stocks: int, short_shares: int, short_value: int, traded: int
) -> str:
    """Rewrite every total of a file (MARKET HIGHLIGHTS, the section's Total Shares line, blocks (A) and (C))."""
    text = re.sub(r"(       TURNOVER \(\$\)) +[\d,]+", lambda m: f"{m.group(1)}{turnover:>48,}", text)
    text = re.sub(
        r"(Total Shares \(SH\):) +[\d,]+ +[\d,]+",
        lambda m: f"{m.group(1)}{short_shares:>18,}{traded:>36,}",
        text,
    )
    text = re.sub(r"(recording Short Selling +:) +[\d,]+", lambda m: f"{m.group(1)} {stocks:>5,}", text)
    text = re.sub(
        r"(Turnover Total Shares \(SH\) +:) +[\d,]+", lambda m: f"{m.group(1)} {short_shares:>18,}", text
    )
    return re.sub(
        r"(Turnover Total Value \(\$\) +: HKD) +[\d,]+", lambda m: f"{m.group(1)} {short_value:>14,}", text
    )


def _quote_lines(code: int, index: int) -> list[str]:
    """Two QUOTATIONS lines in the fixture's column layout."""
    prev, close = 10 + index / 100, 10 + index / 100 + 0.05
    return [
        f"{code:>10} {f'STOCK {code}':<16} HKD{prev:>8.2f}{close + 0.01:>9.2f}{close + 0.2:>9.2f}{index * 1000:>21,}",
        f"{'':31}{close:>8.2f}{close - 0.01:>9.2f}{prev - 0.2:>9.2f}{index * 10_000:>21,}",
    ]


def _short_line(code: int, index: int) -> str:
    """One SHORT SELLING TURNOVER line in the fixture's column layout."""
    return f"{code:>11} {f'STOCK {code}':<16}{index * 100:>15,}{index * 1000:>20,}{index * 1000:>16,}{index * 10_000:>20,}"


def test_full_size_file_row_count() -> None:
    """A synthetic file with the real file's ~2,600 stocks (plus a large SALES RECORDS section)."""
    text = _text()
    codes = list(range(1, 2601))
    quotes = [line for i, code in enumerate(codes, 1) for line in _quote_lines(code, i)]
    shorts = [_short_line(code, i) for i, code in enumerate(codes, 1) if i % 2 == 0]
    q_start = text.index("TURNOVER ($)\n\n") + len("TURNOVER ($)\n\n")
    q_end = text.index("\n\n" + DASHES + "\n" + " " * 28 + '<a name = "sales_all">')
    s_start = text.index("($)\n\n", text.index('<a name = "short_selling">')) + len("($)\n\n")
    s_end = text.index("\n\n       Total Shares (SH):")
    sales = "\n".join(["         1 CKH HOLDINGS     [52.80 U]20,000  52.75 10,500  52.80 8,000"] * 100_000)
    sales_at = text.index("\n", text.index("SALES RECORD\n"))
    big = (
        text[:q_start]
        + "\n".join(quotes)
        + text[q_end:sales_at]
        + "\n"
        + sales
        + text[sales_at:s_start]
        + "\n".join(shorts)
        + text[s_end:]
    )
    evens = [i for i in range(1, 2601) if i % 2 == 0]
    big = _set_totals(
        big,
        turnover=sum(i * 10_000 for i in range(1, 2601)),
        stocks=len(evens),
        short_shares=sum(i * 100 for i in evens),
        short_value=sum(i * 1000 for i in evens),
        traded=sum(i * 1000 for i in evens),
    )
    frame = parse(big.encode("latin-1"))
    assert len(frame) == 2600
    assert frame.attrs["reconciled"]["turnover"] == (33_813_000_000, 33_813_000_000)
    assert frame["short_shares"].notna().sum() == 1300
    last = _row(frame, "02600")
    assert (last["close"], last["turnover"], last["short_value"]) == (36.05, 26_000_000.0, 2_600_000.0)
    assert last["short_ratio"] == 0.1
    assert len(parse_market(big.encode("latin-1"))) == 1
