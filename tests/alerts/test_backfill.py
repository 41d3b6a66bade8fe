"""A backfill's history: the rules run point in time over a stored span, their alerts recorded as never pushed."""

from __future__ import annotations

from datetime import date, datetime

from redis.asyncio import Redis

from alerts.backfill import record_history
from alerts.calendar import HK_TZ, sessions_between
from alerts.sources import get_source
from alerts.store.alertlog import AlertLog, Logged
from alerts.store.frames import FrameStore
from alerts.store.outbox import Outbox
from alerts.store.subscriptions import SubscriptionStore
from tests.support.bothelpers import DEMO_NOW, seed_demo

START, END = date(2025, 10, 27), date(2025, 11, 28)  # from the week the first SFC jump came out
SFC_DAY = date(2025, 11, 21)


async def _watched(redis: Redis) -> None:
    """The demo stored as a backfill leaves it, and a chat watching 01810 (which must be told nothing)."""
    await seed_demo(redis)
    subs = SubscriptionStore(redis)
    await subs.touch(7)
    await subs.watch(7, ["01810"])
    await subs.set_market(7, True)


async def _logged(redis: Redis, code: str) -> list[Logged]:
    entries = await AlertLog(redis).recent_logged(sessions_between(date(2025, 10, 1), END))
    return [e for e in entries if e.alert.code == code]


async def _nothing_routed(redis: Redis) -> None:
    assert await Outbox(redis).pending() == 0
    assert [k async for k in redis.scan_iter("pb:routed:*")] == []
    assert [k async for k in redis.scan_iter("pb:digest:*")] == []


async def test_backfilled_span_becomes_history_found_point_in_time_and_never_routed(redis: Redis) -> None:
    await _watched(redis)
    first = await record_history(redis, START, END, DEMO_NOW)
    assert first.recorded.new == len(first.result.alerts) > 0 and first.recorded.known == 0
    assert first.line() == f"recorded {first.recorded.new} historical alerts (0 already known)"
    mine = await _logged(redis, "01810")
    assert all(e.historical for e in mine)
    found = {(e.alert.rule, e.alert.trade_date): e.alert for e in mine}
    assert ("short_ratio_spike", date(2025, 11, 19)) in found
    jumps = sorted(d for rule, d in found if rule == "short_position_jump")
    assert jumps == [date(2025, 10, 31), SFC_DAY]
    # Point in time: the SFC position of 21/11 counts from its publication a week later, not its date.
    published = found[("short_position_jump", SFC_DAY)].published_at
    assert published == datetime(2025, 11, 28, 9, 0, tzinfo=HK_TZ)
    await _nothing_routed(redis)

    again = await record_history(redis, START, END, DEMO_NOW)
    assert (again.recorded.new, again.recorded.known) == (0, first.recorded.new)
    assert again.line() == f"recorded 0 historical alerts ({first.recorded.new} already known)"
    assert len(await _logged(redis, "01810")) == len(mine)


async def test_alerts_of_files_not_known_by_now_are_left_to_the_live_cycle(redis: Redis) -> None:
    await _watched(redis)
    morning = datetime(2025, 11, 28, 8, 0, tzinfo=HK_TZ)  # before the SFC file of 21/11 (09:00)
    record = await record_history(redis, START, END, morning)
    assert record.later > 0 and "left to the live cycle" in record.line()
    rules = {(e.alert.rule, e.alert.trade_date) for e in await _logged(redis, "01810")}
    assert ("short_position_jump", date(2025, 10, 31)) in rules
    assert ("short_position_jump", SFC_DAY) not in rules


async def test_a_revised_file_replaces_the_historical_alert_without_a_push(redis: Redis) -> None:
    await _watched(redis)
    await record_history(redis, START, END, DEMO_NOW)
    store, source = FrameStore(redis), get_source("sfc-short-positions")
    frame = await store.get(source.name, "main", SFC_DAY, source.tables["main"].schema)
    assert frame is not None
    before = next(
        e.alert
        for e in await _logged(redis, "01810")
        if (e.alert.rule, e.alert.trade_date) == ("short_position_jump", SFC_DAY)
    )
    # The SFC revises the file of 21/11: 01810's position is larger than first published.
    row = frame["code"] == "01810"
    frame.loc[row, "short_shares"] = frame.loc[row, "short_shares"] * 11 // 10
    frame.loc[row, "short_value_hkd"] = frame.loc[row, "short_value_hkd"] * 1.1
    await store.put(source.name, {"main": frame}, SFC_DAY)
    revised = await record_history(redis, START, END, DEMO_NOW)
    assert revised.recorded.new == 0 and revised.recorded.revised >= 1
    after = next(
        e
        for e in await _logged(redis, "01810")
        if (e.alert.rule, e.alert.trade_date) == ("short_position_jump", SFC_DAY)
    )
    assert after.historical and after.alert.fingerprint == before.fingerprint
    assert after.alert.facts != before.facts and after.alert.published_at == before.published_at
    await _nothing_routed(redis)
