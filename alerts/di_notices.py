"""A watched stock's DI notices from its per-stock notice list (NSAllFormList.aspx), page by page.

The second path to Disclosure of Interests filings: the daily summaries (`hkex-di`) are kept only a few days,
while a stock's notice list covers any period. DION knows the stock by an internal id (`sid`, 00700 → 6893):
`lookup_sid` reads it from the corporation search page and caches it in Redis. The list itself is parsed by
`alerts.sources.hkex_di.parse_notice_list`; `ingest_watched` merges the notices of watched stocks into the stored
`hkex-di` frames, by filing day, next to the rows of the daily summaries (which win on the same serial).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime, timedelta

import httpx
import pandas as pd
from redis.asyncio import Redis

from alerts.calendar import HK_TZ
from alerts.errors import MalformedFile, SourceError
from alerts.fetch import fetch
from alerts.sources.base import finish
from alerts.sources.common import conform, norm_code
from alerts.sources.hkex_di import (
    LIST_LAYOUT,
    NAME,
    SCHEMA,
    corp_search_path,
    notice_list_path,
    parse_corp_search,
    parse_notice_list,
)
from alerts.store import keys
from alerts.store.frames import FrameStore
from config.settings import Settings

log = logging.getLogger(__name__)

# A safety stop, not a page size: a period needing more pages than this should be asked for in pieces.
MAX_PAGES = 20
# The period of the corporation search (ending today). Which corporations DION lists for a period is not
# established; a year back finds any stock with a notice in it (the real capture asked for 01/01–10/09/2026).
SEARCH_DAYS = 365


async def fetch_notice_list(
    client: httpx.AsyncClient,
    base_url: str,
    code: str,
    sid: str,
    corp_name: str,
    start: date,
    end: date,
    *,
    max_pages: int = MAX_PAGES,
) -> pd.DataFrame:
    """Fetch every page of a stock's notice list for `start`..`end` into one frame of the hkex-di schema.

    Pages are fetched until the rows seen reach the list's "Total records". attrs: `file_date`, `layout`,
    `total_records`, and `complete` (False when `max_pages` ran out first; the rows fetched are still returned).
    """
    if max_pages < 1:
        raise ValueError(f"max_pages must be at least 1, got {max_pages}")
    code = norm_code(code)
    frames: list[pd.DataFrame] = []
    seen = total = 0
    for page in range(1, max_pages + 1):
        url = base_url.rstrip("/") + notice_list_path(code, sid, corp_name, start, end, page)
        fetched = await fetch(client, url, source=NAME)
        frame = _parse_page(fetched.content, url)
        if frame.attrs["code"] != code:
            raise MalformedFile(
                f"{NAME}: notice list page {page} is for {frame.attrs['code']}, not {code}",
                source=NAME,
                url=url,
            )
        total = frame.attrs["total_records"]  # the latest count: a filing may land between two pages
        frames.append(frame)
        seen += frame.attrs["page_rows"]
        if seen >= total:
            break
        if frame.attrs["page_rows"] == 0:
            raise MalformedFile(
                f"{NAME}: notice list page {page} is empty after {seen} of {total} records",
                source=NAME,
                url=url,
            )
    complete = seen >= total
    if not complete:
        log.warning(
            "%s: notice list of %s stopped at %d pages with %d of %d records",
            NAME,
            code,
            max_pages,
            seen,
            total,
        )
    out = _combine(frames)
    out.attrs.update(total_records=total, complete=complete)
    return out


def _parse_page(data: bytes, url: str) -> pd.DataFrame:
    """Parse one page, naming its URL in the error."""
    try:
        return parse_notice_list(data)
    except MalformedFile as exc:
        exc.source, exc.url = exc.source or NAME, exc.url or url
        raise


def _combine(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate pages, keeping the first copy of a notice that a new filing pushed onto the next page too."""
    filled = [frame for frame in frames if len(frame)] or frames[:1]
    joined = pd.concat(filled, ignore_index=True).drop_duplicates(subset="serial", keep="first")
    return finish(joined, SCHEMA, frames[0].attrs.get("file_date"), layout=LIST_LAYOUT)


