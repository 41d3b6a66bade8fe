"""Tests for the FINRA Reg SHO daily short sale volume parser (data-formats.md §7)."""

from __future__ import annotations

import math
import re
from datetime import date

import pandas as pd
import pytest

from alerts.errors import MalformedFile
from alerts.sources import finra_short_volume
from alerts.sources.finra_short_volume import SCHEMA, SOURCE, parse, paths
from tests.support.paths import FIXTURES as _FIXTURES

FIXTURES = _FIXTURES / "finra-short-volume"
REAL = FIXTURES / "CNMSshvol20210427.txt"
EXCERPT = FIXTURES / "CNMSshvol20210802_excerpt_TestFinraReport.txt"
HEADER = b"Date|Symbol|ShortVolume|ShortExemptVolume|TotalVolume|Market"


@pytest.fixture(scope="module")
def real_bytes() -> bytes:
    return REAL.read_bytes()


@pytest.fixture(scope="module")
def frame(real_bytes: bytes) -> pd.DataFrame:
    return parse(real_bytes)


def row(frame: pd.DataFrame, symbol: str) -> pd.Series:
    hits = frame[frame["symbol"] == symbol]
    assert len(hits) == 1, symbol
    return hits.iloc[0]


def dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {col: str(dtype) for col, dtype in frame.dtypes.items()}


def build(*rows: str, trailer: str | None = None, eol: str = "\r\n") -> bytes:
    """A file from rows (trailer = row count unless given; "" leaves it out)."""
    lines = [HEADER.decode(), *rows]
    count = str(len(rows)) if trailer is None else trailer
    if count:
        lines.append(count)
    return (eol.join(lines) + eol).encode()


# --- the real 2021-04-27 file -------------------------------------------------------------------------------


def test_fixture_is_the_documented_file(real_bytes: bytes) -> None:
    assert real_bytes.startswith(HEADER + b"\r\n20210427|A|109763|1|244138|B,Q,N\r\n")
    assert real_bytes.endswith(b"\r\n20210427|ZYXI|25385|0|37909|B,Q,N\r\n9714\r\n")
    assert real_bytes.count(b"\r\n") == real_bytes.count(b"\n") == 9716


def test_row_count_schema_and_dtypes(frame: pd.DataFrame) -> None:
    assert len(frame) == 9714
    assert (
        list(frame.columns)
        == list(SCHEMA)
        == [
            "date",
            "symbol",
            "short_volume",
            "short_exempt_volume",
            "total_volume",
            "market",
            "short_ratio",
        ]
    )
    assert dtypes(frame) == SCHEMA
    assert isinstance(frame.index, pd.RangeIndex)


def test_file_date_and_date_column(frame: pd.DataFrame) -> None:
    assert frame.attrs["file_date"] == date(2021, 4, 27)
    assert type(frame.attrs["file_date"]) is date
    assert (frame["date"] == pd.Timestamp("2021-04-27")).all()


def test_aapl_row(frame: pd.DataFrame) -> None:
    aapl = row(frame, "AAPL")
    assert (aapl["short_volume"], aapl["short_exempt_volume"], aapl["total_volume"]) == (
        11757014,
        52235,
        29876872,
    )
    assert aapl["market"] == "B,Q,N"
    assert aapl["short_ratio"] == 11757014 / 29876872
    assert round(aapl["short_ratio"], 6) == 0.393516


@pytest.mark.parametrize(
    ("symbol", "short", "exempt", "total", "market"),
    [
        ("A", 109763, 1, 244138, "B,Q,N"),
        ("BABA", 1577396, 7064, 3830029, "B,Q,N"),
        ("BRK/B", 278740, 7900, 877318, "B,Q,N"),
        ("AAICpB", 901, 0, 940, "Q"),
        ("AACQU", 1000, 0, 3000, "N"),
        ("ZYXI", 25385, 0, 37909, "B,Q,N"),
    ],
)
def test_known_rows_and_symbols_verbatim(
    frame: pd.DataFrame, symbol: str, short: int, exempt: int, total: int, market: str
) -> None:
    got = row(frame, symbol)
    assert (got["short_volume"], got["short_exempt_volume"], got["total_volume"], got["market"]) == (
        short,
        exempt,
        total,
        market,
    )
    assert got["short_ratio"] == short / total


