"""Trading calendars (exchange_calendars) and publication schedules: is a file due for a date, and which."""

from __future__ import annotations

import tomllib
import warnings
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd

HK_TZ = ZoneInfo("Asia/Hong_Kong")


@cache
def get_calendar(code: str = "XHKG") -> xcals.ExchangeCalendar:
    """Return (and cache) an exchange calendar; XHKG models HK holidays and half days."""
    with warnings.catch_warnings():
        # exchange_calendars builds its tables with an API pandas 3 deprecates; the result is correct.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return xcals.get_calendar(code)


def _in_bounds(cal: xcals.ExchangeCalendar, day: date) -> bool:
    return cal.first_session.date() <= day <= cal.last_session.date()


def is_session(day: date, calendar: str = "XHKG") -> bool:
    """True when `day` is a trading session of the calendar."""
    cal = get_calendar(calendar)
    return _in_bounds(cal, day) and bool(cal.is_session(pd.Timestamp(day)))


def sessions_between(start: date, end: date, calendar: str = "XHKG") -> list[date]:
    """Trading sessions from `start` to `end`, both inclusive, oldest first."""
    cal = get_calendar(calendar)
    lo = max(start, cal.first_session.date())
    hi = min(end, cal.last_session.date())
    if lo > hi:
        return []
    return [ts.date() for ts in cal.sessions_in_range(pd.Timestamp(lo), pd.Timestamp(hi))]


def previous_sessions(day: date, count: int, calendar: str = "XHKG") -> list[date]:
    """The `count` sessions on or before `day`, oldest first."""
    span = max(14, count * 2 + 14)
    sessions = sessions_between(day - timedelta(days=span), day, calendar)
    while len(sessions) < count and span < 4000:
        span *= 2
        sessions = sessions_between(day - timedelta(days=span), day, calendar)
    return sessions[-count:]


def is_week_end_session(day: date, calendar: str = "XHKG") -> bool:
    """True when `day` is the last trading session of its ISO week (Friday, or earlier before a holiday)."""
    if not is_session(day, calendar):
        return False
    week_end = day + timedelta(days=6 - day.weekday())
    return not any(is_session(day + timedelta(days=i), calendar) for i in range(1, (week_end - day).days + 1))


def is_half_day(day: date, calendar: str = "XHKG") -> bool:
    """True when the session closes early (e.g. Christmas Eve in Hong Kong)."""
    return is_session(day, calendar) and pd.Timestamp(day) in get_calendar(calendar).early_closes


