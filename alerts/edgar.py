"""SEC EDGAR over HTTP: the polite client (declared User-Agent, ≤ 10 requests per second) and the multi-step fetch
of one day's Form 4 filings (daily index → each filing's index.json → its XML), data-formats.md §8.

The parsers are pure and live in alerts.sources (sec_edgar: index, feeds, folders; sec_form4: the filing XML). A
source declares the kind of day-fetcher it needs (``Source.fetch_day``); DAY_FETCHERS maps each kind to the
function here that assembles a whole day, and alerts.ingest runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import date
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

import httpx
import pandas as pd

from alerts.errors import FetchFailed, MalformedFile, NotPublishedYet, SourceError
from alerts.fetch import fetch
from alerts.sources import sec_edgar, sec_form4
from alerts.sources.base import finish
from alerts.sources.common import empty_frame
from config.settings import ConfigError, Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

# (client, settings, day) -> the day's tables, for sources assembled from many files.
DayFetcher = Callable[[httpx.AsyncClient, Settings, date], Awaitable[dict[str, pd.DataFrame]]]

_EMAIL_RE = re.compile(r"[^@\s<>()]+@[^@\s<>()]+\.[A-Za-z]{2,}")
_NEW_YORK = ZoneInfo("America/New_York")


def check_user_agent(user_agent: str) -> str:
    """Return `user_agent` or raise ConfigError (a ValueError) when it names no contact e-mail."""
    if not _EMAIL_RE.search(user_agent or ""):
        raise ConfigError(
            "SEC_USER_AGENT",
            "SEC requires a User-Agent naming the operator and a contact e-mail, "
            f"e.g. 'Acme Bot ops@acme.hk'; got {user_agent!r}",
        )
    return user_agent


class RateLimiter:
    """Space request starts at least 1/per_second apart (no bursts); `clock`/`sleep` are injectable for tests."""

    def __init__(
        self,
        per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if not per_second > 0:
            raise ValueError(f"per_second must be positive, got {per_second}")
        self.interval = 1.0 / per_second
        self._clock, self._sleep = clock, sleep
        self._next = float("-inf")
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        """Return when the next request may start."""
        async with self._lock:
            # Loop: an event loop may wake a sleeper a hair early.
            while (delay := self._next - self._clock()) > 0:
                await self._sleep(delay)
            self._next = self._clock() + self.interval


class _PoliteClient:
    """What alerts.fetch.fetch needs of a client: every request (retries included) waits for the limiter and
    carries the declared User-Agent; `stream` lets fetch read a filing under its byte cap."""

    def __init__(self, client: httpx.AsyncClient, user_agent: str, limiter: RateLimiter) -> None:
        self._client, self._user_agent, self._limiter = client, user_agent, limiter

    async def get(
        self, url: str, headers: Mapping[str, str] | None = None, *, follow_redirects: bool = True
    ) -> httpx.Response:
        await self._limiter.wait()
        return await self._client.get(
            url,
            headers={**(headers or {}), "User-Agent": self._user_agent},
            follow_redirects=follow_redirects,
        )

    @contextlib.asynccontextmanager
    async def stream(
        self, method: str, url: str, *, headers: Mapping[str, str] | None = None, **options: Any
    ) -> AsyncIterator[httpx.Response]:
        await self._limiter.wait()
        async with self._client.stream(
            method, url, headers={**(headers or {}), "User-Agent": self._user_agent}, **options
        ) as response:
            yield response


async def fetch_form4_day(
    client: httpx.AsyncClient,
    base_url: str,
    day: date,
    *,
    user_agent: str,
    max_per_second: float = 10.0,
    limit: int | None = None,
    concurrency: int = 4,
) -> pd.DataFrame:
    """Fetch and parse every Form 4/4A filed on `day`; broken filings are skipped and listed in attrs.

    attrs: ``file_date`` = `day`, ``filings`` = distinct Form 4/4A accessions tried, ``skipped`` = how many failed,
    ``skipped_filings`` = [{accession, file_name, error}]. A missing daily index (404/403: weekend, holiday,
    not out yet) raises NotPublishedYet; a broken index raises MalformedFile.
    """
    check_user_agent(user_agent)
    http = cast(httpx.AsyncClient, _PoliteClient(client, user_agent, RateLimiter(max_per_second)))
    base = base_url.rstrip("/")
    index = await fetch(http, base + sec_edgar.daily_index_path(day), source=sec_form4.NAME)
    filings = sec_edgar.dedupe_accessions(
        sec_edgar.form4_filings(_located(sec_edgar.parse_daily_index, index.content, index.url))
    )
    if limit is not None:
        filings = filings.head(limit)
    return await _fetch_filings(http, base, filings, day, concurrency)


async def fetch_form4_current(
    client: httpx.AsyncClient,
    base_url: str,
    day: date,
    *,
    user_agent: str,
    max_per_second: float = 10.0,
    count: int = 100,
    concurrency: int = 4,
) -> pd.DataFrame:
    """Intraday: the Form 4/4A filings of `day` (New York date) in EDGAR's "latest filings" Atom feed.

    Each filing appears twice in the feed (Reporting and Issuer); it is fetched once. Only the latest `count`
    filings are listed, so call this every few minutes; the evening's daily index later gives the whole day.
    """
    check_user_agent(user_agent)
    http = cast(httpx.AsyncClient, _PoliteClient(client, user_agent, RateLimiter(max_per_second)))
    base = base_url.rstrip("/")
    feed = await fetch(http, base + sec_edgar.current_feed_path(count), source=sec_form4.NAME)
    entries = sec_edgar.dedupe_accessions(_located(sec_edgar.parse_atom, feed.content, feed.url))
    if entries.empty:
        return await _fetch_filings(http, base, _filings_frame([]), day, concurrency)
    updated = entries["updated"].dt.tz_convert("America/New_York").dt.date
    wanted = entries[
        entries["form_type"].isin(sec_form4.FORM_TYPES) & (updated == day) & entries["cik"].notna()
    ]
    rows = [
        {"accession": a, "form_type": f, "file_name": f"edgar/data/{c}/{a}.txt"}
        for a, f, c in zip(wanted["accession"], wanted["form_type"], wanted["cik"], strict=True)
    ]
    return await _fetch_filings(http, base, _filings_frame(rows), day, concurrency)


def _filings_frame(rows: list[dict[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["accession", "form_type", "file_name"])


async def _fetch_filings(
    http: httpx.AsyncClient, base: str, filings: pd.DataFrame, day: date, concurrency: int
) -> pd.DataFrame:
    """Fetch and parse each listed filing; broken ones are skipped and listed in the result's attrs."""
    gate = asyncio.Semaphore(max(1, concurrency))
    skipped: list[dict[str, str]] = []

    async def one(accession: str, file_name: str, form_type: str) -> pd.DataFrame | None:
        async with gate:
            try:
                return await _fetch_filing(http, base, accession, file_name, form_type)
            except SourceError as exc:
                log.warning("sec-form4 %s: skipping filing %s: %s", day.isoformat(), accession, exc)
                skipped.append({"accession": accession, "file_name": file_name, "error": str(exc)})
                return None

    rows = zip(filings["accession"], filings["file_name"], filings["form_type"], strict=True)
    frames = [
        frame
        for frame in await asyncio.gather(*(one(*row) for row in rows))
        if frame is not None and len(frame)
    ]
    combined = pd.concat(frames, ignore_index=True) if frames else empty_frame(sec_form4.SCHEMA)
    out = finish(combined, sec_form4.SCHEMA, day)
    out.attrs.update(
        filings=len(filings),
        skipped=len(skipped),
        skipped_filings=sorted(skipped, key=lambda item: item["accession"]),
    )
    return out


