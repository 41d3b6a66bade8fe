"""Alerts kept in Redis by trade date and by code (for /top, /history and confluence across restarts)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date
from typing import cast

from redis.asyncio import Redis

from alerts.model import Alert
from alerts.store import keys


class AlertLog:
    """Fired alerts, keyed by fingerprint (a revision re-recording an alert overwrites, never duplicates)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def record(self, alerts: Iterable[Alert]) -> int:
        """Store alerts; returns how many fingerprints were new."""
        new = 0
        async with self.redis.pipeline(transaction=True) as pipe:
            for alert in alerts:
                day_key = keys.alerts_by_day(alert.trade_date)
                pipe.hsetnx(day_key, alert.fingerprint, json.dumps(alert.as_dict(), ensure_ascii=False))
                pipe.expire(day_key, keys.ALERT_TTL_SECONDS)
                pipe.zadd(keys.alerts_by_code(alert.code), {alert.fingerprint: alert.trade_date.toordinal()})
            results = await pipe.execute()
        new = sum(1 for r in results[0::3] if r)
        return new

    async def for_day(self, day: date) -> list[Alert]:
        """Alerts whose trade date is `day`."""
        raw = await self.redis.hvals(keys.alerts_by_day(day))
        return sorted(
            (Alert.from_dict(json.loads(r)) for r in raw), key=lambda a: (a.rule, a.code, a.identity)
        )

    async def for_code(self, code: str, limit: int = 50) -> list[Alert]:
        """The latest `limit` alerts of a code, oldest first."""
        reply = await self.redis.zrange(keys.alerts_by_code(code), -limit, -1, withscores=True)
        # redis-py types every range reply alike; with scores it is (fingerprint, score) pairs.
        rows = cast("list[tuple[bytes | str, float]]", reply)
        out = []
        for fingerprint, score in rows:
            raw = await self.redis.hget(keys.alerts_by_day(date.fromordinal(int(score))), fingerprint)
            if raw is not None:
                out.append(Alert.from_dict(json.loads(raw)))
        return out

    async def recent(self, days: Iterable[date]) -> list[Alert]:
        """Alerts of several trade dates."""
        out: list[Alert] = []
        for day in days:
            out.extend(await self.for_day(day))
        return out
