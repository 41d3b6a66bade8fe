"""The `positioning-bot` console script, run as a real process."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis as AsyncRedis

from alerts.store import keys
from tests.support.cli import run_cli
from tests.support.origin import Origin
from tests.support.paths import FIXTURES
from tests.support.paths import ROOT as _ROOT

SFC_FILE = FIXTURES / "sfc-short-positions" / "Short_Position_Reporting_Aggregated_Data_20221202.csv"


def test_help_on_every_command() -> None:
    top = run_cli("--help")
    assert top.returncode == 0
    for command in ("parse", "fetch", "backfill"):
        assert command in top.stdout
        sub = run_cli(command, "--help")
        assert sub.returncode == 0, sub.stderr
        assert "usage: positioning-bot " + command in sub.stdout


def test_parse_prints_csv_with_header_iso_dates_and_padded_codes() -> None:
    result = run_cli("parse", "sfc-short-positions", str(SFC_FILE))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert result.stdout.splitlines()[0].startswith("date,code,name,short_shares,short_value_hkd")
    assert len(rows) == 981
    tencent = next(r for r in rows if r["code"] == "00700")
    assert tencent["date"] == "2022-12-02"
    assert tencent["short_shares"] == "45925264"


def test_parse_json() -> None:
    result = run_cli(
        "parse", "hkex-buybacks", str(FIXTURES / "hkex-buybacks" / "SRRPT20170313.xls"), "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert [r["code"] for r in records] == ["00182", "00005", "00315"]
    assert records[1]["trade_date"] == "2017-03-09"


def test_parse_malformed_file_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "SRRPT20251120.xls"
    bad.write_bytes(b"<html><body>Access Denied</body></html>")
    result = run_cli("parse", "hkex-buybacks", str(bad))
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "MalformedFile" in result.stderr


@pytest.mark.parametrize(
    "args",
    [("parse", "nope", "x"), ("fetch", "hkex-quotes", "--date", "20-11-2025"), ("backfill", "hkex-quotes")],
)
def test_bad_usage_exits_2(args: tuple[str, ...]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert "error" in result.stderr


def test_bad_configuration_names_the_variable(tmp_path: Path) -> None:
    result = run_cli("fetch", "hkex-quotes", env={"HKEX_URL": "nope"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "HKEX_URL" in result.stderr


def _env(origin: Origin, redis_url: str) -> dict[str, str]:
    names = ("HKEX_URL", "HKEXNEWS_URL", "SFC_URL", "HKEX_DI_URL", "FINRA_URL", "SEC_URL")
    return {**{n: origin.url for n in names}, "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"}


def test_fetch_stores_and_prints_summary(origin: Origin, redis_url: str, tmp_path: Path) -> None:
    SyncRedis.from_url(redis_url).flushdb()
    origin.add(
        "/-/media/EN/pdf/spr/2022/12/02/Short_Position_Reporting_Aggregated_Data_20221202.csv",
        SFC_FILE.read_bytes(),
    )
    result = run_cli(
        "fetch", "sfc-short-positions", "--date", "2022-12-02", env=_env(origin, redis_url), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "sfc-short-positions 2022-12-02: stored (main=981) from 1 file(s)"
    again = run_cli(
        "fetch", "sfc-short-positions", "--date", "2022-12-02", env=_env(origin, redis_url), cwd=tmp_path
    )
    assert "unchanged" in again.stdout


def test_fetch_missing_file_exits_1(origin: Origin, redis_url: str, tmp_path: Path) -> None:
    result = run_cli(
        "fetch", "hkex-buybacks", "--date", "2017-03-17", env=_env(origin, redis_url), cwd=tmp_path
    )
    assert result.returncode == 1
    assert "NotPublishedYet" in result.stderr
    assert "/reports/sharerepur/documents/SRRPT20170317.xls" in result.stderr


def test_backfill_skips_non_sessions_and_reports_failures(
    origin: Origin, redis_url: str, tmp_path: Path
) -> None:
    SyncRedis.from_url(redis_url).flushdb()
    for day in ("13", "14", "15", "16"):
        origin.add(
            f"/reports/sharerepur/documents/SRRPT201703{day}.xls",
            (FIXTURES / "hkex-buybacks" / f"SRRPT201703{day}.xls").read_bytes(),
        )
    result = run_cli(
        "backfill",
        "hkex-buybacks",
        "--from",
        "2017-03-13",
        "--to",
        "2017-03-19",
        env=_env(origin, redis_url),
        cwd=tmp_path,
    )
    assert result.returncode == 1  # the 17th is missing on the origin
    assert "4 of 5 date(s) ok" in result.stdout
    assert "2017-03-17" in result.stderr
    requested = {r.path for r in origin.requests}
    assert not any("20170318" in p or "20170319" in p for p in requested)  # weekend skipped
    stored = SyncRedis.from_url(redis_url).zrange(keys.frame_index("hkex-buybacks", "main"), 0, -1)
    assert [d.decode() for d in stored] == ["2017-03-13", "2017-03-14", "2017-03-15", "2017-03-16"]


def test_fetch_and_parse_hkex_short_midday(origin: Origin, redis_url: str, tmp_path: Path) -> None:
    SyncRedis.from_url(redis_url).flushdb()
    demo = _ROOT / "alerts" / "demo_data" / "by-date" / "2025-11-28"
    for page in ("MSHTMAIN.HTM", "MSHTGEM.HTM"):
        origin.add(
            "/eng/stat/smstat/ssturnover/ncms/" + page,
            (demo / "eng/stat/smstat/ssturnover/ncms" / page).read_bytes(),
        )
    result = run_cli(
        "fetch", "hkex-short-midday", "--date", "2025-11-28", env=_env(origin, redis_url), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    parsed = [
        run_cli("parse", "hkex-short-midday", str(demo / "eng/stat/smstat/ssturnover/ncms" / page))
        for page in ("MSHTMAIN.HTM", "MSHTGEM.HTM")
    ]
    rows = [row for p in parsed for row in csv.DictReader(io.StringIO(p.stdout))]
    assert {row["session"] for row in rows} == {"morning"}
    assert (
        result.stdout.strip()
        == f"hkex-short-midday 2025-11-28: stored (main={len(rows)}, market=2) from 2 file(s)"
    )
    sync = SyncRedis.from_url(redis_url)
    assert [d.decode() for d in sync.zrange(keys.frame_index("hkex-short-midday", "main"), 0, -1)] == [
        "2025-11-28"
    ]
    assert (
        sync.zrange(keys.frame_index("hkex-short", "main"), 0, -1) == []
    )  # the day-close source's frames are its own
    close_page = run_cli(
        "parse", "hkex-short-midday", str(demo / "eng/stat/smstat/ssturnover/ncms/ASHTMAIN.HTM")
    )
    assert close_page.returncode == 2 and "day-close report" in close_page.stderr


async def test_backfill_records_history_once_and_replay_record_needs_redis(
    origin: Origin, redis: AsyncRedis, redis_url: str, tmp_path: Path
) -> None:
    import asyncio
    from datetime import date

    from alerts.calendar import sessions_between
    from alerts.localdata import local_path
    from alerts.sources import get_source
    from alerts.store.alertlog import AlertLog
    from bot.demo import demo_root
    from tests.support.bothelpers import seed_demo

    source, days = get_source("hkex-quotes"), sessions_between(date(2025, 11, 24), date(2025, 11, 28))
    await seed_demo(redis, exclude=frozenset((source.name, d) for d in days))  # the rest is already stored
    for d in days:
        for path in source.paths(d):
            origin.add(path, local_path(demo_root(), source.name, d, path).read_bytes())
    env = {**_env(origin, redis_url), "CLOCK_START": "2025-11-28T20:00:00+08:00"}
    args = ("backfill", "hkex-quotes", "--from", "2025-11-24", "--to", "2025-11-28")
    first = await asyncio.to_thread(run_cli, *args, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "hkex-quotes: 5 of 5 date(s) ok" in first.stdout
    recorded = first.stdout.strip().splitlines()[-1]
    assert recorded.startswith("recorded ") and recorded.endswith(" historical alerts (0 already known)")
    count = int(recorded.split()[1])
    traded = sessions_between(date(2025, 11, 1), date(2025, 11, 28))  # an SFC position comes out a week later
    logged = await AlertLog(redis).recent_logged(traded)
    drops = [e for e in logged if (e.alert.rule, e.alert.code) == ("short_ratio_drop", "00700")]
    assert len(drops) == 1 and drops[0].historical and drops[0].alert.trade_date == date(2025, 11, 27)
    assert len(logged) == count and all(e.historical for e in logged)
    assert await redis.zcard(keys.OUTBOX_DUE) == 0

    # An hour later (each process's clock starts at CLOCK_START: the second must not start before the first's
    # fetches, which the files' known moments keep).
    env["CLOCK_START"] = "2025-11-28T21:00:00+08:00"
    again = await asyncio.to_thread(run_cli, *args, env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().splitlines()[-1] == f"recorded 0 historical alerts ({count} already known)"
    only_fetch = await asyncio.to_thread(run_cli, *args, "--no-record", env=env, cwd=tmp_path)
    assert only_fetch.returncode == 0 and "recorded" not in only_fetch.stdout
    assert len(await AlertLog(redis).recent_logged(traded)) == count

    with_data = run_cli(
        "replay", "--record", "--from", "2025-11-24", "--to", "2025-11-28", "--data", str(tmp_path)
    )
    assert with_data.returncode == 2 and "--record records what Redis holds" in with_data.stderr


def test_migrate_keys_renames_old_names_once(redis_url: str, tmp_path: Path) -> None:
    sync = SyncRedis.from_url(redis_url)
    sync.flushdb()
    sync.sadd("pb:wl:42", "00700")  # a watchlist as releases before the hash tags named it
    env = {"REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"}
    first = run_cli("migrate-keys", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "renamed 1 keys to the hash-tag layout"
    assert sync.smembers(keys.watchlist(42)) == {b"00700"} and not sync.exists("pb:wl:42")
    again = run_cli("migrate-keys", env=env, cwd=tmp_path)
    assert again.stdout.strip() == "renamed 0 keys to the hash-tag layout"


def test_a_cluster_url_reaches_the_cluster(redis_cluster_url: str, tmp_path: Path) -> None:
    """REDIS_URL=redis+cluster://… makes every command use the cluster client (a plain one is MOVED away)."""
    env = {"REDIS_URL": redis_cluster_url, "LOG_LEVEL": "WARNING"}
    result = run_cli("migrate-keys", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("renamed ")
    plain = {"REDIS_URL": redis_cluster_url.replace("redis+cluster://", "redis://"), "REDIS_CLUSTER": "1"}
    assert run_cli("status", env={**plain, "LOG_LEVEL": "WARNING"}, cwd=tmp_path).returncode == 0
