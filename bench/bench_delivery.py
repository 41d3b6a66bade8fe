"""Sustained delivery of a backlog at Telegram's ceiling: our DeliveryWorker vs PTB's AIORateLimiter.

The Bot API stand-in (tests/support/botapi.py) enforces 30 msg/s overall, 1 msg/s per chat and 20/min per group with
sliding windows and answers 429 past them. The same backlog (by default 3 messages to each of 1,000 private chats
plus 20 to each of 3 busy chats, so the per-chat limit matters) is sent

  ours  the real Application (bot/app.py) with its drain job, DeliveryWorker and RateLimiter at DELIVERY_RATE,
        from the outbox in a private redis-server;
  ptb   an Application built with PTB's AIORateLimiter (the rate-limiter extra), every message sent with
        bot.send_message concurrently, as PTB documents it; its max_retries lets it resend after a 429.

Reported: sustained msgs/s from the first to the last accepted message, as % of the 30/s ceiling (target ≥ 95 %),
429s the stand-in answered (target 0), lost and duplicate messages, wall time, peak RSS.
Run: ``python -m bench.bench_delivery [--chats 1000] [--per-chat 3] [--busy-chats 3] [--busy-per-chat 20]
[--only ours|ptb] [--rate R]``.
"""

from __future__ import annotations

import os

os.environ.setdefault(
    "PTB_TIMEDELTA", "1"
)  # retry_after as a timedelta, as production runs (bot/__init__.py)

import argparse
import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, ApplicationBuilder

from alerts.store.outbox import Outbox, OutboxItem, item_id
from bench.benchkit import machine_line, peak_rss_mb, private_redis
from bot.app import build_application
from config.settings import load_settings
from tests.support.botapi import BotApi
from tests.support.bothelpers import TOKEN

CEILING = 30.0  # Telegram's free broadcast limit, messages per second
TARGET_PCT = 95.0
FIRST_CHAT = 10_000_000

Backlog = list[tuple[int, str]]


@dataclass
class Result:
    """What one limiter achieved on the backlog."""

    name: str
    sent: int
    rate: float
    too_many: int
    lost: int
    duplicates: int
    wall_s: float
    note: str = ""

    @property
    def pct(self) -> float:
        """Sustained rate as % of the ceiling."""
        return 100 * self.rate / CEILING


def build_backlog(chats: int, per_chat: int, busy_chats: int, busy_per_chat: int) -> Backlog:
    """(chat, text) pairs: `per_chat` to each of `chats` chats, `busy_per_chat` to each busy chat, interleaved."""
    backlog: Backlog = []
    for round_ in range(max(per_chat, busy_per_chat)):
        if round_ < per_chat:
            backlog += [
                (FIRST_CHAT + c, f"<b>Alert</b> {round_ + 1} for chat {FIRST_CHAT + c}") for c in range(chats)
            ]
        if round_ < busy_per_chat:
            backlog += [
                (FIRST_CHAT + chats + c, f"<b>Alert</b> {round_ + 1} for busy chat {FIRST_CHAT + chats + c}")
                for c in range(busy_chats)
            ]
    return backlog


def measure(name: str, api: BotApi, backlog: Backlog, started: float, note: str = "") -> Result:
    """Compare what the stand-in accepted with the backlog; the rate runs from the first to the last message."""
    calls = [c for c in api.calls("sendMessage") if c.ok]
    got = Counter((int(c.params["chat_id"]), c.params["text"]) for c in calls)
    want = Counter(backlog)
    span = calls[-1].time - calls[0].time if len(calls) > 1 else float("nan")
    return Result(
        name=name,
        sent=len(calls),
        rate=(len(calls) - 1) / span if span else 0.0,
        too_many=api.too_many,
        lost=sum((want - got).values()),
        duplicates=sum((got - want).values()),
        wall_s=time.monotonic() - started,
        note=note,
    )


async def wait_all(api: BotApi, total: int, limit_s: float) -> None:
    """Until the stand-in accepted `total` messages (or `limit_s` seconds passed)."""
    deadline = time.monotonic() + limit_s
    while len(api.messages()) < total and time.monotonic() < deadline:  # noqa: ASYNC110 - the stand-in is threaded
        await asyncio.sleep(0.05)


