"""`hkex-short` and `hkex-short-midday`: HKEX short selling turnover pages (ASHTMAIN/MSHTMAIN/ASHTGEM/MSHTGEM .HTM).

Both sources share the parsers; `hkex-short` fetches the day-close pages, `hkex-short-midday` the pages up to the
morning close. They are separate sources because frames are stored per (source, table, date): one source holding
both sessions would have its midday frame overwritten by the close.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
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

NAME = "hkex-short"
MIDDAY_NAME = "hkex-short-midday"
PATH_PREFIX = "/eng/stat/smstat/ssturnover/ncms/"
PAGES = {
    ("main", "close"): "ASHTMAIN.HTM",
    ("gem", "close"): "ASHTGEM.HTM",
    ("main", "morning"): "MSHTMAIN.HTM",
    ("gem", "morning"): "MSHTGEM.HTM",
}

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

LAYOUT_2026 = "ncms-2026"  # summary in lettered blocks: (A) excluding ETP, (C) all Designated Securities
LAYOUT_2017 = "ncms-2017"  # unlabeled summary lines (or only the count lines of an empty board)

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1
    )
}
_TITLE_RE = re.compile(r"Short Selling Turnover \((Main Board|GEM)\) up to (morning|day) close today", re.I)
_TRADING_DATE_RE = re.compile(r"TRADING DATE\s*:\s*(\d{1,2}) ([A-Z]{3}) (\d{4})")
_PRE_RE = re.compile(r"<pre\b[^>]*>(.*?)(?:</pre>|\Z)", re.I | re.S)
_TAG_RE = re.compile(r"<[^>]*>")
# A code may be preceded by one marker: any character that is neither a word character nor a space (`%`, `#`,
# `*`, `^`, `@`, `!` ...), then optional spaces. Only `%` has a known meaning (a non-HKD counter); the others
# are kept as printed and ignored. Shared with hkex_quotes.
MARKER = r"[^\w\s]"
# Numbers as printed: thousands separators in their places (or none), optional decimals. A row whose number
# is mis-grouped does not match its row pattern, so it is reported as a garbled row with its line number.
INTEGER = r"\d{1,3}(?:,\d{3})+|\d+"
NUMBER = rf"(?:{INTEGER})(?:\.\d+)?"
# Right-anchored: the name may contain spaces and digits, the two numbers are the last two tokens.
_ROW_RE = re.compile(rf"^\s*({MARKER}?)\s*(\d{{1,5}})\s+(.+?)\s+({INTEGER})\s+({INTEGER})\s*$")
# A line that starts like a stock row (optional marker, a code, a gap, then text): if the row pattern does not
# match it, the row is unreadable and the file is refused, never silently shorter.
ROW_START_RE = re.compile(rf"^\s*{MARKER}?\s*\d{{1,5}}\s+\S")
_LINE_BREAK_RE = re.compile(r"\r\n|\r|\n")
# Rows must add up to the file's own totals within this fraction of the total (counts included: 840 printed
# accepts 836..844 rows). The slack absorbs the HKD equivalent of non-HKD rows (`summary_targets`), nothing more.
TOLERANCE = 0.005
# "all Securities" (current) or plain "Securities" (2017); never "(non-)Designated Securities".
_STOCKS_SHORTED_RE = re.compile(
    r"^\s*Total No\. of (?:all )?Securities recording Short Selling\s*:\s*([\d,]+)"
)
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


@dataclass(frozen=True)
class Summary:
    """The market summary block as printed: the count line, each block's fields, the non-Designated block."""

    stocks: float | None  # "Total No. of (all) Securities recording Short Selling"
    blocks: dict[str, dict[str, float | None]] = field(default_factory=dict)  # "C", "A", "" (unlabeled, old)
    non_designated: dict[str, float | None] = field(default_factory=dict)

    @property
    def chosen(self) -> str | None:
        """The block the market row reads: (C) all Designated Securities, else (A), else the unlabeled one."""
        return next((key for key in ("C", "A", "") if key in self.blocks), None)


def read_summary(lines: Iterable[str]) -> Summary | None:
    """Read the market summary block (§1 labels) from report lines; None when there is no count line.

    The block starts at the "Total No. of ... recording Short Selling" line; lines after "(A)" / "(C)" belong to
    that block, lines before any letter to the unlabeled block of older layouts, lines after the
    "non-Designated" count to the non-Designated block.
    """
    stocks: float | None = None
    found = False
    blocks: dict[str, dict[str, float | None]] = {}
    block = ""
    for line in lines:
        if not found:
            match = _STOCKS_SHORTED_RE.match(line)
            if match:
                stocks, found = parse_number(match.group(1)), True
            continue
        if _NON_DESIGNATED_RE.search(line):
            block = "non-designated"  # its share/value lines must not overwrite the designated totals
            continue
        if match := _BLOCK_RE.match(line):
            block = match.group(1)
        for name, regex in _FIELD_RES.items():
            if match := regex.search(line):
                blocks.setdefault(block, {}).setdefault(name, parse_number(match.group(1)))
    if not found:
        return None
    non_designated = blocks.pop("non-designated", {})
    return Summary(stocks, blocks, non_designated)


