"""A cycle end to end: local origin → parse → Redis → rules → alert log → routing → outbox; idempotent."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from alerts.backfill import record_history
from alerts.calendar import HK_TZ, sessions_between
from alerts.fetch import make_client
from alerts.ingest import ingest
from alerts.pipeline import is_done, run_cycle
from alerts.sources import get_source
from alerts.store.alertlog import AlertLog
from alerts.store.frames import FrameStore
from alerts.store.outbox import Outbox
from alerts.store.subscriptions import SubscriptionStore
from bot.demo import demo_root
from config.settings import Settings
from tests.support.bothelpers import seed_demo
from tests.support.origin import Origin

DAY = date(2025, 11, 27)
PATH = "/eng/stat/smstat/dayquot/d251127e.htm"
NOW = datetime(2025, 11, 27, 18, 5, tzinfo=HK_TZ)
CHAT = 42


@pytest.fixture
async def seeded(redis: Redis, origin: Origin) -> Redis:
    await seed_demo(redis, exclude=frozenset({("hkex-quotes", DAY)}))
    subs = SubscriptionStore(redis)
    await subs.touch(CHAT)
    await subs.watch(CHAT, ["00700"])
    await subs.set_market(CHAT, True)
    origin.add(PATH, (demo_root() / PATH.lstrip("/")).read_bytes(), etag='"q1"')
    return redis


async def _cycle(settings: Settings, redis: Redis) -> object:
    async with make_client() as client:
        return await run_cycle(
            "hkex-quotes", DAY, settings=settings, client=client, redis=redis, now=NOW, backoff=0.01
        )


async def test_cycle_fires_routes_and_is_idempotent(
    settings: Settings, seeded: Redis, origin: Origin
) -> None:
    first = await _cycle(settings, seeded)
    assert first.status == "processed"
    assert first.rows > 0 and first.enqueued == 1
    assert first.lag_s == pytest.approx(35 * 60)  # published expected from 17:30 HKT
    (item,) = await Outbox(seeded).claim(NOW, 10)
    rules = sorted((a["rule"], a["code"]) for a in item.alerts)
    assert rules == [("market_short_swing", "MARKET"), ("short_ratio_drop", "00700")]
    assert await is_done(seeded, "hkex-quotes", DAY)
    logged = await AlertLog(seeded).for_day(DAY)
    assert {a.code for a in logged} >= {"00700", "09988", "MARKET"}

    second = await _cycle(settings, seeded)
    assert second.status == "unchanged" and second.enqueued == 0

    # HKEX revises the file: data are replaced, the same alerts are not sent again.
    route = origin.routes[PATH]
    route.body = route.body.replace(b"DATE: 27 NOV 2025", b"DATE: 27 NOV 2025 ")
    route.etag = '"q2"'
    third = await _cycle(settings, seeded)
    assert third.status == "processed" and third.new_alerts == 0 and third.enqueued == 0


async def test_crash_between_store_and_route_is_finished_by_the_next_cycle(
    settings: Settings, seeded: Redis, origin: Origin
) -> None:
    async with make_client() as client:  # the first process stored the file, then died before routing
        await ingest(
            get_source("hkex-quotes"),
            DAY,
            settings=settings,
            client=client,
            store=FrameStore(seeded),
            now=NOW,
        )
    assert not await is_done(seeded, "hkex-quotes", DAY)
    report = await _cycle(settings, seeded)
    assert report.status == "processed" and report.enqueued == 1
    assert await is_done(seeded, "hkex-quotes", DAY)


async def test_a_live_cycle_for_a_backfilled_day_pushes_nothing(
    settings: Settings, seeded: Redis, origin: Origin
) -> None:
    # A backfill fetched the file of 27/11 (over the local origin) and recorded the span's alerts as history.
    async with make_client() as client:
        await ingest(
            get_source("hkex-quotes"),
            DAY,
            settings=settings,
            client=client,
            store=FrameStore(seeded),
            now=NOW,
        )
    record = await record_history(seeded, date(2025, 11, 24), DAY, NOW)
    found = {(a.rule, a.code) for _, a in record.result.alerts if a.trade_date == DAY}
    assert {("short_ratio_drop", "00700"), ("market_short_swing", "MARKET")} <= found
    # The live cycle for the same file later (the start-up catch-up, or the scheduler) pushes none of them.
    report = await _cycle(settings, seeded)
    assert report.status == "processed" and report.alerts > 0
    assert report.enqueued == 0 and report.new_alerts == 0 and report.historical == report.alerts
    assert await Outbox(seeded).pending() == 0
    assert [k async for k in seeded.scan_iter("pb:routed:*")] == []
    logged = {(e.alert.rule, e.alert.code): e for e in await AlertLog(seeded).logged_day(DAY)}
    assert logged[("short_ratio_drop", "00700")].historical


async def test_history_recorded_before_a_file_came_does_not_hold_back_its_alerts(
    settings: Settings, seeded: Redis, origin: Origin
) -> None:
    record = await record_history(seeded, date(2025, 11, 24), DAY, NOW)  # the file of 27/11 is not stored yet
    assert record.recorded.new > 0
    assert not any(a.trade_date == DAY and a.rule == "short_ratio_drop" for _, a in record.result.alerts)
    report = await _cycle(settings, seeded)  # a genuinely new alert is pushed
    assert report.status == "processed" and report.enqueued == 1
    (item,) = await Outbox(seeded).claim(NOW, 10)
    pushed = {(a["rule"], a["code"]) for a in item.alerts}
    assert {("short_ratio_drop", "00700"), ("market_short_swing", "MARKET")} <= pushed
    logged = {(e.alert.rule, e.alert.code): e for e in await AlertLog(seeded).logged_day(DAY)}
    assert not logged[("short_ratio_drop", "00700")].historical
    again = await record_history(
        seeded, date(2025, 11, 24), DAY, NOW
    )  # a backfill afterwards relabels nothing
    assert again.recorded.new == 0 and again.recorded.live >= 2
    logged = {(e.alert.rule, e.alert.code): e for e in await AlertLog(seeded).logged_day(DAY)}
    assert not logged[("short_ratio_drop", "00700")].historical


async def test_missing_and_malformed_files(settings: Settings, seeded: Redis, origin: Origin) -> None:
    del origin.routes[PATH]
    missing = await _cycle(settings, seeded)
    assert missing.status == "not_published" and "404" in missing.error
    origin.add(PATH, b"<html><title>404 Not Found</title></html>")
    broken = await _cycle(settings, seeded)
    assert broken.status == "malformed"
    assert not await is_done(seeded, "hkex-quotes", DAY)
    assert await Outbox(seeded).pending() == 0
    assert "status=malformed" in broken.line()


async def test_poll_cli_runs_a_cycle_and_delivers(
    settings: Settings, seeded: Redis, origin: Origin, redis_url: str, tmp_path: object
) -> None:
    import asyncio

    from tests.support.botapi import BotApi
    from tests.support.bothelpers import TOKEN
    from tests.support.cli import run_cli

    with BotApi() as api:
        env = {
            "HKEX_URL": origin.url,
            "REDIS_URL": redis_url,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": api.base_url,
            "CLOCK_START": "2025-11-27T18:05:00+08:00",
        }
        result = await asyncio.to_thread(
            run_cli, "poll", "hkex-quotes", "--date", "2025-11-27", "--deliver", env=env, cwd=tmp_path
        )  # type: ignore[arg-type]
        assert result.returncode == 0, result.stderr
        assert "cycle source=hkex-quotes date=2025-11-27 status=processed" in result.stdout
        assert "delivered 1 message(s)" in result.stdout
        (message,) = api.messages(CHAT)
        assert (
            "Short-selling ratio drop" in message["text"]
            and "Market-wide short selling swing" in message["text"]
        )
        again = await asyncio.to_thread(
            run_cli, "poll", "hkex-quotes", "--date", "2025-11-27", "--deliver", env=env, cwd=tmp_path
        )  # type: ignore[arg-type]
        assert "status=unchanged" in again.stdout and "delivered 0 message(s)" in again.stdout
        assert len(api.messages(CHAT)) == 1


async def test_cycles_of_several_sources_evaluate_one_at_a_time(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    # The scheduler fetches sources at once; their evaluations share a lock so that each sees the alerts the
    # others logged (a confluence joins alerts of different sources). Fetch and evaluation are stood in for.
    import asyncio

    import alerts.pipeline as pipeline
    from alerts.ingest import IngestReport

    running, overlaps, order = 0, 0, []

    async def fake_ingest(source: object, day: date, **_: object) -> IngestReport:
        await asyncio.sleep(0.01)
        return IngestReport(getattr(source, "name", ""), day, "stored", {"main": 1})

    async def fake_evaluate(report: object, **_: object) -> object:
        nonlocal running, overlaps
        running += 1
        overlaps += running > 1
        order.append(getattr(report, "source", ""))
        await asyncio.sleep(0.05)
        running -= 1
        return report

    monkeypatch.setattr(pipeline, "ingest", fake_ingest)
    monkeypatch.setattr(pipeline, "evaluate_and_route", fake_evaluate)
    lock, now = asyncio.Lock(), datetime(2025, 11, 20, 18, 0, tzinfo=HK_TZ)
    names = ("hkex-quotes", "hkex-buybacks", "sfc-short-positions")
    reports = await asyncio.gather(
        *(
            run_cycle(
                name,
                date(2025, 11, 20),
                settings=settings,
                client=None,  # type: ignore[arg-type]
                redis=None,
                now=now,
                evaluation=lock,
            )
            for name in names
        )
    )  # type: ignore[arg-type]
    assert [r.status for r in reports] == ["processed"] * 3
    assert sorted(order) == sorted(names)
    assert overlaps == 0
    # Without the shared lock the same cycles overlap: the test can tell.
    order.clear()
    await asyncio.gather(
        *(
            run_cycle(
                name,
                date(2025, 11, 20),
                settings=settings,
                client=None,  # type: ignore[arg-type]
                redis=None,
                now=now,
            )
            for name in names
        )
    )  # type: ignore[arg-type]
    assert overlaps > 0


# ---- point in time: a file's alerts depend only on what was published before it --------------------------------

# Five files: buybacks of 28/11 and southbound of 27/11 at 06:00, SFC of 21/11 at 09:00, DI at 17:00, quotations at
# 17:30. One day keeps the test within its time budget (about 0.6 s per cycle, two feeds per example).
WINDOW = (date(2025, 11, 28), date(2025, 11, 28))


def _window_files() -> list[tuple[datetime, str, date, dict[str, object]]]:
    """(due moment, source, file date, tables) of the demo files due in WINDOW, from the session-cached history."""
    from alerts.calendar import schedule_for
    from alerts.history import FEEDS
    from tests.support.bothelpers import demo_history

    history, out = demo_history(), {}
    for name, (source, table, column) in FEEDS.items():
        frame = history.frames[name]
        for day, part in frame.groupby(frame[column].dt.date):
            due = schedule_for(source).published_at(day)
            if WINDOW[0] <= due.date() <= WINDOW[1]:
                out.setdefault((due, source, day), {})[table] = part.drop(columns="published_at").reset_index(
                    drop=True
                )
    return [(due, source, day, tables) for (due, source, day), tables in sorted(out.items())]


async def _feed(
    redis: Redis, arrivals: list[tuple[datetime, str, date, dict[str, object]]]
) -> dict[str, str]:
    """Store each file at its arrival moment and run the cycle's evaluation then; the alerts logged, by fingerprint."""
    from alerts.pipeline import CycleReport, evaluate_and_route

    await redis.flushdb()
    await seed_demo(redis, exclude=frozenset((source, day) for _, source, day, _ in _window_files()))
    store, settings = FrameStore(redis), Settings()
    for moment, source, day, tables in arrivals:
        await store.put(source, tables, day, known_at=moment)  # type: ignore[arg-type]
        await evaluate_and_route(
            CycleReport(source, day, "processed"), settings=settings, redis=redis, now=moment, force=True
        )
    logged = await AlertLog(redis).recent(sessions_between(date(2025, 11, 14), WINDOW[1]))  # SFC: a week back
    return {a.fingerprint: a.published_at.isoformat() for a in logged if a.published_at is not None}


