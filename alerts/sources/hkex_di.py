"""`hkex-di`: HKEX Disclosure of Interests — daily summaries DSM{YYYYMMDD}C{1,2}.htm and per-stock notice lists.

Daily summaries: no real summary page has been seen (data-formats.md §5 "What could NOT be established"); the
layout below is the one third-party scrapers describe: table ``id="Table3"``, header on its 2nd row, eleven
columns (Serial No … Present No. of shares (+%)). Columns are found by their header labels, not by position.

Per-stock notice list (``NSAllFormList.aspx``, `parse_notice_list`): a real page is held (00700, captured
2026-09-10, tests/fixtures/hkex-di/disclosure-of-interests-00700.json): table ``id="grdPaging"``, header row
"Form Serial Number | Name of substantial shareholder / director / chief executive | Reason for disclosure | …",
stock code and company name in spans above it, "Total records" below it. It gives the same schema as a summary.
The list's URL needs DION's id of the corporation (`sid`) and its name: `parse_corp_search` reads both from the
corporation search result (``NSSrchCorpList.aspx``, real page in the same capture), its "List of all notices" link.

Row policy:
- superseded notices (serial cell says "Superseded") and withdrawn ones (serial or company cell says
  "withdrawn") are dropped: they no longer describe a holding;
- amendments ("Amendment to …" in the company cell) are kept — the amendment is the current notice, the one it
  amends is superseded — with the "Amendment to <serial>" note stripped from the company name.

Cells, as printed on the real 2026 notice list (and so accepted in summaries too): reason ``1201(L)`` (a link
on the code, no space before the position; five-digit codes such as ``11031``), shares ``5,000(L)``, one
position per line (``63,494(L)<br>0(S)``), the percentage in its own cell (``0.00(L)<br>0.00(S)``), price
``HKD 503.0000`` or a blank ``&nbsp;``.

Holding cells ("Previous/Present No. of shares (+%)"): the exact summary text is not established, so
`parse_holding` accepts every shape seen or implied by scrapers — "3,989,013,134(L) (23.26)",
"3,989,013,134(L) 23.26(L)", "3,989,013,134 (L) (23.26%)", "1,065,871,110(L) 30,260,800(S) 4.99(L) 0.14(S)" and
the run-together "1,065,871,110(L)4.9930,260,800(S)0.14" that kevinwtl's splitter (cut 2 digits after the dot)
implies — and the figures tagged with the event's position (L/S/P) are reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from urllib.parse import parse_qs, urlencode, urlsplit

import lxml.html
import pandas as pd

from alerts.errors import MalformedFile, NotPublishedYet
from alerts.sources.base import Feed, Source, Table, finish
from alerts.sources.common import (
    decode_text,
    html_tree,
    norm_code,
    parse_number,
    parse_price,
    reject_error_page,
    require_closed_table,
    split_positions,
)

NAME = "hkex-di"

SCHEMA: dict[str, str] = {
    "serial": "string",
    "filed_date": "datetime64[ns]",
    "event_date": "datetime64[ns]",
    "code": "string",
    "name": "string",
    "holder": "string",
    "role": "string",  # director | substantial_shareholder
    "event_code": "string",
    "direction": "string",  # buy | sell | other
    "shares": "Int64",
    "avg_price": "float64",
    "currency": "string",
    "shares_after": "Int64",
    "pct_after": "float64",
    "position": "string",  # L | S | P
    "form": "string",  # 1 | 2 | 3A ...
    "shares_before": "Int64",
    "pct_before": "float64",
}

TABLE_ID = "Table3"
FORMS = {"IS": "1", "CS": "2", "DA": "3A", "DB": "3B", "DC": "3C", "DD": "3D"}
DIRECTOR_PREFIXES = frozenset({"DA", "DB", "DC", "DD"})
# 1001 "you first acquire a notifiable interest because you purchased the shares" and 1101 "your interest
# increases because you purchased the shares" are verified (NSStdCode ft=IS). 1201 is a *sale*, on evidence
# from a real Form 3A filing (00700 notice list, captured 2026-09-10): DA20260415E00531 (Yang Siu Shun, 1201(L),
# 5,000 shares at HKD 503.0000) took his long position from 68,494 (DA20260330E00364) to 63,494. The rest of
# the 12xx block is still unverified; 11031 (share-award derivatives) and 1316 ("any other event") are "other".
BUY_CODES = frozenset({"1001", "1101"})
SELL_CODES = frozenset({"1201"})

# Header label (lower case, single spaces) → field; matched at the start of the label.
_COLUMNS: dict[str, re.Pattern[str]] = {
    field: re.compile(pattern)
    for field, pattern in {
        "serial": r"serial no",
        "name": r"name of listed corporation",
        "code": r"stock code",
        "holder": r"name of (?:substantial shareholder|director)",
        "event_date": r"date of relevant event",
        "reason": r"reason for disclosure",
        "shares": r"(?:number|no\.) of shares bought",
        "price": r"average price per share",
        "before": r"previous no\. of shares",
        "after": r"present no\. of shares",
    }.items()
}
LIST_TABLE_ID = "grdPaging"
LIST_LAYOUT = "ns-all-form-list"
# Notice-list header label → field. The holding after the event is in two cells: the shares and their %.
_LIST_COLUMNS: dict[str, re.Pattern[str]] = {
    field: re.compile(pattern)
    for field, pattern in {
        "serial": r"form serial number",
        "holder": r"name of (?:substantial shareholder|director)",
        "reason": r"reason for disclosure",
        "shares": r"(?:number|no\.) of shares bought",
        "price": r"average price per share",
        "after": r"no\. of shares interested",
        "after_pct": r"% of issued voting shares",
        "event_date": r"date of relevant event",
    }.items()
}
# The page the server shows instead of a summary it does not (or no longer) have.
_PLACEHOLDER_MARKERS = ("temporarily unavailable", "no record")
_SERIAL_RE = re.compile(r"\b([A-Z]{2})(\d{8})E\d{5}\b")
_AMENDMENT_RE = re.compile(r"^amendment to\b\s*(?:[A-Z]{2}\d{8}E\d{5}\b)?[\s:;,.-]*", re.I)
_REASON_RE = re.compile(r"^(\d{3,5})\s*(?:\(\s*([LSP])\s*\))?")
_DATE_RE = re.compile(r"\b(\d{2}/\d{2}/\d{4})\b")
_HOLDING_TOKEN_RE = re.compile(
    # Percentages carry 2 dp, which is also where a run-together "4.9930,260,800(S)" splits.
    r"(?P<pct>\d+\.\d{2})"
    r"|(?P<shares>\d{1,3}(?:,\d{3})+|\d+)\s*\(\s*(?P<pos>[LSP])\s*\)"
    r"|\(\s*(?P<tag>[LSP])\s*\)"
)

Holding = dict[str, tuple[float | None, float | None]]


def parse(data: bytes) -> pd.DataFrame:
    """Parse one daily summary page."""
    text = decode_text(data)
    tree = html_tree(text, NAME)
    tables = tree.xpath(f'//table[@id="{TABLE_ID}"]')
    if not tables:
        flat = " ".join(tree.text_content().split()).lower()
        for marker in _PLACEHOLDER_MARKERS:
            if marker in flat:
                raise NotPublishedYet(f"{NAME}: summary page says {marker!r}")
        reject_error_page(text, NAME)
        raise MalformedFile(f"{NAME}: no table id={TABLE_ID!r}")
    require_closed_table(text, TABLE_ID, NAME)
    preamble, records = _table_records(tables[0], TABLE_ID, "serial no", _COLUMNS)
    rows = [row for record in records if (row := _row(record)) is not None]
    frame = pd.DataFrame(rows, columns=list(SCHEMA))
    return finish(frame, SCHEMA, _file_date(frame, preamble), layout="dsm-summary")


def parse_notice_list(data: bytes) -> pd.DataFrame:
    """Parse one page of a stock's notice list (NSAllFormList.aspx) into the summary schema.

    attrs: `file_date` (the end of the period listed), `code` (the stock the list is for, even when it has no
    rows), `total_records` (the page's "Total records", over all pages), `page_rows` (notice rows on this page,
    dropped ones included: what paging counts).
    """
    text = decode_text(data)
    tree = html_tree(text, NAME)
    reject_error_page(text, NAME)
    tables = tree.xpath(f'//table[@id="{LIST_TABLE_ID}"]')
    if tables:
        require_closed_table(text, LIST_TABLE_ID, NAME)
    # "Total records" is printed below the table: a page cut short loses it too.
    total = _span_int(tree, "lblRecCount")
    if total is None:
        raise MalformedFile(
            f"{NAME}: no 'Total records' (not a notice list page, or cut short)", layout=LIST_LAYOUT
        )
    code, name = _list_company(tree)
    records: list[dict[str, str]] = []
    if tables:
        _, found = _table_records(tables[0], LIST_TABLE_ID, "form serial number", _LIST_COLUMNS)
        records = list(found)
    elif total:
        raise MalformedFile(f"{NAME}: notice list says {total} records but has no table id={LIST_TABLE_ID!r}")
    page = {"code": code, "name": name, "before": ""}
    rows = [
        row
        for record in records
        if (row := _row({**record, **page, "after": f"{record['after']} {record['after_pct']}"})) is not None
    ]
    frame = finish(
        pd.DataFrame(rows, columns=list(SCHEMA)), SCHEMA, _span_date(tree, "lblSCEndDate"), layout=LIST_LAYOUT
    )
    frame.attrs.update(code=code, total_records=total, page_rows=len(records))
    return frame


def notice_list_path(code: str, sid: str, corp_name: str, start: date, end: date, page: int = 1) -> str:
    """Path (with query) of page `page` of a stock's notice list for events dated `start`..`end`.

    `sid` is DION's internal id of the listed corporation (00700 → 6893), `corp_name` the name DION shows for it
    ("Tencent Holdings Ltd."); the query is the one on the real page's own pager links.
    """
    if not str(sid).isdigit():
        raise ValueError(f"sid must be DION's numeric corporation id, got {sid!r}")
    if page < 1 or start > end:
        raise ValueError(f"bad page {page} or period {start}..{end}")
    first, last = f"{start:%d/%m/%Y}", f"{end:%d/%m/%Y}"
    query = {
        "sa2": "an",
        "sid": str(sid),
        "corpn": corp_name,
        "sd": first,
        "ed": last,
        "cid": "0",
        "sa1": "cl",
        "scsd": first,
        "sced": last,
        "sc": norm_code(code),
        "src": "MAIN",
        "lang": "EN",
        "pg": str(page),
    }
    return f"/di/NSAllFormList.aspx?{urlencode(query)}"


CORP_SEARCH_LAYOUT = "ns-srch-corp-list"
_ALL_NOTICES_PAGE = "nsallformlist.aspx"


def corp_search_path(code: str, start: date, end: date) -> str:
    """Path (with query) of DION's search for a listed corporation by stock code (NSSrchCorpList.aspx).

    The query is the one of the real 00700 capture; its result links carry the `sid` and name the notice list needs.
    """
    if start > end:
        raise ValueError(f"bad period {start}..{end}")
    query = {
        "sa1": "cl",
        "scsd": f"{start:%d/%m/%Y}",
        "sced": f"{end:%d/%m/%Y}",
        "sc": norm_code(code),
        "src": "MAIN",
        "lang": "EN",
    }
    return f"/di/NSSrchCorpList.aspx?{urlencode(query)}"


def parse_corp_search(data: bytes) -> tuple[str, str]:
    """(sid, corporation name) from a corporation search result: the query of its "List of all notices" link.

    On the real page (00700) the link is ``NSAllFormList.aspx?sa2=an&sid=6893&corpn=Tencent+Holdings+Ltd.&…``.
    A search that found nothing (an unknown code) has no such link: MalformedFile.
    """
    text = decode_text(data)
    tree = html_tree(text, NAME)
    reject_error_page(text, NAME)
    found: set[tuple[str, str]] = set()
    for link in tree.xpath("//a[@href]"):
        href = str(link.get("href"))
        label = " ".join(link.text_content().split()).lower()
        if (
            label != "list of all notices"
            or urlsplit(href).path.rsplit("/", 1)[-1].lower() != _ALL_NOTICES_PAGE
        ):
            continue
        query = parse_qs(urlsplit(href).query)
        sid = next(iter(query.get("sid", [])), "").strip()
        name = " ".join(next(iter(query.get("corpn", [])), "").split())
        if not sid.isdigit() or not name:
            raise MalformedFile(
                f"{NAME}: 'List of all notices' link lacks a numeric sid or a corpn: {href!r}",
                layout=CORP_SEARCH_LAYOUT,
            )
        found.add((sid, name))
    if not found:
        raise MalformedFile(
            f"{NAME}: corporation search has no 'List of all notices' link (unknown stock code?)",
            layout=CORP_SEARCH_LAYOUT,
        )
    if len(found) > 1:
        raise MalformedFile(
            f"{NAME}: corporation search links to {len(found)} corporations: {sorted(found)}",
            layout=CORP_SEARCH_LAYOUT,
        )
    return found.pop()


def _list_company(tree: lxml.html.HtmlElement) -> tuple[str, str]:
    """The stock code and company name a notice list is for: the spans above the table, else the form's URL."""
    code, name = _span_text(tree, "lblSCStockCode"), _span_text(tree, "lblSCCorpName")
    action = tree.xpath("//form/@action")
    query = parse_qs(urlsplit(str(action[0])).query) if action else {}
    code = code or next(iter(query.get("sc", [])), "")
    name = name or next(iter(query.get("corpn", [])), "")
    if not code:
        raise MalformedFile(f"{NAME}: notice list names no stock code", layout=LIST_LAYOUT)
    try:
        return norm_code(code), name
    except MalformedFile:
        raise MalformedFile(
            f"{NAME}: notice list stock code {code!r} is not a code", layout=LIST_LAYOUT
        ) from None


