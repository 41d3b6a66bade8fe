"""Routing's in-process cache of watchers, settings and mutes: every store write that routing reads invalidates it."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from redis.asyncio import Redis

from alerts.calendar import HK_TZ
from alerts.store import audience as audience_module
from alerts.store import keys
from alerts.store.audience import audience, warm
from alerts.store.subscriptions import SubscriptionStore

NOW = datetime(2025, 11, 24, 16, 30, tzinfo=HK_TZ)


async def _logged(redis: Redis) -> tuple[int, list[bytes], list[bytes]]:
    version = int(await redis.get(keys.SUBS_VERSION) or 0)
    chats = await redis.zrangebyscore(keys.SUBS_CHANGED_CHATS, version, version)
    codes = await redis.zrangebyscore(keys.SUBS_CHANGED_CODES, version, version)
    return version, chats, codes


async def test_every_write_routing_reads_logs_its_chat_and_codes(redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    await subs.touch(1)
    assert await _logged(redis) == (1, [b"1"], [])
    await subs.touch(1)  # an ordinary command: nothing routing reads changed, nothing logged
    assert (await _logged(redis))[0] == 1
    await subs.touch(1, "group")  # the chat's type changed
    assert (await _logged(redis))[0] == 2
    writes = [
        (subs.watch(1, ["01810", "00700"]), [b"1"], [b"00700", b"01810"]),
        (subs.unwatch(1, ["00700"]), [b"1"], [b"00700"]),
        (subs.set_lang(1, "zh"), [b"1"], []),
        (subs.set_quiet(1, (time(22), time(7))), [b"1"], []),
        (subs.set_digest(1, True), [b"1"], []),
        (subs.set_market(1, True), [b"1"], [b"MARKET"]),
        (subs.set_rule(1, "buyback_filed", on=False), [b"1"], []),
        (subs.set_threshold(1, "short_ratio_drop", "z", 3.0), [b"1"], []),
        (subs.set_thread(1, 5), [b"1"], []),
        (subs.mute(1, "01810", NOW + timedelta(days=1)), [b"1"], []),
        (subs.unmute(1, "01810"), [b"1"], []),
        (subs.deactivate(1), [b"1"], []),
        (subs.migrate(1, 2), [b"1", b"2"], [b"01810", b"MARKET"]),
    ]
    for version, (write, chats, codes) in enumerate(writes, start=3):
        await write
        assert await _logged(redis) == (version, chats, codes)


async def test_changes_are_re_read_and_the_rest_reused(redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    for chat in (1, 2):
        await subs.touch(chat)
        await subs.watch(chat, ["01810"])
    seen = await audience(redis)
    assert (await seen.watchers(["01810"]))["01810"].tolist() == [1, 2]
    await seen.load([1, 2])
    assert seen.route_of(1) is None and seen.filtering().tolist() == []  # plain chats
    # A write behind the store's back is not seen (the cache is reused) …
    await redis.sadd(keys.watchers("01810"), 3)
    assert (await (await audience(redis)).watchers(["01810"]))["01810"].tolist() == [1, 2]
    # … a write through the store is, and only what it changed is read again.
    await subs.mute(2, "01810", NOW + timedelta(hours=1))
    await subs.watch(4, ["01810"])
    seen = await audience(redis)
    assert (await seen.watchers(["01810"]))["01810"].tolist() == [1, 2, 3, 4]
    await seen.load([1, 2, 4])
    route = seen.route_of(2)
    assert route is not None and set(route.mutes) == {"01810"}
    assert seen.filtering().tolist() == [2]


async def test_a_dataset_that_lost_its_data_is_never_served_from_the_old_cache(redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    await subs.watch(1, ["01810"])
    assert (await (await audience(redis)).watchers(["01810"]))["01810"].tolist() == [1]
    await redis.flushdb()  # Redis restarted empty: the version counter starts again from nothing
    await subs.watch(9, ["01810"])
    assert (await (await audience(redis)).watchers(["01810"]))["01810"].tolist() == [9]


async def test_the_cache_is_rebuilt_after_its_maximum_age(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    subs = SubscriptionStore(redis)
    await subs.watch(1, ["01810"])
    await (await audience(redis)).watchers(["01810"])
    await redis.sadd(keys.watchers("01810"), 3)  # behind the store's back
    monkeypatch.setattr(audience_module, "MAX_AGE_SECONDS", -1.0)
    assert (await (await audience(redis)).watchers(["01810"]))["01810"].tolist() == [1, 3]


async def test_warm_reads_every_chat_ahead_of_routing_then_only_what_changes(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    subs = SubscriptionStore(redis)
    for chat in (1, 2, 3):
        await subs.touch(chat)
    await subs.set_digest(2, True)
    await subs.watch(1, ["01810"])
    await (await audience(redis)).watchers(["01810"])  # a code a pass asked for
    assert await warm(redis) == 3
    seen = await audience(redis)
    route = seen.route_of(2)  # loaded without any pass asking for chat 2
    assert seen.route_of(1) is None and route is not None and route.settings.digest
    assert await warm(redis) == 0  # young: nothing read again
    await subs.set_digest(1, True)  # a change after the warm-up is re-read as ever
    seen = await audience(redis)
    await seen.load([1])
    assert (route := seen.route_of(1)) is not None and route.settings.digest
    # Past REWARM_SECONDS the cache is rebuilt aside, the codes asked for read again, and swapped in.
    await redis.sadd(keys.watchers("01810"), 7)  # behind the store's back: only a rebuild sees it
    monkeypatch.setattr(audience_module, "REWARM_SECONDS", -1.0)
    assert await warm(redis) == 3
    seen = await audience(redis)
    assert seen.route_of(3) is None and (await seen.watchers(["01810"]))["01810"].tolist() == [1, 7]
