"""Contract: whatever bytes a parser is given, it yields its table or raises from alerts.errors — never anything else.

Every registered source's tables are fed one good fixture mangled in two known ways (a DI page with `<br>\\x01` in
a cell, a southbound page dated 2025/02/31) and 400 seeded random ways each. An exception outside the hierarchy would
kill the polling cycle (skipping the other sources) and make `parse` exit 1 with a traceback.
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
from redis.asyncio import Redis

from alerts.calendar import HK_TZ
from alerts.errors import MalformedFile, SourceError
from alerts.fetch import make_client
from alerts.ingest import ingest
from alerts.sources import SOURCES, get_source
from alerts.sources.base import Table
from alerts.store.frames import FrameStore
from config.settings import Settings
from tests.support.cli import run_cli
from tests.support.origin import Origin
from tests.support.paths import fixture_bytes

# One good file per source (small ones: 400 mutations of each are parsed per table).
GOOD_FILES = {
    "hkex-short": "ASHTMAIN.HTM",
    "hkex-short-midday": "MSHTMAIN.HTM",
    "hkex-quotes": "d251120e.htm",
    "sfc-short-positions": "Short_Position_Reporting_Aggregated_Data_20221202.csv",
    "hkex-buybacks": "SRRPT20170313.xls",
    "hkex-di": "DSM20251126C1.htm",
    "hkex-southbound": "mutualmarket_t-hk_20251120.html",
    "hkex-stock-connect-daily": "data_tab_daily_20260716e.js",
    "finra-short-volume": "CNMSshvol20210802_excerpt_TestFinraReport.txt",
    "sec-form4": "form4_purchase_P.xml",
    "hkex-shortable-list": "ds_list20230518.csv",
    "sec-13d-13g": "schedule13g.xml",
    "hkexnews-announcements": "titleSearchServlet_20260909_constructed.json",
    "hsi-index-reviews": "20260522T174510.xlsx",
}
FIXTURE_DIRS = {"hkex-short-midday": "hkex-short"}  # sources whose fixtures live beside another source's
RANDOM_MUTATIONS = 400
# Bytes that upset parsers: control characters lxml refuses, markup that splits cells, numbers and dates out of range.
INSERTS = (
    b"\x00",
    b"\x01",
    b"<br>",
    b"\x00\x01<br>",
    b"<br>\x01",
    b"</td>",
    b"<td>",
    b"</tr>",
    b"<tr>",
    b"</table>",
    b"<table>",
    b"-",
    b",",
    b";",
    b"\t",
    b'"',
    b"'",
    b"\r\n",
    b"\n",
    b"%",
    b"&#0;",
    b"&amp",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\xe4\xb8",
    b"NaN",
    b"-1",
    b"1e999",
    b"99999999999999999999999",
    b"2025/02/31",
    b"31/02/2025",
    b"2025-02-31",
    b"20250231",
    b"00/00/0000",
    b"<![CDATA[",
    b"<!--",
    b"<?xml",
    b"]]>",
    b"</",
    b"<",
)


def _fixture(source: str) -> bytes:
    return fixture_bytes(FIXTURE_DIRS.get(source, source), GOOD_FILES[source])


def _digit_change(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    digits = [m.start() for m in re.finditer(rb"\d", data)]
    if not digits:
        return "no digit", data
    at = rng.choice(digits)
    return f"digit@{at}", data[:at] + str(rng.randrange(10)).encode() + data[at + 1 :]


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One random mutation of `data`: its description and the bytes."""
    kind = rng.randrange(7)
    at = rng.randrange(len(data) + 1)
    if kind == 0:  # flip a few bytes
        flipped = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        return "flip", bytes(flipped)
    if kind == 1:
        return f"truncate@{at}", data[:at]
    if kind == 2:
        token = rng.choice(INSERTS)
        return f"insert {token!r}@{at}", data[:at] + token + data[at:]
    if kind == 3:
        end = min(len(data), at + rng.randint(1, 200))
        return f"delete {at}:{end}", data[:at] + data[end:]
    if kind == 4:
        end = min(len(data), at + rng.randint(1, 200))
        return f"duplicate {at}:{end}", data[:end] + data[at:end] + data[end:]
    if kind == 5:
        return _digit_change(data, rng)
    tokens = rng.sample(INSERTS, 3)  # several hostile insertions at once
    out = data
    for token in tokens:
        cut = rng.randrange(len(out) + 1)
        out = out[:cut] + token + out[cut:]
    return f"inserts {tokens!r}", out


