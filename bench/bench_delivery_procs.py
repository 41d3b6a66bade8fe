"""A backlog drained by several `positioning-bot delivery` PROCESSES sharing one limiter in Redis, at Telegram's ceiling.

The Bot API stand-in (tests/support/botapi.py) enforces 30 msg/s overall, 1 msg/s per chat and 20/min per group with
sliding windows and answers 429 past them. The backlog (by default 3 messages to each of 1,000 private chats plus 20
to each of 3 busy chats, as bench_delivery.py) is put in the outbox of a private redis-server, then N delivery
processes (`python -m bot delivery`, default 3) drain it together; the stand-in runs in this process.

Reported: sustained msgs/s from the first to the last accepted message, as % of the 30/s ceiling (target ≥ 95 %),
429s the stand-in answered (target 0), lost and duplicate messages (target 0), the share each process sent, wall time.
Run: ``python -m bench.bench_delivery_procs [--procs 3] [--chats 1000] [--per-chat 3] [--busy-chats 3]
[--busy-per-chat 20] [--rate R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from redis.asyncio import Redis

from alerts.store.outbox import Outbox, OutboxItem, item_id
from bench.bench_delivery import CEILING, TARGET_PCT, Backlog, build_backlog, measure, wait_all
from bench.benchkit import machine_line, private_redis
from tests.support.botapi import BotApi
from tests.support.bothelpers import TOKEN
from tests.support.paths import ROOT


async def fill(redis_url: str, backlog: Backlog) -> None:
    """The backlog in the outbox, due now, in order."""
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    outbox = Outbox(redis)
    now = datetime.now(UTC)
    await outbox.put_many(
        [
            (OutboxItem(id=item_id(chat, "text", [str(n)]), chat_id=chat, kind="text", text=text), now)
            for n, (chat, text) in enumerate(backlog)
        ]
    )
    await redis.aclose()


def spawn(count: int, env: dict[str, str], folder: Path) -> list[subprocess.Popen[bytes]]:
    """`count` delivery processes running this checkout's code, each logging to its own file."""
    procs = []
    for number in range(count):
        with (folder / f"delivery-{number}.log").open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "bot", "delivery"],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=folder,
                )
            )
    return procs


def stop(procs: list[subprocess.Popen[bytes]]) -> list[int | None]:
    """SIGTERM each, wait up to 15 s, kill what is left; the exit codes."""
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    codes: list[int | None] = []
    for proc in procs:
        try:
            codes.append(proc.wait(timeout=15))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            codes.append(None)
    return codes


def read_logs(folder: Path) -> list[str]:
    """The output of each delivery process."""
    return [path.read_text(errors="replace") for path in sorted(folder.glob("delivery-*.log"))]


async def run(procs: int, backlog: Backlog, rate: str | None, limit_s: float) -> int:
    """Drain the backlog with `procs` delivery processes; print the figures; 0 when every target is met."""
    with (
        private_redis() as redis_url,
        BotApi() as api,
        tempfile.TemporaryDirectory(prefix="bench-procs-") as tmp,
    ):
        await fill(redis_url, backlog)
        api.limits(30, 1, 20)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": tmp,
            "PYTHONPATH": str(ROOT),
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": api.base_url,
            "REDIS_URL": redis_url,
            "LOG_LEVEL": "INFO",  # each drain logs what it sent: the share of each process
        }
        if rate is not None:
            env["DELIVERY_RATE"] = rate
        started = time.monotonic()
        children = spawn(procs, env, Path(tmp))
        try:
            await wait_all(api, len(backlog), limit_s)
        finally:
            codes = stop(children)
        logs = read_logs(Path(tmp))
        tracebacks = sum("Traceback" in text for text in logs)
        shares = [sum(int(n) for n in re.findall(r"DeliveryReport\(sent=(\d+)", text)) for text in logs]
        result = measure(f"{procs} processes", api, backlog, started, f"DELIVERY_RATE {rate or '30'}")
        times = [c.time for c in api.calls("sendMessage") if c.ok]
        per_second = Counter(int(t - times[0]) for t in times) if times else Counter()
    print(
        f"backlog: {len(backlog):,} messages to {len({c for c, _ in backlog}):,} chats; stand-in limits 30/s, 1/s per chat"
    )
    print(
        f"{'senders':<14}{'sent':>7}{'msgs/s':>8}{'% of 30/s':>11}{'429s':>6}{'lost':>6}{'dup':>5}{'wall s':>8}"
    )
    r = result
    ok = r.pct >= TARGET_PCT and r.too_many == 0 and r.lost == 0 and r.duplicates == 0
    print(
        f"{r.name:<14}{r.sent:>7,}{r.rate:>8.2f}{r.pct:>10.1f}%{r.too_many:>6}{r.lost:>6}{r.duplicates:>5}"
        f"{r.wall_s:>8.1f}  {'OK' if ok else 'MISSES'} ({r.note}; exit codes {codes}, tracebacks {tracebacks})"
    )
    print(f"sent by each process: {shares}")
    print(f"accepted per second: {[per_second[i] for i in range(max(per_second, default=-1) + 1)]}")
    print(
        f"targets: ≥ {TARGET_PCT:.0f} % of the {CEILING:g}/s ceiling, zero 429s, nothing lost or sent twice"
    )
    print(machine_line())
    return 0 if ok and all(code == 0 for code in codes) else 1


def main(argv: list[str] | None = None) -> int:
    """Parse flags and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, default=3)
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument("--per-chat", type=int, default=3)
    parser.add_argument("--busy-chats", type=int, default=3)
    parser.add_argument("--busy-per-chat", type=int, default=20)
    parser.add_argument("--rate", help="DELIVERY_RATE of the processes (default: the setting's default)")
    args = parser.parse_args(argv)
    backlog = build_backlog(args.chats, args.per_chat, args.busy_chats, args.busy_per_chat)
    return asyncio.run(run(args.procs, backlog, args.rate, 3 * len(backlog) / CEILING + 60))


if __name__ == "__main__":
    raise SystemExit(main())
