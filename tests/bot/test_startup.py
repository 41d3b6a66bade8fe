"""Start-up and shutdown of `run`: an unreachable Bot API is waited out with backoff, the leader lease is released
on every way out, a rejected token is still one line, and SIGTERM ends within seconds whatever an origin does."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis as redis_sync
from redis.asyncio import Redis
from telegram.error import BadRequest

import bot.app as app_module
from alerts.store import keys
from bot.handlers import menus
from bot.leader import run, serve
from config.settings import Settings, load_settings
from tests.bot.test_scheduler_hostile import Trickle
from tests.support.botapi import BotApi
from tests.support.bothelpers import TOKEN
from tests.support.origin import Origin
from tests.support.paths import free_port as _free_port

SOURCE_URLS = (
    "HKEX_URL",
    "HKEXNEWS_URL",
    "HKEXNEWS_SDW_URL",
    "HKEXNEWS_WWW1_URL",
    "SFC_URL",
    "HKEX_DI_URL",
    "FINRA_URL",
    "SEC_URL",
)


def _settings(api_url: str, redis_url: str, origin_url: str) -> Settings:
    return load_settings(
        {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": api_url,
            "REDIS_URL": redis_url,
            **{name: origin_url for name in SOURCE_URLS},
        },
        env_file=None,
    )


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_module, "BOT_API_RETRY_FIRST_S", 0.05)
    monkeypatch.setattr(app_module, "BOT_API_RETRY_MAX_S", 0.2)
    for name in ("HEALTH_PORT", "PORT", "WEBHOOK_URL", "WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)


async def _lease(redis: Redis) -> object:
    return await redis.get(keys.leader_lease())


async def _lead_then_stop(api: BotApi, redis: Redis, settings: Settings) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop=stop))
    try:
        await api.until(lambda: api.calls("getUpdates"), timeout=30)
        assert await _lease(redis) is not None
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)
    assert await _lease(redis) is None  # released: the next `run` leads at once


async def test_bot_api_answering_502_is_retried_then_run_proceeds(
    api: BotApi, redis: Redis, redis_url: str, origin: Origin, caplog: pytest.LogCaptureFixture
) -> None:
    api.fail_next("getMe", 502, times=2)
    api.fail_next("setMyCommands", 502, times=1)
    await _lead_then_stop(api, redis, _settings(api.base_url, redis_url, origin.url))
    assert len(api.calls("getMe")) == 3
    # The default menu in English failed once, then every scope's menu in English and 繁中.
    assert len(api.calls("setMyCommands")) == 1 + 2 * len(menus(()))
    warnings = [r.getMessage() for r in caplog.records if "Bot API unreachable" in r.getMessage()]
    assert len(warnings) == 3 and "getMe" in warnings[0]


class Forwarder:
    """A TCP forwarder to the stand-in, started late on a port that refused connections until then."""

    def __init__(self, port: int, target_port: int) -> None:
        self.port, self.target_port = port, target_port
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in list(self.writers):
                writer.transport.abort()
            await self.server.wait_closed()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers.update((writer, upstream_writer))
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer), return_exceptions=True
        )


@pytest.fixture
async def late_port(api: BotApi) -> AsyncIterator[Forwarder]:
    forwarder = Forwarder(_free_port(), int(api.server.server_address[1]))
    yield forwarder
    await forwarder.stop()


async def test_connection_refused_is_retried_until_the_bot_api_comes_up(
    api: BotApi,
    redis: Redis,
    redis_url: str,
    origin: Origin,
    late_port: Forwarder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bot.app")
    settings = _settings(f"http://127.0.0.1:{late_port.port}/bot", redis_url, origin.url)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop=stop))
    try:
        deadline = time.monotonic() + 20
        while sum("Bot API unreachable" in r.getMessage() for r in caplog.records) < 3:
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.05)
        assert api.calls("getMe") == []  # nothing reached it yet
        await late_port.start()
        await api.until(lambda: api.calls("getUpdates"), timeout=30)
        assert any("Bot API answers again" in r.getMessage() for r in caplog.records)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)
    assert await _lease(redis) is None


async def test_stop_during_the_retries_ends_run_and_releases_the_lease(
    redis: Redis, redis_url: str, origin: Origin
) -> None:
    settings = _settings(f"http://127.0.0.1:{_free_port()}/bot", redis_url, origin.url)  # nobody listens
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop=stop))
    deadline = time.monotonic() + 20
    while await _lease(redis) is None:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert await _lease(redis) is None


async def test_a_leader_that_fails_releases_the_lease(
    api: BotApi, redis: Redis, redis_url: str, origin: Origin
) -> None:
    api.fail_next("setMyCommands", 400, "Bad Request: not retried")
    with pytest.raises(BadRequest, match="(?i)not retried"):
        await asyncio.wait_for(
            serve(_settings(api.base_url, redis_url, origin.url), stop=asyncio.Event()), timeout=30
        )
    assert await _lease(redis) is None  # the next `run` does not wait in standby for the ttl


def test_rejected_token_is_one_line_and_releases_the_lease(
    redis_url: str, origin: Origin, capsys: pytest.CaptureFixture[str]
) -> None:
    client = redis_sync.Redis.from_url(redis_url)
    try:
        client.delete(keys.leader_lease())
        with BotApi(token="123:another-token") as api, pytest.raises(SystemExit) as stopped:
            run(_settings(api.base_url, redis_url, origin.url))
        assert stopped.value.code == 2
        err = capsys.readouterr().err
        assert "configuration error: TELEGRAM_BOT_TOKEN" in err and TOKEN not in err
        assert client.get(keys.leader_lease()) is None
    finally:
        client.close()


def _start_run(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).parent / "positioning-bot"
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([str(exe), "run"], env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.mark.timeout(120)
async def test_sigterm_ends_run_within_10_s_while_an_origin_trickles(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    async with Trickle(every=0.5) as trickle:
        with BotApi() as api:
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(tmp_path),
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_API_URL": api.base_url,
                "REDIS_URL": redis_url,
                "CLOCK_START": "2025-11-27T17:30:05+08:00",
                "LOG_LEVEL": "INFO",
                **{name: trickle.url for name in SOURCE_URLS},
            }
            log = tmp_path / "run.log"
            proc = _start_run(env, log)
            try:
                # A cycle is in flight on the trickling origin.
                await asyncio.wait_for(trickle.requested.wait(), timeout=60)
                await asyncio.sleep(1.0)
                proc.send_signal(signal.SIGTERM)
                sent = time.monotonic()
                for _ in range(150):
                    if proc.poll() is not None:
                        break
                    await asyncio.sleep(0.1)
                took = time.monotonic() - sent
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    text = log.read_text(errors="replace")
    assert took < 10, f"SIGTERM took {took:.1f} s\n{text[-3000:]}"
    assert proc.returncode == 0, text[-3000:]
    assert await _lease(redis) is None
    assert "unfinished poll task" in text  # a stuck cycle was cancelled, not waited for
    assert "Traceback" not in text
    print(f"SIGTERM to exit: {took:.1f} s")


async def test_the_leader_asks_for_inline_queries_and_skips_an_unknown_operator_chat(
    api: BotApi, redis: Redis, redis_url: str, origin: Origin
) -> None:
    settings = load_settings(
        {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": api.base_url,
            "REDIS_URL": redis_url,
            "ADMIN_CHAT_IDS": "777,778",
            **{name: origin.url for name in SOURCE_URLS},
        },
        env_file=None,
    )
    # An operator who never opened the bot: Telegram refuses a menu scoped to that chat; start-up goes on.
    api.unknown_chat(777)
    query_id = api.push_inline_query(4321, "")["inline_query"]["id"]
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop=stop))
    try:
        await api.until(lambda: query_id in api.inline_answers, timeout=60)
        polls = [c for c in api.calls("getUpdates") if c.params.get("allowed_updates")]
        assert "inline_query" in polls[0].params["allowed_updates"]
        operator_menus = {scope for scope, _lang in api.commands if '"chat"' in scope}
        assert operator_menus == {'{"chat_id": 778, "type": "chat"}'}  # 777 skipped, 778 registered
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)