def _span_text(tree: lxml.html.HtmlElement, span_id: str) -> str:
    """Whitespace-collapsed text of the span with this id, or ''."""
    spans = tree.xpath(f'//span[@id="{span_id}"]')
    return " ".join(spans[0].text_content().split()) if spans else ""


def _span_int(tree: lxml.html.HtmlElement, span_id: str) -> int | None:
    """The span's text as an integer ("1,234" → 1234), None when the span is absent."""
    text = _span_text(tree, span_id).replace(",", "")
    if not text and not tree.xpath(f'//span[@id="{span_id}"]'):
        return None
    if not text.isdigit():
        raise MalformedFile(f"{NAME}: {span_id} is not a count: {text!r}", layout=LIST_LAYOUT)
    return int(text)


def _span_date(tree: lxml.html.HtmlElement, span_id: str) -> date | None:
    """The span's dd/mm/yyyy date, None when the span is absent or blank."""
    text = _span_text(tree, span_id)
    return _date(text, "%d/%m/%Y") if text else None


def parse_holding(text: str) -> Holding:
    """Parse a holding cell → {position: (shares, pct)}, e.g. '3,989,013,134(L) (23.26)' → L: (…, 23.26)."""
    shares: list[tuple[str, float | None]] = []
    pcts: list[tuple[float, str | None]] = []  # (value, tag printed right after it)
    last_was_pct = False
    for match in _HOLDING_TOKEN_RE.finditer(text):
        if match["pct"]:
            pcts.append((float(match["pct"]), None))
        elif match["shares"]:
            shares.append((match["pos"], parse_number(match["shares"])))
        elif last_was_pct:
            pcts[-1] = (pcts[-1][0], match["tag"])
        last_was_pct = bool(match["pct"])
    if re.search(r"\d", _HOLDING_TOKEN_RE.sub("", text)):
        raise MalformedFile(f"{NAME}: unreadable holding {text!r}")
    out: Holding = {pos: (value, None) for pos, value in shares}
    for value, tag in pcts:
        if tag is not None:
            out[tag] = (out.get(tag, (None, None))[0], value)
    # Untagged percentages follow the share figures in order ("1,065,871,110(L) 30,260,800(S) (4.99) (0.14)").
    untagged = [value for value, tag in pcts if tag is None]
    open_positions = [pos for pos, (_, pct) in out.items() if pct is None]
    if len(untagged) > len(open_positions):
        raise MalformedFile(f"{NAME}: percentage without a share figure in {text!r}")
    for pos, value in zip(open_positions, untagged, strict=False):
        out[pos] = (out[pos][0], value)
    return out


