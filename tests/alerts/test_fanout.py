"""Fan-out in chunks: many chats per pipeline, marks written after the items, nothing lost or doubled on a re-run."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
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
    marked = await _marks(redis, _alert("00700"))
    assert ROUTE_CHUNK + 39 in marked
    assert 5 not in marked  # muted: not routed, not marked
    assert sorted(await _marks(redis, _alert("01810"))) == list(chats)
    # Marks expire at the end of the Hong Kong day ROUTED_DAYS after the trade date (2025-11-21 + 60 days).
    until = datetime(2026, 1, 21, tzinfo=HK_TZ)
    ttl = await redis.ttl(keys.routed(_alert("01810").fingerprint))
    assert (until - NOW).total_seconds() - 60 < ttl <= (until - NOW).total_seconds()


async def _marks(redis: Redis, alert: Alert) -> list[int]:
    """The chats an alert's packed marks name."""
    raw = await redis.get(keys.routed(alert.fingerprint))
    return [int(x) for x in np.frombuffer(raw or b"", dtype="<i8")]


async def test_a_crash_before_the_marks_loses_nothing_and_doubles_nothing(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Items are written before the routed marks: a re-run after a crash in between finds the same items."""
    subs, outbox = SubscriptionStore(redis), Outbox(redis)
    await _watchers(subs, range(1, 4), ["01810"])
    async def killed(*args: object) -> None:
        raise RuntimeError("killed before the marks")

    monkeypatch.setattr(routing, "_write_marks", killed)
    with pytest.raises(Exception, match="killed before the marks"):
        await route([_alert("01810")], subs, outbox, NOW)
    assert await outbox.pending() == 3  # the items are in
    monkeypatch.undo()
    again = await route([_alert("01810")], subs, outbox, NOW)
    assert again.enqueued == 3
    assert await outbox.pending() == 3  # the same item ids: put is NX, nothing doubled
    third = await route([_alert("01810")], subs, outbox, NOW)
    assert third.enqueued == 0 and third.skipped == {"already routed": 3}
