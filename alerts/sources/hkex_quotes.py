"""`hkex-quotes`: HKEX daily quotations file d{YYMMDD}e.htm (QUOTATIONS + SHORT SELLING TURNOVER)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date

import pandas as pd

from alerts.errors import MalformedFile, NotPublishedYet
from alerts.sources.base import Feed, Source, Table, finish
from alerts.sources.common import (
    counter_currency,
    decode_text,
    empty_frame,
    link_counters,
    norm_code,
    parse_number,
    reject_error_page,
)
from alerts.sources.hkex_short import (
    MARKER,
    MARKET_SCHEMA,
    NUMBER,
    ROW_START_RE,
    Summary,
    garbled,
    line_number,
    market_fields,
    parse_day,
    read_summary,
    reconcile,
    split_lines,
    strip_tags,
    summary_targets,
    to_number,
)

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
_SECTIONS = frozenset(
    {
        "market_highlights",
        "quotations",
        "sales_all",
        "sales_over",
        "amendments",
        "dealings_suspstocks",
        "adj_turnover",
        "short_selling",
        "adj_short",
        "options_exercised",
        "efn_highlights",
        "overseas_highlights",
        "other_info",
    }
)
LAYOUT_CUR = "dayquot-2018"  # QUOTATIONS with a CUR column (table of contents of a 2018 file)
LAYOUT_2010 = "dayquot-2010"  # no CUR column

_ANCHOR_RE = re.compile(r"""<a\s+name\s*=\s*["']([^"']*)["']\s*>""", re.I)
_DATE_RE = re.compile(r"DATE:\s*(\d{1,2}) ([A-Z]{3}) (\d{4})")
_CUR_HEADER_RE = re.compile(r"NAME OF STOCK\s+CUR\b")
_V = rf"(-|{NUMBER})"
_CODE = rf"^\s*({MARKER}?)\s*(\d{{1,5}})\s+(.+?)"
_CURRENCY = r"(HKD|RMB|USD|CNY|EUR|GBP|JPY|AUD|CAD|SGD)"
# Line 1: code, name, [CUR], previous close, ask, high, shares traded. Line 2: close, bid, low, turnover.
_LINE1_CUR_RE = re.compile(rf"{_CODE}\s+{_CURRENCY}\s+{_V}\s+{_V}\s+{_V}\s+{_V}\s*$")
_LINE1_NO_CUR_RE = re.compile(rf"{_CODE}()\s+{_V}\s+{_V}\s+{_V}\s+{_V}\s*$")  # 2010 layout; () keeps groups
_LINE2_RE = re.compile(rf"^\s+{_V}\s+{_V}\s+{_V}\s+{_V}\s*$")
_SUSPENDED_RE = re.compile(rf"{_CODE}\s+(?:{_CURRENCY}\s+)?TRADING\s+(?:SUSPENDED|HALTED)\s*$")
_SHORT_ROW_RE = re.compile(rf"{_CODE}\s+{_V}\s+{_V}\s+{_V}\s+{_V}\s*$")
# The SHORT SELLING section's own total line: short-sold shares, then shares traded, of the listed rows.
_SECTION_TOTAL_RE = re.compile(r"^\s*Total Shares \(SH\)\s*:\s*([\d,]+)(?:\s+([\d,]+))?\s*$")
# MARKET HIGHLIGHTS: the dates heading the columns, and the market turnover line.
_HIGHLIGHT_DATES_RE = re.compile(r"\d{1,2} [A-Z]{3} \d{4}")
_HIGHLIGHT_TURNOVER_RE = re.compile(r"^\s*TURNOVER \(\$\)((?:\s+[\d,]+)+)\s*$")
_STUB_MARKERS = ("not available", "no trading")
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
# Per-stock columns collected while parsing; date/short_ratio/non_hkd/hkd_code are derived afterwards.
_ROW_COLUMNS = [col for col in SCHEMA if col not in ("date", "short_ratio", "non_hkd", "hkd_code")] + [
    "flagged"
]

_ShortRow = tuple[str, str, float | None, float | None, float | None, float | None]


@dataclass(frozen=True)
class _Section:
    """A section's tag-free lines and the file line number of the first one (its anchor's line)."""

    first: int
    lines: list[str]

    def numbered(self) -> list[tuple[int, str]]:
        """(file line number, line) pairs."""
        return list(enumerate(self.lines, start=self.first))


@dataclass(frozen=True)
class _File:
    """One file read and reconciled."""

    day: date
    quotes: dict[str, dict[str, object]]
    short: dict[str, _ShortRow]
    summary: Summary | None
    layout: str
    reconciled: dict[str, tuple[float, float]]


def _load(data: bytes) -> tuple[date, dict[str, _Section]]:
    """Validate the file; return its date and the sections found (QUOTATIONS always)."""
    if not data.strip():
        raise MalformedFile(f"{NAME}: empty file")
    text = decode_text(data, ("latin-1",))
    reject_error_page(text, NAME)
    anchors = [
        (m.group(1).lower(), m.start(), m.end())
        for m in _ANCHOR_RE.finditer(text)
        if m.group(1).lower() in _SECTIONS
    ]
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
    sections = {"quotations": _section(text, anchors, "quotations")}
    if "short_selling" in names:
        sections["short_selling"] = _section(text, anchors, "short_selling")
    elif re.search(r"""href\s*=\s*["']#short_selling["']""", text, re.I):
        raise MalformedFile(
            f"{NAME}: contents list SHORT SELLING TURNOVER but the section is missing (truncated?)"
        )
    if "market_highlights" in names:
        sections["market_highlights"] = _section(text, anchors, "market_highlights")
    return day, sections


def _section(text: str, anchors: list[tuple[str, int, int]], name: str) -> _Section:
    """Tag-free lines between a section's anchor and the next section anchor."""
    index = next(i for i, (anchor, _, _) in enumerate(anchors) if anchor == name)
    if index + 1 == len(anchors):
        raise MalformedFile(f"{NAME}: section {name!r} does not end (truncated file?)")
    start = anchors[index][2]
    return _Section(line_number(text, start), split_lines(strip_tags(text[start : anchors[index + 1][1]])))


def _quotations(section: _Section) -> tuple[dict[str, dict[str, object]], str]:
    """Stock rows of the QUOTATIONS section by code (two physical lines each, one when suspended), and layout."""
    lines = section.lines
    with_cur = any(_CUR_HEADER_RE.search(line) for line in lines[:50])
    line1_re = _LINE1_CUR_RE if with_cur else _LINE1_NO_CUR_RE
    rows: dict[str, dict[str, object]] = {}
    pending: tuple[str, ...] | None = None
    pending_at = 0
    for number, line in section.numbered():
        if pending is not None:
            second = _LINE2_RE.match(line)
            if not second:
                raise MalformedFile(
                    f"{NAME}: quotation of {norm_code(pending[1])} (line {pending_at}) has no "
                    f"CLOSING/BID/LOW line"
                )
            _add_quote(rows, pending + second.groups())
            pending = None
        elif match := line1_re.match(line):
            pending, pending_at = match.groups(), number
        elif match := _SUSPENDED_RE.match(line):
            _add_quote(rows, match.groups() + (None,) * 8, suspended=True)
        elif ROW_START_RE.match(line) or _LINE2_RE.match(line):
            raise garbled(NAME, "quotation line", number, line)
    if pending is not None:
        raise MalformedFile(
            f"{NAME}: quotation of {norm_code(pending[1])} (line {pending_at}) is cut after its first line"
        )
    return rows, LAYOUT_CUR if with_cur else LAYOUT_2010


def _add_quote(
    rows: dict[str, dict[str, object]], groups: tuple[str | None, ...], suspended: bool = False
) -> None:
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
        "prev_close": to_number(prev_close),
        "close": to_number(close),
        "ask": to_number(ask),
        "bid": to_number(bid),
        "high": to_number(high),
        "low": to_number(low),
        "shares_traded": to_number(shares),
        "turnover": to_number(turnover),
        "suspended": suspended,
        "flagged": "%" in (marker or ""),
    }


