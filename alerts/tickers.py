"""US ticker → SEC CIK map from company_tickers.json, cached in Redis and refreshed weekly."""

from __future__ import annotations

from redis.asyncio import Redis

from alerts.fetch import fetch, make_client
from alerts.sources.sec_edgar import check_user_agent, parse_company_tickers
from alerts.store import keys

TICKERS_PATH = "/files/company_tickers.json"


async def needs_refresh(redis: Redis) -> bool:
    """True when the cached map is missing or older than a week."""
    ttl = await redis.ttl(keys.US_TICKERS)
    return ttl < 0 or keys.US_TICKERS_TTL_SECONDS - ttl >= keys.US_TICKERS_REFRESH_SECONDS


async def refresh(redis: Redis, sec_url: str, user_agent: str, *, backoff: float = 0.5) -> int:
    """Fetch company_tickers.json and replace the cached map atomically; returns the number of tickers."""
    check_user_agent(user_agent)
    async with make_client(user_agent) as client:  # SEC wants the operator's own User-Agent on every request
        fetched = await fetch(client, sec_url + TICKERS_PATH, source="sec-tickers", backoff=backoff)
    mapping = parse_company_tickers(fetched.content)
    staging = keys.US_TICKERS + ":new"
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(staging)
        pipe.hset(staging, mapping=mapping)
        pipe.rename(staging, keys.US_TICKERS)
        pipe.expire(keys.US_TICKERS, keys.US_TICKERS_TTL_SECONDS)
        await pipe.execute()
    return len(mapping)


async def cik_for(redis: Redis, ticker: str) -> str | None:
    """The CIK of a ticker, or None when unknown (or the map is not loaded)."""
    raw = await redis.hget(keys.US_TICKERS, ticker.upper())
    return raw.decode() if raw else None


async def known(redis: Redis, ticker: str) -> bool | None:
    """True/False when the map is loaded, None when it is not (callers then accept the ticker)."""
    if not await redis.exists(keys.US_TICKERS):
        return None
    return await cik_for(redis, ticker) is not None
