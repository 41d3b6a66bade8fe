"""Tests for the HKEX daily Share Repurchase Report (SRRPT .xls) parser (data-formats.md §4a)."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import xlwt

from alerts.errors import MalformedFile
from alerts.sources.hkex_buybacks import SCHEMA, _parse_rows, _rows_from_xls, parse
from tests.support.paths import FIXTURES as _FIXTURES

FIXTURES = _FIXTURES / "hkex-buybacks"
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
    ("column", "text", "message"),
    [
        (8, "Method", "header row 3 has an unknown column 'Method'"),  # renamed
        (
            6,
            "Total paid\n($)",
            r"header row 3 has a repeated column 'Total paid \(\$\)'",
        ),  # two of one meaning
        (8, "", r"header row 3 lacks column\(s\) method"),  # a column the alert needs dropped
    ],
)
def test_changed_header(rows_0313: list[list[str]], column: int, text: str, message: str) -> None:
    rows_0313[2][column] = text
    with pytest.raises(MalformedFile, match=message) as caught:
        _parse_rows(rows_0313)
    # The evidence for the admins' notice: the headers known today and the ones the file has.
    assert caught.value.expected is not None
    assert caught.value.expected[4] == "Number of shares/units repurchased"
    assert caught.value.found is not None
    assert "Company" in caught.value.found


def test_extra_header_column(rows_0313: list[list[str]]) -> None:
    rows_0313[2] = [*rows_0313[2], "Remarks"]
    with pytest.raises(MalformedFile, match="header row 3 has an unknown column 'Remarks'") as caught:
        _parse_rows(rows_0313)
    assert caught.value.found is not None
    assert caught.value.found[-1] == "Remarks"


def test_header_order_does_not_matter(rows_0313: list[list[str]]) -> None:
    # Columns are recognised by meaning: swapping two columns in the header and in every row changes nothing.
    before = _parse_rows([list(row) for row in rows_0313])
    for row in rows_0313:
        if len(row) > 10:
            row[9], row[10] = row[10], row[9]
    after = _parse_rows(rows_0313)
    pd.testing.assert_frame_equal(before, after)


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
    with pytest.raises(MalformedFile, match="sheet row 7: data outside the header's columns"):
        _parse_rows(rows_0313)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (1, "HSBC", "not a stock code"),
        (2, "", "blank security type"),
        (3, "09/03/2017", "not yyyy/mm/dd"),
        (3, "2017/02/30", "impossible trading date"),
        (3, "2017/03/14", "after the printed date"),
        (4, "", "missing number of shares repurchased"),
        (4, "2,854,161.5", "not a whole number"),
        (5, "-", "missing highest price"),
        (5, "HKD 6x.19", "not a price"),
        (6, "HKD 64.00", "lowest price .* above highest"),
        (7, "-", "missing total paid"),
        (8, "", "method of repurchase"),
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


# --- the current 14-column report: the real cells of SRRPT20260909.xls -----------------------------------------


def real_grid_2026() -> list[list[str]]:
    """The real report's 131 × 14 text cells (fixture README: provenance)."""
    doc = json.loads((FIXTURES / "next-day-disclosure-00700-20260909.json").read_text(encoding="utf-8"))
    return [list(row) for row in doc["documents"][0]["grid"]]


def grid_xls(grid: list[list[str]]) -> bytes:
    """A BIFF8 .xls of `grid`, every cell a text cell, sheet SBNReport (how HKEX writes the report)."""
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("SBNReport")
    for r, row in enumerate(grid):
        for c, text in enumerate(row):
            if text:
                sheet.write(r, c, text)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def report_2026() -> pd.DataFrame:
    return parse(grid_xls(real_grid_2026()))


def rows_of(frame: pd.DataFrame, code: str) -> pd.DataFrame:
    return frame[frame["code"] == code].reset_index(drop=True)


