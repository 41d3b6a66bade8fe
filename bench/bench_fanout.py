"""Fan-out of one day's alerts to 100,000 subscribers holding 1,000,000 watchlist entries, in a real redis-server.

Subscribers watch a skewed universe of 2,600 HK codes (Zipf-like: the most popular codes are watched by tens of
thousands of chats, the tail by a handful); 10 % opted in to market-wide alerts, 5 % take the daily digest, 10 %
have quiet hours, 5 % turned a rule off. Loading them (the same keys SubscriptionStore writes, pipelined) is setup
and not timed. The timed part is alerts/routing.py `route` — the real code path that filters, marks
(fingerprint × chat) and writes the outbox — for a synthetic day of ~200 alerts over popular codes plus two
market-wide alerts, routed as the day's cycles would (one call per source cycle).
Run: ``python -m bench.bench_fanout [--subscribers 100000] [--entries 1000000] [--alerts 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import date, datetime, timedelta

import numpy as np
from redis.asyncio import Redis

from alerts.calendar import HK_TZ
from alerts.model import Alert, Fact
from alerts.routing import route
from alerts.store import keys
from alerts.store.outbox import Outbox
from alerts.store.subscriptions import SubscriptionStore
from bench.benchkit import current_rss_mb, machine_line, peak_rss_mb, private_redis

DAY = date(2025, 11, 27)
UNIVERSE = 2600
# (source cycle, rule, share of the day's alerts): a day's alerts arrive in a few cycles, each routed at once.
CYCLES = (
    ("hkex-quotes", "short_ratio_spike", 0.45),
    ("hkex-quotes", "short_ratio_drop", 0.15),
    ("hkex-buybacks", "buyback_filed", 0.25),
    ("hkex-di", "insider_buy_near_round_number", 0.10),
    ("hkex-southbound", "southbound_level", 0.05),
)


def popularity(universe: int, skew: float = 1.1) -> np.ndarray:
    """Probability of each code rank being picked (rank 1 = the most watched)."""
    weights = 1.0 / np.arange(1, universe + 1) ** skew
    return weights / weights.sum()


def watchlists(subscribers: int, entries: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(chat index, code index) pairs, unique, `entries` in total, list sizes skewed (many small, few near 200)."""
    rng = np.random.default_rng(seed)
    sizes = np.clip(
        rng.lognormal(np.log(entries / subscribers) - 0.5, 1.0, subscribers), 1, keys.WATCHLIST_CAP
    )
    sizes = np.maximum(1, np.round(sizes * entries / sizes.sum())).astype(np.int64)
    p = popularity(UNIVERSE)
    chats = np.repeat(np.arange(subscribers), sizes)
    pairs = np.unique(chats * UNIVERSE + rng.choice(UNIVERSE, len(chats), p=p))
    while len(pairs) < entries:  # duplicates drawn for popular codes: top up with fresh draws
        extra = rng.integers(0, subscribers, entries - len(pairs)) * UNIVERSE + rng.choice(
            UNIVERSE, entries - len(pairs), p=p
        )
        pairs = np.unique(np.concatenate([pairs, extra]))
    pairs = rng.permutation(pairs)[:entries]
    return pairs // UNIVERSE, pairs % UNIVERSE


def code_of(rank: int) -> str:
    """A 5-digit code for a popularity rank (spread over the board, not simply 00001…)."""
    return f"{(rank * 37) % 9000 + 1:05d}"