def _table_records(
    table: lxml.html.HtmlElement, table_id: str, first_label: str, spec: Mapping[str, re.Pattern[str]]
) -> tuple[str, Iterator[dict[str, str]]]:
    """Split a table into the text above its header and one {field: cell text} per data row."""
    # One position per line (<br>) must not run together: "63,494(L)<br>0(S)" → "63,494(L) 0(S)".
    for br in table.iter("br"):
        br.tail = " " + (br.tail or "")
    rows = table.xpath("./tr | ./thead/tr | ./tbody/tr")
    header_at = next(
        (i for i, tr in enumerate(rows) if _cells(tr) and _cells(tr)[0].lower().startswith(first_label)), None
    )
    if header_at is None:
        raise MalformedFile(f"{NAME}: {table_id} has no header row starting {first_label.title()!r}")
    labels = [label.lower() for label in _cells(rows[header_at])]
    columns = {
        field: [i for i, label in enumerate(labels) if pattern.match(label)]
        for field, pattern in spec.items()
    }
    missing = [field for field, found in columns.items() if not found]
    if missing:
        raise MalformedFile(
            f"{NAME}: header lacks {missing}; got {labels}", expected=list(spec), found=labels
        )
    preamble = " ".join(" ".join(_cells(tr)) for tr in rows[:header_at])
    return preamble, _records(rows[header_at + 1 :], columns, len(labels))


