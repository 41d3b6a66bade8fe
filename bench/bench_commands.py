"""Chat command latency with 50 concurrent simulated users against the real Application.

The real python-telegram-bot Application (tests/support/bothelpers.py running_bot: long polling, handlers, the answer
cache, Redis) serves the demo data (seed_demo) in a private redis-server; users write to it through the Bot API
stand-in. Each user sends a mix of /card, /short, /watch, /list, /top, /history, /settings and plain code text,
one at a time, reading each reply for 3–6 s before the next (a person's pace, and under the bot's 20 commands per
minute per chat). Latency runs from pushing the update into the stand-in to the stand-in receiving the reply.
Target: p99 ≤ 150 ms. ``--think 0`` drops the pause: back-to-back users measure throughput, not a person's wait.
Run: ``python -m bench.bench_commands [--users 50] [--rounds 12] [--think 3-6]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("PTB_TIMEDELTA", "1")

import argparse
import asyncio
import logging
import random
import statistics
import time
from collections import defaultdict

from redis.asyncio import Redis

from bench.benchkit import current_rss_mb, machine_line, peak_rss_mb, percentile, private_redis
from tests.support.botapi import SEND_METHODS, BotApi
from tests.support.bothelpers import app_deps, running_bot, seed_demo

TARGET_P99_MS = 150.0
FIRST_USER = 3000
KINDS = ("card", "short", "watch", "list", "top", "history", "settings", "text")


class Replies:
    """Follows the stand-in's log once (not per user) and wakes whoever waits for a reply in a chat."""

    def __init__(self, api: BotApi) -> None:
        self.api = api
        self.seen = 0
        self.waiting: dict[int, asyncio.Future[float]] = {}

    async def run(self) -> None:
        """Scan new calls every millisecond; resolve the waiting chat's future with the reply's arrival time."""
        while True:
            calls = self.api.sent[
                self.seen :
            ]  # appended under the stand-in's lock; a slice is a safe snapshot
            self.seen += len(calls)
            for call in calls:
                chat = call.chat_id
                if call.ok and call.method.lower() in SEND_METHODS and isinstance(chat, int):
                    future = self.waiting.pop(chat, None)
                    if future is not None and not future.done():
                        future.set_result(call.time)
            await asyncio.sleep(0.001)

    async def ask(self, chat: int, text: str) -> float:
        """Push `text` from `chat`; seconds until the stand-in received the bot's reply."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[chat] = future
        pushed = time.monotonic()
        self.api.push_message(chat, text)
        return await asyncio.wait_for(future, 30) - pushed


def script(rng: random.Random, codes: list[str], rounds: int) -> list[tuple[str, str]]:
    """One user's (kind, text) sequence: every kind early, then a random mix."""
    kinds = list(KINDS) + [rng.choice(KINDS) for _ in range(max(0, rounds - len(KINDS)))]
    rng.shuffle(kinds)
    texts = {
        "card": "/card {c}",
        "short": "/short {c}",
        "watch": "/watch {c}",
        "list": "/list",
        "top": "/top",
        "history": "/history {c}",
        "settings": "/settings",
        "text": "{c}",
    }
    return [(kind, texts[kind].format(c=rng.choice(codes).lstrip("0"))) for kind in kinds[:rounds]]


async def user(
    replies: Replies,
    chat: int,
    steps: list[tuple[str, str]],
    think: tuple[float, float],
    rng: random.Random,
    results: dict[str, list[float]],
) -> None:
    """Send each step after reading the previous reply for a while; record latencies by kind."""
    await asyncio.sleep(rng.uniform(0, think[1]))  # users arrive spread out, not in lockstep
    for kind, text in steps:
        results[kind].append(await replies.ask(chat, text))
        await asyncio.sleep(rng.uniform(*think))


def think_range(text: str) -> tuple[float, float]:
    """'3-6' → (3.0, 6.0); '0' → (0.0, 0.0)."""
    low, _, high = text.partition("-")
    return float(low), float(high or low)


async def main(argv: list[str] | None = None) -> int:
    """Start the bot on demo data, run the users, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument(
        "--think", type=think_range, default=(3.0, 6.0), help="seconds between a user's commands"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # skipped drain ticks while a handler runs
    results: dict[str, list[float]] = defaultdict(list)
    with private_redis() as url, BotApi() as api:
        redis = Redis.from_url(url)
        await seed_demo(redis)
        await redis.aclose()
        async with running_bot(api, url) as app:
            replies = Replies(api)
            follower = asyncio.create_task(replies.run())
            cold = await replies.ask(FIRST_USER - 1, "/card 1810")  # loads the DataView from Redis once
            codes = sorted((await app_deps(app).view()).names())
            rng = random.Random(11)
            rss_before = current_rss_mb()
            started = time.monotonic()
            await asyncio.gather(
                *(
                    user(
                        replies,
                        FIRST_USER + n,
                        script(rng, codes, args.rounds),
                        args.think,
                        random.Random(n),
                        results,
                    )
                    for n in range(args.users)
                )
            )
            elapsed = time.monotonic() - started
            follower.cancel()
            errors = list(app.bot_data.get("handler_errors", []))
    everything = [x for values in results.values() for x in values]
    print(
        f"{args.users} users × {args.rounds} commands, {args.think[0]:g}–{args.think[1]:g} s apart = "
        f"{len(everything)} commands in {elapsed:.1f} s "
        f"({len(everything) / elapsed:.0f}/s) on the demo data ({len(codes)} codes); first command "
        f"(cold DataView load, not counted) {cold * 1000:.0f} ms; handler errors {len(errors)}"
    )
    print(f"{'command':<10}{'n':>6}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for kind in (*KINDS, "all"):
        values = everything if kind == "all" else results[kind]
        if values:
            ms = [v * 1000 for v in values]
            print(
                f"{kind:<10}{len(ms):>6}{statistics.median(ms):>9.1f}{percentile(ms, 90):>9.1f}"
                f"{percentile(ms, 99):>9.1f}{max(ms):>9.1f}"
            )
    p99 = percentile([v * 1000 for v in everything], 99)
    print(
        f"p99 {p99:.1f} ms (target ≤ {TARGET_P99_MS:.0f} ms): {'OK' if p99 <= TARGET_P99_MS else 'OVER'}; "
        f"process RSS {rss_before:.0f} MB before the users, {current_rss_mb():.0f} MB after, peak "
        f"{peak_rss_mb():.0f} MB (bot, stand-in and this driver share the process)"
    )
    print(machine_line())
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
