"""Thousands of random messages, commands, button presses, inline queries, /start payloads and /import files: no
handler error, no message Telegram refuses. Hypothesis drives the pure parts (payloads, inline results, CSV) with
Telegram's own limits checked by the stand-in's parsers."""

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
    "here",
    "export",
    "import",
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


PAYLOADS = [
    "watch_01810",
    "watch_1810",
    "card_00700",
    "card_AAPL",
    "watch_BRK-B",
    "lang_zh",
    "lang_en",
    "lang_fr",
    "watch_99999",
    "watch_",
    "_",
    "card_小米",
    "x" * 65,
    "watch_01810_01810",
]


def random_payload(rng: random.Random) -> str:
    """A /start payload: a known shape, or random characters of every kind (Telegram sends only [A-Za-z0-9_-])."""
    if rng.random() < 0.6:
        return rng.choice(PAYLOADS)
    alphabet = "abcxyzAZ0189_-" if rng.random() < 0.7 else "ab_-<>&'\\\"小米🚀\u200b "
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 70)))


def random_csv(rng: random.Random) -> bytes:
    """An /import file: a watchlist CSV with good and bad rows, or junk bytes."""
    if rng.random() < 0.2:
        return bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 300)))
    header = rng.choice(["section,code,name", "code", "name,code", "foo,bar"])
    rows = [
        f"{rng.choice(['watch', 'alert', ''])},{rng.choice(WORDS).replace(chr(10), ' ')},{rng.choice(WORDS)}"
        for _ in range(rng.randint(0, 40))
    ]
    return ("\ufeff" if rng.random() < 0.5 else "").encode() + "\n".join([header, *rows]).encode()


def random_update(api: BotApi, rng: random.Random) -> None:
    """Push one random update of a random kind from a random chat."""
    chat = rng.choice([rng.randint(1, 400), -rng.randint(1, 50), -1000000000000 - rng.randint(1, 50)])
    roll = rng.random()
    if roll < 0.05:
        api.push_inline_query(
            rng.randint(1, 400),
            rng.choice([*WORDS, ""]) if rng.random() < 0.7 else random_text(rng)[:256],
            language_code=rng.choice(["en", "zh-hant", None]),
            chat_type=rng.choice(["private", "group", "supergroup", "channel", "sender"]),
        )
    elif roll < 0.09:
        api.push_message(chat, f"/start {random_payload(rng)}")
    elif roll < 0.11:
        api.push_document(
            chat, random_csv(rng), caption=rng.choice(["/import", "/import@positioning_test_bot", None])
        )
    elif roll < 0.12 and chat < -1000000000000:
        api.push_message(chat, rng.choice(["/here", "/watch 1810"]), thread_id=api.create_topic(chat))
    elif roll < 0.6:
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
    assert api.inline_answers, "inline queries were answered"
    replies = [c for c in api.calls("sendMessage") if c.ok]
    assert len(replies) > COUNT // 4  # the bot did answer a good share of what it was sent
