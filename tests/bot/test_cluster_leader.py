"""The leader's whole path on a real three-primary Redis Cluster (REDIS_URL=redis+cluster://…), in-process: the
`scheduler` takes the lease, runs a real cycle for a demo file on the local origin and routes its alerts; a
`delivery` process sends them through the limiter shared in Redis; a second `scheduler` waits as standby."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from alerts.store import keys
from alerts.store.connect import connect_url, is_cluster
from alerts.store.outbox import Outbox
from alerts.store.subscriptions import SubscriptionStore
from bot.couriers import serve_delivery
from bot.leader import serve
from config.settings import Settings, load_settings
from tests.faults.harness import BASE_SETTINGS, until
from tests.faults.scenario import serve_demo
from tests.support.botapi import BotApi
from tests.support.bothelpers import TOKEN, seed_demo
from tests.support.origin import Origin

DAY = date(2025, 11, 27)
SOURCE = "hkex-quotes"
# Inside the quotes' evening window; a start of its own (the process clock's offset is kept per CLOCK_START).
CLOCK_START = "2025-11-27T18:00:40+08:00"
WATCH_TENCENT, WATCH_BABA = 4201, 4301
# The delivery process sends with a token of its own (the same bot id): its sends are told from the scheduler's.
DELIVERY_TOKEN = TOKEN[:-1] + "d"


@pytest.fixture
async def cluster(redis_cluster_url: str) -> AsyncIterator[Redis]:
    """A client on the private cluster, every primary flushed."""
    client = connect_url(redis_cluster_url)
    await client.flushall(target_nodes=RedisCluster.PRIMARIES)
    yield client
    await client.aclose()


def _settings(api: BotApi, url: str, origin: Origin, **env: str) -> Settings:
    return load_settings(
        {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": api.base_url,
            "REDIS_URL": url,
            "CLOCK_START": CLOCK_START,
            "LEASE_TTL_SECONDS": "3",
            **{name: origin.url for name in BASE_SETTINGS},
            **env,
        },
        env_file=None,
    )


async def _holder(redis: Redis) -> str | None:
    raw = await redis.get(keys.leader_lease())
    return raw.decode() if raw else None


async def _record_holders(redis: Redis, seen: list[str | None], stop: asyncio.Event) -> None:
    """Sample the lease holder until `stop`: every owner that led meanwhile shows up in `seen`."""
    while not stop.is_set():
        seen.append(await _holder(redis))
        await asyncio.sleep(0.05)


async def _stop(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    stop.set()
    await asyncio.wait_for(task, timeout=15)


@pytest.mark.timeout(90)
async def test_scheduler_leads_cycles_and_routes_on_the_cluster_and_delivery_sends(
    cluster: Redis, redis_cluster_url: str, origin: Origin, api: BotApi
) -> None:
    assert is_cluster(cluster)
    await seed_demo(cluster, exclude=frozenset({(SOURCE, DAY)}))
    subs = SubscriptionStore(cluster)
    for chat, code in ((WATCH_TENCENT, "00700"), (WATCH_BABA, "09988")):
        await subs.touch(chat)
        await subs.watch(chat, [code])
    await subs.set_market(WATCH_TENCENT, True)
    served = serve_demo(origin, [(SOURCE, DAY)])
    assert served

    outbox = Outbox(cluster)
    settings = _settings(api, redis_cluster_url, origin)
    stops = {name: asyncio.Event() for name in ("leader", "standby", "delivery")}
    delivery = asyncio.create_task(
        serve_delivery(
            _settings(api, redis_cluster_url, origin, TELEGRAM_BOT_TOKEN=DELIVERY_TOKEN),
            stop=stops["delivery"],
        )
    )
    leader = asyncio.create_task(serve(settings, scheduler_only=True, stop=stops["leader"]))
    standby: asyncio.Task[None] | None = None
    seen: list[str | None] = []
    sampled = asyncio.Event()

    async def delivered() -> bool:
        """Both chats have their alert and nothing is left in the outbox (a chart photo follows its text)."""
        return bool(api.messages(WATCH_TENCENT) and api.messages(WATCH_BABA)) and not await outbox.pending()

    try:
        await until(lambda: _holder(cluster), 20, "the scheduler to take the lease")
        first = await _holder(cluster)
        standby = asyncio.create_task(serve(settings, scheduler_only=True, stop=stops["standby"]))
        sampler = asyncio.create_task(_record_holders(cluster, seen, sampled))
        try:
            await until(delivered, 40, "the routed alerts delivered")
        finally:
            sampled.set()
            await sampler
        assert set(seen) == {first} and not standby.done()  # the standby waited while the scheduler led
        assert await cluster.exists(keys.cycle_done(SOURCE, DAY))
        assert any(r.path in served for r in origin.requests)

        await _stop(leader, stops["leader"])  # released on a graceful stop: the standby takes over
        await until(lambda: _holder(cluster), 10, "the standby to take the lease")
        assert await _holder(cluster) not in (None, first)
    finally:
        for name, task in (("leader", leader), ("standby", standby), ("delivery", delivery)):
            if task is not None and not task.done():
                await _stop(task, stops[name])

    tencent = [m for m in api.messages(WATCH_TENCENT) if "photo" not in m]
    baba = [m for m in api.messages(WATCH_BABA) if "photo" not in m]
    assert len(tencent) == 1 and "00700" in tencent[0]["text"]
    assert "Market-wide short selling swing" in tencent[0]["text"]
    assert len(baba) == 1 and "09988" in baba[0]["text"] and "Short-selling ratio drop" in baba[0]["text"]
    sends = [c for c in api.sent if c.method in ("sendMessage", "sendPhoto") and c.ok]
    assert sends and {c.token for c in sends} == {DELIVERY_TOKEN}  # the scheduler sends nothing itself
    assert api.calls("getUpdates") == []  # a scheduler takes no updates
