"""hkex-southbound: the real Chinese page (2019-01-25), a constructed English page, the real 2026 English page
(northbound t=sh, excerpt), and broken pages."""

from __future__ import annotations

import re
from datetime import date

import pandas as pd
import pytest

from alerts.errors import MalformedFile
from alerts.sources.hkex_southbound import LAYOUT_2019, LAYOUT_2026, SCHEMA, form_fields, parse, post_fields
from tests.support.paths import FIXTURES as _FIXTURES

FIXTURES = _FIXTURES / "hkex-southbound"
REAL = FIXTURES / "mutualmarket_c_t-hk_20190125.html"
ENGLISH = FIXTURES / "mutualmarket_t-hk_20251120.html"
PAGE_2026 = FIXTURES / "hkex_sh_20260331_excerpt.html"
TABLE_MARK = 'id="mutualmarket-result"'


@pytest.fixture(scope="module")
def real_bytes() -> bytes:
    return REAL.read_bytes()


@pytest.fixture(scope="module")
def real(real_bytes: bytes) -> pd.DataFrame:
    return parse(real_bytes)


def _row(frame: pd.DataFrame, code: str) -> tuple:
    rows = frame[frame["code"] == code]
    assert len(rows) == 1
    return tuple(rows.iloc[0][["code", "name", "shares", "pct_of_issued"]])


def test_real_page_rows_and_date(real: pd.DataFrame) -> None:
    assert len(real) == 564
    assert real.attrs["file_date"] == date(2019, 1, 25)
    assert (real["date"] == pd.Timestamp("2019-01-25")).all()
    assert real["code"].is_unique
    assert real["code"].str.fullmatch(r"\d{5}").all()
    assert real.iloc[0]["code"] == "00001"
    assert real.iloc[-1]["code"] == "08328"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("00700", ("00700", "騰訊控股", 120_214_498, 1.26)),
        ("00001", ("00001", "長和", 22_908_430, 0.59)),
        ("00005", ("00005", "匯豐控股", 1_491_727_923, 7.31)),
        ("02318", ("02318", "中國平安", 79_915_158, 1.06)),
        ("08328", ("08328", "信義香港", 145_000, 0.02)),
    ],
)
def test_real_page_known_rows(real: pd.DataFrame, code: str, expected: tuple) -> None:
    assert _row(real, code) == expected


def test_real_page_keeps_english_names(real: pd.DataFrame) -> None:
    # Stocks without a Chinese short name are printed in English on the _c page.
    assert "HUATAI SECURITIES CO., LTD." in set(real["name"])


def test_real_page_dtypes(real: pd.DataFrame) -> None:
    assert list(real.columns) == list(SCHEMA)
    assert {col: str(dtype) for col, dtype in real.dtypes.items()} == {
        "date": "datetime64[ns]",
        "code": "string",
        "name": "string",
        "shares": "Int64",
        "pct_of_issued": "float64",
    }
    assert not real[["date", "code", "name", "shares"]].isna().any().any()


def test_real_page_blank_percentages(real: pd.DataFrame) -> None:
    # Quirk of the real page: three stocks have an empty "佔已發行股份百分比" cell → NaN, not an error.
    assert list(real.loc[real["pct_of_issued"].isna(), "code"]) == ["00425", "00520", "01357"]
    assert _row(real, "00425")[:3] == ("00425", "敏實集團", 90_349_744)


def test_constructed_english_page_exact() -> None:
    frame = parse(ENGLISH.read_bytes())
    assert frame.attrs["file_date"] == date(2025, 11, 20)
    expected = pd.DataFrame(
        {
            "date": pd.to_datetime(["2025-11-20"] * 10),
            "code": [
                "00001",
                "00005",
                "00388",
                "00700",
                "00939",
                "01211",
                "01810",
                "02318",
                "03690",
                "09988",
            ],
            "name": [
                "CKH HOLDINGS",
                "HSBC HOLDINGS",
                "HKEX",
                "TENCENT",
                "CCB",
                "BYD COMPANY",
                "XIAOMI-W",
                "PING AN",
                "MEITUAN-W",
                "BABA-W",
            ],
            "shares": [
                120_456_789,
                1_912_345_678,
                98_765_432,
                843_210_987,
                27_123_456_789,
                210_987_654,
                1_234_567_890,
                1_402_345_678,
                698_765_432,
                1_523_456_789,
            ],
            "pct_of_issued": [3.15, 10.86, 7.79, 9.23, 11.28, 7.25, 9.31, 18.75, 11.44, 8.02],
        }
    ).astype(SCHEMA)
    pd.testing.assert_frame_equal(frame, expected)


