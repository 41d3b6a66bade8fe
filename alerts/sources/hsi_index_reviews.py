"""`hsi-index-reviews`: Hang Seng Indexes' quarterly index review results (constituent additions and deletions).

Hang Seng Indexes announces each quarterly review in the evening (press release PDF, e.g.
``/static/uploads/contents/en/news/pressRelease/20260522T174500.pdf``) together with a structured workbook under
``/static/uploads/contents/en/news/indexChgNotice/{YYYYMMDDTHHMMSS}.xlsx`` whose name is the announcement moment
(Hong Kong time), which cannot be known in advance. The site is a JavaScript app; its notices are listed in a
catalogue, ``/data/eng/download/notices.json``. So a date maps to files in two steps (the day-fetcher
``hsi-notices`` in alerts.hsi): the catalogue, then each review workbook it lists as published that day. A day
without one is the normal case (four reviews a year): the day-fetcher says "not published", and the schedule
(config/sources.toml, ``dates = "revisions"``) treats that as no news, not as a late file.

No real copy of either file was found in public repositories (tests/fixtures/hsi-index-reviews/README.md); both
layouts are built from descriptions and must be checked against the first real files:

- Catalogue: ``{"contentList": [{"resourcesList": [{"title", "url", "lastUpdate"}]}]}`` with ``url`` relative to
  the host and ``lastUpdate`` as ``YYYY-MM-DD HH:MM:SS`` (two public projects read the site's download catalogues,
  notices.json among them, with exactly these keys). A review workbook is an ``.xlsx`` under ``indexChgNotice``.
- Workbook (a public audit note on the 2026-05-22 workbook): a ``Summary`` sheet giving the effective date and a
  ``Review Result`` sheet with index code, action, stock code and stock name. The header cells read here are
  ``Index Code``, ``Action``, ``Stock Code``, ``Stock Name``; actions ``Add``/``Addition`` and
  ``Delete``/``Deletion``. An unknown action is refused (a new kind of change needs a reading, not a guess). Sector
  index rows are kept (they carry their own index codes); the rule reads only the indexes it watches.

An empty ``Review Result`` is refused unless the Summary says there are no changes: every quarterly review since
2021 changed the Composite Index (the audit note lists additions in all 22), so a header without rows is far more
likely a cut or placeholder file than a review that changed nothing.

``parse(data)`` reads one workbook and leaves ``announced`` and ``document`` empty: the workbook does not say when
it was announced. ``parse_review`` (the day-fetcher) sets them from the catalogue.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

from alerts.calendar import HK_TZ
from alerts.errors import MalformedFile
from alerts.sources.base import Feed, Source, Table, finish
from alerts.sources.common import decode_text, empty_frame, norm_code, reject_error_page
from alerts.sources.xlsx import Cell, read_sheet, sheet_parts

NAME = "hsi-index-reviews"
DAY_KIND = "hsi-notices"  # the catalogue, then each review workbook of the day (alerts.hsi)
LAYOUT = "review-result-2026"
CATALOGUE_PATH = "/data/eng/download/notices.json"
SUMMARY, RESULT = "Summary", "Review Result"
HEADER: tuple[str, ...] = ("Index Code", "Action", "Stock Code", "Stock Name")

SCHEMA: dict[str, str] = {
    "index": "string",  # index code as the workbook gives it: HSI, HSCEI, HSTECH, HSCI, sector indexes …
    "code": "string",
    "name": "string",
    "change": "string",  # add | delete
    "announced": "datetime64[ns]",  # the file date: the day the catalogue lists the workbook (NaT from parse())
    "effective": "datetime64[ns]",  # from the Summary sheet
    "document": "string",  # the workbook's path on the host (<NA> from parse())
}
NOTICES: dict[str, str] = {"title": "string", "path": "string", "published": "datetime64[ns, Asia/Hong_Kong]"}

_ACTIONS = {"add": "add", "addition": "add", "delete": "delete", "deletion": "delete"}
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_DMY_RE = re.compile(r"^(\d{1,2})\s+([A-Za-z]{3})[A-Za-z]*\.?,?\s+(\d{4})$")
_ISO_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
_STAMP_RE = re.compile(r"/(\d{8})T(\d{6})\.xlsx$", re.IGNORECASE)
_NO_CHANGE_RE = re.compile(r"\bno (constituent )?changes?\b", re.IGNORECASE)
_EXCEL_EPOCH = date(
    1899, 12, 30
)  # serial 1 = 1900-01-01 (Excel's 1900 leap-year bug cancels out after March)


def parse(data: bytes) -> pd.DataFrame:
    """Parse one review workbook: a row per constituent change, with the Summary's effective date."""
    summary = read_sheet(data, SUMMARY, NAME)
    effective = _effective(summary)
    rows = [row for row in read_sheet(data, RESULT, NAME) if any(_blank(c) is not None for c in row)]
    if not rows:
        raise MalformedFile(
            f"{NAME}: the {RESULT!r} sheet is empty (no header)", expected=HEADER, found=[], layout=LAYOUT
        )
    found = [_blank(c) or "" for c in rows[0]]
    while found and not found[-1]:
        found.pop()
    if tuple(found) != HEADER:
        raise MalformedFile(
            f"{NAME}: {RESULT!r} header {found!r} is not the documented {list(HEADER)!r}",
            expected=HEADER,
            found=found,
            layout=LAYOUT,
        )
    body = [_record(row, number) for number, row in enumerate(rows[1:], start=2)]
    if not body and not any(_NO_CHANGE_RE.search(str(c)) for row in summary for c in row if c is not None):
        raise MalformedFile(
            f"{NAME}: {RESULT!r} has a header but no changes, and the Summary does not say there are none",
            layout=LAYOUT,
        )
    frame = pd.DataFrame(body, columns=["index", "code", "name", "change"]) if body else empty_frame(SCHEMA)
    twice = frame[frame.duplicated(["index", "code", "change"])]
    if len(twice):
        first = twice.iloc[0]
        raise MalformedFile(
            f"{NAME}: {first['index']} {first['change']} {first['code']} listed twice", layout=LAYOUT
        )
    frame = frame.assign(announced=pd.NaT, effective=pd.Timestamp(effective), document=None)
    return finish(frame, SCHEMA, None, layout=LAYOUT)


