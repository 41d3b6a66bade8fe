"""The poller job as a plain coroutine with an injected clock: windows, cadence, catch-up, admin notices."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import date, datetime, timedelta

import pytest
from redis.asyncio import Redis

from alerts.calendar import HK_TZ
from alerts.fetch import make_client
from alerts.localdata import local_path
from alerts.pipeline import is_done
from alerts.sources import get_source
from alerts.store import keys
from alerts.store.audience import ChatRoute, audience
from alerts.store.frames import FrameStore
from alerts.store.outbox import Outbox
from alerts.store.subscriptions import SubscriptionStore
from bot.demo import demo_root
from bot.scheduler import Poller
from config.settings import Settings, load_settings
from tests.support.bothelpers import seed_demo
from tests.support.origin import Origin
from tests.support.paths import FIXTURES

ADMIN = 7


def _path(day: date) -> str:
    return f"/eng/stat/smstat/dayquot/d{day:%y%m%d}e.htm"


def _serve(origin: Origin, day: date) -> None:
    origin.add(_path(day), (demo_root() / _path(day).lstrip("/")).read_bytes())


def _hits(origin: Origin, day: date) -> int:
    return sum(1 for r in origin.requests if r.path == _path(day))


@pytest.fixture
def admin_settings(origin: Origin, redis_url: str) -> Settings:
    return load_settings(
        {"HKEX_URL": origin.url, "REDIS_URL": redis_url, "ADMIN_CHAT_IDS": str(ADMIN)}, env_file=None
    )


async def _poller(settings: Settings, redis: Redis, clock: list[datetime]) -> Poller:
    return Poller(settings, redis, make_client(), lambda: clock[0], sources=("hkex-quotes",))


async def test_window_cadence_and_stop_when_in(
    admin_settings: Settings, redis: Redis, origin: Origin
) -> None:
    day = date(2025, 11, 27)
    excluded = frozenset(
        ("hkex-quotes", d)
        for d in (
            date(2025, 11, 20),
            date(2025, 11, 21),
            date(2025, 11, 24),
            date(2025, 11, 25),
            date(2025, 11, 26),
            day,
        )
    )
    await seed_demo(redis, exclude=excluded)
    for earlier in (
        date(2025, 11, 20),
        date(2025, 11, 21),
        date(2025, 11, 24),
        date(2025, 11, 25),
        date(2025, 11, 26),
    ):
        await redis.set(f"pb:cycle:hkex-quotes:{earlier.isoformat()}", "done")  # processed before
    clock = [datetime(2025, 11, 27, 17, 0, tzinfo=HK_TZ)]
    poller = await _poller(admin_settings, redis, clock)
    async with poller.client:
        assert await poller.tick() == []  # before the 17:30 window: nothing to fetch
        clock[0] = datetime(2025, 11, 27, 17, 30, tzinfo=HK_TZ)
        (report,) = await poller.tick()
        assert (report.day, report.status) == (day, "not_published")
        clock[0] += timedelta(seconds=10)
        assert await poller.tick() == []  # cadence: 20 s
        _serve(origin, day)
        clock[0] += timedelta(seconds=11)
        (report,) = await poller.tick()
        assert report.status == "processed"
        assert await is_done(redis, "hkex-quotes", day)
        clock[0] += timedelta(minutes=5)
        assert await poller.tick() == []  # the day's file is in: stop polling it
        assert _hits(origin, day) == 2


async def test_catch_up_after_downtime_oldest_first(
    admin_settings: Settings, redis: Redis, origin: Origin
) -> None:
    missing = [date(2025, 11, 24), date(2025, 11, 25), date(2025, 11, 26)]
    await seed_demo(redis, exclude=frozenset(("hkex-quotes", d) for d in missing))
    for done in (date(2025, 11, 20), date(2025, 11, 21)):
        await redis.set(f"pb:cycle:hkex-quotes:{done.isoformat()}", "done")
    for day in missing:
        _serve(origin, day)
    clock = [datetime(2025, 11, 27, 9, 0, tzinfo=HK_TZ)]  # restarted in the morning; 11-27 not due yet
    poller = await _poller(admin_settings, redis, clock)
    async with poller.client:
        reports = await poller.tick()
    assert [(r.day, r.status) for r in reports] == [(d, "processed") for d in missing]
    for day in missing:
        assert await is_done(redis, "hkex-quotes", day)


async def test_empty_window_tells_admins_once(admin_settings: Settings, redis: Redis, origin: Origin) -> None:
    day = date(2025, 11, 27)
    for earlier in (
        date(2025, 11, 20),
        date(2025, 11, 21),
        date(2025, 11, 24),
        date(2025, 11, 25),
        date(2025, 11, 26),
    ):
        await redis.set(f"pb:cycle:hkex-quotes:{earlier.isoformat()}", "done")
    clock = [datetime(2025, 11, 27, 23, 29, tzinfo=HK_TZ)]
    poller = await _poller(admin_settings, redis, clock)
    outbox = Outbox(redis)
    async with poller.client:
        await poller.tick()
        assert await outbox.pending() == 0  # the window is still open
        clock[0] = datetime(2025, 11, 27, 23, 31, tzinfo=HK_TZ)
        await poller.tick()
        clock[0] += timedelta(minutes=11)
        await poller.tick()
    items = await outbox.claim(clock[0], 10)
    assert [(i.chat_id, "no file by the end" in i.text) for i in items] == [(ADMIN, True)]
    assert day.isoformat() in items[0].text


async def test_changed_format_tells_admins(admin_settings: Settings, redis: Redis, origin: Origin) -> None:
    day = date(2025, 11, 27)
    for earlier in (
        date(2025, 11, 20),
        date(2025, 11, 21),
        date(2025, 11, 24),
        date(2025, 11, 25),
        date(2025, 11, 26),
    ):
        await redis.set(f"pb:cycle:hkex-quotes:{earlier.isoformat()}", "done")
    origin.add(_path(day), b"<html><body><pre>NEW LAYOUT 2025</pre></body></html>")
    clock = [datetime(2025, 11, 27, 18, 0, tzinfo=HK_TZ)]
    poller = await _poller(admin_settings, redis, clock)
    async with poller.client:
        (report,) = await poller.tick()
    assert report.status == "malformed"
    (item,) = await Outbox(redis).claim(clock[0], 10)
    assert "format changed" in item.text and item.chat_id == ADMIN
    assert not await is_done(redis, "hkex-quotes", day)


def _serve_midday(origin: Origin, day: date) -> list[str]:
    """Serve the demo's pages up to the morning close of `day` at their real paths; return the paths."""
    paths = get_source("hkex-short-midday").paths(day)
    for url_path in paths:
        origin.add(url_path, local_path(demo_root(), "hkex-short-midday", day, url_path).read_bytes())
    return paths