def test_2026_report_reads_every_repurchase_and_reconciles(report_2026: pd.DataFrame) -> None:
    # 113 repurchase rows; the notes, the "*" footnote, the end marker and the disclaimer are not rows.
    assert len(report_2026) == 113
    assert report_2026.attrs["layout"] == "srrpt-2026"
    assert report_2026.attrs["file_date"] == date(2026, 9, 9)
    rows_sum, printed = report_2026.attrs["reconciled"]["shares"]
    assert rows_sum == printed == float(report_2026["shares"].sum())
    assert list(report_2026.columns) == list(SCHEMA)
    assert not report_2026["name"].str.startswith(("Note", "*", "Whilst")).any()


def test_2026_xiaomi_true_figures(report_2026: pd.DataFrame) -> None:
    got = rows_of(report_2026, "01810")
    assert len(got) == 1
    check_row(
        got.iloc[0],
        {
            "name": "XIAOMI-W",
            "sec_type": "WVR ORD",
            "trade_date": pd.Timestamp("2026-09-08"),
            "report_date": pd.Timestamp("2026-09-09"),
            "shares": 3_038_600,
            "price_high": 27.10,
            "price_low": 26.72,
            "currency": "HKD",
            "total_paid": 82_016_848.00,
            "method": "Exchange",
            "group_shares": 3_038_600,
            "for_cancellation": 3_038_600,
            "for_treasury": 0,
            "mandate_total": 112_793_200,
            "mandate_pct": 0.44,
            "ytd_shares": 112_793_200,
            "pct_of_issued": 0.44,
        },
    )
    assert pd.isna(got.iloc[0]["note"])


def test_2026_hsbc_three_rows_two_currencies(report_2026: pd.DataFrame) -> None:
    got = rows_of(report_2026, "00005")
    assert list(got["trade_date"]) == [pd.Timestamp("2026-09-07")] * 3
    assert list(got["currency"]) == ["GBP", "GBP", "HKD"]
    assert list(got["shares"]) == [6_932, 3_068, 359_200]
    assert list(got["method"]) == ["London Stock Exchange", "CBOE Europe – CXE", "Exchange"]
    assert list(got["total_paid"]) == [109_382.30, 48_425.37, 60_065_244.40]
    # The GBP aggregates are printed on the second row only and carried to the first; HKD is its own group.
    assert list(got["group_shares"]) == [10_000, 10_000, 359_200]
    assert list(got["for_cancellation"]) == [10_000, 10_000, 359_200]
    assert list(got["for_treasury"]) == [0, 0, 0]
    # "Note 1 & 2" in the mandate column is a note, never a number.
    assert list(got["note"]) == ["Note 1 & 2"] * 3
    assert got["mandate_total"].isna().all()
    assert got["mandate_pct"].isna().all()


def test_2026_treasury_blank_lowest_price_and_other_markets(report_2026: pd.DataFrame) -> None:
    abbisko = rows_of(report_2026, "02256").iloc[0]
    assert (abbisko["for_cancellation"], abbisko["for_treasury"], abbisko["price_low"]) == (0, 30_000, 8.635)
    asia_allied = rows_of(report_2026, "00711").iloc[0]  # single price: the lowest price cell is blank
    assert (asia_allied["price_high"], asia_allied["price_low"]) == (0.43, 0.43)
    glms = rows_of(report_2026, "01456").iloc[0]  # an A-share repurchase in Shanghai, in RMB
    check_row(
        glms,
        {
            "sec_type": "A SHARES",
            "currency": "RMB",
            "method": "Shanghai Stock Exchange",
            "shares": 1_100_000,
            "total_paid": 9_729_323.00,
            "for_treasury": 1_100_000,
        },
    )
    assert pd.isna(glms["mandate_total"])
    jingcheng = rows_of(report_2026, "00187").iloc[0]
    assert (jingcheng["method"], jingcheng["price_high"], jingcheng["price_low"]) == (
        "By private arrangement",
        7.7212,
        7.33,
    )
    haitian = rows_of(report_2026, "03288")  # one company, an A-share row and an H-share row the same day
    assert list(haitian["sec_type"]) == ["A SHARES", "H SHARES"]
    assert list(haitian["group_shares"]) == [858_364, 261_100]
    stanchart = rows_of(report_2026, "02888")
    assert list(stanchart["group_shares"]) == [361_762] * 3 == [int(stanchart["shares"].sum())] * 3
    pru = rows_of(report_2026, "02378")  # two rows, each with its own aggregates: two groups, not one
    assert list(pru["mandate_total"]) == [118_891_779, 1_093_045]
    assert set(report_2026["sec_type"]) == {"ORD", "WVR ORD", "H SHARES", "A SHARES", "REIT"}
    assert set(report_2026["currency"]) == {"HKD", "RMB", "GBP"}


