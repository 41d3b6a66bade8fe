"""Fan-out in chunks: many chats per pipeline, marks written after the items, nothing lost or doubled on a re-run."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from redis.asyncio import Redis

from alerts import routing
from alerts.calendar import HK_TZ
from alerts.model import Alert
from alerts.routing import ROUTE_CHUNK, route
from alerts.store import keys
from alerts.store.outbox import Outbox
from alerts.store.subscriptions import SubscriptionStore

NOW = datetime(2025, 11, 24, 16, 30, tzinfo=HK_TZ)


def _alert(code: str, rule: str = "buyback_filed") -> Alert:
    return Alert(
        rule=rule, code=code, trade_date=date(2025, 11, 21), severity="notice", why=f"{rule} on {code}"
    )


async def _watchers(subs: SubscriptionStore, chats: range, codes: list[str]) -> None:
    for chat in chats:
        await subs.touch(chat)
        await subs.watch(chat, codes)


async def test_more_chats_than_one_chunk_each_get_one_item(redis: Redis) -> None:
    subs, outbox = SubscriptionStore(redis), Outbox(redis)
    chats = range(1, ROUTE_CHUNK + 40)
    await _watchers(subs, chats, ["01810", "00700"])
    await subs.mute(5, "00700", NOW + timedelta(hours=1))
    await subs.mute(6, "00700", NOW - timedelta(hours=1))  # expired: does not apply
    report = await route([_alert("01810"), _alert("00700"), _alert("01810")], subs, outbox, NOW)
    assert report.enqueued == len(chats) and report.chats == set(chats)
    assert report.skipped == {"00700 muted": 1}  # the alert listed twice reaches each chat once
    items = {item.chat_id: item for item in await outbox.claim(NOW, 2 * len(chats))}
    assert set(items) == set(chats)
    assert [a["code"] for a in items[1].alerts] == ["01810", "00700"]
    assert [a["code"] for a in items[5].alerts] == ["01810"]
    assert len(items[6].alerts) == 2
    assert await redis.sismember(keys.routed(_alert("00700").fingerprint), ROUTE_CHUNK + 39)
    assert not await redis.sismember(
        keys.routed(_alert("00700").fingerprint), 5
    )  # muted: not routed, not marked
    assert await redis.scard(keys.routed(_alert("01810").fingerprint)) == len(chats)
    ttl = await redis.ttl(keys.routed(_alert("01810").fingerprint))
    assert keys.ROUTED_TTL_SECONDS - 60 < ttl <= keys.ROUTED_TTL_SECONDS


async def test_a_crash_before_the_marks_loses_nothing_and_doubles_nothing(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Items are written before the routed marks: a re-run after a crash in between finds the same items."""
    subs, outbox = SubscriptionStore(redis), Outbox(redis)
    await _watchers(subs, range(1, 4), ["01810"])
    monkeypatch.setattr(routing, "_SET_MARKS", "error('killed before the marks')")
    with pytest.raises(Exception, match="killed before the marks"):
        await route([_alert("01810")], subs, outbox, NOW)
    assert await outbox.pending() == 3  # the items are in
    monkeypatch.undo()
    again = await route([_alert("01810")], subs, outbox, NOW)
    assert again.enqueued == 3
    assert await outbox.pending() == 3  # the same item ids: put is NX, nothing doubled
    third = await route([_alert("01810")], subs, outbox, NOW)
    assert third.enqueued == 0 and third.skipped == {"already routed": 3}
