"""A leader stepping down (lease lost, SIGTERM) stops its delivery at the next item and hands the rest back.

Found by the kill -9 suite: PTB shields job bodies from cancellation, so a drain that outlived the application went
on sending with the closed HTTP client, failing every claimed item and spending its retry attempts."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest
from redis.asyncio import Redis
from telegram import Bot

from alerts.calendar import HK_TZ
from alerts.store import keys
from alerts.store.outbox import Outbox, OutboxItem, item_id
from alerts.store.subscriptions import SubscriptionStore
from bot.delivery import worker_for
from tests.faults.harness import until
from tests.support.botapi import BotApi
from tests.support.bothelpers import TOKEN, bot_settings

pytestmark = pytest.mark.faults

CHAT = 8601
NOW = datetime(2025, 11, 28, 20, 0, tzinfo=HK_TZ)


async def test_stopped_worker_finishes_its_item_and_hands_the_rest_back(
    redis: Redis, redis_url: str, api: BotApi
) -> None:
    subs, outbox = SubscriptionStore(redis), Outbox(redis)
    await subs.touch(CHAT)
    for n in range(6):  # one chat: about one message a second, so the drain takes several seconds
        await outbox.put(
            OutboxItem(id=item_id(CHAT, "text", [str(n)]), chat_id=CHAT, kind="text", text=f"item {n}"), NOW
        )
    bot = Bot(TOKEN, base_url=api.base_url)
    await bot.initialize()
    try:
        worker = worker_for(bot, redis, bot_settings(api, redis_url), lambda: NOW)
        drain = asyncio.create_task(worker.drain())
        await until(lambda: api.messages(CHAT), 20, "the first send")
        worker.stop()
        stopped = time.monotonic()
        report = await asyncio.wait_for(drain, 10)
        took = time.monotonic() - stopped
    finally:
        await bot.shutdown()
    sent = len(api.messages(CHAT))
    assert took < 2.5, f"the drain went on for {took:.1f} s after stop()"
    assert report.sent == sent < 6
    left = await redis.zrange(keys.OUTBOX_DUE, 0, -1, withscores=True)
    assert len(left) == 6 - sent
    assert all(score <= NOW.timestamp() for _, score in left), (
        "handed back due now, not after the claim lease"
    )
    assert not await redis.lrange(keys.OUTBOX_DEAD, 0, -1)