def test_2026_group_that_does_not_add_up_is_malformed_with_both_figures() -> None:
    grid = real_grid_2026()
    at = next(i for i, row in enumerate(grid) if row[0] == "HSBC HOLDINGS")
    grid[at][4] = "6,933"  # one share more than the group's printed total allows
    with pytest.raises(MalformedFile, match=r"rows add up to 10,001 shares but the total printed is 10,000"):
        _parse_rows(grid)


def test_2026_cancellation_plus_treasury_must_be_the_total() -> None:
    grid = real_grid_2026()
    at = next(i for i, row in enumerate(grid) if row[0] == "XIAOMI-W")
    grid[at][11] = "100"
    with pytest.raises(
        MalformedFile, match="cancellation 3,038,600 \\+ treasury 100 is not the total 3,038,600"
    ):
        _parse_rows(grid)


def test_2026_group_without_its_aggregates_row_is_malformed() -> None:
    grid = real_grid_2026()
    at = next(i for i, row in enumerate(grid) if row[0] == "STANCHART" and row[8] == "CBOE CXE")
    grid[at][9:14] = ["", "", "", "", ""]
    with pytest.raises(
        MalformedFile, match="starred aggregates are blank but the next row is another company"
    ):
        _parse_rows(grid)


def test_2026_unknown_header_is_named() -> None:
    grid = real_grid_2026()
    grid[4][11] = "Number of\nshares/units\nrepurchased\nfor\nholding in escrow*"
    with pytest.raises(
        MalformedFile, match="unknown column 'Number of shares/units repurchased for holding in escrow\\*'"
    ) as caught:
        _parse_rows(grid)
    assert caught.value.layout == "srrpt-2026"


def test_2017_files_leave_the_new_columns_empty(frames: dict[str, pd.DataFrame]) -> None:
    for frame in frames.values():
        assert frame.attrs["layout"] == "srrpt-2017"
        for column in (
            "group_shares",
            "for_cancellation",
            "for_treasury",
            "mandate_total",
            "mandate_pct",
            "note",
        ):
            assert frame[column].isna().all(), column


def test_cli_parses_todays_report(tmp_path: Path) -> None:
    # What a new user tries first: `positioning-bot parse hkex-buybacks SRRPT20260909.xls` (a real process).
    from tests.support.cli import run_cli

    report = tmp_path / "SRRPT20260909.xls"
    report.write_bytes(grid_xls(real_grid_2026()))
    done = run_cli("parse", "hkex-buybacks", str(report), "--format", "csv")
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(io.StringIO(done.stdout), dtype={"code": str})
    assert len(frame) == 113
    xiaomi = frame[frame["code"] == "01810"].iloc[0]
    assert (xiaomi["shares"], xiaomi["for_cancellation"], xiaomi["total_paid"]) == (
        3038600,
        3038600,
        82016848.0,
    )
    grid = real_grid_2026()
    grid[4][10] = "Number of\nshares/units\nrepurchased\nfor\nescrow*"
    report.write_bytes(grid_xls(grid))
    done = run_cli("parse", "hkex-buybacks", str(report))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "unknown column 'Number of shares/units repurchased for escrow*'" in done.stderr
