"""Two `positioning-bot run` processes, one Redis, a local data origin and a Bot API stand-in: the leader is
killed with SIGKILL in the middle of a cycle and the standby finishes it, delivering every alert exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from alerts.store import keys
from alerts.store.subscriptions import SubscriptionStore
from bot.demo import demo_root
from tests.support.botapi import BotApi
from tests.support.bothelpers import TOKEN, seed_demo
from tests.support.origin import Origin

DAY = date(2025, 11, 27)
PATH = "/eng/stat/smstat/dayquot/d251127e.htm"
WATCH_TENCENT, WATCH_BABA = 42, 43


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).parent / "positioning-bot"
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([str(exe), "run"], env=env, stdout=out, stderr=subprocess.STDOUT)


async def _holder(redis: Redis) -> str | None:
    raw = await redis.get(keys.leader_lease())
    return raw.decode() if raw else None


async def _until(predicate: object, limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        result = predicate()  # type: ignore[operator]
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.timeout(180)
async def test_standby_finishes_the_cycle_after_sigkill(
    redis: Redis, redis_url: str, origin: Origin, tmp_path: Path
) -> None:
    await seed_demo(redis, exclude=frozenset({("hkex-quotes", DAY)}))
    subs = SubscriptionStore(redis)
    for chat, code in ((WATCH_TENCENT, "00700"), (WATCH_BABA, "09988")):
        await subs.touch(chat)
        await subs.watch(chat, [code])
    await subs.set_market(WATCH_TENCENT, True)
    route = origin.add(PATH, (demo_root() / PATH.lstrip("/")).read_bytes(), delay=4.0)  # a slow origin

    with BotApi() as api:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": api.base_url,
            "REDIS_URL": redis_url,
            "CLOCK_START": "2025-11-27T18:00:30+08:00",
            "LEASE_TTL_SECONDS": "3",
            "LOG_LEVEL": "INFO",
            **{n: origin.url for n in ("HKEX_URL", "HKEXNEWS_URL", "SFC_URL", "HKEX_DI_URL")},
        }
        from tests.support.paths import free_port as _free_port

        health_port = _free_port()
        first = _start({**env, "HEALTH_PORT": str(health_port)}, tmp_path / "a.log")
        try:
            await _until(lambda: _holder(redis), 30, "a leader")
            async with httpx.AsyncClient() as http:
                health = await http.get(f"http://127.0.0.1:{health_port}/healthz")
                metrics = await http.get(f"http://127.0.0.1:{health_port}/metrics")
            assert health.status_code == 200 and health.json()["leader"] is True
            assert "positioning_leader 1" in metrics.text
            second = _start(env, tmp_path / "b.log")
            try:
                leader = await _holder(redis)
                assert leader is not None
                leader_pid = int(leader.split(":")[1])
                assert leader_pid == first.pid
                # The leader is in the middle of the cycle: the origin has the request and is still answering.
                await _until(lambda: any(r.path == PATH for r in origin.requests), 60, "the leader's fetch")
                os.kill(leader_pid, signal.SIGKILL)
                first.wait(timeout=10)
                await _until(
                    lambda: len(api.messages(WATCH_TENCENT)) >= 1 and len(api.messages(WATCH_BABA)) >= 1,
                    60,
                    "alerts delivered by the standby",
                )
                await asyncio.sleep(3)  # anything sent twice would arrive by now
                tencent, baba = api.messages(WATCH_TENCENT), api.messages(WATCH_BABA)
                # The BABA alert is a warning: its chart photo follows the text, once.
                photos = [m for m in baba if "photo" in m]
                baba = [m for m in baba if "photo" not in m]
                assert len(tencent) == 1 and len(baba) == 1 and len(photos) <= 1
                assert (
                    "00700" in tencent[0]["text"] and "Market-wide short selling swing" in tencent[0]["text"]
                )
                assert "09988" in baba[0]["text"] and "Short-selling ratio drop" in baba[0]["text"]
                assert route.hits >= 2  # the standby fetched the file again
                new_leader = await _holder(redis)
                assert new_leader is not None and int(new_leader.split(":")[1]) == second.pid
                second.send_signal(signal.SIGTERM)
                assert second.wait(timeout=30) == 0
                assert await _holder(redis) is None  # released on a graceful stop
            finally:
                if second.poll() is None:
                    second.kill()
        finally:
            if first.poll() is None:
                first.kill()
    log_b = (tmp_path / "b.log").read_text(errors="replace")
    assert "leader: lease acquired" in log_b
    assert "cycle source=hkex-quotes date=2025-11-27 status=processed" in log_b
    assert TOKEN not in log_b and TOKEN not in (tmp_path / "a.log").read_text(errors="replace")
