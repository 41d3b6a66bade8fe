"""hsi-index-reviews: the review workbook and the notices catalogue (constructed layouts, see the fixture README)."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date

import pandas as pd
import pytest

from alerts.errors import MalformedFile
from alerts.sources.hsi_index_reviews import (
    HEADER,
    SCHEMA,
    SOURCE,
    parse,
    parse_notices,
    parse_review,
    review_workbooks,
)
from alerts.sources.xlsx import read_sheet, sheet_parts
from tests.support.paths import fixture_bytes
from tests.support.workbook import RESULT_ROWS, SUMMARY_ROWS, review_workbook

WORKBOOK = fixture_bytes("hsi-index-reviews", "20260522T174510.xlsx")
CATALOGUE = fixture_bytes("hsi-index-reviews", "notices.json")
PATH = "/static/uploads/contents/en/news/indexChgNotice/20260522T174510.xlsx"


def test_fixture_is_the_builders_output() -> None:
    # The committed workbook is exactly what tests/support/workbook.py builds (README: constructed by it).
    assert review_workbook() == WORKBOOK


def test_workbook_exact_values() -> None:
    frame = parse(WORKBOOK)
    assert list(frame.columns) == list(SCHEMA)
    assert len(frame) == 12
    assert frame.iloc[:5][["index", "code", "name", "change"]].values.tolist() == [
        ["HSI", "09633", "HARBOUR DRINKS", "add"],
        ["HSI", "01044", "LANTAU CARE", "delete"],
        ["HSCEI", "02015", "KOWLOON AUTO-W", "add"],
        ["HSCEI", "01177", "PEAK PHARMA", "delete"],
        ["HSTECH", "06690", "VICTORIA HOME", "add"],
    ]
    assert (frame["effective"] == pd.Timestamp("2026-06-08")).all()
    assert frame["announced"].isna().all() and frame["document"].isna().all()
    # The constructed HSCI rows match the audit note's count for the 2026-06-08 review: 7 additions, 0 deletions.
    hsci = frame[frame["index"] == "HSCI"]
    assert (len(hsci), set(hsci["change"])) == (7, {"add"})
    assert frame.attrs == {"file_date": None, "layout": "review-result-2026"}


def test_parse_review_sets_the_announcement_and_document() -> None:
    frame = parse_review(WORKBOOK, date(2026, 5, 22), PATH)
    assert (frame["announced"] == pd.Timestamp("2026-05-22")).all() and (frame["document"] == PATH).all()
    assert frame.attrs["file_date"] == date(2026, 5, 22)


def test_inline_strings_read_as_shared_ones() -> None:
    inline = review_workbook(inline=True)
    assert b"sharedStrings" not in inline
    pd.testing.assert_frame_equal(parse(inline), parse(WORKBOOK))


def test_reader_places_cells_by_reference_and_keeps_empty_ones() -> None:
    data = review_workbook(summary=[["Note"], [None, None, "far"], ["Effective Date", None, "8 June 2026"]])
    rows = read_sheet(data, "Summary", "t")
    assert rows == [["Note"], [None, None, "far"], ["Effective Date", None, "8 June 2026"]]
    assert list(sheet_parts(data, "t")) == ["Summary", "Review Result"]
    assert (parse(data)["effective"] == pd.Timestamp("2026-06-08")).all()


@pytest.mark.parametrize("text", ["2026-06-08", "8 June 2026", "08/06/2026", "8 Jun 2026"])
def test_effective_date_as_text(text: str) -> None:
    data = review_workbook(summary=[["Effective Date", text]])
    assert parse(data)["effective"].iloc[0] == pd.Timestamp("2026-06-08")


def test_action_words_add_and_delete_are_accepted() -> None:
    result = [list(HEADER), ["HSI", "Add", 5, "A"], ["HSI", "Delete", 6, "B"]]
    assert parse(review_workbook(result=result))["change"].tolist() == ["add", "delete"]


# --- broken files ---------------------------------------------------------------------------------------------


def test_truncated_workbook() -> None:
    with pytest.raises(MalformedFile, match="truncated"):
        parse(WORKBOOK[: len(WORKBOOK) // 2])


def test_error_page_served_with_200() -> None:
    with pytest.raises(MalformedFile, match="HTML page"):
        parse(b"<!DOCTYPE html><html><head><title>404 Not Found</title></head></html>")


def test_empty_file() -> None:
    with pytest.raises(MalformedFile, match="not a zip"):
        parse(b"")


def test_zip_that_is_not_a_workbook() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(MalformedFile, match="not an .xlsx workbook"):
        parse(out.getvalue())


def test_missing_sheet_names_the_sheets_found() -> None:
    data = review_workbook(sheets={"Summary": SUMMARY_ROWS, "Results": RESULT_ROWS})
    with pytest.raises(MalformedFile) as info:
        parse(data)
    assert info.value.expected == ("Review Result",) and info.value.found == ("Summary", "Results")


def test_changed_header_carries_the_evidence() -> None:
    data = review_workbook(result=[["Index Code", "Change", "Stock Code", "Stock Name"], *RESULT_ROWS[1:]])
    with pytest.raises(MalformedFile) as info:
        parse(data)
    assert info.value.expected == HEADER
    assert info.value.found == ("Index Code", "Change", "Stock Code", "Stock Name")


def test_unknown_action_is_refused() -> None:
    with pytest.raises(MalformedFile, match="action 'Weight Change'"):
        parse(review_workbook(result=[list(HEADER), ["HSI", "Weight Change", 5, "A"]]))


def test_no_effective_date() -> None:
    with pytest.raises(MalformedFile, match="no 'Effective Date'"):
        parse(review_workbook(summary=[["Hang Seng Indexes"]]))


def test_empty_review_result_is_refused_unless_the_summary_says_no_changes() -> None:
    with pytest.raises(MalformedFile, match="header but no changes"):
        parse(review_workbook(result=[list(HEADER)]))
    quiet = review_workbook(summary=[*SUMMARY_ROWS, ["No constituent changes"]], result=[list(HEADER)])
    frame = parse(quiet)
    assert frame.empty and list(frame.columns) == list(SCHEMA)


def test_same_change_listed_twice() -> None:
    with pytest.raises(MalformedFile, match="listed twice"):
        parse(
            review_workbook(result=[list(HEADER), ["HSI", "Addition", 5, "A"], ["HSI", "Addition", 5, "A"]])
        )


def test_bad_stock_code_names_the_row() -> None:
    with pytest.raises(MalformedFile, match="row 2: stock code 'ABC'"):
        parse(review_workbook(result=[list(HEADER), ["HSI", "Addition", "ABC", "A"]]))


# --- the notices catalogue ------------------------------------------------------------------------------------


def test_catalogue_lists_the_day_s_review_workbook() -> None:
    notices = parse_notices(CATALOGUE)
    assert len(notices) == 5
    assert str(notices["published"].dtype) == "datetime64[ns, Asia/Hong_Kong]"
    assert review_workbooks(notices, date(2026, 5, 22)) == [PATH]
    assert review_workbooks(notices, date(2026, 7, 2)) == []  # a PDF notice, not a review workbook
    assert review_workbooks(notices, date(2026, 5, 26)) == []


def test_catalogue_date_falls_back_to_last_update() -> None:
    data = json.dumps(
        {
            "contentList": [
                {
                    "resourcesList": [
                        {
                            "title": "t",
                            "url": "/static/uploads/contents/en/news/indexChgNotice/r.xlsx",
                            "lastUpdate": "2026-08-21 17:45:05",
                        }
                    ]
                }
            ]
        }
    ).encode()
    assert review_workbooks(parse_notices(data), date(2026, 8, 21)) == [
        "/static/uploads/contents/en/news/indexChgNotice/r.xlsx"
    ]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty"),
        (b"<html><title>Access Denied</title></html>", "error page"),
        (b'{"contentList": [{"resourcesList": [{"title": "x"', "not JSON"),
        (b'{"content": []}', "no contentList"),
        (b'{"contentList": [{"items": []}]}', "no resourcesList"),
        (
            b'{"contentList": [{"resourcesList": [{"title": "x", "url": "/a.pdf"}]}]}',
            "no readable lastUpdate",
        ),
    ],
)
def test_broken_catalogue(data: bytes, match: str) -> None:
    with pytest.raises(MalformedFile, match=match):
        parse_notices(data)


def test_source_record() -> None:
    assert SOURCE.urls(date(2026, 5, 22)) == ("https://www.hsi.com.hk/data/eng/download/notices.json",)
    assert SOURCE.fetch_day == "hsi-notices" and SOURCE.feeds["index_reviews"].date_column == "announced"
