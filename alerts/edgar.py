"""SEC EDGAR over HTTP: the polite client (declared User-Agent, ≤ 10 requests per second) and the multi-step fetch
of one day's Form 4 or Schedule 13D/13G filings (daily index → each filing's index.json → its XML), data-formats.md §8.

The parsers are pure and live in alerts.sources (sec_edgar: index, feeds, folders; sec_form4 and sec_13d_13g: the
filing XML). A
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
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

import httpx
import pandas as pd

from alerts.errors import FetchFailed, MalformedFile, NotPublishedYet, SourceError
from alerts.fetch import fetch
from alerts.sources import sec_13d_13g, sec_edgar, sec_form4
from alerts.sources.base import finish
from alerts.sources.common import empty_frame
from config.settings import ConfigError, Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

# (client, settings, day) -> the day's tables, for sources assembled from many files.
DayFetcher = Callable[[httpx.AsyncClient, Settings, date], Awaitable[dict[str, pd.DataFrame]]]
# (xml bytes, accession, form type from the index) -> the filing's rows.
FilingParser = Callable[[bytes, str, str], pd.DataFrame]


@dataclass(frozen=True)
class _Kind:
    """What differs between the EDGAR sources assembled from a daily index: name, schema and filing parser."""

    name: str
    schema: Mapping[str, str]
    parse: FilingParser
    # Paper-era filings (SC 13D as text or HTML) have no XML: skipped without counting as a failure.
    xml_optional: bool = False


_FORM4 = _Kind(sec_form4.NAME, sec_form4.SCHEMA, lambda data, a, f: sec_form4.parse_filing(data, a, f))

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
    return await _fetch_filings(http, base, filings, day, concurrency, _FORM4)


async def fetch_13d_day(
    client: httpx.AsyncClient,
    base_url: str,
    day: date,
    *,
    user_agent: str,
    max_per_second: float = 10.0,
    limit: int | None = None,
    concurrency: int = 4,
) -> pd.DataFrame:
    """Fetch and parse every Schedule 13D/13G filed on `day` (one row per reporting person), as fetch_form4_day.

    The filings of the paper-era form types (SC 13D …, before December 2024) have no XML and are passed over.
    """
    check_user_agent(user_agent)
    http = cast(httpx.AsyncClient, _PoliteClient(client, user_agent, RateLimiter(max_per_second)))
    base = base_url.rstrip("/")
    index = await fetch(http, base + sec_edgar.daily_index_path(day), source=sec_13d_13g.NAME)
    filings = sec_edgar.dedupe_accessions(
        sec_13d_13g.filings(_located(sec_edgar.parse_daily_index, index.content, index.url, sec_13d_13g.NAME))
    )
    if limit is not None:
        filings = filings.head(limit)
    kind = _Kind(
        sec_13d_13g.NAME,
        sec_13d_13g.SCHEMA,
        lambda data, accession, form: sec_13d_13g.parse_filing(data, accession, form, day),
        xml_optional=True,
    )
    return await _fetch_filings(http, base, filings, day, concurrency, kind)


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
        return await _fetch_filings(http, base, _filings_frame([]), day, concurrency, _FORM4)
    updated = entries["updated"].dt.tz_convert("America/New_York").dt.date
    wanted = entries[
        entries["form_type"].isin(sec_form4.FORM_TYPES) & (updated == day) & entries["cik"].notna()
    ]
    rows = [
        {"accession": a, "form_type": f, "file_name": f"edgar/data/{c}/{a}.txt"}
        for a, f, c in zip(wanted["accession"], wanted["form_type"], wanted["cik"], strict=True)
    ]
    return await _fetch_filings(http, base, _filings_frame(rows), day, concurrency, _FORM4)


def _filings_frame(rows: list[dict[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["accession", "form_type", "file_name"])


async def _fetch_filings(
    http: httpx.AsyncClient, base: str, filings: pd.DataFrame, day: date, concurrency: int, kind: _Kind
) -> pd.DataFrame:
    """Fetch and parse each listed filing; broken ones are skipped and listed in the result's attrs."""
    gate = asyncio.Semaphore(max(1, concurrency))
    skipped: list[dict[str, str]] = []
    without_xml: list[str] = []

    async def one(accession: str, file_name: str, form_type: str) -> pd.DataFrame | None:
        async with gate:
            try:
                return await _fetch_filing(http, base, accession, file_name, form_type, kind)
            except _NoXml:
                without_xml.append(accession)
                return None
            except SourceError as exc:
                log.warning("%s %s: skipping filing %s: %s", kind.name, day.isoformat(), accession, exc)
                skipped.append({"accession": accession, "file_name": file_name, "error": str(exc)})
                return None

    rows = zip(filings["accession"], filings["file_name"], filings["form_type"], strict=True)
    frames = [
        frame
        for frame in await asyncio.gather(*(one(*row) for row in rows))
        if frame is not None and len(frame)
    ]
    combined = pd.concat(frames, ignore_index=True) if frames else empty_frame(kind.schema)
    out = finish(combined, kind.schema, day)
    out.attrs.update(
        filings=len(filings) - len(without_xml),
        without_xml=len(without_xml),
        skipped=len(skipped),
        skipped_filings=sorted(skipped, key=lambda item: item["accession"]),
    )
    return out


