"""US market end to end: FINRA and Form 4 cycles over the local origin into the outbox; the ticker map."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo  # noqa: E402

import numpy as np
import pandas as pd
import pytest
from redis.asyncio import Redis

from alerts.calendar import sessions_between
from alerts.fetch import make_client
from alerts.pipeline import evaluate_and_route, run_cycle
from alerts.rules import load_params
from alerts.sources import finra_short_volume, sec_13d_13g, sec_edgar, sec_form4
from alerts.sources.common import conform, empty_frame
from alerts.store import keys
from alerts.store.alertlog import AlertLog
from alerts.store.frames import FrameStore
from alerts.store.outbox import Outbox
from alerts.store.subscriptions import SubscriptionStore
from alerts.tickers import cik_for, known, needs_refresh, refresh
from config.settings import Settings, load_settings
from tests.support.origin import Origin
from tests.support.paths import FIXTURES

NY = ZoneInfo("America/New_York")
UA = "Positioning Bot ops@example.com"


@pytest.fixture
def us_settings(origin: Origin, redis_url: str) -> Settings:
    return load_settings(
        {"FINRA_URL": origin.url, "SEC_URL": origin.url, "REDIS_URL": redis_url, "SEC_USER_AGENT": UA},
        env_file=None,
    )


def _finra_day(day: date, ratios: dict[str, float]) -> pd.DataFrame:
    rows = [
        {
            "date": pd.Timestamp(day),
            "symbol": s,
            "short_volume": r * 2_000_000,
            "short_exempt_volume": 0.0,
            "total_volume": 2_000_000.0,
            "market": "B,Q,N",
            "short_ratio": r,
        }
        for s, r in ratios.items()
    ]
    return conform(pd.DataFrame(rows), finra_short_volume.SCHEMA)


async def test_finra_cycle_spike_reaches_a_us_watcher(
    us_settings: Settings, redis: Redis, origin: Origin
) -> None:
    from zoneinfo import ZoneInfo

    day = date(2025, 11, 24)
    rng = np.random.default_rng(3)
    store = FrameStore(redis)
    for past in sessions_between(day - timedelta(days=100), day - timedelta(days=1), "XNYS")[-60:]:
        await store.put(
            "finra-short-volume",
            {
                "main": _finra_day(
                    past, {"AAPL": 0.40 + rng.normal(0, 0.02), "MSFT": 0.45 + rng.normal(0, 0.02)}
                )
            },
            past,
        )
    body = (
        "Date|Symbol|ShortVolume|ShortExemptVolume|TotalVolume|Market\r\n"
        "20251124|AAPL|1500000|1000|2000000|B,Q,N\r\n20251124|MSFT|900000|0|2000000|B,Q,N\r\n2\r\n"
    )
    origin.add("/equity/regsho/daily/CNMSshvol20251124.txt", body.encode())
    subs = SubscriptionStore(redis)
    await subs.touch(5)
    await subs.watch(5, ["AAPL"])
    now = datetime(2025, 11, 24, 18, 5, tzinfo=ZoneInfo("America/New_York"))
    async with make_client() as client:
        report = await run_cycle(
            "finra-short-volume", day, settings=us_settings, client=client, redis=redis, now=now, backoff=0.01
        )
    assert report.status == "processed" and report.enqueued == 1
    (item,) = await Outbox(redis).claim(now, 10)
    (alert,) = item.alerts
    assert (alert["rule"], alert["code"], alert["market"]) == ("short_ratio_spike", "AAPL", "US")
    assert "not short interest" in alert["why"]


def _index(day: date, file_name: str) -> bytes:
    real = (FIXTURES / "sec-form4" / "form.20200318.idx").read_text()
    header = real.split("-" * 20)[0]
    dashes = next(line for line in real.splitlines() if line.startswith("-----"))
    row = f"{'4':<12}{'374Water Inc.':<62}{'933972':<12}{day:%Y%m%d}{'':<4}{file_name}"
    return (
        (header.rstrip("\n") + "\n" + dashes + "\n" + row + "\n")
        .replace("Mar 18, 2020", f"{day:%b %d, %Y}")
        .encode()
    )


async def test_form4_cycle_open_market_purchase_near_a_round_level(
    us_settings: Settings, redis: Redis, origin: Origin
) -> None:
    from zoneinfo import ZoneInfo

    day = date(2025, 5, 13)
    file_name = "edgar/data/933972/0000950170-25-000001.txt"
    origin.add(sec_edgar.daily_index_path(day), _index(day, file_name))
    listing = (FIXTURES / "sec-form4" / "index.json").read_text().replace("doc4.xml", "form4_purchase_P.xml")
    origin.add(sec_edgar.filing_index_path(file_name), listing.encode())
    origin.add(
        sec_edgar.filing_xml_path(file_name, "form4_purchase_P.xml"),
        (FIXTURES / "sec-form4" / "form4_purchase_P.xml").read_bytes(),
    )
    subs = SubscriptionStore(redis)
    await subs.touch(6)
    await subs.watch(6, ["SCWO"])
    now = datetime(2025, 5, 13, 21, 30, tzinfo=ZoneInfo("America/New_York"))
    async with make_client() as client:
        report = await run_cycle(
            "sec-form4", day, settings=us_settings, client=client, redis=redis, now=now, backoff=0.01
        )
    assert report.status == "processed", report.error
    assert report.rows == 2
    assert all(r.headers.get("User-Agent") == UA for r in origin.requests)
    (item,) = await Outbox(redis).claim(now, 10)
    rules = {a["rule"] for a in item.alerts}
    assert "insider_buy_near_round_number" in rules
    buy = next(a for a in item.alerts if a["rule"] == "insider_buy_near_round_number")
    assert buy["market"] == "US" and "$0.5" in buy["why"] and "code P" in buy["why"]
    async with make_client() as client:
        again = await run_cycle("sec-form4", day, settings=us_settings, client=client, redis=redis, now=now)
    assert again.status == "unchanged"


async def test_form4_needs_a_user_agent(origin: Origin, redis: Redis, redis_url: str) -> None:
    settings = load_settings({"SEC_URL": origin.url, "REDIS_URL": redis_url}, env_file=None)
    async with make_client() as client:
        report = await run_cycle(
            "sec-form4",
            date(2025, 5, 13),
            settings=settings,
            client=client,
            redis=redis,
            now=datetime(2025, 5, 14, tzinfo=NY),
        )
    assert report.status == "failed" and "SEC_USER_AGENT" in report.error
    assert origin.requests == []


async def test_ticker_map_refresh_and_lookup(us_settings: Settings, redis: Redis, origin: Origin) -> None:
    origin.add(
        "/files/company_tickers.json", (FIXTURES / "sec-form4" / "edgarkit_company_tickers.json").read_bytes()
    )
    assert await known(redis, "AAPL") is None  # not loaded: callers accept the ticker
    assert await needs_refresh(redis)
    count = await refresh(redis, us_settings.sec_url, UA, backoff=0.01)
    assert count > 9000
    assert await cik_for(redis, "aapl") == "320193"
    assert await cik_for(redis, "BABA") == "1577552"
    assert await known(redis, "NOSUCHTICKER") is False
    assert not await needs_refresh(redis)
    assert origin.requests[0].headers["User-Agent"] == UA


ATOM = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<feed xmlns="http://www.w3.org/2005/Atom">
<title>Latest Filings - Thu, 13 May 2025 16:10:00 EDT</title>
<entry><title>4 - Melkote Rajesh Ramaswamy (0002064133) (Reporting)</title><link rel="alternate" type="text/html" href="https://www.sec.gov/Archives/edgar/data/2064133/000095017025000001/0000950170-25-000001-index.htm"/><summary type="html"> <b>Filed:</b> 2025-05-13 <b>AccNo:</b> 0000950170-25-000001 <b>Size:</b> 6 KB</summary><updated>2025-05-13T16:06:07-04:00</updated><category scheme="https://www.sec.gov/" label="form type" term="4"/><id>urn:tag:sec.gov,2008:accession-number=0000950170-25-000001</id></entry>
<entry><title>4 - 374Water Inc. (0000933972) (Issuer)</title><link rel="alternate" type="text/html" href="https://www.sec.gov/Archives/edgar/data/933972/000095017025000001/0000950170-25-000001-index.htm"/><summary type="html"> <b>Filed:</b> 2025-05-13 <b>AccNo:</b> 0000950170-25-000001 <b>Size:</b> 6 KB</summary><updated>2025-05-13T16:06:07-04:00</updated><category scheme="https://www.sec.gov/" label="form type" term="4"/><id>urn:tag:sec.gov,2008:accession-number=0000950170-25-000001</id></entry>
</feed>
"""


