"""kill -9 the bot at random moments of its cycles and deliveries, restart it each time, and check that every alert
reached every chat exactly once (FAULTS_KILLS kills; 20 with FAULTS_FULL=1, a few by default)."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis

from alerts.calendar import HK_TZ
from alerts.store import keys
from tests.faults.harness import (
    FULL,
    BotProcess,
    assert_clean_log,
    bot_env,
    count,
    hk_iso,
    seeded_random,
    shifted_start,
    until,
)
from tests.faults.scenario import (
    Chats,
    compare_alerts,
    copy_db,
    identities_in,
    outbox_alerts,
    reference_run,
    seed_copy,
    serve_demo,
)
from tests.support.botapi import BotApi, parse_html
from tests.support.origin import Origin

pytestmark = pytest.mark.faults

START = datetime(2025, 11, 28, 18, 0, tzinfo=HK_TZ)  # inside the evening windows of quotes, buybacks and DI
# The files the bot has to fetch (everything else is already stored): two cycles with alerts for every chat.
# Cycles are CPU-heavy (about 2 s each on an idle core, 10-20 s on a loaded CI machine), so they are few.
PAIRS = [("hkex-quotes", date(2025, 11, 27)), ("hkex-buybacks", date(2025, 11, 25))]
if FULL:  # more cycles and (below) more chats and a slower delivery rate: room for 20 kill points
    PAIRS += [
        ("hkex-quotes", date(2025, 11, 26)),
        ("hkex-buybacks", date(2025, 11, 24)),
        ("sfc-short-positions", date(2025, 11, 21)),
    ]
# A restart starts its clock past the claim lease of items the killed process was sending (keys.CLAIM_SECONDS),
# as a real restart a minute later would: the items are due again at once instead of after a wait.
RESTART_GAP = timedelta(seconds=keys.CLAIM_SECONDS + 5)


@dataclass
class Kill:
    """One SIGKILL: when, in which phase, and what the stand-in had accepted by then."""

    phase: str
    after_s: float
    at: float  # time.monotonic()
    sent_before: int


def _sends(api: BotApi) -> int:
    return len(api.messages())


async def _cycles_left(redis: Redis) -> list[tuple[str, date]]:
    return [(s, d) for s, d in PAIRS if not await redis.exists(keys.cycle_done(s, d))]


async def _kill_once(
    bot: BotProcess, api: BotApi, origin: Origin, redis: Redis, rng: random.Random, phase: str
) -> Kill:
    """Wait for the phase to be under way in this process, then SIGKILL it after a random short delay."""
    sent_at_start, requests_at_start = _sends(api), len(origin.requests)
    served = {path for path in origin.routes}
    if phase == "cycle":
        await until(
            lambda: any(r.path in served for r in origin.requests[requests_at_start:]),
            40,
            "a fetch of a served file",
            logs=bot.tail,
        )
        after = rng.uniform(0.0, 2.5)
    else:
        await until(lambda: _sends(api) > sent_at_start, 40, "a delivery", logs=bot.tail)
        after = rng.uniform(0.0, 1.5)
    await asyncio.sleep(after)
    kill = Kill(phase, after, time.monotonic(), _sends(api))
    bot.kill9()
    return kill


@pytest.mark.timeout(600)
async def test_kill9_loses_nothing_and_sends_nothing_twice(
    redis: Redis, redis_url: str, demo_seed: str, origin: Origin, api: BotApi, tmp_path: Path
) -> None:
    rng = seeded_random("kill9")
    kills_wanted = count("FAULTS_KILLS", 4, 20)
    chats = Chats(tuple(range(7001, 7001 + count("FAULTS_KILL_CHATS", 16, 60))))
    await seed_copy(redis, demo_seed, frozenset(PAIRS))
    await chats.subscribe(redis)
    serve_demo(origin, PAIRS, delay=0.3)  # a slightly slow origin: kills land inside fetches too

    reference = Redis.from_url(redis_url.rsplit("/", 1)[0] + "/1")
    try:
        await copy_db(redis, reference)
        expected = await reference_run(reference, origin.url, START)
        await reference.flushdb()
    finally:
        await reference.aclose()
    assert len(expected) == len(chats.ids), "every chat watches something that alerts"
    assert all(n == 1 for c in expected.values() for n in c.values()), "alert identities must be distinct"
    total = sum(sum(c.values()) for c in expected.values())
    print(f"[faults] kill9: {len(chats.ids)} chats, {total} alert deliveries expected, {kills_wanted} kills")

    clock = START
    bot = BotProcess(
        bot_env(
            api_url=api.base_url,
            redis_url=redis_url,
            origin_url=origin.url,
            home=tmp_path,
            DELIVERY_RATE="5" if FULL else "10",
        ),
        tmp_path / "bot.log",
    )
    kills: list[Kill] = []
    try:
        bot.start(CLOCK_START=hk_iso(clock))
        for n in range(kills_wanted):
            left = await _cycles_left(redis)
            if not left and await redis.zcard(keys.OUTBOX_DUE) == 0:
                break  # nothing left to interrupt
            phase = "cycle" if left and n % 2 == 0 else "delivery"
            kills.append(await _kill_once(bot, api, origin, redis, rng, phase))
            # The dead leader's lease would expire after LEASE_TTL_SECONDS: let it expire now.
            await redis.delete(keys.leader_lease())
            clock = shifted_start(clock, time.monotonic() - bot.started_at, RESTART_GAP)
            bot.start(CLOCK_START=hk_iso(clock))

        async def settled() -> bool:
            return not await _cycles_left(redis) and await redis.zcard(keys.OUTBOX_DUE) == 0

        await until(settled, 120, "every cycle done and the outbox empty", logs=bot.tail)
        await asyncio.sleep(2)  # anything sent twice would arrive by now
        assert bot.alive(), bot.tail()
        leftover = await outbox_alerts(redis)
    finally:
        bot.stop()

    print(
        f"[faults] kill9: {len(kills)} kills: "
        + ", ".join(f"{k.phase}+{k.after_s:.2f}s(sent {k.sent_before})" for k in kills)
    )
    assert len(kills) >= min(kills_wanted, 2), "the work ended before enough kills could be made"
    assert {k.phase for k in kills} == {"cycle", "delivery"} or len(kills) < 2
    assert not leftover
    assert not await redis.lrange(keys.OUTBOX_DEAD, 0, -1), "nothing may be dead-lettered"
    problems, window = compare_alerts(
        api, expected, lambda chat, ident: _window_note(api, chat, ident, kills)
    )
    print(
        f"[faults] kill9: documented-window duplicates: {len(window)}" + "".join(f"\n  {w}" for w in window)
    )
    assert not problems, "\n".join(problems) + "\n" + bot.tail()
    assert_clean_log(bot.text())


def _window_note(api: BotApi, chat: int, ident: str, kills: list[Kill]) -> tuple[bool, str]:
    """(True, why) when a duplicate is the outbox's documented window: Telegram accepted the first copy and the process
    was killed before it sent anything else. The worker records a part before sending the next one, so a later
    send from the same process means the record was written, and a duplicate then is a bug."""
    sends = [c for c in api.sent if c.ok and c.method.lower() in ("sendmessage", "sendphoto")]
    first = min(
        (
            c.time
            for c in sends
            if c.chat_id == chat and ident in identities_in(parse_html(str(c.params.get("text", "")))[0])
        ),
        default=None,
    )
    kill = next((k for k in kills if first is not None and k.at >= first), None)
    if first is None or kill is None or any(first < c.time < kill.at for c in sends):
        return False, " (not the documented window)"
    return True, (
        f" — documented window: accepted {kill.at - first:.2f} s before kill ({kill.phase}), nothing sent in "
        "between (the process died, or its event loop was stalled, before the one Redis write)"
    )