@hyp_settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    delays=st.lists(st.integers(min_value=0, max_value=240), min_size=5, max_size=5),
    cut=st.integers(min_value=0, max_value=24 * 60),
)
def test_live_alerts_before_a_moment_ignore_files_arriving_after_it(
    redis_url: str, delays: list[int], cut: int
) -> None:
    import asyncio
    from datetime import timedelta

    files = _window_files()
    # Each file arrives up to four hours after it is due, so files of close due moments come in any order.
    arrivals = sorted(
        (
            (due + timedelta(minutes=delays[i % len(delays)]), source, day, tables)
            for i, (due, source, day, tables) in enumerate(files)
        ),
        key=lambda row: row[0],
    )
    moment = datetime.combine(WINDOW[0], datetime.min.time(), tzinfo=HK_TZ) + timedelta(minutes=cut)

    async def both() -> tuple[dict[str, str], dict[str, str]]:
        client = Redis.from_url(redis_url)
        try:
            return await _feed(client, arrivals), await _feed(client, [a for a in arrivals if a[0] <= moment])
        finally:
            await client.aclose()

    full, cut_short = asyncio.run(both())
    early = {f: at for f, at in full.items() if datetime.fromisoformat(at) <= moment}
    assert {f: at for f, at in cut_short.items() if datetime.fromisoformat(at) <= moment} == early
    assert all(
        datetime.fromisoformat(at) >= datetime.combine(WINDOW[0], datetime.min.time(), tzinfo=HK_TZ)
        for at in full.values()
    )
