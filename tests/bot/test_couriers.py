"""Several delivery workers draining one outbox under the limits shared in Redis, and the `delivery` process."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from telegram import Bot

from alerts.calendar import HK_TZ
from alerts.model import Alert, Fact
from alerts.store.outbox import Outbox, OutboxItem, item_id
from alerts.store.ratelimit import SharedLimiter, courier_beat, courier_gone
from alerts.store.subscriptions import SubscriptionStore
from bot import couriers
from bot.app import build_application
from bot.couriers import FreshCharts, drain_until
from bot.delivery import DeliveryWorker, worker_for
from bot.deps import Deps
from tests.faults.harness import until
from tests.support.botapi import BotApi
from tests.support.bothelpers import DEMO_NOW, TOKEN, bot_settings, seed_demo
from tests.support.paths import ROOT, free_port
from tests.support.redis import start_private_redis, stop_private_redis

BUSY = 5001


async def _backlog(redis: Redis, items: list[tuple[int, str]], due: datetime) -> Outbox:
    outbox = Outbox(redis)
    for number, (chat, text) in enumerate(items):
        await outbox.put(
            OutboxItem(id=item_id(chat, "text", [str(number)]), chat_id=chat, kind="text", text=text),
            due + timedelta(milliseconds=number),
        )
    return outbox


async def test_three_workers_send_a_backlog_once_each_without_a_429(redis: Redis, redis_url: str) -> None:
    """Three workers (own Redis clients, own Bot objects, as three processes) against Telegram's limits: every message
    exactly once, none refused, more than one worker doing the sending."""
    now = datetime.now(HK_TZ)
    items = [(6000 + n, f"m{n}") for n in range(54)] + [
        (BUSY + n, f"busy {n} {r}") for r in range(3) for n in (0, 1)
    ]
    outbox = await _backlog(redis, items, now - timedelta(seconds=5))
    clients = [Redis.from_url(redis_url) for _ in range(3)]
    with BotApi() as api:
        api.limits(30, 1, 20)
        bots = [Bot(TOKEN, base_url=api.base_url) for _ in clients]
        try:
            for bot in bots:
                await bot.initialize()
            workers = [
                DeliveryWorker(
                    bot, Outbox(r), SubscriptionStore(r), limiter=SharedLimiter(r), now=lambda: now
                )
                for bot, r in zip(bots, clients, strict=True)
            ]
            reports = await asyncio.gather(*(worker.drain() for worker in workers))
        finally:
            for bot in bots:
                await bot.shutdown()
            for client in clients:
                await client.aclose()
        got = Counter((int(p["chat_id"]), p["text"]) for p in api.messages())
        assert got == Counter(items)  # nothing lost, nothing twice
        assert api.too_many == 0
        assert sum(r.sent for r in reports) == len(items)
        assert sum(r.sent > 0 for r in reports) >= 2
        assert await outbox.pending() == 0


async def test_a_delivery_worker_sends_an_alert_with_its_chart(redis: Redis, redis_url: str) -> None:
    """As `positioning-bot delivery` sets it up: the shared limiter, and charts from a view it reloads for an alert
    newer than its data (the leader logged the alert after this process loaded its view)."""
    await seed_demo(redis)
    alert = Alert(
        rule="short_ratio_spike",
        code="01810",
        trade_date=DEMO_NOW.date(),
        severity="warning",
        name="XIAOMI-W",
        why="short ratio 34.4% is 4.1σ above its 60-session mean",
        facts=(Fact("z", 4.1, "σ"),),
    )
    item = OutboxItem(id="chart", chat_id=2001, kind="alerts", alerts=[alert.as_dict()])
    await Outbox(redis).put(item, DEMO_NOW - timedelta(seconds=1))
    with BotApi() as api:
        settings = bot_settings(api, redis_url)
        deps = Deps.open(settings, lambda: DEMO_NOW)
        try:
            async with Bot(TOKEN, base_url=api.base_url) as bot:
                worker = worker_for(bot, deps.redis, settings, lambda: DEMO_NOW, shared=True)
                worker.charts = FreshCharts(deps)
                report = await worker.drain()
        finally:
            await deps.close()
        messages = api.messages(2001)
        assert report.sent == 2 and "text" in messages[0] and "photo" in messages[1]
        assert "01810" in messages[1]["caption"]
        assert await Outbox(redis).pending() == 0


async def test_a_stopped_worker_hands_its_claimed_items_back(redis: Redis) -> None:
    now = datetime.now(HK_TZ)
    outbox = await _backlog(redis, [(BUSY, f"busy {n}") for n in range(4)], now - timedelta(seconds=5))
    with BotApi() as api:
        async with Bot(TOKEN, base_url=api.base_url) as bot:
            worker = DeliveryWorker(
                bot, outbox, SubscriptionStore(redis), limiter=SharedLimiter(redis), now=lambda: now
            )
            drain = asyncio.create_task(worker.drain())
            await api.until(lambda: api.texts(BUSY))  # the first went; the next waits out the chat's 1 s gap
            worker.stop()
            report = await asyncio.wait_for(drain, timeout=3)
        assert (report.sent, api.texts(BUSY)) == (1, ["busy 0"])
        # Due again at once (not after the claim's minute), for whichever process sends next.
        assert len(await outbox.claim(now, 10)) == 3


async def test_the_drain_loop_waits_out_a_redis_outage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis unreachable when delivery starts: logged and retried with backoff, never raised; once a server answers on
    that address the outbox is sent."""
    caplog.set_level(logging.WARNING, logger="bot.couriers")
    monkeypatch.setattr(couriers, "BACKOFF_FIRST_S", 0.2)  # the test's time, not the production backoff
    port = free_port()
    redis = Redis(
        port=port, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )  # fail fast: the loop retries
    stop = asyncio.Event()
    with BotApi() as api:
        async with Bot(TOKEN, base_url=api.base_url) as bot:
            worker = DeliveryWorker(
                bot, Outbox(redis), SubscriptionStore(redis), limiter=SharedLimiter(redis)
            )
            loop = asyncio.create_task(drain_until(worker, stop, idle_s=0.1))
            for _ in range(100):  # noqa: ASYNC110 - the log is written by the loop under test
                if "Redis unreachable" in caplog.text:
                    break
                await asyncio.sleep(0.05)
            assert not loop.done() and "Redis unreachable" in caplog.text
            server = await asyncio.to_thread(start_private_redis, tmp_path, port)
            try:
                await _backlog(
                    redis, [(7005, "after the outage")], datetime.now(HK_TZ) - timedelta(seconds=1)
                )
                await api.until(lambda: api.texts(7005), timeout=10)
                stop.set()
                await asyncio.wait_for(loop, timeout=3)
            finally:
                stop.set()
                await redis.aclose()
                await asyncio.to_thread(stop_private_redis, server)
    assert api.texts(7005) == ["after the outage"]