def parse_review(data: bytes, announced: date, document: str) -> pd.DataFrame:
    """One review workbook with the day the catalogue lists it and its path (what the day-fetcher knows)."""
    frame = parse(data).assign(announced=pd.Timestamp(announced), document=document)
    return finish(frame, SCHEMA, announced, layout=LAYOUT)


def has_review_result(data: bytes) -> bool:
    """Whether a workbook has the Review Result sheet (a notice's other workbooks, e.g. appendices, do not)."""
    return RESULT in sheet_parts(data, NAME)


def _blank(cell: Cell) -> str | None:
    """A cell as stripped text; None when empty."""
    if cell is None:
        return None
    if isinstance(cell, float) and cell.is_integer():
        cell = int(cell)
    text = " ".join(str(cell).split())
    return text or None


def _record(row: list[Cell], number: int) -> tuple[str, str, str, str]:
    """index code, stock code, stock name, change of one Review Result row (row `number` of the sheet's rows)."""
    cells = [_blank(c) for c in row[: len(HEADER)]] + [None] * (len(HEADER) - len(row))
    index, action, raw_code, name = cells
    if any(c is not None for c in (_blank(c) for c in row[len(HEADER) :])):
        raise MalformedFile(
            f"{NAME}: {RESULT!r} row {number} has cells beyond the {len(HEADER)} columns", layout=LAYOUT
        )
    if index is None or action is None or raw_code is None or name is None:
        raise MalformedFile(f"{NAME}: {RESULT!r} row {number} has a blank cell: {cells!r}", layout=LAYOUT)
    change = _ACTIONS.get(action.lower())
    if change is None:
        raise MalformedFile(
            f"{NAME}: {RESULT!r} row {number}: action {action!r} is not one of {sorted(_ACTIONS)}",
            layout=LAYOUT,
        )
    try:
        code = norm_code(raw_code)
    except MalformedFile:
        raise MalformedFile(
            f"{NAME}: {RESULT!r} row {number}: stock code {raw_code!r}", layout=LAYOUT
        ) from None
    return index.upper(), code, name, change


def _effective(summary: list[list[Cell]]) -> date:
    """The date in the cell after the first cell reading "Effective Date" in the Summary sheet."""
    for row in summary:
        for at, cell in enumerate(row):
            if isinstance(cell, str) and "effective date" in cell.lower():
                value = next((c for c in row[at + 1 :] if _blank(c) is not None), None)
                if value is None:
                    raise MalformedFile(
                        f"{NAME}: {SUMMARY!r} names an effective date but gives none", layout=LAYOUT
                    )
                return _date(value)
    raise MalformedFile(f"{NAME}: no 'Effective Date' in the {SUMMARY!r} sheet", layout=LAYOUT)