async def load(redis: Redis, subscribers: int, chats: np.ndarray, codes: np.ndarray) -> None:
    """Write chats, settings, watchlists and the reverse index with the keys SubscriptionStore uses."""
    first_chat = 100_000_000
    rng = np.random.default_rng(5)
    by_chat: dict[int, list[str]] = {}
    by_code: dict[str, list[int]] = {}
    for chat, rank in zip((chats + first_chat).tolist(), codes.tolist(), strict=True):
        code = code_of(rank)
        by_chat.setdefault(chat, []).append(code)
        by_code.setdefault(code, []).append(chat)
    roll = rng.random((subscribers, 4))
    pipe = redis.pipeline(transaction=False)
    for index in range(subscribers):
        chat = first_chat + index
        settings = {"lang": "zh" if index % 3 == 0 else "en", "type": "private", "active": "1"}
        if roll[index, 0] < 0.10:
            settings["market"] = "1"
            pipe.sadd(keys.MARKET_SUBSCRIBERS, chat)
        if roll[index, 1] < 0.05:
            settings["digest"] = "1"
        if roll[index, 2] < 0.10:
            settings["quiet"] = "23:00-07:00"
        if roll[index, 3] < 0.05:
            settings["rules_off"] = "short_ratio_drop"
        pipe.hset(keys.chat_settings(chat), mapping=settings)
        pipe.sadd(keys.CHATS, chat)
        if chat in by_chat:
            pipe.sadd(keys.watchlist(chat), *by_chat[chat])
        if len(pipe) >= 20_000:
            await pipe.execute()
    for code, watchers in by_code.items():
        for start in range(0, len(watchers), 10_000):
            pipe.sadd(keys.watchers(code), *watchers[start : start + 10_000])
    await pipe.execute()


def day_alerts(count: int, seed: int = 9, day: date = DAY) -> dict[str, list[Alert]]:
    """A synthetic day: `count` alerts over popular codes, per source cycle, plus two market-wide alerts."""
    rng = np.random.default_rng(seed)
    p = popularity(UNIVERSE, skew=0.8)  # alerts favour liquid names, less sharply than watchers do
    published = datetime.combine(day, datetime.min.time(), HK_TZ) + timedelta(hours=18)
    per_cycle: dict[str, list[Alert]] = {}
    for source, rule, share in CYCLES:
        ranks = rng.choice(UNIVERSE, max(1, round(count * share)), replace=False, p=p)
        per_cycle.setdefault(source, []).extend(
            Alert(
                rule=rule,
                code=code_of(int(r)),
                trade_date=day,
                severity="warning" if r % 4 == 0 else "notice",
                why=f"{rule} on {code_of(int(r))}",
                facts=(Fact("z", float(2 + r % 3), "σ"),),
                name=f"STOCK {code_of(int(r))}",
                published_at=published,
            )
            for r in ranks
        )
    per_cycle["hkex-short"] = [
        Alert(
            rule="market_short_swing",
            code="MARKET",
            trade_date=day,
            severity="notice",
            why="market short selling swing",
            identity=side,
            published_at=published,
        )
        for side in ("main", "gem")
    ]
    return per_cycle


async def _usage(redis: Redis, pattern: str) -> int:
    """Bytes Redis reports (MEMORY USAGE, all samples) for the keys matching `pattern`."""
    total = 0
    async for key in redis.scan_iter(match=pattern, count=1000):
        total += int(await redis.memory_usage(key, samples=0) or 0)
    return total


async def route_day(
    redis: Redis, subs: SubscriptionStore, outbox: Outbox, alerts_count: int, day: date, seed: int
) -> tuple[float, float, float, float]:
    """Route one day cycle by cycle, print a row per cycle; (seconds, items, pairs, largest cycle's seconds)."""
    now = datetime.combine(day, datetime.min.time(), HK_TZ) + timedelta(hours=18, minutes=5)
    print(
        f"{'cycle':<18}{'alerts':>7}{'pairs':>10}{'chats':>9}{'items':>9}{'digest':>8}{'skipped':>9}"
        f"{'seconds':>9}{'pairs/s':>10}"
    )
    total_s = total_items = total_pairs = largest = 0.0
    for source, alerts in day_alerts(alerts_count, seed, day).items():
        codes = [a.code for a in alerts]
        async with redis.pipeline(transaction=False) as pipe:
            for code in codes:
                pipe.scard(keys.MARKET_SUBSCRIBERS if code == "MARKET" else keys.watchers(code))
            pairs = sum(await pipe.execute())
        t = time.perf_counter()
        report = await route(alerts, subs, outbox, now)
        seconds = time.perf_counter() - t
        total_s += seconds
        largest = max(largest, seconds)
        total_items += report.enqueued
        total_pairs += pairs
        print(
            f"{source:<18}{len(alerts):>7}{pairs:>10,}{len(report.chats):>9,}{report.enqueued:>9,}"
            f"{report.digested:>8,}{sum(report.skipped.values()):>9,}{seconds:>9.2f}{pairs / seconds:>10,.0f}"
        )
        now += timedelta(minutes=30)
    return total_s, total_items, total_pairs, largest


