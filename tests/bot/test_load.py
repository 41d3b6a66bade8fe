"""Load, reduced: simulated users send a realistic mix of commands to the real bot (in its own process) against the
Bot API stand-in with Telegram's per-chat and per-group limits on. Sizes: LOAD_USERS (default 150) arriving over
LOAD_SECONDS (default 30); the full run is `python -m bench.load --users 10000 --minutes 10` (see bench/README.md).
Speed is not asserted here (that is a benchmark); correctness under load and bounded memory are."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from bench.load import MAX_KEYS_PER_USER, run_load
from tests.support.botapi import BotApi
from tests.support.bothelpers import running_bot, seed_demo

USERS = int(os.environ.get("LOAD_USERS", "150"))
SECONDS = float(os.environ.get("LOAD_SECONDS", "30"))
# Python memory the bot allocates in the second half of the run and still holds at the end (tracemalloc): caches
# filled lazily (answers per data view, PTB internals) fit well inside this; a leak of a few KiB per update,
# or any per-user object kept in memory, does not (the bot handles about 5 updates per user).
HELD_BOUND_BYTES = 12 * 1024 * 1024 + 2 * 1024 * USERS


@pytest.fixture
def api() -> Iterator[BotApi]:
    with BotApi() as server:
        yield server


@pytest.mark.timeout(int(SECONDS) + 300)
async def test_load_every_command_answered_no_errors_bounded_memory(
    api: BotApi, redis: Redis, redis_url: str
) -> None:
    await seed_demo(redis)
    report = await run_load(
        api,
        redis_url,
        USERS,
        SECONDS,
        seed=int(os.environ.get("LOAD_SEED", "7")),
        trace=True,
        answer_timeout=60.0,
    )
    print(f"\n{report.table()}")  # the figures, for the log (-s)
    tally = report.tally
    assert tally.done_users == USERS
    assert tally.actions >= 3 * USERS  # /start (mostly) and 2–6 more per user
    assert len(tally.by_kind) >= 12  # the mix really was mixed
    assert tally.unanswered == [] and tally.answered == tally.actions
    assert report.handler_errors == []
    assert report.api_errors == [] and report.refused == []
    # Users pace themselves, so replies rarely meet the per-chat limit (a reply in parts can); any that did was
    # waited out and delivered: every action above was answered and no handler failed.
    assert report.too_many <= tally.actions // 100
    messages = sum(n for kind, n in tally.by_kind.items() if not kind.startswith("button"))
    assert report.replies >= messages  # every message got at least one reply
    # Memory: nothing per user held in the bot process, bounded growth over the second half, bounded Redis.
    assert report.in_memory_chats == 0
    assert 0 <= report.traced_bytes <= HELD_BOUND_BYTES, (
        f"{report.traced_bytes:,} bytes held from the 2nd half"
    )
    assert report.rss_end - report.rss_mid <= 64 * 1024 * 1024
    assert report.users_with_keys == USERS
    assert 0 < report.max_keys_per_user <= MAX_KEYS_PER_USER  # 0 would mean the key patterns match nothing
    assert (
        report.keys_after - report.keys_before <= MAX_KEYS_PER_USER * USERS + 50
    )  # + reverse index per code
    assert report.redis_after - report.redis_before <= 16 * 1024 * USERS


async def test_replies_queued_back_to_back_wait_out_flood_control(
    api: BotApi, redis: Redis, redis_url: str
) -> None:
    """A user who sends several commands at once gets every reply, although Telegram allows one a second per chat."""
    api.limits(global_per_sec=None, per_chat_per_sec=1, group_per_min=20)
    async with running_bot(api, redis_url) as app:
        for text in ("/start", "/help", "/list", "/lang en"):
            api.push_message(77, text)
        await api.await_sent(4, chat_id=77, timeout=30)
        assert app.bot_data.get("handler_errors", []) == []
    assert api.too_many >= 1  # the burst did meet flood control
    answered = [c for c in api.calls("sendMessage") if c.ok]
    assert all(b.time - a.time >= 0.9 for a, b in zip(answered, answered[1:], strict=False))