def _implied_currency(marker: str | None, name: str) -> str | None:
    """Currency of a row printed without CUR: HKD unless %-marked, then the -R/-U suffix (else unknown)."""
    return counter_currency(name) if "%" in (marker or "") else "HKD"


def _short_rows(section: _Section) -> tuple[dict[str, _ShortRow], tuple[float | None, float | None] | None]:
    """Rows of the SHORT SELLING TURNOVER section by code (marker, name, short sh/$, total sh/$), and the
    section's "Total Shares (SH):" line (short-sold shares, shares traded) when printed."""
    rows: dict[str, _ShortRow] = {}
    total: tuple[float | None, float | None] | None = None
    for number, line in section.numbered():
        match = _SHORT_ROW_RE.match(line)
        if not match:
            if ROW_START_RE.match(line):
                raise garbled(NAME, "short selling line", number, line)
            if total is None and (found := _SECTION_TOTAL_RE.match(line)):
                total = (parse_number(found.group(1)), parse_number(found.group(2)))
            continue
        marker, code, name, short_shares, short_value, total_shares, total_value = match.groups()
        key = norm_code(code)
        if key in rows:
            raise MalformedFile(f"{NAME}: stock {key} listed twice in SHORT SELLING TURNOVER (line {number})")
        rows[key] = (
            marker,
            name.strip(),
            to_number(short_shares),
            to_number(short_value),
            to_number(total_shares),
            to_number(total_value),
        )
    return rows, total


