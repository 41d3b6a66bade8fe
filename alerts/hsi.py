"""Hang Seng Indexes over HTTP: a day of index review results is the notices catalogue, then each review workbook
the catalogue lists as published that day (the workbook's name is its announcement moment, unknown in advance).

The parsers are pure and live in alerts.sources.hsi_index_reviews; DAY_FETCHERS maps the source's kind
(``Source.fetch_day``) to the function here, and alerts.ingest runs it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import date
from typing import TypeVar
from urllib.parse import urlsplit

import httpx
import pandas as pd

from alerts.errors import MalformedFile, NotPublishedYet
from alerts.fetch import fetch
from alerts.sources import hsi_index_reviews as reviews
from alerts.sources.base import finish
from config.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
DayFetcher = Callable[[httpx.AsyncClient, Settings, date], Awaitable[dict[str, pd.DataFrame]]]


def host_path(url: str) -> str:
    """A catalogue URL as a path on the host (absolute URLs are fetched from the configured host, like the rest)."""
    parts = urlsplit(url)
    if parts.scheme and parts.netloc:
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return url if url.startswith("/") else "/" + url


async def fetch_reviews_day(
    client: httpx.AsyncClient, base_url: str, day: date, *, backoff: float = 0.5
) -> pd.DataFrame:
    """The constituent changes of the review workbooks published on `day`; NotPublishedYet when there are none.

    attrs: ``file_date`` = `day`, ``workbooks`` = paths read, ``skipped`` = the day's workbooks without a Review
    Result sheet (a notice's appendix). Every workbook of the day lacking one is a layout change (MalformedFile).
    """
    base = base_url.rstrip("/")
    catalogue = await fetch(client, base + reviews.CATALOGUE_PATH, source=reviews.NAME, backoff=backoff)
    notices = _located(reviews.parse_notices, catalogue.content, catalogue.url)
    listed = [host_path(path) for path in reviews.review_workbooks(notices, day)]
    if not listed:
        raise NotPublishedYet(
            f"no index review workbook in the notices catalogue for {day.isoformat()}",
            source=reviews.NAME,
            url=catalogue.url,
        )
    frames, read, skipped = [], [], []
    for path in listed:
        workbook = await fetch(client, base + path, source=reviews.NAME, backoff=backoff)
        if not _located(reviews.has_review_result, workbook.content, workbook.url):
            log.info("%s %s: %s has no %r sheet, skipped", reviews.NAME, day, path, reviews.RESULT)
            skipped.append(path)
            continue
        frames.append(
            _located(functools.partial(_review, day=day, path=path), workbook.content, workbook.url)
        )
        read.append(path)
    if not frames:
        raise MalformedFile(
            f"{reviews.NAME}: none of the {len(listed)} workbook(s) of {day.isoformat()} has a "
            f"{reviews.RESULT!r} sheet",
            source=reviews.NAME,
            url=base + listed[0],
            expected=[reviews.RESULT],
        )
    combined = pd.concat(frames, ignore_index=True)
    out = finish(combined, reviews.SCHEMA, day, layout=reviews.LAYOUT)
    out.attrs.update(workbooks=read, skipped=skipped)
    return out


def _review(data: bytes, *, day: date, path: str) -> pd.DataFrame:
    return reviews.parse_review(data, day, path)


def _located(parser: Callable[[bytes], T], data: bytes, url: str) -> T:
    """Run a parser; a MalformedFile it raises names the source and the URL the bytes came from."""
    try:
        return parser(data)
    except MalformedFile as exc:
        exc.source, exc.url = exc.source or reviews.NAME, exc.url or url
        raise


async def index_reviews_day(
    client: httpx.AsyncClient, settings: Settings, day: date
) -> dict[str, pd.DataFrame]:
    """A day of the hsi-index-reviews source: the catalogue, then the day's review workbooks."""
    return {"main": await fetch_reviews_day(client, settings.hsi_url, day)}


# Source.fetch_day kind -> the function assembling such a day.
DAY_FETCHERS: dict[str, DayFetcher] = {reviews.DAY_KIND: index_reviews_day}