def test_form_fields_real_page(real_bytes: bytes) -> None:
    assert form_fields(real_bytes) == {
        "__VIEWSTATE": "/wEPDwUJNjIxMTYzMDAwZGQ79IjpLOM+JXdffc28A8BMMA9+yg==",
        "__VIEWSTATEGENERATOR": "EC4ACD6F",
        "__EVENTVALIDATION": "/wEdAAdtFULLXu4cXg1Ju23kPkBZVobCVrNyCM2j+bEk3ygqmn1KZjrCXCJtWs9HrcHg6Q64ro36uTSn/"
        "Z2SUlkm9HsG7WOv0RDD9teZWjlyl84iRMtpPncyBi1FXkZsaSW6dwqO1N1XNFmfsMXJasjxX85jz8PxJxwgNJLTNVe2Bh/bcg5jDf8=",
        "today": "20190127",
        "sortBy": "stockcode",
        "sortDirection": "asc",
        "alertMsg": "",
    }


def test_post_fields_real_page(real_bytes: bytes) -> None:
    fields = post_fields(real_bytes, date(2019, 1, 4))
    assert fields == {
        **form_fields(real_bytes),
        "txtShareholdingDate": "2019/01/04",
        "btnSearch": "Search",
        "sortBy": "stockcode",
        "sortDirection": "asc",
        "alertMsg": "",
    }
    # The visible text inputs of the page are not copied: only what the POST needs.
    assert set(fields) == {
        "__VIEWSTATE",
        "__VIEWSTATEGENERATOR",
        "__EVENTVALIDATION",
        "today",
        "sortBy",
        "sortDirection",
        "alertMsg",
        "txtShareholdingDate",
        "btnSearch",
    }


def test_post_fields_english_page_overrides_sort() -> None:
    data = ENGLISH.read_bytes().replace(b'id="sortBy" value="stockcode"', b'id="sortBy" value="shareholding"')
    assert form_fields(data)["sortBy"] == "shareholding"
    fields = post_fields(data, date(2025, 11, 19))
    assert (fields["sortBy"], fields["txtShareholdingDate"], fields["today"]) == (
        "stockcode",
        "2025/11/19",
        "20251121",
    )


# --- the 2026 page (real English northbound page, t=sh; same form as t=hk) ----------------------------------


@pytest.fixture(scope="module")
def page_2026() -> bytes:
    return PAGE_2026.read_bytes()


def test_2026_page_rows_and_date(page_2026: bytes) -> None:
    frame = parse(page_2026)
    assert frame.attrs == {"file_date": date(2026, 3, 31), "layout": LAYOUT_2026}
    assert len(frame) == 20
    assert (frame["date"] == pd.Timestamp("2026-03-31")).all()
    # Northbound rows carry HKEX's 5-digit CCASS codes (STAR 3xxxx, SSE main board 9xxxx), kept as printed.
    assert list(frame["code"]) == [
        "30001",
        "30002",
        "30003",
        "30005",
        "30006",
        "30007",
        "30008",
        "30009",
        "30010",
        "90150",
        "90151",
        "90152",
        "90153",
        "90155",
        "90157",
        "90158",
        "95580",
        "95589",
        "95598",
        "95599",
    ]
    assert {col: str(dtype) for col, dtype in frame.dtypes.items()} == dict(SCHEMA)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("30001", ("30001", "SUZHOU HYC TECHNOLOGY CO.,LTD (A #688001)", 1_620_038, 0.36)),
        ("30008", ("30008", "MONTAGE TECHNOLOGY CO., LTD. (A #688008)", 146_393_531, 12.76)),
        (
            "30009",
            (
                "30009",
                "CHINA RAILWAY SIGNAL & COMMUNICATION CORPORATION LIMITED (A #688009)",
                101_483_244,
                1.17,
            ),
        ),
        ("90152", ("90152", "VEKEN TECHNOLOGY.,LTD. (A #600152)", 2_813, 0.0)),
        ("90157", ("90157", "WINTIME ENERGY GROUP CO.,LTD. (A #600157)", 263_094_788, 1.2)),
        ("95599", ("95599", "BEIJING CAISHIKOU DEPARTMENT STORE CO., LTD. (A #605599)", 16_809_862, 2.16)),
    ],
)
def test_2026_page_known_rows(page_2026: bytes, code: str, expected: tuple) -> None:
    assert _row(parse(page_2026), code) == expected


