"""Rendered charts in Redis: PNG bytes and Telegram's file_id per stock, kind, language and data day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from redis.asyncio import Redis

from alerts.store import keys


@dataclass(frozen=True)
class ChartKey:
    """Which chart: stock, kind, language and the trading day its data end on."""

    code: str
    kind: str
    lang: str
    day: date

    @property
    def redis_key(self) -> str:
        """The Redis HASH holding this chart."""
        return keys.chart(self.code, self.kind, self.lang, self.day)


@dataclass(frozen=True)
class Cached:
    """What Redis holds for a chart (either part may be missing)."""

    png: bytes | None
    file_id: str | None


class ChartCache:
    """PNG bytes and file_id of each chart, expiring after `keys.CHART_TTL_SECONDS`."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def get(self, key: ChartKey) -> Cached:
        """The cached PNG and file_id (None where absent)."""
        png, file_id = await self.redis.hmget(key.redis_key, ["png", "file_id"])
        if isinstance(file_id, bytes):
            file_id = file_id.decode()
        # The client returns bytes (no decode_responses): a PNG is never text.
        return Cached(png if isinstance(png, bytes) else None, file_id or None)

    async def put_png(self, key: ChartKey, png: bytes) -> None:
        """Store a freshly drawn PNG."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key.redis_key, "png", png)
            pipe.expire(key.redis_key, keys.CHART_TTL_SECONDS)
            await pipe.execute()

    async def put_file_id(self, key: ChartKey, file_id: str) -> None:
        """Remember Telegram's id of the uploaded photo: later sends pass it instead of the bytes."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key.redis_key, "file_id", file_id)
            pipe.expire(key.redis_key, keys.CHART_TTL_SECONDS)
            await pipe.execute()

    async def forget_file_id(self, key: ChartKey) -> None:
        """Drop a file_id Telegram refused, so the next send uploads again."""
        await self.redis.hdel(key.redis_key, "file_id")
