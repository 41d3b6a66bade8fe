"""The scheduler's daily work: the doctor's admin notice, and the DI second path (watched stocks' notice lists).

Local origin serving real fixture files at the sources' real paths; a fixed clock per case.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from redis.asyncio import Redis

from alerts.calendar import HK_TZ, is_session
from alerts.di_notices import SEARCH_DAYS
from alerts.fetch import make_client
from alerts.pipeline import is_done
from alerts.sources.hkex_di import SCHEMA, corp_search_path, notice_list_path, parse_notice_list
from alerts.store import keys
from alerts.store.frames import FrameStore
from alerts.store.outbox import Outbox
from alerts.store.subscriptions import SubscriptionStore
from alerts.windows import missed
from bot.scheduler import DI_NOTICE_DAYS, Poller
from config.settings import Settings, load_settings
from tests.alerts.sources.test_hkex_di import real_page
from tests.support.origin import Origin
from tests.support.paths import fixture_bytes

ADMIN = 7
CHAT = 42
# The SFC weekly file dated 2 Dec 2022, due and healthy at this instant (as in tests/alerts/test_doctor.py).
SFC_NOW = datetime(2022, 12, 9, 10, 30, tzinfo=HK_TZ)
SFC_PATH = "/-/media/EN/pdf/spr/2022/12/02/Short_Position_Reporting_Aggregated_Data_20221202.csv"
SFC_BYTES = fixture_bytes("sfc-short-positions", "Short_Position_Reporting_Aggregated_Data_20221202.csv")
BUYBACKS_PATH = "/reports/sharerepur/documents/SRRPT20221209.xls"

DI_DAY = date(2025, 11, 26)
DI_NOW = datetime(2025, 11, 26, 19, 0, tzinfo=HK_TZ)  # the 26th's summaries are out (expected from 17:00)
CODE, SID, CORP = "00700", "6893", "Tencent Holdings Ltd."


@pytest.fixture
def admin_settings(origin: Origin, redis_url: str) -> Settings:
    env = {
        name: origin.url
        for name in ("HKEX_URL", "HKEXNEWS_URL", "SFC_URL", "HKEX_DI_URL", "FINRA_URL", "SEC_URL")
    }
    return load_settings({**env, "REDIS_URL": redis_url, "ADMIN_CHAT_IDS": str(ADMIN)}, env_file=None)


def _poller(settings: Settings, redis: Redis, clock: list[datetime], sources: tuple[str, ...]) -> Poller:
    return Poller(settings, redis, make_client(), lambda: clock[0], sources=sources)


# ---- Poller.doctor ---------------------------------------------------------------------------------------------


async def test_doctor_tells_admins_once_naming_the_broken_source(
    admin_settings: Settings, redis: Redis, origin: Origin
) -> None:
    origin.add(SFC_PATH, SFC_BYTES)
    origin.add(
        BUYBACKS_PATH, b"<html><body>We have moved</body></html>"
    )  # a garbage body for the newest report
    clock = [SFC_NOW]
    poller = _poller(admin_settings, redis, clock, ("sfc-short-positions", "hkex-buybacks"))
    async with poller.client:
        await poller.doctor()
        await poller.doctor()  # a second run the same day queues no second notice
    items = await Outbox(redis).claim(SFC_NOW + timedelta(hours=1), 10)
    assert [(i.chat_id, i.kind) for i in items] == [(ADMIN, "text")]
    text = items[0].text
    assert text is not None
    assert "positioning-bot doctor" in text
    assert "<b>hkex-buybacks</b>" in text
    assert "sfc-short-positions" not in text
    assert text.splitlines()[0] == "🩺 doctor: 1 of 2 source(s) unhealthy"
    assert await FrameStore(redis).dates("sfc-short-positions") == []  # doctor stores no frame


async def test_doctor_with_a_missing_file_names_it(
    admin_settings: Settings, redis: Redis, origin: Origin
) -> None:
    origin.add(
        SFC_PATH, SFC_BYTES
    )  # hkex-buybacks: nothing served (404 for the newest and the previous report)
    clock = [SFC_NOW]
    poller = _poller(admin_settings, redis, clock, ("sfc-short-positions", "hkex-buybacks"))
    async with poller.client:
        await poller.doctor()
    (item,) = await Outbox(redis).claim(SFC_NOW + timedelta(hours=1), 10)
    assert item.chat_id == ADMIN and item.text is not None
    assert "hkex-buybacks" in item.text and "positioning-bot doctor" in item.text
    assert "404" in item.text


async def test_doctor_quiet_when_every_polled_source_is_healthy(
    admin_settings: Settings, redis: Redis, origin: Origin
) -> None:
    origin.add(SFC_PATH, SFC_BYTES)
    clock = [SFC_NOW]
    poller = _poller(admin_settings, redis, clock, ("sfc-short-positions",))
    async with poller.client:
        await poller.doctor()
    assert await Outbox(redis).pending() == 0
    assert [r.path for r in origin.requests] == [SFC_PATH]


# ---- the DI second path after a processed hkex-di cycle --------------------------------------------------------


def _serve_di(origin: Origin, today: date) -> None:
    """The 26 Nov 2025 daily summaries, and 00700's real search page and notice list where the poller asks."""
    for n in (1, 2):
        origin.add(
            f"/di/summary/DSM{DI_DAY:%Y%m%d}C{n}.htm", fixture_bytes("hkex-di", f"DSM{DI_DAY:%Y%m%d}C{n}.htm")
        )
    origin.add(
        corp_search_path(CODE, today - timedelta(days=SEARCH_DAYS), today),
        real_page("di_corp_list").encode("utf-8"),
        content_type="text/html",
    )
    origin.add(
        notice_list_path(CODE, SID, CORP, today - timedelta(days=DI_NOTICE_DAYS), today, 1),
        real_page("di_form_list").encode("utf-8"),
        content_type="text/html; charset=utf-8",
    )


