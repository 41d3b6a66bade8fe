"""Chats, watchlists, settings and mutes in Redis (the only state users write).

A chat's own keys (watchlist, settings, mutes, digest queue) share a hash slot (keys.chat_tag); the indexes over
them (a code's watchers, the chat and market sets) live in other slots of a Redis Cluster, so they are written by
their own commands right after the chat's state, not in its MULTI. Each such write is idempotent and repeated by
the next command touching it (a /watch of a code already listed re-adds the chat to the code's watchers; /unwatch
removes it from them even when the list no longer has the code), so a process dying in between leaves nothing a
user cannot mend by repeating the command.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import cast

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT, ZSetRangeResponse

from alerts.calendar import HK_TZ
from alerts.store import keys

LANGUAGES = ("en", "zh")
_CLEAR_IF_EQUAL = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
"""


# Log a change routing must see: bump the version, note each chat and each code (whose watcher set changed) with it.
# KEYS: version, changed chats, changed codes (one hash tag: one slot); ARGV: the number of chats, chats, codes.
_CHANGED = """
local v = redis.call('INCR', KEYS[1])
local n = tonumber(ARGV[1])
for i = 2, n + 1 do redis.call('ZADD', KEYS[2], v, ARGV[i]) end
for i = n + 2, #ARGV do redis.call('ZADD', KEYS[3], v, ARGV[i]) end
return v
"""
MARKET = "MARKET"  # the code market-wide alerts carry: a change of the market opt-ins is logged under it


_QUIET_RE = re.compile(r"^\s*(\d{1,2})(?::(\d{2}))?\s*[-–]\s*(\d{1,2})(?::(\d{2}))?\s*$")


def parse_quiet(text: str) -> tuple[time, time]:
    """Parse ``'22:30-07:15'`` (or ``'22-7'``) into (start, end); raise ValueError with a readable message."""
    match = _QUIET_RE.match(text)
    try:
        if match is None:
            raise ValueError
        h1, m1, h2, m2 = match.groups()
        start, end = time(int(h1), int(m1 or 0)), time(int(h2), int(m2 or 0))
    except ValueError:
        raise ValueError("use HH:MM-HH:MM, e.g. 22:30-07:30") from None
    if start == end:
        raise ValueError("start and end must differ")
    return start, end


@dataclass(frozen=True)
class ChatSettings:
    """A chat's settings (defaults for a new chat)."""

    chat_id: int
    lang: str = "en"
    quiet: tuple[time, time] | None = None
    digest: bool = False
    market: bool = False
    active: bool = True
    chat_type: str = "private"
    rules_off: frozenset[str] = frozenset()
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    thread_id: int | None = None  # the forum topic alerts go to (/here); None: the chat itself

    def in_quiet(self, now: datetime) -> bool:
        """True when `now` (any tz) falls in the chat's quiet hours, read in Hong Kong time."""
        if self.quiet is None:
            return False
        start, end = self.quiet
        local = now.astimezone(HK_TZ).time()
        return start <= local < end if start < end else local >= start or local < end

    def quiet_end(self, now: datetime) -> datetime:
        """The next end of quiet hours after `now` (timezone-aware, Hong Kong)."""
        if self.quiet is None:
            return now
        local = now.astimezone(HK_TZ)
        end = datetime.combine(local.date(), self.quiet[1], tzinfo=HK_TZ)
        return end if end > local else end + timedelta(days=1)


