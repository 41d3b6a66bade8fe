"""Publication → push latency: a file appears on a local origin, how long until the alert reaches the Bot API?

Runs the real bot (scheduler, cycle, routing, outbox, delivery) in-process against a local data origin and the
Bot API stand-in, with a private redis-server, the default polling cadence, and the clock set inside the
daily quotations window. For each sample the file is published at a random moment and the time until the
stand-in receives the alert message is recorded. Prints one table. Usage: python -m bench.bench_latency [N]
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import time
from datetime import date, datetime

os.environ.setdefault("PTB_TIMEDELTA", "1")

from redis.asyncio import Redis

from alerts.calendar import HK_TZ
from alerts.store.subscriptions import SubscriptionStore
from bench.benchkit import percentile, private_redis
from bot.app import build_application
from bot.demo import demo_root
from config.settings import load_settings
from tests.support.botapi import BotApi
from tests.support.bothelpers import TOKEN, seed_demo
from tests.support.origin import Origin

DAY = date(2025, 11, 27)
PATH = "/eng/stat/smstat/dayquot/d251127e.htm"
CHAT = 42


async def one_sample(redis_url: str, origin: Origin, api: BotApi, delay_s: float) -> float:
    """Start the bot, publish the file after `delay_s`, return seconds from publication to the message."""
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    await seed_demo(redis, exclude=frozenset({("hkex-quotes", DAY)}))
    for earlier in ("2025-11-20", "2025-11-21", "2025-11-24", "2025-11-25", "2025-11-26"):
        await redis.set(f"pb:cycle:hkex-quotes:{earlier}", "done")
    subs = SubscriptionStore(redis)
    await subs.touch(CHAT)
    await subs.watch(CHAT, ["00700"])
    origin.routes.pop(PATH, None)
    settings = load_settings(
        {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": api.base_url,
            "REDIS_URL": redis_url,
            "HKEX_URL": origin.url,
            "HKEXNEWS_URL": origin.url,
            "SFC_URL": origin.url,
            "HKEX_DI_URL": origin.url,
            "FINRA_URL": origin.url,
            "SEC_URL": origin.url,
        },
        env_file=None,
    )  # every source on the local origin: no network, no retry stalls
    start = datetime(2025, 11, 27, 17, 45, tzinfo=HK_TZ)
    offset = start - datetime.now(HK_TZ)
    app = build_application(settings, clock=lambda: datetime.now(HK_TZ) + offset, poll_sources=True)
    before = len(api.messages(CHAT))
    await app.initialize()
    await app.post_init(app)  # type: ignore[misc]
    await app.start()
    try:
        await asyncio.sleep(delay_s)
        origin.add(PATH, (demo_root() / PATH.lstrip("/")).read_bytes())
        published = time.monotonic()
        while len(api.messages(CHAT)) == before:
            if time.monotonic() - published > 120:
                raise RuntimeError("no message within 120 s")
            await asyncio.sleep(0.05)
        return time.monotonic() - published
    finally:
        await app.stop()
        await app.post_shutdown(app)  # type: ignore[misc]
        await app.shutdown()
        await redis.aclose()


async def main(samples: int) -> None:
    rng = random.Random(7)
    latencies = []
    with private_redis() as redis_url, Origin() as origin, BotApi() as api:
        for i in range(samples):
            delay = rng.uniform(1.0, 25.0)
            latency = await one_sample(redis_url, origin, api, delay)
            latencies.append(latency)
            print(
                f"sample {i + 1:>2}: published {delay:5.1f} s after start → pushed after {latency:5.1f} s",
                flush=True,
            )
    p95 = percentile(latencies, 95)
    print(
        f"publication → push over {samples} samples: median {statistics.median(latencies):.1f} s, "
        f"p95 {p95:.1f} s, max {max(latencies):.1f} s (target p95 ≤ 30 s; cadence 20 s inside the window)"
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10))
