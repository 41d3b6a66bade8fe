"""Tests for the HKEX daily Share Repurchase Report (SRRPT .xls) parser (data-formats.md §4a)."""

from __future__ import annotations

import io
import zipfile
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from alerts.errors import MalformedFile
from alerts.sources.hkex_buybacks import SCHEMA, _parse_rows, _rows_from_xls, parse

FIXTURES = Path(__file__).parent / "fixtures" / "hkex-buybacks"
DAYS = ("20170313", "20170314", "20170315", "20170316")
END = "*** End Of Report ***"


def real_bytes(day: str) -> bytes:
    return (FIXTURES / f"SRRPT{day}.xls").read_bytes()


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return {day: parse(real_bytes(day)) for day in DAYS}


@pytest.fixture
def rows_0313() -> list[list[str]]:
    return _rows_from_xls(real_bytes("20170313"))


def only(frame: pd.DataFrame, code: str) -> pd.Series:
    hits = frame[frame["code"] == code]
    assert len(hits) == 1, code
    return hits.iloc[0]


def check_row(got: pd.Series, expected: dict[str, object]) -> None:
    assert {key: got[key] for key in expected} == expected


# --- the four real files ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "count"), [("20170313", 3), ("20170314", 1), ("20170315", 1), ("20170316", 2)]
)
def test_row_counts_and_file_date(frames: dict[str, pd.DataFrame], day: str, count: int) -> None:
    frame = frames[day]
    printed = date(int(day[:4]), int(day[4:6]), int(day[6:]))
    assert len(frame) == count
    assert frame.attrs["file_date"] == printed
    assert type(frame.attrs["file_date"]) is date
    assert (frame["report_date"] == pd.Timestamp(printed)).all()


@pytest.mark.parametrize("day", DAYS)
def test_dtypes(frames: dict[str, pd.DataFrame], day: str) -> None:
    frame = frames[day]
    assert list(frame.columns) == list(SCHEMA)
    assert {col: str(dtype) for col, dtype in frame.dtypes.items()} == SCHEMA


@pytest.mark.parametrize("day", DAYS)
def test_trades_are_of_previous_sessions(frames: dict[str, pd.DataFrame], day: str) -> None:
    frame = frames[day]
    assert (frame["trade_date"] < frame["report_date"]).all()


def test_20170313_rows(frames: dict[str, pd.DataFrame]) -> None:
    frame = frames["20170313"]
    assert frame["code"].tolist() == ["00182", "00005", "00315"]
    # Single price: lowest price printed as '-', so price_low = price_high.
    check_row(
        only(frame, "00182"),
        {
            "name": "CONCORD NE",
            "sec_type": "ORD",
            "trade_date": pd.Timestamp("2017-03-10"),
            "shares": 370000,
            "price_high": 0.42,
            "price_low": 0.42,
            "currency": "HKD",
            "total_paid": 155400.0,
            "method": "Exchange",
            "ytd_shares": 29700000,
            "pct_of_issued": 0.34,
        },
    )
    # Overseas purchase, two sessions before the printed date.
    check_row(
        only(frame, "00005"),
        {
            "name": "HSBC HOLDINGS",
            "trade_date": pd.Timestamp("2017-03-09"),
            "shares": 2854161,
            "price_high": 63.19,
            "price_low": 62.67,
            "currency": "HKD",
            "total_paid": 179659810.0,
            "method": "London Stock Exchange",
            "ytd_shares": 366244237,
            "pct_of_issued": 1.86,
        },
    )
    check_row(
        only(frame, "00315"),
        {
            "name": "SMARTONE TELE",
            "shares": 443500,
            "price_high": 10.0,
            "price_low": 10.0,
            "total_paid": 4435000.0,
            "ytd_shares": 3276000,
            "pct_of_issued": 0.3,
        },
    )


def test_20170314_and_15_rows(frames: dict[str, pd.DataFrame]) -> None:
    check_row(
        only(frames["20170314"], "00005"),
        {
            "trade_date": pd.Timestamp("2017-03-10"),
            "shares": 3650000,
            "price_high": 63.25,
            "price_low": 62.76,
            "total_paid": 229980949.0,
            "ytd_shares": 369894237,
            "pct_of_issued": 1.88,
        },
    )
    check_row(
        only(frames["20170315"], "00005"),
        {
            "trade_date": pd.Timestamp("2017-03-13"),
            "shares": 3550000,
            "price_high": 64.29,
            "price_low": 63.66,
            "total_paid": 226624770.0,
            "ytd_shares": 373444237,
            "pct_of_issued": 1.89,
        },
    )


