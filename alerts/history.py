"""History of every source a rule reads, loaded once from a data directory or from Redis, sliced per day."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from alerts.calendar import previous_sessions, schedule_for, sessions_between
from alerts.errors import SourceError
from alerts.localdata import local_path
from alerts.model import Alert
from alerts.rules import RuleContext
from alerts.sources import get_source
from alerts.sources.common import conform, empty_frame
from alerts.store.frames import FrameStore

log = logging.getLogger(__name__)

# RuleContext field -> (source, table, the column that says when the row became known)
FEEDS: dict[str, tuple[str, str, str]] = {
    "quotes": ("hkex-quotes", "main", "date"),
    "market": ("hkex-quotes", "market", "date"),
    "sfc": ("sfc-short-positions", "main", "date"),
    "buybacks": ("hkex-buybacks", "main", "report_date"),
    "di": ("hkex-di", "main", "filed_date"),
    "southbound": ("hkex-southbound", "main", "date"),
}
# Feeds the bot's answers read but no rule does (not part of RuleContext): the hkex-short pages, whose midday
# (MSHTMAIN, source hkex-short-midday) and close (ASHTMAIN) short values the positioning card compares.
EXTRA_FEEDS: dict[str, tuple[str, str, str]] = {
    "short": ("hkex-short", "main", "date"),
    "short_midday": ("hkex-short-midday", "main", "date"),
}
ALL_FEEDS = {**FEEDS, **EXTRA_FEEDS}
WARMUP_SESSIONS = 80  # ≥ the longest rule window (60 sessions) plus room for missing days
FORWARD_SESSIONS = 25  # ≥ the longest outcome horizon (20 sessions)


@dataclass
class History:
    """All rows of every feed, sorted by their known-at column, plus problems met while loading."""

    frames: dict[str, pd.DataFrame]
    problems: list[str] = field(default_factory=list)

    def context(self, day: date, *, recent_alerts: tuple[Alert, ...] = (),
                codes: frozenset[str] | None = None) -> RuleContext:
        """The RuleContext for `day`: every feed cut at rows known on or before `day`."""
        cut = np.datetime64(day, "ns")
        sliced = {}
        for name, (_, _, column) in FEEDS.items():
            frame = self.frames[name]
            stop = int(np.searchsorted(frame[column].to_numpy(dtype="datetime64[ns]"), cut, side="right"))
            sliced[name] = frame.iloc[:stop].reset_index(drop=True)
        return RuleContext(day=day, recent_alerts=recent_alerts, codes=codes, **sliced)

    def closes(self) -> pd.DataFrame:
        """Close prices as a (date × code) matrix, HKD counters only, for forward outcomes."""
        quotes = self.frames["quotes"]
        quotes = quotes[~quotes["non_hkd"] & quotes["close"].notna()]
        return quotes.pivot_table(index="date", columns="code", values="close", aggfunc="last").sort_index()


def _sorted(frames: list[pd.DataFrame], source: str, table: str, column: str) -> pd.DataFrame:
    schema = get_source(source).tables[table].schema
    if not frames:
        return empty_frame(schema)
    combined = conform(pd.concat(frames, ignore_index=True), schema)
    return combined.sort_values(column, kind="stable").reset_index(drop=True)


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
                        parsed.setdefault(source_name, []).append(source.parse_all(path.read_bytes()))
                    except SourceError as exc:
                        problems.append(f"{source_name} {day.isoformat()}: {type(exc).__name__}: {exc} ({path})")
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
        loaded = await store.load_range(source_name, schema, start, end, table=table)
        frames[name] = _sorted([loaded], source_name, table, column)
    return History(frames)