def _records(
    rows: list[lxml.html.HtmlElement], columns: dict[str, list[int]], width: int
) -> Iterator[dict[str, str]]:
    """Yield {field: text} for each data row; spacer and full-width note rows are skipped."""
    for n, tr in enumerate(rows, start=1):
        cells = _cells(tr)
        if not any(cells) or (len(tr.xpath("./td|./th")) == 1 and len(cells) >= width):
            continue
        if len(cells) != width:
            raise MalformedFile(
                f"{NAME}: data row {n} has {len(cells)} cells, header has {width} (truncated?)"
            )
        # A field may span two physical columns (e.g. shares and % under one "(+%)" heading): join them.
        yield {
            field: " ".join(dict.fromkeys(cells[i] for i in found)).strip()
            for field, found in columns.items()
        }


def _cells(tr: lxml.html.HtmlElement) -> list[str]:
    """Cell texts of a row, whitespace-collapsed, repeated per colspan so they line up with the header."""
    out: list[str] = []
    for cell in tr.xpath("./td|./th"):
        colspan = cell.get("colspan", "1").strip()
        span = int(colspan) if colspan.isdigit() else 1
        out.extend([" ".join(cell.text_content().split())] * span)
    return out


def _row(record: dict[str, str]) -> dict[str, object] | None:
    """One summary row → schema fields; None for superseded/withdrawn notices."""
    serial_cell, company = record["serial"], record["name"]
    if re.search(r"supersed", serial_cell, re.I) or re.search(
        r"\bwithdrawn\b", f"{serial_cell} {company}", re.I
    ):
        return None
    serial_match = _SERIAL_RE.search(re.sub(r"\(.*?\)", " ", serial_cell))
    if serial_match is None:
        raise MalformedFile(f"{NAME}: not a DI serial number: {serial_cell!r}")
    prefix = serial_match[1]
    reason = _REASON_RE.match(record["reason"])
    if reason is None:
        raise MalformedFile(f"{NAME}: no event code in {record['reason']!r} ({serial_match[0]})")
    event_code = reason[1]
    position = reason[2] or next(iter(split_positions(record["shares"])), None)
    currency, price = parse_price(record["price"])
    shares_before, pct_before = _pick(parse_holding(record["before"]), position)
    shares_after, pct_after = _pick(parse_holding(record["after"]), position)
    return {
        "serial": serial_match[0],
        "filed_date": _date(serial_match[2], "%Y%m%d"),
        "event_date": _date(record["event_date"], "%d/%m/%Y"),
        "code": norm_code(record["code"]),
        "name": _AMENDMENT_RE.sub("", company).strip() or None,
        "holder": record["holder"] or None,
        "role": "director" if prefix in DIRECTOR_PREFIXES else "substantial_shareholder",
        "event_code": event_code,
        "direction": "buy" if event_code in BUY_CODES else "sell" if event_code in SELL_CODES else "other",
        "shares": _event_shares(record["shares"], position),
        "avg_price": price,
        "currency": currency,
        "shares_after": shares_after,
        "pct_after": pct_after,
        "position": position,
        "form": FORMS.get(prefix),
        "shares_before": shares_before,
        "pct_before": pct_before,
    }


