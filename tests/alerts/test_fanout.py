"""Fan-out in chunks: many chats per pipeline, marks written after the items, nothing lost or doubled on a re-run."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
import pytest
from redis.asyncio import Redis

from alerts.calendar import HK_TZ
from alerts.model import Alert
from alerts.routing import route
from alerts.store import audience as audience_module
from alerts.store import keys
from alerts.store import outbox as outbox_module
from alerts.store.outbox import Outbox, OutboxItem, item_id
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


CHUNK = 200


async def test_more_chats_than_one_chunk_each_get_one_item(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Settings are read, and items written, a chunk at a time: small chunks here, so that three are needed.
    monkeypatch.setattr(audience_module, "LOAD_CHUNK", CHUNK)
    monkeypatch.setattr(outbox_module, "PUT_CHUNK", CHUNK)
    subs, outbox = SubscriptionStore(redis), Outbox(redis)
    chats = range(1, 2 * CHUNK + 40)
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
    # Items are written compactly in bulk and read back as the item `put` would have stored.
    refs = [_alert("01810").fingerprint, _alert("00700").fingerprint]
    assert replace(items[1], alerts=[]) == OutboxItem(
        id=item_id(1, "alerts", refs), chat_id=1, kind="alerts", refs=refs, created_at=NOW.isoformat()
    )
    marked = await _marks(redis, _alert("00700"))
    assert 2 * CHUNK + 39 in marked
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


async def test_a_pass_cut_short_is_finished_by_the_next_and_doubles_nothing(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass's writes go through the journal: a crash after the marks and before the items leaves the pass in the
    journal, and the next pass finishes it before computing anything."""
    subs, outbox = SubscriptionStore(redis), Outbox(redis)
    await _watchers(subs, range(1, 4), ["01810"])

    async def killed(*args: object) -> None:
        raise RuntimeError("killed before the items")

    monkeypatch.setattr(Outbox, "put_alerts", killed)
    with pytest.raises(Exception, match="killed before the items"):
        await route([_alert("01810")], subs, outbox, NOW)
    assert await outbox.pending() == 0 and await redis.hlen(keys.ROUTING_JOURNAL) == 1
    monkeypatch.undo()
    again = await route([_alert("01810")], subs, outbox, NOW)
    assert again.enqueued == 0 and again.skipped == {"already routed": 3}  # this pass: nothing new
    assert await outbox.pending() == 3  # the cut pass's items, put by this pass from the journal
    assert await redis.hlen(keys.ROUTING_JOURNAL) == 0


