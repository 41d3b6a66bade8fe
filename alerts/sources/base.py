"""What a source is: its tables (schema + pure parser), where its files live, and how dates map to files."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import pandas as pd

from alerts.errors import MalformedFile, SourceError
from alerts.sources.common import conform

Parser = Callable[[bytes], pd.DataFrame]
# Largest file a source may send, in decoded bytes (Source.max_bytes); alerts.fetch refuses more as "too large".
DEFAULT_MAX_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class Table:
    """One canonical table a source file yields: declared columns/dtypes and the pure parser."""

    schema: Mapping[str, str]
    parse: Parser

    def read(self, data: bytes, source: str | None = None) -> pd.DataFrame:
        """`parse`, with any exception outside alerts.errors turned into MalformedFile naming `source`.

        Hostile or mangled bytes make parsers fail in ways they do not foresee (a ValueError from a date that does
        not exist, an IndexError from a cut row): each is a file that is not the documented layout.
        """
        try:
            return self.parse(data)
        except SourceError:
            raise
        except Exception as exc:
            message = " ".join(str(exc).split())[:300]
            raise MalformedFile(
                f"{source or 'parser'}: {type(exc).__name__}: {message}", source=source
            ) from exc


@dataclass(frozen=True)
class Feed:
    """A history one of a source's tables feeds, under a name rules and answers read it by (alerts.history).

    `date_column` names each row's file date (None when the rows do not carry it). `rules` is False for feeds only
    the bot's answers read. `window` is how much a live evaluation loads: "history" (the rules' longest lookback),
    a number of calendar days, or "day" (the day's file alone).
    """

    table: str = "main"
    date_column: str | None = "date"
    rules: bool = True
    window: int | Literal["history", "day"] = "history"


@dataclass(frozen=True)
class Source:
    """A registered data source; `tables["main"]` is what `positioning-bot parse` prints."""

    name: str
    title: str
    base_setting: str  # attribute of config.Settings holding the base URL
    # The public host (scheme://host, no slash) the files live on: alerts link there whatever host is fetched
    # from, and Settings' default for `base_setting` is this same URL (tests/alerts/test_links.py pins it).
    public_url: str
    paths: Callable[[date], list[str]]  # real URL paths (with query) of the file(s) for a date
    tables: Mapping[str, Table]
    calendar: str = "XHKG"
    # Whether the date inside the file must equal the requested date (today-only pages go stale overnight).
    check_file_date: bool = True
    # False for "today only" pages: past dates cannot be fetched (use another source for history).
    history: bool = True
    # For pages that serve other dates through a form POST (ASP.NET): build the form for a date from the GET page.
    form_for_date: Callable[[bytes, date], Mapping[str, str]] | None = None
    # For sources assembled from many files (EDGAR: an index, then each filing), the kind of day-fetcher that
    # builds a whole day's tables, e.g. "edgar-form4": the network layer (alerts.edgar) maps kinds to fetchers,
    # so sources stay free of HTTP. None: the day is the file(s) of `paths`, fetched one by one.
    fetch_day: str | None = None
    docs: str = field(default="")
    # Cap on one downloaded file (decoded bytes): a hostile origin cannot exhaust memory. Set with the source.
    max_bytes: int = DEFAULT_MAX_BYTES
    # The histories this source's tables feed, by feed name (RuleContext fields and RuleSpec.feeds use them).
    feeds: Mapping[str, Feed] = field(default_factory=dict)
    # Steps the scheduler runs around this source's cycles, by kind (bot/scheduler.py maps kinds to steps):
    # before each pass ("ticker-map": filings name issuers by CIK) and after a processed cycle ("watched-notices":
    # the per-stock notice lists of the watched stocks, a second path to the same rows).
    before_pass: str | None = None
    after_processed: str | None = None
    # True when a date's file keeps growing through its windows (the day's announcements): a processed cycle does
    # not end the polling of that date while one of its windows is open; unchanged answers cost a conditional GET.
    growing: bool = False

    @property
    def dated_url(self) -> bool:
        """True when the file's URL carries its date (today-only pages and form pages do not)."""
        return self.paths(date(2001, 1, 2)) != self.paths(date(2001, 1, 3))

    def urls(self, day: date, base_url: str | None = None) -> tuple[str, ...]:
        """Full URLs of the file(s) for `day` on `base_url` (default: the public host)."""
        base = self.public_url if base_url is None else base_url
        return tuple(base + path for path in self.paths(day))

    @property
    def schema(self) -> Mapping[str, str]:
        """Schema of the main table."""
        return self.tables["main"].schema

    def parse(self, data: bytes) -> pd.DataFrame:
        """Parse bytes into the main canonical table; any parser failure is a MalformedFile."""
        return self.tables["main"].read(data, self.name)

    def parse_all(self, data: bytes) -> dict[str, pd.DataFrame]:
        """Parse bytes into every table of the source, each conformed to its schema; any failure is a SourceError."""
        out: dict[str, pd.DataFrame] = {}
        for name, table in self.tables.items():
            frame = table.read(data, self.name)
            if list(frame.columns) != list(table.schema):
                raise MalformedFile(f"{self.name}.{name}: columns {list(frame.columns)} differ from schema")
            out[name] = frame
        return out


def finish(
    frame: pd.DataFrame,
    schema: Mapping[str, str],
    file_date: date | None,
    *,
    layout: str | None = None,
    reconciled: Mapping[str, tuple[float, float]] | None = None,
) -> pd.DataFrame:
    """Conform a parsed frame to its schema and record what the file itself says about it.

    attrs: `file_date` (the date the file carries), `layout` (which known layout was recognised, e.g.
    "srrpt-2026"), `reconciled` (check name -> (sum of the rows, the file's own total)) for `doctor`.
    """
    out = conform(frame, schema)
    out.attrs["file_date"] = file_date
    if layout is not None:
        out.attrs["layout"] = layout
    if reconciled is not None:
        out.attrs["reconciled"] = dict(reconciled)
    return out
