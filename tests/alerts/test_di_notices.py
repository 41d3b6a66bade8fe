"""The per-stock notice list over real HTTP (local origin): paging, the sid lookup, merging into the hkex-di frames.

Served pages are the real 00700 search result and notice list (tests/fixtures/hkex-di/disclosure-of-interests-00700.json)
or built from them, as labelled.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

import pandas as pd
import pytest
from redis.asyncio import Redis

from alerts.calendar import HK_TZ
from alerts.di_notices import (
    SEARCH_DAYS,
    WatchedIngest,
    fetch_notice_list,
    ingest_watched,
    lookup_sid,
    watched_codes,
)
from alerts.errors import MalformedFile
from alerts.fetch import make_client
from alerts.sources.hkex_di import (
    SCHEMA,
    corp_search_path,
    notice_list_path,
    parse_corp_search,
    parse_notice_list,
)
from alerts.store import keys
from alerts.store.frames import FrameStore
from alerts.store.subscriptions import SubscriptionStore
from config.settings import Settings
from tests.alerts.sources.test_hkex_di import REAL_00700, real_page
from tests.support.origin import Origin

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
    text = text[: text.index(found[0])] + "".join(kept) + text[text.index(found[-1]) + len(found[-1]) :]
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
    assert frame.attrs == {
        "file_date": date(2026, 9, 10),
        "layout": "ns-all-form-list",
        "total_records": 21,
        "complete": True,
    }
    sale = frame[frame["serial"] == "DA20260415E00531"].iloc[0]
    assert (sale["holder"], sale["direction"], sale["shares"], sale["avg_price"], sale["shares_after"]) == (
        "Yang Siu Shun",
        "sell",
        5_000,
        503.0,
        63_494,
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
    other = real_page("di_form_list").replace(
        '<span id="lblSCStockCode">00700</span>', '<span id="lblSCStockCode">00388</span>'
    )
    origin.add(path(1), other.encode("utf-8"))
    with pytest.raises(MalformedFile, match="page 1 is for 00388, not 00700"):
        await fetch_all(settings)


# ---- the corporation search (sid lookup) and ingest_watched ------------------------------------------------------
NOW = datetime(2026, 9, 10, 18, 0, tzinfo=HK_TZ)
UNKNOWN = "09999"


def search_path(code: str) -> str:
    """Where lookup_sid asks for `code` at NOW."""
    end = NOW.date()
    return corp_search_path(code, end - timedelta(days=SEARCH_DAYS), end)


def no_result_page() -> bytes:
    """Constructed from the real search page: its one result row removed and "Total records" 0, as for a code DION
    does not know (no real no-result page is held)."""
    text = real_page("di_corp_list")
    start = text.index("</tr><tr>", text.index('id="grdPaging"')) + len("</tr>")
    stop = text.index("</table>", start)
    text = text[:start] + text[stop:]
    text = text.replace("Displayed: 1 - 1", "Displayed: 0 - 0")
    return text.replace('<span id="lblRecCount">1</span>', '<span id="lblRecCount">0</span>').encode("utf-8")


def serve_00700(origin: Origin) -> None:
    origin.add(search_path(CODE), real_page("di_corp_list").encode("utf-8"), content_type="text/html")
    origin.add(path(1), real_page("di_form_list").encode("utf-8"), content_type="text/html; charset=utf-8")


async def run_ingest(codes: list[str], settings: Settings, redis: Redis) -> WatchedIngest:
    async with make_client() as client:
        return await ingest_watched(
            codes,
            settings=settings,
            client=client,
            store=FrameStore(redis),
            redis=redis,
            start=START,
            end=END,
            now=NOW,
        )


async def stored_serials(redis: Redis) -> dict[date, list[str]]:
    store = FrameStore(redis)
    out: dict[date, list[str]] = {}
    for day in await store.dates("hkex-di"):
        frame = await store.get("hkex-di", "main", day, SCHEMA)
        assert frame is not None
        out[day] = list(frame["serial"])
    return out


def test_corp_search_path_is_the_captured_url() -> None:
    capture = json.loads(REAL_00700.read_text(encoding="utf-8"))
    (document,) = [doc for doc in capture["documents"] if doc["role"] == "di_corp_list"]
    url = urlsplit(document["url"])
    assert corp_search_path("700", date(2026, 1, 1), date(2026, 9, 10)) == f"{url.path}?{url.query}"


def test_parse_corp_search_real_page() -> None:
    assert parse_corp_search(real_page("di_corp_list").encode("utf-8")) == ("6893", "Tencent Holdings Ltd.")


def test_parse_corp_search_without_the_link() -> None:
    with pytest.raises(MalformedFile, match="no 'List of all notices' link"):
        parse_corp_search(no_result_page())
    with pytest.raises(
        MalformedFile, match="no 'List of all notices' link"
    ):  # the real notice list: pager links only
        parse_corp_search(real_page("di_form_list").encode("utf-8"))


async def test_lookup_sid_is_cached(origin: Origin, settings: Settings, redis: Redis) -> None:
    serve_00700(origin)
    async with make_client() as client:
        first = await lookup_sid(client, settings.hkex_di_url, "700", redis, NOW)
        second = await lookup_sid(client, settings.hkex_di_url, "00700", redis, NOW)
    assert first == second == (SID, CORP)
    assert [request.path for request in origin.requests] == [search_path(CODE)]
    assert 0 < await redis.ttl(keys.di_corp(CODE)) <= keys.DI_CORP_TTL_SECONDS


async def test_ingest_watched_merges_by_filing_day(origin: Origin, settings: Settings, redis: Redis) -> None:
    serve_00700(origin)
    notices = parse_notice_list(real_page("di_form_list").encode("utf-8"))
    # A daily summary already stored for 15/04/2026: the sale notice as the summary gives it (with the "Previous"
    # holding the list lacks) and another stock's notice. Constructed from the real row; 68,494 is the real previous
    # notice's holding (DA20260330E00364).
    summary = notices[notices["serial"] == "DA20260415E00531"].copy()
    summary["shares_before"] = pd.array([68_494], dtype="Int64")
    other = summary.copy()
    other[["serial", "code", "name"]] = ["CS20260415E00001", "00388", "Hong Kong Exchanges and Clearing Ltd."]
    await FrameStore(redis).put(
        "hkex-di", {"main": pd.concat([summary, other], ignore_index=True)}, date(2026, 4, 15)
    )

    report = await run_ingest([CODE], settings, redis)

    assert report == {CODE: 20} and report.failed == {}
    stored = await stored_serials(redis)
    by_day = notices.groupby(notices["filed_date"].dt.date)["serial"].apply(list).to_dict()
    assert set(stored) == set(by_day)
    assert stored[date(2026, 4, 15)] == ["DA20260415E00531", "CS20260415E00001"]  # kept once, summary first
    assert stored[date(2026, 3, 18)] == by_day[date(2026, 3, 18)]
    day = await FrameStore(redis).get("hkex-di", "main", date(2026, 4, 15), SCHEMA)
    assert day is not None and day["shares_before"].iloc[0] == 68_494  # the summary's row won
    assert sum(len(serials) for serials in stored.values()) == 22


async def test_unknown_code_fails_alone(origin: Origin, settings: Settings, redis: Redis) -> None:
    serve_00700(origin)
    origin.add(search_path(UNKNOWN), no_result_page(), content_type="text/html")
    report = await run_ingest([UNKNOWN, "700"], settings, redis)
    assert report == {CODE: 21}
    failed = report.failed
    assert list(failed) == [UNKNOWN] and isinstance(failed[UNKNOWN], MalformedFile)
    assert failed[UNKNOWN].url == settings.hkex_di_url + search_path(UNKNOWN)
    assert await redis.exists(keys.di_corp(UNKNOWN)) == 0


async def test_failed_notice_list_stores_nothing(origin: Origin, settings: Settings, redis: Redis) -> None:
    # Page 1 says 21 records but shows 11; page 2 is not served (404): the code fails whole.
    origin.add(search_path(CODE), real_page("di_corp_list").encode("utf-8"), content_type="text/html")
    origin.add(path(1), page_of(slice(0, 11), 1))
    report = await run_ingest([CODE], settings, redis)
    assert report == {} and list(report.failed) == [CODE]
    assert await FrameStore(redis).dates("hkex-di") == []


async def test_second_run_adds_nothing(origin: Origin, settings: Settings, redis: Redis) -> None:
    serve_00700(origin)
    assert await run_ingest([CODE], settings, redis) == {CODE: 21}
    before = await stored_serials(redis)
    blobs = {day: await redis.get(keys.frame("hkex-di", "main", day)) for day in before}
    origin.requests.clear()
    assert await run_ingest([CODE], settings, redis) == {CODE: 0}
    assert [request.path for request in origin.requests] == [path(1)]  # the sid came from the cache
    assert {day: await redis.get(keys.frame("hkex-di", "main", day)) for day in before} == blobs


async def test_watched_codes(redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    await subs.watch(1, ["00700", "AAPL"])
    await subs.watch(2, ["00700", "01810"])
    await subs.unwatch(2, ["01810"])
    assert await watched_codes(redis) == ["00700"]
