"""One contract for every registered source: each table of each good fixture matches its declared schema."""

from __future__ import annotations

import tomllib
from datetime import date
from importlib import resources

import pandas as pd
import pytest

from alerts.calendar import schedule_for
from alerts.errors import SourceError
from alerts.ingest import DAY_FETCHERS
from alerts.sources import SOURCES
from tests.support.paths import FIXTURES

# Known-good fixture files per source (real where one exists; see tests/fixtures/*/README.md).
GOOD: dict[str, list[str]] = {
    "hkex-short": ["ASHTMAIN.HTM", "MSHTMAIN.HTM", "ASHTGEM.HTM", "MSHTGEM_empty_2017.HTM"],
    "hkex-short-midday": ["MSHTMAIN.HTM", "MSHTGEM_empty_2017.HTM"],
    "hkex-quotes": ["d251120e.htm", "d100104e.htm"],
    "sfc-short-positions": ["Short_Position_Reporting_Aggregated_Data_20221202.csv"],
    "hkex-buybacks": ["SRRPT20170313.xls", "SRRPT20170314.xls", "SRRPT20170315.xls", "SRRPT20170316.xls"],
    "hkex-di": ["DSM20251126C1.htm", "DSM20251126C2.htm"],
    "hkex-southbound": ["mutualmarket_c_t-hk_20190125.html", "mutualmarket_t-hk_20251120.html"],
    "hkex-stock-connect-daily": ["data_tab_daily_20260716e.js"],
    "finra-short-volume": [
        "CNMSshvol20210427.txt",
        "CNMSshvol20210802_excerpt_TestFinraReport.txt",
        "CNMSshvol20260713_fractional.txt",
        "CNMSshvol_empty.txt",
    ],
    "sec-form4": [
        "374WaterForm4.xml",
        "form4_purchase_P.xml",
        "form4_multi_owner.xml",
        "form4_10b5_1_sale.xml",
        "form4_amendment.xml",
        "form4_no_prolog.xml",
        "form4_derivative_only.xml",
    ],
    "hkex-shortable-list": ["ds_list20230518.csv"],
    "sec-13d-13g": [
        "schedule13d.xml",
        "schedule13d_nested_cusip.xml",
        "schedule13g.xml",
        "schedule13g_nested_cusip.xml",
    ],
    "hkexnews-announcements": [
        "titleSearchServlet_20260825_excerpt.json",
        "titleSearchServlet_20260909_constructed.json",
        "titleSearchServlet_empty_constructed.json",
    ],
    "hsi-index-reviews": ["20260522T174510.xlsx"],
}
CASES = [(name, file) for name, files in GOOD.items() for file in files]
# Sources that share another source's pages (and so its fixture folder).
FIXTURE_DIRS = {"hkex-short-midday": "hkex-short"}


def test_every_registered_source_has_good_fixtures() -> None:
    assert set(GOOD) == set(SOURCES)


def test_every_source_declares_its_record() -> None:
    # One record per source: its schedule table in config/sources.toml, its feeds, its schema and link builder.
    tables = tomllib.loads(resources.files("config").joinpath("sources.toml").read_text(encoding="utf-8"))
    assert set(tables) == set(SOURCES)
    names = [name for source in SOURCES.values() for name in source.feeds]
    assert len(names) == len(set(names)), "a feed name belongs to one source"
    for source in SOURCES.values():
        assert schedule_for(source.name).calendar == source.calendar
        assert source.feeds, f"{source.name} feeds no history"
        assert all(feed.table in source.tables for feed in source.feeds.values())
        assert source.public_url.startswith("https://") and not source.public_url.endswith("/")
        assert all(url.startswith(source.public_url + "/") for url in source.urls(date(2025, 11, 20)))
        assert source.fetch_day is None or source.fetch_day in DAY_FETCHERS
        # The scheduler's steps around cycles (bot/scheduler.py) are known kinds.
        assert source.before_pass in (None, "ticker-map")
        assert source.after_processed in (None, "watched-notices")


@pytest.mark.parametrize(("source_name", "file"), CASES)
def test_tables_match_declared_schema(source_name: str, file: str) -> None:
    source = SOURCES[source_name]
    tables = source.parse_all((FIXTURES / FIXTURE_DIRS.get(source_name, source_name) / file).read_bytes())
    assert set(tables) == set(source.tables)
    for table_name, frame in tables.items():
        schema = source.tables[table_name].schema
        assert list(frame.columns) == list(schema), table_name
        assert {c: str(t) for c, t in frame.dtypes.items()} == dict(schema), table_name
        assert isinstance(frame.index, pd.RangeIndex)
    main = tables["main"]
    file_date = main.attrs.get("file_date")
    assert file_date is None or type(file_date) is date
    if "code" in main and len(main) and source.calendar == "XHKG":
        assert main["code"].str.fullmatch(r"\d{5}").all()


@pytest.mark.parametrize("source_name", sorted(SOURCES))
@pytest.mark.parametrize(
    "junk", [b"", b"\x00\x01garbage", b"<html><head><title>404 Not Found</title></head></html>"]
)
def test_junk_raises_a_source_error(source_name: str, junk: bytes) -> None:
    with pytest.raises(SourceError):
        SOURCES[source_name].parse_all(junk)
