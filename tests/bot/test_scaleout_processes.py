"""Real processes: one `web` and two `worker`s; one worker is killed with updates in flight, and none is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
from redis.asyncio import Redis

from alerts.store import keys
from tests.faults.harness import bot_env, until
from tests.support.botapi import BotApi
from tests.support.paths import free_port

HOOK = "https://bot.example.com/tg/hook"
SECRET = "s3cret-for-process-tests"
PARTITIONS = 8
CHATS = 48
ROOT = str(Path(__file__).resolve().parents[2])  # the checkout under test: the children import it


def _spawn(command: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", command], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _tails(logs: list[Path]) -> Callable[[], str]:
    """The end of each process's log, for a failed wait."""
    return lambda: "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs)


async def _pending_by_consumer(redis: Redis) -> dict[str, int]:
    counts: dict[str, int] = {}
    for part in range(PARTITIONS):
        info = await redis.xpending(keys.update_stream(part), keys.UPDATE_GROUP)
        for consumer in info["consumers"]:
            name = consumer["name"].decode() if isinstance(consumer["name"], bytes) else consumer["name"]
            counts[name] = counts.get(name, 0) + int(consumer["pending"])
    return counts


async def test_killing_a_worker_mid_stream_loses_no_update(
    api: BotApi, redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = bot_env(
        api_url=api.base_url,
        redis_url=redis_url,
        origin_url="http://127.0.0.1:9",  # no source is fetched by web or worker
        home=tmp_path,
        WEBHOOK_URL=HOOK,
        WEBHOOK_SECRET=SECRET,
        PORT=str(port),
        UPDATE_PARTITIONS=str(PARTITIONS),
        UPDATE_LEASE_SECONDS="1",
    )
    env.setdefault("PYTHONPATH", ROOT)
    logs = [tmp_path / "web.log", tmp_path / "worker1.log", tmp_path / "worker2.log"]
    procs = [_spawn(cmd, env, log) for cmd, log in zip(("web", "worker", "worker"), logs, strict=True)]
    web, first, second = procs
    api.delay(
        "sendMessage", 0.25, times=CHATS // 2
    )  # replies take a while: the killed worker has some in flight
    try:
        async with httpx.AsyncClient(timeout=10) as client:

            async def web_up() -> bool:
                try:
                    return (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            async def both_reading() -> bool:
                held = [await redis.get(keys.update_lease(p)) for p in range(PARTITIONS)]
                return await redis.zcard(keys.UPDATE_WORKERS) == 2 and len({h for h in held if h}) == 2

            await until(web_up, 30, "web answers /healthz", logs=_tails(logs))
            await until(both_reading, 30, "two workers share the partitions", logs=_tails(logs))
            updates = [api.push_message(5000 + chat, "/help") for chat in range(CHATS)]
            for update in updates[: CHATS // 2]:
                answer = await client.post(
                    f"http://127.0.0.1:{port}/tg/hook",
                    json=update,
                    headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
                )
                assert answer.status_code == 200

            async def both_busy() -> bool:
                """Each worker holds updates whose replies the stand-in keeps waiting."""
                counts = await _pending_by_consumer(redis)
                return sum(1 for n in counts.values() if n > 0) == 2

            await until(both_busy, 30, "both workers with replies in flight", logs=_tails(logs))
            victim = first
            counts = await _pending_by_consumer(redis)
            in_flight = counts.get(_owner_of(victim, counts), 0)
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(timeout=10)
            for update in updates[CHATS // 2 :]:
                answer = await client.post(
                    f"http://127.0.0.1:{port}/tg/hook",
                    json=update,
                    headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
                )
                assert answer.status_code == 200
            await until(
                lambda: all(api.texts(5000 + chat) for chat in range(CHATS)),
                30,
                "every command answered",
                logs=_tails(logs),
            )
            await until(lambda: _no_pending(redis), 10, "everything acknowledged", logs=_tails(logs))
        assert (
            in_flight > 0
        )  # the kill left updates unacknowledged, and only the survivor could acknowledge them
        survivor = second if victim is first else first
        for proc in (web, survivor):
            proc.send_signal(signal.SIGTERM)
        assert [proc.wait(timeout=30) for proc in (web, survivor)] == [0, 0]
        assert await redis.zcard(keys.UPDATE_WORKERS) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def _owner_of(proc: subprocess.Popen[bytes], pending: dict[str, int]) -> str:
    return next((name for name in pending if f":{proc.pid}:" in name), "")


async def _no_pending(redis: Redis) -> bool:
    return sum((await _pending_by_consumer(redis)).values()) == 0
