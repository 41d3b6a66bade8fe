"""hkex-southbound over real HTTP: the 2026 page asks for another date with a __doPostBack form, not a button."""

from __future__ import annotations

from datetime import date, datetime
from urllib.parse import parse_qsl

import httpx
import pytest
from redis.asyncio import Redis

from alerts.calendar import HK_TZ
from alerts.errors import MalformedFile
from alerts.fetch import make_client
from alerts.ingest import ingest
from alerts.sources import get_source
from alerts.store.frames import FrameStore
from config.settings import Settings
from tests.support.origin import Origin
from tests.support.paths import fixture_bytes

SOUTHBOUND = get_source("hkex-southbound")
PATH = "/sdw/search/mutualmarket.aspx?t=hk"
NOW = datetime(2026, 6, 16, 9, 0, tzinfo=HK_TZ)
LATEST = fixture_bytes("hkex-southbound", "hkex_sh_20260331_excerpt.html")
# The page for another date: the same page with that date's heading and one changed holding.
OLDER = (
    LATEST.replace(b"Shareholding Date: 2026/03/31", b"Shareholding Date: 2025/12/31")
    .replace(b'value="2026/03/31" id="txtShareholdingDate"', b'value="2025/12/31" id="txtShareholdingDate"')
    .replace(b">146,393,531<", b">151,412,538<")
)
BAD_FORM = b"<html><head><title>Error</title></head><body>bad form</body></html>"


def answer_like_the_2026_page(form: dict[str, str]) -> bytes:
    """What the 2026 server does: a search is a postback from btnSearch, validated without __EVENTVALIDATION."""
    # tests.support.origin drops blank values (parse_qsl), so an empty __EVENTARGUMENT arrives as a missing one.
    postback = form.get("__EVENTTARGET") == "btnSearch" and form.get("__EVENTARGUMENT", "") == ""
    if (
        postback
        and "__EVENTVALIDATION" not in form
        and "btnSearch" not in form
        and form.get("__VIEWSTATE")
        and form.get("txtShareholdingDate") == "2025/12/31"
    ):
        return OLDER
    return BAD_FORM


async def _ingest(
    settings: Settings, redis: Redis, day: date, sent: list[list[tuple[str, str]]] | None = None
) -> str:
    """Ingest `day`; the body of every POST the client sends is appended to `sent` (blank values kept)."""

    async def record(request: httpx.Request) -> None:
        if request.method == "POST" and sent is not None:
            sent.append(parse_qsl(request.content.decode("ascii"), keep_blank_values=True))

    async with make_client() as client:
        client.event_hooks["request"].append(record)
        report = await ingest(
            SOUTHBOUND, day, settings=settings, client=client, store=FrameStore(redis), now=NOW, backoff=0.01
        )
    return report.status


async def test_other_date_is_a_postback_from_the_2026_form(
    settings: Settings, origin: Origin, redis: Redis
) -> None:
    origin.add(PATH, LATEST, content_type="text/html; charset=utf-8", on_post=answer_like_the_2026_page)
    sent: list[list[tuple[str, str]]] = []
    assert await _ingest(settings, redis, date(2025, 12, 31), sent) == "stored"
    assert [r.method for r in origin.requests] == ["GET", "POST"]
    assert len(sent) == 1 and len(sent[0]) == len(dict(sent[0]))  # one POST, no field twice
    assert dict(sent[0]) == {
        "__EVENTTARGET": "btnSearch",
        "__EVENTARGUMENT": "",
        "__VIEWSTATE": "/wEPDwUJLTQ2NTUyMDE3ZGQUwMD1imVVBVXoZJk+zW63eCMKzQ==",
        "__VIEWSTATEGENERATOR": "3C67932C",
        "today": "20260616",
        "sortBy": "stockcode",
        "sortDirection": "asc",
        "originalShareholdingDate": "2026/06/15",
        "alertMsg": "",
        "txtShareholdingDate": "2025/12/31",
    }
    frame = await FrameStore(redis).get(SOUTHBOUND.name, "main", date(2025, 12, 31), SOUTHBOUND.schema)
    assert frame is not None and len(frame) == 20
    assert set(frame["date"].dt.date) == {date(2025, 12, 31)}
    assert int(frame.loc[frame["code"] == "30008", "shares"].iloc[0]) == 151_412_538


async def test_latest_date_of_the_2026_page_needs_no_post(
    settings: Settings, origin: Origin, redis: Redis
) -> None:
    origin.add(PATH, LATEST, content_type="text/html; charset=utf-8", on_post=answer_like_the_2026_page)
    assert await _ingest(settings, redis, date(2026, 3, 31)) == "stored"
    assert [r.method for r in origin.requests] == ["GET"]


async def test_the_2019_button_form_is_refused_by_the_2026_server(
    settings: Settings, origin: Origin, redis: Redis
) -> None:
    # Control: a 2019-style POST (btnSearch=Search + __EVENTVALIDATION) gets the error page, so the test above
    # passes only because the form was built from the 2026 page's own inputs.
    old_style = fixture_bytes("hkex-southbound", "mutualmarket_t-hk_20251120.html")
    origin.add(PATH, old_style, content_type="text/html; charset=utf-8", on_post=answer_like_the_2026_page)
    with pytest.raises(MalformedFile):
        await _ingest(settings, redis, date(2025, 12, 31))
    post = next(r for r in origin.requests if r.method == "POST")
    assert post.form["btnSearch"] == "Search" and "__EVENTVALIDATION" in post.form