async def lookup_sid(
    client: httpx.AsyncClient, base_url: str, code: str, redis: Redis, now: datetime
) -> tuple[str, str]:
    """DION's (sid, corporation name) of a stock code: cached in Redis (keys.di_corp), else from the search page.

    The search asks for the year up to `now` (Hong Kong date). MalformedFile when DION does not know the code.
    """
    code = norm_code(code)
    key = keys.di_corp(code)
    sid, corp_name = (_text(v) for v in await redis.hmget(key, ["sid", "corp_name"]))
    if sid and corp_name:
        return sid, corp_name
    end = now.astimezone(HK_TZ).date()
    url = base_url.rstrip("/") + corp_search_path(code, end - timedelta(days=SEARCH_DAYS), end)
    fetched = await fetch(client, url, source=NAME)
    try:
        sid, corp_name = parse_corp_search(fetched.content)
    except MalformedFile as exc:
        exc.source, exc.url = exc.source or NAME, exc.url or url
        raise
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={"sid": sid, "corp_name": corp_name})
        pipe.expire(key, keys.DI_CORP_TTL_SECONDS)
        await pipe.execute()
    return sid, corp_name


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


class WatchedIngest(dict[str, int]):
    """Rows added per code by `ingest_watched`; `failed` maps each code that failed to its error (not in the dict)."""

    def __init__(self) -> None:
        super().__init__()
        self.failed: dict[str, SourceError] = {}
        self.days: set[date] = (
            set()
        )  # filing days whose stored frame gained rows (to evaluate the rules again)


async def ingest_watched(
    codes: Iterable[str],
    *,
    settings: Settings,
    client: httpx.AsyncClient,
    store: FrameStore,
    redis: Redis,
    start: date,
    end: date,
    now: datetime,
) -> WatchedIngest:
    """Fetch each code's notice list for `start`..`end` and merge its rows into the stored hkex-di frames.

    Rows go to the frame of their filing day (`filed_date`), joined to the rows stored for that day; a serial already
    there (from the daily summary, the primary source) is kept as stored. A day gets written only when it gains rows.
    A code whose lookup or list fails is logged and put in `failed`, stores nothing, and does not stop the others.
    """
    report = WatchedIngest()
    base = settings.hkex_di_url
    for raw in dict.fromkeys(codes):
        code = str(raw)
        try:
            code = norm_code(raw)
            sid, corp_name = await lookup_sid(client, base, code, redis, now)
            try:
                notices = await fetch_notice_list(client, base, code, sid, corp_name, start, end)
            except MalformedFile:
                await redis.delete(keys.di_corp(code))  # a stale id or name: search again next time
                raise
        except SourceError as exc:
            log.warning("%s: notice list of %s failed: %s", NAME, code, exc)
            report.failed[code] = exc
            continue
        report[code] = await _merge(store, notices, report.days)
        log.info(
            "%s: notice list of %s: %d notices, %d new rows stored", NAME, code, len(notices), report[code]
        )
    return report


async def _merge(store: FrameStore, notices: pd.DataFrame, days: set[date]) -> int:
    """Add the notices missing from each filing day's stored frame (noting the day); return how many were added."""
    added = 0
    for filed, rows in notices.groupby(notices["filed_date"].dt.date, sort=True):
        day = filed if isinstance(filed, date) else pd.Timestamp(filed).date()
        stored = await store.get(NAME, "main", day, SCHEMA)
        known = set() if stored is None else set(stored["serial"].dropna())
        new = rows[~rows["serial"].isin(known)]
        if new.empty:
            continue
        parts = [stored, new] if stored is not None and len(stored) else [new]
        await store.put(NAME, {"main": conform(pd.concat(parts, ignore_index=True), SCHEMA)}, day)
        added += len(new)
        days.add(day)
    return added


async def watched_codes(redis: Redis) -> list[str]:
    """Every HK stock code some chat watches (the non-empty `keys.watchers` sets), sorted; US tickers are left out.

    SubscriptionStore has no such listing yet; this reads its reverse index (an empty set does not exist in Redis).
    """
    codes: set[str] = set()
    prefix = keys.watchers("")
    async for key in redis.scan_iter(match=keys.watchers("*"), count=1000):
        text = _text(key)[len(prefix) :]
        if text.isdigit() and len(text) <= 5:
            codes.add(norm_code(text))
    return sorted(codes)