async def test_midday_source_polls_its_noon_window_only(
    admin_settings: Settings, redis: Redis, origin: Origin
) -> None:
    day = date(2025, 11, 28)
    await seed_demo(redis, exclude=frozenset({("hkex-short-midday", day)}))
    await redis.set(
        f"pb:cycle:hkex-short-midday:{date(2025, 11, 27).isoformat()}", "done"
    )  # processed before
    clock = [datetime(2025, 11, 28, 11, 59, tzinfo=HK_TZ)]
    poller = Poller(admin_settings, redis, make_client(), lambda: clock[0], sources=("hkex-short-midday",))
    async with poller.client:
        assert await poller.tick() == []  # before 12:00
        clock[0] = datetime(2025, 11, 28, 12, 0, tzinfo=HK_TZ)
        (report,) = await poller.tick()
        assert (report.source, report.day, report.status) == ("hkex-short-midday", day, "not_published")
        paths = _serve_midday(origin, day)
        clock[0] += timedelta(seconds=20)
        (report,) = await poller.tick()
        assert report.status == "processed"
        assert await is_done(redis, "hkex-short-midday", day)
        clock[0] = datetime(2025, 11, 28, 16, 10, tzinfo=HK_TZ)
        assert await poller.tick() == []  # in, and today-only pages are never caught up after their window
    assert {r.path for r in origin.requests} == set(paths)
    stored = await FrameStore(redis).get(
        "hkex-short-midday", "main", day, get_source("hkex-short-midday").schema
    )
    assert stored is not None and set(stored["session"]) == {"morning"}
    assert await Outbox(redis).pending() == 0  # no admin notice: the file came inside its window