async def test_intraday_filings_come_from_the_atom_feed(origin: Origin, redis: Redis, redis_url: str) -> None:
    settings = load_settings(
        {
            "SEC_URL": origin.url,
            "REDIS_URL": redis_url,
            "SEC_USER_AGENT": UA,
            "CLOCK_START": "2025-05-13T16:10:00-04:00",
        },
        env_file=None,
    )
    day = date(2025, 5, 13)
    origin.add(sec_edgar.current_feed_path(100), ATOM.encode("latin-1"))
    listing = (FIXTURES / "sec-form4" / "index.json").read_text().replace("doc4.xml", "form4_purchase_P.xml")
    for cik in ("2064133", "933972"):
        file_name = f"edgar/data/{cik}/0000950170-25-000001.txt"
        origin.add(sec_edgar.filing_index_path(file_name), listing.encode())
        origin.add(
            sec_edgar.filing_xml_path(file_name, "form4_purchase_P.xml"),
            (FIXTURES / "sec-form4" / "form4_purchase_P.xml").read_bytes(),
        )
    subs = SubscriptionStore(redis)
    await subs.touch(6)
    await subs.watch(6, ["SCWO"])
    async with make_client() as client:
        report = await run_cycle(
            "sec-form4",
            day,
            settings=settings,
            client=client,
            redis=redis,
            now=settings.clock()(),
            backoff=0.01,
        )
    assert report.status == "processed", report.error
    assert report.rows == 2 and report.enqueued == 1
    xml_fetches = [r for r in origin.requests if r.path.endswith(".xml")]
    assert len(xml_fetches) == 1  # the feed lists the filing twice; it is fetched once


