"""hkex-di: constructed daily summaries (no real DSM page exists; see fixtures/hkex-di/README.md)."""

from __future__ import annotations

import math
import re
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from alerts.errors import MalformedFile, NotPublishedYet
from alerts.sources.hkex_di import SCHEMA, parse, parse_holding

FIXTURES = Path(__file__).parent / "fixtures" / "hkex-di"
C1 = FIXTURES / "DSM20251126C1.htm"
C2 = FIXTURES / "DSM20251126C2.htm"
NO_ROWS = FIXTURES / "DSM20251127C2_no_rows.htm"
UNAVAILABLE = FIXTURES / "DSM20251110C1_unavailable.htm"


def _c2_text() -> str:
    return C2.read_bytes().decode("utf-8")  # not read_text(): keep the CRLF line ends


@pytest.fixture(scope="module")
def directors() -> pd.DataFrame:
    return parse(C2.read_bytes())


@pytest.fixture(scope="module")
def holders() -> pd.DataFrame:
    return parse(C1.read_bytes())


def _record(frame: pd.DataFrame, serial: str) -> dict:
    rows = frame[frame["serial"] == serial]
    assert len(rows) == 1
    return {
        key: (None if value is pd.NA or (isinstance(value, float) and math.isnan(value)) else value)
        for key, value in rows.iloc[0].to_dict().items()
    }


def test_director_summary_rows(directors: pd.DataFrame) -> None:
    assert list(directors["serial"]) == ["DA20251126E00187", "DA20251126E00195", "DA20251126E00201"]
    assert directors.attrs["file_date"] == date(2025, 11, 26)


def test_lei_jun_purchase(directors: pd.DataFrame) -> None:
    assert _record(directors, "DA20251126E00187") == {
        "serial": "DA20251126E00187",
        "filed_date": pd.Timestamp("2025-11-26"),
        "event_date": pd.Timestamp("2025-11-24"),
        "code": "01810",
        "name": "Xiaomi Corporation",
        "holder": "Lei Jun",
        "role": "director",
        "event_code": "1101",
        "direction": "buy",
        "shares": 2_600_000,
        "avg_price": 38.58,
        "currency": "HKD",
        "shares_after": 3_989_013_134,
        "pct_after": 23.26,
        "position": "L",
        "form": "3A",
        "shares_before": 3_986_413_134,
        "pct_before": 23.24,
    }


def test_sale_and_other_codes(directors: pd.DataFrame) -> None:
    sale = _record(directors, "DA20251126E00195")
    assert (sale["event_code"], sale["direction"], sale["shares"], sale["avg_price"]) == (
        "1201",
        "sell",
        150_000,
        95.12,
    )
    assert (sale["shares_before"], sale["shares_after"], sale["code"]) == (1_200_000, 1_050_000, "00016")
    other = _record(directors, "DA20251126E00201")
    # 1104 is neither a purchase nor a sale; a blank price cell gives no price and no currency.
    assert (other["event_code"], other["direction"], other["avg_price"], other["currency"]) == (
        "1104",
        "other",
        None,
        None,
    )
    assert (other["shares"], other["shares_after"], other["pct_after"]) == (500_000, 12_345_678, 0.13)


def test_superseded_dropped(directors: pd.DataFrame) -> None:
    assert "DA20251126E00150" not in set(directors["serial"])
    assert C2.read_bytes().count(b"DA20251126E00150</a> (Superseded)") == 1  # the fixture does hold it


def test_multi_position_substantial_shareholder(holders: pd.DataFrame) -> None:
    assert _record(holders, "CS20251126E00061") == {
        "serial": "CS20251126E00061",
        "filed_date": pd.Timestamp("2025-11-26"),
        "event_date": pd.Timestamp("2025-11-21"),
        "code": "00700",
        "name": "Tencent Holdings Limited",
        "holder": "JPMorgan Chase & Co.",
        "role": "substantial_shareholder",
        "event_code": "1201",
        "direction": "sell",
        "shares": 2_345_600,
        "avg_price": 612.34,
        "currency": "HKD",
        "shares_after": 458_888_967,  # the long figure, not the short (27,456,789) or lending pool one
        "pct_after": 4.99,
        "position": "L",
        "form": "2",
        "shares_before": 461_234_567,
        "pct_before": 5.02,
    }


