"""Tests for the SFC weekly aggregated short positions CSV parser (data-formats.md §3)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from alerts.errors import MalformedFile
from alerts.sources.sfc_short_positions import SCHEMA, parse
from tests.support.paths import FIXTURES as _FIXTURES

FIXTURES = _FIXTURES / "sfc-short-positions"
REAL = FIXTURES / "Short_Position_Reporting_Aggregated_Data_20221202.csv"
HEADER_LINE = (
    b"Date,Stock Code,Stock Name,Aggregated Reportable Short Positions (Shares),"
    b"Aggregated Reportable Short Positions (HK$)"
)
LAST_LINE = b"02/12/2022,87001,HUI XIAN REIT,0,0\n"


@pytest.fixture(scope="module")
def real_bytes() -> bytes:
    return REAL.read_bytes()


@pytest.fixture(scope="module")
def frame(real_bytes: bytes) -> pd.DataFrame:
    return parse(real_bytes)


def row(frame: pd.DataFrame, code: str) -> pd.Series:
    hits = frame[frame["code"] == code]
    assert len(hits) == 1, code
    return hits.iloc[0]


# --- the real 2022-12-02 file -------------------------------------------------------------------------------


def test_fixture_is_the_documented_file(real_bytes: bytes) -> None:
    assert real_bytes.startswith(HEADER_LINE + b"\n")
    assert real_bytes.endswith(LAST_LINE)
    assert real_bytes.count(b"\n") == 982


def test_row_count_and_dtypes(frame: pd.DataFrame) -> None:
    assert len(frame) == 981
    assert list(frame.columns) == list(SCHEMA)
    assert {col: str(dtype) for col, dtype in frame.dtypes.items()} == SCHEMA


def test_file_date_and_date_column(frame: pd.DataFrame) -> None:
    assert frame.attrs["file_date"] == date(2022, 12, 2)
    assert type(frame.attrs["file_date"]) is date
    assert (frame["date"] == pd.Timestamp("2022-12-02")).all()


def test_codes_are_five_digit_and_unique(frame: pd.DataFrame) -> None:
    assert frame["code"].str.fullmatch(r"\d{5}").all()
    assert frame["code"].is_unique
    assert frame["code"].iloc[0] == "00001"
    assert frame["name"].iloc[0] == "CKH HOLDINGS"


@pytest.mark.parametrize(
    ("code", "name", "shares", "value"),
    [
        ("00001", "CKH HOLDINGS", 11681802, 513999288.0),
        ("00005", "HSBC HOLDINGS", 119922967, 5624387152.0),
        ("00700", "TENCENT", 45925264, 13593878144.0),
        ("01810", "XIAOMI-W", 715682061, 7242702457.0),
        ("03690", "MEITUAN-W", 79503866, 13356649488.0),
        ("09988", "BABA-SW", 86813614, 7361794467.0),
        ("83188", "CAM CSI300-R", 100600, 4360004.0),
    ],
)
def test_known_rows(frame: pd.DataFrame, code: str, name: str, shares: int, value: float) -> None:
    got = row(frame, code)
    assert got["name"] == name
    assert got["short_shares"] == shares
    assert got["short_value_hkd"] == value


def test_zero_rows_are_kept(frame: pd.DataFrame) -> None:
    zeros = frame[(frame["short_shares"] == 0) & (frame["short_value_hkd"] == 0.0)]
    assert len(zeros) == 333
    assert row(frame, "87001")["short_shares"] == 0


def test_totals(frame: pd.DataFrame) -> None:
    # Column sums computed independently (awk over the file): guards against dropped or doubled rows.
    assert int(frame["short_shares"].sum()) == 41_124_264_490
    assert frame["short_value_hkd"].sum() == 419_285_398_225.0
    assert frame["short_shares"].notna().all()
    assert frame["short_value_hkd"].notna().all()


def test_hkd_counters_are_not_flagged(frame: pd.DataFrame) -> None:
    for code in ("00700", "01810", "09988", "02800", "03188"):
        got = row(frame, code)
        assert not got["non_hkd"], code
        assert pd.isna(got["hkd_code"]), code


@pytest.mark.parametrize(
    ("code", "hkd_code"),
    [
        ("83199", "03199"),  # ICBCCSOP CGPB-R
        ("83188", "03188"),  # CAM CSI300-R
        ("82800", "02800"),  # TRACKER FUND-R
        ("09001", "03001"),  # PP CNUSDPROP-U (USD counter)
        ("09846", "02846"),  # ISHARESCSI300-U
    ],
)
def test_non_hkd_counters_link_to_hkd_counter(frame: pd.DataFrame, code: str, hkd_code: str) -> None:
    got = row(frame, code)
    assert got["non_hkd"]
    assert got["hkd_code"] == hkd_code


@pytest.mark.parametrize("code", ["87001", "83168", "09078"])
def test_non_hkd_without_a_named_hkd_counter(frame: pd.DataFrame, code: str) -> None:
    # HUI XIAN REIT / HS RMB GOLD ETF (8xxxx, no suffix), PREMIA UST A-U (no "PREMIA UST A" row).
    got = row(frame, code)
    assert got["non_hkd"]
    assert pd.isna(got["hkd_code"])


def test_non_hkd_count(frame: pd.DataFrame) -> None:
    names = frame["name"].str.strip()
    expected = names.str.endswith(("-R", "-U")) | frame["code"].str.startswith("8")
    assert int(frame["non_hkd"].sum()) == int(expected.sum()) == 93


# --- tolerated variants -------------------------------------------------------------------------------------


def test_crlf_and_bom_parse_identically(real_bytes: bytes, frame: pd.DataFrame) -> None:
    variant = b"\xef\xbb\xbf" + real_bytes.replace(b"\n", b"\r\n")
    got = parse(variant)
    pd.testing.assert_frame_equal(got, frame)
    assert got.attrs == frame.attrs


def test_trailing_blank_lines_and_padded_header(real_bytes: bytes, frame: pd.DataFrame) -> None:
    padded_header = b" Date , Stock Code ,Stock Name,Aggregated Reportable Short Positions (Shares) ,"
    padded_header += b"Aggregated Reportable Short Positions (HK$)  "
    variant = real_bytes.replace(HEADER_LINE, padded_header, 1) + b"\n\r\n  \n"
    pd.testing.assert_frame_equal(parse(variant), frame)


def test_quoted_field_with_comma_stays_one_field(real_bytes: bytes) -> None:
    variant = real_bytes.replace(b",CKH HOLDINGS,", b',"CKH, HOLDINGS",', 1)
    assert parse(variant)["name"].iloc[0] == "CKH, HOLDINGS"


# --- broken files -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cut",
    [
        b"02/12/20",  # inside the date: 1 field
        b"02/12/2022,87001,HUI XI",  # inside the name: 3 fields
        b"02/12/2022,87001,HUI XIAN REIT,",  # 4 fields
        b"02/12/2022,87001,HUI XIAN REIT,0,",  # 5 fields, empty value
    ],
)
def test_truncated_last_line(real_bytes: bytes, cut: bytes) -> None:
    truncated = real_bytes[: -len(LAST_LINE)] + cut
    with pytest.raises(MalformedFile, match="line 982"):
        parse(truncated)


def test_truncated_mid_file(real_bytes: bytes) -> None:
    start = real_bytes.index(b"02/12/2022,700,TENCENT")
    with pytest.raises(MalformedFile, match="fields instead of 5"):
        parse(real_bytes[: start + len(b"02/12/2022,700,TENC")])


def test_renamed_column(real_bytes: bytes) -> None:
    renamed = real_bytes.replace(b"Stock Name", b"Stock Short Name", 1)
    with pytest.raises(MalformedFile, match="Stock Short Name"):
        parse(renamed)


def test_extra_column(real_bytes: bytes) -> None:
    extra = real_bytes.replace(HEADER_LINE, HEADER_LINE + b",% of Issued", 1)
    with pytest.raises(MalformedFile, match="header"):
        parse(extra)


@pytest.mark.parametrize(
    "page",
    [
        b"<html><head><title>404 Not Found</title></head><body><h1>Page not found</h1></body></html>",
        b"\n<!DOCTYPE html>\n<html lang='en'><head><title>SFC</title></head><body>Maintenance</body></html>",
    ],
)
def test_html_error_page(page: bytes) -> None:
    with pytest.raises(MalformedFile, match="sfc-short-positions"):
        parse(page)


@pytest.mark.parametrize("data", [b"", b"\n\n", b"\xef\xbb\xbf", b"  \r\n"])
def test_empty_file(data: bytes) -> None:
    with pytest.raises(MalformedFile, match="empty file"):
        parse(data)


def test_header_only() -> None:
    # SFC lists every specified share (zeros included): a list with no rows is never a real publication.
    with pytest.raises(MalformedFile, match="no data rows"):
        parse(HEADER_LINE + b"\n")


def test_mixed_dates(real_bytes: bytes) -> None:
    mixed = real_bytes.replace(b"02/12/2022,700,TENCENT", b"25/11/2022,700,TENCENT", 1)
    with pytest.raises(MalformedFile, match="2 different dates"):
        parse(mixed)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b"02/12/2022,700,TENCENT", b"2022-12-02,700,TENCENT", "not dd/mm/yyyy"),
        (b"02/12/2022,700,TENCENT", b"31/02/2022,700,TENCENT", "impossible date"),
        (b",700,TENCENT,", b",TCH,TENCENT,", "not a stock code"),
        (b",700,TENCENT,", b",700,,", "empty stock name"),
        (b"TENCENT,45925264,", b"TENCENT,n.a.,", "not a number"),
        (b"TENCENT,45925264,", b"TENCENT,-,", "shares '-'"),
        (b"TENCENT,45925264,", b"TENCENT,-45925264,", "not a non-negative number"),
        (b"TENCENT,45925264,", b"TENCENT,45925264.5,", "fractional"),
        (b",13593878144\n", b",13593878144 HKD\n", "not a number"),
        (b",700,TENCENT,", b',700,"TENCENT,', "bad CSV|fields instead of 5"),
    ],
)
def test_bad_field(real_bytes: bytes, old: bytes, new: bytes, message: str) -> None:
    assert old in real_bytes
    with pytest.raises(MalformedFile, match=message) as caught:
        parse(real_bytes.replace(old, new, 1))
    assert "line 176" in str(caught.value)


def test_blank_line_inside_data(real_bytes: bytes) -> None:
    gapped = real_bytes.replace(b"\n02/12/2022,700,", b"\n\n02/12/2022,700,", 1)
    with pytest.raises(MalformedFile, match="line 176"):
        parse(gapped)


def test_duplicate_code(real_bytes: bytes) -> None:
    doubled = real_bytes + b"02/12/2022,0700,TENCENT,1,296\n"
    with pytest.raises(MalformedFile, match="listed twice.*00700"):
        parse(doubled)
