"""`hkexnews-announcements`: the HKEXnews title search for one publication date, every headline category.

The servlet answers JSON whose `result` is itself a JSON *string* (a list of rows), beside `hasNextRow`, `rowRange`,
`lang`, `loadedRecord` and `recordCnt` (a real saved response: tests/fixtures/hkexnews-announcements/README.md).
Each row carries `NEWS_ID`, `DATE_TIME` ("dd/mm/yyyy HH:MM", Hong Kong time), `STOCK_CODE` (several counters of
one filing in one field: ``"00700<br/>80700"``), `STOCK_NAME` (likewise), `TITLE`, `LONG_TEXT` (the headline
categories, ``"Tier one - [Sub one &#x2f; Sub two]"``, HTML entities left in) and `FILE_LINK` (a path on www1).

The response names headline categories, not their numeric codes; `category` is read from those names and
`category_code` is the numeric code where a public scraper verified it (`CATEGORY_CODES`), else missing.
"""

from __future__ import annotations

import html
import json
import re
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from alerts.errors import MalformedFile
from alerts.sources.base import Feed, Source, Table, finish
from alerts.sources.common import decode_text, norm_code, reject_error_page

NAME = "hkexnews-announcements"
HK = ZoneInfo("Asia/Hong_Kong")
PUBLIC_URL = "https://www1.hkexnews.hk"
SERVLET = "/search/titleSearchServlet.do"
# Rows asked for in one request: the servlet "loads" the first `rowRange` rows of the search, newest first. A busy
# results day on the Main Board and GEM runs to a couple of thousand headlines; the response says when it held
# back rows (`hasNextRow`, `recordCnt` > `loadedRecord`) and the parse records that shortfall for `doctor`.
ROW_RANGE = 3000
# The query of a real saved request for one stock (fixture README), widened to every stock (stockId=-1) and one
# date (from = to). Every headline category (t1code/t2Gcode/t2code = -2): one request per date, because the
# servlet refuses several category codes in one request and one request per category would be eight polls.
_QUERY = (
    "sortDir=0&sortByOptions=DateTime&category=0&market=SEHK&stockId=-1&documentType=-1"
    "&t1code=-2&t2Gcode=-2&t2code=-2&title=&searchType=1&lang=EN&from={day}&to={day}&MB-Daterange=0"
    f"&rowRange={ROW_RANGE}"
)
OUTER_KEYS = ("result", "hasNextRow", "loadedRecord", "recordCnt")
ROW_KEYS = ("NEWS_ID", "DATE_TIME", "STOCK_CODE", "STOCK_NAME", "TITLE", "LONG_TEXT", "FILE_LINK")

CATEGORIES = (
    "placing",
    "rights_issue",
    "open_offer",
    "convertible",
    "consolidation",
    "repurchase_mandate",
    "next_day_disclosure",
    "high_concentration",
    "other",
)
# Numeric headline codes verified by public scrapers against HKEXnews' tiertwo_e.json / tierone_e.json (fixture
# README lists where): the rest (convertible securities, share consolidation) are matched by name only.
CATEGORY_CODES: dict[str, str] = {
    "placing": "18480",
    "rights_issue": "18500",
    "open_offer": "18460",
    "repurchase_mandate": "18100",  # "Announcement pursuant to Code on Share Buy-backs"
    "next_day_disclosure": "50000",  # tier one "Next Day Disclosure Returns"
}
_ANNOUNCEMENTS = "announcements and notices"
_NEXT_DAY = "next day disclosure returns"
# Sub-category names (lower case) → category, tried in this order: a "Placing / Issue of Shares under a General
# Mandate" headline is a placing; "Connected Transaction / Rights Issue" a rights issue.
_SUBCATEGORY_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("rights_issue", ("rights issue",)),
    ("open_offer", ("open offer",)),
    ("placing", ("placing",)),
    ("convertible", ("convertible",)),
    ("consolidation", ("consolidation",)),
    ("repurchase_mandate", ("buy-back", "buyback", "repurchase")),
)
# The SFC's warnings on a high concentration of shareholding carry no headline category of their own: the title.
_HIGH_CONCENTRATION = re.compile(
    r"(high\s+)?concentration\s+of\s+shareholding|shareholding\s+concentration", re.I
)
_CATEGORY_RE = re.compile(r"^\s*(?P<tier>[^\[]*?)\s*(?:-\s*\[(?P<subs>.*)\]\s*)?$", re.S)
_DATE_TIME_RE = re.compile(r"^(\d{2})/(\d{2})/(\d{4}) (\d{2}):(\d{2})$")

