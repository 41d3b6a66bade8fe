"""`hkex-short` and `hkex-short-midday`: HKEX short selling turnover pages (ASHTMAIN/MSHTMAIN/ASHTGEM/MSHTGEM .HTM).

Both sources share the parsers; `hkex-short` fetches the day-close pages, `hkex-short-midday` the pages up to the
morning close. They are separate sources because frames are stored per (source, table, date): one source holding
both sessions would have its midday frame overwritten by the close.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from datetime import date

import pandas as pd

from alerts.errors import MalformedFile, NotPublishedYet
from alerts.sources.base import Source, Table, finish
from alerts.sources.common import (
    counter_currency,
    decode_text,
    empty_frame,
    link_counters,
    norm_code,
    parse_number,
    reject_error_page,
)

NAME = "hkex-short"
MIDDAY_NAME = "hkex-short-midday"
PATH_PREFIX = "/eng/stat/smstat/ssturnover/ncms/"
PAGES = {("main", "close"): "ASHTMAIN.HTM", ("gem", "close"): "ASHTGEM.HTM",
         ("main", "morning"): "MSHTMAIN.HTM", ("gem", "morning"): "MSHTGEM.HTM"}

SCHEMA: dict[str, str] = {
    "date": "datetime64[ns]",
    "code": "string",
    "name": "string",
    "currency": "string",
    "short_shares": "Int64",
    "short_value": "float64",
    "board": "string",  # main | gem
    "session": "string",  # morning | close
    "non_hkd": "bool",
    "hkd_code": "string",
}
MARKET_SCHEMA: dict[str, str] = {
    "date": "datetime64[ns]",
    "board": "string",
    "session": "string",
    "stocks_shorted": "Int64",
    "short_shares": "Int64",
    "short_value": "float64",
    "market_turnover": "float64",
    "short_pct": "float64",
}

_MONTHS = {m: i for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}
_TITLE_RE = re.compile(r"Short Selling Turnover \((Main Board|GEM)\) up to (morning|day) close today", re.I)
_TRADING_DATE_RE = re.compile(r"TRADING DATE\s*:\s*(\d{1,2}) ([A-Z]{3}) (\d{4})")
_PRE_RE = re.compile(r"<pre\b[^>]*>(.*?)(?:</pre>|\Z)", re.I | re.S)
_TAG_RE = re.compile(r"<[^>]*>")
# Right-anchored: the name may contain spaces and digits, the two numbers are the last two tokens.
_ROW_RE = re.compile(r"^\s*([%#*]?)\s*(\d{1,5})\s+(.+?)\s+([\d,]+)\s+([\d,]+)\s*$")
_ROW_START_RE = re.compile(r"^\s*[%#*]?\s*\d{1,5}\s+[A-Z0-9]")
# "all Securities" (current) or plain "Securities" (2017); never "(non-)Designated Securities".
_STOCKS_SHORTED_RE = re.compile(r"^\s*Total No\. of (?:all )?Securities recording Short Selling\s*:\s*([\d,]+)")
_BLOCK_RE = re.compile(r"^\s*\(([A-Z])\)")
_NON_DESIGNATED_RE = re.compile(r"non-Designated", re.I)
_AMOUNT = r"(?:HKD)?\s*([\d,]+(?:\.\d+)?)\s*$"
_FIELD_RES = {
    "short_shares": re.compile(r"Total Shares \(SH\)\s*:\s*([\d,]+)\s*$"),
    "short_value": re.compile(r"Total Value \(\$\)\s*:\s*" + _AMOUNT),
    "market_turnover": re.compile(r"Total market turnover\s*:\s*" + _AMOUNT, re.I),
    "short_pct": re.compile(r"as % (?:of )?total turnover\s*:\s*(\d+(?:\.\d+)?)\s*%", re.I),
}


def parse_day(day: str, month: str, year: str) -> date:
    """Build a date from ``'20'``, ``'NOV'``, ``'2025'`` (English month names, independent of the locale)."""
    try:
        return date(int(year), _MONTHS[month.upper()], int(day))
    except (KeyError, ValueError):
        raise MalformedFile(f"not a date: {day} {month} {year}") from None


def summary_totals(lines: Iterable[str]) -> dict[str, float | None] | None:
    """Read the market summary block (§1 labels) from report lines; None when there is none.

    Fields come from block (C) "all Designated Securities" when present, else (A), else from the unlabeled
    lines of older layouts. The block starts at the "Total No. of ... recording Short Selling" line.
    """
    stocks: float | None = None
    blocks: dict[str, dict[str, float | None]] = {}
    block = ""
    for line in lines:
        if stocks is None:
            match = _STOCKS_SHORTED_RE.match(line)
            if match:
                stocks = parse_number(match.group(1))
            continue
        if _NON_DESIGNATED_RE.search(line):
            block = "non-designated"  # its share/value lines must not overwrite the designated totals
            continue
        if match := _BLOCK_RE.match(line):
            block = match.group(1)
        for field, regex in _FIELD_RES.items():
            if match := regex.search(line):
                blocks.setdefault(block, {}).setdefault(field, parse_number(match.group(1)))
    if stocks is None:
        return None
    chosen = next((blocks[key] for key in ("C", "A", "") if key in blocks), None)
    if chosen is None:
        if stocks:
            raise MalformedFile(f"summary says {stocks:.0f} securities were shorted but gives no totals")
        chosen = dict.fromkeys(_FIELD_RES, 0.0)  # an empty board prints only the ": 0" count lines
    return {"stocks_shorted": stocks} | {field: chosen.get(field) for field in _FIELD_RES}


def _report_lines(data: bytes) -> tuple[list[str], str, str, date]:
    """Validate a page and return its text lines, board, session and trading date."""
    if not data.strip():
        raise MalformedFile("hkex-short: empty file")
    text = decode_text(data)
    reject_error_page(text, "hkex-short")
    pre = _PRE_RE.search(text)
    body = html.unescape(_TAG_RE.sub("", pre.group(1) if pre else text))
    found = _TRADING_DATE_RE.search(body)
    if not found:
        # The placeholder has no date; a dated page mentioning the phrase in a note is still data.
        if "will be available after" in text.lower():
            raise NotPublishedYet("hkex-short: the page is the 'will be available after' placeholder")
        raise MalformedFile("hkex-short: no 'TRADING DATE : dd MMM yyyy' line")
    title = _TITLE_RE.search(body)
    if not title:
        raise MalformedFile("hkex-short: no 'Short Selling Turnover (<board>) up to <session> close' title")
    board = "main" if title.group(1).lower() == "main board" else "gem"
    session = "morning" if title.group(2).lower() == "morning" else "close"
    lines = body.splitlines()
    if not any(_STOCKS_SHORTED_RE.match(line) for line in lines):
        raise MalformedFile("hkex-short: no 'Total No. of ... recording Short Selling' summary (truncated page?)")
    return lines, board, session, parse_day(*found.groups())


def parse(data: bytes) -> pd.DataFrame:
    """Parse one short selling page into per-stock rows."""
    lines, board, session, day = _report_lines(data)
    rows: list[tuple[str, str, str, float | None, float | None]] = []
    for line in lines:
        if _STOCKS_SHORTED_RE.match(line):
            break  # the summary block follows the rows
        match = _ROW_RE.match(line)
        if not match:
            if _ROW_START_RE.match(line):
                raise MalformedFile(f"hkex-short: garbled stock row {line.strip()!r}")
            continue
        marker, code, name, shares, value = match.groups()
        rows.append((marker, norm_code(code), name.strip(), parse_number(shares), parse_number(value)))
    if not rows:
        return finish(empty_frame(SCHEMA), SCHEMA, day)
    markers, codes, names, shares, values = zip(*rows, strict=True)
    flagged = pd.Series([marker == "%" for marker in markers])
    frame = pd.DataFrame({
        "date": pd.Timestamp(day),
        "code": codes,
        "name": names,
        # The ($) value of a %-row is in the counter's own currency, known only from its -R/-U suffix.
        "currency": [counter_currency(n) if f else "HKD" for n, f in zip(names, flagged, strict=True)],
        "short_shares": shares,
        "short_value": values,
        "board": board,
        "session": session,
    })
    return finish(link_counters(frame, flagged=flagged), SCHEMA, day)


def parse_market(data: bytes) -> pd.DataFrame:
    """Parse the page's summary block into one market-totals row."""
    lines, board, session, day = _report_lines(data)
    totals = summary_totals(lines)
    if totals is None:  # _report_lines guarantees the count line; kept for type narrowing
        raise MalformedFile("hkex-short: no summary block")
    frame = pd.DataFrame([{"date": pd.Timestamp(day), "board": board, "session": session} | totals])
    return finish(frame, MARKET_SCHEMA, day)


