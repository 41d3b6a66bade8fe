"""Publication windows: which file dates to poll at an instant, catch-up after downtime, overdue files."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from alerts.calendar import Schedule, schedule_for, schedule_from_row
from alerts.windows import (
    Window,
    active_dates,
    missed,
    next_window_start,
    poll_due,
    window_failed,
    windows_for,
)

HK = ZoneInfo("Asia/Hong_Kong")
NY = ZoneInfo("America/New_York")


def hk(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=HK)


def utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


def span(windows: list[Window]) -> list[tuple[datetime, datetime]]:
    return [(w.start.astimezone(UTC), w.end.astimezone(UTC)) for w in windows]


# A synthetic US source like FINRA's daily short volume: evenings in New York, XNYS sessions.
FINRA_LIKE = schedule_from_row(
    "finra-like",
    {
        "calendar": "XNYS",
        "timezone": "America/New_York",
        "dates": "sessions",
        "publish_after_days": 0,
        "windows": [["18:00", "22:00"]],
        "poll_seconds": 30,
    },
)
# A window across the autumn DST change (Sunday 2 Nov 2025, 02:00 EDT -> 01:00 EST), for poll cadence.
OVERNIGHT = schedule_from_row(
    "overnight",
    {
        "calendar": "XNYS",
        "timezone": "America/New_York",
        "dates": "sessions",
        "publish_after_days": 2,
        "windows": [["00:30", "03:00"]],
    },
)


# --- configuration ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "windows", "publish_time", "retry_days"),
    [
        ("hkex-short", [("16:00", "16:50")], "16:00", 0),
        ("hkex-short-midday", [("12:00", "12:45")], "12:00", 0),
        ("hkex-quotes", [("17:30", "23:30")], "17:30", 0),
        ("hkex-di", [("17:00", "19:30")], "17:00", 0),
        ("hkex-buybacks", [("06:00", "09:30"), ("16:30", "23:00")], "06:00", 0),
        ("hkex-southbound", [("06:00", "10:30")], "06:00", 0),
        ("sfc-short-positions", [("09:00", "20:00")], "09:00", 7),
    ],
)
def test_configured_windows(
    source: str, windows: list[tuple[str, str]], publish_time: str, retry_days: int
) -> None:
    schedule = schedule_for(source)
    assert [(f"{a:%H:%M}", f"{b:%H:%M}") for a, b in schedule.windows] == windows
    assert f"{schedule.publish_time:%H:%M}" == publish_time
    assert (schedule.retry_days, schedule.poll_seconds) == (retry_days, 20)


def test_stock_connect_daily_polls_every_minute_until_seven_and_retries_a_day() -> None:
    schedule = schedule_for("hkex-stock-connect-daily")
    assert [(f"{a:%H:%M}", f"{b:%H:%M}") for a, b in schedule.windows] == [("17:30", "19:00")]
    assert (f"{schedule.publish_time:%H:%M}", schedule.retry_days, schedule.poll_seconds) == ("17:30", 1, 60)


def test_row_without_windows_polls_from_publish_time_to_midnight_and_publish_time_is_derived() -> None:
    row: dict[str, object] = {
        "calendar": "XHKG",
        "timezone": "Asia/Hong_Kong",
        "dates": "sessions",
        "publish_after_days": 0,
        "publish_time": "18:00",
    }
    assert span(windows_for("plain", date(2025, 11, 24), schedule=schedule_from_row("plain", row))) == [
        (utc(2025, 11, 24, 10), utc(2025, 11, 24, 16))
    ]
    assert FINRA_LIKE.publish_time.hour == 18
    assert (FINRA_LIKE.poll_seconds, FINRA_LIKE.retry_days) == (30, 0)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"publish_time": "17:00", "windows": [["17:30", "23:30"]]}, "must equal the first window start"),
        ({"windows": [["17:30", "17:30"]]}, "empty window"),
        ({"windows": [["17:30", "23:30"], ["06:00", "09:00"]]}, "in order of their start"),
        ({"windows": [["1730", "23:30"]]}, "expected HH:MM"),
        ({"windows": []}, "non-empty"),
        ({"windows": [["17:30", "23:30"]], "poll_seconds": 0}, "poll_seconds"),
        ({}, "needs publish_time or windows"),
    ],
)
def test_bad_rows_are_rejected(extra: dict[str, object], message: str) -> None:
    row: dict[str, object] = {
        "calendar": "XHKG",
        "timezone": "Asia/Hong_Kong",
        "dates": "sessions",
        "publish_after_days": 0,
        **extra,
    }
    with pytest.raises(ValueError, match=message):
        schedule_from_row("bad", row)


# --- windows_for --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "file_date", "expected"),
    [
        pytest.param(
            "hkex-short",
            date(2025, 11, 24),
            [(utc(2025, 11, 24, 8), utc(2025, 11, 24, 8, 50))],
            id="normal-session",
        ),
        pytest.param("hkex-short", date(2025, 11, 22), [], id="saturday"),
        pytest.param("hkex-short", date(2025, 12, 25), [], id="christmas"),
        pytest.param("hkex-short", date(2025, 4, 18), [], id="good-friday"),
        pytest.param(
            "hkex-short",
            date(2025, 12, 24),
            [(utc(2025, 12, 24, 8), utc(2025, 12, 24, 8, 50))],
            id="christmas-eve-half-day",
        ),
        pytest.param(
            "hkex-short",
            date(2025, 1, 28),
            [(utc(2025, 1, 28, 8), utc(2025, 1, 28, 8, 50))],
            id="lunar-new-year-eve",
        ),
        pytest.param("hkex-short", date(2025, 1, 29), [], id="lunar-new-year"),
        pytest.param(
            "hkex-short-midday",
            date(2025, 11, 24),
            [(utc(2025, 11, 24, 4), utc(2025, 11, 24, 4, 45))],
            id="midday-normal-session",
        ),
        pytest.param("hkex-short-midday", date(2025, 11, 22), [], id="midday-saturday"),
        pytest.param("hkex-short-midday", date(2025, 12, 25), [], id="midday-christmas"),
        # Half days close at noon: no morning close of their own, no midday page expected.
        pytest.param("hkex-short-midday", date(2025, 12, 24), [], id="midday-christmas-eve-half-day"),
        pytest.param("hkex-short-midday", date(2025, 12, 31), [], id="midday-new-years-eve-half-day"),
        pytest.param("hkex-short-midday", date(2025, 1, 28), [], id="midday-lunar-new-year-eve-half-day"),
        pytest.param(
            "hkex-short-midday",
            date(2025, 12, 23),
            [(utc(2025, 12, 23, 4), utc(2025, 12, 23, 4, 45))],
            id="midday-day-before-half-day",
        ),
        pytest.param(
            "hkex-quotes",
            date(2025, 11, 24),
            [(utc(2025, 11, 24, 9, 30), utc(2025, 11, 24, 15, 30))],
            id="quotes",
        ),
        pytest.param(
            "hkex-di", date(2025, 11, 24), [(utc(2025, 11, 24, 9), utc(2025, 11, 24, 11, 30))], id="di"
        ),
        pytest.param(
            "hkex-buybacks",
            date(2025, 11, 24),
            [
                (utc(2025, 11, 23, 22), utc(2025, 11, 24, 1, 30)),
                (utc(2025, 11, 24, 8, 30), utc(2025, 11, 24, 15)),
            ],
            id="buybacks-two-windows",
        ),
        pytest.param(
            "hkex-southbound",
            date(2025, 11, 21),
            [(utc(2025, 11, 21, 22), utc(2025, 11, 22, 2, 30))],
            id="southbound-friday-on-saturday",
        ),
        pytest.param("hkex-southbound", date(2025, 11, 22), [], id="southbound-saturday"),
        pytest.param("sfc-short-positions", date(2025, 4, 18), [], id="sfc-good-friday"),
        pytest.param("sfc-short-positions", date(2025, 4, 16), [], id="sfc-not-week-end"),
    ],
)
def test_windows_for(source: str, file_date: date, expected: list[tuple[datetime, datetime]]) -> None:
    windows = windows_for(source, file_date)
    assert span(windows) == expected
    assert all(w.source == source and w.file_date == file_date for w in windows)
    assert all(w.start.tzinfo == HK and w.end.tzinfo == HK for w in windows)


def test_sfc_week_end_before_good_friday_retries_for_eight_days() -> None:
    windows = windows_for("sfc-short-positions", date(2025, 4, 17))
    assert len(windows) == 8
    assert span(windows)[0] == (utc(2025, 4, 24, 1), utc(2025, 4, 24, 12))
    assert span(windows)[-1] == (utc(2025, 5, 1, 1), utc(2025, 5, 1, 12))
    # Every calendar day, weekend (26-27 Apr) and Labour Day (1 May) included.
    assert [w.start.date() for w in windows] == [date(2025, 4, 24) + timedelta(days=i) for i in range(8)]


# --- active_dates -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "now", "expected"),
    [
        ("hkex-short", hk(2025, 11, 24, 15, 59, 59), []),
        ("hkex-short", hk(2025, 11, 24, 16), [date(2025, 11, 24)]),  # start inclusive
        ("hkex-short", utc(2025, 11, 24, 8), [date(2025, 11, 24)]),  # same instant in UTC
        ("hkex-short", hk(2025, 11, 24, 16, 49, 59), [date(2025, 11, 24)]),
        ("hkex-short", hk(2025, 11, 24, 16, 50), []),  # end exclusive
        ("hkex-short", hk(2025, 11, 22, 16, 10), []),  # Saturday
        ("hkex-short", hk(2025, 12, 25, 16, 10), []),  # Christmas
        ("hkex-short-midday", hk(2025, 11, 24, 11, 59, 59), []),
        ("hkex-short-midday", hk(2025, 11, 24, 12), [date(2025, 11, 24)]),
        ("hkex-short-midday", hk(2025, 11, 24, 12, 44, 59), [date(2025, 11, 24)]),
        ("hkex-short-midday", hk(2025, 11, 24, 12, 45), []),
        ("hkex-short-midday", hk(2025, 12, 24, 12, 10), []),  # half day
        ("hkex-buybacks", hk(2025, 11, 24, 9, 29), [date(2025, 11, 24)]),
        ("hkex-buybacks", hk(2025, 11, 24, 9, 30), []),
        ("hkex-buybacks", hk(2025, 11, 24, 16, 30), [date(2025, 11, 24)]),
        ("hkex-southbound", hk(2025, 11, 22, 6), [date(2025, 11, 21)]),  # Saturday morning, Friday's file
        ("hkex-southbound", hk(2025, 11, 24, 6), []),  # Monday morning: no file for Sunday
        ("sfc-short-positions", hk(2025, 4, 27, 12), [date(2025, 4, 17)]),  # retry on a Sunday
        ("sfc-short-positions", hk(2025, 4, 27, 20), []),
        ("sfc-short-positions", hk(2025, 5, 2, 9), [date(2025, 4, 25)]),
        # The last retry day of one week is the first day of the next: both, oldest first.
        ("sfc-short-positions", hk(2025, 11, 28, 10), [date(2025, 11, 14), date(2025, 11, 21)]),
    ],
)
def test_active_dates(source: str, now: datetime, expected: list[date]) -> None:
    assert active_dates(source, now) == expected


# --- poll_due -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "last_poll", "expected"),
    [
        (hk(2025, 11, 24, 16), None, True),
        (hk(2025, 11, 24, 15, 59, 59), None, False),  # before the window
        (hk(2025, 11, 24, 16, 50), None, False),  # window over
        (hk(2025, 11, 24, 16, 0, 20), hk(2025, 11, 24, 16), True),  # exactly poll_seconds
        (hk(2025, 11, 24, 16, 0, 19), hk(2025, 11, 24, 16), False),
        (hk(2025, 11, 24, 16, 0, 19), utc(2025, 11, 24, 7, 59), True),  # last poll given in UTC
        (hk(2025, 11, 24, 16, 49, 59), hk(2025, 11, 24, 16, 49, 40), False),
        (hk(2025, 11, 24, 16, 10), hk(2025, 11, 24, 16, 20), True),  # clock moved back: do not stall
    ],
)
def test_poll_due(now: datetime, last_poll: datetime | None, expected: bool) -> None:
    assert poll_due("hkex-short", now, last_poll) is expected


def test_poll_cadence_in_a_window() -> None:
    start = hk(2025, 11, 24, 16)
    polls: list[datetime] = []
    for second in range(0, 60 * 60, 5):
        now = start + timedelta(seconds=second)
        if poll_due("hkex-short", now, polls[-1] if polls else None):
            polls.append(now)
    assert len(polls) == 150  # 50 minutes at one poll per 20 s
    assert (polls[0], polls[-1]) == (start, hk(2025, 11, 24, 16, 49, 40))


# --- next_window_start --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "now", "expected"),
    [
        ("hkex-short", hk(2025, 11, 21, 17), hk(2025, 11, 24, 16)),  # weekend
        ("hkex-short", hk(2025, 11, 24, 16), hk(2025, 11, 25, 16)),  # strictly after
        ("hkex-short", hk(2025, 11, 24, 15, 59), hk(2025, 11, 24, 16)),
        ("hkex-short", hk(2025, 12, 24, 17), hk(2025, 12, 29, 16)),  # Christmas and weekend
        ("hkex-short", hk(2025, 1, 28, 17), hk(2025, 2, 3, 16)),  # Lunar New Year
        ("hkex-short", hk(2025, 4, 17, 17), hk(2025, 4, 22, 16)),  # Easter: Good Friday to Easter Monday
        ("hkex-short-midday", hk(2025, 11, 24, 12, 45), hk(2025, 11, 25, 12)),
        ("hkex-short-midday", hk(2025, 12, 23, 13), hk(2025, 12, 29, 12)),  # half day, Christmas, weekend
        ("hkex-short-midday", hk(2025, 1, 27, 13), hk(2025, 2, 3, 12)),  # Lunar New Year's Eve half day
        ("hkex-buybacks", hk(2025, 11, 24, 10), hk(2025, 11, 24, 16, 30)),  # second window the same day
        ("hkex-buybacks", hk(2025, 11, 21, 23), hk(2025, 11, 24, 6)),
        ("hkex-southbound", hk(2025, 11, 21, 12), hk(2025, 11, 22, 6)),  # Saturday morning
        ("hkex-southbound", hk(2025, 11, 22, 11), hk(2025, 11, 25, 6)),  # Monday's file on Tuesday
        ("sfc-short-positions", hk(2025, 4, 24, 21), hk(2025, 4, 25, 9)),  # a retry day
        ("sfc-short-positions", hk(2025, 5, 1, 21), hk(2025, 5, 2, 9)),
    ],
)
def test_next_window_start(source: str, now: datetime, expected: datetime) -> None:
    found = next_window_start(source, now)
    assert found == expected
    assert found.tzinfo == HK


# --- missed -------------------------------------------------------------------------------------------------


def done_until(last: date, *extra: date) -> set[date]:
    """Dates processed before the bot went down, plus any processed since."""
    return {last - timedelta(days=i) for i in range(60)} | set(extra)


@pytest.mark.parametrize(
    ("source", "now", "done", "lookback", "expected"),
    [
        pytest.param(
            "hkex-short",
            hk(2025, 11, 24, 10),
            done_until(date(2025, 11, 18)),
            5,
            [date(2025, 11, 19), date(2025, 11, 20), date(2025, 11, 21)],
            id="three-days-down",
        ),
        pytest.param(
            "hkex-short",
            hk(2025, 11, 24, 16, 10),
            done_until(date(2025, 11, 18)),
            5,
            [date(2025, 11, 19), date(2025, 11, 20), date(2025, 11, 21), date(2025, 11, 24)],
            id="open-window-included",
        ),
        pytest.param(
            "hkex-short",
            hk(2025, 11, 24, 10),
            done_until(date(2025, 11, 18), date(2025, 11, 20)),
            5,
            [date(2025, 11, 19), date(2025, 11, 21)],
            id="done-excluded",
        ),
        pytest.param(
            "hkex-short",
            hk(2025, 11, 24, 10),
            done_until(date(2025, 11, 18)),
            2,
            [date(2025, 11, 20), date(2025, 11, 21)],
            id="lookback-limit",
        ),
        pytest.param("hkex-short", hk(2025, 11, 24, 10), set(), 0, [], id="no-lookback"),
        pytest.param(
            "hkex-short", hk(2025, 11, 24, 10), done_until(date(2025, 11, 21)), 5, [], id="up-to-date"
        ),
        pytest.param(
            "hkex-short",
            hk(2025, 12, 29, 10),
            set(),
            3,
            [date(2025, 12, 22), date(2025, 12, 23), date(2025, 12, 24)],
            id="over-christmas",
        ),
        pytest.param(
            "hkex-short-midday",
            hk(2025, 12, 29, 10),
            set(),
            3,
            [date(2025, 12, 19), date(2025, 12, 22), date(2025, 12, 23)],
            id="midday-skips-half-day",
        ),
        pytest.param(
            "hkex-southbound",
            hk(2025, 11, 22, 5, 59),
            set(),
            2,
            [date(2025, 11, 19), date(2025, 11, 20)],
            id="southbound-before-saturday-window",
        ),
        pytest.param(
            "hkex-southbound",
            hk(2025, 11, 22, 6),
            set(),
            2,
            [date(2025, 11, 20), date(2025, 11, 21)],
            id="southbound-saturday-window",
        ),
        pytest.param(
            "sfc-short-positions",
            hk(2025, 11, 28, 8, 59),
            set(),
            2,
            [date(2025, 11, 7), date(2025, 11, 14)],
            id="sfc-before-publication",
        ),
        pytest.param(
            "sfc-short-positions",
            hk(2025, 11, 28, 9),
            set(),
            2,
            [date(2025, 11, 14), date(2025, 11, 21)],
            id="sfc-on-publication",
        ),
    ],
)
def test_missed(source: str, now: datetime, done: set[date], lookback: int, expected: list[date]) -> None:
    assert missed(source, now, done.__contains__, lookback) == expected


def test_missed_default_lookback_is_five_dates_with_a_file() -> None:
    assert missed("hkex-short", hk(2025, 11, 24, 10), lambda _day: False) == [
        date(2025, 11, 17),
        date(2025, 11, 18),
        date(2025, 11, 19),
        date(2025, 11, 20),
        date(2025, 11, 21),
    ]


# --- window_failed ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "file_date", "now", "done", "expected"),
    [
        # A typhoon-style day: the calendar says session, the file never comes.
        ("hkex-short", date(2025, 11, 24), hk(2025, 11, 24, 16, 49, 59), False, False),
        ("hkex-short", date(2025, 11, 24), hk(2025, 11, 24, 16, 50), False, True),
        ("hkex-short", date(2025, 11, 24), hk(2025, 11, 25, 9), False, True),
        ("hkex-short", date(2025, 11, 24), hk(2025, 11, 24, 16, 50), True, False),
        ("hkex-short", date(2025, 11, 24), hk(2025, 11, 24, 12), False, False),
        ("hkex-short", date(2025, 11, 22), hk(2025, 11, 24, 12), False, False),  # no file for Saturday
        ("hkex-short-midday", date(2025, 11, 24), hk(2025, 11, 24, 12, 45), False, True),
        ("hkex-short-midday", date(2025, 12, 24), hk(2025, 12, 24, 13), False, False),  # half day: none due
        ("hkex-buybacks", date(2025, 11, 24), hk(2025, 11, 24, 10), False, False),  # evening window to come
        ("hkex-buybacks", date(2025, 11, 24), hk(2025, 11, 24, 23), False, True),
        ("hkex-southbound", date(2025, 11, 21), hk(2025, 11, 22, 10, 30), False, True),
        ("sfc-short-positions", date(2025, 4, 17), hk(2025, 4, 24, 20), False, False),  # retries left
        ("sfc-short-positions", date(2025, 4, 17), hk(2025, 5, 1, 19, 59), False, False),
        ("sfc-short-positions", date(2025, 4, 17), hk(2025, 5, 1, 20), False, True),
    ],
)
def test_window_failed(source: str, file_date: date, now: datetime, done: bool, expected: bool) -> None:
    assert window_failed(source, file_date, now, done) is expected


# --- a US schedule across DST -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file_date", "expected"),
    [
        pytest.param(date(2025, 3, 7), [(utc(2025, 3, 7, 23), utc(2025, 3, 8, 3))], id="est"),
        pytest.param(date(2025, 3, 10), [(utc(2025, 3, 10, 22), utc(2025, 3, 11, 2))], id="edt"),
        pytest.param(date(2025, 10, 31), [(utc(2025, 10, 31, 22), utc(2025, 11, 1, 2))], id="edt-autumn"),
        pytest.param(date(2025, 11, 3), [(utc(2025, 11, 3, 23), utc(2025, 11, 4, 3))], id="est-fall-back"),
        pytest.param(date(2025, 7, 3), [(utc(2025, 7, 3, 22), utc(2025, 7, 4, 2))], id="half-day"),
        pytest.param(date(2025, 7, 4), [], id="independence-day"),
        pytest.param(date(2025, 3, 8), [], id="saturday"),
    ],
)
def test_us_windows_follow_dst(file_date: date, expected: list[tuple[datetime, datetime]]) -> None:
    windows = windows_for("finra-like", file_date, schedule=FINRA_LIKE)
    assert span(windows) == expected
    assert all(w.start.tzinfo == NY for w in windows)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2025, 3, 7, 22, 30), []),  # 17:30 EST
        (utc(2025, 3, 7, 23), [date(2025, 3, 7)]),
        (utc(2025, 3, 10, 21, 59), []),  # 17:59 EDT
        (utc(2025, 3, 10, 22), [date(2025, 3, 10)]),
        (datetime(2025, 3, 10, 18, 0, tzinfo=NY), [date(2025, 3, 10)]),
        (utc(2025, 3, 11, 2), []),  # 22:00 EDT
        (utc(2025, 7, 4, 23), []),  # holiday
    ],
)
def test_us_active_dates(now: datetime, expected: list[date]) -> None:
    assert active_dates("finra-like", now, schedule=FINRA_LIKE) == expected


def test_us_next_window_and_catch_up_over_the_dst_weekend() -> None:
    found = next_window_start("finra-like", utc(2025, 3, 8, 3), schedule=FINRA_LIKE)
    assert found.astimezone(UTC) == utc(2025, 3, 10, 22)
    assert found.tzinfo == NY
    assert next_window_start("finra-like", utc(2025, 7, 3, 23), schedule=FINRA_LIKE).astimezone(UTC) == utc(
        2025, 7, 7, 22
    )
    assert missed("finra-like", utc(2025, 3, 10, 22), lambda _d: False, 3, schedule=FINRA_LIKE) == [
        date(2025, 3, 6),
        date(2025, 3, 7),
        date(2025, 3, 10),
    ]
    assert missed("finra-like", utc(2025, 3, 10, 21, 59), lambda _d: False, 3, schedule=FINRA_LIKE) == [
        date(2025, 3, 5),
        date(2025, 3, 6),
        date(2025, 3, 7),
    ]
    day = date(2025, 11, 3)  # EST: 22:00 local is 03:00 UTC
    assert window_failed("finra-like", day, utc(2025, 11, 4, 2, 59), False, schedule=FINRA_LIKE) is False
    assert window_failed("finra-like", day, utc(2025, 11, 4, 3), False, schedule=FINRA_LIKE) is True


def test_poll_cadence_counts_real_seconds_across_the_fall_back() -> None:
    # Friday 31 Oct's file, polled on Sunday 2 Nov 00:30 EDT - 03:00 EST (3.5 hours of real time).
    (window,) = windows_for("overnight", date(2025, 10, 31), schedule=OVERNIGHT)
    assert (window.end - window.start) != timedelta(hours=3.5)  # wall-clock arithmetic would be wrong here
    assert window.end.astimezone(UTC) - window.start.astimezone(UTC) == timedelta(hours=3.5)
    last = datetime(2025, 11, 2, 1, 59, 50, tzinfo=NY)  # EDT, before the change
    fifteen_s_later = datetime(2025, 11, 2, 1, 0, 5, fold=1, tzinfo=NY)  # EST, after the change
    twenty_s_later = datetime(2025, 11, 2, 1, 0, 10, fold=1, tzinfo=NY)
    assert poll_due("overnight", fifteen_s_later, last, schedule=OVERNIGHT) is False
    assert poll_due("overnight", twenty_s_later, last, schedule=OVERNIGHT) is True
    assert active_dates("overnight", datetime(2025, 11, 2, 2, 59, tzinfo=NY), schedule=OVERNIGHT) == [
        date(2025, 10, 31)
    ]


def test_window_ending_in_the_repeated_hour_ends_at_its_first_occurrence() -> None:
    # 01:30 on the fall-back night is EDT (fold=0); 01:10 EST comes after it in real time.
    row: dict[str, object] = {
        "calendar": "XNYS",
        "timezone": "America/New_York",
        "dates": "sessions",
        "publish_after_days": 2,
        "windows": [["00:30", "01:30"]],
    }
    schedule = schedule_from_row("short-night", row)
    first_pass = datetime(2025, 11, 2, 1, 10, tzinfo=NY)
    second_pass = datetime(2025, 11, 2, 1, 10, fold=1, tzinfo=NY)
    assert active_dates("short-night", first_pass, schedule=schedule) == [date(2025, 10, 31)]
    assert active_dates("short-night", second_pass, schedule=schedule) == []
    assert window_failed("short-night", date(2025, 10, 31), second_pass, False, schedule=schedule) is True
    (window,) = windows_for("short-night", date(2025, 10, 31), schedule=schedule)
    assert window.contains(first_pass) and not window.contains(second_pass)


# --- errors -------------------------------------------------------------------------------------------------

NAIVE = datetime(2025, 11, 24, 16, 10)  # noqa: DTZ001 - the point of these tests


@pytest.mark.parametrize(
    "call",
    [
        lambda: active_dates("hkex-short", NAIVE),
        lambda: next_window_start("hkex-short", NAIVE),
        lambda: missed("hkex-short", NAIVE, lambda _d: False),
        lambda: window_failed("hkex-short", date(2025, 11, 24), NAIVE, False),
        lambda: poll_due("hkex-short", NAIVE, None),
        lambda: poll_due("hkex-short", hk(2025, 11, 24, 16, 10), NAIVE),
        lambda: windows_for("hkex-short", date(2025, 11, 24))[0].contains(NAIVE),
    ],
)
def test_naive_datetimes_are_rejected(call) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call()


def test_no_window_within_the_calendar_is_a_lookup_error() -> None:
    # exchange_calendars' XHKG starts about 20 years back, so 1990 has no sessions for 800 days.
    with pytest.raises(LookupError, match="no window"):
        next_window_start("hkex-short", hk(1990, 1, 1))


def test_schedule_for_another_source_is_rejected() -> None:
    with pytest.raises(ValueError, match="finra-like"):
        windows_for("hkex-short", date(2025, 11, 24), schedule=FINRA_LIKE)


def test_schedule_type_is_the_calendar_one() -> None:
    assert isinstance(FINRA_LIKE, Schedule)
    assert FINRA_LIKE.timezone == NY and FINRA_LIKE.calendar == "XNYS"


# --- a revisions list (hkex-shortable-list): most sessions have no file, and that is not late ---------------------


def test_revisions_list_polls_every_session_but_is_never_late() -> None:
    sched = schedule_for("hkex-shortable-list")
    assert sched.dates == "revisions" and sched.expected is False
    assert schedule_for("hkex-short").expected is True
    day = date(2025, 11, 27)  # a Thursday session
    assert sched.has_file(day) and not sched.has_file(date(2025, 11, 29))  # a Saturday
    assert span(windows_for("hkex-shortable-list", day)) == [
        (hk(2025, 11, 27, 8), hk(2025, 11, 27, 9, 30)),
        (hk(2025, 11, 27, 18), hk(2025, 11, 27, 20)),
    ]
    assert active_dates("hkex-shortable-list", hk(2025, 11, 27, 8, 30)) == [day]
    # After the last window the file is still missing: for a revisions list that is the normal case.
    assert window_failed("hkex-shortable-list", day, hk(2025, 11, 28, 12), False) is False
    assert window_failed("hkex-short", day, hk(2025, 11, 28, 12), False) is True


def test_index_reviews_poll_every_session_evening_and_are_never_late() -> None:
    sched = schedule_for("hsi-index-reviews")
    assert sched.dates == "revisions" and sched.expected is False and sched.poll_seconds == 300
    day = date(2026, 5, 22)  # the Friday of a review announcement; any session is polled the same way
    assert span(windows_for("hsi-index-reviews", day)) == [(hk(2026, 5, 22, 17, 45), hk(2026, 5, 22, 19, 30))]
    assert active_dates("hsi-index-reviews", hk(2026, 5, 22, 18)) == [day]
    assert active_dates("hsi-index-reviews", hk(2026, 5, 22, 19, 30)) == []
    assert windows_for("hsi-index-reviews", date(2026, 5, 23)) == []  # a Saturday
    assert window_failed("hsi-index-reviews", day, hk(2026, 5, 23, 12), False) is False
