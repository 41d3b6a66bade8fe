"""Scheduled work of the active instance: poll sources in their publication windows, catch up, tell admins.

The job ticks every few seconds; which (source, file date) pairs to poll is decided by `alerts.windows` from the
injected clock, so the logic is tested without waiting. A (source, date) stops being polled once its cycle is done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from alerts.calendar import HK_TZ
from alerts.errors import SourceError
from alerts.metrics import METRICS
from alerts.outbox import Outbox, OutboxItem, item_id
from alerts.pipeline import CycleReport, is_done, run_cycle
from alerts.sources import SOURCES, get_source
from alerts.store import keys
from alerts.tickers import needs_refresh, refresh
from alerts.windows import active_dates, missed, poll_due, window_failed
from bot.render import esc
from config.settings import Settings

log = logging.getLogger(__name__)

LOOKBACK_SESSIONS = 5  # catch-up reaches this many file dates back after downtime
CATCH_UP_EVERY = timedelta(minutes=10)  # outside its windows a missed file is retried this often
# What a Redis outage looks like from redis.asyncio: its own errors and socket errors.
REDIS_DOWN = (RedisError, OSError)


@dataclass
class RedisOutage:
    """While Redis cannot be reached: since when, and what was not done; told to the admins once it is back.

    Kept by the process (not in Redis, which is what failed) and shared by successive leader terms, since a long
    outage also costs the lease.
    """

    clock: Callable[[], datetime]
    since: datetime | None = None
    ticks_skipped: int = 0
    drains_skipped: int = 0
    lease_lost: bool = False
    marked: bool = False  # DATA_MARKER seen or written by this process: its absence after an outage means data loss

    def failed(self, what: str, exc: BaseException) -> None:
        """Record one thing (`tick`, `drain`) that could not be done because Redis was unreachable."""
        now = self.clock()
        if self.since is None:
            self.since = now
            log.error("Redis unreachable (%s: %s): cycles and deliveries wait", type(exc).__name__, exc)
        if what == "tick":
            self.ticks_skipped += 1
        elif what == "drain":
            self.drains_skipped += 1

    def in_windows(self, sources: tuple[str, ...]) -> set[tuple[str, date]]:
        """(source, file date) whose window was open when the outage began or is open now."""
        instants = [self.clock()] + ([self.since] if self.since is not None else [])
        return {(s, d) for s in sources for moment in instants for d in active_dates(s, moment)}

    def notice(self, missed_files: set[tuple[str, date]] | None = None, *, data_lost: bool = False) -> str | None:
        """The admins' message once Redis answers again (None when there was no outage); resets the record.

        `missed_files`: files in their windows during the outage and still not processed; `data_lost`: Redis came
        back without the data it held before.
        """
        if self.since is None:
            return None
        now = self.clock()
        start, end = self.since.astimezone(HK_TZ), now.astimezone(HK_TZ)
        due = ", ".join(f"{esc(s)} {d.isoformat()}" for s, d in sorted(missed_files or ())) or "none"
        lines = [f"⚠️ Redis unreachable from {start:%Y-%m-%d %H:%M:%S} to {end:%H:%M:%S} HKT "
                 f"({(now - self.since).total_seconds():.0f} s).",
                 f"Cycles skipped: no cycle ran meanwhile ({self.ticks_skipped} poll tick(s) failed); files due in "
                 f"their windows: {due}; they are polled now.",
                 f"Deliveries paused: {self.drains_skipped} pass(es); queued messages go out now."]
        if self.lease_lost:
            lines.append("The leader lease ran out meanwhile: this process stepped down and took it back.")
        if data_lost:
            lines.append("❗ Redis came back without its data (restarted without persistence?): watchlists, chat "
                         "settings, messages queued before the outage and the stored history are gone. Users must "
                         "/watch again; `positioning-bot backfill` restores the history.")
        log.warning("Redis reachable again after %.0f s%s", (now - self.since).total_seconds(),
                    "; its data were lost" if data_lost else "")
        self.since, self.ticks_skipped, self.drains_skipped, self.lease_lost = None, 0, 0, False
        return "\n".join(lines)


@dataclass
class Poller:
    """Decides and runs the cycles due at a given instant; keeps the last poll time per (source, date)."""

    settings: Settings
    redis: Redis
    client: httpx.AsyncClient
    clock: Callable[[], datetime]
    sources: tuple[str, ...] = tuple(SOURCES)
    last_poll: dict[tuple[str, date], datetime] = field(default_factory=dict)
    on_processed: Callable[[CycleReport], None] | None = None
    stopping: bool = False  # set when the leader steps down: no new cycle starts (PTB runs jobs shielded)
    outage: RedisOutage | None = None

    def __post_init__(self) -> None:
        if not self.settings.sec_user_agent and "sec-form4" in self.sources:
            # SEC asks every client to name itself: no EDGAR polling without SEC_USER_AGENT.
            log.warning("SEC_USER_AGENT is not set: EDGAR (sec-form4) polling is off until it is")
            self.sources = tuple(s for s in self.sources if s != "sec-form4")

    async def tick(self) -> list[CycleReport]:
        """Run every cycle due now; while Redis is unreachable skip the tick and remember it for the admins."""
        outage = self._outage()
        try:
            await self._after_outage(outage)
            return await self._tick()
        except REDIS_DOWN as exc:
            outage.failed("tick", exc)
            return []

    def _outage(self) -> RedisOutage:
        """The outage record shared with the delivery side, or this poller's own (kept across ticks)."""
        if self.outage is None:
            self.outage = RedisOutage(self.clock)
        return self.outage

    async def _after_outage(self, outage: RedisOutage) -> None:
        """Tell the admins what an outage that just ended kept from being done (raises while Redis is still down)."""
        if outage.since is None and outage.marked:
            return
        # Raises while Redis is still down. Written now = it was missing: after an outage, Redis lost its data.
        written = await self.redis.set(keys.DATA_MARKER, self.clock().isoformat(), nx=True)
        data_lost, outage.marked = outage.marked and bool(written), True
        if outage.since is None:
            return
        files = {(s, d) for s, d in outage.in_windows(self.sources) if not await is_done(self.redis, s, d)}
        text = outage.notice(files, data_lost=data_lost)
        if text:
            await self._tell_admins(text, ["redis-outage", self.clock().isoformat()])

    async def _tick(self) -> list[CycleReport]:
        """Run every cycle due now (windows first, then catch-up), oldest date first per source."""
        now = self.clock()
        reports = []
        await self._refresh_tickers()
        for source in self.sources:
            for day in await self._due(source, now):
                if self.stopping:
                    return reports  # stepping down: the next leader runs what is left (cycles are idempotent)
                self.last_poll[(source, day)] = now
                report = await run_cycle(source, day, settings=self.settings, client=self.client,
                                         redis=self.redis, now=now)
                self._count(report)
                reports.append(report)
                if report.status == "processed" and self.on_processed is not None:
                    self.on_processed(report)
                if report.status == "malformed":
                    await self._tell_admins_once(source, day, f"⚠️ {esc(source)} {day.isoformat()}: the file did "
                                                 f"not parse — has the format changed?\n<code>{esc(report.error[:400])}</code>")
            await self._window_notices(source, now)
        return reports

    async def _refresh_tickers(self) -> None:
        if "sec-form4" not in self.sources or not await needs_refresh(self.redis):
            return
        try:
            count = await refresh(self.redis, self.settings.sec_url, self.settings.sec_user_agent)
            log.info("US ticker map refreshed: %d tickers", count)
        except SourceError as exc:
            log.warning("US ticker map refresh failed: %s", exc)

    async def _done_dates(self, source: str, candidates: list[date]) -> set[date]:
        return {d for d in candidates if await is_done(self.redis, source, d)}

    def _candidates(self, source: str, now: datetime) -> list[date]:
        if not get_source(source).history:
            # Today-only pages cannot be caught up: only the dates whose window is open now are worth a fetch.
            return active_dates(source, now)
        return missed(source, now, lambda _d: False, lookback_sessions=LOOKBACK_SESSIONS)

    async def _due(self, source: str, now: datetime) -> list[date]:
        candidates = self._candidates(source, now)
        done = await self._done_dates(source, candidates)
        due = []
        open_now = set(active_dates(source, now))
        for day in candidates:
            if day in done:
                continue
            last = self.last_poll.get((source, day))
            # poll_due says whether the source has an open window; only the dates of that window poll at its pace.
            in_window = day in open_now and poll_due(source, now, last)
            catching_up = last is None or now - last >= CATCH_UP_EVERY
            if in_window or catching_up:
                due.append(day)
        return due

    async def _window_notices(self, source: str, now: datetime) -> None:
        candidates = missed(source, now, lambda _d: False, lookback_sessions=LOOKBACK_SESSIONS)
        if not get_source(source).history:
            candidates = candidates[-1:]  # a today-only page can only be missing today
        done = await self._done_dates(source, candidates)
        for day in candidates:
            if window_failed(source, day, now, day in done):
                await self._tell_admins_once(source, day, f"⏰ {esc(source)} {day.isoformat()}: no file by the end "
                                             "of its publication window; still retrying.")

    async def _tell_admins_once(self, source: str, day: date, text: str) -> None:
        if not await self.redis.set(keys.window_notice(source, day), "1", nx=True,
                                    ex=keys.WINDOW_NOTICE_TTL_SECONDS):
            return
        await self._tell_admins(text, [source, day.isoformat(), "notice"])

    async def _tell_admins(self, text: str, identities: list[str]) -> None:
        log.warning("admin notice: %s", text)
        outbox = Outbox(self.redis)
        for admin in self.settings.admin_chat_ids:
            await outbox.put(OutboxItem(id=item_id(admin, "text", identities), chat_id=admin, kind="text",
                                        text=text), self.clock())

    @staticmethod
    def _count(report: CycleReport) -> None:
        METRICS.counter("positioning_cycles_total", "Cycles run, by source and outcome",
                        labels={"source": report.source, "status": report.status}).inc()
        METRICS.counter("positioning_alerts_total", "Alerts fired by cycles (new fingerprints)",
                        labels={"source": report.source}).inc(report.new_alerts)
        METRICS.gauge("positioning_cycle_seconds", "Duration of the last cycle",
                      labels={"source": report.source}).set(report.duration_s)
        if report.status == "processed" and report.lag_s is not None:
            METRICS.gauge("positioning_publication_lag_seconds", "Processed time minus expected publication",
                          labels={"source": report.source}).set(report.lag_s)
