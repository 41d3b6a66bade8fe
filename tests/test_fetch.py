"""The fetcher over real HTTP against the local origin: validators, retries, missing files, timeouts."""

from __future__ import annotations

import httpx
import pytest

from alerts.errors import FetchFailed, NotPublishedYet
from alerts.fetch import USER_AGENT, fetch, make_client
from alerts.store.frames import FetchState
from tests.origin import Origin

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
