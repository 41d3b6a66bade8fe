"""hsi-index-reviews over HTTP: the notices catalogue, then the day's review workbook, from the local origin at the
real paths, through the live cycle to an eligibility_change alert for a watched stock."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from redis.asyncio import Redis

from alerts.calendar import HK_TZ
from alerts.errors import MalformedFile, NotPublishedYet
from alerts.fetch import make_client
from alerts.hsi import fetch_reviews_day, host_path
from alerts.ingest import DAY_FETCHERS, ingest
from alerts.pipeline import is_done, run_cycle
from alerts.sources import get_source
from alerts.sources.hsi_index_reviews import CATALOGUE_PATH, DAY_KIND, NAME
from alerts.store.alertlog import AlertLog
from alerts.store.frames import FrameStore
from alerts.store.outbox import Outbox
from alerts.store.subscriptions import SubscriptionStore
from config.settings import Settings
from tests.support.origin import Origin
from tests.support.paths import fixture_bytes
from tests.support.workbook import RESULT_ROWS, SUMMARY_ROWS, review_workbook

DAY = date(2026, 5, 22)
NOW = datetime(2026, 5, 22, 17, 50, tzinfo=HK_TZ)
WORKBOOK = "/static/uploads/contents/en/news/indexChgNotice/20260522T174510.xlsx"
CHAT = 42


@pytest.fixture
def served(origin: Origin) -> Origin:
    origin.add(CATALOGUE_PATH, fixture_bytes("hsi-index-reviews", "notices.json"))
    origin.add(WORKBOOK, fixture_bytes("hsi-index-reviews", "20260522T174510.xlsx"))
    return origin


def test_the_kind_is_registered() -> None:
    assert get_source(NAME).fetch_day == DAY_KIND and DAY_KIND in DAY_FETCHERS


def test_host_path() -> None:
    assert host_path("https://www.hsi.com.hk/static/a.xlsx?x=1") == "/static/a.xlsx?x=1"
    assert host_path("/static/a.xlsx") == "/static/a.xlsx" and host_path("static/a.xlsx") == "/static/a.xlsx"


async def test_day_fetch_reads_the_catalogue_then_the_workbook(served: Origin, settings: Settings) -> None:
    async with make_client() as client:
        frame = await fetch_reviews_day(client, settings.hsi_url, DAY, backoff=0.01)
    assert [r.path for r in served.requests] == [CATALOGUE_PATH, WORKBOOK]
    assert len(frame) == 12 and frame.attrs["file_date"] == DAY
    assert frame.attrs["workbooks"] == [WORKBOOK] and frame.attrs["skipped"] == []
    row = frame[(frame["index"] == "HSCEI") & (frame["code"] == "02015")].iloc[0]
    assert (row["change"], row["announced"].date(), row["effective"].date(), row["document"]) == (
        "add",
        DAY,
        date(2026, 6, 8),
        WORKBOOK,
    )


async def test_a_day_without_a_review_is_not_published(served: Origin, settings: Settings) -> None:
    async with make_client() as client:
        with pytest.raises(NotPublishedYet, match="no index review workbook"):
            await fetch_reviews_day(client, settings.hsi_url, date(2026, 5, 26), backoff=0.01)
    assert [r.path for r in served.requests] == [CATALOGUE_PATH]


async def test_an_appendix_workbook_is_skipped(served: Origin, settings: Settings) -> None:
    appendix = "/static/uploads/contents/en/news/indexChgNotice/20260522T174520.xlsx"
    catalogue = served.routes[CATALOGUE_PATH]
    catalogue.body = catalogue.body.replace(
        b'"contentList": [\n    {\n      "resourcesList": [',
        b'"contentList": [\n    {\n      "resourcesList": [{"title": "Appendix", "url": "'
        + appendix.encode()
        + b'", "lastUpdate": "2026-05-22 17:45:20"},',
    )
    served.add(appendix, review_workbook(sheets={"Appendix": [["Weightings"]]}))
    async with make_client() as client:
        frame = await fetch_reviews_day(client, settings.hsi_url, DAY, backoff=0.01)
    assert frame.attrs["skipped"] == [appendix] and len(frame) == 12
    served.routes[WORKBOOK].body = review_workbook(sheets={"Summary": SUMMARY_ROWS, "Results": RESULT_ROWS})
    async with make_client() as client:
        with pytest.raises(MalformedFile, match="none of the 2 workbook"):
            await fetch_reviews_day(client, settings.hsi_url, DAY, backoff=0.01)


async def test_a_broken_workbook_stores_nothing(served: Origin, settings: Settings, redis: Redis) -> None:
    served.routes[WORKBOOK].body = fixture_bytes("hsi-index-reviews", "20260522T174510.xlsx")[:1500]
    store = FrameStore(redis)
    async with make_client() as client:
        with pytest.raises(MalformedFile) as info:
            await ingest(get_source(NAME), DAY, settings=settings, client=client, store=store, now=NOW)
    assert info.value.url == served.url + WORKBOOK
    assert await store.dates(NAME, "main", DAY, DAY) == []


async def test_cycle_alerts_a_watched_stock_added_to_hscei(
    served: Origin, settings: Settings, redis: Redis
) -> None:
    subs = SubscriptionStore(redis)
    await subs.touch(CHAT)
    await subs.watch(CHAT, ["02015"])
    async with make_client() as client:
        first = await run_cycle(
            NAME, DAY, settings=settings, client=client, redis=redis, now=NOW, backoff=0.01
        )
        assert first.status == "processed" and first.rows == 12
        assert first.lag_s == pytest.approx(5 * 60)  # the schedule expects reviews from 17:45 HKT
        (item,) = await Outbox(redis).claim(NOW, 10)
        assert [(a["rule"], a["code"]) for a in item.alerts] == [("eligibility_change", "02015")]
        assert await is_done(redis, NAME, DAY)
        logged = {(a.code, a.identity) for a in await AlertLog(redis).for_day(DAY)}
        assert ("02015", "index_added:HSCEI") in logged and ("01044", "index_removed:HSI") in logged
        (alert,) = [a for a in await AlertLog(redis).for_day(DAY) if a.identity == "index_added:HSCEI"]
        assert {f.name: f.value for f in alert.facts} == {
            "event": "index_added",
            "index": "HSCEI",
            "effective": "2026-06-08",
            "announced": "2026-05-22",
        }
        assert "Southbound Stock Connect" in alert.why
        second = await run_cycle(
            NAME, DAY, settings=settings, client=client, redis=redis, now=NOW, backoff=0.01
        )
    assert second.status == "unchanged" and second.enqueued == 0


async def test_cycle_on_a_day_without_a_review_is_quietly_not_published(
    served: Origin, settings: Settings, redis: Redis
) -> None:
    async with make_client() as client:
        report = await run_cycle(
            NAME, date(2026, 5, 26), settings=settings, client=client, redis=redis, now=NOW, backoff=0.01
        )
    assert report.status == "not_published" and report.alerts == 0
