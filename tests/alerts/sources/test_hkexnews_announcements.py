"""hkexnews-announcements: the real title search response (TENCENT, Aug–Sep 2026), a real one-day excerpt, a
constructed market-wide day, and broken responses."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import pandas as pd
import pytest

from alerts.errors import MalformedFile
from alerts.sources.hkexnews_announcements import (
    SCHEMA,
    SOURCE,
    categorise,
    parse,
    parse_response,
    paths,
)
from tests.support.paths import FIXTURES as _FIXTURES

FIXTURES = _FIXTURES / "hkexnews-announcements"
REAL = FIXTURES / "titleSearchServlet_00700_20260801-20260910.json"
EXCERPT = FIXTURES / "titleSearchServlet_20260825_excerpt.json"
DAY = FIXTURES / "titleSearchServlet_20260909_constructed.json"
EMPTY = FIXTURES / "titleSearchServlet_empty_constructed.json"


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    return parse_response(REAL.read_bytes())


def test_real_file_is_the_upstream_capture() -> None:
    data = REAL.read_bytes()
    assert len(data) == 13_587
    assert (
        hashlib.sha256(data).hexdigest() == "f108ff965f05d91060a68d9a833fb90c0424b3cf8bf79442441129eacdf753cc"
    )


def test_real_response_one_row_per_code_and_reconciled(real: pd.DataFrame) -> None:
    # 24 filings, each for the HKD and the RMB counter: 48 rows; the servlet's own count agrees.
    assert len(real) == 48
    assert real.attrs["reconciled"] == {"announcements": (24.0, 24.0)}
    assert real.attrs["has_next_row"] is False
    assert set(real["code"]) == {"00700", "80700"}
    assert set(real[real["code"] == "80700"]["name"]) == {"TENCENT-R"}
    assert real["news_id"].nunique() == 24


def test_real_response_first_row_exact(real: pd.DataFrame) -> None:
    first = real.iloc[0]
    assert first["news_id"] == "12326095"
    assert first["released_at"] == pd.Timestamp("2026-09-09 17:27", tz="Asia/Hong_Kong")
    assert str(real["released_at"].dtype) == "datetime64[ns, Asia/Hong_Kong]"
    assert first["date"] == pd.Timestamp("2026-09-09")
    assert first["title"] == "Next Day Disclosure Return - Changes in issued shares and share buybacks"
    # "&#x2f;" unescaped
    assert first["headline"] == "Next Day Disclosure Returns - [Others / Share Buyback]"
    assert first["category"] == "next_day_disclosure"
    assert first["category_code"] == "50000"
    assert first["url"] == "https://www1.hkexnews.hk/listedco/listconews/sehk/2026/0909/2026090900576.pdf"


def test_real_response_categories(real: pd.DataFrame) -> None:
    by_id = real.drop_duplicates("news_id").set_index("news_id")["category"]
    assert by_id["12292377"] == "next_day_disclosure"  # "[Share Buyback]"
    assert by_id["12282778"] == "other"  # "Next Day Disclosure Returns - [Others]": share issues only
    assert by_id["12320487"] == "other"  # Monthly Returns
    assert by_id["12297761"] == "other"  # interim report
    assert by_id["12285357"] == "other"  # share scheme
    assert (by_id == "next_day_disclosure").sum() == 18


def test_one_date_excerpt_parses_with_its_date() -> None:
    frame = SOURCE.parse(EXCERPT.read_bytes())
    assert frame.attrs["file_date"] == date(2026, 8, 25)
    assert list(frame["news_id"].drop_duplicates()) == ["12298066", "12297761"]
    assert frame.iloc[2]["headline"] == "Financial Statements/ESG Information - [Interim/Half-Year Report]"
    assert list(frame.columns) == list(SCHEMA)


def test_multi_date_answer_is_not_a_day() -> None:
    # The source asks for one date: rows of many dates mean the date range was ignored.
    with pytest.raises(MalformedFile, match="released on 21 dates"):
        parse(REAL.read_bytes())


def test_constructed_day_categories() -> None:
    frame = parse(DAY.read_bytes())
    assert frame.attrs["file_date"] == date(2026, 9, 9)
    got = dict(zip(frame["news_id"] + ":" + frame["code"], frame["category"], strict=True))
    assert got == {
        "12330001:01234": "placing",
        "12330002:08123": "rights_issue",
        "12330003:02345": "open_offer",
        "12330004:03456": "convertible",
        "12330005:04567": "consolidation",
        "12330006:05678": "repurchase_mandate",
        "12326095:00700": "next_day_disclosure",
        "12326095:80700": "next_day_disclosure",
        "12330007:06789": "high_concentration",
        "12330008:00005": "other",
        "12330009:07890": "other",  # a circular: follow-up of an announcement
    }


def test_empty_answer_is_an_empty_frame() -> None:
    frame = parse(EMPTY.read_bytes())
    assert len(frame) == 0
    assert list(frame.columns) == list(SCHEMA)
    assert frame.attrs["file_date"] is None


@pytest.mark.parametrize(
    ("headline", "title", "category"),
    [
        ("Announcements and Notices - [Placing / Issue of Shares under a General Mandate]", "X", "placing"),
        ("Announcements and Notices - [Connected Transaction / Rights Issue]", "X", "rights_issue"),
        ("Listing Documents - [Rights Issue]", "PROSPECTUS", "other"),
        ("Next Day Disclosure Returns - [Share Buyback]", "X", "next_day_disclosure"),
        ("Next Day Disclosure Returns - [Others]", "X", "other"),
        ("Monthly Returns", "X", "other"),
        (
            "Announcements and Notices - [Other - Miscellaneous]",
            "HIGH CONCENTRATION OF SHAREHOLDING",
            "high_concentration",
        ),
        ("", "", "other"),
    ],
)
def test_categorise(headline: str, title: str, category: str) -> None:
    assert categorise(headline, title) == category


def test_paths_one_request_per_date() -> None:
    (path,) = paths(date(2026, 9, 9))
    assert path.startswith("/search/titleSearchServlet.do?")
    assert "from=20260909&to=20260909" in path and "stockId=-1" in path and "t1code=-2" in path


# ---- broken responses -----------------------------------------------------------------------------------------


def _outer(data: bytes) -> dict:
    return json.loads(data)


def test_truncated_response() -> None:
    data = DAY.read_bytes()
    with pytest.raises(MalformedFile, match="not well-formed JSON"):
        parse(data[: len(data) // 2])


def test_error_page_served_with_200() -> None:
    page = b"<!DOCTYPE html><html><head><title>Service Unavailable</title></head><body>busy</body></html>"
    with pytest.raises(MalformedFile, match="error page"):
        parse(page)
    with pytest.raises(MalformedFile, match="not a JSON object"):
        parse(b"<html><body>Please enable JavaScript</body></html>")


def test_empty_body() -> None:
    with pytest.raises(MalformedFile, match="empty response"):
        parse(b"")


def test_changed_header_outer_keys() -> None:
    outer = _outer(DAY.read_bytes())
    outer["rows"] = outer.pop("result")
    with pytest.raises(MalformedFile, match="lacks") as caught:
        parse(json.dumps(outer).encode())
    assert "result" in (caught.value.expected or ())


def test_changed_header_row_keys() -> None:
    outer = _outer(DAY.read_bytes())
    rows = json.loads(outer["result"])
    rows[0]["RELEASE_TIME"] = rows[0].pop("DATE_TIME")
    outer["result"] = json.dumps(rows)
    with pytest.raises(MalformedFile, match="row 1 lacks"):
        parse(json.dumps(outer).encode())


def test_null_result_with_a_count_is_malformed() -> None:
    outer = _outer(DAY.read_bytes())
    outer["result"] = None
    with pytest.raises(MalformedFile, match="result is null"):
        parse(json.dumps(outer).encode())


def test_rows_cut_from_result_do_not_reconcile() -> None:
    outer = _outer(DAY.read_bytes())
    outer["result"] = json.dumps(json.loads(outer["result"])[:-1])
    with pytest.raises(MalformedFile, match="loadedRecord says 10"):
        parse(json.dumps(outer).encode())


def test_held_back_rows_are_recorded() -> None:
    outer = _outer(DAY.read_bytes())
    outer["recordCnt"], outer["hasNextRow"] = 4000, True
    frame = parse(json.dumps(outer).encode())
    assert frame.attrs["reconciled"] == {"announcements": (10.0, 4000.0)}
    assert frame.attrs["has_next_row"] is True
    outer["hasNextRow"] = False  # more counted than loaded, yet "no next row": the answer contradicts itself
    with pytest.raises(MalformedFile, match="recordCnt 4000"):
        parse(json.dumps(outer).encode())


def test_bad_date_time() -> None:
    outer = _outer(DAY.read_bytes())
    rows = json.loads(outer["result"])
    rows[0]["DATE_TIME"] = "2026-09-09 22:48"
    outer["result"] = json.dumps(rows)
    with pytest.raises(MalformedFile, match="DATE_TIME"):
        parse(json.dumps(outer).encode())
