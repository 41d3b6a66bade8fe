"""Routing, digests and per-chat decisions against a real redis-server (the stores: tests/alerts/store)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

from redis.asyncio import Redis

from alerts.calendar import HK_TZ
from alerts.model import Alert
from alerts.routing import flush_digest, route
from alerts.store import keys
from alerts.store.outbox import Outbox, OutboxItem, item_id
from alerts.store.subscriptions import ChatSettings, SubscriptionStore, parse_quiet

NOW = datetime(2025, 11, 24, 16, 30, tzinfo=HK_TZ)


def _alert(code: str = "01810", rule: str = "buyback_filed", day: date = date(2025, 11, 21)) -> Alert:
    return Alert(rule=rule, code=code, trade_date=day, severity="notice", why=f"{rule} on {code}", name="X")


async def test_route_groups_per_chat_once_and_respects_mutes_rules_and_quiet(redis: Redis) -> None:
    subs, outbox = SubscriptionStore(redis), Outbox(redis)
    for chat in (1, 2, 3, 4):
        await subs.touch(chat)
        await subs.watch(chat, ["01810"])
    await subs.mute(2, "01810", NOW + timedelta(days=1))
    await subs.set_rule(3, "buyback_filed", on=False)
    await subs.set_quiet(4, parse_quiet("16:00-08:00"))
    alerts = [_alert(), _alert(rule="insider_buy_near_round_number")]
    report = await route(alerts, subs, outbox, NOW)
    assert report.enqueued == 3  # chat 1 (2 alerts), chat 3 (insider only), chat 4 (held for quiet hours)
    assert report.skipped == {"01810 muted": 2, "rule buyback_filed off": 1}
    items = {i.chat_id: i for i in await outbox.claim(NOW, 10)}
    assert set(items) == {1, 3}  # chat 4's item is due when quiet hours end
    assert len(items[1].alerts) == 2
    assert [a["rule"] for a in items[3].alerts] == ["insider_buy_near_round_number"]
    for sent in items.values():
        await outbox.done(sent.id)
    later = await outbox.claim(datetime(2025, 11, 25, 8, 0, tzinfo=HK_TZ), 10)
    assert [(i.chat_id, i.silent) for i in later] == [(4, True)]
    # Re-routing the same alerts (a re-run, a revised file) enqueues nothing new.
    again = await route(alerts, subs, outbox, NOW)
    assert again.enqueued == 0 and again.skipped["already routed"] == 5


async def test_market_alerts_only_to_opted_in_chats(redis: Redis) -> None:
    subs, outbox = SubscriptionStore(redis), Outbox(redis)
    await subs.touch(1)
    await subs.touch(2)
    await subs.set_market(2, True)
    report = await route([_alert(code="MARKET", rule="market_short_swing")], subs, outbox, NOW)
    assert report.chats == {2}


async def test_digest_holds_then_flushes_one_item(redis: Redis) -> None:
    subs, outbox = SubscriptionStore(redis), Outbox(redis)
    await subs.touch(7)
    await subs.watch(7, ["01810", "00700"])
    await subs.set_digest(7, True)
    report = await route([_alert(), _alert(code="00700")], subs, outbox, NOW)
    assert (report.enqueued, report.digested) == (0, 2)
    assert await outbox.pending() == 0
    assert await flush_digest(subs, outbox, 7, NOW) is True
    assert await flush_digest(subs, outbox, 7, NOW) is False
    (item,) = await outbox.claim(NOW, 10)
    assert item.kind == "digest" and len(item.alerts) == 2


def test_per_rule_threshold_on_a_fact() -> None:
    from alerts.model import Fact
    from alerts.routing import decide

    settings = ChatSettings(1, thresholds={"short_ratio_drop": {"z": 3.0}, "_all": {"min_severity": 1}})
    weak = _alert(rule="short_ratio_drop")
    weak = Alert(**{**weak.__dict__, "facts": (Fact("z", -2.4, "σ"),)})
    strong = Alert(**{**weak.__dict__, "facts": (Fact("z", -3.6, "σ"),)})
    info = Alert(**{**strong.__dict__, "severity": "info"})
    assert decide(weak, settings, {}).reason == "short_ratio_drop z below the chat's threshold"
    assert decide(strong, settings, {}).send is True
    assert decide(info, settings, {}).reason == "below the chat's minimum severity"


async def test_alert_bodies_are_stored_once_and_items_refer_to_them(redis: Redis) -> None:
    subs, outbox = SubscriptionStore(redis), Outbox(redis)
    chats = list(range(100, 400))
    for chat in chats:
        await subs.touch(chat)
        await subs.watch(chat, ["01810"])
    alert = _alert()
    assert (await route([alert], subs, outbox, NOW)).enqueued == len(chats)
    # One body in Redis; every item holds only the fingerprint, so 300 recipients cost 300 small items, not 300 copies.
    bodies = [k async for k in redis.scan_iter(match=keys.outbox_alert("*"))]
    assert bodies == [keys.outbox_alert(alert.fingerprint).encode()]
    assert 0 < await redis.ttl(keys.outbox_alert(alert.fingerprint)) <= keys.OUTBOX_ALERT_TTL_SECONDS
    # A pass's items are compact entries of one hash naming the alert by its index in the pass's batch record.
    assert [k async for k in redis.scan_iter(match=keys.outbox_item("*"))] == []
    assert await redis.hlen(keys.OUTBOX_ITEMS) == len(chats)
    entry = await redis.hget(keys.OUTBOX_ITEMS, item_id(chats[0], "alerts", [alert.fingerprint]))
    assert entry is not None and entry.endswith(f" {chats[0]} 0 0".encode())
    (stored,) = await outbox.load([item_id(chats[0], "alerts", [alert.fingerprint])])
    assert (stored.refs, stored.chat_id, stored.created_at) == (
        [alert.fingerprint],
        chats[0],
        NOW.isoformat(),
    )
    items = await outbox.claim(NOW, len(chats))
    assert {i.chat_id for i in items} == set(chats)
    assert all(Alert.from_dict(i.alerts[0]) == alert for i in items)  # filled in on claim, intact
    # Rescheduled items stay by reference; a dead letter keeps the whole alert for the admins to read.
    await outbox.reschedule(items[0], NOW)
    assert OutboxItem.from_json(await redis.get(keys.outbox_item(items[0].id))).alerts == []
    await outbox.dead_letter(items[1], "400 Bad Request: chat not found", NOW)
    (dead,) = await outbox.dead()
    assert dead["item"]["alerts"][0]["fingerprint"] == alert.fingerprint


async def test_items_and_digests_queued_in_the_older_inline_form_still_deliver(redis: Redis) -> None:
    subs, outbox = SubscriptionStore(redis), Outbox(redis)
    old_item = OutboxItem(
        id=item_id(8, "alerts", ["x"]), chat_id=8, kind="alerts", alerts=[_alert().as_dict()]
    )
    await redis.set(keys.outbox_item(old_item.id), old_item.to_json())
    await redis.zadd(keys.OUTBOX_DUE, {old_item.id: NOW.timestamp()})
    (loaded,) = await outbox.claim(NOW, 10)
    assert Alert.from_dict(loaded.alerts[0]) == _alert()
    await outbox.done(loaded.id)
    await subs.touch(9)
    await subs.set_digest(9, True)
    await subs.watch(9, ["01810", "00700"])
    await redis.rpush(keys.digest_queue(9), json.dumps(_alert(code="00700").as_dict()))  # an inline entry
    await route([_alert()], subs, outbox, NOW)  # a fingerprint entry
    assert await flush_digest(subs, outbox, 9, NOW) is True
    (digest,) = await outbox.claim(NOW, 10)
    assert sorted(a["code"] for a in digest.alerts) == ["00700", "01810"]


async def test_an_item_whose_alert_bodies_are_gone_is_dropped_not_sent_empty(redis: Redis) -> None:
    subs, outbox = SubscriptionStore(redis), Outbox(redis)
    await subs.touch(3)
    await subs.watch(3, ["01810"])
    await route([_alert()], subs, outbox, NOW)
    await redis.delete(keys.outbox_alert(_alert().fingerprint))
    assert await outbox.claim(NOW, 10) == []
    assert await outbox.pending() == 0