class _NoXml(Exception):
    """A filing whose folder holds no XML document (a paper-era schedule filed as text or HTML)."""


async def _fetch_filing(
    http: httpx.AsyncClient, base: str, accession: str, file_name: str, form_type: str, kind: _Kind
) -> pd.DataFrame:
    """index.json → primary XML → parsed rows of one filing."""
    listing = await fetch(http, base + sec_edgar.filing_index_path(file_name), source=kind.name)
    xml_name = _located(sec_edgar.parse_filing_index_json, listing.content, listing.url, kind.name)
    if xml_name is None:
        if kind.xml_optional and not form_type.startswith("SCHEDULE"):
            raise _NoXml(accession)
        raise MalformedFile("filing index.json lists no XML document", source=kind.name, url=listing.url)
    document = await fetch(http, base + sec_edgar.filing_xml_path(file_name, xml_name), source=kind.name)
    return _located(
        lambda data: kind.parse(data, accession, form_type), document.content, document.url, kind.name
    )


def _located(parser: Callable[[bytes], T], data: bytes, url: str, source: str = sec_form4.NAME) -> T:
    """Run a parser; a MalformedFile it raises names the source and the URL the bytes came from."""
    try:
        return parser(data)
    except MalformedFile as exc:
        exc.source, exc.url = exc.source or source, exc.url or url
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


# --- a day of the sec-13d-13g source ---------------------------------------------------------------------------


async def schedule13_day(client: httpx.AsyncClient, settings: Settings, day: date) -> dict[str, pd.DataFrame]:
    """A day of Schedule 13D/13G filings: the EDGAR daily index, then each filing's XML (as Form 4)."""
    if not settings.sec_user_agent:
        raise FetchFailed(
            "SEC_USER_AGENT is not set: SEC requires a User-Agent naming the operator and an e-mail",
            source=sec_13d_13g.NAME,
        )
    # No intraday fallback: the "latest filings" feed is kept for Form 4; a schedule is news on the evening index.
    frame = await fetch_13d_day(client, settings.sec_url, day, user_agent=settings.sec_user_agent)
    filings, skipped = frame.attrs.get("filings", 0), frame.attrs.get("skipped", 0)
    if filings and skipped == filings:  # every filing failed: a network problem, not an empty day
        raise FetchFailed(f"all {filings} filings of {day.isoformat()} failed", source=sec_13d_13g.NAME)
    return {"main": frame}


# Source.fetch_day kind -> the function assembling such a day.
DAY_FETCHERS: dict[str, DayFetcher] = {sec_form4.DAY_KIND: form4_day, sec_13d_13g.DAY_KIND: schedule13_day}
