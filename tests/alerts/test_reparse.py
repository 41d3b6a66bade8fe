"""Layout drift loses nothing: a file that fails to parse is kept, the admins are told once per layout, and
`positioning-bot reparse` stores it after an upgrade and routes its alerts once. Real HTTP, Redis and CLI process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from redis.asyncio import Redis

from alerts.calendar import HK_TZ
from alerts.errors import MalformedFile
from alerts.fetch import make_client
from alerts.ingest import ingest
from alerts.pipeline import is_done, run_cycle
from alerts.reparse import reparse_day
from alerts.sources import SOURCES, get_source
from alerts.store import keys
from alerts.store.failed import FailedFiles, layout_signature
from alerts.store.frames import FetchState, FrameStore
from alerts.store.outbox import Outbox, OutboxItem
from alerts.store.subscriptions import SubscriptionStore
from bot.demo import demo_root
from bot.scheduler import Poller, drift_notice
from config.settings import Settings, load_settings
from tests.support.bothelpers import seed_demo
from tests.support.cli import run_cli
from tests.support.origin import Origin
from tests.support.paths import fixture_bytes

ADMIN, CHAT = 7, 42
QUOTES = "hkex-quotes"
DAYS = (date(2025, 11, 26), date(2025, 11, 27))
NOW = datetime(2025, 11, 27, 18, 0, tzinfo=HK_TZ)
# What the parser of the running release knows, and what the (changed) files now carry.
OLD_HEADERS = ("CODE", "NAME OF STOCK", "CUR", "PRV.CLO.", "ASK/BID", "HIGH/LOW", "SHARES TRADED", "TURNOVER")
NEW_HEADERS = (
    "CODE",
    "NAME OF STOCK",
    "CUR",
    "PRV.CLO.",
    "ASK/BID",
    "HIGH/LOW",
    "SHARES TRADED",
    "TURNOVER ($)",
    "<VWAP>",
)
SFC = get_source("sfc-short-positions")
SFC_DAY = date(2022, 12, 2)
SFC_PATH = "/-/media/EN/pdf/spr/2022/12/02/Short_Position_Reporting_Aggregated_Data_20221202.csv"
SFC_BYTES = fixture_bytes("sfc-short-positions", "Short_Position_Reporting_Aggregated_Data_20221202.csv")
# The SFC renames a column: a changed header the real parser refuses.
SFC_CHANGED = SFC_BYTES.replace(b"Date,Stock Code,Stock Name,", b"Date,Stock Code,Stock Name (English),", 1)


def _quotes_path(day: date) -> str:
    return f"/eng/stat/smstat/dayquot/d{day:%y%m%d}e.htm"


def _old_parser(
    fails: Callable[[bytes], bool] = lambda _data: True, source: str = QUOTES
) -> Callable[[pytest.MonkeyPatch], None]:
    """Install, for `source`, the parser of a release that does not know the files' new layout yet."""
    real = get_source(source)
    parse = real.tables["main"].parse

    def old(data: bytes) -> pd.DataFrame:
        if fails(data):
            raise MalformedFile(
                f"{source}: header row 3 changed",
                expected=OLD_HEADERS,
                found=NEW_HEADERS,
                layout="dayquot-2020",
            )
        return parse(data)

    def install(patch: pytest.MonkeyPatch) -> None:
        patch.setitem(
            SOURCES,
            source,
            replace(real, tables={**real.tables, "main": replace(real.tables["main"], parse=old)}),
        )

    return install


@pytest.fixture
def admin_settings(origin: Origin, redis_url: str) -> Settings:
    names = ("HKEX_URL", "HKEXNEWS_URL", "SFC_URL", "HKEX_DI_URL")
    return load_settings(
        {**{n: origin.url for n in names}, "REDIS_URL": redis_url, "ADMIN_CHAT_IDS": str(ADMIN)},
        env_file=None,
    )


@pytest.fixture
def cli_env(origin: Origin, redis_url: str) -> dict[str, str]:
    """Environment of a CLI process on the same origin and Redis, the morning after."""
    names = ("HKEX_URL", "HKEXNEWS_URL", "SFC_URL", "HKEX_DI_URL", "FINRA_URL", "SEC_URL")
    return {
        **{n: origin.url for n in names},
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "WARNING",
        "CLOCK_START": "2025-11-28T09:00:00+08:00",
    }


async def _ingest(settings: Settings, redis: Redis, source: str, day: date) -> str:
    async with make_client() as client:
        report = await ingest(
            get_source(source),
            day,
            settings=settings,
            client=client,
            store=FrameStore(redis),
            now=NOW,
            backoff=0.01,
        )
    return report.status


