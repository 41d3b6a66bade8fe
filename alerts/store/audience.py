"""Who watches what and how each chat wants its alerts, cached in-process for routing, invalidated by version.

Routing a cycle at 100k subscribers used to read every watcher set and every affected chat's settings and mutes
from Redis (hundreds of thousands of replies through redis-py's Python parser: most of a 13 s cycle). These change
rarely, so a routing process keeps them here and, once per pass, asks Redis what changed since it last looked:
every write of SubscriptionStore that routing reads bumps a version counter and logs the chat (and the codes
whose watcher sets changed) with the new version (`keys.SUBS_VERSION`, `keys.SUBS_CHANGED_CHATS`,
`keys.SUBS_CHANGED_CODES`). Changed entries are dropped and read again when needed; the rest is reused.

A dataset that lost its data (a Redis restarted empty, a test's flush) has a new epoch token (`keys.SUBS_EPOCH`),
so a cache of another dataset is never used; as a safety net against writes that bypass the store (an operator in
redis-cli), the cache is rebuilt from scratch after `MAX_AGE_SECONDS`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from redis.asyncio import Redis

from alerts.store import keys
from alerts.store.subscriptions import ChatSettings, _scored, _settings_from

MAX_AGE_SECONDS = 6 * 3600
# A cache filled by `warm` longer ago than this is rebuilt aside by the next `warm` and swapped in, well before
# MAX_AGE_SECONDS would empty it in front of a routing pass.
REWARM_SECONDS = MAX_AGE_SECONDS / 2
LOAD_CHUNK = 2000  # chats whose settings and mutes travel in one pipeline when loaded
_KEEP_EPOCHS = 2  # caches of datasets seen last (a test suite flushes its Redis before every test)
# The members of one SET as one space-separated string: one bulk reply instead of one per member (redis-py parses
# replies in Python, ~2 µs each; the most watched code has tens of thousands of watchers). One key: cluster-safe.
_MEMBERS = "return table.concat(redis.call('SMEMBERS', KEYS[1]), ' ')"
MARKET = "MARKET"  # the code of market-wide alerts: their audience is the market opt-in set


@dataclass(frozen=True)
class ChatRoute:
    """What routing needs of a chat that is not plain: its settings and its mutes (target → expiry epoch)."""

    settings: ChatSettings
    mutes: dict[str, float]

    @property
    def filters(self) -> bool:
        """True when some alert may be withheld from the chat (inactive, rules off, thresholds, mutes)."""
        s = self.settings
        return not s.active or bool(s.rules_off) or bool(s.thresholds) or bool(self.mutes)


@dataclass
class _Cache:
    epoch: bytes
    version: int
    born: float
    warmed: bool = False  # filled with every chat by `warm` (else: only what routing passes needed)
    watchers: dict[str, np.ndarray] = field(default_factory=dict)  # code -> sorted chat ids (int64)
    # chat -> its route, or None for a plain chat (active, no filter, no digest, no quiet hours): most chats.
    chats: dict[int, ChatRoute | None] = field(default_factory=dict)
    _filtering: np.ndarray | None = None
    _special: np.ndarray | None = None

    def filtering(self) -> np.ndarray:
        """Sorted ids of the loaded chats whose alerts must pass `decide` one by one."""
        if self._filtering is None:
            self._filtering = np.array(
                sorted(chat for chat, entry in self.chats.items() if entry is not None and entry.filters),
                dtype=np.int64,
            )
        return self._filtering

    def special(self) -> np.ndarray:
        """Sorted ids of the loaded chats that are not plain (they have a route)."""
        if self._special is None:
            self._special = np.array(
                sorted(chat for chat, entry in self.chats.items() if entry is not None), dtype=np.int64
            )
        return self._special

    def changed(self) -> None:
        """Drop the derived id arrays after the chats changed."""
        self._filtering = self._special = None

    def forget(self, chats: Iterable[int], codes: Iterable[str]) -> None:
        for chat in chats:
            if self.chats.pop(chat, 0) != 0:
                self.changed()
        for code in codes:
            self.watchers.pop(code, None)


_CACHES: dict[bytes, _Cache] = {}


class Audience:
    """The synced cache of one dataset: watcher arrays per code and routes per chat, loaded as needed."""

    def __init__(self, redis: Redis, cache: _Cache) -> None:
        self.redis = redis
        self._cache = cache

    async def watchers(self, codes: Iterable[str]) -> dict[str, np.ndarray]:
        """Sorted chat ids watching each code (MARKET: the market opt-ins), missing ones read in one round."""
        wanted = list(dict.fromkeys(codes))
        missing = [c for c in wanted if c not in self._cache.watchers]
        if missing:
            async with self.redis.pipeline(transaction=False) as pipe:
                for code in missing:
                    key = keys.MARKET_SUBSCRIBERS if code == MARKET else keys.watchers(code)
                    pipe.eval(_MEMBERS, 1, key)
                replies = await pipe.execute()
            for code, raw in zip(missing, replies, strict=True):
                self._cache.watchers[code] = np.unique(np.array(raw.split(), dtype=np.int64))
        return {code: self._cache.watchers[code] for code in wanted}

    async def load(self, chats: Iterable[int]) -> None:
        """Read the settings and mutes of the chats not cached yet (pipelined, LOAD_CHUNK chats a round)."""
        missing = [chat for chat in chats if chat not in self._cache.chats]
        for start in range(0, len(missing), LOAD_CHUNK):
            chunk = missing[start : start + LOAD_CHUNK]
            async with self.redis.pipeline(transaction=False) as pipe:
                for chat in chunk:
                    pipe.hgetall(keys.chat_settings(chat))
                    pipe.zrange(keys.mutes(chat), 0, -1, withscores=True)
                replies = await pipe.execute()
            for index, chat in enumerate(chunk):
                settings = _settings_from(chat, replies[2 * index])
                mutes = _scored(replies[2 * index + 1])
                plain = (
                    settings.active
                    and not (settings.digest or settings.quiet or settings.rules_off or settings.thresholds)
                    and not mutes
                )
                self._cache.chats[chat] = None if plain else ChatRoute(settings, mutes)
            self._cache.changed()

    def route_of(self, chat: int) -> ChatRoute | None:
        """A loaded chat's route; None when it is plain (every watched alert goes, at once, not silent)."""
        return self._cache.chats[chat]

    def filtering(self) -> np.ndarray:
        """Sorted ids of the loaded chats with an alert filter (inactive, rules off, thresholds or mutes)."""
        return self._cache.filtering()

    def special(self) -> np.ndarray:
        """Sorted ids of the loaded chats that are not plain (digest, quiet hours or a filter)."""
        return self._cache.special()