def test_whole_file_totals(frame: pd.DataFrame) -> None:
    assert frame["symbol"].is_unique
    assert frame["symbol"].iloc[0] == "A"
    assert frame["symbol"].iloc[-1] == "ZYXI"
    assert frame["short_ratio"].between(0, 1).all()
    assert frame["market"].value_counts().to_dict() == {
        "Q,N": 5000,
        "B,Q,N": 3154,
        "Q": 1377,
        "N": 120,
        "B,Q": 61,
        "B": 1,
        "B,N": 1,
    }
    assert int((frame["total_volume"] >= 500_000).sum()) == 1109


def test_lf_line_endings_parse_the_same(real_bytes: bytes, frame: pd.DataFrame) -> None:
    lf = parse(real_bytes.replace(b"\r\n", b"\n"))
    pd.testing.assert_frame_equal(lf, frame)
    assert lf.attrs == frame.attrs


def test_file_without_final_newline(real_bytes: bytes) -> None:
    assert len(parse(real_bytes.rstrip(b"\r\n"))) == 9714


# --- the real 10-row excerpt and the constructed files ------------------------------------------------------


def test_excerpt_with_trailer_10() -> None:
    data = EXCERPT.read_bytes()
    assert data.endswith(b"\r\n10\r\n")
    excerpt = parse(data)
    assert len(excerpt) == 10
    assert excerpt.attrs["file_date"] == date(2021, 8, 2)
    assert dtypes(excerpt) == SCHEMA
    assert excerpt["symbol"].tolist() == [
        "AAL",
        "ABBV",
        "BLUE",
        "KEY",
        "POSH",
        "RDS/A",
        "SNOW",
        "TSLA",
        "ZYNE",
        "ZYXI",
    ]
    tsla = row(excerpt, "TSLA")
    assert (tsla["short_volume"], tsla["short_exempt_volume"], tsla["total_volume"]) == (
        5368275,
        56657,
        14686076,
    )


def test_fractional_volumes_and_zero_total() -> None:
    got = parse((FIXTURES / "CNMSshvol20260713_fractional.txt").read_bytes())
    assert got.attrs["file_date"] == date(2026, 7, 13)
    assert dtypes(got) == SCHEMA
    assert got["symbol"].tolist() == ["AAPL", "BRK/B", "EMDV", "ZZZT"]
    aapl = row(got, "AAPL")
    assert (aapl["short_volume"], aapl["short_exempt_volume"], aapl["total_volume"]) == (120.5, 1.25, 300.75)
    assert aapl["short_ratio"] == 120.5 / 300.75
    assert row(got, "EMDV")["total_volume"] == 0.057
    assert row(got, "BRK/B")["short_ratio"] == 278740 / 877318
    zero = row(got, "ZZZT")
    assert zero["total_volume"] == 0.0
    assert math.isnan(zero["short_ratio"])


def test_empty_day_is_a_valid_empty_frame() -> None:
    data = (FIXTURES / "CNMSshvol_empty.txt").read_bytes()
    assert data == HEADER + b"\r\n0\r\n"
    empty = parse(data)
    assert len(empty) == 0
    assert list(empty.columns) == list(SCHEMA)
    assert dtypes(empty) == SCHEMA
    assert empty.attrs["file_date"] is None


def test_truncated_fixture_is_refused() -> None:
    data = (FIXTURES / "CNMSshvol20210427_truncated.txt").read_bytes()
    assert data.endswith(b"|ARGD|1199|0|1999|Q\r\n2021")
    with pytest.raises(MalformedFile, match="truncated: trailer says 2021 rows, file has 586"):
        parse(data)


# --- broken files ---------------------------------------------------------------------------------------------

