"""One cycle for a source and date: fetch → parse → store → rules → alert log → route → outbox.

Idempotent per (source, date): the digest of the processed content is recorded last, so re-running a cycle for
the same file does nothing, a revised file is processed again (only new fingerprints reach anyone), and a cycle cut
short by a crash is finished by the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pandas as pd
from redis.asyncio import Redis

from alerts.calendar import HK_TZ, previous_sessions, schedule_for
from alerts.errors import MalformedFile, NotPublishedYet, SourceError
from alerts.history import FEEDS, load_store
from alerts.ingest import ingest, known_at, urls_for
from alerts.model import Alert
from alerts.routing import route
from alerts.rules import RuleContext, RuleParams, evaluate, feeds_for, load_params, rules_for
from alerts.rules.context import CONTEXT_FIELDS
from alerts.rules.spec import Market
from alerts.sources import FEEDS as SOURCE_FEEDS
from alerts.sources import get_source
from alerts.sources.common import empty_frame
from alerts.store import keys
from alerts.store.alertlog import AlertLog
from alerts.store.frames import FrameStore
from alerts.store.outbox import Outbox
from alerts.store.subscriptions import SubscriptionStore
from config.settings import Settings

log = logging.getLogger("alerts.cycle")
NY_TZ = ZoneInfo("America/New_York")
HISTORY_SESSIONS = 130  # ≥ the rules' longest lookback (120 sessions) plus room
# Trade dates whose alerts confluence reads: its window is 5 sessions of knowledge time, and an SFC position
# is known a week after its date, a director's dealing days after the trade, so look further back than 5.
CONFLUENCE_SESSIONS = 12


@dataclass
class CycleReport:
    """What one cycle did, for the structured log line, metrics and the CLI."""

    source: str
    day: date
    status: str  # processed | unchanged | not_published | malformed | failed
    rows: int = 0
    alerts: int = 0
    new_alerts: int = 0
    historical: int = 0  # alerts a backfill had recorded as history: not routed
    enqueued: int = 0
    duration_s: float = 0.0
    lag_s: float | None = None
    error: str = ""
    fingerprints: list[str] = field(default_factory=list)
    # The error behind a failed status (its evidence feeds the admins' notice); not part of the log line.
    failure: SourceError | None = field(default=None, repr=False, compare=False)

    def line(self) -> str:
        """One key=value line per cycle."""
        lag = "" if self.lag_s is None else f" lag_s={self.lag_s:.0f}"
        error = f' error="{self.error[:300]}"' if self.error else ""
        return (
            f"cycle source={self.source} date={self.day.isoformat()} status={self.status} rows={self.rows} "
            f"alerts={self.alerts} new={self.new_alerts} historical={self.historical} enqueued={self.enqueued} "
            f"duration_s={self.duration_s:.2f}{lag}{error}"
        )


async def is_done(redis: Redis, source: str, day: date) -> bool:
    """True when a cycle for (source, day) completed (the scheduler stops polling that file)."""
    return bool(await redis.exists(keys.cycle_done(source, day)))


async def _digest(store: FrameStore, urls: list[str]) -> str:
    states = [await store.fetch_state(url) for url in urls]
    return hashlib.sha256("|".join(s.sha256 or "" for s in states).encode()).hexdigest()


async def run_cycle(
    source_name: str,
    day: date,
    *,
    settings: Settings,
    client: httpx.AsyncClient,
    redis: Redis,
    now: datetime,
    params: RuleParams | None = None,
    backoff: float = 0.5,
    evaluation: asyncio.Lock | None = None,
) -> CycleReport:
    """Run one cycle; never raises for source problems (they are in the report's status and error).

    Cycles of several sources may fetch at once; `evaluation` (shared by them) makes their rule evaluations and
    routing take turns, so each sees the alerts the others logged (confluence joins alerts across sources).
    """
    started = time.monotonic()
    report = CycleReport(source_name, day, "processed")
    source, store = get_source(source_name), FrameStore(redis)
    try:
        ingested = await ingest(
            source, day, settings=settings, client=client, store=store, now=now, backoff=backoff
        )
        report.rows = ingested.rows.get("main", 0)
    except SourceError as exc:
        report.status = (
            "not_published"
            if isinstance(exc, NotPublishedYet)
            else "malformed"
            if isinstance(exc, MalformedFile)
            else "failed"
        )
        report.error = f"{type(exc).__name__}: {exc}"
        report.failure = exc
        return _finish(report, started, now)
    async with evaluation or contextlib.nullcontext():
        await evaluate_and_route(report, settings=settings, redis=redis, now=now, params=params)
    return _finish(report, started, now)


async def evaluate_and_route(
    report: CycleReport,
    *,
    settings: Settings,
    redis: Redis,
    now: datetime,
    params: RuleParams | None = None,
    force: bool = False,
) -> CycleReport:
    """Rules → alert log → routing over the data stored for (report.source, report.day), then mark the cycle done.

    Does nothing ("unchanged") when this content was already processed, unless `force` (rows were added to the day
    from another path, e.g. the per-stock DI notice lists). Shared by live cycles, `reparse` and that path; routing
    dedupes by fingerprint, so evaluating a day again never pushes an alert twice.
    """
    source, store = get_source(report.source), FrameStore(redis)
    digest = await _digest(store, urls_for(source, settings, report.day))
    done = await redis.get(keys.cycle_done(report.source, report.day))
    if not force and done is not None and _text(done) == digest:
        report.status = "unchanged"
        return report
    await _evaluate_and_route(report, report.day, redis, store, now, params or load_params())
    await redis.set(keys.cycle_done(report.source, report.day), digest, ex=keys.CYCLE_TTL_SECONDS)
    return report


async def _evaluate_and_route(
    report: CycleReport, day: date, redis: Redis, store: FrameStore, now: datetime, params: RuleParams
) -> None:
    alert_log = AlertLog(redis)
    source = get_source(report.source)
    market: Market = "US" if source.calendar == "XNYS" else "HK"
    rules = rules_for(report.source, market)  # each rule says which sources' files make it run
    recent = await alert_log.recent(_recent_days(day, now, source.calendar))
    if market == "HK":
        sessions = previous_sessions(day, HISTORY_SESSIONS)
        history = await load_store(store, sessions[0], day)
        # Everything stored is known by now; a file fetched before its due moment counts from then (never lost).
        moment = max(now, known_at(source, day, now))
        context = history.context(moment, day=day, recent_alerts=tuple(recent))
    else:
        us_recent = tuple(a for a in recent if a.market == "US")
        context = await _us_context(store, day, feeds_for(rules), us_recent, now)
    found = list(evaluate(context, params, market=market, rules=rules).alerts)
    # Live, the publication time is when we saw the file (the schedule's time is only the earliest expected).
    alerts = [replace(a, published_at=now) for a in found]
    report.alerts = len(alerts)
    recorded = await alert_log.record_live(alerts)
    report.new_alerts = recorded.new
    report.historical = len(recorded.historical)
    report.fingerprints = [a.fingerprint for a in alerts]
    # An alert a backfill already recorded as history (found by replay over the stored files) is never pushed,
    # whoever evaluates its day later; every other alert is routed (routing marks fingerprint × chat once).
    live = [a for a in alerts if a.fingerprint not in recorded.historical]
    routed = await route(live, SubscriptionStore(redis), Outbox(redis), now)
    report.enqueued = routed.enqueued


async def _us_context(
    store: FrameStore, day: date, feeds: tuple[str, ...], recent: tuple[Alert, ...], now: datetime
) -> RuleContext:
    """A rule context with no HK data: the US feeds the rules read, and the recent US alerts."""
    frames = {
        name: empty_frame(get_source(src).tables[table].schema)
        for name, (src, table, _) in FEEDS.items()
        if name in CONTEXT_FIELDS
    }
    loaded = {feed: await _load_us_feed(store, feed, day) for feed in feeds}
    return RuleContext(day=day, recent_alerts=recent, moment=now, feeds=loaded, **frames)


async def _load_us_feed(store: FrameStore, name: str, day: date) -> pd.DataFrame:
    """One US feed up to `day`, over the window its source declares (the rules' history, days, or the day)."""
    source, feed = SOURCE_FEEDS[name]
    schema = source.tables[feed.table].schema
    if feed.window == "history":
        start = previous_sessions(day, HISTORY_SESSIONS, calendar=source.calendar)[0]
        return await store.load_range(source.name, schema, start, day, table=feed.table)
    if feed.window == "day":
        today = await store.get(source.name, feed.table, day, schema)
        return today if today is not None else empty_frame(schema)
    start = day - timedelta(days=feed.window)
    frame = await store.load_range(source.name, schema, start, day, table=feed.table)
    # How far back the stored history reaches: a rule about "never before" must not trust a short history.
    stored = await store.dates(source.name, feed.table, start, day)
    frame.attrs["since"] = min(stored) if stored else None
    return frame


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _recent_days(day: date, now: datetime, calendar: str) -> list[date]:
    """Trade dates of the alerts confluence may join: the last CONFLUENCE_SESSIONS up to `day` or today."""
    tz = HK_TZ if calendar == "XHKG" else NY_TZ
    return previous_sessions(max(day, now.astimezone(tz).date()), CONFLUENCE_SESSIONS, calendar=calendar)


def _finish(report: CycleReport, started: float, now: datetime) -> CycleReport:
    report.duration_s = time.monotonic() - started
    try:
        published = schedule_for(report.source).published_at(report.day)
        report.lag_s = (now - published).total_seconds()
    except KeyError:
        report.lag_s = None
    level = logging.WARNING if report.status in ("malformed", "failed") else logging.INFO
    log.log(level, report.line())
    return report