def test_layout_of_the_2019_form(real_bytes: bytes) -> None:
    assert parse(real_bytes).attrs["layout"] == LAYOUT_2019
    assert parse(ENGLISH.read_bytes()).attrs["layout"] == LAYOUT_2019


@pytest.mark.parametrize(
    "drop",
    [
        # Any one marker of the 2026 form is enough to recognise it.
        (
            b'<input type="hidden" name="__EVENTTARGET" id="__EVENTTARGET" value="" />',
            b'<input type="hidden" name="originalShareholdingDate" id="originalShareholdingDate" value="2026/06/15" />',
        ),
        (
            b'<input type="hidden" name="__EVENTTARGET" id="__EVENTTARGET" value="" />',
            b'href="javascript:__doPostBack(&#39;btnSearch&#39;,&#39;&#39;)"',
        ),
    ],
)
def test_layout_2026_from_any_marker(page_2026: bytes, drop: tuple[bytes, ...]) -> None:
    for part in drop:
        assert page_2026.count(part) == 1
        page_2026 = page_2026.replace(part, b"")
    assert parse(page_2026).attrs["layout"] == LAYOUT_2026


def test_unknown_form_parses_without_layout(page_2026: bytes) -> None:
    # The rows are still that date's table; only post_fields needs to know the form.
    data = _without_2026_markers(page_2026)
    frame = parse(data)
    assert len(frame) == 20 and "layout" not in frame.attrs
    with pytest.raises(MalformedFile, match="no known search form") as caught:
        post_fields(data, date(2025, 12, 31))
    assert caught.value.found is not None and "__VIEWSTATE" in caught.value.found


def _without_2026_markers(data: bytes) -> bytes:
    for part in (
        b'<input type="hidden" name="__EVENTTARGET" id="__EVENTTARGET" value="" />',
        b'<input type="hidden" name="originalShareholdingDate" id="originalShareholdingDate" value="2026/06/15" />',
        b'href="javascript:__doPostBack(&#39;btnSearch&#39;,&#39;&#39;)"',
    ):
        assert data.count(part) == 1
        data = data.replace(part, b"")
    return data


def test_form_fields_2026_page(page_2026: bytes) -> None:
    assert form_fields(page_2026) == {
        "__EVENTTARGET": "",
        "__EVENTARGUMENT": "",
        "__VIEWSTATE": "/wEPDwUJLTQ2NTUyMDE3ZGQUwMD1imVVBVXoZJk+zW63eCMKzQ==",
        "__VIEWSTATEGENERATOR": "3C67932C",
        "today": "20260616",
        "sortBy": "stockcode",
        "sortDirection": "asc",
        "originalShareholdingDate": "2026/06/15",
        "alertMsg": "",
    }


def test_post_fields_2026_page_posts_back_through_event_target(page_2026: bytes) -> None:
    fields = post_fields(page_2026, date(2025, 12, 31))
    assert fields == {
        "__EVENTTARGET": "btnSearch",
        "__EVENTARGUMENT": "",
        "__VIEWSTATE": "/wEPDwUJLTQ2NTUyMDE3ZGQUwMD1imVVBVXoZJk+zW63eCMKzQ==",
        "__VIEWSTATEGENERATOR": "3C67932C",
        "today": "20260616",
        "sortBy": "stockcode",
        "sortDirection": "asc",
        "originalShareholdingDate": "2026/06/15",
        "alertMsg": "",
        "txtShareholdingDate": "2025/12/31",
    }
    # The search control is a __doPostBack link: no btnSearch field, and no invented __EVENTVALIDATION.
    assert "btnSearch" not in fields and "__EVENTVALIDATION" not in fields


