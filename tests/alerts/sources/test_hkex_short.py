"""hkex-short: ASHTMAIN/MSHTMAIN/ASHTGEM pages → per-stock rows and the market summary row."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest

from alerts.errors import MalformedFile, NotPublishedYet
from alerts.sources import hkex_short
from alerts.sources.hkex_short import MARKET_SCHEMA, SCHEMA, parse, parse_market
from tests.support.paths import FIXTURES as _FIXTURES

FIXTURES = _FIXTURES / "hkex-short"


def _read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _row(frame: pd.DataFrame, code: str) -> pd.Series:
    rows = frame[frame["code"] == code]
    assert len(rows) == 1, f"expected one row for {code}, got {len(rows)}"
    return rows.iloc[0]


def _dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {col: str(dtype) for col, dtype in frame.dtypes.items()}


# --- per-stock rows -------------------------------------------------------------------------------------


def test_day_close_main_board_rows() -> None:
    frame = parse(_read("ASHTMAIN.HTM"))
    assert _dtypes(frame) == SCHEMA
    assert frame.attrs["file_date"] == date(2025, 11, 20)
    assert frame["code"].tolist() == [
        "00001",
        "00005",
        "00016",
        "00388",
        "00700",
        "00939",
        "01299",
        "01810",
        "02318",
        "02800",
        "03008",
        "03690",
        "09008",
        "09988",
        "80016",
    ]
    assert (frame["date"] == pd.Timestamp("2025-11-20")).all()
    assert set(frame["board"]) == {"main"}
    assert set(frame["session"]) == {"close"}
    tencent = _row(frame, "00700")
    assert tencent["name"] == "TENCENT"
    assert tencent["short_shares"] == 3_477_200
    assert tencent["short_value"] == 2_127_698_680.0
    assert tencent["currency"] == "HKD"
    ckh = _row(frame, "00001")
    assert (ckh["name"], ckh["short_shares"], ckh["short_value"]) == ("CKH HOLDINGS", 412_000, 21_815_400.0)
    baba = _row(frame, "09988")
    assert (baba["name"], baba["short_shares"], baba["short_value"]) == (
        "BABA-W",
        14_109_500,
        2_166_513_725.0,
    )


def test_percent_marked_counters_are_non_hkd_and_linked() -> None:
    frame = parse(_read("ASHTMAIN.HTM"))
    rmb = _row(frame, "80016")
    assert (rmb["name"], rmb["currency"], bool(rmb["non_hkd"]), rmb["hkd_code"]) == (
        "SHK PPT-R",
        "RMB",
        True,
        "00016",
    )
    assert (rmb["short_shares"], rmb["short_value"]) == (2_000, 174_400.0)
    usd = _row(frame, "09008")
    assert (usd["name"], usd["currency"], bool(usd["non_hkd"]), usd["hkd_code"]) == (
        "BOS HSK BTC-U",
        "USD",
        True,
        "03008",
    )
    assert (usd["short_shares"], usd["short_value"]) == (1_200, 1_524.0)
    hkd = frame[~frame["code"].isin(["80016", "09008"])]
    assert not hkd["non_hkd"].any()
    assert hkd["hkd_code"].isna().all()
    assert (hkd["currency"] == "HKD").all()


def test_percent_row_without_suffix_has_unknown_currency() -> None:
    # Neither the code (not 8xxxx) nor the name (no -R/-U) says non-HKD here: only the % mark does.
    data = _read("ASHTMAIN.HTM").replace(b"% 9008  BOS HSK BTC-U", b"% 9008  BOS HSK BTC U")
    row = _row(parse(data), "09008")
    assert pd.isna(row["currency"])
    assert bool(row["non_hkd"])
    assert pd.isna(row["hkd_code"])


def test_morning_page() -> None:
    frame = parse(_read("MSHTMAIN.HTM"))
    assert _dtypes(frame) == SCHEMA
    assert frame["code"].tolist() == ["00005", "00700", "01810", "09988", "80016"]
    assert set(frame["session"]) == {"morning"}
    assert _row(frame, "09988")["short_value"] == 1_060_855_220.0
    # The HKD counter 00016 is not on this page, so the RMB counter cannot be linked.
    rmb = _row(frame, "80016")
    assert bool(rmb["non_hkd"])
    assert pd.isna(rmb["hkd_code"])


def test_gem_page() -> None:
    frame = parse(_read("ASHTGEM.HTM"))
    assert _dtypes(frame) == SCHEMA
    assert frame["code"].tolist() == ["08030", "08083", "08137"]
    assert set(frame["board"]) == {"gem"}
    assert set(frame["session"]) == {"close"}
    fengyinhe = _row(frame, "08030")
    assert (fengyinhe["name"], fengyinhe["short_shares"], fengyinhe["short_value"]) == (
        "FENGYINHE",
        2_000,
        12_980.0,
    )
    # 8xxx GEM codes are HKD stocks, not 8xxxx RMB counters.
    assert not frame["non_hkd"].any()


def test_html_entities_in_names_are_decoded() -> None:
    data = _read("ASHTMAIN.HTM").replace(b"CKH HOLDINGS", b"CKH &amp; CO")
    assert _row(parse(data), "00001")["name"] == "CKH & CO"


def test_empty_board_is_valid_and_market_row_is_zero() -> None:
    data = _read("MSHTGEM_empty_2017.HTM")
    frame = parse(data)
    assert frame.empty
    assert _dtypes(frame) == SCHEMA
    assert frame.attrs["file_date"] == date(2017, 6, 26)
    market = parse_market(data)
    assert _dtypes(market) == MARKET_SCHEMA
    assert market.to_dict("records") == [
        {
            "date": pd.Timestamp("2017-06-26"),
            "board": "gem",
            "session": "morning",
            "stocks_shorted": 0,
            "short_shares": 0,
            "short_value": 0.0,
            "market_turnover": 0.0,
            "short_pct": 0.0,
        }
    ]


# --- market summary -------------------------------------------------------------------------------------


def test_market_row_uses_block_c() -> None:
    market = parse_market(_read("ASHTMAIN.HTM"))
    assert _dtypes(market) == MARKET_SCHEMA
    assert market.attrs["file_date"] == date(2025, 11, 20)
    # The constructed page's totals are the sums of its own 15 rows (see the fixtures README).
    assert market.to_dict("records") == [
        {
            "date": pd.Timestamp("2025-11-20"),
            "board": "main",
            "session": "close",
            "stocks_shorted": 15,
            "short_shares": 88_040_500,
            "short_value": 6_993_462_463.0,
            "market_turnover": 38_899_184_311.0,
            "short_pct": 17.98,
        }
    ]


def test_market_morning_integer_percent_and_unspaced_hkd() -> None:
    market = parse_market(_read("MSHTMAIN.HTM"))
    row = market.iloc[0]
    assert (row["board"], row["session"], row["stocks_shorted"]) == ("main", "morning", 5)
    assert row["short_value"] == 2_534_024_152.0
    assert row["market_turnover"] == 17_468_239_570.0  # printed "HKD17,468,239,570"
    assert row["short_pct"] == 15.0  # printed "15%"


def test_market_gem_decimal_percent() -> None:
    row = parse_market(_read("ASHTGEM.HTM")).iloc[0]
    assert (row["board"], row["session"], row["stocks_shorted"]) == ("gem", "close", 3)
    assert (row["short_shares"], row["short_value"], row["short_pct"]) == (1_278_000, 140_004.0, 12.5)


def test_market_falls_back_to_block_a() -> None:
    text = _read("ASHTMAIN.HTM").decode("latin-1")
    start = text.index("(C) Short Selling")
    end = text.index("*Total No. of non-Designated")
    market = parse_market((text[:start] + text[end:]).encode("latin-1"))
    row = market.iloc[0]
    # (A) excludes the ETP rows 2800, 3008 and %9008.
    assert (row["short_shares"], row["short_value"], row["short_pct"]) == (84_432_700, 6_900_058_890.0, 17.74)
    # The rows include ETPs, so (A) is no total of theirs: only the count is checked.
    assert market.attrs["reconciled"] == {"stocks_shorted": (15, 15)}


def test_market_older_unlabeled_summary() -> None:
    text = _read("ASHTMAIN.HTM").decode("latin-1")
    start = text.index("Total No. of all Securities")
    end = text.index("</font></pre>")
    old_summary = "\r\n".join(
        [
            "Total No. of Securities recording Short Selling                :    15",
            "Total No. of Designated Securities recording Short Selling     :    15",
            "Short Selling Turnover Total Shares (SH)                  :         88,040,500",
            "Short Selling Turnover Total Value ($)                    : HKD  6,993,462,463",
            "Total market turnover                                     : HKD 40,000,000,000",
            "Short Selling as % total turnover                         :   17.48%",
            "",
        ]
    )
    data = (text[:start] + old_summary + text[end:]).encode("latin-1")
    market = parse_market(data)
    row = market.iloc[0]
    assert row["stocks_shorted"] == 15
    assert row["short_shares"] == 88_040_500
    assert row["short_value"] == 6_993_462_463.0
    assert row["market_turnover"] == 40_000_000_000.0
    assert row["short_pct"] == 17.48
    assert len(parse(data)) == 15
    assert market.attrs["layout"] == "ncms-2017"
    assert set(market.attrs["reconciled"]) == {"stocks_shorted", "short_shares", "short_value"}


def test_non_designated_block_does_not_fill_designated_totals() -> None:
    text = _read("ASHTMAIN.HTM").decode("latin-1")
    text = text.replace(
        "    Short Selling Turnover Total Shares (SH)                  :         88,040,500\r\n", ""
    )
    text = text.replace(
        ":                  0\r\n", ":             12,000\r\n"
    )  # the non-Designated shares line
    market = parse_market(text.encode("latin-1"))
    row = market.iloc[0]
    assert pd.isna(row["short_shares"])
    assert row["short_value"] == 6_993_462_463.0
    assert "short_shares" not in market.attrs["reconciled"]  # (C) prints no shares: nothing to check against


def test_summary_with_count_but_no_totals_is_malformed() -> None:
    text = _read("ASHTMAIN.HTM").decode("latin-1")
    start = text.index("(A) Short Selling")
    end = text.index("</font></pre>")
    with pytest.raises(MalformedFile, match="no totals"):
        parse_market((text[:start] + text[end:]).encode("latin-1"))


def test_source_parse_all_yields_both_tables() -> None:
    tables = hkex_short.SOURCE.parse_all(_read("ASHTGEM.HTM"))
    assert list(tables) == ["main", "market"]
    assert len(tables["main"]) == 3
    assert len(tables["market"]) == 1
    assert not math.isnan(tables["market"]["short_pct"].iloc[0])


# --- not published / broken ---------------------------------------------------------------------------


@pytest.mark.parametrize("parser", [parse, parse_market])
def test_placeholder_is_not_published(parser) -> None:
    with pytest.raises(NotPublishedYet):
        parser(_read("ASHTMAIN_placeholder.HTM"))


def test_dated_page_mentioning_the_placeholder_phrase_is_data() -> None:
    data = _read("ASHTGEM.HTM").replace(
        b"</font></pre>", b"Next report will be available after 12:30.\n</font></pre>"
    )
    assert len(parse(data)) == 3


@pytest.mark.parametrize("parser", [parse, parse_market])
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("ASHTMAIN_truncated.HTM", "Total No"),
        ("ASHTMAIN_404.HTM", "error page"),
        ("ASHTMAIN_nodate.HTM", "TRADING DATE"),
    ],
)
def test_broken_fixtures_are_malformed(parser, name: str, message: str) -> None:
    with pytest.raises(MalformedFile, match=message):
        parser(_read(name))


@pytest.mark.parametrize("parser", [parse, parse_market])
@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"   \r\n",
        b"<html><body><h1>Service Unavailable</h1></body></html>",
        b"<html><body><pre>Some other report\nTRADING DATE : 20 NOV 2025</pre></body></html>",
    ],
    ids=["empty", "blank", "503-page", "no-title"],
)
def test_structureless_input_is_malformed(parser, data: bytes) -> None:
    with pytest.raises(MalformedFile):
        parser(data)


def test_garbled_row_is_malformed_with_its_line_number() -> None:
    data = _read("ASHTMAIN.HTM").replace(b"2,127,698,680", b"2,127,698 680 X")
    lines = _read("ASHTMAIN.HTM").decode("latin-1").split("\r\n")
    number = next(i for i, line in enumerate(lines, start=1) if "2,127,698,680" in line)
    assert number == 16
    for parser in (parse, parse_market):
        with pytest.raises(
            MalformedFile, match="garbled stock row at line 16: '700 TENCENT 3,477,200 2,127,698 680 X'"
        ):
            parser(data)


def test_line_numbers_count_lines_inside_tags() -> None:
    # A tag broken over two lines still counts as two lines of the file.
    data = _read("ASHTMAIN.HTM").replace(
        b'<font size="2" face="Courier New">', b'<font size="2"\r\nface="Courier New">'
    )
    data = data.replace(b"2,127,698,680", b"2,127,698 680 X")
    with pytest.raises(MalformedFile, match="at line 17:"):
        parse(data)


# --- markers and reconciliation -------------------------------------------------------------------------

RECONCILED_MAIN = {
    "stocks_shorted": (15, 15),
    "short_shares": (88_040_500, 88_040_500),
    # HKD rows only: the HKD total adds %80016's RMB 174,400 (HK$191,648 at 0.91) and % 9008's US$1,524
    # (HK$11,857 at 7.78).
    "short_value": (6_993_258_958, 6_993_462_463),
}


def test_reconciled_totals_of_the_pages() -> None:
    for parser in (parse, parse_market):
        main = parser(_read("ASHTMAIN.HTM"))
        assert main.attrs["layout"] == "ncms-2026"
        assert main.attrs["reconciled"] == RECONCILED_MAIN
        assert parser(_read("ASHTGEM.HTM")).attrs["reconciled"] == {
            "stocks_shorted": (3, 3),
            "short_shares": (1_278_000, 1_278_000),
            "short_value": (140_004, 140_004),
        }
        assert parser(_read("MSHTMAIN.HTM")).attrs["reconciled"]["short_value"] == (
            2_533_976_130,
            2_534_024_152,
        )
        empty = parser(_read("MSHTGEM_empty_2017.HTM"))
        assert empty.attrs["layout"] == "ncms-2017"
        assert empty.attrs["reconciled"] == {
            "stocks_shorted": (0, 0)
        }  # the page prints no share/value totals


def test_hand_check_of_the_main_page_totals() -> None:
    frame = parse(_read("ASHTMAIN.HTM"))
    assert len(frame) == 15
    assert frame["short_shares"].sum() == 88_040_500
    assert frame.loc[frame["currency"] == "HKD", "short_value"].sum() == 6_993_258_958
    assert 6_993_258_958 + round(174_400 / 0.91) + round(1_524 * 7.78) == 6_993_462_463


@pytest.mark.parametrize("marker", ["*", "#", "^", "@", "!", "~", "$"])
@pytest.mark.parametrize("gap", ["", " ", "  "])
def test_any_non_word_marker_before_a_code(marker: str, gap: str) -> None:
    row = f"{marker}{gap}700  TENCENT                3,477,200  2,127,698,680".rjust(56).encode()
    data = _read("ASHTMAIN.HTM").replace(b"        700  TENCENT                3,477,200  2,127,698,680", row)
    frame = parse(data)
    tencent = _row(frame, "00700")
    assert (tencent["name"], tencent["currency"], bool(tencent["non_hkd"])) == ("TENCENT", "HKD", False)
    assert tencent["short_value"] == 2_127_698_680.0
    assert frame.attrs["reconciled"] == RECONCILED_MAIN


def test_two_markers_are_not_a_row() -> None:
    data = _read("ASHTMAIN.HTM").replace(b"        700  TENCENT", b"      *#700  TENCENT")
    with pytest.raises(MalformedFile):
        parse(data)


@pytest.mark.parametrize(
    ("before", "after", "message"),
    [
        (b":    15\r\n", b":    16\r\n", "rows add up to 15 but the file's total says 16 (stocks_shorted:"),
        (
            b":         88,040,500",
            b":         89,040,500",
            "rows add up to 88,040,500 but the file's total says 89,040,500 (short_shares:",
        ),
        (
            b"HKD  6,993,462,463",
            b"HKD  7,093,462,463",
            "rows add up to 6,993,258,958 but the file's total says 7,093,462,463 (short_value:",
        ),
    ],
    ids=["count", "shares", "value"],
)
def test_rows_that_do_not_add_up_are_malformed(before: bytes, after: bytes, message: str) -> None:
    assert _read("ASHTMAIN.HTM").count(before) == 1
    data = _read("ASHTMAIN.HTM").replace(before, after)
    for parser in (parse, parse_market):
        with pytest.raises(MalformedFile) as caught:
            parser(data)
        assert message in str(caught.value)
        assert caught.value.layout == "ncms-2026"


def test_a_missing_row_is_malformed() -> None:
    data = _read("ASHTMAIN.HTM").replace(
        b"        939  CCB                   28,614,000    218,038,680\r\n", b""
    )
    with pytest.raises(MalformedFile, match="rows add up to 14 but the file's total says 15"):
        parse(data)


def test_rows_within_half_a_percent_are_accepted() -> None:
    data = _read("ASHTMAIN.HTM").replace(b"HKD  6,993,462,463", b"HKD  7,020,000,000")  # +0.38% over the rows
    assert parse(data).attrs["reconciled"]["short_value"] == (6_993_258_958, 7_020_000_000)
    with pytest.raises(MalformedFile, match="short_value"):
        parse(data.replace(b"HKD  7,020,000,000", b"HKD  7,030,000,000"))  # +0.53%


def test_counts_are_held_to_half_a_percent_too() -> None:
    # 15 rows: 0.5% of 15 is less than one row, so the count must be exact; of 840 it is 4 rows.
    rows = [f"{code:>11}  {'STOCK ' + str(code):<16}{1000:>16,}{10_000:>15,}" for code in range(4000, 4825)]
    text = _read("ASHTMAIN.HTM").decode("latin-1")
    at = text.index("Total No. of all Securities")
    text = text[:at] + "\r\n".join(rows) + "\r\n" + text[at:]
    text = text.replace(":    15\r\n", ":   844\r\n")  # 840 rows printed as 844: within 0.5%
    text = text.replace(":         88,040,500", f":{88_040_500 + 825_000:>19,}")
    text = text.replace("HKD  6,993,462,463", f"HKD {6_993_462_463 + 8_250_000:>14,}")
    assert parse(text.encode("latin-1")).attrs["reconciled"]["stocks_shorted"] == (840, 844)
    with pytest.raises(MalformedFile, match="rows add up to 840 but the file's total says 845"):
        parse(text.replace(":   844\r\n", ":   845\r\n").encode("latin-1"))


def test_non_designated_totals_are_added_to_the_designated_ones() -> None:
    text = _read("ASHTMAIN.HTM").decode("latin-1")
    at = text.index("Total No. of all Securities")
    text = text[:at] + "       9999  NON DESIG STOCK            12,000        250,000\r\n" + text[at:]
    text = text.replace(":    15\r\n", ":    16\r\n")
    text = text.replace("Short Selling            :     0", "Short Selling            :     1")
    text = text.replace(":                  0\r\n", ":             12,000\r\n")
    text = text.replace(": HKD              0\r\n", ": HKD        250,000\r\n")
    reconciled = parse(text.encode("latin-1")).attrs["reconciled"]
    assert reconciled["stocks_shorted"] == (16, 16)
    assert reconciled["short_shares"] == (88_052_500, 88_052_500)
    assert reconciled["short_value"] == (6_993_508_958, 6_993_712_463)


def test_bad_month_is_malformed() -> None:
    data = _read("ASHTGEM.HTM").replace(b"20 NOV 2025", b"20 NUV 2025")
    with pytest.raises(MalformedFile, match="not a date"):
        parse(data)


# --- hkex-short-midday: the same parsers on the pages up to the morning close ---------------------------------


def test_midday_source_reads_the_morning_pages_like_hkex_short() -> None:
    midday = hkex_short.MIDDAY_SOURCE
    assert midday.paths(date(2025, 11, 20)) == [
        hkex_short.PATH_PREFIX + "MSHTMAIN.HTM",
        hkex_short.PATH_PREFIX + "MSHTGEM.HTM",
    ]
    assert hkex_short.SOURCE.paths(date(2025, 11, 20)) == [
        hkex_short.PATH_PREFIX + "ASHTMAIN.HTM",
        hkex_short.PATH_PREFIX + "ASHTGEM.HTM",
    ]
    assert not midday.history and not midday.dated_url
    for name in ("MSHTMAIN.HTM", "MSHTGEM_empty_2017.HTM"):
        tables = midday.parse_all(_read(name))
        pd.testing.assert_frame_equal(tables["main"], parse(_read(name)))
        pd.testing.assert_frame_equal(tables["market"], parse_market(_read(name)))
        assert set(tables["market"]["session"]) == {"morning"}


@pytest.mark.parametrize("table", ["main", "market"])
@pytest.mark.parametrize("name", ["ASHTMAIN.HTM", "ASHTGEM.HTM"])
def test_midday_source_refuses_a_day_close_page(table: str, name: str) -> None:
    with pytest.raises(MalformedFile, match="day-close report"):
        hkex_short.MIDDAY_SOURCE.tables[table].parse(_read(name))


def test_midday_placeholder_is_not_published() -> None:
    data = _read("ASHTMAIN_placeholder.HTM").replace(b"day close", b"morning close")
    assert b"morning close" in data
    with pytest.raises(NotPublishedYet):
        hkex_short.MIDDAY_SOURCE.parse_all(data)
