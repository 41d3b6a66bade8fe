"""The cached US ticker map read backwards: issuer CIK → ticker (alerts.tickers writes the map)."""

from __future__ import annotations

from redis.asyncio import Redis

from alerts.store import keys


async def tickers_by_cik(redis: Redis) -> dict[str, str]:
    """CIK → ticker from the cached map (empty when it is not loaded).

    An issuer with several tickers (share classes) gets the shortest, then the first alphabetically (GOOG before
    GOOGL), the same one every time.
    """
    raw = await redis.hgetall(keys.US_TICKERS)
    out: dict[str, str] = {}
    for key, value in raw.items():
        ticker = key.decode() if isinstance(key, bytes) else str(key)
        cik = value.decode() if isinstance(value, bytes) else str(value)
        current = out.get(cik)
        if current is None or (len(ticker), ticker) < (len(current), current):
            out[cik] = ticker
    return out
