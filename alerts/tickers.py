"""US ticker → SEC CIK map from company_tickers.json, cached in Redis and refreshed weekly."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from alerts.edgar import check_user_agent
from alerts.errors import SourceError
from alerts.fetch import fetch, make_client
from alerts.sources.sec_edgar import parse_company_tickers
from alerts.store import keys

log = logging.getLogger(__name__)

TICKERS_PATH = "/files/company_tickers.json"
# After a failed refresh the next attempt waits this long, doubling up to the cap, instead of every poll tick.
RETRY_FIRST_S = 60.0
RETRY_MAX_S = 3600.0


async def needs_refresh(redis: Redis) -> bool:
    """True when the cached map is missing or older than a week."""
    ttl = await redis.ttl(keys.US_TICKERS)
    return ttl < 0 or keys.US_TICKERS_TTL_SECONDS - ttl >= keys.US_TICKERS_REFRESH_SECONDS


async def refresh(redis: Redis, sec_url: str, user_agent: str, *, backoff: float = 0.5) -> int:
    """Fetch company_tickers.json and replace the cached map atomically; returns the number of tickers."""
    check_user_agent(user_agent)
    async with make_client(user_agent) as client:  # SEC wants the operator's own User-Agent on every request
        fetched = await fetch(client, sec_url + TICKERS_PATH, source="sec-tickers", backoff=backoff)
    mapping = parse_company_tickers(fetched.content)
    fields: dict[FieldT, EncodableT] = dict(mapping.items())  # the same pairs, typed as hset takes them
    # One MULTI on the one key: readers see the old map or the new one, never a mix. (Not built aside and
    # renamed: a cluster client refuses RENAME in a pipeline.)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(keys.US_TICKERS)
        pipe.hset(keys.US_TICKERS, mapping=fields)
        pipe.expire(keys.US_TICKERS, keys.US_TICKERS_TTL_SECONDS)
        await pipe.execute()
    return len(mapping)


async def cik_for(redis: Redis, ticker: str) -> str | None:
    """The CIK of a ticker, or None when unknown (or the map is not loaded)."""
    raw = await redis.hget(keys.US_TICKERS, ticker.upper())
    if not raw:
        return None
    return raw.decode() if isinstance(raw, bytes) else raw


@dataclass
class TickerRefresh:
    """Refreshes the map when due, backing off after failures (1 min doubling to 1 h by default).

    One warning when an outage begins and one info line when a refresh works again, not a line per attempt. The
    state is the process's own (a new leader tries once, then backs off likewise).
    """

    clock: Callable[[], float] = time.monotonic
    first_retry: float = RETRY_FIRST_S
    max_retry: float = RETRY_MAX_S
    fetch_backoff: float = 0.5  # between the retries of one attempt (fetch's own)
    failures: int = 0
    next_try: float = float("-inf")

    async def run(
        self, redis: Redis, sec_url: str, user_agent: str, *, deadline: float | None = None
    ) -> int | None:
        """Refresh if due and not backing off; the number of tickers loaded, None when nothing was loaded."""
        if self.clock() < self.next_try or not await needs_refresh(redis):
            return None
        try:
            async with asyncio.timeout(deadline) as limit:
                count = await refresh(redis, sec_url, user_agent, backoff=self.fetch_backoff)
        except TimeoutError as exc:
            if not limit.expired():
                raise
            self._failed(f"no answer within {deadline:g} s ({type(exc).__name__})")
            return None
        except (SourceError, ValueError) as exc:  # ValueError: ConfigError of a User-Agent without an e-mail
            self._failed(str(exc))
            return None
        if self.failures:
            log.info(
                "US ticker map refreshed again after %d failed attempt(s): %d tickers", self.failures, count
            )
        else:
            log.info("US ticker map refreshed: %d tickers", count)
        self.failures, self.next_try = 0, float("-inf")
        return count

    def _failed(self, reason: str) -> None:
        wait = min(self.first_retry * 2 ** min(self.failures, 30), self.max_retry)
        self.failures += 1
        self.next_try = self.clock() + wait
        if self.failures == 1:
            log.warning(
                "US ticker map refresh failed: %s; retrying with backoff (%g s, doubling up to %g s), "
                "quietly until it works again",
                reason,
                wait,
                self.max_retry,
            )
        else:
            log.debug(
                "US ticker map refresh failed again (%d): %s; next try in %g s", self.failures, reason, wait
            )


async def known(redis: Redis, ticker: str) -> bool | None:
    """True/False when the map is loaded; None when it is not, so the ticker cannot be checked yet (callers refuse
    it for now with a "try again later" rather than accepting a ticker nobody checked)."""
    if not await redis.exists(keys.US_TICKERS):
        return None
    return await cik_for(redis, ticker) is not None
