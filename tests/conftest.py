"""Shared fixtures: a private redis-server, a local HTTP origin, settings pointing at both."""

from __future__ import annotations

import os

# python-telegram-bot: report retry_after as a timedelta (as production does, see bot/__init__.py).
os.environ.setdefault("PTB_TIMEDELTA", "1")

import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from telegram.ext import Application

from config.settings import Settings, load_settings
from tests.support.botapi import BotApi
from tests.support.bothelpers import running_bot, seed_demo
from tests.support.origin import Origin
from tests.support.paths import FIXTURES, fixture_bytes, free_port

__all__ = ["FIXTURES", "fixture_bytes"]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start a private redis-server on a free loopback port in a temp dir (never a shared Redis)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (apt-get install -y redis-server); tests need a real one")
    folder = tmp_path_factory.mktemp("redis")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(folder),
            "--save",
            "",
            "--appendonly",
            "no",
            "--logfile",
            str(folder / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = SyncRedis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail(
                    f"redis-server did not start on port {port}: {(folder / 'redis.log').read_text()}"
                )
            time.sleep(0.05)
    client.close()
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """An asyncio client on the private server, flushed before each test."""
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
def origin() -> Iterator[Origin]:
    """A running local origin; add routes with origin.add(path, body, ...)."""
    with Origin() as server:
        yield server


@pytest.fixture
def settings(origin: Origin, redis_url: str) -> Settings:
    """Settings whose every base URL points at the local origin."""
    env = {
        name: origin.url
        for name in ("HKEX_URL", "HKEXNEWS_URL", "SFC_URL", "HKEX_DI_URL", "FINRA_URL", "SEC_URL")
    }
    env["REDIS_URL"] = redis_url
    return load_settings(env, env_file=None)


@pytest.fixture
def api() -> Iterator[BotApi]:
    """The Bot API stand-in; a test fails if the stand-in itself met a bug."""
    with BotApi() as server:
        yield server
    assert server.errors == []


@pytest.fixture
async def app(api: BotApi, redis: Redis, redis_url: str) -> AsyncIterator[Application]:
    """The real Application with the demo data in a private Redis; fails on any handler error."""
    await seed_demo(redis)
    async with running_bot(api, redis_url) as application:
        # The data view loads at start-up and takes seconds on a busy machine: wait for it here, so the tests'
        # reply deadlines measure the bot, not the warm-up.
        await application.bot_data["deps"].view()
        yield application
    assert application.bot_data.get("handler_errors", []) == []
