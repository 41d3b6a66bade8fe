"""The alert log against a real Redis: live and historical entries, deduplicated by fingerprint."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime

from redis.asyncio import Redis

from alerts.calendar import HK_TZ
from alerts.model import Alert, Fact
from alerts.store import keys
from alerts.store.alertlog import FOUND_BY, AlertLog

DAY = date(2025, 11, 21)
KNOWN = datetime(2025, 11, 28, 9, 0, tzinfo=HK_TZ)  # an SFC position of 21/11 is published a week later
LATER = datetime(2025, 12, 1, 18, 0, tzinfo=HK_TZ)


def _jump(change: float = 30.0, published_at: datetime | None = KNOWN) -> Alert:
    return Alert(
        rule="short_position_jump",
        code="01810",
        trade_date=DAY,
        severity="warning",
        why=f"short position +{change}%",
        facts=(Fact("change_pct", change, "%"),),
        name="XIAOMI-W",
        published_at=published_at,
    )


async def _stored(redis: Redis, alert: Alert) -> dict[str, object]:
    raw = await redis.hget(keys.alerts_by_day(alert.trade_date), alert.fingerprint)
    assert raw is not None
    return json.loads(raw)  # type: ignore[no-any-return]


async def test_record_counts_new_fingerprints_and_marks_them_live(redis: Redis) -> None:
    log = AlertLog(redis)
    assert await log.record([_jump(), _jump()]) == 1  # listed twice: one entry
    assert await log.record([_jump()]) == 0
    (entry,) = await log.logged_day(DAY)
    assert entry.alert == _jump() and not entry.historical
    assert (await _stored(redis, _jump()))[FOUND_BY] == "live"


async def test_historical_record_is_idempotent_and_marked_as_found_by_replay(redis: Redis) -> None:
    log = AlertLog(redis)
    first = await log.record_historical([_jump()])
    assert (first.new, first.known, first.historical) == (1, 0, {_jump().fingerprint})
    again = await log.record_historical([_jump()])
    assert (again.new, again.known, again.revised) == (0, 1, 0)
    (entry,) = await log.recent_logged([DAY])
    assert entry.historical and entry.alert.published_at == KNOWN  # its point-in-time moment
    assert await log.for_code("01810") == [_jump()]


async def test_a_revised_file_replaces_the_historical_figures(redis: Redis) -> None:
    log = AlertLog(redis)
    await log.record_historical([_jump(30.0)])
    revised = await log.record_historical([_jump(32.5)])
    assert (revised.new, revised.known, revised.revised) == (0, 0, 1)
    (entry,) = await log.logged_day(DAY)
    assert entry.historical and entry.alert.fact("change_pct") == Fact("change_pct", 32.5, "%")
    assert len(await redis.hkeys(keys.alerts_by_day(DAY))) == 1


async def test_a_live_cycle_refinding_a_historical_alert_keeps_it_historical(redis: Redis) -> None:
    log = AlertLog(redis)
    await log.record_historical([_jump(30.0)])
    # The live pipeline stamps published_at=now; the historical entry keeps when the file first became known.
    live = await log.record_live([_jump(31.0, published_at=LATER)])
    assert live.new == 0 and live.historical == {_jump().fingerprint} and live.revised == 1
    (entry,) = await log.logged_day(DAY)
    assert entry.historical and entry.alert.published_at == KNOWN
    assert entry.alert.fact("change_pct") == Fact("change_pct", 31.0, "%")
    same = await log.record_live([_jump(31.0, published_at=LATER)])
    assert same.historical == {_jump().fingerprint} and (same.new, same.revised, same.known) == (0, 0, 1)


async def test_history_never_relabels_or_rewrites_a_live_alert(redis: Redis) -> None:
    log = AlertLog(redis)
    pushed = _jump(30.0, published_at=LATER)
    await log.record([pushed])
    found = await log.record_historical([_jump(29.0)])
    assert (found.new, found.live, found.historical) == (0, 1, set())
    (entry,) = await log.logged_day(DAY)
    assert not entry.historical and entry.alert == pushed


async def test_entries_written_before_the_marker_read_as_live(redis: Redis) -> None:
    old = _jump()
    await redis.hset(keys.alerts_by_day(DAY), old.fingerprint, json.dumps(old.as_dict()))
    (entry,) = await AlertLog(redis).logged_day(DAY)
    assert not entry.historical and entry.alert == old
    # and a backfill finding it later leaves it alone, as any live alert
    assert (await AlertLog(redis).record_historical([replace(old, why="other")])).live == 1
