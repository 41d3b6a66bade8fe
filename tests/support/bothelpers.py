"""Running the real Application against the Bot API stand-in, with demo data in a private Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime
from functools import cache

from redis.asyncio import Redis
from telegram.ext import Application

from alerts.calendar import HK_TZ
from alerts.history import ALL_FEEDS, History, load_directory
from alerts.store.frames import FrameStore, dump_frame
from bot.app import build_application
from bot.delivery import DeliveryWorker
from bot.demo import demo_root
from bot.deps import Deps
from bot.leader import quiesce
from config.settings import Settings, load_settings
from tests.support.botapi import BotApi

TOKEN = "123456789:TEST-token-for-the-stand-in-only_x"
ADMIN = 999
DEMO_NOW = datetime(2025, 11, 28, 20, 0, tzinfo=HK_TZ)


def bot_settings(api: BotApi, redis_url: str, **env: str) -> Settings:
    """Settings pointing the bot at the stand-in and the private Redis, plus any other variables in `env`."""
    return load_settings(
        {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": api.base_url,
            "REDIS_URL": redis_url,
            "ADMIN_CHAT_IDS": str(ADMIN),
            **env,
        },
        env_file=None,
    )


@cache
def demo_history() -> History:
    """The bundled demo files parsed once per test session."""
    return load_directory(demo_root(), date(2025, 8, 1), date(2025, 12, 31))


@cache
def demo_blobs() -> tuple[tuple[str, str, date, bytes], ...]:
    """The demo history dumped as `fetch` stores it (one frame per source, table and date), once per session."""
    history = demo_history()
    blobs = []
    for name, (source, table, column) in ALL_FEEDS.items():
        frame = history.frames[name]
        for day, part in frame.groupby(frame[column].dt.date):
            blobs.append((source, table, day, dump_frame(part.reset_index(drop=True))))
    return tuple(blobs)


async def seed_demo(redis: Redis, exclude: frozenset[tuple[str, date]] = frozenset()) -> None:
    """Store the demo history in Redis as `fetch` would, except the (source, date) files in `exclude`."""
    await FrameStore(redis).put_dumped([item for item in demo_blobs() if (item[0], item[2]) not in exclude])


@asynccontextmanager
async def running_bot(
    api: BotApi, redis_url: str, *, clock: Callable[[], datetime] | None = None, drain_interval: float = 0.2
) -> AsyncIterator[Application]:
    """Start the real Application with long polling against the stand-in; stop it cleanly afterwards."""
    offset = DEMO_NOW - datetime.now(HK_TZ)  # the demo's evening, advancing in real time
    app = build_application(
        bot_settings(api, redis_url),
        drain_interval=drain_interval,
        clock=clock or (lambda: datetime.now(HK_TZ) + offset),
    )
    await app.initialize()
    assert app.post_init is not None
    await app.post_init(app)
    await app.updater.start_polling(poll_interval=0.0, timeout=1)
    await app.start()
    try:
        yield app
    finally:
        await app.updater.stop()
        quiesce(
            app
        )  # as the leader does: a drain in progress stops at its next item instead of emptying the outbox
        await app.stop()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)
        await app.shutdown()


def app_deps(app: Application) -> Deps:
    """The Deps the running application built."""
    value = app.bot_data["deps"]
    assert isinstance(value, Deps)
    return value


def app_worker(app: Application) -> DeliveryWorker:
    """The delivery worker the running application built."""
    value = app.bot_data["worker"]
    assert isinstance(value, DeliveryWorker)
    return value
