"""The fetcher over real HTTP against the local origin: validators, retries, missing files, timeouts."""

from __future__ import annotations

from datetime import date, datetime

import httpx
import pytest
from redis.asyncio import Redis

from alerts.calendar import HK_TZ
from alerts.errors import FetchFailed, MalformedFile, NotPublishedYet
from alerts.fetch import USER_AGENT, fetch, make_client
from alerts.ingest import IngestReport, ingest
from alerts.localdata import local_path
from alerts.sources import get_source
from alerts.store.frames import FetchState, FrameStore
from bot.demo import demo_root
from config.settings import Settings
from tests.support.origin import Origin

PATH = "/eng/stat/smstat/dayquot/d251120e.htm"


async def test_ok_sends_user_agent_and_returns_validators(origin: Origin) -> None:
    origin.add(PATH, b"hello", etag='"v1"', last_modified="Thu, 20 Nov 2025 10:00:00 GMT")
    async with make_client() as client:
        got = await fetch(client, origin.url + PATH)
    assert (got.status, got.content, got.etag) == ("ok", b"hello", '"v1"')
    assert got.last_modified == "Thu, 20 Nov 2025 10:00:00 GMT"
    assert origin.requests[0].headers["User-Agent"] == USER_AGENT


async def test_conditional_get_returns_not_modified(origin: Origin) -> None:
    origin.add(PATH, b"hello", etag='"v1"')
    async with make_client() as client:
        got = await fetch(client, origin.url + PATH, state=FetchState(etag='"v1"', last_modified="x"))
    assert got.status == "not_modified"
    assert origin.requests[0].headers["If-None-Match"] == '"v1"'
    assert origin.requests[0].headers["If-Modified-Since"] == "x"


async def test_404_is_not_published(origin: Origin) -> None:
    async with make_client() as client:
        with pytest.raises(NotPublishedYet) as info:
            await fetch(client, origin.url + PATH, source="hkex-quotes")
    assert info.value.url == origin.url + PATH
    assert "hkex-quotes" in str(info.value)


async def test_5xx_is_retried_with_backoff_then_succeeds(origin: Origin) -> None:
    route = origin.add(PATH, b"data", fail_first=2, fail_status=503)
    async with make_client() as client:
        got = await fetch(client, origin.url + PATH, backoff=0.01)
    assert got.content == b"data"
    assert route.hits == 3


async def test_persistent_500_gives_up_with_fetch_failed(origin: Origin) -> None:
    route = origin.add(PATH, b"data", fail_first=99, fail_status=500)
    async with make_client() as client:
        with pytest.raises(FetchFailed, match="HTTP 500"):
            await fetch(client, origin.url + PATH, retries=2, backoff=0.01)
    assert route.hits == 3


async def test_timeout_is_retried_then_fails(origin: Origin) -> None:
    route = origin.add(PATH, b"late", delay=0.5)
    async with make_client(timeout=httpx.Timeout(0.1)) as client:
        with pytest.raises(FetchFailed, match="timeout"):
            await fetch(client, origin.url + PATH, retries=1, backoff=0.01)
    assert route.hits == 2


async def test_unexpected_4xx_fails_without_retry(origin: Origin) -> None:
    route = origin.add(PATH, b"no", status=400)
    async with make_client() as client:
        with pytest.raises(FetchFailed, match="HTTP 400"):
            await fetch(client, origin.url + PATH, backoff=0.01)
    assert route.hits == 1


async def test_connection_refused_is_fetch_failed() -> None:
    async with make_client() as client:
        with pytest.raises(FetchFailed, match="network error"):
            await fetch(client, "http://127.0.0.1:9/x", retries=1, backoff=0.01)


async def test_post_form(origin: Origin) -> None:
    origin.add("/form?t=hk", on_post=lambda form: form["txtShareholdingDate"].encode())
    async with make_client() as client:
        got = await fetch(client, origin.url + "/form?t=hk", form={"txtShareholdingDate": "2025/11/20"})
    assert got.content == b"2025/11/20"
    assert origin.requests[0].method == "POST"


# --- hkex-short-midday: its own pages, stored beside (not over) the day close ----------------------------------

MIDDAY_DAY = date(2025, 11, 28)


def _serve_demo_pages(origin: Origin, source: str, day: date) -> None:
    """Serve the demo data's pages of `source` for `day` at their real paths."""
    for url_path in get_source(source).paths(day):
        origin.add(
            url_path, local_path(demo_root(), source, day, url_path).read_bytes(), etag=f'"{url_path}"'
        )


async def _ingest_pages(settings: Settings, redis: Redis, source: str, day: date) -> IngestReport:
    async with make_client() as client:
        return await ingest(
            get_source(source),
            day,
            settings=settings,
            client=client,
            store=FrameStore(redis),
            now=datetime(2025, 11, 28, 16, 30, tzinfo=HK_TZ),
            backoff=0.01,
        )