async def test_run_leaves_the_outbox_to_delivery_processes(redis_url: str) -> None:
    with BotApi() as api:
        for processes, drains in (("0", True), ("2", False)):
            app = build_application(bot_settings(api, redis_url, DELIVERY_PROCESSES=processes))
            await app.initialize()
            assert app.post_init is not None and app.job_queue is not None
            try:
                await app.post_init(app)
                names = {job.name for job in app.job_queue.jobs()}
            finally:
                if app.post_shutdown is not None:
                    await app.post_shutdown(app)
                await app.shutdown()
            assert ("drain-outbox" in names) is drains


async def test_run_without_the_setting_still_leaves_the_outbox_to_live_delivery_processes(
    redis: Redis, redis_url: str
) -> None:
    """An operator who starts `delivery` processes and forgets DELIVERY_PROCESSES on `run`: the drain job sees the
    live delivery process and sends nothing (two limiters would exceed Telegram's); once it is gone, `run` sends."""
    now = datetime.now(HK_TZ)
    await _backlog(redis, [(7101, "held while a delivery process lives")], now - timedelta(seconds=5))
    await courier_beat(redis, "elsewhere:1:test")
    with BotApi() as api:
        app = build_application(bot_settings(api, redis_url), drain_interval=0.2)
        await app.initialize()
        assert app.post_init is not None
        try:
            await app.post_init(app)
            await app.start()
            await asyncio.sleep(1.0)  # five drain ticks
            assert api.texts(7101) == []
            await courier_gone(redis, "elsewhere:1:test")
            await until(
                lambda: api.texts(7101), 10, "the drain job sending once the delivery process is gone"
            )
            assert api.texts(7101) == ["held while a delivery process lives"]
        finally:
            await app.stop()
            if app.post_shutdown is not None:
                await app.post_shutdown(app)
            await app.shutdown()


def _start_delivery(env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """`python -m bot delivery` (this checkout's code, through PYTHONPATH), its output in `log`."""
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "delivery"], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd
        )


@pytest.mark.timeout(60)
async def test_the_delivery_process_sends_and_stops_on_sigterm(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    now = datetime.now(HK_TZ)
    outbox = await _backlog(
        redis, [(7001, "one"), (7002, "two"), (7001, "three")], now - timedelta(seconds=5)
    )
    with BotApi() as api:
        api.limits(30, 1, 20)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "PYTHONPATH": str(ROOT),
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": api.base_url,
            "REDIS_URL": redis_url,
            "LOG_LEVEL": "INFO",
        }
        log = tmp_path / "delivery.log"
        proc = _start_delivery(env, log, tmp_path)
        try:
            await api.until(lambda: len(api.messages()) == 3, timeout=30)
            await outbox.put(
                OutboxItem(id="later", chat_id=7003, kind="text", text="later"), datetime.now(HK_TZ)
            )
            await api.until(lambda: "later" in api.texts(7003), timeout=10)  # it keeps draining
            proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            while proc.poll() is None and time.monotonic() - sent < 10:  # noqa: ASYNC110 - a child process
                await asyncio.sleep(0.05)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log.read_text(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    assert api.texts(7001) == ["one", "three"] and api.texts(7002) == ["two"]
    assert api.too_many == 0
    assert await outbox.pending() == 0
    assert "Traceback" not in text and TOKEN not in text