async def run_ours(redis_url: str, backlog: Backlog, rate: str | None, limit_s: float) -> Result:
    """The backlog through the outbox and the real Application's drain job (DeliveryWorker + RateLimiter)."""
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    outbox = Outbox(redis)
    now = datetime.now(UTC)
    for number, (chat, text) in enumerate(backlog):
        await outbox.put(
            OutboxItem(id=item_id(chat, "text", [str(number)]), chat_id=chat, kind="text", text=text), now
        )
    await redis.aclose()
    with BotApi() as api:
        api.limits(30, 1, 20)
        env = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": api.base_url, "REDIS_URL": redis_url}
        if rate is not None:
            env["DELIVERY_RATE"] = rate
        settings = load_settings(env, env_file=None)
        app = build_application(settings)  # the production drain interval
        started = time.monotonic()
        await app.initialize()
        assert app.post_init is not None
        await app.post_init(app)
        await app.start()
        try:
            await wait_all(api, len(backlog), limit_s)
        finally:
            await app.stop()
            assert app.post_shutdown is not None
            await app.post_shutdown(app)
            await app.shutdown()
        return measure("ours", api, backlog, started, f"DELIVERY_RATE {settings.delivery_rate:g}")


async def run_ptb(backlog: Backlog, max_retries: int, limit_s: float) -> Result:
    """The backlog sent concurrently through an Application built with AIORateLimiter."""
    with BotApi() as api:
        api.limits(30, 1, 20)
        app = (
            ApplicationBuilder()
            .token(TOKEN)
            .base_url(api.base_url)
            .rate_limiter(AIORateLimiter(max_retries=max_retries))
            .build()
        )
        started = time.monotonic()
        async with app:
            results = await asyncio.wait_for(
                asyncio.gather(
                    *(app.bot.send_message(chat, text) for chat, text in backlog), return_exceptions=True
                ),
                limit_s,
            )
        errors = Counter(type(r).__name__ for r in results if isinstance(r, BaseException))
        unexpected = [r for r in results if isinstance(r, BaseException) and not isinstance(r, TelegramError)]
        if unexpected:
            raise unexpected[0]
        failed = ", ".join(f"{n} {name}" for name, n in errors.items()) or "no send failed"
        return measure("PTB AIORateLimiter", api, backlog, started, f"max_retries {max_retries}; {failed}")


def print_table(results: list[Result], backlog: Backlog) -> None:
    """The one table: a row per limiter against the targets."""
    chats = len({chat for chat, _ in backlog})
    print(
        f"backlog: {len(backlog):,} messages to {chats:,} private chats; stand-in limits 30/s overall, 1/s per chat"
    )
    print(
        f"{'limiter':<20}{'sent':>7}{'msgs/s':>8}{'% of 30/s':>11}{'429s':>6}{'lost':>6}{'dup':>5}"
        f"{'wall s':>8}  verdict / note"
    )
    for r in results:
        ok = r.pct >= TARGET_PCT and r.too_many == 0 and r.lost == 0 and r.duplicates == 0
        print(
            f"{r.name:<20}{r.sent:>7,}{r.rate:>8.2f}{r.pct:>10.1f}%{r.too_many:>6}{r.lost:>6}{r.duplicates:>5}"
            f"{r.wall_s:>8.1f}  {'OK' if ok else 'MISSES'} ({r.note})"
        )
    print(
        f"targets: ≥ {TARGET_PCT:.0f} % of the 30/s ceiling, zero 429s, nothing lost or sent twice; "
        f"peak RSS {peak_rss_mb():.0f} MB"
    )
    print(machine_line())


async def main(argv: list[str] | None = None) -> int:
    """Parse flags, run the chosen limiters on the same backlog, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument("--per-chat", type=int, default=3)
    parser.add_argument("--busy-chats", type=int, default=3)
    parser.add_argument("--busy-per-chat", type=int, default=20)
    parser.add_argument("--only", choices=("ours", "ptb"))
    parser.add_argument("--rate", help="DELIVERY_RATE for ours (default: the setting's default)")
    parser.add_argument("--max-retries", type=int, default=5, help="AIORateLimiter max_retries")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # A drain longer than its 1 s interval makes APScheduler log each skipped tick; that is expected here.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    backlog = build_backlog(args.chats, args.per_chat, args.busy_chats, args.busy_per_chat)
    timeout = 3 * len(backlog) / CEILING + 60
    results = []
    with private_redis() as redis_url:
        if args.only in (None, "ours"):
            results.append(await run_ours(redis_url, backlog, args.rate, timeout))
        if args.only in (None, "ptb"):
            results.append(await run_ptb(backlog, args.max_retries, timeout))
    print_table(results, backlog)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
