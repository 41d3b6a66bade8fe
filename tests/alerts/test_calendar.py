"""Trading calendar and publication schedules decide whether a file is due for a date."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from alerts.calendar import (
    HK_TZ,
    is_half_day,
    is_session,
    is_week_end_session,
    previous_sessions,
    schedule_for,
    sessions_between,
)


@pytest.mark.parametrize(
    ("day", "session"),
    [
        (date(2025, 11, 20), True),
        (date(2025, 11, 22), False),  # Saturday
        (date(2025, 12, 25), False),  # Christmas
        (date(2025, 12, 26), False),  # Boxing Day
        (date(2025, 4, 18), False),  # Good Friday
        (date(2025, 10, 29), False),  # Chung Yeung
        (date(2025, 12, 24), True),  # half day
    ],
)
def test_sessions(day: date, session: bool) -> None:
    assert is_session(day) is session


def test_half_days() -> None:
    assert is_half_day(date(2025, 12, 24))
    assert is_half_day(date(2025, 12, 31))
    assert not is_half_day(date(2025, 12, 23))
    assert not is_half_day(date(2025, 12, 25))


def test_sessions_between_skips_weekend() -> None:
    assert sessions_between(date(2025, 11, 20), date(2025, 11, 25)) == [
        date(2025, 11, 20),
        date(2025, 11, 21),
        date(2025, 11, 24),
        date(2025, 11, 25),
    ]
    assert previous_sessions(date(2025, 11, 24), 2) == [date(2025, 11, 21), date(2025, 11, 24)]


def test_week_end_is_thursday_before_good_friday() -> None:
    assert is_week_end_session(date(2025, 4, 17))
    assert not is_week_end_session(date(2025, 4, 16))
    assert is_week_end_session(date(2025, 11, 21))


@pytest.mark.parametrize(
    ("source", "now", "expected"),
    [
        ("hkex-short", datetime(2025, 11, 24, 15, 59, tzinfo=HK_TZ), date(2025, 11, 21)),
        ("hkex-short", datetime(2025, 11, 24, 16, 0, tzinfo=HK_TZ), date(2025, 11, 24)),
        ("hkex-short", datetime(2025, 12, 26, 10, 0, tzinfo=HK_TZ), date(2025, 12, 24)),  # two holidays
        ("hkex-short-midday", datetime(2025, 11, 24, 11, 59, tzinfo=HK_TZ), date(2025, 11, 21)),
        ("hkex-short-midday", datetime(2025, 11, 24, 12, 0, tzinfo=HK_TZ), date(2025, 11, 24)),
        (
            "hkex-short-midday",
            datetime(2025, 12, 26, 10, 0, tzinfo=HK_TZ),
            date(2025, 12, 23),
        ),  # 24th: half day
        (
            "hkex-short-midday",
            datetime(2026, 1, 2, 13, 0, tzinfo=HK_TZ),
            date(2026, 1, 2),
        ),  # after New Year's Eve
        ("hkex-southbound", datetime(2025, 11, 25, 5, 59, tzinfo=HK_TZ), date(2025, 11, 21)),
        ("hkex-southbound", datetime(2025, 11, 25, 6, 0, tzinfo=HK_TZ), date(2025, 11, 24)),
        ("sfc-short-positions", datetime(2025, 11, 28, 9, 0, tzinfo=HK_TZ), date(2025, 11, 21)),
        ("sfc-short-positions", datetime(2025, 11, 28, 8, 59, tzinfo=HK_TZ), date(2025, 11, 14)),
        ("hkex-buybacks", datetime(2025, 11, 22, 12, 0, tzinfo=HK_TZ), date(2025, 11, 21)),
    ],
)
def test_latest_due(source: str, now: datetime, expected: date) -> None:
    assert schedule_for(source).latest_due(now) == expected


def test_schedule_rejects_naive_time_and_lists_several_dates() -> None:
    schedule = schedule_for("hkex-quotes")
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.due_dates(datetime(2025, 11, 24, 20, 0), 1)  # noqa: DTZ001 - the point of the test
    assert schedule.due_dates(datetime(2025, 11, 24, 20, 0, tzinfo=HK_TZ), 3) == [
        date(2025, 11, 24),
        date(2025, 11, 21),
        date(2025, 11, 20),
    ]
    assert schedule.published_at(date(2025, 11, 24)).utcoffset().total_seconds() == 8 * 3600  # type: ignore[union-attr]