def test_20170316_rows(frames: dict[str, pd.DataFrame]) -> None:
    frame = frames["20170316"]
    assert frame["code"].tolist() == ["00699", "00005"]
    check_row(
        only(frame, "00699"),
        {
            "name": "CAR INC",
            "trade_date": pd.Timestamp("2017-03-15"),
            "shares": 4071000,
            "price_high": 7.26,
            "price_low": 7.06,
            "currency": "HKD",
            "total_paid": 29281888.8,
            "method": "Exchange",
            "ytd_shares": 70136000,
            "pct_of_issued": 2.93,
        },
    )
    check_row(
        only(frame, "00005"),
        {"trade_date": pd.Timestamp("2017-03-14"), "shares": 3510000, "ytd_shares": 376954237},
    )


def test_hsbc_year_to_date_adds_up(frames: dict[str, pd.DataFrame]) -> None:
    hsbc = [only(frames[day], "00005") for day in DAYS]
    for before, after in zip(hsbc, hsbc[1:], strict=False):
        assert after["ytd_shares"] == before["ytd_shares"] + after["shares"]


def test_rows_from_xls_reads_the_sheet_as_text(rows_0313: list[list[str]]) -> None:
    assert len(rows_0313) == 15
    assert rows_0313[1][0] == "Date Printed : 13/03/2017"
    assert rows_0313[2][1] == "Stock\ncode"
    assert rows_0313[5] == [
        "CONCORD NE", "182", "ORD", "2017/03/10", "370,000", "HKD 0.42", "-", "HKD 155,400.00",
        "Exchange", "29,700,000", "0.34",
    ]  # fmt: skip
    assert rows_0313[12][4] == END


# --- edited row lists (no .xls writer is installed) ---------------------------------------------------------


def test_parse_rows_matches_parse(rows_0313: list[list[str]], frames: dict[str, pd.DataFrame]) -> None:
    pd.testing.assert_frame_equal(_parse_rows(rows_0313), frames["20170313"])


def test_empty_report_is_a_valid_empty_frame(rows_0313: list[list[str]]) -> None:
    empty = rows_0313[:5] + rows_0313[8:]  # drop the three data rows, keep header, blanks, end marker
    frame = _parse_rows(empty)
    assert len(frame) == 0
    assert {col: str(dtype) for col, dtype in frame.dtypes.items()} == SCHEMA
    assert frame.attrs["file_date"] == date(2017, 3, 13)


def test_header_whitespace_is_normalized(rows_0313: list[list[str]], frames: dict[str, pd.DataFrame]) -> None:
    rows_0313[2] = [" ".join(cell.split()).upper() for cell in rows_0313[2]]
    pd.testing.assert_frame_equal(_parse_rows(rows_0313), frames["20170313"])


def test_short_hand_built_rows_are_padded(rows_0313: list[list[str]]) -> None:
    rows_0313[8:12] = [[], [""], [], []]
    assert len(_parse_rows(rows_0313)) == 3


def test_missing_end_marker(rows_0313: list[list[str]]) -> None:
    with pytest.raises(MalformedFile, match="End Of Report"):
        _parse_rows(rows_0313[:12])


def test_missing_end_marker_right_after_header(rows_0313: list[list[str]]) -> None:
    with pytest.raises(MalformedFile, match="truncated"):
        _parse_rows(rows_0313[:3])


@pytest.mark.parametrize(
    ("column", "text"),
    [
        (8, "Method"),  # renamed
        (6, "Total paid\n($)"),  # columns swapped
        (10, ""),  # dropped
    ],
)
def test_changed_header(rows_0313: list[list[str]], column: int, text: str) -> None:
    rows_0313[2][column] = text
    with pytest.raises(MalformedFile, match="header row 3 changed"):
        _parse_rows(rows_0313)


def test_extra_header_column(rows_0313: list[list[str]]) -> None:
    rows_0313[2] = [*rows_0313[2], "Remarks"]
    with pytest.raises(MalformedFile, match="header row 3 changed"):
        _parse_rows(rows_0313)


def test_no_header(rows_0313: list[list[str]]) -> None:
    rows_0313[2][0] = "Issuer"
    with pytest.raises(MalformedFile, match="no header row"):
        _parse_rows(rows_0313)


def test_no_printed_date(rows_0313: list[list[str]]) -> None:
    rows_0313[1][0] = ""
    with pytest.raises(MalformedFile, match="Date Printed"):
        _parse_rows(rows_0313)


