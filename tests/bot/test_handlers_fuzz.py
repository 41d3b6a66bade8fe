"""Thousands of random messages, commands and button presses: no handler error, no message Telegram refuses."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from tests.support.botapi import BotApi
from tests.support.bothelpers import running_bot, seed_demo

COUNT = int(os.environ.get("FUZZ_UPDATES", "2000"))
COMMANDS = [
    "start",
    "help",
    "watch",
    "unwatch",
    "list",
    "card",
    "short",
    "buybacks",
    "insiders",
    "top",
    "why",
    "history",
    "settings",
    "mute",
    "unmute",
    "quiet",
    "digest",
    "lang",
    "status",
    "stats",
    "broadcast",
    "nope",
    "CARD",
    "watch@positioning_test_bot",
    "card@other_bot",
]
WORDS = [
    "1810",
    "01810",
    "1810.HK",
    "HK1810",
    "xiaomi",
    "小米",
    "騰訊",
    "AAPL",
    "700",
    "9988",
    "99999",
    "0",
    "-5",
    "1e9",
    "on",
    "off",
    "zh",
    "en",
    "fr",
    "22:30-07:30",
    "25:99-1",
    "1d",
    "999w",
    "short_ratio_spike",
    "<b>",
    "</i>",
    "&amp;",
    "&",
    "<a href='x'>",
    "*_[]()~`>#+-=|{}.!",
    "\u200b",
    "\u202e",
    "🚀",
    "'",
    '"',
    "%s",
    "{0}",
    "\\",
    "\n",
    "null",
    "None",
    "' OR 1=1 --",
    "../../etc/passwd",
]


def random_text(rng: random.Random) -> str:
    """Random user input: words, junk unicode, markup, sometimes very long."""
    kind = rng.random()
    if kind < 0.1:
        return "".join(chr(rng.randint(0x20, 0x2FFF)) for _ in range(rng.randint(1, 4096)))
    if kind < 0.15:
        return "x" * rng.randint(4000, 4096)
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 30)))


def random_update(api: BotApi, rng: random.Random) -> None:
    """Push one random update of a random kind from a random chat."""
    chat = rng.choice([rng.randint(1, 400), -rng.randint(1, 50), -1000000000000 - rng.randint(1, 50)])
    roll = rng.random()
    if roll < 0.6:
        api.push_message(chat, f"/{rng.choice(COMMANDS)} {random_text(rng)}".strip()[:4096])
    elif roll < 0.75:
        api.push_message(chat, random_text(rng) or "?")
    elif roll < 0.85 and chat > 0:
        data = rng.choice(
            [
                "card:01810",
                "chart:00700",
                "mute:09988:1d",
                "set:r:3",
                "set:m",
                "set:d",
                "set:s",
                "set:l",
                "set:r:99",
                "card:",
                "mute:01810:9999d",
                random_text(rng)[:64] or "x",
            ]
        )
        api.push_callback(
            chat, data.encode()[:64].decode("utf-8", "ignore") or "x"
        )  # under the bot's last message
    elif roll < 0.92:
        api.push_edited_message(chat, 1, random_text(rng) or "edit")
    else:
        api.push_channel_post(
            -1009000000000 - rng.randint(1, 5), f"/{rng.choice(COMMANDS)} {random_text(rng)}"[:4096]
        )


@pytest.fixture
def api() -> Iterator[BotApi]:
    with BotApi() as server:
        yield server
    assert server.errors == []


@pytest.mark.timeout(600)
async def test_fuzz_no_handler_errors_and_no_refused_markup(
    api: BotApi, redis: Redis, redis_url: str
) -> None:
    seed = int(os.environ.get("FUZZ_SEED", str(random.SystemRandom().randint(0, 2**32))))
    print(f"fuzz seed {seed} ({COUNT} updates); rerun with FUZZ_SEED={seed}")
    rng = random.Random(seed)
    await seed_demo(redis)
    async with running_bot(api, redis_url) as app:
        for _ in range(COUNT):
            random_update(api, rng)
        await api.until(lambda: not api.pending_updates, timeout=300)

        def answers() -> int:
            return sum(1 for c in api.sent if c.method.lower() != "getupdates")

        last, quiet_since = answers(), time.monotonic()
        while time.monotonic() - quiet_since < 2.0:  # settle: no new answers for 2 s
            await asyncio.sleep(0.1)
            if answers() != last:
                last, quiet_since = answers(), time.monotonic()
        errors = app.bot_data.get("handler_errors", [])
    assert errors == [], f"seed {seed}: {errors[:3]}"
    # Every message the bot sent was accepted; edits may be refused only for reasons Telegram gives real bots
    # too (the target message cannot be edited any more) — never for markup, length or button data.
    benign = ("message can't be edited", "message is not modified", "message to edit not found")
    refused = [
        (c.method, c.status, c.description)
        for c in api.sent
        if c.method.lower() != "getupdates"
        and not c.ok
        and not (c.method.lower().startswith("edit") and any(b in c.description for b in benign))
    ]
    assert refused == [], f"seed {seed}: {refused[:5]}"
    replies = [c for c in api.calls("sendMessage") if c.ok]
    assert len(replies) > COUNT // 4  # the bot did answer a good share of what it was sent
