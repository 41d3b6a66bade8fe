"""hkex-di: constructed daily summaries (no real DSM page is held), a summary built from real 2026 cells, and the
real per-stock notice list of 00700 (see fixtures/hkex-di/README.md)."""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from alerts.errors import MalformedFile, NotPublishedYet
from alerts.sources.hkex_di import SCHEMA, notice_list_path, parse, parse_holding, parse_notice_list
from tests.support.paths import FIXTURES as _FIXTURES

FIXTURES = _FIXTURES / "hkex-di"
C1 = FIXTURES / "DSM20251126C1.htm"
C2 = FIXTURES / "DSM20251126C2.htm"
NO_ROWS = FIXTURES / "DSM20251127C2_no_rows.htm"
UNAVAILABLE = FIXTURES / "DSM20251110C1_unavailable.htm"
REAL_00700 = FIXTURES / "disclosure-of-interests-00700.json"  # real pages, captured 2026-09-10


def real_page(role: str) -> str:
    """The HTML of one real page held in REAL_00700 ("di_form_list": NSAllFormList, "di_corp_list": the search).

    The capture records each page's SHA-256; checking it proves the text is the page as served.
    """
    capture = json.loads(REAL_00700.read_text(encoding="utf-8"))
    (document,) = [doc for doc in capture["documents"] if doc["role"] == role]
    raw = document["text"].encode("utf-8")
    assert (len(raw), hashlib.sha256(raw).hexdigest()) == (document["byte_length"], document["sha256"])
    return str(document["text"])


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


# --- the real 2026 cells, in a summary ----------------------------------------------------------------------

_REAL_ROW_RE = re.compile(r"<tr>\s*(<td class=\"tbCell\".*?)\s*</tr>", re.S)
_REAL_CELL_RE = re.compile(r"<td class=\"tbCell\"[^>]*>(.*?)</td>", re.S)


def real_list_cells() -> list[list[str]]:
    """The inner HTML of each data cell of the real notice list, row by row (markup kept: <a>, <br>, &nbsp;)."""
    return [_REAL_CELL_RE.findall(row) for row in _REAL_ROW_RE.findall(real_page("di_form_list"))]


def summary_from_real_cells() -> bytes:
    """A C2 daily summary in the layout of DSM20251126C2.htm whose data cells are the real notice-list cells.

    Constructed from real cells: the page skeleton, company cell, class cell and blank "Previous" cells are
    ours; serial, holder, date, reason, shares, price, holding and % cells are the real markup, the % in its own
    cell under a "(+%)" heading spanning two columns.
    """
    header = [
        "Serial No",
        "Name of listed corporation",
        "Stock code",
        "Class of shares",
        "Name of director",
        "Date of relevant event",
        "Reason for disclosure",
        "Number of shares bought / sold / involved",
        "Average price per share",
    ]
    rows = [
        '<tr class="tbHeader">'
        + "".join(f"<td>{label}</td>" for label in header)
        + '<td colspan="2">Previous No. of shares (+%)</td><td colspan="2">Present No. of shares (+%)</td></tr>'
    ]
    for serial, holder, reason, shares, price, held, pct, event_date, *_ in real_list_cells():
        cells = [
            serial,
            "Tencent Holdings Limited",
            "00700",
            "Ordinary Shares",
            holder,
            event_date,
            reason,
            shares,
            price,
            "&nbsp;",
            "&nbsp;",
            held,
            pct,
        ]
        rows.append('<tr class="tbRow">' + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    page = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head><body>'
        '<table id="Table3"><tr><td class="tbTitle" colspan="13">Disclosure of Interests - Daily Summary of'
        " Notices Filed - Directors (15/04/2026)</td></tr>" + "\r\n".join(rows) + "</table></body></html>"
    )
    return page.encode("utf-8")


def test_real_cells_are_what_the_summary_test_uses() -> None:
    cells = real_list_cells()
    assert len(cells) == 21 and {len(row) for row in cells} == {10}
    sale = next(row for row in cells if "DA20260415E00531</a>" in row[0])
    assert sale[2].endswith(">1201</a>(L)<br>")  # no space before (L)
    assert sale[3:7] == ["5,000(L)<br>", "HKD 503.0000", "63,494(L)<br>0(S)<br>", "0.00(L)<br>0.00(S)<br>"]