ROW_A = "20210427|A|109763|1|244138|B,Q,N"
ROW_B = "20210427|BRK/B|278740|7900|877318|B,Q,N"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"", "empty file", id="zero-bytes"),
        pytest.param(b"\r\n \r\n", "empty file", id="blank"),
        pytest.param(b"\x00\x01garbage", "NUL bytes", id="binary"),
        pytest.param(b"<html><head><title>404 Not Found</title></head></html>", "error page", id="html-404"),
        pytest.param(
            b"<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>",
            "HTML/XML",
            id="cdn-access-denied-xml",
        ),
        pytest.param(b"<!DOCTYPE html><html><body>Maintenance</body></html>", "HTML/XML", id="html"),
        pytest.param(
            b"Date,Symbol,ShortVolume,ShortExemptVolume,TotalVolume,Market\r\n0\r\n",
            "header",
            id="comma-header",
        ),
        pytest.param(
            b"Date|Symbol|ShortVolume|TotalVolume|Market\r\n20100104|A|1|2|Q\r\n1\r\n",
            "header",
            id="pre-2011-layout",
        ),
        pytest.param(b"just some text\n", "header", id="garbage-text"),
        pytest.param(HEADER + b"\r\n", "truncated: no row-count trailer", id="header-only"),
        pytest.param(build(ROW_A, ROW_B, trailer=""), "truncated: no row-count trailer", id="no-trailer"),
        pytest.param(
            build(ROW_A, ROW_B, trailer="3"),
            "truncated: trailer says 3 rows, file has 2",
            id="trailer-too-big",
        ),
        pytest.param(
            build(ROW_A, ROW_B, trailer="1"), "trailer says 1 rows, file has 2", id="trailer-too-small"
        ),
        pytest.param(
            build(ROW_A, "20210427|BR"),
            re.escape("line 3: not a Date|Symbol|numbers|Market row"),
            id="cut-row",
        ),
        pytest.param(build(ROW_A, "", ROW_B), "line 3", id="blank-line-inside"),
        pytest.param(build("20210427|A|1,097|1|244138|B,Q,N"), "line 2", id="thousands-separator"),
        pytest.param(build("20210427|A|-5|1|244138|B,Q,N"), "line 2", id="negative"),
        pytest.param(build("20210427|A|nan|1|244138|B,Q,N"), "line 2", id="nan-volume"),
        pytest.param(build("20210427|A|109763||244138|B,Q,N"), "line 2", id="missing-field"),
        pytest.param(build("20210427|A|109763|1|244138|B,Q,N|X"), "line 2", id="extra-field"),
        pytest.param(build("2021-04-27|A|109763|1|244138|B,Q,N"), "line 2", id="iso-date"),
        pytest.param(build("20210427||109763|1|244138|B,Q,N"), "line 2", id="empty-symbol"),
        pytest.param(build("20210231|A|109763|1|244138|B,Q,N"), "impossible date '20210231'", id="bad-date"),
        pytest.param(build(ROW_A, "20210428|B|1|0|2|Q"), "2 different dates", id="two-dates"),
        pytest.param(build(ROW_A, ROW_A), r"listed twice: \['A'\]", id="duplicate-symbol"),
        pytest.param(build(ROW_A, "x"), "line 3", id="garbage-row"),
        pytest.param(build(ROW_A) + b"x\r\n", "truncated: no row-count trailer", id="garbage-after-trailer"),
    ],
)
def test_broken_files_raise_malformed(data: bytes, message: str) -> None:
    with pytest.raises(MalformedFile, match=message):
        parse(data)


def test_real_file_cut_after_a_complete_row(real_bytes: bytes) -> None:
    cut = real_bytes[: real_bytes.index(b"\r\n20210427|AAPL|")]
    with pytest.raises(MalformedFile, match="truncated: no row-count trailer"):
        parse(cut)


def test_real_file_with_a_row_removed(real_bytes: bytes) -> None:
    missing = real_bytes.replace(b"20210427|AAPL|11757014|52235|29876872|B,Q,N\r\n", b"")
    with pytest.raises(MalformedFile, match="trailer says 9714 rows, file has 9713"):
        parse(missing)


def test_well_formed_variants_parse() -> None:
    assert len(parse(build(ROW_A, ROW_B, eol="\n"))) == 2
    assert len(parse(b"\xef\xbb\xbf" + build(ROW_A))) == 1  # UTF-8 BOM
    assert len(parse(build(ROW_A) + b"\r\n\r\n")) == 1  # blank lines after the trailer


# --- source wiring ------------------------------------------------------------------------------------------


def test_source_object() -> None:
    assert finra_short_volume.NAME == SOURCE.name == "finra-short-volume"
    assert SOURCE.base_setting == "finra_url"
    assert SOURCE.calendar == "XNYS"
    assert SOURCE.schema == SCHEMA
    assert SOURCE.dated_url
    assert paths(date(2021, 4, 27)) == ["/equity/regsho/daily/CNMSshvol20210427.txt"]
    tables = SOURCE.parse_all(EXCERPT.read_bytes())
    assert list(tables) == ["main"]
    assert len(tables["main"]) == 10
