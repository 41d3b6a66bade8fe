"""Telegram's send limits shared by every delivery process, kept in Redis and measured by Redis's own clock.

The rules are the in-process limiter's (bot/delivery.py `RateLimiter`), made atomic across processes:

- global: at most `window_limit` sends in any window of `window_s` seconds, counted from Telegram's *answers* (it
  counts a send at some moment between the request and the answer, so counting from answers keeps network jitter
  from putting one too many into its window), a send in flight counting until it is answered; sends are also
  spaced by half the nominal interval, so a backlog goes out smoothly;
- per chat: one send at a time, and the next one a gap after the answer (1 s, 3 s in a group: 20 a minute);
- a 429 pauses its chat for retry_after; several 429s within 10 s, from any process, pause everyone.

Each call is one Lua script over keys of one hash tag (`{limiter}`, alerts/store/keys.py), reading `TIME`, so
processes on machines whose clocks differ agree. A process killed mid-send holds its place in the window and its
chat for at most LIMITER_IN_FLIGHT_MS. `acquire` answers 0 (granted and recorded) or the seconds to wait.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import socket
import time
import uuid

from redis.asyncio import Redis
from redis.exceptions import RedisError

from alerts.store import keys

log = logging.getLogger(__name__)

# Redis time in ms (fractional), as every script starts.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
"""

# KEYS: next, answers, in flight, chat. ARGV: window limit, window ms, spacing ms, in-flight ms, token.
# Returns {wait ms, chat wait ms} as strings; {"0", "0"}: granted, the send is recorded as in flight.
_ACQUIRE = (
    _NOW
    + """
local limit, window, spacing, flight = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local wait = math.max(redis.call('PTTL', KEYS[1]), 0)
local chat_wait = math.max(redis.call('PTTL', KEYS[4]), 0)
local answered, flying = redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3])
local over = answered + flying - limit
if over >= 0 then
  if over < answered then
    -- Free once the (over+1) oldest answers are a window old.
    local oldest = redis.call('ZRANGE', KEYS[2], over, over, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + window - now)
  else
    wait = math.max(wait, 5)  -- the window is all sends in flight: ask again when one may have been answered
  end
end
if wait > 0 or chat_wait > 0 then
  return {tostring(math.max(wait, chat_wait)), tostring(chat_wait)}
end
redis.call('SET', KEYS[1], '1', 'PX', math.max(1, math.ceil(spacing)))
redis.call('SET', KEYS[4], '1', 'PX', flight)
redis.call('ZADD', KEYS[3], now + flight, ARGV[5])
redis.call('PEXPIRE', KEYS[3], flight)
return {'0', '0'}
"""
)

# KEYS: answers, in flight, chat. ARGV: token, chat gap ms, window ms. The send is answered: it leaves the flight and
# counts in the window from now; the chat's next send waits its gap from now.
_FINISHED = (
    _NOW
    + """
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[3]))
redis.call('SET', KEYS[3], '1', 'PX', math.max(1, math.ceil(tonumber(ARGV[2]))))
return 1
"""
)

# KEYS: one key whose TTL is a wait. ARGV: ms. Lengthen the wait to at least ms from now (never shorten it).
_PAUSE = """
local ms = math.ceil(tonumber(ARGV[1]))
if ms > 0 and redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
return 1
"""

# KEYS: chat, next, 429s. ARGV: ms, token, span ms, threshold. A 429 for the chat: pause it; with `threshold` 429s
# (any chat, any process) within the span, pause everyone too. Returns 1 when it paused everyone.
_THROTTLED = (
    _NOW
    + """
local ms, span, threshold = math.ceil(tonumber(ARGV[1])), tonumber(ARGV[3]), tonumber(ARGV[4])
if ms > 0 and redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
redis.call('ZADD', KEYS[3], now, ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - span)
redis.call('PEXPIRE', KEYS[3], span)
if redis.call('ZCARD', KEYS[3]) >= threshold then
  if ms > 0 and redis.call('PTTL', KEYS[2]) < ms then redis.call('SET', KEYS[2], '1', 'PX', ms) end
  return 1
end
return 0
"""
)

GLOBAL_429S = 3  # 429s within LIMITER_429_SPAN_MS (across chats and processes) that pause every send
_CHATS_REMEMBERED = 10_000  # local estimates kept before the passed ones are forgotten


def _ms(value: bytes | str | int | float) -> float:
    return float(value.decode() if isinstance(value, bytes) else value)