@dataclass(frozen=True)
class Schedule:
    """When files of one source are expected."""

    source: str
    calendar: str
    timezone: ZoneInfo
    # sessions | full_sessions (sessions that are not half days) | week_end | days (every day) | revisions (any
    # session may have a file, most have none: a list revised when its publisher decides, a missing file is not late)
    dates: str
    publish_after_days: int
    publish_time: time
    # Polling windows as local (start, end) times on the publication day; an end at or before its start is on
    # the next day. Empty means one window from `publish_time` to midnight.
    windows: tuple[tuple[time, time], ...] = ()
    poll_seconds: int = 20
    retry_days: int = 0  # the windows repeat on this many further calendar days ("retry until found")

    def window_times(self) -> tuple[tuple[time, time], ...]:
        """The configured windows, or one from `publish_time` to midnight when none are configured."""
        return self.windows or ((self.publish_time, time(0)),)

    @property
    def expected(self) -> bool:
        """False when most due dates have no file by design ("revisions"): a missing file is not late then."""
        return self.dates != "revisions"

    def has_file(self, day: date) -> bool:
        """True when the source publishes a file for `day`."""
        if self.dates == "days":
            # Publications that do not wait for a session (announcements): every calendar day may have some.
            return True
        if self.dates == "week_end":
            return is_week_end_session(day, self.calendar)
        if self.dates == "full_sessions":
            # A half day closes at noon: no separate morning close, so no midday file is expected.
            return is_session(day, self.calendar) and not is_half_day(day, self.calendar)
        return is_session(day, self.calendar)

    def published_at(self, day: date) -> datetime:
        """Expected publication instant of the file for `day` (timezone-aware)."""
        local_day = day + timedelta(days=self.publish_after_days)
        return datetime.combine(local_day, self.publish_time, tzinfo=self.timezone)

    def known_at(self, day: date, fetched_at: datetime) -> datetime:
        """When the file for `day`, fetched at `fetched_at`, became known: its due moment, or the fetch when later.

        A fetch after the file's last polling day (a backfill of a long-published file) says nothing about when
        the origin published it, so the due moment stands then.
        """
        due = self.published_at(day)
        local = fetched_at.astimezone(self.timezone)
        if local.date() > due.date() + timedelta(days=self.retry_days + 1):
            return due
        return max(due, local)

    def is_due(self, day: date, now: datetime) -> bool:
        """True when a file exists for `day` and its publication time has passed at `now`."""
        return self.has_file(day) and self.published_at(day) <= now

    def due_dates(self, now: datetime, count: int = 1) -> list[date]:
        """The latest `count` dates whose files are due at `now`, newest first."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        day = now.astimezone(self.timezone).date()
        out: list[date] = []
        for _ in range(400 + count * 10):
            if self.is_due(day, now):
                out.append(day)
                if len(out) == count:
                    break
            day -= timedelta(days=1)
        return out

    def latest_due(self, now: datetime) -> date | None:
        """The newest date whose file is due at `now`."""
        dates = self.due_dates(now, 1)
        return dates[0] if dates else None


@cache
def _schedule_table() -> dict[str, dict[str, object]]:
    text = resources.files("config").joinpath("sources.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _clock(value: object, what: str) -> time:
    text = str(value)
    try:
        hour, minute = text.split(":")
        return time(int(hour), int(minute))
    except ValueError as exc:
        raise ValueError(f"{what}: expected HH:MM, got {text!r}") from exc


def _windows(name: str, value: object) -> tuple[tuple[time, time], ...]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{name}: windows must be a non-empty list of [start, end] pairs")
    out: list[tuple[time, time]] = []
    for pair in value:
        if not isinstance(pair, list) or len(pair) != 2:
            raise ValueError(f'{name}: each window must be ["HH:MM", "HH:MM"], got {pair!r}')
        start, end = _clock(pair[0], f"{name} window start"), _clock(pair[1], f"{name} window end")
        if start == end:
            raise ValueError(f"{name}: empty window {pair!r}")
        out.append((start, end))
    if [w[0] for w in out] != sorted(w[0] for w in out):
        raise ValueError(f"{name}: windows must be listed in order of their start")
    return tuple(out)


def schedule_from_row(name: str, row: dict[str, object]) -> Schedule:
    """Build a schedule from one sources.toml table (also lets tests inject a synthetic source)."""
    windows = _windows(name, row["windows"]) if "windows" in row else ()
    if "publish_time" in row:
        publish_time = _clock(row["publish_time"], f"{name} publish_time")
    elif windows:
        publish_time = windows[0][0]
    else:
        raise ValueError(f"{name}: needs publish_time or windows")
    if windows and windows[0][0] != publish_time:
        # One truth for "when is it published": the rest of the code reports lag against publish_time.
        raise ValueError(
            f"{name}: publish_time {publish_time:%H:%M} must equal the first window start "
            f"{windows[0][0]:%H:%M}"
        )
    poll_seconds = int(str(row.get("poll_seconds", 20)))
    retry_days = int(str(row.get("retry_days", 0)))
    if poll_seconds <= 0 or retry_days < 0:
        raise ValueError(f"{name}: poll_seconds must be > 0 and retry_days >= 0")
    return Schedule(
        source=name,
        calendar=str(row["calendar"]),
        timezone=ZoneInfo(str(row["timezone"])),
        dates=str(row["dates"]),
        publish_after_days=int(str(row["publish_after_days"])),
        publish_time=publish_time,
        windows=windows,
        poll_seconds=poll_seconds,
        retry_days=retry_days,
    )


def schedule_for(source: str) -> Schedule:
    """The publication schedule of a source, from config/sources.toml."""
    return schedule_from_row(source, _schedule_table()[source])