def test_summary_with_real_cells() -> None:
    frame = parse(summary_from_real_cells())
    assert frame.attrs["layout"] == "dsm-summary"
    assert len(frame) == 21
    assert _record(frame, "DA20260415E00531") == {
        "serial": "DA20260415E00531",
        "filed_date": pd.Timestamp("2026-04-15"),
        "event_date": pd.Timestamp("2026-04-10"),
        "code": "00700",
        "name": "Tencent Holdings Limited",
        "holder": "Yang Siu Shun",
        "role": "director",
        "event_code": "1201",
        "direction": "sell",
        "shares": 5_000,
        "avg_price": 503.0,
        "currency": "HKD",
        "shares_after": 63_494,  # the long figure of "63,494(L)<br>0(S)", % from its own cell
        "pct_after": 0.0,
        "position": "L",
        "form": "3A",
        "shares_before": None,
        "pct_before": None,
    }
    award = _record(frame, "DA20260330E00364")  # five-digit code, blank (&nbsp;) price
    assert (
        award["event_code"],
        award["direction"],
        award["shares"],
        award["avg_price"],
        award["currency"],
    ) == (
        "11031",
        "other",
        17_804,
        None,
        None,
    )
    assert (award["shares_after"], award["pct_after"], award["event_date"]) == (
        68_494,
        0.0,
        pd.Timestamp("2026-03-25"),
    )
    single = _record(frame, "DA20260819E00389")  # one position only: "44,172(L)<br>" / "0.00(L)<br>"
    assert (single["event_code"], single["shares"], single["shares_after"], single["pct_after"]) == (
        "1316",
        1_682,
        44_172,
        0.0,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("63,494(L) 0(S) 0.00(L) 0.00(S)", {"L": (63_494, 0.0), "S": (0, 0.0)}),
        ("63,494(L)0(S)0.00(L)0.00(S)", {"L": (63_494, 0.0), "S": (0, 0.0)}),  # <br> lost: still apart
        ("44,172(L) 0.00(L)", {"L": (44_172, 0.0)}),
    ],
)
def test_parse_holding_real_cells(text: str, expected: dict) -> None:
    assert parse_holding(text) == expected


# --- the real per-stock notice list (NSAllFormList, 00700) --------------------------------------------------


@pytest.fixture(scope="module")
def notices() -> pd.DataFrame:
    return parse_notice_list(real_page("di_form_list").encode("utf-8"))


def test_notice_list_page(notices: pd.DataFrame) -> None:
    assert {col: str(dtype) for col, dtype in notices.dtypes.items()} == SCHEMA
    assert notices.attrs == {
        "file_date": date(2026, 9, 10),  # the end of the period listed (01/01/2026 - 10/09/2026)
        "layout": "ns-all-form-list",
        "code": "00700",
        "total_records": 21,
        "page_rows": 21,
    }
    assert len(notices) == 21
    assert list(notices["serial"][:3]) == ["DA20260819E00389", "DA20260417E00498", "DA20260417E00489"]
    assert set(notices["code"]) == {"00700"} and set(notices["name"]) == {"Tencent Holdings Ltd."}
    assert set(notices["role"]) == {"director"} and set(notices["form"]) == {"3A"}
    assert notices["event_code"].value_counts().to_dict() == {"1316": 15, "11031": 5, "1201": 1}


def test_notice_list_sale(notices: pd.DataFrame) -> None:
    assert _record(notices, "DA20260415E00531") == {
        "serial": "DA20260415E00531",
        "filed_date": pd.Timestamp("2026-04-15"),
        "event_date": pd.Timestamp("2026-04-10"),
        "code": "00700",
        "name": "Tencent Holdings Ltd.",
        "holder": "Yang Siu Shun",
        "role": "director",
        "event_code": "1201",
        "direction": "sell",
        "shares": 5_000,
        "avg_price": 503.0,
        "currency": "HKD",
        "shares_after": 63_494,
        "pct_after": 0.0,
        "position": "L",
        "form": "3A",
        "shares_before": None,  # the list shows the holding after the event only
        "pct_before": None,
    }