def test_impossible_printed_date(rows_0313: list[list[str]]) -> None:
    rows_0313[1][0] = "Date Printed : 31/02/2017"
    with pytest.raises(MalformedFile, match="impossible printed date"):
        _parse_rows(rows_0313)


def test_blank_company_with_data(rows_0313: list[list[str]]) -> None:
    rows_0313[7][0] = ""
    with pytest.raises(MalformedFile, match="sheet row 8: blank company"):
        _parse_rows(rows_0313)


def test_stray_cell_beyond_the_columns(rows_0313: list[list[str]]) -> None:
    rows_0313[6] = [*rows_0313[6], "note"]
    with pytest.raises(MalformedFile, match="sheet row 7: data beyond"):
        _parse_rows(rows_0313)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (1, "HSBC", "not a stock code"),
        (2, "", "blank security type"),
        (3, "09/03/2017", "not yyyy/mm/dd"),
        (3, "2017/02/30", "impossible trading date"),
        (3, "2017/03/14", "after the printed date"),
        (4, "", "missing number of securities"),
        (4, "2,854,161.5", "not a whole number"),
        (5, "-", "missing highest price"),
        (5, "HKD 6x.19", "not a price"),
        (6, "HKD 64.00", "lowest price .* above highest"),
        (7, "-", "missing total paid"),
        (8, "", "method of purchase"),
        (9, "many", "not a number"),
        (10, "193", "outside 0..100"),
    ],
)
def test_bad_cell(rows_0313: list[list[str]], column: int, value: str, message: str) -> None:
    rows_0313[6][column] = value  # the HSBC row
    with pytest.raises(MalformedFile, match=f"sheet row 7: .*{message}"):
        _parse_rows(rows_0313)


def test_missing_ytd_and_percent_are_null(rows_0313: list[list[str]]) -> None:
    rows_0313[6][9] = "-"
    rows_0313[6][10] = ""
    got = only(_parse_rows(rows_0313), "00005")
    assert pd.isna(got["ytd_shares"])
    assert pd.isna(got["pct_of_issued"])


def test_total_currency_wins_when_currencies_differ(rows_0313: list[list[str]]) -> None:
    rows_0313[6][5] = "GBP 6.19"
    rows_0313[6][6] = "GBP 6.17"
    got = only(_parse_rows(rows_0313), "00005")
    assert got["currency"] == "HKD"
    assert (got["price_high"], got["price_low"]) == (6.19, 6.17)


def test_non_hkd_report_keeps_its_currency(rows_0313: list[list[str]]) -> None:
    rows_0313[6][5:8] = ["USD 8.10", "USD 8.01", "USD 23,040,000.00"]
    got = only(_parse_rows(rows_0313), "00005")
    assert (got["currency"], got["total_paid"]) == ("USD", 23040000.0)


# --- broken bytes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        bytes(range(256)) * 8,
        b"Date Printed : 13/03/2017\tShare Repurchase Report\n",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1000),  # OLE2 magic, garbage after it
    ],
)
def test_not_an_xls(data: bytes) -> None:
    with pytest.raises(MalformedFile, match="hkex-buybacks: (not a legacy .xls|unreadable .xls)"):
        parse(data)


def test_zip_is_not_an_xls() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(MalformedFile, match=r"not a legacy \.xls \(starts with b'PK"):
        parse(buffer.getvalue())


def test_html_error_page() -> None:
    page = b"<html><head><title>404 Not Found</title></head><body>The page cannot be found</body></html>"
    with pytest.raises(MalformedFile, match="error page"):
        parse(page)


def test_generic_html_page() -> None:
    page = b"<!DOCTYPE html><html><body><p>HKEXnews</p></body></html>"
    with pytest.raises(MalformedFile, match=r"not a legacy \.xls"):
        parse(page)


@pytest.mark.parametrize("data", [b"", b"\r\n  "])
def test_empty_bytes(data: bytes) -> None:
    with pytest.raises(MalformedFile, match="empty file"):
        parse(data)


@pytest.mark.parametrize("cut", [8, 512, 1024, 3328, 6144, 6395])
def test_truncated_real_file(cut: int) -> None:
    with pytest.raises(MalformedFile, match="unreadable .xls"):
        parse(real_bytes("20170313")[:cut])


def test_truncation_never_yields_a_wrong_frame(frames: dict[str, pd.DataFrame]) -> None:
    # Cutting only the trailing directory padding still reads the whole sheet; any other cut must raise.
    data = real_bytes("20170316")
    for cut in range(0, len(data), 37):
        try:
            got = parse(data[:cut])
        except MalformedFile:
            continue
        pd.testing.assert_frame_equal(got, frames["20170316"])