async def test_midday_pages_are_fetched_from_their_own_urls(
    settings: Settings, origin: Origin, redis: Redis
) -> None:
    _serve_demo_pages(origin, "hkex-short-midday", MIDDAY_DAY)
    report = await _ingest_pages(settings, redis, "hkex-short-midday", MIDDAY_DAY)
    assert report.status == "stored"
    assert report.urls == (
        origin.url + "/eng/stat/smstat/ssturnover/ncms/MSHTMAIN.HTM",
        origin.url + "/eng/stat/smstat/ssturnover/ncms/MSHTGEM.HTM",
    )
    assert {r.path for r in origin.requests} == {
        "/eng/stat/smstat/ssturnover/ncms/MSHTMAIN.HTM",
        "/eng/stat/smstat/ssturnover/ncms/MSHTGEM.HTM",
    }
    again = await _ingest_pages(settings, redis, "hkex-short-midday", MIDDAY_DAY)
    assert again.status == "unchanged"
    assert len(origin.requests) == 4
    assert all(
        r.headers.get("If-None-Match") for r in origin.requests[2:]
    )  # conditional GETs the second time


async def test_midday_and_close_of_one_day_are_stored_side_by_side(
    settings: Settings, origin: Origin, redis: Redis
) -> None:
    _serve_demo_pages(origin, "hkex-short-midday", MIDDAY_DAY)
    _serve_demo_pages(origin, "hkex-short", MIDDAY_DAY)
    assert (await _ingest_pages(settings, redis, "hkex-short-midday", MIDDAY_DAY)).status == "stored"
    assert (await _ingest_pages(settings, redis, "hkex-short", MIDDAY_DAY)).status == "stored"
    store = FrameStore(redis)
    midday = await store.get("hkex-short-midday", "main", MIDDAY_DAY, get_source("hkex-short-midday").schema)
    close = await store.get("hkex-short", "main", MIDDAY_DAY, get_source("hkex-short").schema)
    assert midday is not None and close is not None
    assert set(midday["session"]) == {"morning"} and set(close["session"]) == {"close"}
    xiaomi = [float(frame.loc[frame["code"] == "01810", "short_value"].iloc[0]) for frame in (midday, close)]
    assert 0 < xiaomi[0] < xiaomi[1]


async def test_midday_source_refuses_a_day_close_page_at_its_url(
    settings: Settings, origin: Origin, redis: Redis
) -> None:
    for url_path, close_path in zip(
        get_source("hkex-short-midday").paths(MIDDAY_DAY),
        get_source("hkex-short").paths(MIDDAY_DAY),
        strict=True,
    ):
        origin.add(url_path, local_path(demo_root(), "hkex-short", MIDDAY_DAY, close_path).read_bytes())
    with pytest.raises(MalformedFile, match="day-close report"):
        await _ingest_pages(settings, redis, "hkex-short-midday", MIDDAY_DAY)
    assert await FrameStore(redis).dates("hkex-short-midday") == []


# --- redirects: followed; one that ends in 404 is "not published", naming both URLs --------------------------------


async def test_redirects_are_followed_and_recorded(origin: Origin) -> None:
    with Origin() as other:  # another host, as www.hkexnews.hk → www1.hkexnews.hk
        other.add(PATH, b"moved data", etag='"m1"')
        origin.add(PATH, status=301, location="/moved")  # a relative Location first
        origin.add("/moved", status=302, location=other.url + PATH)
        async with make_client() as client:
            got = await fetch(client, origin.url + PATH)
    assert (got.status, got.content, got.etag) == ("ok", b"moved data", '"m1"')
    assert got.url == origin.url + PATH  # the state is remembered under the URL we ask for
    assert got.redirects == (origin.url + "/moved", other.url + PATH)


async def test_no_redirect_records_none(origin: Origin) -> None:
    origin.add(PATH, b"hello")
    async with make_client() as client:
        assert (await fetch(client, origin.url + PATH)).redirects == ()


async def test_redirect_to_404_is_not_published_naming_both_urls(origin: Origin) -> None:
    with Origin() as other:  # nothing served there: 404
        origin.add(PATH, status=302, location=other.url + PATH)
        # A client that does not follow redirects by itself still gets the file's real answer.
        async with httpx.AsyncClient(follow_redirects=False) as client:
            with pytest.raises(NotPublishedYet) as info:
                await fetch(client, origin.url + PATH, source="hkex-quotes", backoff=0.01)
    message = str(info.value)
    assert f"HTTP 404 after redirect {origin.url + PATH} → {other.url + PATH}: not published" in message
    assert info.value.url == origin.url + PATH and "hkex-quotes" in message
    assert origin.routes[PATH].hits == 1  # not retried


async def test_redirect_loop_fails_without_retrying(origin: Origin) -> None:
    route = origin.add(PATH, status=302, location=PATH)
    async with make_client() as client:
        with pytest.raises(FetchFailed, match="redirect loop"):
            await fetch(client, origin.url + PATH, backoff=0.01)
        assert route.hits == client.max_redirects + 1  # one pass through the loop, no retries