async def test_a_re_run_that_groups_differently_never_sends_an_alert_twice(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass killed right after writing its items, re-run with one more alert (a later clock, another file known):
    each chat still gets the first alert once, in the cut pass's item, and the new one in the re-run's (before the
    journal, the re-run's item carried the first alert again under a new id)."""
    subs, outbox = SubscriptionStore(redis), Outbox(redis)
    await _watchers(subs, range(1, 4), ["01810"])
    first, extra = _alert("01810"), _alert("01810", rule="short_ratio_spike")

    real_put = Outbox.put_alerts

    async def killed_after_the_items(self: Outbox, *args: Any, **kwargs: Any) -> list[bool]:
        await real_put(self, *args, **kwargs)
        raise RuntimeError("killed right after the items")

    monkeypatch.setattr(Outbox, "put_alerts", killed_after_the_items)
    with pytest.raises(Exception, match="killed right after the items"):
        await route([first], subs, outbox, NOW)
    monkeypatch.undo()
    await route([first, extra], subs, outbox, NOW + timedelta(minutes=1))
    items = await outbox.claim(NOW + timedelta(minutes=2), 100)
    per_chat: dict[int, list[str]] = {}
    for item in items:
        per_chat.setdefault(item.chat_id, []).extend(a["rule"] for a in item.alerts)
    assert {chat: sorted(rules) for chat, rules in per_chat.items()} == {
        chat: ["buyback_filed", "short_ratio_spike"] for chat in (1, 2, 3)
    }


async def test_marks_expire_by_day_and_an_alert_older_than_its_marks_is_not_routed(redis: Redis) -> None:
    """Marks last until the end of the HK day ROUTED_DAYS after the trade date; past it the alert is refused,
    so an expired mark can never let an alert through twice (a re-run that late sends nothing)."""
    subs, outbox = SubscriptionStore(redis), Outbox(redis)
    await _watchers(subs, range(1, 3), ["01810"])
    alert = _alert("01810")  # trade date 2025-11-21: last day 2026-01-20
    last = datetime(2026, 1, 20, 23, 59, tzinfo=HK_TZ)
    first = await route([alert], subs, outbox, last)
    assert first.enqueued == 2
    assert 0 < await redis.ttl(keys.routed(alert.fingerprint)) <= 60  # gone at the end of that day
    await redis.delete(keys.routed(alert.fingerprint))  # the marks expired
    late = await route([alert], subs, outbox, last + timedelta(minutes=2))
    assert late.enqueued == 0 and late.skipped == {"older than the routed marks are kept": 1}
    assert not await redis.exists(keys.routed(alert.fingerprint))
    assert await outbox.pending() == 2


async def test_marks_written_before_the_packed_form_still_count(redis: Redis) -> None:
    subs, outbox = SubscriptionStore(redis), Outbox(redis)
    await _watchers(subs, range(1, 4), ["01810"])
    await redis.sadd(keys.routed_legacy(_alert("01810").fingerprint), 2)  # routed by the previous release
    report = await route([_alert("01810")], subs, outbox, NOW)
    assert report.enqueued == 2 and report.skipped == {"already routed": 1}
    assert {i.chat_id for i in await outbox.claim(NOW, 10)} == {1, 3}


async def test_settings_changed_between_passes_are_honoured_at_once(redis: Redis) -> None:
    """Routing caches settings in-process; every change made through the store is seen by the next pass."""
    subs, outbox = SubscriptionStore(redis), Outbox(redis)
    await _watchers(subs, range(1, 8), ["01810", "00700"])
    await route([_alert("00700", "short_ratio_spike")], subs, outbox, NOW)  # warms the cache: all plain
    await subs.mute(1, "01810", NOW + timedelta(days=1))
    await subs.set_rule(2, "buyback_filed", on=False)
    await subs.set_digest(3, True)
    await subs.set_quiet(4, (time(16), time(8)))
    await subs.deactivate(5)
    await subs.set_threshold(6, "_all", "min_severity", 2)
    await subs.unwatch(7, ["01810"])
    report = await route([_alert("01810")], subs, outbox, NOW)
    assert report.skipped == {
        "01810 muted": 1,
        "rule buyback_filed off": 1,
        "chat inactive": 1,
        "below the chat's minimum severity": 1,
    }
    assert (report.enqueued, report.digested, report.chats) == (1, 1, {3, 4})
    assert await redis.lrange(keys.digest_queue(3), 0, -1) == [_alert("01810").fingerprint.encode()]
    assert keys.DIGEST_TTL_SECONDS - 60 < await redis.ttl(keys.digest_queue(3)) <= keys.DIGEST_TTL_SECONDS
    held = await outbox.load([item_id(4, "alerts", [_alert("01810").fingerprint])])
    assert [i.silent for i in held] == [True]
    # And back: the mute lifted, the rule on again, the chat active: the next alert reaches them.
    await subs.unmute(1, "01810")
    await subs.set_rule(2, "buyback_filed", on=True)
    await subs.touch(5)
    again = await route([_alert("01810", "insider_buy_near_round_number")], subs, outbox, NOW)
    assert again.chats == {1, 2, 3, 4, 5}  # chat 6 still wants warnings at least; chat 7 no longer watches
    assert again.skipped == {"below the chat's minimum severity": 1}