async def audience(redis: Redis) -> Audience:
    """The cache of this Redis's dataset, brought up to date with one or two round trips."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(keys.SUBS_EPOCH)
        pipe.get(keys.SUBS_VERSION)
        epoch, raw_version = await pipe.execute()
    if epoch is None:  # a new dataset (or one that lost its data): name it so no older cache is taken for it
        await redis.set(keys.SUBS_EPOCH, secrets.token_hex(8), nx=True)
        epoch = await redis.get(keys.SUBS_EPOCH)
    version = int(raw_version or 0)
    cache = _CACHES.get(epoch)
    if cache is None or version < cache.version or time.monotonic() - cache.born > MAX_AGE_SECONDS:
        _CACHES.pop(epoch, None)  # re-inserted last: the trim below keeps the newest datasets
        cache = _CACHES[epoch] = _Cache(epoch, version, time.monotonic())
        for stale in list(_CACHES)[:-_KEEP_EPOCHS]:
            del _CACHES[stale]
    elif version > cache.version:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(keys.SUBS_CHANGED_CHATS, f"({cache.version}", "+inf")
            pipe.zrangebyscore(keys.SUBS_CHANGED_CODES, f"({cache.version}", "+inf")
            chats, codes = await pipe.execute()
        cache.forget((int(c) for c in chats), (c.decode() if isinstance(c, bytes) else c for c in codes))
        cache.version = version
    return Audience(redis, cache)


async def warm(redis: Redis) -> int:
    """Fill this dataset's cache with every chat's route ahead of routing; the number of chats read (0: warm already).

    The first pass of a process otherwise reads every recipient's settings (~100k chats: seconds) while its alerts
    wait. A cache warmed over REWARM_SECONDS ago is rebuilt aside and swapped in when complete, so the age limit
    never empties it in front of a pass. The swapped-in cache starts at the version read before it was filled: the
    next `audience` replays every change logged since, as for any cache.
    """
    current = (await audience(redis))._cache
    if current.warmed and time.monotonic() - current.born < REWARM_SECONDS:
        return 0
    fresh = _Cache(current.epoch, current.version, time.monotonic(), warmed=True)
    seen = Audience(redis, fresh)
    chats = np.unique(np.array((await redis.eval(_MEMBERS, 1, keys.CHATS)).split(), dtype=np.int64))
    await seen.load(chats.tolist())
    await seen.watchers(list(current.watchers))  # the codes routing asked for so far, read again
    _CACHES[current.epoch] = fresh
    return len(chats)
