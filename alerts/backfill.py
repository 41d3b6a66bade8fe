"""History from day one: the alerts a backfilled span would have fired, recorded in the alert log as historical.

`positioning-bot backfill` only fetches files; without this, /history and hit rates would start from the first
live cycle. `record_history` replays the rules point in time over what Redis holds (each publication event sees
only the rows published by its moment, as alerts.replay does) and records every alert found as history: never
pushed, never routed, marked as found by replay, deduplicated with live alerts by fingerprint (alerts.store.alertlog).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime

from redis.asyncio import Redis

from alerts.history import load_store, span
from alerts.replay import ReplayResult, replay
from alerts.rules import RuleParams, load_params
from alerts.store.alertlog import AlertLog, Recorded
from alerts.store.frames import FrameStore


@dataclass(frozen=True)
class HistoryRecord:
    """A backfill's record: the replay and what recording its alerts did."""

    result: ReplayResult
    recorded: Recorded
    later: int  # alerts whose file counts as known only after `now` (fetched early): left to the live cycle

    def line(self) -> str:
        """``recorded 12 historical alerts (0 already known)`` and the rarer counts when they are not zero."""
        known = self.recorded.known + self.recorded.revised
        extra = [f"{known} already known"]
        if self.recorded.revised:
            extra.append(f"{self.recorded.revised} revised")
        if self.recorded.live:
            extra.append(f"{self.recorded.live} already found live")
        if self.later:
            extra.append(f"{self.later} not yet due, left to the live cycle")
        noun = "alert" if self.recorded.new == 1 else "alerts"
        return f"recorded {self.recorded.new} historical {noun} ({', '.join(extra)})"


async def record_history(
    redis: Redis,
    start: date,
    end: date,
    now: datetime,
    *,
    params: RuleParams | None = None,
    codes: frozenset[str] | None = None,
) -> HistoryRecord:
    """Replay the stored data over [start, end] point in time and record the alerts known by `now` as history."""
    first, last = span(start, end)
    history = await load_store(FrameStore(redis), first, last)
    # Seconds of pandas over months of files: off the event loop.
    result = await asyncio.to_thread(replay, history, start, end, params or load_params(), codes)
    return await record_result(redis, result, now)


async def record_result(redis: Redis, result: ReplayResult, now: datetime) -> HistoryRecord:
    """Record a replay's alerts as history, except those whose file counts as known after `now`."""
    # A file fetched before its due moment counts from that moment: its alerts are still news, the live cycle's.
    known = [a for _, a in result.alerts if a.published_at is None or a.published_at <= now]
    recorded = await AlertLog(redis).record_historical(known)
    return HistoryRecord(result, recorded, len(result.alerts) - len(known))
