"""`hkex-quotes`: HKEX daily quotations file d{YYMMDD}e.htm (QUOTATIONS + SHORT SELLING TURNOVER)."""

from __future__ import annotations

import html
import re
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
from alerts.sources.hkex_short import MARKET_SCHEMA, parse_day, summary_totals

NAME = "hkex-quotes"

SCHEMA: dict[str, str] = {
    "date": "datetime64[ns]",
    "code": "string",
    "name": "string",
    "currency": "string",
    "prev_close": "float64",
    "close": "float64",
    "ask": "float64",
    "bid": "float64",
    "high": "float64",
    "low": "float64",
    "shares_traded": "Int64",
    "turnover": "float64",
    "suspended": "bool",
    "short_shares": "Int64",  # from the SHORT SELLING TURNOVER section; <NA> when the stock is not listed there
    "short_value": "float64",
    "total_shares": "Int64",
    "total_value": "float64",
    "short_ratio": "float64",  # short_value / total_value (0..1); NaN when not computable
    "non_hkd": "bool",
    "hkd_code": "string",
}

# Anchors that open a section (the table of contents links to them with href="#...").
_SECTIONS = frozenset({
    "market_highlights", "quotations", "sales_all", "sales_over", "amendments", "dealings_suspstocks",
    "adj_turnover", "short_selling", "adj_short", "options_exercised", "efn_highlights",
    "overseas_highlights", "other_info",
})
_ANCHOR_RE = re.compile(r"""<a\s+name\s*=\s*["']([^"']*)["']\s*>""", re.I)
_DATE_RE = re.compile(r"DATE:\s*(\d{1,2}) ([A-Z]{3}) (\d{4})")
_TAG_RE = re.compile(r"<[^>]*>")
_CUR_HEADER_RE = re.compile(r"NAME OF STOCK\s+CUR\b")
_V = r"(-|[\d,]+(?:\.\d+)?)"
_CODE = r"^\s*([*#%]*)\s*(\d{1,5})\s+(.+?)"
_CURRENCY = r"(HKD|RMB|USD|CNY|EUR|GBP|JPY|AUD|CAD|SGD)"
# Line 1: code, name, [CUR], previous close, ask, high, shares traded. Line 2: close, bid, low, turnover.
_LINE1_CUR_RE = re.compile(rf"{_CODE}\s+{_CURRENCY}\s+{_V}\s+{_V}\s+{_V}\s+{_V}\s*$")
_LINE1_NO_CUR_RE = re.compile(rf"{_CODE}()\s+{_V}\s+{_V}\s+{_V}\s+{_V}\s*$")  # 2010 layout; () keeps groups
_LINE2_RE = re.compile(rf"^\s+{_V}\s+{_V}\s+{_V}\s+{_V}\s*$")
_SUSPENDED_RE = re.compile(rf"{_CODE}\s+(?:{_CURRENCY}\s+)?TRADING\s+(?:SUSPENDED|HALTED)\s*$")
_SHORT_ROW_RE = re.compile(rf"{_CODE}\s+{_V}\s+{_V}\s+{_V}\s+{_V}\s*$")
_ROW_START_RE = re.compile(r"^\s*[*#%]*\s*\d{1,5}\s+[A-Z0-9]")
_STUB_MARKERS = ("not available", "no trading")
# Per-stock columns collected while parsing; date/short_ratio/non_hkd/hkd_code are derived afterwards.
_ROW_COLUMNS = [col for col in SCHEMA if col not in ("date", "short_ratio", "non_hkd", "hkd_code")] + ["flagged"]

_ShortRow = tuple[str, str, float | None, float | None, float | None, float | None]


def _load(data: bytes) -> tuple[date, list[str], list[str] | None]:
    """Validate the file; return its date, QUOTATIONS lines and SHORT SELLING lines (None if absent)."""
    if not data.strip():
        raise MalformedFile(f"{NAME}: empty file")
    text = decode_text(data, ("latin-1",))
    reject_error_page(text, NAME)
    anchors = [(m.group(1).lower(), m.start(), m.end()) for m in _ANCHOR_RE.finditer(text)
               if m.group(1).lower() in _SECTIONS]
    names = [name for name, _, _ in anchors]
    if "quotations" not in names:
        lowered = text.lower()
        # A dated URL that answers with a short "no trading / not available" stub is a day without a
        # report (holiday): not published. Any other page without the section is a broken file.
        if any(marker in lowered for marker in _STUB_MARKERS):
            raise NotPublishedYet(f"{NAME}: stub page without quotations (no trading that day?)")
        raise MalformedFile(f"{NAME}: no QUOTATIONS section")
    found = _DATE_RE.search(text)
    if not found:
        raise MalformedFile(f"{NAME}: no 'DATE: dd MMM yyyy' line")
    day = parse_day(*found.groups())
    quotations = _section_lines(text, anchors, "quotations")
    if "short_selling" in names:
        short = _section_lines(text, anchors, "short_selling")
    elif re.search(r"""href\s*=\s*["']#short_selling["']""", text, re.I):
        raise MalformedFile(f"{NAME}: contents list SHORT SELLING TURNOVER but the section is missing (truncated?)")
    else:
        short = None
    return day, quotations, short


def _section_lines(text: str, anchors: list[tuple[str, int, int]], name: str) -> list[str]:
    """Tag-free lines between a section's anchor and the next section anchor."""
    index = next(i for i, (anchor, _, _) in enumerate(anchors) if anchor == name)
    if index + 1 == len(anchors):
        raise MalformedFile(f"{NAME}: section {name!r} does not end (truncated file?)")
    body = text[anchors[index][2]:anchors[index + 1][1]]
    return html.unescape(_TAG_RE.sub("", body)).splitlines()