def _market_turnover(section: _Section, day: date) -> float | None:
    """Today's TURNOVER ($) from MARKET HIGHLIGHTS (the column under the file's date), None when not printed."""
    columns: list[str] = []
    for line in section.lines:
        if not columns:
            columns = _HIGHLIGHT_DATES_RE.findall(line)
        if match := _HIGHLIGHT_TURNOVER_RE.match(line):
            values = match.group(1).split()
            today = f"{day.day:02d} {_MONTH_NAMES[day.month - 1]} {day.year}"
            if columns and today not in columns:
                raise MalformedFile(
                    f"{NAME}: MARKET HIGHLIGHTS has no column for {today} (columns {columns})"
                )
            index = columns.index(today) if columns else 0
            return parse_number(values[index]) if index < len(values) else None
    return None


# parse and parse_market read the same file one after the other (Source.parse_all): read and reconcile it once.
# One entry only: the daily file can be tens of MB.
@functools.lru_cache(maxsize=1)
def _read(data: bytes) -> _File:
    """Parse QUOTATIONS and SHORT SELLING and check every total the file prints against its rows.

    Checks (skipped, and left out of `reconciled`, when the file does not print the total):
    - turnover: QUOTATIONS turnover of the HKD rows vs MARKET HIGHLIGHTS TURNOVER ($) of the day (non-HKD rows
      are in their own currency; the market total holds their small HKD equivalent, see `summary_targets`);
    - section_short_shares / section_total_shares: the SHORT SELLING rows' short-sold shares and shares traded
      vs the section's "Total Shares (SH):" line;
    - stocks_shorted, short_shares, short_value: the SHORT SELLING rows vs the market summary block, as for the
      hkex-short pages (`summary_targets`).
    """
    day, sections = _load(data)
    quotes, layout = _quotations(sections["quotations"])
    reconciled: dict[str, tuple[float, float]] = {}
    if "market_highlights" in sections:
        turnover = sum(_number(row["turnover"]) for row in quotes.values() if row["currency"] == "HKD")
        reconcile(
            NAME,
            reconciled,
            "turnover",
            turnover,
            _market_turnover(sections["market_highlights"], day),
            "QUOTATIONS turnover of the HKD rows vs MARKET HIGHLIGHTS TURNOVER ($)",
            layout=layout,
        )
    short: dict[str, _ShortRow] = {}
    summary = None
    if "short_selling" in sections:
        short, section_total = _short_rows(sections["short_selling"])
        short_shares = sum(row[2] or 0.0 for row in short.values())
        if section_total is not None:
            reconcile(
                NAME,
                reconciled,
                "section_short_shares",
                short_shares,
                section_total[0],
                "short-sold shares vs the section's Total Shares (SH) line",
                layout=layout,
            )
            reconcile(
                NAME,
                reconciled,
                "section_total_shares",
                sum(row[4] or 0.0 for row in short.values()),
                section_total[1],
                "shares traded vs the section's Total Shares (SH) line",
                layout=layout,
            )
        summary = read_summary(sections["short_selling"].lines)
        if summary is not None:
            hkd_value = sum(row[3] or 0.0 for code, row in short.items() if _is_hkd(row, quotes.get(code)))
            sums = {
                "stocks_shorted": float(len(short)),
                "short_shares": short_shares,
                "short_value": hkd_value,
            }
            for check, (total, what) in summary_targets(summary).items():
                reconcile(NAME, reconciled, check, sums[check], total, what, layout=layout)
    return _File(day, quotes, short, summary, layout, reconciled)


