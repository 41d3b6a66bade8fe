"""What the fault tests feed the bot and how they read what came out: demo files on the local origin, chats that
watch the alerting stocks, the alerts an uninterrupted run routes (computed in-process), and alert identities read
back from the messages the stand-in received."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

import httpx
from redis.asyncio import Redis

from alerts.localdata import local_path
from alerts.model import Alert
from alerts.rules import KINDS
from alerts.sources import get_source
from alerts.store import keys
from alerts.store.outbox import Outbox
from alerts.store.subscriptions import SubscriptionStore
from bot.demo import demo_root
from bot.render import rule_title
from bot.scheduler import Poller
from config.settings import load_settings
from tests.faults.harness import BASE_SETTINGS
from tests.support.botapi import BotApi, parse_html
from tests.support.origin import Origin

# Sources whose demo files are plain GETs at dated URLs (southbound needs the page's form, the US ones a SEC agent).
DATED_SOURCES = ("hkex-quotes", "hkex-buybacks", "hkex-di", "sfc-short-positions")
ALERT_CODES = ("00005", "00700", "01810", "09988")

_HEADLINE = re.compile(r"^(\S+) (?P<title>.+?) · (?P<who>Market|\d{5}\b)", re.M)
_TRADE_DATE = re.compile(r"Trade date (?P<day>\w{3} \d{2} \w{3} \d{4})")


def demo_bytes(source: str, day: date, path: str) -> bytes | None:
    """The bundled demo file for (source, day) at URL `path`, or None when the demo has no such file."""
    file = local_path(demo_root(), source, day, path)
    return file.read_bytes() if file.exists() else None


def serve_demo(origin: Origin, pairs: list[tuple[str, date]], **route: object) -> list[str]:
    """Serve the demo files of (source, day) pairs at their real paths; returns the paths served."""
    served = []
    for source, day in pairs:
        for path in get_source(source).paths(day):
            body = demo_bytes(source, day, path)
            if body is not None:
                origin.add(path, body, **route)
                served.append(path)
    return served


def identity(alert: Alert) -> str:
    """What a reader can tell one alert from another by: rule headline, stock (or Market) and trade date."""
    title = rule_title(alert.rule)
    who = "Market" if alert.code == "MARKET" else alert.code
    return f"{title} | {who} | {alert.trade_date:%a %d %b %Y}"


def identities_in(text: str) -> list[str]:
    """Alert identities in one delivered message (plain text as the stand-in stores it)."""
    found = []
    for block in text.split("\n\n"):
        head, day = _HEADLINE.search(block), _TRADE_DATE.search(block)
        if head and day and head.group(1) in {k.emoji for k in KINDS.values()}:
            found.append(f"{head.group('title')} | {head.group('who')} | {day.group('day')}")
    return found


def received(messages: list[dict[str, object]]) -> Counter[str]:
    """How many times each alert identity arrived in a chat's messages (as sent: Telegram HTML)."""
    counts: Counter[str] = Counter()
    for message in messages:
        html_text = str(message.get("text") or message.get("caption") or "")
        counts.update(identities_in(parse_html(html_text)[0]))
    return counts


@dataclass(frozen=True)
class Chats:
    """Chats of a scenario: each watches some alerting codes; some opted in to market-wide alerts."""

    ids: tuple[int, ...]

    async def subscribe(self, redis: Redis) -> None:
        """Watchlists: chat i watches the codes whose index is not i mod (len + 1); even chats get market alerts."""
        subs = SubscriptionStore(redis)
        for n, chat in enumerate(self.ids):
            await subs.touch(chat)
            codes = [code for i, code in enumerate(ALERT_CODES) if i != n % (len(ALERT_CODES) + 1)]
            await subs.watch(chat, codes)
            if n % 2 == 0:
                await subs.set_market(chat, True)


async def outbox_alerts(redis: Redis) -> dict[int, Counter[str]]:
    """Alert identities per chat in the outbox right now (every item, due or not)."""
    out: dict[int, Counter[str]] = {}
    ids = [raw_id.decode() for raw_id in await redis.zrange(keys.OUTBOX_DUE, 0, -1)]
    for item in await Outbox(redis).load(ids):
        if item.kind == "alerts":
            out.setdefault(item.chat_id, Counter()).update(identity(Alert.from_dict(a)) for a in item.alerts)
    return out


async def reference_run(
    redis: Redis, origin_url: str, now: datetime, sources: tuple[str, ...] | None = None
) -> dict[int, Counter[str]]:
    """What one uninterrupted tick of the real Poller (over `sources`, default all) routes at `now`, per chat."""
    env = {name: origin_url for name in BASE_SETTINGS}
    settings = load_settings({**env, "REDIS_URL": "redis://unused:6379/0"}, env_file=None)
    async with httpx.AsyncClient(timeout=30.0) as client:
        poller = Poller(settings, redis, client, lambda: now)
        if sources is not None:
            poller.sources = sources
        await poller.tick()
    return await outbox_alerts(redis)


async def copy_db(redis: Redis, target: Redis) -> None:
    """Replace the contents of `target` (another database of the same server) with a copy of `redis`'s."""
    await target.flushdb()
    db = int(target.connection_pool.connection_kwargs.get("db", 0))
    keys_ = [key async for key in redis.scan_iter(count=1000)]
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys_:
            pipe.copy(key, key, destination_db=db, replace=True)
        await pipe.execute()


async def seed_copy(redis: Redis, seed_url: str, exclude: frozenset[tuple[str, date]]) -> None:
    """Copy the session's seeded demo history into `redis`, then forget the files of `exclude` (the bot fetches
    those), as seed_demo(redis, exclude=...) would have stored."""
    seeded = Redis.from_url(seed_url)
    try:
        await copy_db(seeded, redis)
    finally:
        await seeded.aclose()
    for source, day in exclude:
        for table in get_source(source).tables:
            await redis.delete(keys.frame(source, table, day))
            await redis.zrem(keys.frame_index(source, table), day.isoformat())


# Whether a duplicate (chat, alert identity) is a documented window, and the words that say why (or what it was).
WindowNote = Callable[[int, str], tuple[bool, str]]


def compare_alerts(
    api: BotApi, expected: dict[int, Counter[str]], note: WindowNote
) -> tuple[list[str], list[str]]:
    """Lost, unexpected and duplicated alerts per chat against the reference run; duplicates `note` calls a
    documented window are returned apart (reported, not failed), every other one is a problem."""
    problems, window = [], []
    for chat, wanted in sorted(expected.items()):
        got = received(api.messages(chat))
        problems += [f"LOST chat {chat}: {ident}" for ident in sorted(set(wanted) - set(got))]
        for ident, n in sorted(got.items()):
            if ident not in wanted:
                problems.append(f"UNEXPECTED chat {chat}: {ident}")
            elif n > 1:
                documented, why = note(chat, ident)
                (window if documented else problems).append(f"DUPLICATE x{n} chat {chat}: {ident}{why}")
    return problems, window
