"""A Redis leader lease: one process leads (schedules cycles, polls Telegram), the others wait as hot standby.

The lease is one key holding the owner id, set with NX and a millisecond expiry. The holder renews it with an
atomic compare-and-renew every ttl/3; a standby polls `acquire()` and wins as soon as the key has expired. The
holder tolerates Redis errors while its lease is still valid by its own monotonic clock (measured from the moment
the last successful renew was *sent*, so it never believes in a lease longer than Redis does), and steps down once
that time has passed, because by then a standby may have taken over.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid

from redis.asyncio import Redis
from redis.exceptions import RedisError

from alerts.store import keys

log = logging.getLogger(__name__)

# Extend the expiry only while the key still names us: never renew a lease another process took over.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# Delete only our own lease: after an expiry the key may already belong to the standby.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# What a Redis outage looks like from redis.asyncio: its own errors, socket errors, and our wait_for timeouts.
_REDIS_DOWN = (RedisError, OSError, TimeoutError)

# A renew attempt gets at least this long even when the lease is about to run out, so a healthy but slightly
# slow Redis can still confirm it.
_MIN_ATTEMPT_SECONDS = 0.05
# While renewals fail, retry at least this often: redis-py's own retry loop can sleep in backoff for seconds, so
# fresh short attempts notice a recovered Redis sooner than one long attempt would.
_RETRY_SECONDS = 1.0


def default_owner() -> str:
    """Owner id unique to this process: host, pid and a random suffix (pids repeat across containers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


async def _sleep(seconds: float, stop: asyncio.Event | None) -> bool:
    """Sleep up to `seconds`; True as soon as `stop` is set (then without waiting the rest)."""
    if stop is None:
        await asyncio.sleep(max(seconds, 0.0))
        return False
    if stop.is_set():
        return True
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(seconds, 0.0))
    except TimeoutError:
        return False
    return True


class Lease:
    """A named leader lease held by `owner` for `ttl_seconds` at a time."""

    def __init__(
        self,
        redis: Redis,
        name: str = "leader",
        ttl_seconds: float = keys.LEADER_LEASE_TTL_SECONDS,
        owner: str | None = None,
        *,
        key: str | None = None,
    ) -> None:
        if ttl_seconds <= 0:
            raise ValueError(f"lease ttl must be positive, got {ttl_seconds}")
        self.redis = redis
        self.name = name
        self.key = key or keys.leader_lease(name)  # `key`: a lease kept elsewhere (an update partition's)
        self.ttl_seconds = float(ttl_seconds)
        self.owner = owner or default_owner()
        self._ttl_ms = max(1, round(self.ttl_seconds * 1000))
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        # Monotonic instant until which we certainly hold the lease; -inf until the first acquire.
        self._valid_until = float("-inf")

    @property
    def valid_for(self) -> float:
        """Seconds the lease is still certainly ours by the local monotonic clock (<= 0 when not held)."""
        return self._valid_until - time.monotonic()

    async def acquire(self) -> bool:
        """Take the lease if free (SET NX PX); also True, after renewing it, when we hold it already."""
        sent = time.monotonic()
        if await self.redis.set(self.key, self.owner, nx=True, px=self._ttl_ms):
            self._valid_until = sent + self.ttl_seconds
            return True
        return await self.renew()

    async def renew(self) -> bool:
        """Extend the lease by a full ttl if we still hold it (atomic compare-and-renew); False otherwise."""
        sent = time.monotonic()
        renewed = bool(await self._renew(keys=[self.key], args=[self.owner, self._ttl_ms]))
        self._valid_until = sent + self.ttl_seconds if renewed else float("-inf")
        return renewed

    async def release(self) -> bool:
        """Give the lease up if we hold it (compare-and-delete); False when it was not ours."""
        self._valid_until = float("-inf")
        return bool(await self._release(keys=[self.key], args=[self.owner]))

    async def release_quietly(self, within_seconds: float = 2.0) -> bool:
        """`release()` for exit paths: within `within_seconds`, a Redis failure logged rather than raised (the lease
        then just expires after its ttl). False when it was not ours or could not be released."""
        try:
            return await asyncio.wait_for(self.release(), timeout=max(within_seconds, _MIN_ATTEMPT_SECONDS))
        except _REDIS_DOWN as exc:
            log.warning(
                "lease %s: release failed (%s: %s); it expires within %g s",
                self.name,
                type(exc).__name__,
                exc,
                self.ttl_seconds,
            )
            return False

    async def holder(self) -> str | None:
        """Owner id of the current holder, None when nobody holds the lease."""
        return _text(await self.redis.get(self.key))

    async def wait_acquire(self, *, poll_seconds: float = 2.0, stop: asyncio.Event | None = None) -> bool:
        """Try to acquire every `poll_seconds` until we hold the lease (True) or `stop` is set (False)."""
        while True:
            if stop is not None and stop.is_set():
                return False
            try:
                if await self.acquire():
                    return True
            except _REDIS_DOWN as exc:
                # A standby outlives Redis outages: it just keeps trying.
                log.warning("lease %s: acquire failed (%s: %s); retrying", self.name, type(exc).__name__, exc)
            if await _sleep(poll_seconds, stop):
                return False

    async def keep(
        self, lost: asyncio.Event, *, every_seconds: float | None = None, stop: asyncio.Event | None = None
    ) -> None:
        """Renew every ttl/3 (or `every_seconds`) until `stop` is set; set `lost` and return when the lease is gone.

        The lease is gone when Redis says another owner (or nobody) holds it, or when Redis could not be reached
        for as long as the lease was valid. Errors before that are logged and retried.
        """
        interval = every_seconds if every_seconds is not None else self.ttl_seconds / 3
        failing = False
        while True:
            # While failing, retry sooner, and wake exactly when the lease runs out rather than up to one
            # interval later.
            wait = min(interval, _RETRY_SECONDS, self.valid_for) if failing else interval
            if await _sleep(wait, stop):
                return
            try:
                timeout = max(min(self.valid_for, interval), _MIN_ATTEMPT_SECONDS)
                renewed = await asyncio.wait_for(self.renew(), timeout=timeout)
            except _REDIS_DOWN as exc:
                if self.valid_for <= 0:
                    log.error(
                        "lease %s: Redis unreachable for the whole ttl (%s: %s); stepping down",
                        self.name,
                        type(exc).__name__,
                        exc,
                    )
                    lost.set()
                    return
                if not failing:
                    log.warning(
                        "lease %s: renew failed (%s: %s); still valid for %.1f s",
                        self.name,
                        type(exc).__name__,
                        exc,
                        self.valid_for,
                    )
                failing = True
                continue
            if not renewed:
                log.error("lease %s: lost to %s", self.name, await self._safe_holder())
                lost.set()
                return
            if failing:
                log.info("lease %s: renewed again after Redis errors", self.name)
            failing = False

    async def _safe_holder(self) -> str | None:
        try:
            return await asyncio.wait_for(
                self.holder(), timeout=max(self.ttl_seconds / 3, _MIN_ATTEMPT_SECONDS)
            )
        except _REDIS_DOWN:
            return None
