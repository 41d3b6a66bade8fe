"""Scheduled work of the active instance: poll sources in their publication windows, catch up, tell admins.

The job ticks every few seconds; which (source, file date) pairs to poll is decided by `alerts.windows` from the
injected clock, so the logic is tested without waiting. A (source, date) stops being polled once its cycle is done.
The sources of a tick run side by side and every cycle has a deadline, so a slow origin holds up only its own
source, for one deadline; a stop cancels what still runs after a short grace.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from alerts.calendar import HK_TZ, is_session, schedule_for
from alerts.di_notices import ingest_watched, watched_codes
from alerts.doctor import daily_doctor
from alerts.errors import MalformedFile, SourceError
from alerts.metrics import METRICS
from alerts.pipeline import CycleReport, evaluate_and_route, is_done, run_cycle
from alerts.sources import SOURCES, get_source
from alerts.store import keys
from alerts.store.audience import warm
from alerts.store.failed import FailedFiles, file_name, layout_signature
from alerts.store.frames import FrameStore
from alerts.store.outbox import Outbox
from alerts.tickers import TickerRefresh
from alerts.windows import active_dates, missed, poll_due, window_failed
from bot.admins import notify_admins
from bot.health import TickTimes
from bot.html import esc
from config.settings import Settings

log = logging.getLogger(__name__)

LOOKBACK_SESSIONS = 5  # catch-up reaches this many file dates back after downtime
DI_SOURCE = "hkex-di"
DI_NOTICE_DAYS = (
    14  # the watched stocks' notice lists are read this many days back (notices are due in 3 days)
)
CATCH_UP_EVERY = timedelta(minutes=10)  # outside its windows a missed file is retried this often
# What a Redis outage looks like from redis.asyncio: its own errors and socket errors.
REDIS_DOWN = (RedisError, OSError)
NOTICE_LIST_MAX = 15  # headers shown per list in a drift notice (a Telegram message holds 4096 characters)
# One cycle (every fetch of one source for one date), the ticker map refresh and the DI watched-notices step each end
# by then whatever an origin does (a server trickling a byte every few seconds never trips a per-read timeout).
CYCLE_DEADLINE_S = 120.0
DEADLINE_ERROR = "cycle deadline exceeded"
# On stop or step-down, work still running after this long is cancelled (cycles are idempotent: the next leader
# runs them again), so SIGTERM ends within seconds whatever an origin does.
STOP_GRACE_S = 3.0
# How often the leader checks that routing's cache of chats is filled (alerts/store/audience.py `warm`: a no-op while
# it is young): a restarted leader or an aged-out cache is refilled in the background, not by the next cycle.
WARM_CHECK_S = 600.0

T = TypeVar("T")


def _headers(cells: tuple[str, ...]) -> str:
    """Header cells for a notice: escaped, each cut short, the list capped."""
    shown = [esc(c if len(c) <= 80 else c[:79] + "…") for c in cells[:NOTICE_LIST_MAX]]
    more = f" … (+{len(cells) - NOTICE_LIST_MAX} more)" if len(cells) > NOTICE_LIST_MAX else ""
    return " | ".join(shown) + more if shown else "(none)"


def drift_notice(source: str, day: date, error: SourceError, *, kept: bool) -> str:
    """The admins' notice for a file that did not parse: what was expected and found, and the command to re-run it."""
    name = esc(file_name(error.url)) if error.url else day.isoformat()
    expected = error.expected if isinstance(error, MalformedFile) else None
    found = error.found if isinstance(error, MalformedFile) else None
    message = str(error.args[0]) if error.args else type(error).__name__
    if expected is None and found is None:
        lines = [f"⚠️ {esc(source)}: {name} ({day.isoformat()}) did not parse — has the format changed?"]
    else:
        lines = [f"⚠️ {esc(source)}: layout changed in {name} ({day.isoformat()})"]
    lines.append(f"<code>{esc(message[:400])}</code>")
    if expected is not None:
        lines.append(f"expected: {_headers(expected)}")
    if found is not None:
        lines.append(f"found: {_headers(found)}")
    if expected is not None and found is not None:
        added = tuple(c for c in found if c not in expected)
        missing = tuple(c for c in expected if c not in found)
        parts = ([f"+ {_headers(added)}"] if added else []) + ([f"− {_headers(missing)}"] if missing else [])
        diff = "; ".join(parts) or "same headers, in another order or place"
        lines.append(f"diff: {diff}")
    command = f"positioning-bot reparse {esc(source)} --date {day.isoformat()}"
    if kept:
        lines.append(
            f"Raw file kept {keys.FAILED_TTL_SECONDS // 86400} days; later files failing the same way are "
            "kept too, without another notice."
        )
        lines.append(
            f"After upgrading the parser run: <code>{command}</code> "
            f"(or <code>positioning-bot reparse {esc(source)} --all-failed</code>)"
        )
    else:
        lines.append(
            f"The raw file was not kept (over {keys.FAILED_MAX_BYTES // 2**20} MB, or a day assembled from "
            f"many files); after upgrading run: <code>positioning-bot poll {esc(source)} --date "
            f"{day.isoformat()}</code>"
        )
    return "\n".join(lines)


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
    marked: bool = (
        False  # DATA_MARKER seen or written by this process: its absence after an outage means data loss
    )

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

    def notice(
        self, missed_files: set[tuple[str, date]] | None = None, *, data_lost: bool = False
    ) -> str | None:
        """The admins' message once Redis answers again (None when there was no outage); resets the record.

        `missed_files`: files in their windows during the outage and still not processed; `data_lost`: Redis came
        back without the data it held before.
        """
        if self.since is None:
            return None
        now = self.clock()
        start, end = self.since.astimezone(HK_TZ), now.astimezone(HK_TZ)
        due = ", ".join(f"{esc(s)} {d.isoformat()}" for s, d in sorted(missed_files or ())) or "none"
        lines = [
            f"⚠️ Redis unreachable from {start:%Y-%m-%d %H:%M:%S} to {end:%H:%M:%S} HKT "
            f"({(now - self.since).total_seconds():.0f} s).",
            f"Cycles skipped: no cycle ran meanwhile ({self.ticks_skipped} poll tick(s) failed); files due in "
            f"their windows: {due}; they are polled now.",
            f"Deliveries paused: {self.drains_skipped} pass(es); queued messages go out now.",
        ]
        if self.lease_lost:
            lines.append("The leader lease ran out meanwhile: this process stepped down and took it back.")
        if data_lost:
            lines.append(
                "❗ Redis came back without its data (restarted without persistence?): watchlists, chat "
                "settings, messages queued before the outage and the stored history are gone. Users must "
                "/watch again; `positioning-bot backfill` restores the history."
            )
        log.warning(
            "Redis reachable again after %.0f s%s",
            (now - self.since).total_seconds(),
            "; its data were lost" if data_lost else "",
        )
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
    cycle_deadline: float = CYCLE_DEADLINE_S
    ticks: TickTimes = field(default_factory=TickTimes)  # when ticks started and finished (read by /healthz)
    tickers: TickerRefresh = field(
        default_factory=TickerRefresh
    )  # the US ticker map's refresh and its backoff
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set, init=False, repr=False)
    # Sources fetch concurrently but evaluate one at a time, so confluence sees every source's alerts.
    _evaluation: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)
    _warming: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.settings.sec_user_agent and "sec-form4" in self.sources:
            # SEC asks every client to name itself: no EDGAR polling without SEC_USER_AGENT.
            log.warning("SEC_USER_AGENT is not set: EDGAR (sec-form4) polling is off until it is")
            self.sources = tuple(s for s in self.sources if s != "sec-form4")

    async def tick(self) -> list[CycleReport]:
        """Run every cycle due now; while Redis is unreachable skip the tick and remember it for the admins."""
        outage = self._outage()
        self.ticks.begin()
        try:
            await self._after_outage(outage)
            return await self._tick()
        except REDIS_DOWN as exc:
            outage.failed("tick", exc)
            return []
        finally:
            self.ticks.end()

    def start_warming(self, every: float = WARM_CHECK_S) -> None:
        """Keep routing's cache of chats filled in the background: now, then every `every` seconds. The leader starts
        it at start-up, so the first cycle's alerts do not wait for 100k chats' settings to be read."""
        if self._warming is None or self._warming.done():
            self._warming = asyncio.get_running_loop().create_task(
                self._keep_warm(every), name="warm-routing"
            )

    async def stop_warming(self) -> None:
        """Cancel the warm-up loop (at stop; a half-filled cache is never used, only a complete one is swapped in)."""
        task, self._warming = self._warming, None
        # A cancel that lands inside a Redis call can be absorbed by the client (the loop would then sleep on for
        # `every` seconds and hold the shutdown): cancel again until the task has really ended.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.5)
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.warning("routing: warm-up ended with %r", task.exception())

    async def _keep_warm(self, every: float) -> None:
        while not self.stopping:
            try:
                if chats := await warm(self.redis):
                    log.info("routing: settings of %d chats read ahead of the next cycle", chats)
            except Exception as exc:  # an optimisation only: routing reads what it lacks itself
                log.warning(
                    "routing: warm-up failed (%s: %s); trying again in %g s", type(exc).__name__, exc, every
                )
            if self.stopping:
                return
            await asyncio.sleep(every)

    async def wind_down(self, grace: float = STOP_GRACE_S) -> None:
        """Stop: no new cycle starts, and what still runs after `grace` seconds is cancelled (the tick then returns).

        PTB shields job bodies and waits for them on stop: without this a cycle stuck on a slow origin would hold
        the shutdown (and SIGTERM) for as long as its deadline.
        """
        self.stopping = True
        await self.stop_warming()
        running = [t for t in self._tasks if not t.done()]
        if not running:
            return
        _, pending = await asyncio.wait(running, timeout=max(grace, 0.0))
        if not pending:
            return
        log.warning(
            "stopping: cancelling %d unfinished poll task(s) after %.0f s; the next leader runs them again",
            len(pending),
            grace,
        )
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=1.0)

    def _spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run `coro` as a task `wind_down` can cancel."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _settle(self, tasks: list[asyncio.Task[T]]) -> list[T]:
        """Wait for every task; the results of those not cancelled by `wind_down`. Errors are raised once all ended
        (a Redis outage first, so that the tick records it), never leaving a task behind."""
        results = await asyncio.gather(*tasks, return_exceptions=True)
        errors = [
            r for r in results if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)
        ]
        if errors:
            raise next((e for e in errors if isinstance(e, REDIS_DOWN)), errors[0])
        return [r for r in results if not isinstance(r, BaseException)]

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
        """Run every cycle due now (windows first, then catch-up): the sources side by side, so that a slow one
        holds up nobody else, and each source's dates one after another, oldest first."""
        now = self.clock()
        passes = await self._settle([self._spawn(self._source_pass(source, now)) for source in self.sources])
        reports = [report for done in passes for report in done]
        follow_ups = {get_source(r.source).after_processed for r in reports if r.status == "processed"}
        if "watched-notices" in follow_ups and not self.stopping:
            watched = await self._settle(
                [self._spawn(self._deadlined(self._watched_notices(now), "hkex-di watched notices", []))]
            )
            reports += [report for done in watched for report in done]
        return reports

    async def _source_pass(self, source: str, now: datetime) -> list[CycleReport]:
        """The due cycles of one source, oldest date first; a cycle over its deadline ends this source's pass."""
        reports: list[CycleReport] = []
        if self.stopping:
            return reports
        if get_source(source).before_pass == "ticker-map":
            await self._refresh_tickers()
        for day in await self._due(source, now):
            if self.stopping:
                return reports  # stepping down: the next leader runs what is left (cycles are idempotent)
            self.last_poll[(source, day)] = now
            report = await self._cycle(source, day, now)
            self._count(report)
            reports.append(report)
            if report.status == "processed" and self.on_processed is not None:
                self.on_processed(report)
            if report.status == "malformed":
                await self._drift_notice(report)
            if report.error == DEADLINE_ERROR:
                break  # the origin is stuck: its other dates wait for the next tick rather than another deadline
        await self._window_notices(source, now)
        return reports

    async def _cycle(self, source: str, day: date, now: datetime) -> CycleReport:
        """One cycle within `cycle_deadline`; past it, a failed report, the source's status and a metric."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.cycle_deadline) as deadline:
                return await run_cycle(
                    source,
                    day,
                    settings=self.settings,
                    client=self.client,
                    redis=self.redis,
                    now=now,
                    evaluation=self._evaluation,
                )
        except TimeoutError:
            if not deadline.expired():
                raise  # not ours
        report = CycleReport(
            source, day, "failed", duration_s=time.monotonic() - started, error=DEADLINE_ERROR
        )
        log.warning("%s (%g s)", report.line(), self.cycle_deadline)
        METRICS.counter(
            "positioning_cycle_deadline_exceeded_total",
            "Cycles stopped at their deadline",
            labels={"source": source},
        ).inc()
        await FrameStore(self.redis).record_status(
            source,
            now,
            ok=False,
            detail={"date": day.isoformat(), "message": f"{DEADLINE_ERROR} ({self.cycle_deadline:g} s)"},
        )
        return report

    async def _deadlined(self, coro: Coroutine[Any, Any, T], what: str, default: T) -> T:
        """`coro` within `cycle_deadline`; `default` (and a warning) past it."""
        try:
            async with asyncio.timeout(self.cycle_deadline) as deadline:
                return await coro
        except TimeoutError:
            if not deadline.expired():
                raise
        log.warning("%s: deadline of %g s exceeded; retried at a later tick", what, self.cycle_deadline)
        return default

    async def _watched_notices(self, now: datetime) -> list[CycleReport]:
        """The second DI path: each watched stock's own notice list, merged in, and its new rows' days evaluated."""
        today = now.astimezone(HK_TZ).date()
        found = await ingest_watched(
            await watched_codes(self.redis),
            settings=self.settings,
            client=self.client,
            store=FrameStore(self.redis),
            redis=self.redis,
            start=today - timedelta(days=DI_NOTICE_DAYS),
            end=today,
            now=now,
        )
        reports = []
        for day in sorted(d for d in found.days if is_session(d)):
            report = CycleReport(DI_SOURCE, day, "processed")
            async with self._evaluation:
                reports.append(
                    await evaluate_and_route(
                        report, settings=self.settings, redis=self.redis, now=now, force=True
                    )
                )
        return reports

    async def doctor(self) -> None:
        """The daily self-check: tell the admins which sources are unhealthy (nothing when all are well)."""
        now = self.clock()
        checked = await self._settle(
            [self._spawn(daily_doctor(self.settings, self.client, self.redis, now, self.sources))]
        )
        text = checked[0] if checked else None  # none: cancelled by a stop
        if text:
            await self._tell_admins(text, ["doctor", now.astimezone(HK_TZ).date().isoformat()])

    async def _refresh_tickers(self) -> None:
        """Refresh the US ticker map when it is due and not backing off after failures (see TickerRefresh)."""
        if "sec-form4" not in self.sources:
            return
        await self.tickers.run(
            self.redis, self.settings.sec_url, self.settings.sec_user_agent, deadline=self.cycle_deadline
        )

    async def _done_dates(self, source: str, candidates: list[date]) -> set[date]:
        return {d for d in candidates if await is_done(self.redis, source, d)}

    def _candidates(self, source: str, now: datetime) -> list[date]:
        if not get_source(source).history or not schedule_for(source).expected:
            # Today-only pages cannot be caught up, and a revisions list has no file on most dates (a 404 is the
            # normal answer): only the dates whose window is open now are worth a fetch.
            return active_dates(source, now)
        return missed(source, now, lambda _d: False, lookback_sessions=LOOKBACK_SESSIONS)

    async def _due(self, source: str, now: datetime) -> list[date]:
        candidates = self._candidates(source, now)
        done = await self._done_dates(source, candidates)
        due = []
        open_now = set(active_dates(source, now))
        growing = get_source(source).growing
        for day in candidates:
            if day in done and not (growing and day in open_now):
                continue  # a growing day (announcements) is polled at its pace until its last window closes
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
                await self._tell_admins_once(
                    source,
                    day,
                    f"⏰ {esc(source)} {day.isoformat()}: no file by the end "
                    "of its publication window; still retrying.",
                )

    async def _drift_notice(self, report: CycleReport) -> None:
        """Tell the admins once per (source, layout) that its files stopped parsing, not once per day or poll."""
        source, day = report.source, report.day
        # A file came but failed: "no file by the end of its window" would mislead, so that notice is spent too.
        await self.redis.set(keys.window_notice(source, day), "1", nx=True, ex=keys.WINDOW_NOTICE_TTL_SECONDS)
        error = report.failure or MalformedFile(report.error, source=source)
        signature = layout_signature(error)
        if not await self.redis.set(
            keys.drift_notice(source, signature), "1", nx=True, ex=keys.DRIFT_NOTICE_TTL_SECONDS
        ):
            return
        kept = any(k.failed and k.url == error.url for k in await FailedFiles(self.redis).kept(source, day))
        await self._tell_admins(
            drift_notice(source, day, error, kept=kept), [source, day.isoformat(), signature]
        )

    async def _tell_admins_once(self, source: str, day: date, text: str) -> None:
        if not await self.redis.set(
            keys.window_notice(source, day), "1", nx=True, ex=keys.WINDOW_NOTICE_TTL_SECONDS
        ):
            return
        await self._tell_admins(text, [source, day.isoformat(), "notice"])

    async def _tell_admins(self, text: str, identities: list[str]) -> None:
        log.warning("admin notice: %s", text)
        await notify_admins(Outbox(self.redis), self.settings.admin_chat_ids, text, identities, self.clock())

    @staticmethod
    def _count(report: CycleReport) -> None:
        METRICS.counter(
            "positioning_cycles_total",
            "Cycles run, by source and outcome",
            labels={"source": report.source, "status": report.status},
        ).inc()
        METRICS.counter(
            "positioning_alerts_total",
            "Alerts fired by cycles (new fingerprints)",
            labels={"source": report.source},
        ).inc(report.new_alerts)
        METRICS.gauge(
            "positioning_cycle_seconds", "Duration of the last cycle", labels={"source": report.source}
        ).set(report.duration_s)
        if report.status == "processed" and report.lag_s is not None:
            METRICS.gauge(
                "positioning_publication_lag_seconds",
                "Processed time minus expected publication",
                labels={"source": report.source},
            ).set(report.lag_s)
