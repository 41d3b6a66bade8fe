"""One chat floods the bot while quiet chats keep asking: the quiet side's reply latency (target p99 ≤ 150 ms).

The real Application (tests/support/bothelpers.py running_bot: long polling, handlers, Redis with the demo data) runs
against the Bot API stand-in with Telegram's limits on (30 msg/s overall, 1 msg/s per chat). For `--seconds`
(default 10) one private chat sends `--rate` updates a second (default 200: /help and /card commands and Card
button presses), while the quiet side sends one command every 100 ms: 20 private chats taking turns, each every
2 s, so they stay inside both Telegram's 1 msg/s and the bot's 20-a-minute budget and measure the service, not
their own limits. Latency runs from pushing the update into the stand-in to the stand-in accepting the reply.
``--serial`` swaps in PTB's one-update-at-a-time processor (the behaviour before the fair processor) to compare.
Run: ``python -m bench.bench_flood [--seconds 10] [--rate 200] [--serial]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("PTB_TIMEDELTA", "1")

import argparse
import asyncio
import itertools
import logging
import math
import statistics
import sys
import time

from redis.asyncio import Redis
from telegram.ext import SimpleUpdateProcessor

import bot.app
from bench.benchkit import machine_line, percentile, private_redis
from bot.fairness import ChatOrderedProcessor
from tests.support.botapi import SEND_METHODS, BotApi
from tests.support.bothelpers import running_bot, seed_demo

TARGET_P99_MS = 150.0
WAIT_S = 30.0  # a quiet command unanswered this long counts as unanswered (infinite latency)
FLOODER = 7000
QUIET = tuple(range(7100, 7120))  # 20 chats: one command every 100 ms overall, each chat every 2 s
QUIET_COMMANDS = ("/start", "/help", "/list", "/card 1810", "/short 700")
FLOOD_UPDATES = ("/help", "/card 1810", "press")


class Waiter:
    """Reads the stand-in's call log and resolves, per quiet chat, the future of the reply awaited there."""

    def __init__(self, api: BotApi) -> None:
        self.api = api
        self.position = 0
        self.futures: dict[int, asyncio.Future[float]] = {}

    async def follow(self) -> None:
        """Poll the log every millisecond for accepted sends."""
        while True:
            new = self.api.sent[self.position :]
            self.position += len(new)
            for call in new:
                if call.ok and call.method.lower() in SEND_METHODS and call.chat_id in self.futures:
                    future = self.futures.pop(call.chat_id)
                    if not future.done():
                        future.set_result(call.time)
            await asyncio.sleep(0.001)

    async def ask(self, chat: int, text: str) -> float:
        """Seconds from pushing `text` in `chat` to its reply; infinite when none came within WAIT_S."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.futures[chat] = future
        pushed = time.monotonic()
        self.api.push_message(chat, text)
        try:
            return await asyncio.wait_for(future, WAIT_S) - pushed
        except TimeoutError:
            self.futures.pop(chat, None)
            return math.inf


async def flood(api: BotApi, rate: float, until: float, card_message: int) -> int:
    """Push `rate` updates a second from the flooding chat until `until`; returns how many.

    The presses name the card message they are under, as Telegram's do (the stand-in would otherwise search the
    chat's history for the bot's latest message on every press, and that search would be what this measures).
    """
    kinds = itertools.cycle(FLOOD_UPDATES)
    pushed, started = 0, time.monotonic()
    while time.monotonic() < until:
        due = int((time.monotonic() - started) * rate) + 1
        for _ in range(due - pushed):  # catch up in a burst when the loop was late, as a client would
            kind = next(kinds)
            if kind == "press":
                api.push_callback(FLOODER, "card:01810", message_id=card_message)
            else:
                api.push_message(FLOODER, kind)
        pushed = max(pushed, due)
        await asyncio.sleep(0.005)
    return pushed


async def quiet(waiter: Waiter, seconds: float) -> dict[str, list[float]]:
    """One command every 100 ms, the quiet chats taking turns; each waits for its reply concurrently."""
    asks: list[tuple[str, asyncio.Task[float]]] = []
    started = time.monotonic()
    for n in range(int(seconds * 10)):
        await asyncio.sleep(max(0.0, started + n * 0.1 - time.monotonic()))
        text = QUIET_COMMANDS[n % len(QUIET_COMMANDS)]
        asks.append((text, asyncio.create_task(waiter.ask(QUIET[n % len(QUIET)], text))))
    by_command: dict[str, list[float]] = {text: [] for text in QUIET_COMMANDS}
    for text, task in asks:
        by_command[text].append(await task)
    return by_command


async def main(argv: list[str] | None = None) -> int:
    """Start the bot, warm it, flood it, print the quiet side's latency."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200.0, help="updates a second from the flooding chat")
    parser.add_argument(
        "--serial", action="store_true", help="one update at a time, as before (for comparison)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    if args.serial:
        bot.app.ChatOrderedProcessor = lambda: SimpleUpdateProcessor(1)  # type: ignore[assignment,misc,return-value]
    with private_redis() as url, BotApi() as api:
        redis = Redis.from_url(url)
        await seed_demo(redis)
        await redis.aclose()
        async with running_bot(api, url) as app:
            waiter = Waiter(api)
            follower = asyncio.create_task(waiter.follow())
            await app.bot_data["deps"].view()
            for chat in (*QUIET, FLOODER):  # warm: the answer cache and each chat's registration, not counted
                await waiter.ask(chat, "/card 1810")
            card_message = int(api.calls("sendMessage")[-1].result["message_id"])
            await asyncio.sleep(2.1)  # the warm-up replies leave Telegram's 1 msg/s window of each quiet chat
            api.limits(global_per_sec=30, per_chat_per_sec=1, group_per_min=20)
            too_many_before = api.too_many
            started = time.monotonic()
            flooding = asyncio.create_task(flood(api, args.rate, started + args.seconds, card_message))
            by_command = await quiet(waiter, args.seconds)
            pushed = await flooding
            flood_replies = len(api.messages(FLOODER))
            flood_answers = sum(1 for c in api.calls("answerCallbackQuery") if c.ok)
            processor = app.update_processor
            dropped = processor.dropped if isinstance(processor, ChatOrderedProcessor) else 0
            follower.cancel()
            errors = list(app.bot_data.get("handler_errors", []))
            too_many = api.too_many - too_many_before
            print("stopping: the flooding chat's queued updates are drained first", file=sys.stderr)
    ms = sorted(v * 1000 for values in by_command.values() for v in values)
    mode = "serial (PTB default, one update at a time)" if args.serial else "fair (ChatOrderedProcessor)"
    print(
        f"{mode}: flooding chat {pushed} updates in {args.seconds:g} s ({pushed / args.seconds:.0f}/s: /help, /card, "
        f"Card presses) → {flood_replies} replies, {flood_answers} press answers, {dropped} dropped at its "
        f"full lane; stand-in 429s {too_many}; handler errors {len(errors)}"
    )
    print(
        f"quiet chats: {len(ms)} commands, one every 100 ms over {len(QUIET)} chats; reply latency p50 "
        f"{statistics.median(ms):.1f} ms, p90 {percentile(ms, 90):.1f} ms, p99 {percentile(ms, 99):.1f} ms, "
        f"max {ms[-1]:.1f} ms; unanswered within {WAIT_S:.0f} s: {sum(math.isinf(v) for v in ms)}"
    )
    print(
        "  by command, p50 / p99 ms: "
        + ", ".join(
            f"{text} {statistics.median(v) * 1000:.0f} / {percentile(v, 99) * 1000:.0f}"
            for text, v in by_command.items()
        )
    )
    p99 = percentile(ms, 99)
    print(f"p99 {p99:.1f} ms (target ≤ {TARGET_P99_MS:.0f} ms): {'OK' if p99 <= TARGET_P99_MS else 'OVER'}")
    print(machine_line())
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