def paths(day: date, session: str = "close") -> list[str]:
    """Paths of the Main Board and GEM pages for a session (the pages carry no date: today only)."""
    return [PATH_PREFIX + PAGES[(board, session)] for board in ("main", "gem")]


SOURCE = Source(
    name=NAME,
    title="HKEX short selling turnover (Main Board + GEM, day close)",
    base_setting="hkex_url",
    paths=paths,
    tables={"main": Table(SCHEMA, parse), "market": Table(MARKET_SCHEMA, parse_market)},
    history=False,  # HKEX overwrites these pages daily; history comes from hkex-quotes
)


def midday_paths(day: date) -> list[str]:
    """Paths of the Main Board and GEM pages up to the morning close (today only)."""
    return paths(day, "morning")


def _require_morning(data: bytes) -> None:
    """Refuse a day-close page served at a morning URL: it must not be stored as the midday figures."""
    _, _, session, _ = _report_lines(data)
    if session != "morning":
        raise MalformedFile(f"{MIDDAY_NAME}: the page is the day-close report, not the one up to the morning close")


def parse_midday(data: bytes) -> pd.DataFrame:
    """Parse a page up to the morning close into per-stock rows."""
    _require_morning(data)
    return parse(data)


def parse_midday_market(data: bytes) -> pd.DataFrame:
    """Parse the summary block of a page up to the morning close."""
    _require_morning(data)
    return parse_market(data)


MIDDAY_SOURCE = Source(
    name=MIDDAY_NAME,
    title="HKEX short selling turnover (Main Board + GEM, up to the morning close)",
    base_setting="hkex_url",
    paths=midday_paths,
    tables={"main": Table(SCHEMA, parse_midday), "market": Table(MARKET_SCHEMA, parse_midday_market)},
    history=False,  # overwritten daily like the day-close pages; no archive of midday figures exists
)