def _number(value: object) -> float:
    """A parsed figure as a float; missing (None) counts as 0."""
    return float(value) if isinstance(value, int | float) else 0.0


def _is_hkd(row: _ShortRow, quote: dict[str, object] | None) -> bool:
    """Whether a SHORT SELLING row's ($) is in HKD: not %-marked, and not quoted in another currency."""
    if "%" in row[0]:
        return False
    return quote is None or quote["currency"] == "HKD"


def parse(data: bytes) -> pd.DataFrame:
    """Parse the daily quotations file into one row per stock with its short selling figures."""
    read = _read(data)
    rows = {code: dict(row) for code, row in read.quotes.items()}  # the read is cached: never change it
    for code, (marker, name, short_shares, short_value, total_shares, total_value) in read.short.items():
        row = rows.get(code)
        if row is None:  # shorted but not quoted: keep it, prices unknown
            row = rows[code] = {
                "code": code,
                "name": name,
                "currency": _implied_currency(marker, name),
                "suspended": False,
                "flagged": "%" in marker,
            }
        row |= {
            "short_shares": short_shares,
            "short_value": short_value,
            "total_shares": total_shares,
            "total_value": total_value,
        }
    if not rows:
        return finish(empty_frame(SCHEMA), SCHEMA, read.day, layout=read.layout, reconciled=read.reconciled)
    # Short-only stocks were appended last; the file itself lists stocks by code.
    frame = pd.DataFrame(list(rows.values())).reindex(columns=_ROW_COLUMNS)
    frame = frame.sort_values("code", kind="stable", ignore_index=True)
    frame.insert(0, "date", pd.Timestamp(read.day))
    short_value = frame["short_value"].astype("float64")
    total_value = frame["total_value"].astype("float64")
    frame["short_ratio"] = (short_value / total_value).where(total_value > 0)
    currency = frame["currency"].astype("string")
    flagged = frame["flagged"].astype(bool) | (currency.notna() & (currency != "HKD")).fillna(False)
    return finish(
        link_counters(frame, flagged=flagged),
        SCHEMA,
        read.day,
        layout=read.layout,
        reconciled=read.reconciled,
    )


def parse_market(data: bytes) -> pd.DataFrame:
    """Parse the market short selling totals of the file (empty frame when the file has none)."""
    read = _read(data)
    if read.summary is None:
        return finish(
            empty_frame(MARKET_SCHEMA),
            MARKET_SCHEMA,
            read.day,
            layout=read.layout,
            reconciled=read.reconciled,
        )
    row = {"date": pd.Timestamp(read.day), "board": "main", "session": "close"} | market_fields(read.summary)
    return finish(
        pd.DataFrame([row]), MARKET_SCHEMA, read.day, layout=read.layout, reconciled=read.reconciled
    )


def paths(day: date) -> list[str]:
    """Path of the day's quotations file."""
    return [f"/eng/stat/smstat/dayquot/d{day:%y%m%d}e.htm"]


SOURCE = Source(
    name=NAME,
    title="HKEX daily quotations (prices, turnover, per-stock short selling)",
    base_setting="hkex_url",
    public_url="https://www.hkex.com.hk",
    paths=paths,
    tables={"main": Table(SCHEMA, parse), "market": Table(MARKET_SCHEMA, parse_market)},
    # The daily quotations file runs to ~30 MB of HTML; other sources keep the 20 MB default (files of a few MB).
    max_bytes=50 * 1024 * 1024,
    feeds={"quotes": Feed(), "market": Feed("market")},
)