class SharedLimiter:
    """Telegram's limits for every process that sends, in Redis (one instance per process)."""

    def __init__(
        self,
        redis: Redis,
        *,
        global_per_sec: float = 30.0,
        chat_interval: float = 1.0,
        group_interval: float = 3.0,
        window_s: float = 1.0,
    ) -> None:
        self.redis = redis
        self.global_per_sec = global_per_sec
        self.chat_interval = chat_interval
        self.group_interval = group_interval
        self.window_s = window_s
        self._acquire = redis.register_script(_ACQUIRE)
        self._finished = redis.register_script(_FINISHED)
        self._pause = redis.register_script(_PAUSE)
        self._throttled = redis.register_script(_THROTTLED)
        self._prefix = f"{os.getpid()}:{uuid.uuid4().hex[:8]}:"  # tokens unique across processes and machines
        self._numbers = itertools.count()
        self._tokens: dict[int, str] = {}  # chat -> token of this process's send in flight to it
        # Local estimate (monotonic) of when each chat may receive: only to pick the next item, never to grant.
        self._chat_ready: dict[int, float] = {}

    @property
    def window_limit(self) -> int:
        """Sends allowed in any window of `window_s` seconds."""
        return max(1, int(self.global_per_sec * self.window_s))

    def _interval(self, chat_id: int) -> float:
        return self.group_interval if chat_id < 0 else self.chat_interval

    def _token(self) -> str:
        return f"{self._prefix}{next(self._numbers)}"

    def ready_at(self, chat_id: int) -> float:
        """This process's estimate (time.monotonic) of when `chat_id` may receive; for ordering only.

        Never before now: a chat whose gap has passed ties with one never seen, so claim order decides between them
        (an unseen chat must not always go first: a busy chat would wait for the end of the backlog).
        """
        return max(self._chat_ready.get(chat_id, 0.0), time.monotonic())

    def _expect(self, chat_id: int, seconds: float, *, theirs: bool = False) -> None:
        now = time.monotonic()
        # Another process's send in flight holds the chat for LIMITER_IN_FLIGHT_MS in Redis but is answered within
        # ms: expected free a gap later (a longer 429 pause is then looked at again, one PTTL each time).
        self._chat_ready[chat_id] = now + (min(seconds, self._interval(chat_id)) if theirs else seconds)
        if len(self._chat_ready) > _CHATS_REMEMBERED:
            self._chat_ready = {chat: due for chat, due in self._chat_ready.items() if due > now}

    async def chat_wait(self, chat_id: int) -> float:
        """Seconds until `chat_id` may receive, by any process's sends (one PTTL); refreshes the estimate."""
        wait = max(0, int(await self.redis.pttl(keys.limiter_chat(chat_id)))) / 1000
        self._expect(chat_id, wait, theirs=True)
        return wait

    async def acquire(self, chat_id: int) -> float:
        """0 when a send to `chat_id` may go now (then it is recorded as in flight), else the seconds to wait."""
        token = self._token()
        wait, chat_wait = await self._acquire(
            keys=[
                keys.LIMITER_NEXT,
                keys.LIMITER_ANSWERS,
                keys.LIMITER_IN_FLIGHT,
                keys.limiter_chat(chat_id),
            ],
            args=[
                self.window_limit,
                self.window_s * 1000,
                500 / self.global_per_sec,  # half the nominal spacing, as the in-process limiter
                keys.LIMITER_IN_FLIGHT_MS,
                token,
            ],
        )
        if _ms(chat_wait) > 0:
            self._expect(chat_id, _ms(chat_wait) / 1000, theirs=True)
        if _ms(wait) > 0:
            return _ms(wait) / 1000
        self._tokens[chat_id] = token
        self._expect(chat_id, keys.LIMITER_IN_FLIGHT_MS / 1000)
        return 0.0

    async def finished(self, chat_id: int) -> None:
        """Telegram answered the send to `chat_id` (accepted or not): it counts in the window from now.

        A Redis failure here is logged, not raised: the send stays counted as in flight until it expires, which only
        slows the senders, while raising would keep the caller from recording a part Telegram accepted.
        """
        token = self._tokens.pop(chat_id, None)
        self._expect(chat_id, self._interval(chat_id))
        if token is None:
            return
        try:
            await self._finished(
                keys=[keys.LIMITER_ANSWERS, keys.LIMITER_IN_FLIGHT, keys.limiter_chat(chat_id)],
                args=[token, self._interval(chat_id) * 1000, self.window_s * 1000],
            )
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("limiter: answer to chat %s not recorded (%s: %s)", chat_id, type(exc).__name__, exc)

    async def pause_chat(self, chat_id: int, seconds: float) -> None:
        """Honour a 429 retry_after for one chat, in every process."""
        self._expect(chat_id, max(seconds, 0.0))
        await self._pause(keys=[keys.limiter_chat(chat_id)], args=[math.ceil(seconds * 1000)])

    async def pause_all(self, seconds: float) -> None:
        """Pause every send of every process for `seconds` (flood control of the bot as a whole)."""
        await self._pause(keys=[keys.LIMITER_NEXT], args=[math.ceil(seconds * 1000)])

    async def throttled(self, chat_id: int, seconds: float) -> bool:
        """A 429 for `chat_id`: pause the chat; several 429s within 10 s (any process) pause all. True: all paused."""
        self._expect(chat_id, max(seconds, 0.0))
        paused = await self._throttled(
            keys=[keys.limiter_chat(chat_id), keys.LIMITER_NEXT, keys.LIMITER_429S],
            args=[math.ceil(seconds * 1000), self._token(), keys.LIMITER_429_SPAN_MS, GLOBAL_429S],
        )
        return bool(paused)


# KEYS: the live set. ARGV: member, horizon ms. Records the heartbeat at Redis's time and drops the dead.
_BEAT = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return redis.call('ZCARD', KEYS[1])
"""
)

# KEYS: the live set. ARGV: horizon ms. Delivery processes whose last heartbeat is within the horizon.
_LIVE = (
    _NOW
    + """
return redis.call('ZCOUNT', KEYS[1], now - tonumber(ARGV[1]), '+inf')
"""
)


def courier_name() -> str:
    """This process's name in the live set: host, pid and a random part (pids repeat across machines)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def courier_beat(redis: Redis, name: str) -> int:
    """Record that delivery process `name` is alive; returns how many are."""
    return int(await redis.eval(_BEAT, 1, keys.DELIVERY_LIVE, name, keys.DELIVERY_LIVE_MS))


async def courier_gone(redis: Redis, name: str) -> None:
    """Take a stopping delivery process out of the live set."""
    await redis.zrem(keys.DELIVERY_LIVE, name)


async def live_couriers(redis: Redis) -> int:
    """How many delivery processes sent a heartbeat within DELIVERY_LIVE_MS."""
    return int(await redis.eval(_LIVE, 1, keys.DELIVERY_LIVE, keys.DELIVERY_LIVE_MS))