class SubscriptionStore:
    """Watchlists (with a reverse index), settings, mutes and command rate limits."""

    def __init__(self, redis: Redis, cap: int = keys.WATCHLIST_CAP) -> None:
        self.redis = redis
        self.cap = cap

    async def changed(self, chats: Iterable[int] = (), codes: Iterable[str] = ()) -> None:
        """Tell routing processes these chats' settings or mutes, or these codes' watchers, changed (after the write)."""
        chat_list, code_list = list(chats), list(codes)
        await self.redis.eval(
            _CHANGED,
            3,
            keys.SUBS_VERSION,
            keys.SUBS_CHANGED_CHATS,
            keys.SUBS_CHANGED_CODES,
            len(chat_list),
            *chat_list,
            *code_list,
        )

    async def touch(self, chat_id: int, chat_type: str = "private", lang_hint: str | None = None) -> bool:
        """Register a chat (defaults on first contact; reactivates it); True when it is new."""
        key = keys.chat_settings(chat_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hmget(key, ["type", "active"])
            pipe.hsetnx(key, "lang", _default_lang(lang_hint))
            pipe.hset(key, mapping={"type": chat_type, "active": "1"})
            before, *_ = await pipe.execute()
        # The set of all chats is another slot's key: added after the settings, and again on every command.
        added = bool(await self.redis.sadd(keys.CHATS, chat_id))
        # Every command touches its chat: the change is logged only when something routing reads changed.
        if [_text(v) if v is not None else None for v in before] != [chat_type, "1"]:
            await self.changed([chat_id])
        return added

    async def watch(self, chat_id: int, codes: Iterable[str]) -> tuple[list[str], list[str], list[str]]:
        """Add codes; return (added, already watched, refused because the cap is reached)."""
        current = {_text(c) for c in await self.redis.smembers(keys.watchlist(chat_id))}
        added: list[str] = []
        already: list[str] = []
        refused: list[str] = []
        for code in dict.fromkeys(codes):
            if code in current:
                already.append(code)
            elif len(current) + len(added) >= self.cap:
                refused.append(code)
            else:
                added.append(code)
        if added:
            await self.redis.sadd(keys.watchlist(chat_id), *added)
        # The reverse index after the list (each code's set is its own slot): for codes already listed too, so a
        # /watch repeated after a crash between the two writes mends the index.
        if added or already:
            async with self.redis.pipeline(transaction=False) as pipe:
                for code in [*added, *already]:
                    pipe.sadd(keys.watchers(code), chat_id)
                await pipe.execute()
            await self.changed([chat_id], added)
        return added, already, refused

    async def unwatch(self, chat_id: int, codes: Iterable[str]) -> list[str]:
        """Remove codes; return those that were watched."""
        wanted = list(dict.fromkeys(codes))
        current = {_text(c) for c in await self.redis.smembers(keys.watchlist(chat_id))}
        removed = [c for c in wanted if c in current]
        if wanted:
            # The reverse index first (alerts stop), for every code asked: an index entry left by a crash between
            # the two writes goes with the next /unwatch of the code.
            async with self.redis.pipeline(transaction=False) as pipe:
                for code in wanted:
                    pipe.srem(keys.watchers(code), chat_id)
                await pipe.execute()
        if removed:
            await self.redis.srem(keys.watchlist(chat_id), *removed)
        if wanted:
            await self.changed([chat_id], removed)
        return removed

    async def watchlist(self, chat_id: int) -> list[str]:
        """A chat's codes, sorted."""
        return sorted(_text(c) for c in await self.redis.smembers(keys.watchlist(chat_id)))

    async def watchers(self, code: str) -> set[int]:
        """Chats watching a code."""
        return {int(c) for c in await self.redis.smembers(keys.watchers(code))}

    async def market_subscribers(self) -> set[int]:
        """Chats that opted in to market-wide alerts."""
        return {int(c) for c in await self.redis.smembers(keys.MARKET_SUBSCRIBERS)}

    async def settings(self, chat_id: int) -> ChatSettings:
        """A chat's settings (defaults when unknown)."""
        return _settings_from(chat_id, await self.redis.hgetall(keys.chat_settings(chat_id)))

    async def settings_many(self, chat_ids: list[int]) -> dict[int, ChatSettings]:
        """Settings of many chats in one round trip (fan-out reads thousands per cycle)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for chat in chat_ids:
                pipe.hgetall(keys.chat_settings(chat))
            rows = await pipe.execute()
        return {chat: _settings_from(chat, raw) for chat, raw in zip(chat_ids, rows, strict=True)}

    async def active_mutes_many(self, chat_ids: list[int], now: datetime) -> dict[int, dict[str, datetime]]:
        """Mutes still in force at `now` for many chats in one round trip (expired ones are skipped, not pruned)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for chat in chat_ids:
                pipe.zrangebyscore(keys.mutes(chat), f"({now.timestamp()}", "+inf", withscores=True)
            replies = await pipe.execute()
        return {
            chat: {m: datetime.fromtimestamp(s, tz=HK_TZ) for m, s in _scored(rows).items()}
            for chat, rows in zip(chat_ids, replies, strict=True)
        }

    async def set_lang(self, chat_id: int, lang: str) -> None:
        """Set the chat's language (en or zh)."""
        if lang not in LANGUAGES:
            raise ValueError(f"language must be one of {LANGUAGES}")
        await self.redis.hset(keys.chat_settings(chat_id), "lang", lang)
        await self.changed([chat_id])

    async def set_quiet(self, chat_id: int, quiet: tuple[time, time] | None) -> None:
        """Set or clear quiet hours."""
        key = keys.chat_settings(chat_id)
        if quiet is None:
            await self.redis.hdel(key, "quiet")
        else:
            await self.redis.hset(key, "quiet", f"{quiet[0]:%H:%M}-{quiet[1]:%H:%M}")
        await self.changed([chat_id])

    async def set_digest(self, chat_id: int, on: bool) -> None:
        """Digest mode on/off."""
        await self.redis.hset(keys.chat_settings(chat_id), "digest", "1" if on else "0")
        await self.changed([chat_id])

    async def set_market(self, chat_id: int, on: bool) -> None:
        """Opt in/out of market-wide alerts."""
        # The setting, then the index routing reads (another slot): repeating the choice mends a crash between.
        await self.redis.hset(keys.chat_settings(chat_id), "market", "1" if on else "0")
        await (self.redis.sadd if on else self.redis.srem)(keys.MARKET_SUBSCRIBERS, chat_id)
        await self.changed([chat_id], [MARKET])

    async def set_rule(self, chat_id: int, rule: str, on: bool) -> None:
        """Turn one rule on or off for the chat."""
        current = (await self.settings(chat_id)).rules_off
        rules = (current - {rule}) if on else (current | {rule})
        await self.redis.hset(keys.chat_settings(chat_id), "rules_off", ",".join(sorted(rules)))
        await self.changed([chat_id])

    async def set_threshold(self, chat_id: int, rule: str, name: str, value: float) -> None:
        """Set a per-chat threshold override for a rule parameter."""
        thresholds = (await self.settings(chat_id)).thresholds
        thresholds.setdefault(rule, {})[name] = value
        await self.redis.hset(
            keys.chat_settings(chat_id), "thresholds", json.dumps(thresholds, sort_keys=True)
        )
        await self.changed([chat_id])

    async def set_thread(self, chat_id: int, thread_id: int | None) -> None:
        """Send the chat's messages to forum topic `thread_id` (None: the chat itself, a forum's General topic)."""
        key = keys.chat_settings(chat_id)
        if thread_id is None:
            await self.redis.hdel(key, keys.THREAD_FIELD)
        else:
            await self.redis.hset(key, keys.THREAD_FIELD, str(thread_id))
        await self.changed([chat_id])

    async def clear_thread(self, chat_id: int, thread_id: int) -> bool:
        """Forget topic `thread_id` (deleted) unless /here chose another meanwhile; True when it was cleared."""
        # One atomic compare-and-delete: every command rewrites this hash (touch), so WATCH would keep failing.
        cleared = await self.redis.eval(
            _CLEAR_IF_EQUAL, 1, keys.chat_settings(chat_id), keys.THREAD_FIELD, str(thread_id)
        )
        if cleared:
            await self.changed([chat_id])
        return bool(cleared)

    async def deactivate(self, chat_id: int) -> None:
        """Mark a chat inactive (it blocked the bot or was deleted); its data are kept."""
        await self.redis.hset(keys.chat_settings(chat_id), "active", "0")
        await self.changed([chat_id])

    async def mute(self, chat_id: int, target: str, until: datetime) -> None:
        """Mute a code or a rule until `until`."""
        await self.redis.zadd(keys.mutes(chat_id), {target: until.timestamp()})
        await self.changed([chat_id])

    async def unmute(self, chat_id: int, target: str) -> bool:
        """Lift a mute; True when there was one."""
        lifted = bool(await self.redis.zrem(keys.mutes(chat_id), target))
        if lifted:
            await self.changed([chat_id])
        return lifted

    async def active_mutes(self, chat_id: int, now: datetime) -> dict[str, datetime]:
        """Mutes still in force at `now`; expired ones are pruned."""
        key = keys.mutes(chat_id)
        await self.redis.zremrangebyscore(key, "-inf", now.timestamp())
        rows = await self.redis.zrange(key, 0, -1, withscores=True)
        return {m: datetime.fromtimestamp(s, tz=HK_TZ) for m, s in _scored(rows).items()}

    async def count_command(self, chat_id: int, now: datetime) -> int:
        """Count a command in the chat's current minute; returns the count so far."""
        key = keys.command_rate(chat_id, int(now.timestamp() // 60))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, keys.COMMAND_RATE_TTL_SECONDS)
            count, _ = await pipe.execute()
        return int(count)

    async def command_allowed(self, chat_id: int, now: datetime, per_minute: int = 20) -> bool:
        """Count a command; False when the chat exceeded `per_minute` in the current minute."""
        return await self.count_command(chat_id, now) <= per_minute

    async def migrate(self, old: int, new: int) -> None:
        """Move everything of a chat to a new id (a group upgraded to a supergroup).

        Three steps, each safe to repeat: the new chat's state in one MULTI (its own slot), then the indexes
        (watchers, market and chat sets: other slots), then the old chat's keys dropped in one MULTI (its slot). The
        old state is read before anything is written and deleted last, so a migration cut short is finished by
        running it again.
        """
        codes = await self.watchlist(old)
        # The same fields and values, typed as hset takes them.
        settings: dict[FieldT, EncodableT] = dict((await self.redis.hgetall(keys.chat_settings(old))).items())
        mutes = _scored(await self.redis.zrange(keys.mutes(old), 0, -1, withscores=True))
        digest = await self.redis.lrange(keys.digest_queue(old), 0, -1)
        market = await self.redis.sismember(keys.MARKET_SUBSCRIBERS, str(old))  # the same bytes as the int
        async with self.redis.pipeline(transaction=True) as pipe:
            if codes:
                pipe.sadd(keys.watchlist(new), *codes)
            if settings:
                pipe.hset(keys.chat_settings(new), mapping=settings)
            if mutes:
                pipe.zadd(keys.mutes(new), mutes)
            if digest:
                pipe.rpush(keys.digest_queue(new), *digest)
            pipe.hset(keys.chat_settings(new), "type", "supergroup")
            await pipe.execute()
        async with self.redis.pipeline(transaction=False) as pipe:
            for code in codes:
                pipe.srem(keys.watchers(code), old)
                pipe.sadd(keys.watchers(code), new)
            if market:
                pipe.srem(keys.MARKET_SUBSCRIBERS, old)
                pipe.sadd(keys.MARKET_SUBSCRIBERS, new)
            pipe.srem(keys.CHATS, old)
            pipe.sadd(keys.CHATS, new)
            await pipe.execute()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.watchlist(old), keys.chat_settings(old), keys.mutes(old), keys.digest_queue(old))
            await pipe.execute()
        await self.changed([old, new], [*codes, *([MARKET] if market else [])])

    async def stats(self) -> dict[str, int]:
        """Counts for the admin /stats command."""
        chats = [int(c) for c in await self.redis.smembers(keys.CHATS)]
        active = 0
        entries = 0
        for chat in chats:
            if (await self.redis.hget(keys.chat_settings(chat), "active")) != b"0":
                active += 1
            entries += int(await self.redis.scard(keys.watchlist(chat)))
        return {
            "chats": len(chats),
            "active_chats": active,
            "watchlist_entries": entries,
            "market_subscribers": int(await self.redis.scard(keys.MARKET_SUBSCRIBERS)),
        }

    async def active_chats(self) -> list[int]:
        """Every chat not marked inactive."""
        chats = sorted(int(c) for c in await self.redis.smembers(keys.CHATS))
        out: list[int] = []
        for start in range(0, len(chats), 1000):  # pipelined: one round trip per thousand chats
            chunk = chats[start : start + 1000]
            async with self.redis.pipeline(transaction=False) as pipe:
                for chat in chunk:
                    pipe.hget(keys.chat_settings(chat), "active")
                flags = await pipe.execute()
            out.extend(chat for chat, flag in zip(chunk, flags, strict=True) if flag != b"0")
        return out


def _text(value: bytes | str) -> str:
    """A Redis reply as text (the client returns bytes; a client decoding replies returns str)."""
    return value.decode() if isinstance(value, bytes) else value


def _scored(reply: ZSetRangeResponse) -> dict[str, float]:
    """Member → score of a ZRANGE/ZRANGEBYSCORE … WITHSCORES reply, members decoded, in reply order.

    redis-py types every form of a range reply alike; with scores it is (member, score) pairs, scores floats.
    """
    return {_text(member): float(score) for member, score in cast("list[tuple[bytes | str, float]]", reply)}


def _settings_from(chat_id: int, stored: Mapping[bytes | str, bytes | str]) -> ChatSettings:
    """ChatSettings from a chat's settings HASH as Redis returns it (defaults for missing fields)."""
    raw = {_text(k): _text(v) for k, v in stored.items()}
    quiet = parse_quiet(raw["quiet"]) if raw.get("quiet") else None
    return ChatSettings(
        chat_id=chat_id,
        lang=raw.get("lang", "en") if raw.get("lang") in LANGUAGES else "en",
        quiet=quiet,
        digest=raw.get("digest") == "1",
        market=raw.get("market") == "1",
        active=raw.get("active", "1") == "1",
        chat_type=raw.get("type", "private"),
        rules_off=frozenset(r for r in raw.get("rules_off", "").split(",") if r),
        thresholds=json.loads(raw["thresholds"]) if raw.get("thresholds") else {},
        thread_id=int(raw[keys.THREAD_FIELD]) if raw.get(keys.THREAD_FIELD, "").isdigit() else None,
    )


def _default_lang(hint: str | None) -> str:
    """Telegram language codes zh, zh-hant, zh-hans, zh-hk… → zh (Traditional Chinese); anything else → en."""
    return "zh" if hint and hint.lower().startswith("zh") else "en"
