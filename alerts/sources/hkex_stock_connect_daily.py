"""`hkex-stock-connect-daily`: the day's Stock Connect turnover by channel and each channel's top 10 stocks.

One JavaScript file a session, ``/eng/csm/DailyStat/data_tab_daily_{YYYYMMDD}e.js``, out at about 17:30 HKT the
same day: ``tabData = [...];`` with one object per channel, in the order SSE Northbound, SSE Southbound, SZSE
Northbound, SZSE Southbound. Each object has ``id``, ``date`` (YYYY-MM-DD), ``market``, ``tradingDay`` and
``content``, a list of two tables told apart by ``classname`` (data-formats.md, "Structures seen in real public
copies"; a real file of 2026-07-16 in tests/fixtures/hkex-stock-connect-daily/):

- ``tradingTable`` is transposed: ``schema`` holds one list of metric names and ``tr`` one ``{"td": [["43,220.65"]]}``
  per metric, in the same order. Amounts are in millions of the channel's currency (HK$ southbound, RMB
  northbound); trade counts are counts. Southbound has Total/Buy/Sell Turnover, Total/Buy/Sell Trade Count and
  ETF Turnover; northbound only Total Turnover, Total Trade Count, DQB and ETF Turnover (no buy/sell split since
  August 2024).
- ``top10Table`` has one row a stock: ``["1", "00700", "TENCENT", "3,946,953,060", "2,405,473,411",
  "6,352,426,471"]`` (rank, code, name, buy, sell, total, in currency units) southbound; rank, code, name and total
  northbound (six-digit A-share codes).

Layout "tabdata-2026". Table "main" holds the southbound top-10 rows (the rules' feed `southbound_flow`; the
northbound top 10s are checked but not kept: A-share codes are not Hong Kong stocks); "channels" holds one row a
channel. Checks: every southbound row's buy + sell equals its total (the figures are whole dollars), every
southbound channel's buy + sell turnover equals its total within 0.5 % (the file rounds each to HK$10,000), all
objects carry one date. A channel with ``tradingDay`` 0 (Stock Connect closed for it that day) gives no rows.
A third party reports that HKEX answers non-trading days and dates past its retention (about the current
calendar year) with an HTML page rather than the file [claim, not verified here].
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from alerts.errors import MalformedFile
from alerts.sources.base import Feed, Source, Table, finish
from alerts.sources.common import decode_text, norm_code, parse_number, reject_error_page

NAME = "hkex-stock-connect-daily"
LAYOUT = "tabdata-2026"
PATH = "/eng/csm/DailyStat/data_tab_daily_{day:%Y%m%d}e.js"
MILLION = 1_000_000
# Buy + sell against the channel's total turnover: each is rounded to HK$0.01m, so a few cents of a million.
CHANNEL_TOLERANCE = 0.005
# Buy + sell against a top-10 row's total: whole dollars, off by at most the rounding of each part.
ROW_SLACK_HKD = 2.0

SOUTHBOUND = ("SSE Southbound", "SZSE Southbound")
NORTHBOUND = ("SSE Northbound", "SZSE Northbound")
CHANNELS = ("SSE Northbound", "SSE Southbound", "SZSE Northbound", "SZSE Southbound")
CURRENCY = {name: "HKD" if name in SOUTHBOUND else "RMB" for name in CHANNELS}
OBJECT_KEYS = ("id", "date", "market", "tradingDay", "content")

SOUTH_TOP10 = ("Rank", "Stock Code", "Stock Name", "Buy Turnover", "Sell Turnover", "Total Turnover")
NORTH_TOP10 = ("Rank", "Stock Code", "Stock Name", "Total Turnover")
# Trading-table metrics the channels table keeps: metric name -> (column, millions of currency?).
METRICS: Mapping[str, tuple[str, bool]] = {
    "Total Turnover": ("total_turnover", True),
    "Buy Turnover": ("buy_turnover", True),
    "Sell Turnover": ("sell_turnover", True),
    "Total Trade Count": ("total_trades", False),
    "Buy Trade Count": ("buy_trades", False),
    "Sell Trade Count": ("sell_trades", False),
    "ETF Turnover": ("etf_turnover", True),
}
SOUTH_METRICS = ("Total Turnover", "Buy Turnover", "Sell Turnover")
NORTH_METRICS = ("Total Turnover",)

SCHEMA: dict[str, str] = {
    "date": "datetime64[ns]",
    "channel": "string",
    "rank": "Int64",
    "code": "string",
    "name": "string",
    "buy_hkd": "float64",
    "sell_hkd": "float64",
    "total_hkd": "float64",
    "net_hkd": "float64",
}
CHANNELS_SCHEMA: dict[str, str] = {
    "date": "datetime64[ns]",
    "channel": "string",
    "currency": "string",
    "total_turnover": "float64",
    "buy_turnover": "float64",
    "sell_turnover": "float64",
    "total_trades": "Int64",
    "buy_trades": "Int64",
    "sell_trades": "Int64",
    "etf_turnover": "float64",
}

_PREFIX = re.compile(r"^\s*tabData\s*=\s*")


@dataclass(frozen=True)
class _Read:
    """What one file says: its date, the southbound top-10 rows, the channel rows and the checks made."""

    day: date
    rows: list[dict[str, Any]]
    channels: list[dict[str, Any]]
    reconciled: dict[str, tuple[float, float]]


def parse(data: bytes) -> pd.DataFrame:
    """The southbound top-10 stocks of both channels: buy, sell, total and net (buy − sell) in HK$."""
    read = _read(data)
    frame = pd.DataFrame(read.rows, columns=list(SCHEMA))
    return finish(frame, SCHEMA, read.day, layout=LAYOUT, reconciled=read.reconciled)


def parse_channels(data: bytes) -> pd.DataFrame:
    """One row a channel: turnover (in the channel's currency, converted from millions) and trade counts."""
    read = _read(data)
    frame = pd.DataFrame(read.channels, columns=list(CHANNELS_SCHEMA))
    return finish(frame, CHANNELS_SCHEMA, read.day, layout=LAYOUT, reconciled=read.reconciled)


def _read(data: bytes) -> _Read:
    objects = _objects(data)
    days = {str(obj["date"]) for obj in objects}
    if len(days) != 1:
        raise MalformedFile(f"{NAME}: the channels carry different dates {sorted(days)}", layout=LAYOUT)
    day = _date(days.pop())
    rows: list[dict[str, Any]] = []
    channels: list[dict[str, Any]] = []
    reconciled: dict[str, tuple[float, float]] = {}
    for obj in objects:
        channel = str(obj["market"])
        if not _trading(obj["tradingDay"], channel):
            continue
        tables = _tables(obj["content"], channel)
        metrics = _metrics(tables.get("tradingTable"), channel)
        channels.append(_channel_row(day, channel, metrics))
        top = _top10(tables.get("top10Table"), channel)
        if channel in SOUTHBOUND:
            buy, sell, total = (metrics[m] for m in ("Buy Turnover", "Sell Turnover", "Total Turnover"))
            _reconcile(channel, reconciled, buy + sell, total)
            rows += [dict(row, date=pd.Timestamp(day), channel=channel) for row in top]
    return _Read(day, rows, channels, reconciled)


def _objects(data: bytes) -> list[Mapping[str, Any]]:
    """The ``tabData`` array: four objects with the known keys and channel names."""
    text = decode_text(data)
    if not text.strip():
        raise MalformedFile(f"{NAME}: empty file ({len(data)} bytes)", layout=LAYOUT)
    reject_error_page(text, NAME)
    match = _PREFIX.match(text)
    if match is None:
        raise MalformedFile(
            f"{NAME}: the file does not start with 'tabData =' (an HTML page or another script?)",
            expected=["tabData = [...];"],
            found=[text.strip()[:60]],
            layout=LAYOUT,
        )
    body = text[match.end() :].strip().removesuffix(";").rstrip()
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise MalformedFile(
            f"{NAME}: tabData is not a whole JSON array (cut short?): {exc}", layout=LAYOUT
        ) from None
    if not isinstance(value, list) or not all(isinstance(obj, dict) for obj in value):
        raise MalformedFile(f"{NAME}: tabData is not a list of objects", layout=LAYOUT)
    for n, obj in enumerate(value):
        if set(obj) != set(OBJECT_KEYS):
            raise MalformedFile(
                f"{NAME}: object {n} has keys {list(obj)}",
                expected=OBJECT_KEYS,
                found=[str(key) for key in obj],
                layout=LAYOUT,
            )
    markets = [str(obj["market"]) for obj in value]
    if tuple(markets) != CHANNELS:
        raise MalformedFile(f"{NAME}: channels {markets}", expected=CHANNELS, found=markets, layout=LAYOUT)
    return value


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise MalformedFile(f"{NAME}: not a YYYY-MM-DD date: {text!r}", layout=LAYOUT) from None


def _trading(flag: object, channel: str) -> bool:
    if flag in (0, 1):  # JSON true/false compare equal to 1/0 too
        return bool(flag)
    raise MalformedFile(f"{NAME}: {channel} tradingDay is {flag!r}, expected 0 or 1", layout=LAYOUT)


def _tables(content: object, channel: str) -> dict[str, Mapping[str, Any]]:
    """The channel's tables by classname."""
    if not isinstance(content, list):
        raise MalformedFile(f"{NAME}: {channel} content is not a list", layout=LAYOUT)
    out: dict[str, Mapping[str, Any]] = {}
    for part in content:
        table = part.get("table") if isinstance(part, dict) else None
        if not isinstance(table, dict) or not isinstance(table.get("classname"), str):
            raise MalformedFile(f"{NAME}: {channel} has a content part without a named table", layout=LAYOUT)
        out[table["classname"]] = table
    return out


def _header(table: Mapping[str, Any] | None, channel: str, what: str) -> tuple[list[str], list[Any]]:
    """A table's header names and its rows."""
    if table is None:
        raise MalformedFile(f"{NAME}: {channel} has no {what}", layout=LAYOUT)
    schema = table.get("schema")
    rows = table.get("tr")
    if not (isinstance(schema, list) and len(schema) == 1 and isinstance(schema[0], list)):
        raise MalformedFile(f"{NAME}: {channel} {what} has no schema row", layout=LAYOUT)
    if not isinstance(rows, list):
        raise MalformedFile(f"{NAME}: {channel} {what} has no rows list", layout=LAYOUT)
    return [str(name) for name in schema[0]], rows


def _cells(tr: object, width: int, channel: str, what: str, n: int) -> list[str]:
    """The `width` strings of one ``{"td": [[...]]}`` row."""
    td = tr.get("td") if isinstance(tr, dict) else None
    if not (isinstance(td, list) and len(td) == 1 and isinstance(td[0], list) and len(td[0]) == width):
        raise MalformedFile(
            f"{NAME}: {channel} {what} row {n} is not {width} cells: {tr!r}"[:300], layout=LAYOUT
        )
    return [str(cell) for cell in td[0]]


def _metrics(table: Mapping[str, Any] | None, channel: str) -> dict[str, float]:
    """The trading table's metrics by name (numbers as printed; missing '-' cells left out)."""
    names, rows = _header(table, channel, "tradingTable")
    required = SOUTH_METRICS if channel in SOUTHBOUND else NORTH_METRICS
    if not set(required) <= set(names):
        raise MalformedFile(
            f"{NAME}: {channel} trading table lacks {sorted(set(required) - set(names))}",
            expected=required,
            found=names,
            layout=LAYOUT,
        )
    if len(rows) != len(names):
        raise MalformedFile(
            f"{NAME}: {channel} trading table has {len(rows)} values for {len(names)} metrics", layout=LAYOUT
        )
    out: dict[str, float] = {}
    for n, (name, tr) in enumerate(zip(names, rows, strict=True), start=1):
        (cell,) = _cells(tr, 1, channel, "tradingTable", n)
        value = parse_number(cell)
        if value is not None:
            out[name] = value
    missing = [name for name in required if name not in out]
    if missing:
        raise MalformedFile(f"{NAME}: {channel} trading table has no figure for {missing}", layout=LAYOUT)
    return out


def _channel_row(day: date, channel: str, metrics: Mapping[str, float]) -> dict[str, Any]:
    row: dict[str, Any] = {"date": pd.Timestamp(day), "channel": channel, "currency": CURRENCY[channel]}
    for name, (column, in_millions) in METRICS.items():
        value = metrics.get(name)
        row[column] = None if value is None else round(value * MILLION, 2) if in_millions else value
    return row


def _top10(table: Mapping[str, Any] | None, channel: str) -> list[dict[str, Any]]:
    """The top-10 rows (southbound: with buy, sell, total, net in HK$); the header must be the known one."""
    names, rows = _header(table, channel, "top10Table")
    expected = SOUTH_TOP10 if channel in SOUTHBOUND else NORTH_TOP10
    if tuple(names) != expected:
        raise MalformedFile(
            f"{NAME}: {channel} top-10 header {names}", expected=expected, found=names, layout=LAYOUT
        )
    out = []
    for n, tr in enumerate(rows, start=1):
        cells = _cells(tr, len(expected), channel, "top10Table", n)
        rank = parse_number(cells[0])
        if rank != n or n > 10:
            raise MalformedFile(f"{NAME}: {channel} top-10 row {n} has rank {cells[0]!r}", layout=LAYOUT)
        if channel in SOUTHBOUND:
            out.append(_south_row(cells, channel, n))
        elif not re.fullmatch(r"\d{6}", cells[1].strip()) or parse_number(cells[3]) is None:
            raise MalformedFile(f"{NAME}: {channel} top-10 row {n} is not an A share: {cells}", layout=LAYOUT)
    return out


def _south_row(cells: Sequence[str], channel: str, n: int) -> dict[str, Any]:
    """One southbound top-10 row; its buy + sell must equal its total."""
    buy, sell, total = (parse_number(cell) for cell in cells[3:6])
    name = " ".join(cells[2].split())
    if buy is None or sell is None or total is None or not name:
        raise MalformedFile(
            f"{NAME}: {channel} top-10 row {n} lacks a figure or a name: {list(cells)}", layout=LAYOUT
        )
    if abs(buy + sell - total) > ROW_SLACK_HKD:
        raise MalformedFile(
            f"{NAME}: {channel} top-10 row {n} ({cells[1]} {name}): buy {buy:,.0f} + sell {sell:,.0f} "
            f"= {buy + sell:,.0f}, but the row's total says {total:,.0f}",
            layout=LAYOUT,
        )
    return {
        "rank": n,
        "code": norm_code(cells[1]),
        "name": name,
        "buy_hkd": buy,
        "sell_hkd": sell,
        "total_hkd": total,
        "net_hkd": buy - sell,
    }


def _reconcile(channel: str, reconciled: dict[str, tuple[float, float]], parts: float, total: float) -> None:
    """Buy + sell turnover against the channel's total (HK$), within CHANNEL_TOLERANCE."""
    if abs(parts - total) > CHANNEL_TOLERANCE * abs(total) or (total == 0 and parts != 0):
        raise MalformedFile(
            f"{NAME}: {channel} buy + sell turnover is {parts:,.2f}m but the total says {total:,.2f}m",
            layout=LAYOUT,
        )
    reconciled[f"{channel} buy+sell turnover"] = (round(parts * MILLION, 2), round(total * MILLION, 2))


def paths(day: date) -> list[str]:
    """The day's file (English)."""
    return [PATH.format(day=day)]


SOURCE = Source(
    name=NAME,
    title="HKEX Stock Connect daily turnover and top 10 stocks",
    base_setting="hkex_url",
    public_url="https://www.hkex.com.hk",
    paths=paths,
    tables={"main": Table(SCHEMA, parse), "channels": Table(CHANNELS_SCHEMA, parse_channels)},
    feeds={"southbound_flow": Feed()},
    max_bytes=1024 * 1024,
)
