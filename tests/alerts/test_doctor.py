"""`positioning-bot doctor` against the local origin: real-layout files at the sources' real paths, an old layout,
a changed header, a redirect to 404 and a hang; `now` is fixed per case."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from redis.asyncio import Redis

from alerts.calendar import HK_TZ
from alerts.doctor import (
    Redirect,
    SourceCheck,
    _reconciled,
    check_source,
    daily_doctor,
    exit_code,
    render_json,
    render_table,
    run_checks,
)
from alerts.fetch import make_client
from alerts.sources import SOURCES, get_source
from alerts.sources.hkex_shortable import paths as shortable_paths
from alerts.store.frames import FrameStore
from config.settings import Settings, load_settings
from tests.support.cli import run_cli
from tests.support.origin import Origin
from tests.support.paths import fixture_bytes
from tests.support.workbook import review_workbook

NEW_YORK = ZoneInfo("America/New_York")
# 08:45 HKT the morning after 20 Nov 2025: the HK fixtures dated 2025-11-20 are each source's latest due file.
MORNING = datetime(2025, 11, 21, 8, 45, tzinfo=HK_TZ)
SHORT = "/eng/stat/smstat/ssturnover/ncms/"
SOUTHBOUND = "/sdw/search/mutualmarket.aspx?t=hk"
SFC_PATH = "/-/media/EN/pdf/spr/2022/12/02/Short_Position_Reporting_Aggregated_Data_20221202.csv"
SFC_BYTES = fixture_bytes("sfc-short-positions", "Short_Position_Reporting_Aggregated_Data_20221202.csv")
QUOTES_PATH = "/eng/stat/smstat/dayquot/d251120e.htm"
CONNECT_PATH = "/eng/csm/DailyStat/data_tab_daily_20260716e.js"
FORM4_FOLDER = "/Archives/edgar/data/1770787/000089924320008928/"
HK_NAMES = (
    "hkex-short",
    "hkex-short-midday",
    "hkex-quotes",
    "hkex-southbound",
)  # all due for 2025-11-20 at MORNING
ALL_NAMES = (
    *HK_NAMES,
    "hkex-stock-connect-daily",
    "hkex-di",
    "hkex-buybacks",
    "sfc-short-positions",
    "finra-short-volume",
    "sec-form4",
    "hkex-shortable-list",
    "sec-13d-13g",
    "hkexnews-announcements",
    "hsi-index-reviews",
)
SHORTABLE_PATH = shortable_paths(date(2023, 5, 18))[0]
# The title search for 9 Sep 2026 at its real path (constructed market-wide day, see the fixture README).
ANNOUNCEMENTS = get_source("hkexnews-announcements").paths(date(2026, 9, 9))[0]
HSI_CATALOGUE = "/data/eng/download/notices.json"
HSI_WORKBOOK = "/static/uploads/contents/en/news/indexChgNotice/20260522T174510.xlsx"


def _midday_gem() -> bytes:
    """Constructed: the empty 2017 GEM morning page re-dated 20 Nov 2025 (no real one for that day is held)."""
    return fixture_bytes("hkex-short", "MSHTGEM_empty_2017.HTM").replace(
        b"26 JUN 2017 (MONDAY)", b"20 NOV 2025 (THURSDAY)"
    )


# path on the origin -> bytes; every file at the path its source really uses.
FILES: dict[str, bytes] = {
    SHORT + "ASHTMAIN.HTM": fixture_bytes("hkex-short", "ASHTMAIN.HTM"),
    SHORT + "ASHTGEM.HTM": fixture_bytes("hkex-short", "ASHTGEM.HTM"),
    SHORT + "MSHTMAIN.HTM": fixture_bytes("hkex-short", "MSHTMAIN.HTM"),
    SHORT + "MSHTGEM.HTM": _midday_gem(),
    QUOTES_PATH: fixture_bytes("hkex-quotes", "d251120e.htm"),
    SOUTHBOUND: fixture_bytes("hkex-southbound", "mutualmarket_t-hk_20251120.html"),
    CONNECT_PATH: fixture_bytes("hkex-stock-connect-daily", "data_tab_daily_20260716e.js"),
    "/di/summary/DSM20251126C1.htm": fixture_bytes("hkex-di", "DSM20251126C1.htm"),
    "/di/summary/DSM20251126C2.htm": fixture_bytes("hkex-di", "DSM20251126C2.htm"),
    "/reports/sharerepur/documents/SRRPT20170313.xls": fixture_bytes("hkex-buybacks", "SRRPT20170313.xls"),
    SFC_PATH: SFC_BYTES,
    SHORTABLE_PATH: fixture_bytes("hkex-shortable-list", "ds_list20230518.csv"),
    "/equity/regsho/daily/CNMSshvol20210427.txt": fixture_bytes(
        "finra-short-volume", "CNMSshvol20210427.txt"
    ),
    "/Archives/edgar/daily-index/2020/QTR1/form.20200318.idx": fixture_bytes(
        "sec-form4", "form.20200318.idx"
    ),
    # The index's first Form 4 filing: its real folder listing, and (constructed) a real Form 4 as its XML.
    FORM4_FOLDER + "index.json": fixture_bytes("sec-form4", "index.json"),
    FORM4_FOLDER + "doc4.xml": fixture_bytes("sec-form4", "374WaterForm4.xml"),
    ANNOUNCEMENTS: fixture_bytes("hkexnews-announcements", "titleSearchServlet_20260909_constructed.json"),
    # Constructed (tests/fixtures/hsi-index-reviews/README.md): the catalogue and the review workbook it lists.
    HSI_CATALOGUE: fixture_bytes("hsi-index-reviews", "notices.json"),
    HSI_WORKBOOK: fixture_bytes("hsi-index-reviews", "20260522T174510.xlsx"),
}


@dataclass(frozen=True)
class Case:
    """A source, the instant doctor runs, and what it must find."""

    now: datetime
    day: date
    paths: tuple[str, ...]  # the file(s) whose bytes are counted
    rows: int | None  # None: what the parser reads from the constructed file(s), which other work may extend
    lag: str


CASES: dict[str, Case] = {
    "hkex-short": Case(
        MORNING, date(2025, 11, 20), (SHORT + "ASHTMAIN.HTM", SHORT + "ASHTGEM.HTM"), None, "16h45m"
    ),
    "hkex-short-midday": Case(
        MORNING, date(2025, 11, 20), (SHORT + "MSHTMAIN.HTM", SHORT + "MSHTGEM.HTM"), None, "20h45m"
    ),
    "hkex-quotes": Case(MORNING, date(2025, 11, 20), (QUOTES_PATH,), None, "15h15m"),
    "hkex-southbound": Case(MORNING, date(2025, 11, 20), (SOUTHBOUND,), None, "2h45m"),
    # The real file of Thu 16 Jul 2026 (its top 10s cut to one row a southbound channel upstream: 2 rows).
    "hkex-stock-connect-daily": Case(
        datetime(2026, 7, 16, 19, 0, tzinfo=HK_TZ), date(2026, 7, 16), (CONNECT_PATH,), 2, "1h30m"
    ),
    "hkex-di": Case(
        datetime(2025, 11, 27, 8, 45, tzinfo=HK_TZ),
        date(2025, 11, 26),
        ("/di/summary/DSM20251126C1.htm", "/di/summary/DSM20251126C2.htm"),
        None,
        "15h45m",
    ),
    "hkex-buybacks": Case(
        datetime(2017, 3, 13, 10, 0, tzinfo=HK_TZ),
        date(2017, 3, 13),
        ("/reports/sharerepur/documents/SRRPT20170313.xls",),
        3,
        "4h00m",
    ),
    "hkex-shortable-list": Case(
        datetime(2023, 5, 18, 8, 30, tzinfo=HK_TZ), date(2023, 5, 18), (SHORTABLE_PATH,), 982, "30m"
    ),
    "sfc-short-positions": Case(
        datetime(2022, 12, 9, 10, 30, tzinfo=HK_TZ), date(2022, 12, 2), (SFC_PATH,), 981, "1h30m"
    ),
    "finra-short-volume": Case(
        datetime(2021, 4, 27, 20, 0, tzinfo=NEW_YORK),
        date(2021, 4, 27),
        ("/equity/regsho/daily/CNMSshvol20210427.txt",),
        9714,
        "2h00m",
    ),
    # Rows of sec-form4 are the distinct Form 4/4A filings the day's index lists (the first one is sampled).
    "sec-form4": Case(
        datetime(2020, 3, 18, 22, 0, tzinfo=NEW_YORK),
        date(2020, 3, 18),
        ("/Archives/edgar/daily-index/2020/QTR1/form.20200318.idx",),
        991,
        "12h30m",
    ),
    # Rows of sec-13d-13g are the distinct Schedule 13D/13G filings the index lists; the 2020 ones are paper-era
    # (SC 13D …, no XML), so there is no filing to sample.
    "sec-13d-13g": Case(
        datetime(2020, 3, 18, 22, 0, tzinfo=NEW_YORK),
        date(2020, 3, 18),
        ("/Archives/edgar/daily-index/2020/QTR1/form.20200318.idx",),
        44,
        "1h00m",
    ),
    # Every calendar day has announcements due from 06:00 HKT; 11 rows (one per stock code of the 10 filings).
    "hkexnews-announcements": Case(
        datetime(2026, 9, 9, 18, 30, tzinfo=HK_TZ), date(2026, 9, 9), (ANNOUNCEMENTS,), 11, "12h30m"
    ),
    # Rows of hsi-index-reviews are the review workbooks the catalogue lists for the day; the newest one is sampled.
    "hsi-index-reviews": Case(
        datetime(2026, 5, 22, 18, 0, tzinfo=HK_TZ), date(2026, 5, 22), (HSI_CATALOGUE, HSI_WORKBOOK), 1, "15m"
    ),
}


@pytest.fixture
def served(origin: Origin) -> Origin:
    """The origin serving every fixture file."""
    for path, body in FILES.items():
        origin.add(path, body)
    return origin


@pytest.fixture
def doc_settings(origin: Origin, redis_url: str) -> Settings:
    """Every base URL at the origin, and a declared SEC User-Agent."""
    env = {
        name: origin.url
        for name in ("HKEX_URL", "HKEXNEWS_URL", "SFC_URL", "HKEX_DI_URL", "FINRA_URL", "SEC_URL", "HSI_URL")
    }
    return load_settings(
        {**env, "REDIS_URL": redis_url, "SEC_USER_AGENT": "Doctor Test ops@example.com"}, env_file=None
    )


async def _check(
    settings: Settings, name: str, now: datetime, store: FrameStore | None = None, deadline: float = 10.0
) -> SourceCheck:
    async with make_client() as client:
        return await check_source(
            get_source(name), settings, client, now, store, deadline=deadline, backoff=0.01
        )


def _rows(name: str, case: Case) -> int:
    if case.rows is not None:
        return case.rows
    return sum(len(get_source(name).parse(FILES[path])) for path in case.paths)


def test_cases_cover_every_registered_source() -> None:
    assert set(CASES) == set(SOURCES) == set(ALL_NAMES)


@pytest.mark.parametrize("name", list(CASES))
async def test_every_source_is_healthy_on_its_real_layout(
    served: Origin, doc_settings: Settings, name: str
) -> None:
    case = CASES[name]
    check = await _check(doc_settings, name, case.now)
    assert check.healthy, check.problem
    assert (check.source, check.day, check.status, check.redirects) == (name, case.day, "200", ())
    assert check.rows == _rows(name, case)
    assert check.bytes == sum(len(FILES[path]) for path in case.paths)
    assert check.lag == case.lag
    assert check.url == served.url + case.paths[0]
    assert check.last_good == "—" and check.problem == "" and check.note == ""
    assert check.layout and check.reconciled  # "—" when the parser does not say


async def test_hsi_day_without_a_review_is_healthy_and_still_samples_the_layout(
    served: Origin, doc_settings: Settings
) -> None:
    # Tuesday 26 May 2026: the catalogue lists no review that day (the normal case); the newest workbook is sampled.
    check = await _check(doc_settings, "hsi-index-reviews", datetime(2026, 5, 26, 18, 0, tzinfo=HK_TZ))
    assert check.healthy, check.problem
    assert (check.day, check.rows, check.layout) == (date(2026, 5, 26), 0, "review-result-2026")
    assert check.bytes == len(FILES[HSI_CATALOGUE]) + len(FILES[HSI_WORKBOOK])


async def test_hsi_changed_review_header_is_unhealthy(served: Origin, doc_settings: Settings) -> None:
    served.routes[HSI_WORKBOOK].body = review_workbook(
        result=[["Index", "Change", "Code", "Name"], ["HSI", "Addition", 700, "X"]]
    )
    check = await _check(doc_settings, "hsi-index-reviews", CASES["hsi-index-reviews"].now)
    assert not check.healthy and check.layout == "unrecognised"
    assert "Index Code" in check.problem and check.url == served.url + HSI_WORKBOOK


async def test_old_buyback_layout_is_recognised_as_2017(served: Origin, doc_settings: Settings) -> None:
    check = await _check(doc_settings, "hkex-buybacks", CASES["hkex-buybacks"].now)
    assert check.healthy
    assert check.layout == "srrpt-2017"
    assert check.reconciled == "—"  # the 2017 report prints no totals to check the rows against


async def _all_checks(settings: Settings, store: FrameStore | None = None) -> list[SourceCheck]:
    return [await _check(settings, name, CASES[name].now, store) for name in ALL_NAMES]


async def test_table_lists_every_source_with_aligned_columns(served: Origin, doc_settings: Settings) -> None:
    checks = await _all_checks(doc_settings)
    text = render_table(checks, now=MORNING)
    lines = text.splitlines()
    assert lines[0] == "doctor at 2025-11-21 08:45 HKT"
    header = lines[1]
    assert header.split() == [
        "source",
        "date",
        "status",
        "redirects",
        "bytes",
        "layout",
        "rows",
        "reconciled",
        "lag",
        "last",
        "good",
        "verdict",
        "url",
    ]
    rows = {line.split()[0]: line for line in lines[2 : 2 + len(checks)]}
    assert set(rows) == set(ALL_NAMES)
    # Columns line up: every row has its verdict where the header has "verdict".
    at = header.index("verdict")
    assert all(line[at : at + 2] == "ok" for line in rows.values())
    short = rows["hkex-short"].split()
    assert short[:4] == ["hkex-short", "2025-11-20", "200", "—"]
    assert "16h45m" in short and short[-2:] == [served.url + SHORT + "ASHTMAIN.HTM", "(+1)"]
    assert "9,714" in rows["finra-short-volume"] and "srrpt-2017" in rows["hkex-buybacks"]
    assert text.rstrip().endswith(f"all {len(ALL_NAMES)} source(s) healthy")
    assert "tabdata-2026" in rows["hkex-stock-connect-daily"]
    assert exit_code(checks) == 0


async def test_json_has_every_field_per_source(served: Origin, doc_settings: Settings) -> None:
    checks = await _all_checks(doc_settings)
    payload = json.loads(render_json(checks, now=MORNING, notes=["a note"]))
    assert payload["healthy"] is True and payload["checked_at"] == "2025-11-21T08:45:00+08:00"
    assert payload["notes"] == ["a note"]
    by_name = {item["source"]: item for item in payload["sources"]}
    assert list(by_name) == list(ALL_NAMES)
    quotes = by_name["hkex-quotes"]
    assert {
        k: quotes[k] for k in ("date", "status", "redirects", "bytes", "rows", "lag", "healthy", "problem")
    } == {
        "date": "2025-11-20",
        "status": "200",
        "redirects": [],
        "bytes": len(FILES[QUOTES_PATH]),
        "rows": _rows("hkex-quotes", CASES["hkex-quotes"]),
        "lag": "15h15m",
        "healthy": True,
        "problem": "",
    }
    assert quotes["lag_seconds"] == 15 * 3600 + 15 * 60
    assert quotes["url"] == served.url + QUOTES_PATH and quotes["urls"] == [quotes["url"]]
    assert set(quotes) >= {"layout", "reconciled", "last_good", "note"}
    # The constructed quotations file prints its totals: each check is listed with its verdict.
    assert "✓" in quotes["reconciled"] and "✗" not in quotes["reconciled"]


def test_reconciled_text_exact_within_slack_and_off() -> None:
    frame = pd.DataFrame({"x": [1]})
    frame.attrs["reconciled"] = {
        "shares": (1200.0, 1200.0),
        "short_value": (1.2e10, 1.2001e10),
        "turnover": (1.0e10, 1.2e10),
    }
    text, agreed = _reconciled([frame])
    assert text == "shares 1200=1200 ✓; short_value 1.2e+10≈1.2e+10 ✓; turnover 1e+10≠1.2e+10 ✗"
    assert not agreed
    assert _reconciled([pd.DataFrame()]) == ("—", True)


async def test_changed_header_is_unhealthy_and_names_it(origin: Origin, doc_settings: Settings) -> None:
    changed = SFC_BYTES.replace(
        b"Aggregated Reportable Short Positions (Shares)", b"Short Positions (Shares)", 1
    )
    origin.add(SFC_PATH, changed)
    check = await _check(doc_settings, "sfc-short-positions", CASES["sfc-short-positions"].now)
    assert not check.healthy
    assert (check.status, check.layout, check.bytes, check.rows) == (
        "200",
        "unrecognised",
        len(changed),
        None,
    )
    assert check.problem.startswith("MalformedFile: ")
    assert "'Short Positions (Shares)'" in check.problem
    assert "FAIL" in render_table(
        [check]
    ) and "problems:\n  sfc-short-positions: MalformedFile" in render_table([check])


async def test_redirect_to_404_is_unhealthy_and_shows_the_redirect(
    origin: Origin, doc_settings: Settings
) -> None:
    # HKEX moved the file and left a redirect to a page that does not exist, for the newest and the previous day.
    for day in ("251120", "251119"):
        origin.add(f"/eng/stat/smstat/dayquot/d{day}e.htm", status=302, location=f"/moved/d{day}e.htm")
    check = await _check(doc_settings, "hkex-quotes", MORNING)
    assert not check.healthy
    assert check.day == date(2025, 11, 19)  # the newest was not out: the previous due date was checked too
    assert check.status == "404"
    assert check.redirects == (
        Redirect(
            302, origin.url + "/eng/stat/smstat/dayquot/d251119e.htm", origin.url + "/moved/d251119e.htm"
        ),
    )
    assert "no file for 2025-11-20 by the end of its publication window" in check.problem
    assert "NotPublishedYet" in check.problem and "404" in check.problem
    assert "not published yet: 2025-11-20" in check.note and "redirected 302" in check.note
    row = next(line for line in render_table([check]).splitlines() if line.startswith("hkex-quotes"))
    assert row.split()[1:4] == ["2025-11-19", "404", "302"]


async def test_redirect_to_the_moved_file_is_healthy_and_noted(
    origin: Origin, doc_settings: Settings
) -> None:
    origin.add(QUOTES_PATH, status=301, location="/new" + QUOTES_PATH)
    origin.add("/new" + QUOTES_PATH, FILES[QUOTES_PATH])
    check = await _check(doc_settings, "hkex-quotes", MORNING)
    assert check.healthy, check.problem
    assert check.status == "200" and [r.status for r in check.redirects] == [301]
    assert check.note == f"redirected 301: {origin.url + QUOTES_PATH} → {origin.url}/new{QUOTES_PATH}"


async def test_hang_is_a_timeout_and_does_not_hold_up_the_others(
    served: Origin, doc_settings: Settings
) -> None:
    served.add(QUOTES_PATH, FILES[QUOTES_PATH], delay=5.0)
    started = time.monotonic()
    async with make_client() as client:
        checks = await run_checks(
            doc_settings, client, MORNING, None, ["hkex-quotes", "hkex-short"], deadline=0.5, backoff=0.01
        )
    assert time.monotonic() - started < 0.5 + 1.5
    hung, fine = checks
    assert (hung.source, hung.status, hung.healthy) == ("hkex-quotes", "timeout", False)
    assert hung.problem == f"no answer within 0.5 s from {served.url + QUOTES_PATH}"
    assert fine.healthy and fine.source == "hkex-short"
    assert exit_code(checks) == 1


async def test_not_published_yet_falls_back_to_the_previous_due_date(
    served: Origin, doc_settings: Settings
) -> None:
    # 07:00 on the 14th: the 14th's report is due (window 06:00-09:30) but not out; the 13th's is checked instead.
    check = await _check(doc_settings, "hkex-buybacks", datetime(2017, 3, 14, 7, 0, tzinfo=HK_TZ))
    assert check.healthy, check.problem
    assert check.day == date(2017, 3, 13) and check.rows == 3 and check.lag == "1d01h"
    assert check.note.startswith("not published yet: 2017-03-14 (HTTP 404")
    assert check.note.endswith("checked 2017-03-13")


async def test_sec_without_user_agent_is_reported_not_fetched(served: Origin, settings: Settings) -> None:
    check = await _check(settings, "sec-form4", CASES["sec-form4"].now)
    assert not check.healthy
    assert check.status == "config" and "SEC_USER_AGENT is not set" in check.problem
    assert not any("Archives" in r.path for r in served.requests)


async def test_last_good_comes_from_redis_and_nothing_is_stored(
    served: Origin, doc_settings: Settings, redis: Redis
) -> None:
    store = FrameStore(redis)
    await store.record_status(
        "hkex-quotes",
        datetime(2025, 11, 20, 17, 42, tzinfo=HK_TZ),
        ok=True,
        detail={"date": "2025-11-20", "rows": "13"},
    )
    before = sorted(await redis.keys("*"))
    checks = await _all_checks(doc_settings, store)
    by_name = {check.source: check for check in checks}
    assert by_name["hkex-quotes"].last_good == "2025-11-20 @11-20 17:42"
    assert by_name["hkex-short"].last_good == "never"
    assert sorted(await redis.keys("*")) == before  # read-only: no frames, fetch state or status written


async def test_daily_doctor_names_only_the_unhealthy_sources(
    served: Origin, doc_settings: Settings, redis: Redis
) -> None:
    async with make_client() as client:
        assert await daily_doctor(doc_settings, client, redis, MORNING, list(HK_NAMES)) is None
        served.add(SFC_PATH, SFC_BYTES.replace(b"Stock Name", b"<Stock Name>", 1))
        text = await daily_doctor(
            doc_settings,
            client,
            redis,
            CASES["sfc-short-positions"].now,
            ["sfc-short-positions", "hkex-buybacks"],
        )
    assert text is not None
    lines = text.splitlines()
    assert lines[0] == "🩺 doctor: 2 of 2 source(s) unhealthy"
    assert lines[1].startswith("• <b>sfc-short-positions</b> 2022-12-02 [200]: MalformedFile: ")
    assert "'&lt;Stock Name&gt;'" in lines[1] and "<Stock" not in lines[1]  # Telegram HTML: text is escaped
    assert lines[2].startswith("• <b>hkex-buybacks</b>")  # SRRPT of Dec 2022 is not on the origin
    assert lines[-1] == "Details: <code>positioning-bot doctor</code>"


@pytest.fixture
def cli_origin() -> Iterator[Origin]:
    with Origin() as server:
        for path, body in FILES.items():
            server.add(path, body)
        yield server


def test_cli_doctor_json_exit_codes(cli_origin: Origin, tmp_path: Path) -> None:
    names = ("HKEX_URL", "HKEXNEWS_URL", "SFC_URL", "HKEX_DI_URL", "FINRA_URL", "SEC_URL")
    env = {
        **{n: cli_origin.url for n in names},
        "LOG_LEVEL": "WARNING",
        "CLOCK_START": "2025-11-21T08:45:00+08:00",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }  # nothing listens there: last good shows "—" with a note
    picked = [arg for name in HK_NAMES for arg in ("--source", name)]
    result = run_cli("doctor", "--format", "json", *picked, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    payload = json.loads(result.stdout)
    assert payload["healthy"] is True
    assert [s["source"] for s in payload["sources"]] == list(HK_NAMES)
    assert {s["date"] for s in payload["sources"]} == {"2025-11-20"}
    assert {s["last_good"] for s in payload["sources"]} == {"—"}
    assert payload["notes"][0].startswith("Redis unreachable")
    # hkex-di's 20 Nov summaries are not on the origin (and their window has ended): exit 1, named in the text.
    failing = run_cli(
        "doctor", "--source", "hkex-quotes", "--source", "hkex-di", "--timeout", "10", env=env, cwd=tmp_path
    )
    assert failing.returncode == 1, failing.stderr
    assert "1 of 2 source(s) unhealthy: hkex-di" in failing.stdout
    assert "hkex-di: no file for 2025-11-20 by the end of its publication window" in failing.stdout


async def test_a_revisions_list_without_a_revision_on_the_checked_dates_is_healthy(
    served: Origin, doc_settings: Settings
) -> None:
    # 23 May 2023: the checked sessions (23 and 22 May) start no revision, so both URLs answer 404.
    check = await _check(doc_settings, "hkex-shortable-list", datetime(2023, 5, 23, 9, 0, tzinfo=HK_TZ))
    assert check.healthy, check.problem
    assert check.day == date(2023, 5, 22)
    assert "no revision takes effect on 2023-05-22 (normal for this list)" in check.note


async def test_sec_13d_samples_one_xml_schedule(origin: Origin, doc_settings: Settings) -> None:
    # A 2026-layout index row (a 17-wide form type) for the real 13D; the doctor fetches it as its one sample.
    real = fixture_bytes("sec-form4", "form.20200318.idx").decode()
    header = real.split("-" * 20)[0].rstrip("\n").replace("Mar 18, 2020", "Jan 02, 2025")
    dashes = next(line for line in real.splitlines() if line.startswith("-----"))
    file_name = "edgar/data/1422142/0001373604-25-000001.txt"
    row = f"{'SCHEDULE 13D':<17}{'Aadi Bioscience, Inc.':<57}{'1422142':<12}20250102    {file_name}"
    origin.add(
        "/Archives/edgar/daily-index/2025/QTR1/form.20250102.idx",
        "\n".join([header, dashes, row, ""]).encode(),
    )
    folder = "/Archives/edgar/data/1422142/000137360425000001/"
    listing = fixture_bytes("sec-form4", "index.json").replace(b"doc4.xml", b"primary_doc.xml")
    origin.add(folder + "index.json", listing)
    origin.add(folder + "primary_doc.xml", fixture_bytes("sec-13d-13g", "schedule13d.xml"))
    check = await _check(doc_settings, "sec-13d-13g", datetime(2025, 1, 2, 22, 0, tzinfo=NEW_YORK))
    assert check.healthy, check.problem
    assert check.day == date(2025, 1, 2) and check.rows == 1 and check.layout == "schedule13D"
    assert [r.path for r in origin.requests][-1] == folder + "primary_doc.xml"
