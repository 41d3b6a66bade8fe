"""Publication windows: when to poll a source for a file date, what was missed, and when a file is overdue.

Pure functions of their arguments: `now` is always passed in and must be timezone-aware. Window times are
local to the source's timezone (config/sources.toml), so zoneinfo handles DST; instants are compared in UTC
because Python compares two datetimes sharing a tzinfo by wall clock, which is wrong around a DST change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from alerts.calendar import Schedule, schedule_for

# How far ahead next_window_start looks; exchange_calendars only knows sessions about a year ahead.
_HORIZON_DAYS = 800
# How far back missed() walks to find `lookback_sessions` dates with a file (weekly sources need ~7 per date).
_LOOKBACK_DAYS_PER_DATE = 10


@dataclass(frozen=True)
class Window:
    """One interval [start, end) in which the file of `file_date` is expected (aware, source timezone)."""

    source: str
    file_date: date
    start: datetime
    end: datetime

    def contains(self, now: datetime) -> bool:
        """True when start <= now < end."""
        instant = _utc(now)
        return self.start.astimezone(UTC) <= instant < self.end.astimezone(UTC)


def _utc(moment: datetime, what: str = "now") -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def _schedule(source: str, schedule: Schedule | None) -> Schedule:
    if schedule is None:
        return schedule_for(source)
    if schedule.source != source:
        raise ValueError(f"schedule is for {schedule.source!r}, not {source!r}")
    return schedule


def windows_for(source: str, file_date: date, *, schedule: Schedule | None = None) -> list[Window]:
    """All windows for the file of `file_date`, in start order; [] when the source has no file that date."""
    sched = _schedule(source, schedule)
    if not sched.has_file(file_date):
        return []
    first_day = file_date + timedelta(days=sched.publish_after_days)
    out: list[Window] = []
    for offset in range(sched.retry_days + 1):
        day = first_day + timedelta(days=offset)
        for start_time, end_time in sched.window_times():
            start = datetime.combine(day, start_time, tzinfo=sched.timezone)
            end_day = day if end_time > start_time else day + timedelta(days=1)
            end = datetime.combine(end_day, end_time, tzinfo=sched.timezone)
            out.append(Window(sched.source, file_date, start, end))
    return out


def _candidate_dates(sched: Schedule, instant: datetime) -> list[date]:
    """File dates whose windows could contain `instant`, oldest first."""
    today = instant.astimezone(sched.timezone).date()
    newest = today - timedelta(days=sched.publish_after_days)
    # One extra day covers windows that run past midnight.
    oldest = newest - timedelta(days=sched.retry_days + 1)
    return [oldest + timedelta(days=i) for i in range((newest - oldest).days + 1)]


def active_dates(source: str, now: datetime, *, schedule: Schedule | None = None) -> list[date]:
    """File dates with a window containing `now` (start inclusive, end exclusive), oldest first."""
    instant = _utc(now)
    sched = _schedule(source, schedule)
    return [
        day
        for day in _candidate_dates(sched, instant)
        if any(w.contains(instant) for w in windows_for(source, day, schedule=sched))
    ]


def next_window_start(source: str, now: datetime, *, schedule: Schedule | None = None) -> datetime:
    """The earliest window start strictly after `now` (source timezone); LookupError past the calendar."""
    instant = _utc(now)
    sched = _schedule(source, schedule)
    day = _candidate_dates(sched, instant)[0]
    best: datetime | None = None
    for _ in range(_HORIZON_DAYS):
        publication_day = datetime.combine(
            day + timedelta(days=sched.publish_after_days), time(0), tzinfo=sched.timezone
        )
        # Every window of this or a later file date starts on or after its publication day.
        if best is not None and publication_day.astimezone(UTC) > best.astimezone(UTC):
            return best
        for window in windows_for(source, day, schedule=sched):
            start = window.start.astimezone(UTC)
            if start > instant and (best is None or start < best.astimezone(UTC)):
                best = window.start
        day += timedelta(days=1)
    if best is None:
        raise LookupError(f"{source}: no window within {_HORIZON_DAYS} days of {now.isoformat()}")
    return best


def missed(
    source: str,
    now: datetime,
    done: Callable[[date], bool],
    lookback_sessions: int = 5,
    *,
    schedule: Schedule | None = None,
) -> list[date]:
    """Catch-up: of the last `lookback_sessions` file dates whose first window has started, those not done.

    Oldest first; dates whose window is still open are included.
    """
    instant = _utc(now)
    sched = _schedule(source, schedule)
    started: list[date] = []
    day = instant.astimezone(sched.timezone).date() - timedelta(days=sched.publish_after_days)
    for _ in range(max(lookback_sessions, 0) * _LOOKBACK_DAYS_PER_DATE + 30):
        if len(started) >= lookback_sessions:
            break
        windows = windows_for(source, day, schedule=sched)
        if windows and windows[0].start.astimezone(UTC) <= instant:
            started.append(day)
        day -= timedelta(days=1)
    return [day for day in reversed(started) if not done(day)]


def window_failed(
    source: str, file_date: date, now: datetime, done: bool, *, schedule: Schedule | None = None
) -> bool:
    """True once the last window for `file_date` has ended and the file is still not done."""
    instant = _utc(now)
    sched = _schedule(source, schedule)
    windows = windows_for(source, file_date, schedule=sched)
    # A revisions list has no file on most dates by design: its absence is never "late".
    if done or not windows or not sched.expected:
        return False
    return instant >= max(w.end.astimezone(UTC) for w in windows)


def poll_due(
    source: str, now: datetime, last_poll: datetime | None, *, schedule: Schedule | None = None
) -> bool:
    """True inside an active window once poll_seconds have passed since `last_poll` (None = never)."""
    instant = _utc(now)
    sched = _schedule(source, schedule)
    if not active_dates(source, instant, schedule=sched):
        return False
    if last_poll is None:
        return True
    elapsed = (instant - _utc(last_poll, "last_poll")).total_seconds()
    # A last poll "in the future" means the clock moved back: poll rather than stall until it catches up.
    return elapsed >= sched.poll_seconds or elapsed < 0
