"""Transactions outside the store classes (kept failed files, the US ticker map, chart cache, command budget) keep
their keys in one slot: run on one server and on the cluster like the rest of tests/alerts/store."""

from __future__ import annotations

from datetime import date, datetime

from redis.asyncio import Redis
from telegram import Chat, User

from alerts.calendar import HK_TZ
from alerts.errors import MalformedFile
from alerts.store import keys
from alerts.store.failed import FailedFiles
from alerts.tickers import cik_for, needs_refresh, refresh
from bot.chartcache import ChartCache, ChartKey
from bot.fairness import Verdict, spend
from tests.support.origin import Origin
from tests.support.paths import FIXTURES

NOW = datetime(2025, 11, 20, 18, 0, tzinfo=HK_TZ)
DAY = date(2025, 11, 20)
UA = "positioning-bot tests admin@example.com"


async def test_kept_failed_files_are_written_listed_and_dropped(redis: Redis) -> None:
    failed = FailedFiles(redis)
    kept = await failed.put(
        "hkex-quotes",
        DAY,
        url="https://x/d251120e.htm",
        content=b"<html>",
        now=NOW,
        error=MalformedFile("bad"),
    )
    assert kept is not None
    assert [k.sha256 for k in await failed.kept("hkex-quotes")] == [kept.sha256]
    assert await failed.content(kept) == b"<html>"
    assert await failed.forget_day("hkex-quotes", DAY) == 1
    assert await failed.kept("hkex-quotes") == []


async def test_the_ticker_map_is_replaced_in_one_transaction(redis: Redis, origin: Origin) -> None:
    origin.add(
        "/files/company_tickers.json", (FIXTURES / "sec-form4" / "edgarkit_company_tickers.json").read_bytes()
    )
    assert await refresh(redis, origin.url, UA, backoff=0.01) > 9000
    assert await cik_for(redis, "aapl") == "320193"
    assert not await needs_refresh(redis)
    assert 0 < await redis.ttl(keys.US_TICKERS) <= keys.US_TICKERS_TTL_SECONDS


async def test_chart_cache_and_command_budget(redis: Redis) -> None:
    cache, key = ChartCache(redis), ChartKey("00700", "short_ratio", "en", DAY)
    await cache.put_png(key, b"\x89PNG")
    await cache.put_file_id(key, "file-1")
    cached = await cache.get(key)
    assert (cached.png, cached.file_id) == (b"\x89PNG", "file-1")
    group, member = Chat(-100, Chat.SUPERGROUP), User(7, "m", is_bot=False)
    verdicts = [await spend(redis, group, member, NOW, per_minute=2) for _ in range(4)]
    assert verdicts == [Verdict.OK, Verdict.OK, Verdict.WARN, Verdict.DROP]
