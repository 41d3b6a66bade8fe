"""Registry of data sources by canonical name (the names the CLI and operators use)."""

from __future__ import annotations

from datetime import date

from alerts.sources import (
    finra_short_volume,
    hkex_buybacks,
    hkex_di,
    hkex_quotes,
    hkex_short,
    hkex_shortable,
    hkex_southbound,
    hkex_stock_connect_daily,
    hkexnews_announcements,
    hsi_index_reviews,
    sec_13d_13g,
    sec_form4,
    sfc_short_positions,
)
from alerts.sources.base import Feed, Source, Table

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
        hkex_stock_connect_daily.SOURCE,
        finra_short_volume.SOURCE,
        sec_form4.SOURCE,
        hkex_shortable.SOURCE,
        sec_13d_13g.SOURCE,
        hkexnews_announcements.SOURCE,
        hsi_index_reviews.SOURCE,
    )
}
# Every feed by name -> (its source, its declaration); a feed name belongs to one source.
FEEDS: dict[str, tuple[Source, Feed]] = {
    name: (s, feed) for s in SOURCES.values() for name, feed in s.feeds.items()
}


def get_source(name: str) -> Source:
    """Return the registered source called `name` or raise KeyError listing the valid names."""
    try:
        return SOURCES[name]
    except KeyError:
        raise KeyError(f"unknown source {name!r}; choose one of: {', '.join(SOURCES)}") from None


def public_links(source: str, day: date) -> tuple[str, ...]:
    """Primary-source URL(s) of a registered source's file for `day`, on its public host (what alerts link to)."""
    return get_source(source).urls(day)


__all__ = ["FEEDS", "SOURCES", "Feed", "Source", "Table", "get_source", "public_links"]