async def test_us_confluence_joins_short_volume_and_an_insider_buy(
    us_settings: Settings, redis: Redis, origin: Origin
) -> None:
    from alerts.model import Alert
    from alerts.store.alertlog import AlertLog

    day = date(2025, 5, 13)
    earlier = Alert(
        rule="short_ratio_drop",
        code="SCWO",
        market="US",
        trade_date=date(2025, 5, 12),
        severity="notice",
        why="short volume 12% = lowest of 60 sessions (short volume, not interest)",
    )
    await AlertLog(redis).record([earlier])
    file_name = "edgar/data/933972/0000950170-25-000001.txt"
    origin.add(sec_edgar.daily_index_path(day), _index(day, file_name))
    listing = (FIXTURES / "sec-form4" / "index.json").read_text().replace("doc4.xml", "form4_purchase_P.xml")
    origin.add(sec_edgar.filing_index_path(file_name), listing.encode())
    origin.add(
        sec_edgar.filing_xml_path(file_name, "form4_purchase_P.xml"),
        (FIXTURES / "sec-form4" / "form4_purchase_P.xml").read_bytes(),
    )
    async with make_client() as client:
        report = await run_cycle(
            "sec-form4",
            day,
            settings=us_settings,
            client=client,
            redis=redis,
            now=datetime(2025, 5, 13, 21, 30, tzinfo=NY),
            backoff=0.01,
        )
    assert report.status == "processed"
    logged = await AlertLog(redis).for_day(day)
    confluence = [a for a in logged if a.rule == "confluence"]
    assert len(confluence) == 1
    assert confluence[0].market == "US" and confluence[0].code == "SCWO"
    assert "short_ratio_drop" in confluence[0].why and "insider_buy_near_round_number" in confluence[0].why