@pytest.mark.parametrize(
    ("serial", "holder", "event_code", "shares", "shares_after", "event_date"),
    [
        ("DA20260819E00389", "Zhang Xiulan", "1316", 1_682, 44_172, "2026-08-18"),
        ("DA20260417E00474", "Stone Ian Charles", "1316", 13_301, 333_733, "2026-04-15"),
        ("DA20260330E00378", "Ke Yang", "11031", 9_891, 74_610, "2026-03-25"),
        ("DA20260318E00251", "Zhang Xiulan", "1316", 2_186, 34_281, "2026-03-15"),
    ],
)
def test_notice_list_other_events(
    notices: pd.DataFrame,
    serial: str,
    holder: str,
    event_code: str,
    shares: int,
    shares_after: int,
    event_date: str,
) -> None:
    row = _record(notices, serial)
    assert (row["holder"], row["event_code"], row["direction"], row["position"]) == (
        holder,
        event_code,
        "other",
        "L",
    )
    assert (row["shares"], row["avg_price"], row["currency"]) == (shares, None, None)  # price cell is &nbsp;
    assert (row["shares_after"], row["pct_after"], row["event_date"]) == (
        shares_after,
        0.0,
        pd.Timestamp(event_date),
    )
    assert row["filed_date"] == pd.Timestamp(f"{serial[2:6]}-{serial[6:8]}-{serial[8:10]}")


def test_1201_is_a_sale_on_the_real_record(notices: pd.DataFrame) -> None:
    # Yang Siu Shun's long position, oldest notice first: the 1201 notice is the one that lowers it by its shares.
    mine = notices[notices["holder"] == "Yang Siu Shun"].iloc[::-1]
    steps = list(zip(mine["event_code"], mine["shares"], mine["shares_after"], strict=True))
    assert steps[2:4] == [("11031", 17_804, 68_494), ("1201", 5_000, 63_494)]
    assert 68_494 - 5_000 == 63_494


def test_the_search_page_is_not_a_notice_list() -> None:
    # The real NSSrchCorpList page has a grdPaging table and a "Total records" too, but other columns.
    with pytest.raises(MalformedFile, match="no header row starting 'Form Serial Number'"):
        parse_notice_list(real_page("di_corp_list").encode("utf-8"))


def test_the_notice_list_is_not_a_summary() -> None:
    with pytest.raises(MalformedFile, match="Table3 has no header row starting 'Serial No'"):
        parse(real_page("di_form_list").encode("utf-8"))


def test_notice_list_truncated() -> None:
    text = real_page("di_form_list")
    with pytest.raises(MalformedFile, match="not closed"):
        parse_notice_list(text[: text.index("DA20260327E00330</a>")].encode("utf-8"))


def test_notice_list_without_total() -> None:
    text = real_page("di_form_list").replace('id="lblRecCount"', 'id="lblCount"')
    with pytest.raises(MalformedFile, match="Total records"):
        parse_notice_list(text.encode("utf-8"))


@pytest.mark.parametrize(
    ("old", "new", "missing"),
    [
        ("<td>Reason for disclosure </td>", "<td>Nature of event</td>", "reason"),
        ("<td>% of issued voting shares</td>", "<td>Percentage</td>", "after_pct"),
        ("<td>Form Serial Number</td>", "<td>Serial No</td>", "Form Serial Number"),
    ],
)
def test_notice_list_changed_header(old: str, new: str, missing: str) -> None:
    text = real_page("di_form_list")
    assert old in text
    with pytest.raises(MalformedFile, match=re.escape(missing)):
        parse_notice_list(text.replace(old, new).encode("utf-8"))


def test_notice_list_code_from_the_form_url() -> None:
    text = real_page("di_form_list").replace('<span id="lblSCStockCode">00700</span>', "")
    assert set(parse_notice_list(text.encode("utf-8"))["code"]) == {"00700"}  # from the form's sc=00700


def test_notice_list_path() -> None:
    assert notice_list_path(
        "700", "6893", "Tencent Holdings Ltd.", date(2026, 1, 1), date(2026, 9, 10), 2
    ) == (
        "/di/NSAllFormList.aspx?sa2=an&sid=6893&corpn=Tencent+Holdings+Ltd.&sd=01%2F01%2F2026&ed=10%2F09%2F2026"
        "&cid=0&sa1=cl&scsd=01%2F01%2F2026&sced=10%2F09%2F2026&sc=00700&src=MAIN&lang=EN&pg=2"
    )
    with pytest.raises(ValueError, match="sid"):
        notice_list_path("700", "tencent", "Tencent Holdings Ltd.", date(2026, 1, 1), date(2026, 9, 10))
