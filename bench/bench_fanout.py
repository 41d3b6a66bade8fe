"""Fan-out of one day's alerts to 100,000 subscribers holding 1,000,000 watchlist entries, in a real redis-server
and in a real three-primary Redis Cluster.

Subscribers watch a skewed universe of 2,600 HK codes (Zipf-like: the most popular codes are watched by tens of
thousands of chats, the tail by a handful); 10 % opted in to market-wide alerts, 5 % take the daily digest, 10 %
have quiet hours, 5 % turned a rule off. Loading them (the same keys SubscriptionStore writes, pipelined) is setup
and not timed. The timed part is alerts/routing.py `route` — the real code path that filters, marks
(fingerprint × chat) and writes the outbox — for a synthetic day of ~200 alerts over popular codes plus two
market-wide alerts, routed as the day's cycles would (one call per source cycle): day 1 by a process that has read
nothing (the cold pass), day 2 warm after 500 users changed something; then the leader's warm-up
(alerts/store/audience.py `warm`) of a fresh process is timed, and the routed marks' memory projected to 60 days.
Run: ``python -m bench.bench_fanout [--subscribers 100000] [--entries 1000000] [--alerts 200]
[--redis single|cluster|both]``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
from redis.asyncio import Redis

from alerts.calendar import HK_TZ
from alerts.model import Alert, Fact
from alerts.routing import route
from alerts.store import audience as audience_module
from alerts.store import keys
from alerts.store.connect import connect_url, is_cluster
from alerts.store.outbox import Outbox
from alerts.store.subscriptions import SubscriptionStore
from bench.benchkit import current_rss_mb, machine_line, peak_rss_mb, private_cluster, private_redis

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


@dataclass
class Day:
    """What routing one day did: seconds per cycle, items written, (alert × watcher) pairs."""

    seconds: dict[str, float] = field(default_factory=dict)
    items: int = 0
    pairs: int = 0

    @property
    def total(self) -> float:
        """Seconds for the whole day."""
        return sum(self.seconds.values())


async def route_day(
    redis: Redis, subs: SubscriptionStore, outbox: Outbox, alerts_count: int, day: date, seed: int
) -> Day:
    """Route one day cycle by cycle, print a row per cycle."""
    now = datetime.combine(day, datetime.min.time(), HK_TZ) + timedelta(hours=18, minutes=5)
    print(
        f"{'cycle':<18}{'alerts':>7}{'pairs':>10}{'chats':>9}{'items':>9}{'digest':>8}{'skipped':>9}"
        f"{'seconds':>9}{'pairs/s':>10}"
    )
    result = Day()
    for source, alerts in day_alerts(alerts_count, seed, day).items():
        async with redis.pipeline(transaction=False) as pipe:
            for alert in alerts:  # per alert: a code two rules fired on counts twice
                pipe.scard(keys.MARKET_SUBSCRIBERS if alert.code == "MARKET" else keys.watchers(alert.code))
            pairs = sum(await pipe.execute())
        t = time.perf_counter()
        report = await route(alerts, subs, outbox, now)
        seconds = result.seconds[source] = time.perf_counter() - t
        result.items += report.enqueued
        result.pairs += pairs
        print(
            f"{source:<18}{len(alerts):>7}{pairs:>10,}{len(report.chats):>9,}{report.enqueued:>9,}"
            f"{report.digested:>8,}{sum(report.skipped.values()):>9,}{seconds:>9.2f}{pairs / seconds:>10,.0f}"
        )
        now += timedelta(minutes=30)
    return result


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
    """Redis used_memory in bytes (summed over a cluster's primaries)."""
    if is_cluster(redis):
        nodes = await redis.info("memory", target_nodes="primaries")  # type: ignore[call-arg]
        return sum(int(node["used_memory"]) for node in nodes.values())
    return int((await redis.info("memory"))["used_memory"])


@dataclass
class Run:
    """The figures of one server kind."""

    kind: str
    cold: Day
    warm: Day
    warm_up: float
    chats_warmed: int
    marks_day: int
    marks: int
    outbox: int
    before: int
    after: int
    pending: int


def server(kind: str) -> AbstractContextManager[str]:
    """A private single redis-server or three-primary cluster; its URL."""
    return private_cluster() if kind == "cluster" else private_redis()


async def run(kind: str, args: argparse.Namespace) -> Run:
    """Load the subscribers into a fresh server of `kind`, route two days, time a warm-up, measure the marks."""
    with server(kind) as url:
        redis = connect_url(url)
        audience_module._CACHES.clear()  # each server is met by a process that has read nothing
        empty = await used_memory(redis)
        t0 = time.perf_counter()
        chats, codes = watchlists(args.subscribers, args.entries)
        await load(redis, args.subscribers, chats, codes)
        setup_s = time.perf_counter() - t0
        before = await used_memory(redis)
        top = np.bincount(codes, minlength=UNIVERSE)
        print(
            f"== {kind} Redis: {args.subscribers:,} subscribers, {len(chats):,} watchlist entries (most watched "
            f"code {top.max():,} chats, median code {int(np.median(top)):,}) loaded in {setup_s:.1f} s (setup, not "
            f"timed as fan-out); used_memory {empty / 2**20:.1f} → {before / 2**20:.1f} MB"
        )
        subs, outbox = SubscriptionStore(redis), Outbox(redis)
        print(f"day 1 ({DAY}), cold: the routing process starts with an empty cache")
        cold = await route_day(redis, subs, outbox, args.alerts, DAY, 9)
        marks_day = await _usage(redis, keys.routed("*"))
        await churn(subs, args.subscribers)
        day2 = DAY + timedelta(days=1)
        print(f"day 2 ({day2}), warm: 500 chats changed settings, mutes or watchlists since day 1")
        warm = await route_day(redis, subs, outbox, args.alerts, day2, 10)
        after = await used_memory(redis)
        # What a restarted leader does before its first cycle (in the background): every chat's settings.
        audience_module._CACHES.clear()
        t = time.perf_counter()
        chats_warmed = await audience_module.warm(redis)
        warm_up = time.perf_counter() - t
        # What stays after delivery (the routed marks, kept until ROUTED_DAYS after the trade date) vs what
        # delivery frees (the outbox: due ZSET, compact items, batch records, alert bodies).
        marks = await _usage(redis, keys.routed("*"))
        outbox_bytes = sum(
            [
                await _usage(redis, keys.OUTBOX_DUE),
                await _usage(redis, keys.OUTBOX_ITEMS),
                await _usage(redis, keys.outbox_batch("*")),
                await _usage(redis, keys.outbox_alert("*")),
                await _usage(redis, keys.outbox_item("*")),
            ]
        )
        pending = await outbox.pending()
        await redis.aclose()
    return Run(
        kind, cold, warm, warm_up, chats_warmed, marks_day, marks, outbox_bytes, before, after, pending
    )


def summary(r: Run) -> Iterator[str]:
    """The lines of one run's summary."""
    first = next(iter(r.cold.seconds))
    yield (
        f"{r.kind}: warm {first} cycle (120 alerts) {r.warm.seconds[first]:.2f} s; cold pass (the same cycle, first "
        f"of a process) {r.cold.seconds[first]:.2f} s; leader warm-up of a fresh process {r.warm_up:.1f} s "
        f"({r.chats_warmed:,} chats, in the background)"
    )
    yield (
        f"{r.kind}: whole day {r.warm.total:.1f} s warm ({r.warm.pairs:,} pairs, {r.warm.items:,} items), "
        f"{r.cold.total:.1f} s cold ({r.cold.pairs:,} pairs, {r.cold.items:,} items)"
    )
    yield (
        f"{r.kind}: used_memory {r.before / 2**20:.1f} MB before, {r.after / 2**20:.1f} MB after two days "
        f"({r.pending:,} items pending); outbox {r.outbox / 2**20:.1f} MB (freed as messages are delivered)"
    )
    yield (
        f"{r.kind}: routed marks {r.marks_day / 2**20:.1f} MB after day 1, {r.marks / 2**20:.1f} MB after two days; "
        f"kept {keys.ROUTED_DAYS} days after the trade date, so 60 such days hold ≈ {30 * r.marks / 2**30:.2f} GB "
        "(two days × 30)"
    )


async def main(argv: list[str] | None = None) -> int:
    """Route the day on each server kind asked for, print the tables and the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--redis", choices=("single", "cluster", "both"), default="both")
    args = parser.parse_args(argv)
    kinds = ("single", "cluster") if args.redis == "both" else (args.redis,)
    runs = [await run(kind, args) for kind in kinds]
    for r in runs:
        for line in summary(r):
            print(line)
    print(f"process RSS now {current_rss_mb():.0f} MB, peak {peak_rss_mb():.0f} MB")
    print(machine_line())
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
