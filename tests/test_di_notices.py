"""fetch_notice_list over real HTTP: the real 00700 notice list, split over two pages, served by the local origin."""

from __future__ import annotations

import re
from datetime import date

import pandas as pd
import pytest

from alerts.di_notices import fetch_notice_list
from alerts.errors import MalformedFile
from alerts.fetch import make_client
from alerts.sources.hkex_di import notice_list_path, parse_notice_list
from config.settings import Settings
from tests.origin import Origin
from tests.test_parse_hkex_di import real_page

CODE, SID, CORP = "00700", "6893", "Tencent Holdings Ltd."
START, END = date(2026, 1, 1), date(2026, 9, 10)
_ROW_RE = re.compile(r"<tr>\s*<td class=\"tbCell\".*?</tr>", re.S)


def path(page: int) -> str:
    return notice_list_path(CODE, SID, CORP, START, END, page)


def page_of(rows: slice, first: int, total: int = 21) -> bytes:
    """The real page keeping only `rows` of its 21 notice rows, its footer saying "Displayed: first - …" of `total`.

    Constructed from the real page: DION's page size is not known, so the one real page is cut in two.
    """
    text = real_page("di_form_list")
    found = _ROW_RE.findall(text)
    assert len(found) == 21
    kept = found[rows]
    text = text[: text.index(found[0])] + "".join(kept) + text[text.index(found[-1]) + len(found[-1]):]
    text = text.replace("Displayed: 1 - 21", f"Displayed: {first} - {first + len(kept) - 1}")
    text = text.replace('<span id="lblRecCount">21</span>', f'<span id="lblRecCount">{total}</span>')
    return text.encode("utf-8")


async def fetch_all(settings: Settings, **kwargs: int) -> pd.DataFrame:
    async with make_client() as client:
        return await fetch_notice_list(client, settings.hkex_di_url, "700", SID, CORP, START, END, **kwargs)


async def test_two_pages(origin: Origin, settings: Settings) -> None:
    origin.add(path(1), page_of(slice(0, 11), 1), content_type="text/html; charset=utf-8")
    origin.add(path(2), page_of(slice(11, 21), 12), content_type="text/html; charset=utf-8")
    frame = await fetch_all(settings)
    assert [request.path for request in origin.requests] == [path(1), path(2)]
    whole = parse_notice_list(real_page("di_form_list").encode("utf-8"))
    pd.testing.assert_frame_equal(frame, whole)
    assert frame.attrs == {"file_date": date(2026, 9, 10), "layout": "ns-all-form-list", "total_records": 21,
                           "complete": True}
    sale = frame[frame["serial"] == "DA20260415E00531"].iloc[0]
    assert (sale["holder"], sale["direction"], sale["shares"], sale["avg_price"], sale["shares_after"]) == (
        "Yang Siu Shun", "sell", 5_000, 503.0, 63_494,
    )


async def test_one_page_is_enough(origin: Origin, settings: Settings) -> None:
    origin.add(path(1), real_page("di_form_list").encode("utf-8"))
    frame = await fetch_all(settings)
    assert len(frame) == 21 and len(origin.requests) == 1


async def test_a_notice_pushed_onto_the_next_page_is_kept_once(origin: Origin, settings: Settings) -> None:
    # A filing lands between the two requests: page 2 now starts with page 1's last row and the total is 22.
    origin.add(path(1), page_of(slice(0, 11), 1))
    origin.add(path(2), page_of(slice(10, 21), 11, total=22))
    frame = await fetch_all(settings)
    assert len(frame) == 21 and frame["serial"].is_unique
    assert frame.attrs["total_records"] == 22 and frame.attrs["complete"] is True


async def test_page_cap(origin: Origin, settings: Settings) -> None:
    origin.add(path(1), page_of(slice(0, 11), 1))
    frame = await fetch_all(settings, max_pages=1)
    assert len(frame) == 11 and frame.attrs["complete"] is False
    assert [request.path for request in origin.requests] == [path(1)]


async def test_not_the_notice_list(origin: Origin, settings: Settings) -> None:
    origin.add(path(1), real_page("di_corp_list").encode("utf-8"))  # the real search page, not the list
    with pytest.raises(MalformedFile, match="Form Serial Number") as caught:
        await fetch_all(settings)
    assert caught.value.url == settings.hkex_di_url + path(1)
    assert caught.value.source == "hkex-di"


async def test_empty_page_before_the_total(origin: Origin, settings: Settings) -> None:
    origin.add(path(1), page_of(slice(0, 11), 1))
    origin.add(path(2), page_of(slice(0, 0), 12))
    with pytest.raises(MalformedFile, match="page 2 is empty after 11 of 21 records"):
        await fetch_all(settings)


async def test_page_for_another_stock(origin: Origin, settings: Settings) -> None:
    other = real_page("di_form_list").replace('<span id="lblSCStockCode">00700</span>',
                                              '<span id="lblSCStockCode">00388</span>')
    origin.add(path(1), other.encode("utf-8"))
    with pytest.raises(MalformedFile, match="page 1 is for 00388, not 00700"):
        await fetch_all(settings)