async def churn(subs: SubscriptionStore, subscribers: int, seed: int = 11) -> None:
    """Between days, what users do: 500 chats change a setting, mute or (un)watch a code, popular ones too."""
    rng = np.random.default_rng(seed)
    first = 100_000_000
    until = datetime(2030, 1, 1, tzinfo=HK_TZ)
    for n, index in enumerate(rng.choice(subscribers, 500, replace=False).tolist()):
        chat = first + index
        match n % 5:
            case 0:
                await subs.set_digest(chat, n % 2 == 0)
            case 1:
                await subs.mute(chat, code_of(n % 20), until)
            case 2:
                await subs.watch(chat, [code_of(n % 10)])
            case 3:
                await subs.unwatch(chat, [code_of(n % 10)])
            case _:
                await subs.set_rule(chat, "buyback_filed", on=False)


async def used_memory(redis: Redis) -> int:
    """Redis used_memory in bytes."""
    return int((await redis.info("memory"))["used_memory"])


async def main(argv: list[str] | None = None) -> int:
    """Load subscribers, route the day cycle by cycle, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--alerts", type=int, default=200)
    args = parser.parse_args(argv)
    with private_redis() as url:
        redis = Redis.from_url(url)
        empty = await used_memory(redis)
        t0 = time.perf_counter()
        chats, codes = watchlists(args.subscribers, args.entries)
        await load(redis, args.subscribers, chats, codes)
        setup_s = time.perf_counter() - t0
        before = await used_memory(redis)
        top = np.bincount(codes, minlength=UNIVERSE)
        print(
            f"setup (not timed as fan-out): {args.subscribers:,} subscribers, {len(chats):,} watchlist entries "
            f"(most watched code {top.max():,} chats, median code {int(np.median(top)):,}) loaded in "
            f"{setup_s:.1f} s; Redis used_memory {empty / 2**20:.1f} → {before / 2**20:.1f} MB"
        )
        subs, outbox = SubscriptionStore(redis), Outbox(redis)
        # Day 1 starts with a process that has read nothing (its first cycle reads every watcher set and every
        # affected chat's settings once); day 2 with the cache warm after 500 users changed something overnight.
        print(f"day 1 ({DAY}), cold: the routing process starts with an empty cache")
        cold = await route_day(redis, subs, outbox, args.alerts, DAY, 9)
        after_day1 = await used_memory(redis)
        marks_day = await _usage(redis, keys.routed("*"))
        await churn(subs, args.subscribers)
        day2 = DAY + timedelta(days=1)
        print(f"day 2 ({day2}), warm: 500 chats changed settings, mutes or watchlists since day 1")
        warm = await route_day(redis, subs, outbox, args.alerts, day2, 10)
        after = await used_memory(redis)
        pending = await outbox.pending()
        # What stays after delivery (the routed marks, kept until ROUTED_DAYS after the trade date) vs what
        # delivery frees (the outbox).
        marks = await _usage(redis, keys.routed("*"))
        bodies = await _usage(redis, keys.outbox_alert("*"))
        await redis.aclose()
    for label, (total_s, total_items, total_pairs, largest) in (
        ("day 1 (cold)", cold),
        ("day 2 (warm)", warm),
    ):
        print(
            f"fan-out of {label}: {total_pairs:,.0f} (alert × watcher) pairs in {total_s:.1f} s, largest cycle "
            f"{largest:.2f} s, {total_items:,.0f} outbox items written"
        )
    print(
        f"Redis used_memory {before / 2**20:.1f} MB before, {after_day1 / 2**20:.1f} MB after day 1, "
        f"{after / 2**20:.1f} MB after day 2 ({pending:,} items pending: routed marks and outbox)"
    )
    print(
        f"routed marks: {marks_day / 2**20:.1f} MB after day 1, {marks / 2**20:.1f} MB after two days (MEMORY USAGE of "
        f"every {keys.routed('*')} key); kept {keys.ROUTED_DAYS} days after the trade date, so 60 such days hold "
        f"≈ {60 * marks / 2 / 2**30:.2f} GB (two days' marks × 30); alert bodies {bodies / 2**20:.2f} MB"
    )
    print(f"process RSS now {current_rss_mb():.0f} MB, peak {peak_rss_mb():.0f} MB")
    print(machine_line())
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
