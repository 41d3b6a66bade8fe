"""History of every source a rule reads, loaded once from a data directory or from Redis, sliced per moment."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from alerts.calendar import HK_TZ, previous_sessions, schedule_for, sessions_between
from alerts.errors import SourceError
from alerts.localdata import local_path
from alerts.model import Alert
from alerts.rules import RuleContext
from alerts.rules.context import CONTEXT_FIELDS
from alerts.sources import FEEDS as SOURCE_FEEDS
from alerts.sources import get_source
from alerts.sources.common import conform, empty_frame
from alerts.store.frames import KNOWN_COLUMN, FrameStore, with_known

log = logging.getLogger(__name__)


# The HK feeds, declared by their sources: name -> (source, table, the column naming the row's file date). FEEDS
# are the RuleContext fields; EXTRA_FEEDS only the bot's answers read (the hkex-short pages, whose midday and close
# short values the positioning card compares). When a row became known is its `published_at` column, added on load
# (see History.context).
def _hk_feeds(rules: bool) -> dict[str, tuple[str, str, str]]:
    return {
        name: (source.name, feed.table, feed.date_column)
        for name, (source, feed) in SOURCE_FEEDS.items()
        if source.calendar == "XHKG" and feed.rules == rules and feed.date_column is not None
    }


FEEDS: dict[str, tuple[str, str, str]] = _hk_feeds(rules=True)
EXTRA_FEEDS: dict[str, tuple[str, str, str]] = _hk_feeds(rules=False)
ALL_FEEDS = {**FEEDS, **EXTRA_FEEDS}
WARMUP_SESSIONS = 80  # ≥ the longest rule window (60 sessions) plus room for missing days
FORWARD_SESSIONS = 25  # ≥ the longest outcome horizon (20 sessions)


@dataclass
class History:
    """All rows of every feed, sorted by their file-date column, each with `published_at` (when it became known).

    Frames handed in without `published_at` get the schedule's due moment of their file-date column.
    """

    frames: dict[str, pd.DataFrame]
    problems: list[str] = field(default_factory=list)
    _cuts: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, (source, table, column) in ALL_FEEDS.items():
            if name not in self.frames:
                # A history built before a feed existed (or for a few feeds only) sees that feed empty.
                self.frames[name] = with_known(empty_frame(get_source(source).tables[table].schema), [], [])
            frame = self.frames.get(name)
            if frame is not None and KNOWN_COLUMN not in frame.columns:
                self.frames[name] = _due_known(frame, source, column)

    def context(
        self,
        moment: datetime,
        *,
        day: date | None = None,
        recent_alerts: tuple[Alert, ...] = (),
        codes: frozenset[str] | None = None,
    ) -> RuleContext:
        """The RuleContext at `moment`: rows published by then, of files dated on or before `day`.

        `day` is the session evaluated (the file date of the publication event; default the Hong Kong date of
        `moment`). Rows of later files are left out even when known, as a live cycle for `day` loads them.
        """
        if moment.tzinfo is None:
            raise ValueError("moment must be timezone-aware")
        day = day or moment.astimezone(HK_TZ).date()
        by_day, at = (
            np.datetime64(day, "ns"),
            np.datetime64(moment.astimezone(UTC).replace(tzinfo=None), "ns"),
        )
        sliced = {}
        for name in FEEDS:
            dates, known = self._arrays(name)
            keep = (dates <= by_day) & (known <= at)
            stop = int(keep.sum())
            frame = self.frames[name]
            # Files arrive in date order almost always: then the kept rows are a prefix and a slice is enough.
            sliced[name] = (frame.iloc[:stop] if keep[:stop].all() else frame[keep]).reset_index(drop=True)
        # The six HK feeds are RuleContext fields; a feed a newer source declares travels in `feeds`.
        fields = {name: frame for name, frame in sliced.items() if name in CONTEXT_FIELDS}
        others = {name: frame for name, frame in sliced.items() if name not in CONTEXT_FIELDS}
        return RuleContext(
            day=day, recent_alerts=recent_alerts, codes=codes, moment=moment, feeds=others, **fields
        )

    def _arrays(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A feed's file-date column and publication moments (UTC) as numpy, computed once."""
        if name not in self._cuts:
            frame = self.frames[name]
            known = frame[KNOWN_COLUMN].dt.tz_convert("UTC").dt.tz_localize(None)
            self._cuts[name] = (
                frame[ALL_FEEDS[name][2]].to_numpy(dtype="datetime64[ns]"),
                known.to_numpy(dtype="datetime64[ns]"),
            )
        return self._cuts[name]

    def events(self, start: date, end: date) -> list[tuple[datetime, date]]:
        """Publication events (moment, file date) whose moment falls on a Hong Kong date in [start, end], in order.

        Several a day: the morning buyback and southbound files, the evening DI and quotation files, the SFC file
        a week after its date. Moments are in UTC.
        """
        found: set[tuple[pd.Timestamp, pd.Timestamp]] = set()
        for name in FEEDS:
            dates, known = self._arrays(name)
            found.update(zip(pd.to_datetime(known), pd.to_datetime(dates), strict=True))
        out = []
        for moment, day in sorted(m for m in found if not (pd.isna(m[0]) or pd.isna(m[1]))):
            when = moment.tz_localize("UTC").to_pydatetime()
            if start <= when.astimezone(HK_TZ).date() <= end:
                out.append((when, day.date()))
        return out

    def closes(self) -> pd.DataFrame:
        """Close prices as a (date × code) matrix, HKD counters only, for forward outcomes."""
        quotes = self.frames["quotes"]
        quotes = quotes[~quotes["non_hkd"] & quotes["close"].notna()]
        return quotes.pivot_table(index="date", columns="code", values="close", aggfunc="last").sort_index()


