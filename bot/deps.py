"""Clients and stores the bot's handlers and jobs share, opened in post_init and closed in post_shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from redis.asyncio import Redis
from telegram.ext import ContextTypes

from alerts.calendar import HK_TZ, previous_sessions
from alerts.history import load_store
from alerts.pipeline import HISTORY_SESSIONS  # the view holds what the rules saw
from alerts.replay import outcome_of
from alerts.store.alertlog import AlertLog
from alerts.store.connect import connect
from alerts.store.frames import FrameStore
from alerts.store.outbox import Outbox
from alerts.store.subscriptions import SubscriptionStore
from bot.chartsend import ChartService
from bot.view import DataView
from config.settings import Settings

log = logging.getLogger(__name__)

VIEW_TTL_SECONDS = 300.0


@dataclass
class Deps:
    """Everything handlers need; built once per process."""

    settings: Settings
    redis: Redis
    http: httpx.AsyncClient
    subs: SubscriptionStore
    outbox: Outbox
    frames: FrameStore
    alert_log: AlertLog
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(HK_TZ))
    _view: DataView | None = None
    _view_at: float = field(default=0.0)
    _view_generation: int = -1
    _generation: int = 0  # bumped when new data are stored: a view of an older generation is not served
    _loading: asyncio.Task[DataView] | None = None
    _loading_generation: int = -1
    _charts: ChartService | None = None

    @classmethod
    def open(cls, settings: Settings, clock: Callable[[], datetime] | None = None) -> Deps:
        """Create clients (connections are made lazily by redis-py and httpx)."""
        redis = connect(settings)
        deps = cls(
            settings=settings,
            redis=redis,
            http=httpx.AsyncClient(timeout=30.0),
            subs=SubscriptionStore(redis),
            outbox=Outbox(redis),
            frames=FrameStore(redis),
            alert_log=AlertLog(redis),
        )
        if clock is not None:
            deps.clock = clock
        return deps

    async def close(self) -> None:
        """Close the clients (and stop a view load in flight)."""
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._loading
        await self.http.aclose()
        await self.redis.aclose()

    async def view(self, now: datetime | None = None) -> DataView:
        """History and alerts for read-only commands.

        Loading takes seconds (130 sessions of every feed), so commands never wait for a reload that only the
        clock asks for: an expired view is served while a fresh one loads in the background. They do wait when
        there is no view yet, when it holds no data, or when new data were stored since it was loaded (a user who
        taps an alert's Card button must see the data that fired the alert).
        """
        current = self._view
        if (
            current is None
            or self._view_generation != self._generation
            or current.history.frames["quotes"].empty
        ):
            return await asyncio.shield(self._reload(now))
        if time.monotonic() - self._view_at >= VIEW_TTL_SECONDS:
            self._reload(now)
        return current

    def warm(self) -> None:
        """Start loading the view in the background (at start-up, and when new data were stored)."""
        self._reload(None)

    def _reload(self, now: datetime | None) -> asyncio.Task[DataView]:
        """The load in flight for the current generation, or a new one."""
        if self._loading is None or self._loading.done() or self._loading_generation != self._generation:
            self._loading = asyncio.create_task(self._load(now, self._generation), name="load-view")
            self._loading_generation = self._generation
            self._loading.add_done_callback(_log_failure)
        return self._loading

    async def _load(self, now: datetime | None, generation: int) -> DataView:
        today = (now or self.clock()).astimezone(HK_TZ).date()
        sessions = previous_sessions(today, HISTORY_SESSIONS)
        history = await load_store(self.frames, sessions[0], today)
        # Every stored alert of the loaded sessions (not only the last few): /history lists a stock's past alerts
        # with their 1/5/20-session outcomes, which need prices after them, all inside the same window.
        logged = await self.alert_log.recent_logged(sessions)
        alerts = [entry.alert for entry in logged]
        closes = history.closes()
        outcomes = {a.fingerprint: outcome_of(closes, a) for a in alerts}
        # Alerts a backfill found (never pushed): /history lists them, marked; /top leaves them out.
        historical = frozenset(entry.alert.fingerprint for entry in logged if entry.historical)
        view = DataView(history, today, alerts, outcomes, historical=historical)
        if generation >= self._view_generation:  # a slower, older load never replaces a newer view
            self._view, self._view_at, self._view_generation = view, time.monotonic(), generation
        return view

    def charts(self) -> ChartService:
        """Chart photos (drawn from this process's view, cached in Redis)."""
        if self._charts is None:
            self._charts = ChartService(self.redis, self.view)
        return self._charts

    def invalidate_view(self) -> None:
        """New data were stored: the next reader waits for a view that includes them; loading starts now."""
        self._generation += 1
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a synchronous caller): the next view() call loads
        self.warm()


def _log_failure(task: asyncio.Task[DataView]) -> None:
    """Retrieve a background load's exception so it is logged once, not reported as never retrieved."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("loading the data view failed: %r", task.exception())


def deps(context: ContextTypes.DEFAULT_TYPE) -> Deps:
    """Typed accessor for the Deps stored in bot_data."""
    value = context.bot_data["deps"]
    assert isinstance(value, Deps)
    return value