def test_substantial_shareholder_summary(holders: pd.DataFrame) -> None:
    # CS…00080 (company cell "Meituan (Withdrawn)") is dropped; the amendment CS…00091 is kept.
    assert list(holders["serial"]) == [
        "CS20251126E00061",
        "CS20251126E00072",
        "IS20251126E00012",
        "CS20251126E00091",
    ]
    assert holders.attrs["file_date"] == date(2025, 11, 26)
    blackrock = _record(holders, "CS20251126E00072")
    assert (blackrock["direction"], blackrock["shares"], blackrock["pct_before"], blackrock["pct_after"]) == (
        "buy",
        2_726_000,
        4.99,
        5.00,
    )
    individual = _record(holders, "IS20251126E00012")
    assert (individual["form"], individual["event_code"], individual["direction"]) == ("1", "1001", "buy")
    assert (individual["shares_before"], individual["pct_before"], individual["shares_after"]) == (
        None,
        None,
        306_000_000,
    )
    amendment = _record(holders, "CS20251126E00091")
    assert (amendment["name"], amendment["code"], amendment["event_date"]) == (
        "Meituan",
        "03690",
        pd.Timestamp("2025-11-18"),
    )


@pytest.mark.parametrize("path", [C1, C2, NO_ROWS])
def test_dtypes(path: Path) -> None:
    frame = parse(path.read_bytes())
    assert list(frame.columns) == list(SCHEMA)
    assert {col: str(dtype) for col, dtype in frame.dtypes.items()} == SCHEMA


def test_valid_page_without_rows() -> None:
    frame = parse(NO_ROWS.read_bytes())
    assert len(frame) == 0
    assert frame.attrs["file_date"] == date(2025, 11, 27)  # from the title row above the header


def test_unavailable_page() -> None:
    with pytest.raises(NotPublishedYet, match="temporarily unavailable"):
        parse(UNAVAILABLE.read_bytes())


def test_no_record_page() -> None:
    page = b"<html><body><p>No record found.</p></body></html>"
    with pytest.raises(NotPublishedYet, match="no record"):
        parse(page)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3,989,013,134(L)(23.26)", {"L": (3_989_013_134, 23.26)}),
        ("3,989,013,134(L) 23.26(L)", {"L": (3_989_013_134, 23.26)}),
        ("3,989,013,134 (L) (23.26%)", {"L": (3_989_013_134, 23.26)}),
        (
            "1,065,871,110(L) (4.99) 30,260,800(S) (0.14)",
            {"L": (1_065_871_110, 4.99), "S": (30_260_800, 0.14)},
        ),
        (
            "1,065,871,110(L) 30,260,800(S) (4.99) (0.14)",
            {"L": (1_065_871_110, 4.99), "S": (30_260_800, 0.14)},
        ),
        (
            "1,065,871,110(L) 30,260,800(S) 4.99(L) 0.14(S)",
            {"L": (1_065_871_110, 4.99), "S": (30_260_800, 0.14)},
        ),
        (
            "1,065,871,110(L) 30,260,800(S) 0.14(S) 4.99(L)",
            {"L": (1_065_871_110, 4.99), "S": (30_260_800, 0.14)},
        ),
        # Run together, as kevinwtl's 2-dp splitter implies pandas saw the cell.
        ("1,065,871,110(L)4.9930,260,800(S)0.14", {"L": (1_065_871_110, 4.99), "S": (30_260_800, 0.14)}),
        ("12,950,321(L)", {"L": (12_950_321, None)}),
        ("", {}),
    ],
)
def test_parse_holding(text: str, expected: dict) -> None:
    assert parse_holding(text) == expected


@pytest.mark.parametrize("text", ["3,989,013,134 (23.26)", "(23.26)", "3,989,013,134(L) 23.2"])
def test_parse_holding_rejects(text: str) -> None:
    with pytest.raises(MalformedFile):
        parse_holding(text)