# --- keeping ---------------------------------------------------------------------------------------------------


async def test_changed_header_is_kept_with_its_evidence_and_nothing_stored(
    settings: Settings, origin: Origin, redis: Redis
) -> None:
    origin.add(SFC_PATH, SFC_CHANGED, etag='"new"')
    with pytest.raises(MalformedFile) as info:
        await _ingest(settings, redis, SFC.name, SFC_DAY)
    line = str(info.value)
    assert (
        "\n" not in line and SFC.name in line and SFC_PATH in line and "header" in line
    )  # source, file, reason
    store = FrameStore(redis)
    assert await store.dates(SFC.name) == []
    assert await store.fetch_state(origin.url + SFC_PATH) == FetchState()
    failed = FailedFiles(redis)
    (kept,) = await failed.kept(SFC.name, SFC_DAY)
    assert (kept.url, kept.failed, kept.etag, kept.error_type) == (
        origin.url + SFC_PATH,
        True,
        '"new"',
        "MalformedFile",
    )
    assert "Stock Name (English)" in kept.error and kept.name == SFC_PATH.rsplit("/", 1)[1]
    assert (kept.expected, kept.found) == (info.value.expected, info.value.found)
    assert await failed.content(kept) == SFC_CHANGED
    assert 0 < await redis.ttl(keys.failed_file(SFC.name, SFC_DAY, kept.sha256)) <= keys.FAILED_TTL_SECONDS

    with pytest.raises(MalformedFile):  # polled again: the same bytes are kept once
        await _ingest(settings, redis, SFC.name, SFC_DAY)
    assert len(await failed.kept(SFC.name)) == 1

    origin.routes[SFC_PATH].body = SFC_BYTES  # the origin fixes its file: stored, the kept one is superseded
    assert await _ingest(settings, redis, SFC.name, SFC_DAY) == "stored"
    assert await failed.kept(SFC.name) == []


