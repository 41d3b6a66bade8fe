"""A watched stock's DI notices from its per-stock notice list (NSAllFormList.aspx), page by page.

The second path to Disclosure of Interests filings: the daily summaries (`hkex-di`) are kept only a few days,
while a stock's notice list covers any period. DION knows the stock by an internal id (`sid`, 00700 → 6893), which
the caller supplies; the list itself is parsed by `alerts.sources.hkex_di.parse_notice_list`.
"""

from __future__ import annotations

import logging
from datetime import date

import httpx
import pandas as pd

from alerts.errors import MalformedFile
from alerts.fetch import fetch
from alerts.sources.base import finish
from alerts.sources.common import norm_code
from alerts.sources.hkex_di import LIST_LAYOUT, NAME, SCHEMA, notice_list_path, parse_notice_list

log = logging.getLogger(__name__)

# A safety stop, not a page size: a period needing more pages than this should be asked for in pieces.
MAX_PAGES = 20


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
            raise MalformedFile(f"{NAME}: notice list page {page} is for {frame.attrs['code']}, not {code}",
                                source=NAME, url=url)
        total = frame.attrs["total_records"]  # the latest count: a filing may land between two pages
        frames.append(frame)
        seen += frame.attrs["page_rows"]
        if seen >= total:
            break
        if frame.attrs["page_rows"] == 0:
            raise MalformedFile(f"{NAME}: notice list page {page} is empty after {seen} of {total} records",
                                source=NAME, url=url)
    complete = seen >= total
    if not complete:
        log.warning("%s: notice list of %s stopped at %d pages with %d of %d records", NAME, code, max_pages,
                    seen, total)
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