SCHEMA: dict[str, str] = {
    "date": "datetime64[ns]",
    # The release time HKEXnews prints. Not "published_at": the store adds that column to every loaded row
    # (when the file holding the row became known).
    "released_at": "datetime64[ns, Asia/Hong_Kong]",
    "news_id": "string",
    "code": "string",
    "name": "string",
    "title": "string",
    "headline": "string",
    "category": "string",
    "category_code": "string",
    "url": "string",
}


def parse(data: bytes) -> pd.DataFrame:
    """Parse the title search for one date into one row per (announcement, stock code)."""
    frame = parse_response(data)
    days = sorted(set(frame["date"]))
    if len(days) > 1:
        # One date was asked for: rows of several dates mean the server ignored the date range.
        raise MalformedFile(
            f"{NAME}: rows released on {len(days)} dates ({days[0]:%Y-%m-%d} to {days[-1]:%Y-%m-%d})",
            expected=["one release date"],
            found=[f"{d:%Y-%m-%d}" for d in days],
        )
    frame.attrs["file_date"] = days[0].date() if days else None
    return frame


def parse_response(data: bytes) -> pd.DataFrame:
    """Parse any title search response (one stock over months, or every stock on a date), rows reconciled."""
    outer = _outer(data)
    rows = _rows(outer)
    records = [record for n, row in enumerate(rows, start=1) for record in _records(row, n)]
    loaded, total = _int(outer, "loadedRecord"), _int(outer, "recordCnt")
    if loaded != len(rows):
        raise MalformedFile(
            f"{NAME}: loadedRecord says {loaded} rows, result holds {len(rows)} (cut response?)",
            expected=[f"{loaded} rows"],
            found=[f"{len(rows)} rows"],
        )
    if total < loaded or (total > loaded and not outer.get("hasNextRow")):
        raise MalformedFile(
            f"{NAME}: recordCnt {total} against {loaded} rows loaded and hasNextRow {outer.get('hasNextRow')!r}",
            expected=["recordCnt = loadedRecord, or more with hasNextRow true"],
            found=[f"recordCnt={total}", f"loadedRecord={loaded}"],
        )
    out = finish(
        pd.DataFrame(records, columns=list(SCHEMA)),
        SCHEMA,
        None,
        layout="title-search-json",
        # Rows loaded vs the search's own count: they differ when the servlet held rows back (hasNextRow).
        reconciled={"announcements": (float(len(rows)), float(total))},
    )
    out.attrs["has_next_row"] = bool(outer.get("hasNextRow"))
    return out


def _outer(data: bytes) -> dict[str, Any]:
    """The outer JSON object with the keys the servlet always sends; an HTML page or junk is malformed."""
    text = decode_text(data).strip()
    if not text:
        raise MalformedFile(f"{NAME}: empty response ({len(data)} bytes)")
    if not text.startswith("{"):
        reject_error_page(text, NAME)
        raise MalformedFile(
            f"{NAME}: not a JSON object (starts {text[:40]!r})", expected=["{...}"], found=[text[:40]]
        )
    try:
        outer = json.loads(text)
    except ValueError as exc:
        raise MalformedFile(f"{NAME}: not well-formed JSON ({exc})") from None
    if not isinstance(outer, dict):
        raise MalformedFile(f"{NAME}: JSON is a {type(outer).__name__}, not an object")
    missing = [key for key in OUTER_KEYS if key not in outer]
    if missing:
        raise MalformedFile(
            f"{NAME}: response lacks {missing}", expected=list(OUTER_KEYS), found=sorted(map(str, outer))
        )
    return outer