async def test_13d_cycle_reaches_a_watcher_of_the_issuer(
    us_settings: Settings, redis: Redis, origin: Origin
) -> None:
    # The ticker map (real company_tickers.json) names Aadi Bioscience (CIK 1422142) AADI; the real 13D names no
    # ticker, so the stored rows get it by issuer CIK and the alert reaches the AADI watcher.
    origin.add(
        "/files/company_tickers.json", (FIXTURES / "sec-form4" / "edgarkit_company_tickers.json").read_bytes()
    )
    await refresh(redis, us_settings.sec_url, UA, backoff=0.01)
    day = date(2025, 1, 2)
    file_name = "edgar/data/1422142/0001373604-25-000001.txt"
    index = (
        _index(day, file_name)
        .decode()
        .replace(
            f"{'4':<12}{'374Water Inc.':<62}{'933972':<12}",
            f"{'SCHEDULE 13D':<17}{'Aadi Bioscience, Inc.':<57}{'1422142':<12}",
        )
    )
    origin.add(sec_edgar.daily_index_path(day), index.encode())
    listing = (FIXTURES / "sec-form4" / "index.json").read_text().replace("doc4.xml", "primary_doc.xml")
    origin.add(sec_edgar.filing_index_path(file_name), listing.encode())
    origin.add(
        sec_edgar.filing_xml_path(file_name, "primary_doc.xml"),
        (FIXTURES / "sec-13d-13g" / "schedule13d.xml").read_bytes(),
    )
    subs = SubscriptionStore(redis)
    await subs.touch(8)
    await subs.watch(8, ["AADI"])
    now = datetime(2025, 1, 2, 22, 30, tzinfo=NY)
    async with make_client() as client:
        report = await run_cycle(
            "sec-13d-13g", day, settings=us_settings, client=client, redis=redis, now=now, backoff=0.01
        )
    assert report.status == "processed", report.error
    assert report.rows == 2
    stored = await FrameStore(redis).get("sec-13d-13g", "main", day, sec_13d_13g.SCHEMA)
    assert stored is not None and set(stored["ticker"]) == {"AADI"}
    assert set(stored["accession"]) == {"0001373604-25-000001"}
    (item,) = await Outbox(redis).claim(now, 10)
    (alert,) = item.alerts
    assert alert["rule"] == "large_holder_filing" and alert["code"] == "AADI" and alert["market"] == "US"
    assert "Leonard Braden Michael filed SCHEDULE 13D on AADI: 9.9%" in alert["why"]
    assert all(r.headers.get("User-Agent") == UA for r in origin.requests)


async def test_first_time_buy_needs_a_year_of_stored_purchases(
    us_settings: Settings, redis: Redis, origin: Origin
) -> None:
    # The Form 4 day of form4_purchase_P.xml (two purchases, $31,375) with the threshold lowered to $10,000: silent
    # while the stored purchases do not reach back a year, an alert once an older (empty) day is on record.
    day = date(2025, 5, 13)
    file_name = "edgar/data/933972/0000950170-25-000001.txt"
    origin.add(sec_edgar.daily_index_path(day), _index(day, file_name))
    listing = (FIXTURES / "sec-form4" / "index.json").read_text().replace("doc4.xml", "form4_purchase_P.xml")
    origin.add(sec_edgar.filing_index_path(file_name), listing.encode())
    origin.add(
        sec_edgar.filing_xml_path(file_name, "form4_purchase_P.xml"),
        (FIXTURES / "sec-form4" / "form4_purchase_P.xml").read_bytes(),
    )
    params = load_params({"first_time_insider_buy": {"min_value_usd": 10_000.0}})
    now = datetime(2025, 5, 13, 21, 30, tzinfo=NY)
    async with make_client() as client:
        report = await run_cycle(
            "sec-form4",
            day,
            settings=us_settings,
            client=client,
            redis=redis,
            now=now,
            params=params,
            backoff=0.01,
        )
    assert report.status == "processed", report.error
    logged = await AlertLog(redis).recent([day])
    assert "first_time_insider_buy" not in {a.rule for a in logged}
    stored = await FrameStore(redis).get("sec-form4", "buys", day, sec_form4.SCHEMA)
    assert stored is not None and stored["code"].tolist() == ["P", "P"]
    # A year back, an empty day of purchases: the history now covers the lookback, and nobody bought SCWO before.
    year_ago = date(2024, 5, 14)
    await FrameStore(redis).put("sec-form4", {"buys": empty_frame(sec_form4.SCHEMA)}, year_ago)
    await redis.delete(keys.cycle_done("sec-form4", day))
    report = await evaluate_and_route(
        replace(report, status="processed"), settings=us_settings, redis=redis, now=now, params=params
    )
    logged = await AlertLog(redis).recent([day])
    (first,) = [a for a in logged if a.rule == "first_time_insider_buy"]
    assert first.code == "SCWO" and first.fact("lookback").value == 364  # type: ignore[union-attr]