def _event_shares(text: str, position: str | None) -> float | None:
    """The number of shares of the event: the figure tagged with its position, else the first one."""
    tagged = split_positions(text)
    if position is not None and position in tagged:
        return tagged[position]
    return next(iter(tagged.values())) if tagged else parse_number(text)


def _pick(holding: Holding, position: str | None) -> tuple[float | None, float | None]:
    """The (shares, pct) of `position`, else of the first position listed, else nothing."""
    if position is not None and position in holding:
        return holding[position]
    return next(iter(holding.values()), (None, None))


def _date(text: str, fmt: str) -> date:
    """Parse a date or raise MalformedFile."""
    try:
        return datetime.strptime(text.strip(), fmt).date()  # noqa: DTZ007 - naive calendar date
    except ValueError:
        raise MalformedFile(f"{NAME}: not a date ({fmt}): {text!r}") from None


def _file_date(frame: pd.DataFrame, preamble: str) -> date | None:
    """The filing day the summary is for: its latest serial date, else a dd/mm/yyyy above the header."""
    if len(frame):
        return max(frame["filed_date"])
    match = _DATE_RE.search(preamble)
    return _date(match[1], "%d/%m/%Y") if match else None


def paths(day: date) -> list[str]:
    """Paths of the substantial-shareholder (C1) and director (C2) summaries filed on `day`."""
    return [f"/di/summary/DSM{day:%Y%m%d}C{n}.htm" for n in (1, 2)]


SOURCE = Source(
    name=NAME,
    title="HKEX Disclosure of Interests daily summaries (directors, substantial shareholders)",
    base_setting="hkex_di_url",
    public_url="https://di.hkex.com.hk",
    paths=paths,
    tables={"main": Table(SCHEMA, parse)},
    feeds={"di": Feed(date_column="filed_date")},
    after_processed="watched-notices",
    # The URL carries the filing date; rows' serials may carry earlier dates (late or amended filings).
    check_file_date=False,
)