def _quotations(lines: list[str]) -> dict[str, dict[str, object]]:
    """Stock rows of the QUOTATIONS section by code (two physical lines each, one when suspended)."""
    line1_re = _LINE1_CUR_RE if any(_CUR_HEADER_RE.search(line) for line in lines[:50]) else _LINE1_NO_CUR_RE
    rows: dict[str, dict[str, object]] = {}
    pending: tuple[str, ...] | None = None
    for line in lines:
        if pending is not None:
            second = _LINE2_RE.match(line)
            if not second:
                raise MalformedFile(f"{NAME}: quotation of {norm_code(pending[1])} has no CLOSING/BID/LOW line")
            _add_quote(rows, pending + second.groups())
            pending = None
        elif match := line1_re.match(line):
            pending = match.groups()
        elif match := _SUSPENDED_RE.match(line):
            _add_quote(rows, match.groups() + (None,) * 8, suspended=True)
        elif _ROW_START_RE.match(line) or _LINE2_RE.match(line):
            raise MalformedFile(f"{NAME}: garbled quotation line {line.strip()!r}")
    if pending is not None:
        raise MalformedFile(f"{NAME}: quotation of {norm_code(pending[1])} is cut after its first line")
    return rows


def _add_quote(rows: dict[str, dict[str, object]], groups: tuple[str | None, ...], suspended: bool = False) -> None:
    """Store one parsed quotation under its normalized code."""
    marker, code, name, currency, prev_close, ask, high, shares, close, bid, low, turnover = groups
    key = norm_code(code)
    if key in rows:
        raise MalformedFile(f"{NAME}: stock {key} quoted twice")
    name = (name or "").strip()
    rows[key] = {
        "code": key,
        "name": name,
        "currency": currency or _implied_currency(marker, name),
        "prev_close": parse_number(prev_close),
        "close": parse_number(close),
        "ask": parse_number(ask),
        "bid": parse_number(bid),
        "high": parse_number(high),
        "low": parse_number(low),
        "shares_traded": parse_number(shares),
        "turnover": parse_number(turnover),
        "suspended": suspended,
        "flagged": "%" in (marker or ""),
    }


def _implied_currency(marker: str | None, name: str) -> str | None:
    """Currency of a row printed without CUR: HKD unless %-marked, then the -R/-U suffix (else unknown)."""
    return counter_currency(name) if "%" in (marker or "") else "HKD"


def _short_rows(lines: list[str]) -> dict[str, _ShortRow]:
    """Rows of the SHORT SELLING TURNOVER section by code: marker, name, short sh/$, total sh/$."""
    rows: dict[str, _ShortRow] = {}
    for line in lines:
        match = _SHORT_ROW_RE.match(line)
        if not match:
            if _ROW_START_RE.match(line):
                raise MalformedFile(f"{NAME}: garbled short selling line {line.strip()!r}")
            continue
        marker, code, name, short_shares, short_value, total_shares, total_value = match.groups()
        key = norm_code(code)
        if key in rows:
            raise MalformedFile(f"{NAME}: stock {key} listed twice in SHORT SELLING TURNOVER")
        rows[key] = (marker, name.strip(), parse_number(short_shares), parse_number(short_value),
                     parse_number(total_shares), parse_number(total_value))
    return rows


def parse(data: bytes) -> pd.DataFrame:
    """Parse the daily quotations file into one row per stock with its short selling figures."""
    day, quotation_lines, short_lines = _load(data)
    rows = _quotations(quotation_lines)
    short = _short_rows(short_lines) if short_lines is not None else {}
    for code, (marker, name, short_shares, short_value, total_shares, total_value) in short.items():
        row = rows.get(code)
        if row is None:  # shorted but not quoted: keep it, prices unknown
            row = rows[code] = {"code": code, "name": name, "currency": _implied_currency(marker, name),
                                "suspended": False, "flagged": "%" in marker}
        row |= {"short_shares": short_shares, "short_value": short_value,
                "total_shares": total_shares, "total_value": total_value}
    if not rows:
        return finish(empty_frame(SCHEMA), SCHEMA, day)
    # Short-only stocks were appended last; the file itself lists stocks by code.
    frame = pd.DataFrame(list(rows.values())).reindex(columns=_ROW_COLUMNS)
    frame = frame.sort_values("code", kind="stable", ignore_index=True)
    frame.insert(0, "date", pd.Timestamp(day))
    short_value = frame["short_value"].astype("float64")
    total_value = frame["total_value"].astype("float64")
    frame["short_ratio"] = (short_value / total_value).where(total_value > 0)
    currency = frame["currency"].astype("string")
    flagged = frame["flagged"].astype(bool) | (currency.notna() & (currency != "HKD")).fillna(False)
    return finish(link_counters(frame, flagged=flagged), SCHEMA, day)


def parse_market(data: bytes) -> pd.DataFrame:
    """Parse the market short selling totals of the file (empty frame when the file has none)."""
    day, _, short_lines = _load(data)
    totals = summary_totals(short_lines) if short_lines is not None else None
    if totals is None:
        return finish(empty_frame(MARKET_SCHEMA), MARKET_SCHEMA, day)
    frame = pd.DataFrame([{"date": pd.Timestamp(day), "board": "main", "session": "close"} | totals])
    return finish(frame, MARKET_SCHEMA, day)


def paths(day: date) -> list[str]:
    """Path of the day's quotations file."""
    return [f"/eng/stat/smstat/dayquot/d{day:%y%m%d}e.htm"]


SOURCE = Source(
    name=NAME,
    title="HKEX daily quotations (prices, turnover, per-stock short selling)",
    base_setting="hkex_url",
    paths=paths,
    tables={"main": Table(SCHEMA, parse), "market": Table(MARKET_SCHEMA, parse_market)},
)
