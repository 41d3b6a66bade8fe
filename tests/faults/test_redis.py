"""Redis stopped under a running `positioning-bot run` and started again, empty (no persistence) or from its
append-only file: the process recovers by itself, delivers what was queued (AOF), and tells the admins what the
outage kept it from doing."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from alerts.calendar import HK_TZ
from alerts.sources import SOURCES
from alerts.store import keys
from alerts.store.outbox import Outbox, OutboxItem, item_id
from alerts.store.subscriptions import SubscriptionStore
from alerts.windows import active_dates, missed
from bot.scheduler import LOOKBACK_SESSIONS, RedisOutage
from tests.faults.harness import BotProcess, RedisServer, assert_clean_log, bot_env, hk_iso, seconds, until
from tests.support.botapi import BotApi
from tests.support.bothelpers import ADMIN
from tests.support.origin import Origin

pytestmark = pytest.mark.faults

START = datetime(2025, 11, 27, 18, 0, tzinfo=HK_TZ)  # quotes, buybacks and DI are inside their windows
USERS = (8501, 8502, 8503)
LEASE_TTL = 3.0  # shorter than the outage: the leader steps down and must take the lease back by itself


def test_outage_notice_says_when_and_what_was_skipped() -> None:
    now = [START]
    outage = RedisOutage(lambda: now[0])
    assert outage.notice() is None
    outage.failed("tick", RedisConnectionError("refused"))
    now[0] = START + timedelta(seconds=5)
    outage.failed("tick", RedisConnectionError("refused"))
    outage.failed("drain", RedisConnectionError("refused"))
    outage.lease_lost = True
    now[0] = START + timedelta(seconds=42)
    assert ("hkex-quotes", START.date()) in outage.in_windows(("hkex-quotes", "hkex-short"))
    assert not any(
        s == "hkex-short" for s, _ in outage.in_windows(("hkex-short",))
    )  # its window is 16:00-16:50
    text = outage.notice({("hkex-quotes", START.date())})
    assert text is not None
    assert "Redis unreachable from 2025-11-27 18:00:00 to 18:00:42 HKT (42 s)" in text
    assert (
        "no cycle ran meanwhile (2 poll tick(s) failed); files due in their windows: hkex-quotes 2025-11-27"
        in text
    )
    assert "Deliveries paused: 1 pass(es)" in text and "stepped down" in text
    assert outage.notice() is None, "told once"


def _process_now(bot: BotProcess) -> datetime:
    """An upper bound of the child's clock (it started at CLOCK_START when the process began)."""
    return START + timedelta(seconds=time.monotonic() - bot.started_at)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("aof", [False, True], ids=["restart-empty", "restart-from-aof"])
async def test_redis_outage_recovers_and_tells_the_admins(
    aof: bool, origin: Origin, api: BotApi, tmp_path: Path
) -> None:
    outage_s = seconds("FAULTS_REDIS_OUTAGE_SECONDS", 6, 30)
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis")
    server.start(appendonly=aof)
    redis = Redis.from_url(server.url)
    bot = BotProcess(
        bot_env(
            api_url=api.base_url,
            redis_url=server.url,
            origin_url=origin.url,
            home=tmp_path,
            ADMIN_CHAT_IDS=str(ADMIN),
            CLOCK_START=hk_iso(START),
            LEASE_TTL_SECONDS=str(LEASE_TTL),
        ),
        tmp_path / "bot.log",
    )
    try:
        subs, outbox = SubscriptionStore(redis), Outbox(redis)
        for chat in USERS:
            await subs.touch(chat)
        # Every recent file outside an open window counts as processed: no "no file by the end of its window"
        # notices queued for the admin ahead of the outage notice (one message a second per chat).
        for source in SOURCES:
            for day in missed(source, START, lambda _d: False, LOOKBACK_SESSIONS):
                if day not in active_dates(source, START):
                    await redis.set(keys.cycle_done(source, day), "done before the test")
        bot.start()
        await until(lambda: redis.get(keys.leader_lease()), 60, "a leader", logs=bot.tail)
        # Messages due while Redis is down: they wait in the outbox (in the AOF) through the outage.
        due = _process_now(bot) + timedelta(seconds=2)
        queued = {}
        for chat in USERS:
            queued[chat] = f"queued before the outage for {chat}"
            await outbox.put(
                OutboxItem(
                    id=item_id(chat, "text", ["outage"]), chat_id=chat, kind="text", text=queued[chat]
                ),
                due,
            )
        await asyncio.sleep(1.5)  # appendfsync everysec
        server.stop()
        stopped = time.monotonic()
        await asyncio.sleep(outage_s)
        assert bot.alive(), bot.tail()
        assert not any(api.messages(c) for c in USERS), "nothing can be claimed while Redis is down"
        if not aof:
            server.wipe()
        server.start(appendonly=aof)
        down_for = time.monotonic() - stopped

        notice = await until(
            lambda: _outage_notice(api), 60, "the admins told about the outage", logs=bot.tail
        )
        if aof:
            await until(lambda: all(api.messages(c) for c in USERS), 60, "the queued messages", logs=bot.tail)
        # The bot answers commands again (it also re-registers a chat Redis forgot).
        api.push_message(USERS[0], "/start")
        await until(
            lambda: any(
                "/start" not in str(m.get("text", ""))
                for m in api.messages(USERS[0])
                if str(m.get("text", "")) != queued[USERS[0]]
            ),
            30,
            "an answer to /start",
            logs=bot.tail,
        )
        await asyncio.sleep(2)  # a second copy would arrive by now
        assert bot.alive() and bot.starts == 1, "the process recovered by itself"
    finally:
        bot.stop()
        await redis.aclose()
        server.stop()

    print(f"[faults] redis ({'aof' if aof else 'empty'}): down {down_for:.1f} s; admins told: {notice!r}")
    assert "Redis unreachable from 2025-11-27 18:0" in notice and "Cycles skipped: no cycle ran" in notice
    assert "hkex-quotes 2025-11-27" in notice  # its window was open and its file is still due
    assert "stepped down" in notice  # the outage outlasted the lease
    assert ("came back without its data" in notice) is (not aof)  # an empty restart is data loss, said so
    assert len([m for m in api.messages(ADMIN) if "Redis unreachable" in str(m.get("text", ""))]) == 1
    delivered = Counter(str(m.get("text", "")) for c in USERS for m in api.messages(c))
    if aof:
        assert all(delivered[text] == 1 for text in queued.values()), delivered
    else:
        # Without persistence the outbox went with Redis's memory: nothing is sent twice, the loss is Redis's.
        assert all(delivered[text] == 0 for text in queued.values()), delivered
    assert (
        "leader: lease lost, stepping down" in bot.text() and bot.text().count("leader: lease acquired") >= 2
    )
    assert_clean_log(bot.text())


def _outage_notice(api: BotApi) -> str | None:
    return next(
        (
            str(m.get("text", ""))
            for m in api.messages(ADMIN)
            if "Redis unreachable" in str(m.get("text", ""))
        ),
        None,
    )
