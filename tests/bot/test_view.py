"""The data view behind read-only commands: served from cache, reloaded in the background, never stale after new data."""

from __future__ import annotations

from datetime import date

from redis.asyncio import Redis

from alerts.model import Alert
from alerts.store.alertlog import AlertLog
from bot import deps as deps_module
from bot.deps import Deps
from config.settings import Settings
from tests.support.bothelpers import DEMO_NOW, seed_demo


async def test_expired_view_is_served_while_reloading_and_new_data_wait(
    redis: Redis, settings: Settings
) -> None:
    await seed_demo(redis)
    d = Deps.open(settings, clock=lambda: DEMO_NOW)
    try:
        first = await d.view()
        assert not first.history.frames["quotes"].empty
        assert await d.view() is first  # cached

        d._view_at -= deps_module.VIEW_TTL_SECONDS + 1  # the clock says: reload
        assert await d.view() is first  # served at once, while the reload runs
        assert d._loading is not None and not d._loading.done()
        reloaded = await d._loading
        assert reloaded is not first and await d.view() is reloaded

        stored = Alert(
            rule="buyback_filed",
            code="01810",
            trade_date=date(2025, 11, 27),
            severity="notice",
            why="bought back",
            name="XIAOMI-W",
        )
        await AlertLog(redis).record([stored])
        assert stored.fingerprint not in {
            a.fingerprint for a in (await d.view()).alerts
        }  # not told yet: cached
        d.invalidate_view()  # the poller stored new data
        after = await d.view()
        assert stored.fingerprint in {a.fingerprint for a in after.alerts}
    finally:
        await d.close()


async def test_a_view_without_data_is_not_served_from_cache(redis: Redis, settings: Settings) -> None:
    d = Deps.open(settings, clock=lambda: DEMO_NOW)
    try:
        empty = await d.view()
        assert empty.history.frames["quotes"].empty
        await seed_demo(redis)
        assert not (await d.view()).history.frames["quotes"].empty  # loaded again, not the empty view
    finally:
        await d.close()