async def test_evidence_given_by_the_parser_is_kept(
    settings: Settings, origin: Origin, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    _old_parser()(monkeypatch)
    body = (demo_root() / _quotes_path(DAYS[1]).lstrip("/")).read_bytes()
    origin.add(_quotes_path(DAYS[1]), body)
    with pytest.raises(MalformedFile):
        await _ingest(settings, redis, QUOTES, DAYS[1])
    (kept,) = await FailedFiles(redis).kept(QUOTES)
    assert (kept.expected, kept.found, kept.layout) == (OLD_HEADERS, NEW_HEADERS, "dayquot-2020")
    assert kept.size == len(body) and await FrameStore(redis).dates(QUOTES) == []


async def test_kept_files_are_bounded_in_size_and_number(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys, "FAILED_MAX_BYTES", 10)
    monkeypatch.setattr(keys, "FAILED_MAX_PER_SOURCE", 2)
    failed, error = FailedFiles(redis), MalformedFile("bad")
    assert await failed.put(SFC.name, SFC_DAY, url="u", content=b"x" * 11, now=NOW, error=error) is None
    for n in range(3):
        await failed.put(
            SFC.name,
            SFC_DAY + timedelta(days=n),
            url=f"u{n}",
            content=b"file %d" % n,
            now=NOW + timedelta(seconds=n),
            error=error,
        )
    assert [k.url for k in await failed.kept(SFC.name)] == ["u1", "u2"]  # the oldest was dropped
    assert await redis.exists(keys.failed_file(SFC.name, SFC_DAY, "0" * 64)) == 0


async def test_multi_file_day_keeps_each_file_and_reparse_rebuilds_it_from_them(
    settings: Settings, origin: Origin, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    day, c1 = date(2025, 11, 26), fixture_bytes("hkex-di", "DSM20251126C1.htm")
    for n in (1, 2):
        origin.add(f"/di/summary/DSM20251126C{n}.htm", fixture_bytes("hkex-di", f"DSM20251126C{n}.htm"))
    with monkeypatch.context() as patch:
        _old_parser(lambda data: data == c1, source="hkex-di")(patch)  # only C1 has the new layout
        with pytest.raises(MalformedFile):
            await _ingest(settings, redis, "hkex-di", day)
    kept = await FailedFiles(redis).kept("hkex-di", day)
    assert sorted((k.name, k.failed) for k in kept) == [
        ("DSM20251126C1.htm", True),
        ("DSM20251126C2.htm", False),
    ]
    assert await FrameStore(redis).dates("hkex-di") == []

    origin.routes.clear()  # rebuilt from what was fetched then, not refetched
    origin.requests.clear()
    async with make_client() as client:
        result = await reparse_day("hkex-di", day, settings=settings, redis=redis, client=client, now=NOW)
    assert result is not None and result.error is None, result and result.line()
    assert result.line().startswith("reparse hkex-di 2025-11-26 DSM20251126C1.htm: stored (main=")
    rows = await FrameStore(redis).get("hkex-di", "main", day, get_source("hkex-di").schema)
    assert rows is not None and {"director", "substantial_shareholder"} <= set(rows["role"])
    assert origin.requests == [] and await FailedFiles(redis).kept("hkex-di") == []


# --- the admins' notice ------------------------------------------------------------------------------------------


def test_notice_shows_expected_found_the_diff_and_the_command() -> None:
    error = MalformedFile(
        "hkex-buybacks: header row 5 changed",
        source="hkex-buybacks",
        url="https://www1.hkexnews.hk/reports/sharerepur/documents/SRRPT20260909.xls",
        expected=("Company", "Stock code", "Total paid ($)"),
        found=("Company", "Stock code", "Total paid <HKD>", "ISIN"),
    )
    text = drift_notice("hkex-buybacks", date(2026, 9, 9), error, kept=True)
    lines = text.splitlines()
    assert lines[0] == "⚠️ hkex-buybacks: layout changed in SRRPT20260909.xls (2026-09-09)"
    assert "expected: Company | Stock code | Total paid ($)" in lines
    assert "found: Company | Stock code | Total paid &lt;HKD&gt; | ISIN" in lines  # HTML-escaped
    assert "diff: + Total paid &lt;HKD&gt; | ISIN; − Total paid ($)" in lines
    assert "Raw file kept 30 days" in text
    assert "<code>positioning-bot reparse hkex-buybacks --date 2026-09-09</code>" in text
    assert "--all-failed" in text


def test_notice_without_evidence_or_kept_file() -> None:
    error = MalformedFile("not a CSV <html>", source="sfc-short-positions", url="http://h/x/file.csv")
    text = drift_notice("sfc-short-positions", SFC_DAY, error, kept=False)
    assert text.startswith(
        "⚠️ sfc-short-positions: file.csv (2022-12-02) did not parse — has the format changed?"
    )
    assert "<code>not a CSV &lt;html&gt;</code>" in text and "expected:" not in text
    assert "not kept" in text and "positioning-bot poll sfc-short-positions --date 2022-12-02" in text


def test_one_signature_per_layout_not_per_day() -> None:
    def error(day: str, found: tuple[str, ...] | None = NEW_HEADERS) -> MalformedFile:
        return MalformedFile(
            f"header changed on {day}", url=f"http://h/d{day}.htm", expected=OLD_HEADERS, found=found
        )

    assert layout_signature(error("251126")) == layout_signature(error("251127"))
    assert layout_signature(error("251126")) != layout_signature(error("251126", NEW_HEADERS[:-1]))
    # Without evidence: the message, its numbers (dates, row numbers) blanked.
    assert layout_signature(MalformedFile("row 3 of 2025-11-26 bad")) == layout_signature(
        MalformedFile("row 7 of 2025-11-27 bad")
    )
    assert layout_signature(MalformedFile("truncated")) != layout_signature(MalformedFile("empty file"))


# --- end to end: two failing days, one notice, reparse after the upgrade routes once ------------------------------


async def _admin_and_chat_items(redis: Redis) -> tuple[list[OutboxItem], list[OutboxItem]]:
    items = await Outbox(redis).claim(NOW + timedelta(days=2), 100)
    return [i for i in items if i.chat_id == ADMIN], [i for i in items if i.chat_id == CHAT]


async def test_drift_is_told_once_and_reparse_routes_late_but_once(
    admin_settings: Settings,
    redis: Redis,
    origin: Origin,
    cli_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    await seed_demo(redis, exclude=frozenset((QUOTES, d) for d in DAYS))
    for done in (date(2025, 11, 20), date(2025, 11, 21), date(2025, 11, 24), date(2025, 11, 25)):
        await redis.set(keys.cycle_done(QUOTES, done), "done")
    subs = SubscriptionStore(redis)
    await subs.touch(CHAT)
    await subs.watch(CHAT, ["00700"])
    await subs.set_market(CHAT, True)
    for day in DAYS:
        origin.add(
            _quotes_path(day), (demo_root() / _quotes_path(day).lstrip("/")).read_bytes(), etag=f'"{day}"'
        )

    clock = [NOW]
    with monkeypatch.context() as patch:
        _old_parser()(patch)  # the running release does not know the new layout
        poller = Poller(admin_settings, redis, make_client(), lambda: clock[0], sources=(QUOTES,))
        async with poller.client:
            reports = await poller.tick()
            clock[0] += timedelta(minutes=11)  # polled again: still failing, no second notice
            reports += await poller.tick()
    assert [(r.day, r.status) for r in reports] == [(d, "malformed") for d in DAYS * 2]
    assert await FrameStore(redis).dates(QUOTES, "main", DAYS[0], DAYS[1]) == []
    assert await FailedFiles(redis).days(QUOTES) == list(DAYS)
    admin, chat = await _admin_and_chat_items(redis)
    assert chat == []
    (notice,) = admin
    assert notice.text is not None and notice.text.startswith("⚠️ hkex-quotes: layout changed in d251126e.htm")
    assert (
        "expected: CODE | NAME OF STOCK" in notice.text
        and "diff: + TURNOVER ($) | &lt;VWAP&gt;; − TURNOVER" in notice.text
    )
    assert "positioning-bot reparse hkex-quotes --date 2025-11-26" in notice.text

    # Upgraded: the CLI process runs the current parser over the kept files.
    first = await asyncio.to_thread(run_cli, "reparse", QUOTES, "--all-failed", env=cli_env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "reparse hkex-quotes 2025-11-26 d251126e.htm",
        "reparse hkex-quotes 2025-11-27 d251127e.htm",
    ]
    assert all(": stored (main=" in line and "enqueued=" in line for line in lines)
    store = FrameStore(redis)
    assert await store.dates(QUOTES, "main", DAYS[0], DAYS[1]) == list(DAYS)
    assert all([await is_done(redis, QUOTES, d) for d in DAYS])
    assert await FailedFiles(redis).kept(QUOTES) == []
    _, chat = await _admin_and_chat_items(redis)
    assert chat, "the alerts of the reparsed days reach the watching chat"
    assert "00700" in {a["code"] for item in chat for a in item.alerts}

    # Once: a second reparse finds nothing, and the next live poll sees the same files unchanged.
    pending = await Outbox(redis).pending()
    again = await asyncio.to_thread(run_cli, "reparse", "--all-failed", env=cli_env, cwd=tmp_path)
    assert (again.returncode, again.stdout.strip()) == (0, "reparse: no kept failed files")
    one_day = await asyncio.to_thread(
        run_cli, "reparse", QUOTES, "--date", "2025-11-27", env=cli_env, cwd=tmp_path
    )
    assert one_day.returncode == 1 and "no kept file" in one_day.stderr
    async with make_client() as client:
        live = await run_cycle(QUOTES, DAYS[1], settings=admin_settings, client=client, redis=redis, now=NOW)
    assert live.status == "unchanged"
    assert await Outbox(redis).pending() == pending


async def test_reparse_of_a_file_still_failing_keeps_it_and_exits_2(
    settings: Settings, origin: Origin, redis: Redis, cli_env: dict[str, str], tmp_path: Path
) -> None:
    origin.add(SFC_PATH, SFC_CHANGED)
    with pytest.raises(MalformedFile):
        await _ingest(settings, redis, SFC.name, SFC_DAY)
    result = await asyncio.to_thread(
        run_cli, "reparse", SFC.name, "--date", "2022-12-02", env=cli_env, cwd=tmp_path
    )
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        "reparse sfc-short-positions 2022-12-02 "
        "Short_Position_Reporting_Aggregated_Data_20221202.csv: MalformedFile: "
    )
    assert "Stock Name (English)" in line
    assert len(await FailedFiles(redis).kept(SFC.name)) == 1
    store = FrameStore(redis)
    assert await store.dates(SFC.name) == []
    assert await store.fetch_state(origin.url + SFC_PATH) == FetchState()
    all_failed = await asyncio.to_thread(run_cli, "reparse", "--all-failed", env=cli_env, cwd=tmp_path)
    assert all_failed.returncode == 2 and len(all_failed.stderr.strip().splitlines()) == 1


def test_reparse_usage() -> None:
    assert run_cli("reparse", "hkex-quotes").returncode == 2  # --date or --all-failed
    no_source = run_cli("reparse", "--date", "2025-11-27", env={"REDIS_URL": "redis://127.0.0.1:9/0"})
    assert no_source.returncode == 2 and "needs a SOURCE" in no_source.stderr
