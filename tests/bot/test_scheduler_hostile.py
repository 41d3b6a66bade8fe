"""Hostile origins against the poller: a server trickling one byte at a time never trips a per-read timeout, so
every cycle has a deadline of its own, the sources run side by side, a stop cancels what is stuck, and /healthz
tells a stuck or overdue tick."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import date, datetime

import httpx
import pytest
from redis.asyncio import Redis

from alerts.calendar import HK_TZ
from alerts.fetch import make_client
from alerts.metrics import METRICS
from alerts.store.frames import FrameStore
from alerts.store.lease import Lease
from alerts.tickers import TickerRefresh, known
from alerts.windows import missed
from bot.health import TickTimes
from bot.leader import TICK_OVERDUE_S, TICK_STUCK_S, start_health
from bot.scheduler import DEADLINE_ERROR, LOOKBACK_SESSIONS, Poller
from config.settings import Settings, load_settings
from tests.support.origin import Origin

NOW = datetime(2025, 11, 27, 17, 30, 5, tzinfo=HK_TZ)  # hkex-quotes' window is open


class Trickle:
    """An HTTP server that answers 200 with a large Content-Length, then one byte every `every` seconds, forever
    (paths in `quick` get a 404 at once instead)."""

    def __init__(self, every: float = 0.2, quick: tuple[str, ...] = ()) -> None:
        self.every = every
        self.quick = quick
        self.paths: list[str] = []
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.requested = asyncio.Event()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> Trickle:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        with contextlib.suppress(Exception, asyncio.CancelledError):
            line = await reader.readline()
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            path = line.split(b" ")[1].decode() if line.count(b" ") >= 2 else ""
            self.paths.append(path)
            self.requested.set()
            if any(q in path for q in self.quick):
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000000\r\n\r\n")
            while True:
                writer.write(b"<")
                await writer.drain()
                await asyncio.sleep(self.every)
        self.writers.discard(writer)
        writer.close()


@pytest.fixture
async def trickle() -> AsyncIterator[Trickle]:
    async with Trickle() as server:
        yield server


def _settings(redis_url: str, **urls: str) -> Settings:
    return load_settings({"REDIS_URL": redis_url, **urls}, env_file=None)


async def _only_latest_due(redis: Redis, sources: tuple[str, ...], now: datetime) -> dict[str, date]:
    """Mark every catch-up date but the latest done, so that each source has one cycle due."""
    latest = {}
    for source in sources:
        dates = missed(source, now, lambda _d: False, lookback_sessions=LOOKBACK_SESSIONS)
        for day in dates[:-1]:
            await redis.set(f"pb:cycle:{source}:{day.isoformat()}", "done")
        latest[source] = dates[-1]
    return latest


async def test_a_trickling_origin_is_cut_at_the_deadline_and_holds_up_no_other_source(
    redis: Redis, redis_url: str, origin: Origin, trickle: Trickle
) -> None:
    sources = ("hkex-quotes", "finra-short-volume")
    latest = await _only_latest_due(redis, sources, NOW)
    settings = _settings(redis_url, HKEX_URL=trickle.url, FINRA_URL=origin.url)  # FINRA: a quick 404
    before = METRICS.value("positioning_cycle_deadline_exceeded_total", {"source": "hkex-quotes"}) or 0
    async with make_client() as client:
        poller = Poller(settings, redis, client, lambda: NOW, sources=sources, cycle_deadline=1.0)
        started = time.monotonic()
        reports = await poller.tick()
        elapsed = time.monotonic() - started
    assert elapsed < 3.0, elapsed  # one deadline, not the trickle's minutes
    by_source = {r.source: r for r in reports}
    slow, quick = by_source["hkex-quotes"], by_source["finra-short-volume"]
    assert (slow.day, slow.status, slow.error) == (latest["hkex-quotes"], "failed", DEADLINE_ERROR)
    assert quick.error != DEADLINE_ERROR and quick.duration_s < 1.0  # it did not wait for the slow one
    assert any(r.path.startswith("/") for r in origin.requests)
    status = await FrameStore(redis).status("hkex-quotes")
    assert (
        DEADLINE_ERROR in status["error_message"]
        and status["error_date"] == latest["hkex-quotes"].isoformat()
    )
    assert METRICS.value("positioning_cycle_deadline_exceeded_total", {"source": "hkex-quotes"}) == before + 1
    assert poller.ticks.started is not None and not poller.ticks.running


async def test_two_trickling_sources_cost_one_deadline_not_two(
    redis: Redis, redis_url: str, trickle: Trickle
) -> None:
    sources = ("hkex-quotes", "finra-short-volume")
    await _only_latest_due(redis, sources, NOW)
    settings = _settings(redis_url, HKEX_URL=trickle.url, FINRA_URL=trickle.url)
    async with make_client() as client:
        poller = Poller(settings, redis, client, lambda: NOW, sources=sources, cycle_deadline=1.5)
        started = time.monotonic()
        reports = await poller.tick()
        elapsed = time.monotonic() - started
    assert sorted((r.source, r.error) for r in reports) == [
        ("finra-short-volume", DEADLINE_ERROR),
        ("hkex-quotes", DEADLINE_ERROR),
    ]
    assert 1.5 <= elapsed < 2.8, elapsed  # side by side


async def test_a_timed_out_source_leaves_its_other_dates_to_the_next_tick(
    redis: Redis, redis_url: str, trickle: Trickle
) -> None:
    dates = missed("hkex-quotes", NOW, lambda _d: False, lookback_sessions=LOOKBACK_SESSIONS)
    for day in dates[:-2]:
        await redis.set(f"pb:cycle:hkex-quotes:{day.isoformat()}", "done")
    settings = _settings(redis_url, HKEX_URL=trickle.url)
    async with make_client() as client:
        poller = Poller(settings, redis, client, lambda: NOW, sources=("hkex-quotes",), cycle_deadline=0.5)
        (report,) = await poller.tick()
    assert (report.day, report.error) == (dates[-2], DEADLINE_ERROR)  # oldest first, then the source waits


async def test_wind_down_cancels_a_stuck_tick_after_its_grace(
    redis: Redis, redis_url: str, trickle: Trickle
) -> None:
    await _only_latest_due(redis, ("hkex-quotes",), NOW)
    settings = _settings(redis_url, HKEX_URL=trickle.url)
    async with make_client() as client:
        poller = Poller(settings, redis, client, lambda: NOW, sources=("hkex-quotes",), cycle_deadline=600)
        tick = asyncio.create_task(poller.tick())
        await asyncio.wait_for(trickle.requested.wait(), timeout=10)
        started = time.monotonic()
        await poller.wind_down(grace=0.3)
        reports = await asyncio.wait_for(tick, timeout=2)
        elapsed = time.monotonic() - started
    assert reports == [] and elapsed < 1.5, elapsed  # the cancelled cycle is left to the next leader
    assert poller.stopping and not poller.ticks.running


async def test_wind_down_without_running_work_returns_at_once(redis: Redis, redis_url: str) -> None:
    async with make_client() as client:
        poller = Poller(_settings(redis_url), redis, client, lambda: NOW, sources=("hkex-quotes",))
        started = time.monotonic()
        await poller.wind_down(grace=5)
    assert poller.stopping and time.monotonic() - started < 0.5


# ---- the US ticker map: backoff and one warning per outage ------------------------------------------------------

TICKERS_JSON = b'{"0": {"cik_str": 320193, "ticker": "AAPL", "title": "Apple Inc."}}'


async def test_failing_ticker_map_backs_off_with_one_warning_then_one_info(
    redis: Redis, origin: Origin, caplog: pytest.LogCaptureFixture
) -> None:
    route = origin.add("/files/company_tickers.json", b"", status=500)
    clock = [1000.0]
    refresher = TickerRefresh(clock=lambda: clock[0], fetch_backoff=0.0)
    agent = "positioning-bot tests ops@example.com"
    caplog.set_level(logging.DEBUG, logger="alerts.tickers")
    assert await refresher.run(redis, origin.url, agent) is None
    first_hits = route.hits
    assert first_hits >= 1
    for offset, attempted in (
        (30, False),
        (61, True),
        (61 + 100, False),
        (61 + 121, True),
        (61 + 121 + 239, False),
    ):
        clock[0] = 1000.0 + offset
        assert await refresher.run(redis, origin.url, agent) is None
        assert (route.hits > first_hits) is attempted, offset
        first_hits = route.hits
    assert await known(redis, "ZZZZZ") is None  # no map: the ticker cannot be checked yet
    route.status, route.body = 200, TICKERS_JSON
    clock[0] = 1000.0 + 61 + 121 + 241
    assert await refresher.run(redis, origin.url, agent) == 1
    assert await known(redis, "AAPL") is True and await known(redis, "ZZZZZ") is False
    records = [r for r in caplog.records if r.name == "alerts.tickers"]
    assert [r.levelno for r in records if r.levelno >= logging.INFO] == [logging.WARNING, logging.INFO]
    assert "again" in records[-1].getMessage()
    assert refresher.failures == 0


async def test_ticker_backoff_is_capped(redis: Redis, origin: Origin) -> None:
    origin.add("/files/company_tickers.json", b"", status=500)
    clock = [0.0]
    refresher = TickerRefresh(clock=lambda: clock[0], fetch_backoff=0.0, first_retry=60, max_retry=3600)
    waits = []
    for _ in range(9):
        await refresher.run(redis, origin.url, "t ops@example.com")
        waits.append(refresher.next_try - clock[0])
        clock[0] = refresher.next_try
    assert waits == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]


# ---- /healthz: a stuck or overdue tick ------------------------------------------------------------------------


def test_tick_times_with_a_fixed_clock() -> None:
    now = [100.0]
    ticks = TickTimes(clock=lambda: now[0])
    assert ticks.problem(stuck_after=60, overdue_after=30) is None  # not polling (standby)
    ticks.arm()
    now[0] = 120.0
    assert ticks.problem(stuck_after=60, overdue_after=30) is None
    now[0] = 131.0
    assert (ticks.problem(stuck_after=60, overdue_after=30) or "").startswith("overdue: polling began")
    ticks.begin()
    now[0] = 190.0
    assert ticks.problem(stuck_after=60, overdue_after=30) is None  # running, within its limit
    now[0] = 192.0
    assert (ticks.problem(stuck_after=60, overdue_after=30) or "").startswith(
        "stuck: a poll tick has been running"
    )
    ticks.end()
    assert ticks.problem(stuck_after=60, overdue_after=30) is None
    now[0] = 223.0
    assert (ticks.problem(stuck_after=60, overdue_after=30) or "").startswith("overdue: the last poll tick")
    ticks.disarm()
    assert ticks.problem(stuck_after=60, overdue_after=30) is None


async def test_healthz_says_503_when_the_leaders_tick_is_stuck(redis: Redis) -> None:
    lease = Lease(redis, ttl_seconds=30)
    assert await lease.acquire()
    now = [0.0]
    ticks = TickTimes(clock=lambda: now[0])
    server = await start_health(load_settings({"HEALTH_PORT": "0"}, env_file=None), lease, ticks)
    assert server is not None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            ticks.arm()
            ticks.begin()
            assert (await http.get("/healthz")).status_code == 200
            now[0] = TICK_STUCK_S + 1
            stuck = await http.get("/healthz")
            assert stuck.status_code == 503
            assert stuck.json()["poll"] == "stuck" and "stuck" in stuck.json()["reason"]
            ticks.end()
            assert (await http.get("/healthz")).status_code == 200
            now[0] += TICK_OVERDUE_S + 1
            overdue = await http.get("/healthz")
            assert overdue.status_code == 503 and overdue.json()["poll"] == "overdue"
            await lease.release()  # a standby does not poll: its health does not depend on ticks
            assert (await http.get("/healthz")).status_code == 200
    finally:
        await server.stop()
