"""Clients and stores the bot's handlers and jobs share, opened in post_init and closed in post_shutdown."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from redis.asyncio import Redis
from telegram.ext import ContextTypes

from alerts.alertlog import AlertLog
from alerts.calendar import HK_TZ, previous_sessions
from alerts.history import load_store
from alerts.outbox import Outbox
from alerts.replay import outcome
from alerts.store.frames import FrameStore
from alerts.subscriptions import SubscriptionStore
from bot.answers import DataView
from bot.chartsend import ChartService
from config.settings import Settings

VIEW_TTL_SECONDS = 300.0
HISTORY_SESSIONS = 130


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
    _charts: ChartService | None = None

    @classmethod
    def open(cls, settings: Settings, clock: Callable[[], datetime] | None = None) -> Deps:
        """Create clients (connections are made lazily by redis-py and httpx)."""
        redis = Redis.from_url(settings.redis_url)
        deps = cls(settings=settings, redis=redis, http=httpx.AsyncClient(timeout=30.0),
                   subs=SubscriptionStore(redis), outbox=Outbox(redis), frames=FrameStore(redis),
                   alert_log=AlertLog(redis))
        if clock is not None:
            deps.clock = clock
        return deps

    async def close(self) -> None:
        """Close the clients."""
        await self.http.aclose()
        await self.redis.aclose()

    async def view(self, now: datetime | None = None) -> DataView:
        """History and alerts for read-only commands, cached for a few minutes."""
        if self._view is not None and time.monotonic() - self._view_at < VIEW_TTL_SECONDS:
            return self._view
        today = (now or self.clock()).astimezone(HK_TZ).date()
        sessions = previous_sessions(today, HISTORY_SESSIONS)
        history = await load_store(self.frames, sessions[0], today)
        # Every stored alert of the loaded sessions (not only the last few): /history lists a stock's past alerts
        # with their 1/5/20-session outcomes, which need prices after them, all inside the same window.
        alerts = await self.alert_log.recent(sessions)
        closes = history.closes()
        outcomes = {a.fingerprint: outcome(closes, a.code, a.trade_date) for a in alerts}
        self._view = DataView(history, today, alerts, outcomes)
        self._view_at = time.monotonic()
        return self._view

    def charts(self) -> ChartService:
        """Chart photos (drawn from this process's view, cached in Redis)."""
        if self._charts is None:
            self._charts = ChartService(self.redis, self.view)
        return self._charts

    def invalidate_view(self) -> None:
        """Forget the cached view (new data stored)."""
        self._view = None


def deps(context: ContextTypes.DEFAULT_TYPE) -> Deps:
    """Typed accessor for the Deps stored in bot_data."""
    value = context.bot_data["deps"]
    assert isinstance(value, Deps)
    return value

