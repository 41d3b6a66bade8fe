"""`web` and `worker` in one process: the webhook into the update stream, the real Application answering from it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from telegram import Update

from alerts.calendar import HK_TZ
from alerts.store import keys
from alerts.store.updates import UpdateStream, chat_of_update
from bot.app import build_application
from bot.cli import _status, main
from bot.fairness import lane_key
from bot.leader import ALLOWED_UPDATES
from bot.scaleout import MAX_UPDATE_BYTES, SECRET_HEADER, serve_web, serve_worker
from config.settings import Settings
from tests.support.botapi import BotApi
from tests.support.bothelpers import DEMO_NOW, TOKEN, bot_settings
from tests.support.paths import free_port

HOOK = "https://bot.example.com/tg/hook"
SECRET = "s3cret-for-tests"


def _settings(api: BotApi, redis_url: str, **env: str) -> Settings:
    return bot_settings(
        api,
        redis_url,
        WEBHOOK_URL=HOOK,
        WEBHOOK_SECRET=SECRET,
        PORT="0",
        UPDATE_PARTITIONS="4",
        UPDATE_LEASE_SECONDS="1",
        **env,
    )


@contextlib.asynccontextmanager
async def _web(settings: Settings) -> AsyncIterator[str]:
    stop = asyncio.Event()
    started: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve_web(settings, stop=stop, started=started))
    port = await asyncio.wait_for(started, timeout=10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        await task


async def _post(
    client: httpx.AsyncClient, base: str, update: dict[str, Any], secret: str = SECRET
) -> httpx.Response:
    return await client.post(base + "/tg/hook", json=update, headers={SECRET_HEADER: secret})


def test_chat_of_update_agrees_with_the_processors_lane(api: BotApi) -> None:
    """The stream partitions by the same chat the Application's processor orders by."""
    updates = [
        api.push_message(5, "/help"),
        api.push_message(-1001, "/list", chat_type="supergroup"),
        api.push_callback(5, "card:00700"),
        api.push_inline_query(77, "700"),
        api.push_channel_post(-1002, "/start"),
    ]
    for raw in updates:
        assert chat_of_update(raw) == lane_key(Update.de_json(raw, None))


async def test_web_checks_the_secret_bounds_the_body_and_queues_each_update_once(
    api: BotApi, redis: Redis, redis_url: str
) -> None:
    settings = _settings(api, redis_url)
    stream = UpdateStream(redis, partitions=4)
    update = api.push_message(6, "/help")
    async with _web(settings) as base, httpx.AsyncClient() as client:
        assert (await _post(client, base, update, secret="wrong")).status_code == 403
        assert (await _post(client, base, update, secret="")).status_code == 403
        assert await redis.xlen(keys.update_stream(2)) == 0
        big = await client.post(
            base + "/tg/hook",
            content=b"{" + b" " * MAX_UPDATE_BYTES + b"}",
            headers={SECRET_HEADER: SECRET, "Content-Type": "application/json"},
        )
        assert big.status_code == 413
        garbage = await client.post(base + "/tg/hook", content=b"[1, 2", headers={SECRET_HEADER: SECRET})
        assert garbage.status_code == 400
        assert (await _post(client, base, update)).status_code == 200
        assert (
            await _post(client, base, update)
        ).status_code == 200  # Telegram re-posting: answered, not re-queued
        entries = await redis.xrange(keys.update_stream(6 % 4))
        assert [json.loads(fields[b"u"])["update_id"] for _, fields in entries] == [update["update_id"]]
        assert stream.partition(update) == 2
        health = await client.get(base + "/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert (await client.get(base + "/tg/hook")).status_code == 405
    calls = api.calls("setWebhook")
    assert [c.params["url"] for c in calls] == [HOOK]
    assert calls[0].params["secret_token"] == SECRET
    assert calls[0].params["allowed_updates"] == ALLOWED_UPDATES


async def test_web_answers_503_while_redis_is_down_so_telegram_retries(api: BotApi) -> None:
    settings = _settings(api, f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    update = api.push_message(6, "/help")
    stop = asyncio.Event()
    started: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve_web(settings, stop=stop, started=started))
    port = await asyncio.wait_for(started, timeout=10)
    async with httpx.AsyncClient(timeout=15) as client:
        answer = await _post(client, f"http://127.0.0.1:{port}", update)
    await api.until(lambda: api.calls("setWebhook"), timeout=10)  # the marker could not be read: set anyway
    stop.set()
    await task  # nor written: logged, not fatal
    assert answer.status_code == 503


async def test_web_to_stream_to_worker_answers_and_acks_after_the_reply(
    api: BotApi, redis: Redis, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _settings(api, redis_url)
    offset = DEMO_NOW - datetime.now(HK_TZ)
    app = build_application(settings, jobs=False, clock=lambda: datetime.now(HK_TZ) + offset)
    stop = asyncio.Event()
    worker = asyncio.create_task(serve_worker(settings, stop=stop, app=app))
    stream = UpdateStream(redis, partitions=4)
    api.delay("sendMessage", 1.0)  # the first reply is slow: its update must stay unacknowledged meanwhile
    try:
        async with _web(settings) as base, httpx.AsyncClient() as client:
            first = api.push_message(11, "/help")
            assert (await _post(client, base, first)).status_code == 200
            for _ in range(300):  # read by the worker (pending), its reply held by the stand-in
                if await stream.pending() == 1:
                    break
                await asyncio.sleep(0.02)
            assert await stream.pending() == 1 and api.texts(11) == []
            assert await _status(settings) == 0
            assert "update workers: 1 live; unacknowledged updates: 1" in capsys.readouterr().out
            await api.until(lambda: api.texts(11), timeout=5)
            for chat in (12, 13):
                assert (await _post(client, base, api.push_message(chat, "/start"))).status_code == 200
            await api.until(lambda: api.texts(12) and api.texts(13), timeout=10)
            for _ in range(100):
                if await stream.pending() == 0:
                    break
                await asyncio.sleep(0.05)
            assert await stream.pending() == 0
    finally:
        stop.set()
        await asyncio.wait_for(worker, timeout=20)
    assert "/watch" in api.texts(11)[0]
    assert api.calls("setMyCommands") == []  # menus are the scheduler's
    assert await redis.zcard(keys.UPDATE_WORKERS) == 0


def test_web_without_a_webhook_url_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.delenv("WEBHOOK_URL", raising=False)
    assert main(["web"]) == 2
    assert "WEBHOOK_URL" in capsys.readouterr().err


async def test_a_workers_application_has_no_jobs_and_a_schedulers_no_drain(
    api: BotApi, redis: Redis, redis_url: str
) -> None:
    settings = _settings(api, redis_url)
    jobs: dict[str, set[str]] = {}
    for role, app in (
        ("worker", build_application(settings, jobs=False)),
        ("scheduler", build_application(settings, poll_sources=True, drain=False)),
        ("run", build_application(settings, poll_sources=True)),
    ):
        await app.initialize()
        try:
            assert app.post_init is not None
            await app.post_init(app)
            assert app.job_queue is not None
            jobs[role] = {job.name or "" for job in app.job_queue.jobs()}
        finally:
            assert app.post_shutdown is not None
            await app.post_shutdown(app)
            await app.shutdown()
    assert jobs["worker"] == set()
    assert jobs["scheduler"] == jobs["run"] - {"drain-outbox"}
    assert {"drain-outbox", "poll-sources", "digests"} <= jobs["run"]
