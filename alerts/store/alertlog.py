"""Alerts kept in Redis by trade date and by code (for /top, /history and confluence across restarts).

Each entry says how it was found (`found_by`): "live" by a cycle that routed it to the watchers, or "replay" by a
backfill's point-in-time replay over stored files (`positioning-bot backfill`, `replay --record`). An alert found by
replay is history: it was never pushed, and a live cycle that finds the same fingerprint later does not push it
either (the pipeline routes only what `record` does not call historical).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import WatchError

from alerts.model import Alert
from alerts.store import keys

FOUND_BY = "found_by"  # field of a logged alert's JSON: LIVE or REPLAY (entries written before it are live)
LIVE, REPLAY = "live", "replay"


@dataclass(frozen=True)
class Logged:
    """One entry of the alert log: the alert and whether a backfill's replay found it (never pushed)."""

    alert: Alert
    historical: bool


@dataclass
class Recorded:
    """What recording a batch of alerts did, by fingerprint."""

    new: int = 0  # fingerprints the log did not hold
    known: int = 0  # held already with the same figures
    revised: int = 0  # held as historical with other figures (a revised file): the figures were replaced
    live: int = 0  # recording history: held already as found live (pushed), left as it was
    historical: set[str] = field(
        default_factory=set
    )  # fingerprints held as found by replay: never to be routed


class AlertLog:
    """Fired alerts, keyed by fingerprint: recording the same fingerprint again never duplicates it."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def record(self, alerts: Iterable[Alert]) -> int:
        """Store alerts a live cycle found; returns how many fingerprints were new."""
        return (await self.record_live(alerts)).new

    async def record_live(self, alerts: Iterable[Alert]) -> Recorded:
        """Store alerts a live cycle found: a new fingerprint as live; a live one stays as first recorded.

        A fingerprint a backfill recorded as historical stays historical (it is in `Recorded.historical`, so the
        caller does not route it); a revised file's figures replace its own, its point-in-time moment kept.
        """
        return await self._record(alerts, historical=False)

    async def record_historical(self, alerts: Iterable[Alert]) -> Recorded:
        """Store alerts a backfill's replay found, as history: never routed, their `published_at` when known.

        Idempotent: a fingerprint held with the same figures is counted as known; one held as historical with
        other figures (the file was revised) has them replaced; one held as found live is left as it was.
        """
        return await self._record(alerts, historical=True)

    async def _record(self, alerts: Iterable[Alert], *, historical: bool) -> Recorded:
        by_day: dict[date, dict[str, Alert]] = defaultdict(dict)
        for alert in alerts:
            by_day[alert.trade_date].setdefault(alert.fingerprint, alert)  # listed twice: recorded once
        out = Recorded()
        for day, found in sorted(by_day.items()):
            await self._record_day(day, found, historical, out)
        return out

    async def _record_day(self, day: date, found: dict[str, Alert], historical: bool, out: Recorded) -> None:
        """One trade date's alerts, read and written under WATCH: a live cycle and a backfill may run at once."""
        day_key = keys.alerts_by_day(day)
        fingerprints = list(found)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(day_key)
                    stored = await pipe.hmget(day_key, fingerprints)
                    step = Recorded()
                    writes = {
                        fp: body
                        for fp, raw in zip(fingerprints, stored, strict=True)
                        if (body := _decide(found[fp], raw, historical, step)) is not None
                    }
                    pipe.multi()
                    for fp, body in writes.items():
                        pipe.hset(day_key, fp, body)
                    pipe.expire(day_key, keys.ALERT_TTL_SECONDS)
                    await pipe.execute()
                    break
                except WatchError:  # the day changed between the read and the write: decide again
                    continue
        # The per-code index after the day's hash, outside its MULTI: each code's ZSET lives in its own slot of a
        # cluster. Safe apart: /history skips an index entry whose alert is not (yet) in the day's hash, and every
        # record of the day re-adds all its entries, so a crash between the two is mended by the next cycle.
        async with self.redis.pipeline(transaction=False) as index:
            for fp, alert in found.items():
                index.zadd(keys.alerts_by_code(alert.code), {fp: day.toordinal()})
            await index.execute()
        out.new += step.new
        out.known += step.known
        out.revised += step.revised
        out.live += step.live
        out.historical |= step.historical

    async def for_day(self, day: date) -> list[Alert]:
        """Alerts whose trade date is `day`."""
        return [entry.alert for entry in await self.logged_day(day)]

    async def logged_day(self, day: date) -> list[Logged]:
        """Entries whose trade date is `day`, each saying whether it is history found by replay."""
        raw = await self.redis.hvals(keys.alerts_by_day(day))
        return sorted(
            (_logged(json.loads(r)) for r in raw),
            key=lambda e: (e.alert.rule, e.alert.code, e.alert.identity),
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
        return [entry.alert for entry in await self.recent_logged(days)]

    async def recent_logged(self, days: Iterable[date]) -> list[Logged]:
        """Entries of several trade dates, each saying whether it is history found by replay."""
        out: list[Logged] = []
        for day in days:
            out.extend(await self.logged_day(day))
        return out


def _logged(data: dict[str, Any]) -> Logged:
    return Logged(Alert.from_dict(data), data.get(FOUND_BY) == REPLAY)


def _decide(alert: Alert, raw: bytes | str | None, historical: bool, step: Recorded) -> str | None:
    """The JSON to write for `alert` given what the log holds (None: leave it), counting the outcome in `step`."""
    fingerprint = alert.fingerprint
    if raw is None:
        step.new += 1
        if historical:
            step.historical.add(fingerprint)
        return _body(alert.as_dict(), REPLAY if historical else LIVE)
    held = json.loads(raw)
    if held.get(FOUND_BY) != REPLAY:  # found live first: pushed (or due to be), never relabelled or rewritten
        if historical:
            step.live += 1
        else:
            step.known += 1
        return None
    step.historical.add(fingerprint)
    fresh = alert.as_dict()
    if not historical and held.get("published_at"):
        # A live cycle re-finding a historical alert: the moment it first became known stays the replay's.
        fresh["published_at"] = held["published_at"]
    body = _body(fresh, REPLAY)
    if json.loads(body) == held:
        step.known += 1
        return None
    step.revised += 1
    return body


def _body(data: dict[str, Any], found_by: str) -> str:
    return json.dumps({**data, FOUND_BY: found_by}, ensure_ascii=False)