async def test_midday_source_skips_half_days(admin_settings: Settings, redis: Redis, origin: Origin) -> None:
    await redis.set(f"pb:cycle:hkex-short-midday:{date(2025, 12, 23).isoformat()}", "done")  # the day before
    clock = [datetime(2025, 12, 24, 12, 10, tzinfo=HK_TZ)]  # Christmas Eve: the market closes at noon
    poller = Poller(admin_settings, redis, make_client(), lambda: clock[0], sources=("hkex-short-midday",))
    async with poller.client:
        assert await poller.tick() == []
        clock[0] = datetime(2025, 12, 24, 13, 0, tzinfo=HK_TZ)
        assert await poller.tick() == []
    assert origin.requests == []
    assert await Outbox(redis).pending() == 0  # and no "no file by the end of its window" notice


@pytest.mark.parametrize("wiped", [False, True], ids=["came-back-with-data", "came-back-empty"])
async def test_outage_notice_says_whether_redis_came_back_without_its_data(
    admin_settings: Settings, redis: Redis, wiped: bool
) -> None:
    # Christmas Eve afternoon: the midday source has nothing due, so the ticks only do the outage bookkeeping.
    clock = [datetime(2025, 12, 24, 13, 0, tzinfo=HK_TZ)]
    poller = Poller(admin_settings, redis, make_client(), lambda: clock[0], sources=("hkex-short-midday",))
    async with poller.client:
        assert await poller.tick() == []
        assert await redis.exists(keys.DATA_MARKER)  # written once Redis answers
        assert poller.outage is not None
        poller.outage.failed(
            "tick", ConnectionError("Connection refused")
        )  # what a tick meets while it is down
        if wiped:
            await redis.flushdb()  # restarted without persistence
        clock[0] += timedelta(seconds=40)
        assert await poller.tick() == []
    claimed = await Outbox(redis).claim(clock[0] + timedelta(hours=1))
    (notice,) = [item for item in claimed if item.text and "Redis unreachable from" in item.text]
    assert notice.chat_id == ADMIN and notice.text is not None
    assert ("came back without its data" in notice.text) is wiped
    assert await redis.exists(keys.DATA_MARKER)  # marked again: a second outage is judged the same way


async def test_growing_day_keeps_polling_inside_its_windows(
    redis: Redis, origin: Origin, redis_url: str
) -> None:
    # hkexnews-announcements: the day's answer grows until late evening, so a processed cycle does not end polling.
    settings = load_settings({"HKEXNEWS_URL": origin.url, "REDIS_URL": redis_url}, env_file=None)
    source = get_source("hkexnews-announcements")
    assert source.growing
    day = date(2026, 9, 9)
    for earlier in range(1, 12):  # earlier days processed before (catch-up would fetch them otherwise)
        await redis.set(keys.cycle_done(source.name, day - timedelta(days=earlier)), "done")
    (path,) = source.paths(day)
    body = (FIXTURES / source.name / "titleSearchServlet_20260909_constructed.json").read_bytes()
    origin.add(path, body)
    clock = [datetime(2026, 9, 9, 18, 0, tzinfo=HK_TZ)]
    poller = Poller(settings, redis, make_client(), lambda: clock[0], sources=(source.name,))
    async with poller.client:
        (report,) = await poller.tick()
        assert report.status == "processed" and await is_done(redis, source.name, day)
        clock[0] += timedelta(seconds=60)
        assert await poller.tick() == []  # cadence: 180 s
        clock[0] += timedelta(seconds=121)
        (again,) = await poller.tick()
        assert (again.day, again.status) == (day, "unchanged")  # polled again, same answer
        clock[0] = datetime(2026, 9, 9, 23, 40, tzinfo=HK_TZ)  # after the last window: the day is over
        assert await poller.tick() == []
    hits = sum(1 for r in origin.requests if r.path == path)
    assert hits == 2


async def test_the_leaders_poller_fills_routings_cache_in_the_background_until_it_stops(
    admin_settings: Settings, redis: Redis
) -> None:
    subs = SubscriptionStore(redis)
    await subs.touch(5)
    await subs.set_digest(5, True)
    poller = await _poller(admin_settings, redis, [datetime(2025, 11, 27, 9, tzinfo=HK_TZ)])
    poller.start_warming(every=3600)
    poller.start_warming(every=3600)  # once: a second call while it runs starts nothing
    route: ChatRoute | None = None
    for _ in range(200):  # the first fill runs at once; then the loop waits an hour
        with contextlib.suppress(KeyError):
            route = (await audience(redis)).route_of(5)  # KeyError until loaded
            break
        await asyncio.sleep(0.01)
    assert route is not None and route.settings.digest
    task = poller._warming
    await poller.wind_down()
    assert task is not None and task.cancelled() and poller._warming is None