def test_short_event_picks_short_figures() -> None:
    data = C1.read_bytes().replace(b"1201 (L)", b"1201 (S)", 1)
    row = _record(parse(data), "CS20251126E00061")
    assert (row["position"], row["shares_before"], row["pct_before"], row["shares_after"]) == (
        "S",
        27_456_789,
        0.30,
        27_456_789,
    )


def test_percent_in_its_own_column() -> None:
    # If "(+%)" spans two physical columns (kevinwtl names 13 columns), shares and % are joined back.
    text = _c2_text()
    text = text.replace(
        "<td>Previous No. of shares (+%)</td>", '<td colspan="2">Previous No. of shares (+%)</td>'
    )
    text = text.replace(
        "<td>Present No. of shares (+%)</td>", '<td colspan="2">Present No. of shares (+%)</td>'
    )
    text = re.sub(r"<td>([\d,]+\(L\)) (\(\d+\.\d\d\))</td>", r"<td>\1</td><td>\2</td>", text)
    frame = parse(text.encode("utf-8"))
    row = _record(frame, "DA20251126E00187")
    assert (row["shares_before"], row["pct_before"], row["shares_after"], row["pct_after"]) == (
        3_986_413_134,
        23.24,
        3_989_013_134,
        23.26,
    )
    assert len(frame) == 3


# --- broken pages -------------------------------------------------------------------------------------------


def test_empty_file() -> None:
    with pytest.raises(MalformedFile):
        parse(b"")


def test_error_page() -> None:
    with pytest.raises(MalformedFile, match="error page"):
        parse(b"<html><head><title>404 - Not Found</title></head><body>Page not found</body></html>")


def test_page_without_table3() -> None:
    with pytest.raises(MalformedFile, match="Table3"):
        parse(
            b"<html><body><table id='Table1'><tr><td>Disclosure of Interests</td></tr></table></body></html>"
        )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b"<td>Reason for disclosure</td>", b"<td>Nature of event</td>", "reason"),
        (b"<td>Previous No. of shares (+%)</td>", b"<td>Shares before</td>", "before"),
        (b"<td>Serial No</td>", b"<td>Form No</td>", "Serial No"),
    ],
)
def test_changed_headers(old: bytes, new: bytes, message: str) -> None:
    data = C2.read_bytes()
    assert old in data
    with pytest.raises(MalformedFile, match=message):
        parse(data.replace(old, new))


def test_dropped_column() -> None:
    text = _c2_text()
    start = text.index("DA20251126E00187</a>")
    lost = text.index("<td>Class B</td>", start)
    with pytest.raises(MalformedFile, match="row 1 has 10 cells, header has 11"):
        parse((text[:lost] + text[lost + len("<td>Class B</td>") :]).encode("utf-8"))


def test_truncated_mid_row() -> None:
    text = _c2_text()
    cut = text.index("HKD 38.5800")
    with pytest.raises(MalformedFile, match="not closed"):
        parse(text[:cut].encode("utf-8"))


def test_truncated_at_row_boundary() -> None:
    text = _c2_text()
    cut = text.index("</tr>", text.index("DA20251126E00195")) + len("</tr>")
    with pytest.raises(MalformedFile, match="not closed"):
        parse(text[:cut].encode("utf-8"))


def test_bad_serial() -> None:
    data = C2.read_bytes().replace(b">DA20251126E00195</a>", b">DA2025112E00195</a>")
    with pytest.raises(MalformedFile, match="serial"):
        parse(data)


def test_bad_event_date() -> None:
    data = C2.read_bytes().replace(b"<td>24/11/2025</td>", b"<td>2025-11-24</td>", 1)
    with pytest.raises(MalformedFile, match="not a date"):
        parse(data)


def test_missing_event_code() -> None:
    data = C2.read_bytes().replace(b"<td>1101(L)</td>", b"<td>On-market purchase</td>", 1)
    with pytest.raises(MalformedFile, match="event code"):
        parse(data)


def test_bad_price() -> None:
    data = C2.read_bytes().replace(b"HKD 38.5800", b"HKD about 38", 1)
    with pytest.raises(MalformedFile, match="not a price"):
        parse(data)
