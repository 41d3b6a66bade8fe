"""fetch → parse → store over real HTTP (local origin at the real paths) and a real redis-server."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from redis.asyncio import Redis

from alerts.calendar import HK_TZ
from alerts.errors import FetchFailed, MalformedFile, NotAvailable, NotPublishedYet
from alerts.fetch import make_client
from alerts.ingest import ingest, urls_for
from alerts.sources import get_source
from alerts.store.frames import FetchState, FrameStore
from config.settings import Settings
from tests.support.origin import Origin
from tests.support.paths import fixture_bytes

NOW = datetime(2025, 11, 28, 18, 0, tzinfo=HK_TZ)
SFC = get_source("sfc-short-positions")
SFC_DAY = date(2022, 12, 2)
SFC_PATH = "/-/media/EN/pdf/spr/2022/12/02/Short_Position_Reporting_Aggregated_Data_20221202.csv"
SFC_BYTES = fixture_bytes("sfc-short-positions", "Short_Position_Reporting_Aggregated_Data_20221202.csv")
BUYBACKS = get_source("hkex-buybacks")


async def _ingest(settings: Settings, redis: Redis, source_name: str, day: date) -> str:
    async with make_client() as client:
        report = await ingest(
            get_source(source_name),
            day,
            settings=settings,
            client=client,
            store=FrameStore(redis),
            now=NOW,
            backoff=0.01,
        )
    return report.status


def test_urls_are_base_plus_real_path(settings: Settings, origin: Origin) -> None:
    assert urls_for(SFC, settings, SFC_DAY) == [origin.url + SFC_PATH]
    assert urls_for(BUYBACKS, settings, date(2017, 3, 13)) == [
        origin.url + "/reports/sharerepur/documents/SRRPT20170313.xls"
    ]


async def test_fetch_store_then_304_then_revision(settings: Settings, origin: Origin, redis: Redis) -> None:
    route = origin.add(SFC_PATH, SFC_BYTES, etag='"v1"')
    assert await _ingest(settings, redis, SFC.name, SFC_DAY) == "stored"
    store = FrameStore(redis)
    frame = await store.get(SFC.name, "main", SFC_DAY, SFC.schema)
    assert frame is not None and len(frame) == 981
    assert (await store.fetch_state(origin.url + SFC_PATH)).etag == '"v1"'

    assert await _ingest(settings, redis, SFC.name, SFC_DAY) == "unchanged"
    assert origin.requests[-1].headers.get("If-None-Match") == '"v1"'

    # A revised file (new content, new ETag) replaces the stored frame.
    route.body = SFC_BYTES.replace(b"02/12/2022,700,TENCENT,45925264,", b"02/12/2022,700,TENCENT,45925265,")
    route.etag = '"v2"'
    assert await _ingest(settings, redis, SFC.name, SFC_DAY) == "stored"
    frame = await store.get(SFC.name, "main", SFC_DAY, SFC.schema)
    assert frame is not None
    assert int(frame.loc[frame["code"] == "00700", "short_shares"].iloc[0]) == 45925265


async def test_same_bytes_without_validators_is_unchanged(
    settings: Settings, origin: Origin, redis: Redis
) -> None:
    origin.add(SFC_PATH, SFC_BYTES)
    assert await _ingest(settings, redis, SFC.name, SFC_DAY) == "stored"
    assert await _ingest(settings, redis, SFC.name, SFC_DAY) == "unchanged"


async def test_malformed_file_stores_nothing_and_keeps_state(
    settings: Settings, origin: Origin, redis: Redis
) -> None:
    origin.add(SFC_PATH, b"<html><title>404 Not Found</title></html>", etag='"bad"')
    with pytest.raises(MalformedFile) as info:
        await _ingest(settings, redis, SFC.name, SFC_DAY)
    assert info.value.url == origin.url + SFC_PATH
    store = FrameStore(redis)
    assert await store.dates(SFC.name) == []
    assert await store.fetch_state(origin.url + SFC_PATH) == FetchState()
    assert "error_message" in await store.status(SFC.name)


async def test_malformed_revision_keeps_previous_data(
    settings: Settings, origin: Origin, redis: Redis
) -> None:
    route = origin.add(SFC_PATH, SFC_BYTES, etag='"v1"')
    await _ingest(settings, redis, SFC.name, SFC_DAY)
    route.body, route.etag = SFC_BYTES[: len(SFC_BYTES) // 2] + b"\n02/12/2022,xx\n", '"v2"'
    with pytest.raises(MalformedFile):
        await _ingest(settings, redis, SFC.name, SFC_DAY)
    store = FrameStore(redis)
    frame = await store.get(SFC.name, "main", SFC_DAY, SFC.schema)
    assert frame is not None and len(frame) == 981
    assert (await store.fetch_state(origin.url + SFC_PATH)).etag == '"v1"'


async def test_missing_file_is_not_published(settings: Settings, redis: Redis) -> None:
    with pytest.raises(NotPublishedYet):
        await _ingest(settings, redis, SFC.name, date(2022, 12, 9))
    assert await FrameStore(redis).dates(SFC.name) == []


async def test_server_errors_become_fetch_failed(settings: Settings, origin: Origin, redis: Redis) -> None:
    route = origin.add(SFC_PATH, SFC_BYTES, fail_first=100, fail_status=502)
    with pytest.raises(FetchFailed):
        await _ingest(settings, redis, SFC.name, SFC_DAY)
    assert route.hits == 4  # first try + 3 retries
    assert await FrameStore(redis).dates(SFC.name) == []


async def test_file_for_another_date_is_rejected(settings: Settings, origin: Origin, redis: Redis) -> None:
    path = SFC_PATH.replace("2022/12/02", "2022/12/09").replace("20221202", "20221209")
    origin.add(path, SFC_BYTES)
    with pytest.raises(MalformedFile, match="dated 2022-12-02"):
        await _ingest(settings, redis, SFC.name, date(2022, 12, 9))


async def test_buyback_report_is_stored_by_printed_date(
    settings: Settings, origin: Origin, redis: Redis
) -> None:
    for day in ("20170313", "20170314"):
        origin.add(
            f"/reports/sharerepur/documents/SRRPT{day}.xls", fixture_bytes("hkex-buybacks", f"SRRPT{day}.xls")
        )
    assert await _ingest(settings, redis, BUYBACKS.name, date(2017, 3, 13)) == "stored"
    assert await _ingest(settings, redis, BUYBACKS.name, date(2017, 3, 14)) == "stored"
    rows = await FrameStore(redis).load_range(
        BUYBACKS.name, BUYBACKS.schema, date(2017, 3, 1), date(2017, 3, 31)
    )
    assert len(rows) == 4
    assert set(rows["report_date"].dt.date) == {date(2017, 3, 13), date(2017, 3, 14)}


SHORT = get_source("hkex-short")
SHORT_MAIN = "/eng/stat/smstat/ssturnover/ncms/ASHTMAIN.HTM"
SHORT_GEM = "/eng/stat/smstat/ssturnover/ncms/ASHTGEM.HTM"


def _serve_short_pages(origin: Origin) -> None:
    origin.add(SHORT_MAIN, fixture_bytes("hkex-short", "ASHTMAIN.HTM"), etag='"m1"')
    origin.add(SHORT_GEM, fixture_bytes("hkex-short", "ASHTGEM.HTM"), etag='"g1"')


async def test_short_pages_main_and_gem_are_stored_together(
    settings: Settings, origin: Origin, redis: Redis
) -> None:
    _serve_short_pages(origin)
    assert await _ingest(settings, redis, SHORT.name, date(2025, 11, 20)) == "stored"
    store = FrameStore(redis)
    rows = await store.get(SHORT.name, "main", date(2025, 11, 20), SHORT.schema)
    market = await store.get(SHORT.name, "market", date(2025, 11, 20), SHORT.tables["market"].schema)
    assert rows is not None and market is not None
    assert set(rows["board"]) == {"main", "gem"}
    assert sorted(market["board"]) == ["gem", "main"]
    assert "01810" in set(rows["code"])


async def test_short_placeholder_is_not_published(settings: Settings, origin: Origin, redis: Redis) -> None:
    origin.add(SHORT_MAIN, fixture_bytes("hkex-short", "ASHTMAIN_placeholder.HTM"))
    origin.add(SHORT_GEM, fixture_bytes("hkex-short", "ASHTGEM.HTM"))
    with pytest.raises(NotPublishedYet):
        await _ingest(settings, redis, SHORT.name, date(2025, 11, 20))
    assert await FrameStore(redis).dates(SHORT.name) == []


async def test_short_page_still_showing_yesterday_is_not_published(
    settings: Settings, origin: Origin, redis: Redis
) -> None:
    _serve_short_pages(origin)  # pages say 20 NOV 2025
    with pytest.raises(NotPublishedYet, match="still shows 2025-11-20"):
        await _ingest(settings, redis, SHORT.name, date(2025, 11, 21))


async def test_short_page_showing_a_later_day_is_not_available(
    settings: Settings, origin: Origin, redis: Redis
) -> None:
    _serve_short_pages(origin)
    with pytest.raises(NotAvailable):
        await _ingest(settings, redis, SHORT.name, date(2025, 11, 19))


SOUTHBOUND = get_source("hkex-southbound")
SB_PATH = "/sdw/search/mutualmarket.aspx?t=hk"


async def test_southbound_other_date_is_asked_for_with_the_page_form(
    settings: Settings, origin: Origin, redis: Redis
) -> None:
    latest = fixture_bytes("hkex-southbound", "mutualmarket_t-hk_20251120.html")
    older = latest.replace(b"2025/11/20", b"2025/11/19")
    origin.add(
        SB_PATH,
        latest,
        on_post=lambda form: (
            older if form.get("txtShareholdingDate") == "2025/11/19" else b"<html>bad form</html>"
        ),
    )
    assert await _ingest(settings, redis, SOUTHBOUND.name, date(2025, 11, 19)) == "stored"
    post = next(r for r in origin.requests if r.method == "POST")
    assert post.form["txtShareholdingDate"] == "2025/11/19"
    assert "__VIEWSTATE" in post.form
    frame = await FrameStore(redis).get(SOUTHBOUND.name, "main", date(2025, 11, 19), SOUTHBOUND.schema)
    assert frame is not None and set(frame["date"].dt.date) == {date(2025, 11, 19)}


async def test_southbound_latest_date_needs_no_post(settings: Settings, origin: Origin, redis: Redis) -> None:
    origin.add(SB_PATH, fixture_bytes("hkex-southbound", "mutualmarket_t-hk_20251120.html"))
    assert await _ingest(settings, redis, SOUTHBOUND.name, date(2025, 11, 20)) == "stored"
    assert [r.method for r in origin.requests] == ["GET"]


async def test_di_summaries_c1_and_c2_are_combined(settings: Settings, origin: Origin, redis: Redis) -> None:
    for n in (1, 2):
        origin.add(f"/di/summary/DSM20251126C{n}.htm", fixture_bytes("hkex-di", f"DSM20251126C{n}.htm"))
    assert await _ingest(settings, redis, "hkex-di", date(2025, 11, 26)) == "stored"
    rows = await FrameStore(redis).get("hkex-di", "main", date(2025, 11, 26), get_source("hkex-di").schema)
    assert rows is not None
    assert {"director", "substantial_shareholder"} <= set(rows["role"])
    lei = rows[rows["holder"] == "Lei Jun"].iloc[0]
    assert (lei["shares"], lei["avg_price"], lei["direction"]) == (2600000, 38.58, "buy")


async def test_di_unavailable_summary_is_not_published(
    settings: Settings, origin: Origin, redis: Redis
) -> None:
    for n in (1, 2):
        origin.add(
            f"/di/summary/DSM20251110C{n}.htm", fixture_bytes("hkex-di", "DSM20251110C1_unavailable.htm")
        )
    with pytest.raises(NotPublishedYet):
        await _ingest(settings, redis, "hkex-di", date(2025, 11, 10))