def _date(value: Cell) -> date:
    """An Excel date serial (a date cell), or text ``2026-06-08`` / ``8 June 2026`` / ``08/06/2026``."""
    if isinstance(value, float):
        if not 20000 <= value <= 80000:  # 1954 … 2119: anything else is not a review date
            raise MalformedFile(f"{NAME}: effective date serial {value} is out of range")
        return _EXCEL_EPOCH + timedelta(days=int(value))
    text = " ".join(str(value).split())
    try:
        if match := _ISO_RE.match(text):
            return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        if (match := _DMY_RE.match(text)) and match.group(2).lower() in _MONTHS:
            return date(int(match.group(3)), _MONTHS[match.group(2).lower()], int(match.group(1)))
        if len(parts := text.split("/")) == 3 and all(p.isdigit() for p in parts):
            return date(int(parts[2]), int(parts[1]), int(parts[0]))
    except ValueError:
        raise MalformedFile(f"{NAME}: effective date {text!r} does not exist") from None
    raise MalformedFile(f"{NAME}: effective date {text!r} is not a date")


# --- the notices catalogue ------------------------------------------------------------------------------------


def parse_notices(data: bytes) -> pd.DataFrame:
    """The catalogue's notices: title, path on the host, and when published (Hong Kong time)."""
    text = decode_text(data)
    if not text.strip():
        raise MalformedFile(f"{NAME}: empty notices catalogue")
    reject_error_page(text, NAME)
    try:
        payload: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedFile(f"{NAME}: notices catalogue is not JSON ({exc})") from None
    sections = payload.get("contentList") if isinstance(payload, dict) else None
    if not isinstance(sections, list):
        found = sorted(payload)[:10] if isinstance(payload, dict) else [type(payload).__name__]
        raise MalformedFile(
            f"{NAME}: notices catalogue has no contentList", expected=["contentList"], found=found
        )
    rows = []
    for section in sections:
        items = section.get("resourcesList") if isinstance(section, dict) else None
        if not isinstance(items, list):
            raise MalformedFile(f"{NAME}: a contentList section has no resourcesList")
        rows += [_notice(item) for item in items]
    frame = pd.DataFrame(rows, columns=list(NOTICES))
    return frame.astype({"title": "string", "path": "string"}).assign(
        published=pd.to_datetime(frame["published"]).astype(NOTICES["published"])
    )


def _notice(item: object) -> tuple[str, str, datetime]:
    if not isinstance(item, dict) or not isinstance(item.get("url"), str) or not item["url"].strip():
        raise MalformedFile(f"{NAME}: a catalogue entry has no url: {str(item)[:120]}")
    path = item["url"].strip()
    stamp = _STAMP_RE.search(path)
    try:
        # The file name is the announcement moment; lastUpdate may move when a notice is corrected.
        text = stamp.group(1) + stamp.group(2) if stamp else str(item.get("lastUpdate", ""))[:19]
        shape = "%Y%m%d%H%M%S%z" if stamp else "%Y-%m-%d %H:%M:%S%z"
        # Hong Kong time, stated as +0800 so the moment is aware from the start (Hong Kong keeps no DST).
        moment = datetime.strptime(text + "+0800", shape).astimezone(HK_TZ)
    except ValueError:
        raise MalformedFile(f"{NAME}: catalogue entry {path!r} has no readable lastUpdate") from None
    return str(item.get("title") or ""), path, moment


def review_workbooks(notices: pd.DataFrame, day: date) -> list[str]:
    """Paths of the review workbooks the catalogue lists as published on `day` (oldest first)."""
    path = notices["path"].astype(str)
    is_review = path.str.contains("/indexChgNotice/", regex=False) & path.str.lower().str.endswith(".xlsx")
    on_day = notices["published"].dt.date == day
    chosen = notices[is_review & on_day].sort_values("published", kind="stable")
    return list(dict.fromkeys(chosen["path"].astype(str)))


def paths(day: date) -> list[str]:
    """The catalogue: the same file every date (the workbooks it lists are fetched by the day-fetcher)."""
    return [CATALOGUE_PATH]


SOURCE = Source(
    name=NAME,
    title="Hang Seng Indexes quarterly index review results",
    base_setting="hsi_url",
    public_url="https://www.hsi.com.hk",
    paths=paths,
    tables={"main": Table(SCHEMA, parse)},
    # `announced` is the file date: the day the review was published (what the rule fires on).
    feeds={"index_reviews": Feed(date_column="announced")},
    check_file_date=False,
    fetch_day=DAY_KIND,
    max_bytes=5 * 1024 * 1024,
    docs="tests/fixtures/hsi-index-reviews/README.md (layouts built from descriptions)",
)