def _di_br_control(data: bytes) -> bytes:
    """The DI page of the issue: `<br>` followed by \\x01 inside a cell."""
    cell = re.search(rb"<td>[^<]*\(L\)", data)
    assert cell is not None
    return data[: cell.start() + 4] + b"<br>\x01" + data[cell.start() + 4 :]


def _southbound_feb31(data: bytes) -> bytes:
    """The southbound page of the issue: its heading dated 2025/02/31."""
    assert b"Shareholding Date: 2025/11/20" in data
    return data.replace(b"Shareholding Date: 2025/11/20", b"Shareholding Date: 2025/02/31")


NAMED: dict[str, Callable[[bytes], bytes]] = {"hkex-di": _di_br_control, "hkex-southbound": _southbound_feb31}


def _outcome(table: Table, source: str, data: bytes) -> str | None:
    """None when the table parsed to its schema or refused with a SourceError; else what went wrong."""
    try:
        frame = table.read(data, source)
    except SourceError:
        return None
    except Exception as exc:  # noqa: BLE001 - exactly what the contract forbids
        return f"{type(exc).__name__}: {exc}"
    if not isinstance(frame, pd.DataFrame):
        return f"returned {type(frame).__name__}"
    if list(frame.columns) != list(table.schema):
        return f"columns {list(frame.columns)} differ from the schema"
    return None


def test_every_source_has_a_good_fixture() -> None:
    missing = set(SOURCES) - set(
        GOOD_FILES
    )  # a registered source without a fixture here escapes the contract
    assert not missing, f"name a good fixture for {sorted(missing)}"
    for name in GOOD_FILES:
        get_source(name).parse_all(_fixture(name))  # unmutated, every table parses


@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_mutations_are_malformed_files_naming_the_source(name: str) -> None:
    data = NAMED[name](_fixture(name))
    with pytest.raises(MalformedFile) as info:
        get_source(name).parse_all(data)
    assert info.value.source == name
    assert str(info.value).startswith(f"{name}: ")
    assert info.value.__cause__ is not None  # the parser's own exception stays attached for the logs


@pytest.mark.parametrize("name", sorted(GOOD_FILES))
def test_random_mutations_parse_or_raise_source_errors(name: str) -> None:
    source = get_source(name)
    good = _fixture(name)
    rng = random.Random(zlib.crc32(name.encode()))  # deterministic per source
    cases = [("named", NAMED[name](good))] if name in NAMED else []
    cases += [mutate(good, rng) for _ in range(RANDOM_MUTATIONS)]
    problems = []
    for table_name, table in source.tables.items():
        for what, data in cases:
            if (problem := _outcome(table, name, data)) is not None:
                problems.append(f"{table_name} after {what}: {problem}")
    assert not problems, f"{len(problems)} escaped the error hierarchy, e.g.:\n" + "\n".join(problems[:10])


def test_parse_command_exits_2_with_one_line_for_an_impossible_date(tmp_path: Path) -> None:
    page = tmp_path / "mutualmarket.html"
    page.write_bytes(_southbound_feb31(_fixture("hkex-southbound")))
    result = run_cli("parse", "hkex-southbound", str(page))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "MalformedFile" in lines[0] and "hkex-southbound" in lines[0] and "ValueError" in lines[0]
    assert result.stdout == ""


DI_DAY = date(2025, 11, 26)
SFC_DAY = date(2022, 12, 2)
SFC_FILE = "Short_Position_Reporting_Aggregated_Data_20221202.csv"


async def test_ingest_records_a_parser_crash_as_the_source_error_and_others_run_on(
    settings: Settings, origin: Origin, redis: Redis
) -> None:
    di, sfc = get_source("hkex-di"), get_source("sfc-short-positions")
    for path in di.paths(DI_DAY):
        origin.add(path, _di_br_control(_fixture("hkex-di")))
    for path in sfc.paths(SFC_DAY):
        origin.add(path, fixture_bytes("sfc-short-positions", SFC_FILE))
    store = FrameStore(redis)
    now = datetime(2025, 11, 26, 20, 0, tzinfo=HK_TZ)
    async with make_client() as client:
        with pytest.raises(MalformedFile, match="hkex-di: ValueError"):
            await ingest(di, DI_DAY, settings=settings, client=client, store=store, now=now, backoff=0.01)
        report = await ingest(
            sfc, SFC_DAY, settings=settings, client=client, store=store, now=now, backoff=0.01
        )
    assert report.status == "stored"
    status = await store.status("hkex-di")
    assert "ValueError" in status["error_message"] and "ok_at" not in status
    assert (await store.status("sfc-short-positions"))["ok_at"] == now.isoformat()
