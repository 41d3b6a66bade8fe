"""hkexnews-announcements end to end: the title search over the local origin at its real path → the
corporate_finance_event alert in the outbox of the chat watching the stock; a re-poll sends nothing twice."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from redis.asyncio import Redis

from alerts.calendar import HK_TZ, is_session
from alerts.fetch import make_client
from alerts.pipeline import CycleReport, run_cycle
from alerts.sources import get_source
from alerts.store.outbox import Outbox
from alerts.store.subscriptions import SubscriptionStore
from config.settings import Settings
from tests.support.origin import Origin
from tests.support.paths import FIXTURES

SOURCE = "hkexnews-announcements"
DAY = date(2026, 9, 9)
SUNDAY = date(2026, 9, 13)
BODY = (FIXTURES / SOURCE / "titleSearchServlet_20260909_constructed.json").read_bytes()
WATCHER, OTHER = 42, 43


@pytest.fixture
async def watched(redis: Redis) -> Redis:
    subs = SubscriptionStore(redis)
    for chat, code in ((WATCHER, "01234"), (OTHER, "09999")):
        await subs.touch(chat)
        await subs.watch(chat, [code])
    return redis


async def _cycle(settings: Settings, redis: Redis, day: date, now: datetime) -> CycleReport:
    async with make_client() as client:
        return await run_cycle(
            SOURCE, day, settings=settings, client=client, redis=redis, now=now, backoff=0.01
        )


async def test_placing_reaches_the_watcher_once(settings: Settings, watched: Redis, origin: Origin) -> None:
    (path,) = get_source(SOURCE).paths(DAY)
    assert path.startswith("/search/titleSearchServlet.do?")
    origin.add(path, BODY, etag='"a1"')
    now = datetime(2026, 9, 9, 23, 0, tzinfo=HK_TZ)
    first = await _cycle(settings, watched, DAY, now)
    assert first.status == "processed" and first.rows == 11
    assert first.enqueued == 1
    (item,) = await Outbox(watched).claim(now, 10)
    assert item.chat_id == WATCHER
    (alert,) = item.alerts
    assert (alert["rule"], alert["code"], alert["identity"]) == (
        "corporate_finance_event",
        "01234",
        "12330001",
    )
    assert alert["links"] == ["https://www1.hkexnews.hk/listedco/listconews/sehk/2026/0909/2026090902101.pdf"]
    assert "discount to the last close 9.8%" in alert["why"]
    assert any(r.path == path for r in origin.requests)

    # The next poll finds the same answer, then a changed one (a new announcement for someone else).
    again = await _cycle(settings, watched, DAY, now)
    assert again.status == "unchanged" and again.enqueued == 0
    origin.routes[path].body = BODY.replace(b"EXAMPLE HLDGS", b"EXAMPLE HOLDINGS")
    origin.routes[path].etag = '"a2"'
    revised = await _cycle(settings, watched, DAY, now)
    assert revised.status == "processed" and revised.new_alerts == 0 and revised.enqueued == 0


async def test_sunday_announcement_alerts_that_day(
    settings: Settings, watched: Redis, origin: Origin
) -> None:
    assert not is_session(SUNDAY)
    (path,) = get_source(SOURCE).paths(SUNDAY)
    origin.add(path, BODY.replace(b"09/09/2026", b"13/09/2026"))
    now = datetime(2026, 9, 13, 23, 0, tzinfo=HK_TZ)
    report = await _cycle(settings, watched, SUNDAY, now)
    assert report.status == "processed" and report.enqueued == 1
    (item,) = await Outbox(watched).claim(now, 10)
    assert [(a["code"], a["trade_date"]) for a in item.alerts] == [("01234", "2026-09-13")]


async def test_error_page_fires_nothing(settings: Settings, watched: Redis, origin: Origin) -> None:
    (path,) = get_source(SOURCE).paths(DAY)
    origin.add(path, b"<html><head><title>Service Unavailable</title></head></html>")
    report = await _cycle(settings, watched, DAY, datetime(2026, 9, 9, 23, 0, tzinfo=HK_TZ))
    assert report.status == "malformed"
    assert await Outbox(watched).pending() == 0