async def _fetch_filing(
    http: httpx.AsyncClient, base: str, accession: str, file_name: str, form_type: str
) -> pd.DataFrame:
    """index.json → primary XML → parsed rows of one filing."""
    listing = await fetch(http, base + sec_edgar.filing_index_path(file_name), source=sec_form4.NAME)
    xml_name = _located(sec_edgar.parse_filing_index_json, listing.content, listing.url)
    if xml_name is None:
        raise MalformedFile("filing index.json lists no XML document", source=sec_form4.NAME, url=listing.url)
    document = await fetch(http, base + sec_edgar.filing_xml_path(file_name, xml_name), source=sec_form4.NAME)
    return _located(
        lambda data: sec_form4.parse_filing(data, accession, form_type), document.content, document.url
    )


def _located(parser: Callable[[bytes], T], data: bytes, url: str) -> T:
    """Run a parser; a MalformedFile it raises names the source and the URL the bytes came from."""
    try:
        return parser(data)
    except MalformedFile as exc:
        exc.source, exc.url = exc.source or sec_form4.NAME, exc.url or url
        raise


# --- a day of the sec-form4 source ----------------------------------------------------------------------------


async def form4_day(client: httpx.AsyncClient, settings: Settings, day: date) -> dict[str, pd.DataFrame]:
    """A day of Form 4 filings: the EDGAR daily index, then each filing (≤ 10 requests/s, declared User-Agent)."""
    if not settings.sec_user_agent:
        raise FetchFailed(
            "SEC_USER_AGENT is not set: SEC requires a User-Agent naming the operator and an e-mail",
            source=sec_form4.NAME,
        )
    try:
        frame = await fetch_form4_day(client, settings.sec_url, day, user_agent=settings.sec_user_agent)
    except NotPublishedYet:
        if settings.clock()().astimezone(_NEW_YORK).date() != day:
            raise
        # The day's index is built in the evening: meanwhile, the "latest filings" feed gives today's filings.
        frame = await fetch_form4_current(client, settings.sec_url, day, user_agent=settings.sec_user_agent)
    filings, skipped = frame.attrs.get("filings", 0), frame.attrs.get("skipped", 0)
    if filings and skipped == filings:  # every filing failed: a network problem, not an empty day
        raise FetchFailed(f"all {filings} filings of {day.isoformat()} failed", source=sec_form4.NAME)
    return {"main": frame, "buys": sec_form4.purchases(frame)}


# Source.fetch_day kind -> the function assembling such a day.
DAY_FETCHERS: dict[str, DayFetcher] = {sec_form4.DAY_KIND: form4_day}
