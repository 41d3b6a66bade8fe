"""Where a source's files live: URLs on the configured hosts (what we fetch) or on the public ones (what alerts
link to). Rules never build URLs themselves: they call the `link(source, file_date)` function handed to them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from alerts.sources import get_source, public_links
from alerts.sources.base import Source
from config.settings import Settings

Links = Callable[[str, date], tuple[str, ...]]


def urls_for(source: Source, settings: Settings, day: date) -> list[str]:
    """Full URLs of a source's file(s) for a date on its configured host: `<BASE_URL><real path>`."""
    return list(source.urls(day, settings.base_url(source.base_setting)))


def links_for(settings: Settings) -> Links:
    """A `link(source, file_date)` function giving a registered source's URLs on the hosts `settings` configure."""

    def link(source: str, day: date) -> tuple[str, ...]:
        return tuple(urls_for(get_source(source), settings, day))

    return link


__all__ = ["Links", "links_for", "public_links", "urls_for"]
