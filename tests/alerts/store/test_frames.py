"""FrameStore against a real redis-server: round trips, ranges, fetch state, status, TTLs."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
from redis.asyncio import Redis

from alerts.calendar import HK_TZ
from alerts.sources import get_source
from alerts.store import keys
from alerts.store.frames import FetchState, FrameStore, dump_frame, load_frame, load_frames
from tests.support.paths import fixture_bytes

SFC = get_source("sfc-short-positions")
SFC_FILE = "Short_Position_Reporting_Aggregated_Data_20221202.csv"


async def test_round_trip_keeps_values_and_dtypes(redis: Redis) -> None:
    frame = SFC.parse(fixture_bytes("sfc-short-positions", SFC_FILE))
    store = FrameStore(redis)
    await store.put(SFC.name, {"main": frame}, date(2022, 12, 2))
    back = await store.get(SFC.name, "main", date(2022, 12, 2), SFC.schema)
    assert back is not None
    pd.testing.assert_frame_equal(back, frame.reset_index(drop=True))
    ttl = await redis.ttl(keys.frame(SFC.name, "main", date(2022, 12, 2)))
    assert 0 < ttl <= keys.FRAME_TTL_SECONDS


async def test_load_range_concatenates_dates_in_order(redis: Redis) -> None:
    frame = SFC.parse(fixture_bytes("sfc-short-positions", SFC_FILE))
    store = FrameStore(redis)
    days = [date(2022, 11, 25), date(2022, 12, 2), date(2022, 12, 9)]
    for i, day in enumerate(days):
        shifted = frame.head(3).assign(date=pd.Timestamp(day), short_shares=frame.head(3)["short_shares"] + i)
        await store.put(SFC.name, {"main": shifted}, day)
    got = await store.load_range(SFC.name, SFC.schema, date(2022, 11, 26), date(2022, 12, 31))
    assert list(got["date"].dt.date.unique()) == days[1:]
    assert len(got) == 6
    assert got["short_shares"].iloc[3] == frame["short_shares"].iloc[0] + 2
    assert await store.dates(SFC.name) == days
    assert await store.get(SFC.name, "main", date(2022, 1, 1), SFC.schema) is None
    empty = await store.load_range(SFC.name, SFC.schema, date(2020, 1, 1), date(2020, 2, 1))
    assert empty.empty and list(empty.columns) == list(SFC.schema)


async def test_rows_carry_when_their_file_became_known(redis: Redis) -> None:
    frame = SFC.parse(fixture_bytes("sfc-short-positions", SFC_FILE)).head(2)
    store = FrameStore(redis)
    late = datetime(2022, 11, 25, 14, 30, tzinfo=HK_TZ)
    await store.put(
        SFC.name, {"main": frame.assign(date=pd.Timestamp(2022, 11, 18))}, date(2022, 11, 18), known_at=late
    )
    await store.put(
        SFC.name,
        {"main": frame.assign(date=pd.Timestamp(2022, 11, 18))},
        date(2022, 11, 18),
        known_at=late.replace(day=28),
    )  # a revision keeps the first moment
    await store.put(
        SFC.name, {"main": frame}, date(2022, 12, 2)
    )  # no moment recorded: the schedule's due one
    got = await store.known_range(SFC.name, SFC.schema, date(2022, 11, 1), date(2022, 12, 31))
    assert (
        list(got["published_at"])
        == [pd.Timestamp(late)] * 2 + [pd.Timestamp("2022-12-09 09:00", tz=HK_TZ)] * 2
    )
    assert str(got["published_at"].dtype) == "datetime64[ns, UTC]"


def test_known_at_is_the_due_moment_or_the_fetch_when_later() -> None:
    from alerts.calendar import schedule_for

    quotes = schedule_for("hkex-quotes")
    due = datetime(2025, 11, 21, 17, 30, tzinfo=HK_TZ)
    assert (
        quotes.known_at(date(2025, 11, 21), due.replace(hour=9)) == due
    )  # early (a test clock): never before due
    assert quotes.known_at(date(2025, 11, 21), due.replace(hour=18, minute=2)) == due.replace(
        hour=18, minute=2
    )
    assert (
        quotes.known_at(date(2025, 11, 21), datetime(2026, 1, 5, tzinfo=HK_TZ)) == due
    )  # a backfill: due moment


def test_many_frames_load_as_one_equal_to_loading_each() -> None:
    frame = SFC.parse(fixture_bytes("sfc-short-positions", SFC_FILE))
    parts = [frame.iloc[:5], frame.iloc[5:9], frame.iloc[9:20]]
    blobs = [dump_frame(p) for p in parts]
    each = pd.concat([load_frame(b, SFC.schema) for b in blobs], ignore_index=True)
    pd.testing.assert_frame_equal(load_frames(blobs, SFC.schema), each)
    # A day stored with its columns in another order takes the general path and still lines up by name.
    older = dump_frame(parts[0][list(reversed(parts[0].columns))])
    pd.testing.assert_frame_equal(load_frames([older, *blobs[1:]], SFC.schema), each)
    assert load_frames([], SFC.schema).empty


async def test_fetch_state_and_status(redis: Redis) -> None:
    store = FrameStore(redis)
    url = "http://127.0.0.1:1/x.csv"
    assert await store.fetch_state(url) == FetchState()
    now = datetime(2025, 11, 20, 16, 5, tzinfo=HK_TZ)
    await store.save_fetch_state(url, FetchState('"e1"', "Thu, 20 Nov 2025 08:00:00 GMT", "abc"), now)
    assert await store.fetch_state(url) == FetchState('"e1"', "Thu, 20 Nov 2025 08:00:00 GMT", "abc")
    await store.record_status("hkex-quotes", now, ok=True, detail={"date": "2025-11-20", "rows": "12"})
    await store.record_status("hkex-quotes", now, ok=False, detail={"message": "boom"})
    status = await store.status("hkex-quotes")
    assert status["ok_date"] == "2025-11-20"
    assert status["error_message"] == "boom"
    assert status["ok_at"] == now.isoformat()
