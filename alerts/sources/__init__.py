"""Registry of data sources by canonical name (the names the CLI and operators use)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from alerts.errors import FetchFailed, NotPublishedYet
from alerts.sources import (
    finra_short_volume,
    hkex_buybacks,
    hkex_di,
    hkex_quotes,
    hkex_short,
    hkex_southbound,
    sec_form4,
    sfc_short_positions,
)
from alerts.sources.base import Source, Table

_NEW_YORK = ZoneInfo("America/New_York")


async def _form4_day(client: Any, settings: Any, day: date) -> dict[str, pd.DataFrame]:
    """A day of Form 4 filings: the EDGAR daily index, then each filing (≤ 10 requests/s, declared User-Agent)."""
    from alerts.sources import (
        sec_edgar,  # imported late: it depends on alerts.fetch, which imports the sources
    )

    if not settings.sec_user_agent:
        raise FetchFailed(
            "SEC_USER_AGENT is not set: SEC requires a User-Agent naming the operator and an e-mail",
            source=sec_form4.NAME,
        )
    try:
        frame = await sec_edgar.fetch_form4_day(
            client, settings.sec_url, day, user_agent=settings.sec_user_agent
        )
    except NotPublishedYet:
        if settings.clock()().astimezone(_NEW_YORK).date() != day:
            raise
        # The day's index is built in the evening: meanwhile, the "latest filings" feed gives today's filings.
        frame = await sec_edgar.fetch_form4_current(
            client, settings.sec_url, day, user_agent=settings.sec_user_agent
        )
    filings, skipped = frame.attrs.get("filings", 0), frame.attrs.get("skipped", 0)
    if filings and skipped == filings:  # every filing failed: a network problem, not an empty day
        raise FetchFailed(f"all {filings} filings of {day.isoformat()} failed", source=sec_form4.NAME)
    return {"main": frame}


SOURCES: dict[str, Source] = {
    source.name: source
    for source in (
        hkex_short.SOURCE,
        hkex_short.MIDDAY_SOURCE,
        hkex_quotes.SOURCE,
        sfc_short_positions.SOURCE,
        hkex_buybacks.SOURCE,
        hkex_di.SOURCE,
        hkex_southbound.SOURCE,
        finra_short_volume.SOURCE,
    )
}
SOURCES[sec_form4.NAME] = replace(sec_form4.SOURCE, fetch_day=_form4_day)
# The daily quotations file runs to ~30 MB of HTML; every other source keeps Source.max_bytes (20 MB), files of
# a few MB at most.
SOURCES[hkex_quotes.NAME] = replace(SOURCES[hkex_quotes.NAME], max_bytes=50 * 1024 * 1024)


def get_source(name: str) -> Source:
    """Return the registered source called `name` or raise KeyError listing the valid names."""
    try:
        return SOURCES[name]
    except KeyError:
        raise KeyError(f"unknown source {name!r}; choose one of: {', '.join(SOURCES)}") from None


__all__ = ["SOURCES", "Source", "Table", "get_source"]