def _rows(outer: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows inside `result` (a JSON string); null is an answer only when the search counted nothing."""
    raw = outer["result"]
    if raw is None or raw == "null":
        if _int(outer, "recordCnt") == 0 and _int(outer, "loadedRecord") == 0:
            return []  # the servlet's "no announcement matched" (a quiet holiday)
        raise MalformedFile(
            f"{NAME}: result is null but recordCnt is {outer['recordCnt']!r}",
            expected=["a JSON list of rows"],
            found=["null"],
        )
    if not isinstance(raw, str):
        raise MalformedFile(f"{NAME}: result is a {type(raw).__name__}, not a JSON string")
    try:
        rows = json.loads(raw)
    except ValueError as exc:
        raise MalformedFile(f"{NAME}: result is not a JSON list ({exc})") from None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise MalformedFile(f"{NAME}: result is not a list of objects")
    return rows


def _int(outer: dict[str, Any], key: str) -> int:
    value = outer.get(key)
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        raise MalformedFile(f"{NAME}: {key} is {value!r}, not a count")
    return int(value)


def _records(row: dict[str, Any], n: int) -> list[tuple[Any, ...]]:
    """One row per stock code of a filing (a filing for two counters lists both codes)."""
    missing = [key for key in ROW_KEYS if key not in row]
    if missing:
        raise MalformedFile(
            f"{NAME}: row {n} lacks {missing}", expected=list(ROW_KEYS), found=sorted(map(str, row))
        )
    released = released_at(str(row["DATE_TIME"]), n)
    news_id = str(row["NEWS_ID"]).strip()
    if not news_id.isdigit():
        raise MalformedFile(f"{NAME}: row {n} NEWS_ID {news_id!r} is not a number")
    codes = [norm_code(c) for c in _split(row["STOCK_CODE"])]
    if not codes:
        raise MalformedFile(f"{NAME}: row {n} names no stock code")
    names = _split(row["STOCK_NAME"])
    title = clean(row["TITLE"])
    headline = clean(row["LONG_TEXT"])
    category = categorise(headline, title)
    link = str(row["FILE_LINK"]).strip()
    if not link.startswith("/"):
        raise MalformedFile(f"{NAME}: row {n} FILE_LINK {link!r} is not a path on the host")
    day = pd.Timestamp(released.date())
    return [
        (
            day,
            released,
            news_id,
            code,
            names[i] if i < len(names) else (names[0] if names else ""),
            title,
            headline,
            category,
            CATEGORY_CODES.get(category),
            PUBLIC_URL + link,
        )
        for i, code in enumerate(codes)
    ]


def released_at(raw: str, n: int = 0) -> pd.Timestamp:
    """``"09/09/2026 17:27"`` → 2026-09-09 17:27 Hong Kong time."""
    match = _DATE_TIME_RE.match(raw.strip())
    if not match:
        raise MalformedFile(f"{NAME}: row {n} DATE_TIME {raw!r} is not dd/mm/yyyy HH:MM")
    day, month, year, hour, minute = (int(part) for part in match.groups())
    return pd.Timestamp(datetime(year, month, day, hour, minute, tzinfo=HK))


def _split(value: object) -> list[str]:
    """``"00700<br/>80700"`` → ``["00700", "80700"]``."""
    text = html.unescape(str(value or ""))
    return [part.strip() for part in re.split(r"<br\s*/?>", text, flags=re.I) if part.strip()]


def clean(value: object) -> str:
    """Title or headline text: HTML entities unescaped (twice: some rows are escaped twice), tags and runs of space
    folded."""
    text = html.unescape(html.unescape(str(value or "")))
    text = re.sub(r"<br\s*/?>", " ", text, flags=re.I)
    text = re.sub(r"<[^>]+>", " ", text)
    return " ".join(text.split())


def categorise(headline: str, title: str) -> str:
    """The corporate-finance category of an announcement from its headline categories (and title)."""
    if _HIGH_CONCENTRATION.search(title):
        return "high_concentration"
    match = _CATEGORY_RE.match(headline)
    tier = (match.group("tier") if match else headline).strip().lower()
    subs = [s.strip().lower() for s in (match.group("subs") or "").split("/")] if match else []
    if tier == _NEXT_DAY:
        # Only a return reporting a buyback is the early buyback signal; "[Others]" alone reports share
        # issues (options exercised, placing shares allotted) that their own announcements already cover.
        return "next_day_disclosure" if any("buyback" in s or "buy-back" in s for s in subs) else "other"
    if tier != _ANNOUNCEMENTS:
        # Circulars, listing documents, returns: follow-up documents of an event already announced.
        return "other"
    for category, words in _SUBCATEGORY_WORDS:
        if any(word in sub for sub in subs for word in words):
            return category
    return "other"


def paths(day: date) -> list[str]:
    """The title search for every announcement released on `day`."""
    return [SERVLET + "?" + _QUERY.format(day=f"{day:%Y%m%d}")]


SOURCE = Source(
    name=NAME,
    title="HKEXnews announcements by headline category (title search)",
    base_setting="hkexnews_www1_url",
    public_url=PUBLIC_URL,
    paths=paths,
    tables={"main": Table(SCHEMA, parse)},
    # The rule reads the day; a week is enough for the card's "last corporate-finance announcement".
    feeds={"announcements": Feed(window=7)},
    # New announcements join the day's answer until late evening: keep polling after the first processed cycle.
    growing=True,
)
