"""The delivery RateLimiter and the worker's send order: no 429 from jitter, no chat holding up the others."""

from __future__ import annotations

from datetime import datetime, timedelta

from redis.asyncio import Redis
from telegram import Bot

from alerts.calendar import HK_TZ
from alerts.store.outbox import Outbox, OutboxItem, item_id
from alerts.store.subscriptions import SubscriptionStore
from bot.delivery import CLAIM_CHUNK, DeliveryWorker, RateLimiter
from tests.support.botapi import BotApi
from tests.support.bothelpers import TOKEN

BUSY = 5001


class FakeClock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_chat_gap_is_counted_from_the_answer() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    limiter.record(7)
    clock.now += 0.4  # Telegram took 0.4 s to answer: it may have counted the send as late as now
    limiter.finished(7)
    clock.now += 0.7  # 1.1 s after the start, only 0.7 s after the answer
    assert abs(limiter.delay(7) - 0.3) < 1e-9
    assert limiter.delay(8) == 0.0  # other chats are not held


def test_group_gap_is_counted_from_the_answer() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    limiter.record(-42)
    clock.now += 0.5
    limiter.finished(-42)
    assert abs(limiter.delay(-42) - 3.0) < 1e-9  # 20 per minute


def test_global_window_is_full_until_its_oldest_answer_is_a_window_old() -> None:
    clock = FakeClock()
    limiter = RateLimiter(global_per_sec=3, clock=clock)
    answers = []
    for chat in (1, 2, 3):
        clock.now += limiter.delay(chat)
        limiter.record(chat)
        clock.now += 0.1
        limiter.finished(chat)
        answers.append(clock.now)
    assert limiter.window_limit == 3
    assert abs(limiter.delay(4) - (answers[0] + 1.0 - clock.now)) < 1e-9
    clock.now = answers[0] + 1.0
    assert limiter.delay(4) == 0.0


def test_a_window_never_holds_more_than_the_rate() -> None:
    """Telegram may count a send anywhere between its start and its answer; no 1 s window can hold more than N."""
    clock = FakeClock()
    limiter = RateLimiter(global_per_sec=30, chat_interval=0.0, clock=clock)
    sends: list[tuple[float, float]] = []  # (start, answer)
    for number in range(300):
        clock.now += limiter.delay(number)
        limiter.record(number)
        start = clock.now
        clock.now += 0.25 if number % 50 == 0 else 0.001  # mostly fast answers, now and then a slow one
        limiter.finished(number)
        sends.append((start, clock.now))
    # Worst case for send k: every earlier send counted at its answer, send k at its start.
    for index, (start, _) in enumerate(sends):
        assert sum(answer > start - 1.0 for _, answer in sends[:index]) < 30


def test_fast_answers_keep_the_full_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(global_per_sec=30, chat_interval=0.0, clock=clock)
    first = clock.now
    for number in range(301):
        clock.now += limiter.delay(number)
        limiter.record(number)
        clock.now += 0.002
        limiter.finished(number)
    assert 300 / (clock.now - first) > 0.95 * 30


async def _backlog(redis: Redis, items: list[tuple[int, str]], due: datetime) -> Outbox:
    outbox = Outbox(redis)
    for number, (chat, text) in enumerate(items):
        await outbox.put(
            OutboxItem(id=item_id(chat, "text", [str(number)]), chat_id=chat, kind="text", text=text),
            due + timedelta(milliseconds=number),
        )  # claim order = list order
    return outbox


async def test_a_slow_answer_does_not_cause_a_429(redis: Redis) -> None:
    """Telegram counts the first send late (slow answer); the next one to the chat must still be 1 s after it."""
    now = datetime.now(HK_TZ)
    outbox = await _backlog(redis, [(77, "first"), (77, "second")], now - timedelta(seconds=5))
    with BotApi() as api:
        api.limits(30, 1, 20)
        api.delay("sendMessage", 0.4)  # the first send is handled (and counted) 0.4 s after it left
        async with Bot(TOKEN, base_url=api.base_url) as bot:
            worker = DeliveryWorker(bot, outbox, SubscriptionStore(redis), now=lambda: now)
            report = await worker.drain()
        assert (report.sent, report.retried, api.too_many) == (2, 0, 0)
        assert api.texts(77) == ["first", "second"]


async def test_a_busy_chat_does_not_hold_up_the_others(redis: Redis) -> None:
    """Five messages to one chat claimed first: the other chats are served while it waits out its 1 s gaps."""
    now = datetime.now(HK_TZ)
    items = [(BUSY, f"busy {n}") for n in range(5)] + [(6000 + n, f"other {n}") for n in range(12)]
    outbox = await _backlog(redis, items, now - timedelta(seconds=5))
    with BotApi() as api:
        api.limits(30, 1, 20)
        async with Bot(TOKEN, base_url=api.base_url) as bot:
            worker = DeliveryWorker(bot, outbox, SubscriptionStore(redis), now=lambda: now)
            report = await worker.drain()
        assert (report.sent, api.too_many) == (len(items), 0)
        order = [params["text"] for params in api.messages()]
        assert order[0] == "busy 0"
        assert all(order.index(f"other {n}") < order.index("busy 1") for n in range(12))
        assert [text for text in order if text.startswith("busy")] == [f"busy {n}" for n in range(5)]
        assert await outbox.pending() == 0


async def test_one_drain_sends_more_than_one_claim(redis: Redis) -> None:
    """A backlog longer than the pool is drained in one pass (claimed a few at a time), each item once."""
    now = datetime.now(HK_TZ)
    items = [(7000 + n, f"m{n}") for n in range(3 * CLAIM_CHUNK + 3)]
    outbox = await _backlog(redis, items, now - timedelta(seconds=5))
    with BotApi() as api:
        async with Bot(TOKEN, base_url=api.base_url) as bot:
            worker = DeliveryWorker(
                bot,
                outbox,
                SubscriptionStore(redis),
                limiter=RateLimiter(global_per_sec=1000),
                now=lambda: now,
            )
            report = await worker.drain(max_items=CLAIM_CHUNK)
        assert report.sent == len(items)
        assert sorted(api.texts()) == sorted(text for _, text in items)
        assert await outbox.pending() == 0
