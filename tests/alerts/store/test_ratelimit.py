"""The delivery limiter shared in Redis: two instances (as two processes) keep one window, one chat gap, one pause."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from alerts.store import keys
from alerts.store.ratelimit import SharedLimiter, courier_beat, courier_gone, live_couriers


async def _grant(limiter: SharedLimiter, chat_id: int) -> float:
    """Wait until a send to `chat_id` is granted; the seconds waited."""
    started = time.monotonic()
    while (wait := await limiter.acquire(chat_id)) > 0:  # noqa: ASYNC110 - the limiter says how long
        await asyncio.sleep(wait)
    return time.monotonic() - started


async def test_two_limiters_never_put_more_than_the_rate_into_a_window(redis: Redis) -> None:
    """Telegram may count a send anywhere between its start and its answer: no 1 s window may hold `rate` of them."""
    rate = 20
    limiters = [SharedLimiter(redis, global_per_sec=rate), SharedLimiter(redis, global_per_sec=rate)]
    sends: list[tuple[float, float]] = []  # (start, answer), local clock

    async def sender(limiter: SharedLimiter, first_chat: int) -> None:
        for number in range(20):
            chat = first_chat + number
            await _grant(limiter, chat)
            start = time.monotonic()
            await asyncio.sleep(
                0.15 if number % 7 == 0 else 0.002
            )  # mostly fast answers, now and then a slow one
            answer = time.monotonic()
            await limiter.finished(chat)
            sends.append((start, answer))

    started = time.monotonic()
    await asyncio.gather(sender(limiters[0], 1000), sender(limiters[1], 2000))
    elapsed = time.monotonic() - started
    assert len(sends) == 40
    # Worst case for each send: every other send counted at its answer, this one at its start.
    for start, _ in sends:
        assert sum(start - 1.0 < answer <= start for _, answer in sends) < rate
    assert elapsed < 40 / rate + 2.0  # the shared window does not serialise the two senders into a crawl


async def test_a_chat_gap_and_a_send_in_flight_hold_every_instance(redis: Redis) -> None:
    one, other = SharedLimiter(redis, global_per_sec=1000), SharedLimiter(redis, global_per_sec=1000)
    await _grant(one, 7)
    assert await other.acquire(7) > 1.0  # in flight elsewhere: not answered yet, so it counts until it is
    await one.finished(7)
    wait = await other.acquire(7)
    assert 0.8 < wait <= 1.0  # 1 s from the answer, by Redis's clock
    assert await other.chat_wait(7) == pytest.approx(wait, abs=0.05)
    assert await _grant(other, 8) < 0.1  # other chats are not held
    await other.finished(8)
    await _grant(one, -42)
    await one.finished(-42)
    assert 2.8 < await other.acquire(-42) <= 3.0  # a group: 20 per minute


async def test_a_process_killed_mid_send_frees_its_place(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys, "LIMITER_IN_FLIGHT_MS", 300)
    dead, alive = SharedLimiter(redis, global_per_sec=1), SharedLimiter(redis, global_per_sec=1)
    await _grant(dead, 7)  # ... and never answers
    assert await alive.acquire(8) > 0  # the window (one send) is the send in flight
    assert 0.2 < await _grant(alive, 7) < 1.0  # its chat and its place are free once the flight expired
    await alive.finished(7)


async def test_a_429_pauses_its_chat_and_several_pause_everyone_everywhere(redis: Redis) -> None:
    one, other = SharedLimiter(redis, global_per_sec=1000), SharedLimiter(redis, global_per_sec=1000)
    assert not await one.throttled(5, 2.0)
    assert 1.8 < await other.acquire(5) <= 2.0  # retry_after holds the chat in the other process too
    assert await _grant(other, 6) < 0.1
    await other.finished(6)
    assert not await other.throttled(6, 3.0)
    assert await one.throttled(
        9, 3.0
    )  # the third 429 within 10 s, from two processes: Telegram throttles the bot
    assert 2.8 < await other.acquire(77) <= 3.0
    await other.pause_all(4.0)
    assert 3.8 < await one.acquire(78) <= 4.0
    await one.pause_chat(78, 1.0)  # a shorter pause never shortens a longer one
    assert 3.8 < await one.acquire(78) <= 4.0


async def test_keys_share_one_slot_and_expire(redis: Redis) -> None:
    limiter = SharedLimiter(redis, global_per_sec=1000)
    await _grant(limiter, 7)
    await limiter.finished(7)
    await limiter.throttled(8, 1.0)
    for key in (keys.LIMITER_NEXT, keys.LIMITER_ANSWERS, keys.LIMITER_429S, keys.limiter_chat(7)):
        assert "{limiter}" in key
        ttl = await redis.pttl(key)
        assert (
            ttl == -2 or 0 <= ttl <= keys.LIMITER_429_SPAN_MS
        )  # gone already, or going: nothing kept for good


async def test_live_delivery_processes_are_counted_until_they_stop_or_fall_silent(redis: Redis) -> None:
    assert await live_couriers(redis) == 0
    assert await courier_beat(redis, "a") == 1
    assert await courier_beat(redis, "b") == 2
    await courier_gone(redis, "a")
    assert await live_couriers(redis) == 1
    # b's last heartbeat ages past the horizon (as a process killed with SIGKILL would let it): no longer live.
    seconds, micros = await redis.time()
    stale = seconds * 1000 + micros / 1000 - keys.DELIVERY_LIVE_MS - 1
    await redis.zadd(keys.DELIVERY_LIVE, {"b": stale})
    assert await live_couriers(redis) == 0
    assert 0 < await redis.pttl(keys.DELIVERY_LIVE) <= 2 * keys.DELIVERY_LIVE_MS