def test_post_fields_2019_form_has_no_event_target(real_bytes: bytes) -> None:
    fields = post_fields(real_bytes, date(2019, 1, 4))
    assert (fields["btnSearch"], "__EVENTVALIDATION" in fields) == ("Search", True)
    assert not {"__EVENTTARGET", "__EVENTARGUMENT", "originalShareholdingDate"} & set(fields)


def test_form_fields_without_viewstate() -> None:
    with pytest.raises(MalformedFile, match="__VIEWSTATE"):
        form_fields(b"<html><body><form><input type='hidden' name='x' value='1'/></form></body></html>")


# --- broken pages -------------------------------------------------------------------------------------------


def _text(data: bytes) -> str:
    return data.decode("utf-8")


def test_empty_file() -> None:
    with pytest.raises(MalformedFile):
        parse(b"")


def test_error_page() -> None:
    page = (
        b"<html><head><title>404 - File or directory not found.</title></head><body>Not found</body></html>"
    )
    with pytest.raises(MalformedFile, match="error page"):
        parse(page)


def test_search_form_only(real_bytes: bytes) -> None:
    text = _text(real_bytes)
    start, end = text.index('<div id="pnlResult">'), text.index("</table>", text.index(TABLE_MARK)) + 8
    with pytest.raises(MalformedFile, match="no result table"):
        parse((text[:start] + text[end:]).encode("utf-8"))


def test_truncated_mid_row(real_bytes: bytes) -> None:
    text = _text(real_bytes)
    cut = text.index('<td class="col-shareholding">', len(text) // 2)
    with pytest.raises(MalformedFile, match="not closed"):
        parse(text[:cut].encode("utf-8"))


def test_truncated_at_row_boundary(real_bytes: bytes) -> None:
    # lxml closes the table silently; only the missing </table> shows the page was cut.
    text = _text(real_bytes)
    cut = text.index("</tr>", len(text) // 2) + len("</tr>")
    with pytest.raises(MalformedFile, match="not closed"):
        parse(text[:cut].encode("utf-8"))


def test_truncated_inside_last_cell(real_bytes: bytes) -> None:
    text = _text(real_bytes)
    cut = text.rindex("15.85") + 2  # "15", of HUATAI's last-but-one row
    with pytest.raises(MalformedFile):
        parse(text[:cut].encode("utf-8"))


def test_changed_column_class(real_bytes: bytes) -> None:
    data = real_bytes.replace(b'<td class="col-shareholding-percent">', b'<td class="col-holding-pct">')
    with pytest.raises(MalformedFile, match="expected"):
        parse(data)


def test_dropped_column(real_bytes: bytes) -> None:
    text = re.sub(r'<td class="col-shareholding-percent">.*?</td>', "", _text(real_bytes), flags=re.S)
    with pytest.raises(MalformedFile, match="has cells"):
        parse(text.encode("utf-8"))


def test_cell_without_body_div(real_bytes: bytes) -> None:
    data = real_bytes.replace(b'<div class="mobile-list-body">  700</div>', b"  700")
    with pytest.raises(MalformedFile, match="mobile-list-body"):
        parse(data)


def test_zero_rows(real_bytes: bytes) -> None:
    text = re.sub(r"<tbody>.*</tbody>", "<tbody>\r\n</tbody>", _text(real_bytes), flags=re.S)
    with pytest.raises(MalformedFile, match="no rows"):
        parse(text.encode("utf-8"))


def test_missing_date_heading(real_bytes: bytes) -> None:
    data = real_bytes.replace("持股日期: 2019/01/25".encode(), "持股日期: ".encode())
    with pytest.raises(MalformedFile, match="Shareholding Date"):
        parse(data)


def test_bad_number(real_bytes: bytes) -> None:
    data = real_bytes.replace(b">120,214,498<", b">120,214,49x<")
    with pytest.raises(MalformedFile, match="not a number"):
        parse(data)