def summary_totals(lines: Iterable[str]) -> dict[str, float | None] | None:
    """The market row's figures from the summary block; None when there is none.

    Fields come from block (C) "all Designated Securities" when present, else (A), else from the unlabeled
    lines of older layouts.
    """
    summary = read_summary(lines)
    return None if summary is None else market_fields(summary)


def market_fields(summary: Summary) -> dict[str, float | None]:
    """The market row's figures (`summary_totals`) of a parsed summary."""
    chosen = summary.chosen
    if chosen is None:
        if summary.stocks:
            raise MalformedFile(
                f"summary says {summary.stocks:.0f} securities were shorted but gives no totals"
            )
        fields: dict[str, float | None] = dict.fromkeys(_FIELD_RES, 0.0)  # an empty board: only ": 0" counts
    else:
        fields = summary.blocks[chosen]
    return {"stocks_shorted": summary.stocks} | {name: fields.get(name) for name in _FIELD_RES}


def summary_targets(summary: Summary) -> dict[str, tuple[float | None, str]]:
    """What the summary says the rows add up to: check name -> (the file's total or None, what it is).

    - stocks_shorted: the count line counts every security shorted, Designated or not, so every row.
    - short_shares / short_value: block (C) "all Designated Securities" (or the unlabeled block of older
      layouts) plus the non-Designated block when printed [unverified: that non-Designated stocks are listed
      as rows]. Block (A) excludes ETPs while the rows include them, so a page with (A) only is not checked.
    - short_value is printed in HKD but a `%` row's ($) is in its own currency (RMB/USD), so the value check
      adds up the HKD rows only; the file's HKD total also holds the HKD equivalent of the non-HKD rows, a few
      counters worth far less than the 0.5% tolerance (constructed fixtures: RMB at 0.91 per HKD, USD at 7.78
      HKD). Shares are shares in any currency: every row counts.
    """
    targets: dict[str, tuple[float | None, str]] = {
        "stocks_shorted": (summary.stocks, "Total No. of all Securities recording Short Selling"),
    }
    chosen = summary.chosen
    if chosen in ("C", ""):
        block = summary.blocks[chosen]
        label = "block (C) all Designated Securities" if chosen == "C" else "the summary block"
        for name, what in (
            ("short_shares", "Total Shares (SH)"),
            ("short_value", "Total Value ($), HKD rows"),
        ):
            total = block.get(name)
            extra = summary.non_designated.get(name)
            if total is not None and extra is not None:
                total, label_of = total + extra, f"{label} + non-Designated"
            else:
                label_of = label
            targets[name] = (total, f"short selling {what} of {label_of}")
    return targets


def reconcile(
    name: str,
    reconciled: dict[str, tuple[float, float]],
    check: str,
    rows_sum: float,
    total: float | None,
    what: str,
    *,
    layout: str | None = None,
) -> None:
    """Record `check` when the file prints `total`; refuse the file when the rows miss it by over TOLERANCE.

    A total the file does not print is skipped and left out of `reconciled`.
    """
    if total is None:
        return
    if abs(rows_sum - total) > TOLERANCE * abs(total) or (total == 0 and rows_sum != 0):
        raise MalformedFile(
            f"{name}: rows add up to {rows_sum:,.0f} but the file's total says {total:,.0f} "
            f"({check}: {what})",
            layout=layout,
        )
    reconciled[check] = (rows_sum, total)


def to_number(text: str | None) -> float | None:
    """A number a row pattern matched (NUMBER, or ``-`` for missing) as a float; None when missing."""
    return None if text is None or text == "-" else float(text.replace(",", ""))


def split_lines(text: str) -> list[str]:
    """Lines of `text` (CRLF, CR or LF), numbered like `line_number` counts them."""
    return _LINE_BREAK_RE.split(text)


def line_number(text: str, offset: int) -> int:
    """1-based number of the line of `text` that holds character `offset`."""
    return len(_LINE_BREAK_RE.findall(text, 0, offset)) + 1


def strip_tags(text: str) -> str:
    """Text without tags or entities; a tag spanning lines leaves its line breaks, so lines keep their numbers."""
    return html.unescape(_TAG_RE.sub(lambda m: "\n" * m.group(0).count("\n"), text))


def garbled(name: str, what: str, number: int, line: str) -> MalformedFile:
    """The error for an unreadable row: its 1-based line number in the file and its text, shortened."""
    text = " ".join(line.split())
    if len(text) > 72:
        text = text[:69] + "..."
    return MalformedFile(f"{name}: garbled {what} at line {number}: {text!r}")


@dataclass(frozen=True)
class _Page:
    """One page read and reconciled: its rows, summary and what was checked."""

    board: str
    session: str
    day: date
    rows: list[tuple[str, str, str, float | None, float | None]]  # marker, code, name, shares, value
    summary: Summary
    layout: str
    reconciled: dict[str, tuple[float, float]]