async def _stored(redis: Redis, days: list[date]) -> dict[date, list[str]]:
    store = FrameStore(redis)
    out = {}
    for day in days:
        frame = await store.get("hkex-di", "main", day, SCHEMA)
        out[day] = [] if frame is None else sorted(frame["serial"])
    return out


async def _watch(redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    await subs.touch(CHAT)
    await subs.watch(CHAT, [CODE])


async def test_processed_di_cycle_merges_watched_notice_lists(
    settings: Settings, redis: Redis, origin: Origin
) -> None:
    await _watch(redis)
    for earlier in missed("hkex-di", DI_NOW, lambda _d: False, lookback_sessions=5):
        if earlier != DI_DAY:
            await redis.set(f"pb:cycle:hkex-di:{earlier.isoformat()}", "done")  # processed before
    _serve_di(origin, DI_NOW.date())
    notices = parse_notice_list(real_page("di_form_list").encode("utf-8"))
    by_day = {d: sorted(rows) for d, rows in notices.groupby(notices["filed_date"].dt.date)["serial"]}
    clock = [DI_NOW]
    poller = _poller(settings, redis, clock, ("hkex-di",))
    async with poller.client:
        reports = await poller.tick()
        first, *merged = reports
        assert (first.source, first.day, first.status) == ("hkex-di", DI_DAY, "processed")
        assert await is_done(redis, "hkex-di", DI_DAY)
        # One report per filing day that gained rows, oldest first, every one an XHKG session.
        assert [(r.source, r.day, r.status) for r in merged] == [
            ("hkex-di", d, "processed") for d in sorted(by_day)
        ]
        assert all(is_session(r.day) for r in merged)
        assert await _stored(redis, sorted(by_day)) == by_day
        for day in by_day:
            assert await is_done(redis, "hkex-di", day)
        pending = await Outbox(redis).pending()
        blobs = {day: await redis.get(keys.frame("hkex-di", "main", day)) for day in by_day}
        routed = sum(r.enqueued for r in merged)

        origin.requests.clear()
        clock[0] += timedelta(minutes=11)
        assert await poller.tick() == []  # the day is done: no cycle, so no second-path run either
        assert await poller._watched_notices(clock[0]) == []  # run anyway: nothing new to store or route
    assert {day: await redis.get(keys.frame("hkex-di", "main", day)) for day in by_day} == blobs
    assert await Outbox(redis).pending() == pending
    assert routed + first.enqueued == pending
    assert [r.path for r in origin.requests] == [
        notice_list_path(
            CODE, SID, CORP, clock[0].date() - timedelta(days=DI_NOTICE_DAYS), clock[0].date(), 1
        )
    ]


async def test_no_watched_stock_no_notice_list(settings: Settings, redis: Redis, origin: Origin) -> None:
    _serve_di(origin, DI_NOW.date())
    async with make_client() as client:
        poller = Poller(settings, redis, client, lambda: DI_NOW, sources=("hkex-di",))
        assert await poller._watched_notices(DI_NOW) == []
    assert origin.requests == []