def _due_known(frame: pd.DataFrame, source: str, column: str) -> pd.DataFrame:
    """`frame` with `published_at` set to the schedule's due moment of each row's file date."""
    schedule = schedule_for(source)
    days = pd.to_datetime(frame[column]).dt.date
    moments = {d: schedule.published_at(d) for d in days.dropna().unique()}
    out = frame.copy()
    out[KNOWN_COLUMN] = (
        pd.to_datetime([moments.get(d, pd.NaT) for d in days], utc=True)
        if len(frame)
        else pd.Series([], dtype="datetime64[ns, UTC]")
    )
    out[KNOWN_COLUMN] = out[KNOWN_COLUMN].astype("datetime64[ns, UTC]")
    return out


def _sorted(frames: list[pd.DataFrame], source: str, table: str, column: str) -> pd.DataFrame:
    """Concatenate files' frames (each with `published_at`) in the schema, sorted by the file-date column."""
    schema = get_source(source).tables[table].schema
    if not frames:
        return with_known(empty_frame(schema), [], [])
    combined = pd.concat(frames, ignore_index=True)
    known = pd.to_datetime(combined[KNOWN_COLUMN], utc=True).astype("datetime64[ns, UTC]")
    out = conform(combined, schema)
    out[KNOWN_COLUMN] = known.reset_index(drop=True)
    return out.sort_values([column, KNOWN_COLUMN], kind="stable").reset_index(drop=True)


def span(start: date, end: date) -> tuple[date, date]:
    """The load range for a replay of [start, end]: warm-up history before, outcome horizon after."""
    first = previous_sessions(start, WARMUP_SESSIONS)[0]
    later = sessions_between(end, end + timedelta(days=FORWARD_SESSIONS * 2))
    last = later[min(len(later) - 1, FORWARD_SESSIONS)] if later else end
    return first - timedelta(days=7), last


def load_directory(root: Path, start: date, end: date) -> History:
    """Parse every file of a directory laid out like the source URLs for dates in [start, end]."""
    parsed: dict[str, list[dict[str, pd.DataFrame]]] = {}
    problems: list[str] = []
    for source_name in {feed[0] for feed in ALL_FEEDS.values()}:
        source, schedule = get_source(source_name), schedule_for(source_name)
        day = start
        while day <= end:
            if schedule.has_file(day):
                for url_path in source.paths(day):
                    path = local_path(root, source_name, day, url_path)
                    if not path.is_file():
                        continue
                    try:
                        tables = source.parse_all(path.read_bytes())
                    except SourceError as exc:
                        problems.append(
                            f"{source_name} {day.isoformat()}: {type(exc).__name__}: {exc} ({path})"
                        )
                        continue
                    # A local copy carries no fetch time: the file counts as known at its schedule's due moment.
                    moment = schedule.published_at(day)
                    parsed.setdefault(source_name, []).append(
                        {name: with_known(frame, [moment], [len(frame)]) for name, frame in tables.items()}
                    )
            day += timedelta(days=1)
    frames = {
        name: _sorted([tables[table] for tables in parsed.get(source_name, [])], source_name, table, column)
        for name, (source_name, table, column) in ALL_FEEDS.items()
    }
    return History(frames, problems)


async def load_store(store: FrameStore, start: date, end: date) -> History:
    """Load every feed for dates in [start, end] from Redis."""
    frames = {}
    for name, (source_name, table, column) in ALL_FEEDS.items():
        schema = get_source(source_name).tables[table].schema
        window = SOURCE_FEEDS[name][1].window
        # A feed declaring a window in days (announcements: the day and the week before) is not loaded further
        # back: a day of market-wide announcements is a thousand rows the rules never look at again.
        first = max(start, end - timedelta(days=window)) if isinstance(window, int) else start
        loaded = await store.known_range(source_name, schema, first, end, table=table)
        frames[name] = _sorted([loaded], source_name, table, column)
    return History(frames)