def _report_lines(data: bytes) -> tuple[list[str], int, str, str, date]:
    """Validate a page and return its text lines, the file line number of the first one, board, session, date."""
    if not data.strip():
        raise MalformedFile("hkex-short: empty file")
    text = decode_text(data)
    reject_error_page(text, "hkex-short")
    pre = _PRE_RE.search(text)
    start = pre.start(1) if pre else 0
    body = strip_tags(pre.group(1) if pre else text)
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
    lines = split_lines(body)
    if not any(_STOCKS_SHORTED_RE.match(line) for line in lines):
        raise MalformedFile(
            "hkex-short: no 'Total No. of ... recording Short Selling' summary (truncated page?)"
        )
    return lines, line_number(text, start), board, session, parse_day(*found.groups())


def _read_page(data: bytes) -> _Page:
    """Parse a page's rows and summary and check that the rows add up to the summary (`reconcile`)."""
    lines, first, board, session, day = _report_lines(data)
    rows: list[tuple[str, str, str, float | None, float | None]] = []
    for number, line in enumerate(lines, start=first):
        if _STOCKS_SHORTED_RE.match(line):
            break  # the summary block follows the rows
        match = _ROW_RE.match(line)
        if not match:
            if ROW_START_RE.match(line):
                raise garbled(NAME, "stock row", number, line)
            continue
        marker, code, name, shares, value = match.groups()
        rows.append((marker, norm_code(code), name.strip(), to_number(shares), to_number(value)))
    summary = read_summary(lines)
    if summary is None:  # _report_lines guarantees the count line; kept for type narrowing
        raise MalformedFile("hkex-short: no summary block")
    layout = LAYOUT_2026 if any(key in summary.blocks for key in ("A", "C")) else LAYOUT_2017
    sums = {
        "stocks_shorted": float(len(rows)),
        "short_shares": sum(shares or 0.0 for _, _, _, shares, _ in rows),
        "short_value": sum(value or 0.0 for marker, _, _, _, value in rows if marker != "%"),
    }
    reconciled: dict[str, tuple[float, float]] = {}
    for check, (total, what) in summary_targets(summary).items():
        reconcile(NAME, reconciled, check, sums[check], total, what, layout=layout)
    return _Page(board, session, day, rows, summary, layout, reconciled)


def parse(data: bytes) -> pd.DataFrame:
    """Parse one short selling page into per-stock rows (checked against the page's summary)."""
    page = _read_page(data)
    if not page.rows:
        return finish(empty_frame(SCHEMA), SCHEMA, page.day, layout=page.layout, reconciled=page.reconciled)
    markers, codes, names, shares, values = zip(*page.rows, strict=True)
    flagged = pd.Series([marker == "%" for marker in markers])
    frame = pd.DataFrame(
        {
            "date": pd.Timestamp(page.day),
            "code": codes,
            "name": names,
            # The ($) value of a %-row is in the counter's own currency, known only from its -R/-U suffix.
            "currency": [counter_currency(n) if f else "HKD" for n, f in zip(names, flagged, strict=True)],
            "short_shares": shares,
            "short_value": values,
            "board": page.board,
            "session": page.session,
        }
    )
    return finish(
        link_counters(frame, flagged=flagged),
        SCHEMA,
        page.day,
        layout=page.layout,
        reconciled=page.reconciled,
    )


def parse_market(data: bytes) -> pd.DataFrame:
    """Parse the page's summary block into one market-totals row (the rows are checked against it too)."""
    page = _read_page(data)
    row = {"date": pd.Timestamp(page.day), "board": page.board, "session": page.session}
    frame = pd.DataFrame([row | market_fields(page.summary)])
    return finish(frame, MARKET_SCHEMA, page.day, layout=page.layout, reconciled=page.reconciled)


def paths(day: date, session: str = "close") -> list[str]:
    """Paths of the Main Board and GEM pages for a session (the pages carry no date: today only)."""
    return [PATH_PREFIX + PAGES[(board, session)] for board in ("main", "gem")]


SOURCE = Source(
    name=NAME,
    title="HKEX short selling turnover (Main Board + GEM, day close)",
    base_setting="hkex_url",
    public_url="https://www.hkex.com.hk",
    paths=paths,
    tables={"main": Table(SCHEMA, parse), "market": Table(MARKET_SCHEMA, parse_market)},
    feeds={"short": Feed(rules=False)},  # the card compares the close with the midday page
    history=False,  # HKEX overwrites these pages daily; history comes from hkex-quotes
)


def midday_paths(day: date) -> list[str]:
    """Paths of the Main Board and GEM pages up to the morning close (today only)."""
    return paths(day, "morning")


def _require_morning(data: bytes) -> None:
    """Refuse a day-close page served at a morning URL: it must not be stored as the midday figures."""
    _, _, _, session, _ = _report_lines(data)
    if session != "morning":
        raise MalformedFile(
            f"{MIDDAY_NAME}: the page is the day-close report, not the one up to the morning close"
        )


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
    public_url="https://www.hkex.com.hk",
    paths=midday_paths,
    tables={"main": Table(SCHEMA, parse_midday), "market": Table(MARKET_SCHEMA, parse_midday_market)},
    feeds={"short_midday": Feed(rules=False)},
    history=False,  # overwritten daily like the day-close pages; no archive of midday figures exists
)
