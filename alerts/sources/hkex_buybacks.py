"""`hkex-buybacks`: HKEXnews daily Share Repurchase Report SRRPT{YYYYMMDD}.xls.

Two layouts are known (data-formats.md §4a and §4a'): the 2017 report (11 columns, header on row 3) and the
report HKEX publishes since the treasury-share rules (14 columns, header on row 5; a real 09/09/2026 report is
the test fixture). Columns are recognised by the meaning of their header text, whatever their order; a header
this module does not know raises MalformedFile naming it, so a real change of layout stays loud.

In the 14-column report the starred columns (total, for cancellation, held as treasury, under the mandate,
% of issued) are aggregates printed only on the last row of a same-day, same-currency group of one company:
they are carried to every row of the group, and the group's rows must add up to its printed total.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import date
from typing import Any

import pandas as pd
import xlrd

from alerts.errors import MalformedFile
from alerts.sources.base import Feed, Source, Table, finish
from alerts.sources.common import empty_frame, norm_code, parse_number, parse_price, reject_error_page

NAME = "hkex-buybacks"

SCHEMA: dict[str, str] = {
    "report_date": "datetime64[ns]",
    "trade_date": "datetime64[ns]",
    "code": "string",
    "name": "string",
    "shares": "Int64",
    "price_high": "float64",
    "price_low": "float64",
    "currency": "string",
    "total_paid": "float64",
    "method": "string",
    # Cumulative figures of either layout: 2017 "purchased on the Exchange in the year to date (since ordinary
    # resolution)" and its %; 2026 "repurchased ... under the repurchase mandate" and its % (= mandate_*).
    "ytd_shares": "Int64",
    "pct_of_issued": "float64",
    "sec_type": "string",
    # 14-column report only (empty for 2017 files); group aggregates carried to each row of the group.
    "group_shares": "Int64",
    "for_cancellation": "Int64",
    "for_treasury": "Int64",
    "mandate_total": "Int64",
    "mandate_pct": "float64",
    # Text printed in a number column ("Note 1 & 2"): kept as a note, never read as a number.
    "note": "string",
}

SHEET = "SBNReport"
LAYOUT_2017 = "srrpt-2017"
LAYOUT_2026 = "srrpt-2026"

# Header text (whitespace removed, case-folded, trailing "*" dropped) → column meaning.
_HEADER_MEANINGS: dict[str, str] = {
    "company": "name",
    "stockcode": "code",
    "sec.type": "sec_type",
    "tradingdate(yyyy/mm/dd)": "trade_date",
    "numberofsecuritiespurchased": "shares",
    "numberofshares/unitsrepurchased": "shares",
    "pricepershareorhighestpricepaid($)": "price_high",
    "repurchasepriceorhighestrepurchasepricepershare/unit($)": "price_high",
    "lowestpricepaid($)": "price_low",
    "lowestrepurchasepricepershare/unit($)": "price_low",
    "totalpaid($)": "total_paid",
    "aggregatepricepaid($)": "total_paid",
    "methodofpurchase": "method",
    "methodofrepurchase": "method",
    "numberofsuchsecuritiespurchasedontheexchangeintheyeartodate(sinceordinaryresolution)": "ytd_shares",
    "%ofnumberofsharesinissueattimeordinaryresolutionpassedacquiredontheexchangesincedateofresolution": "pct_of_issued",
    "totalnumberofshares/unitsrepurchased": "group_shares",
    "numberofshares/unitsrepurchasedforcancellation": "for_cancellation",
    "numberofshares/unitsrepurchasedforholdingastreasuryshares/units": "for_treasury",
    "numberofshares/unitsrepurchasedontheexchangeoranotherstockexchangeundertherepurchasemandate": "mandate_total",
    "asa%ofnumberofissuedshares/units(excludingtreasuryshares/units)asatthedateoftheresolutiongrantingthe"
    "repurchasemandate": "mandate_pct",
}
_REQUIRED = (
    "name",
    "code",
    "sec_type",
    "trade_date",
    "shares",
    "price_high",
    "price_low",
    "total_paid",
    "method",
)
# The starred aggregates of the 14-column report, printed on the last row of a group.
_AGGREGATES = ("group_shares", "for_cancellation", "for_treasury", "mandate_total", "mandate_pct")
# Printed headers of each known layout, for the evidence of a changed header.
KNOWN_HEADERS: dict[str, tuple[str, ...]] = {
    LAYOUT_2017: (
        "Company",
        "Stock code",
        "Sec. type",
        "Trading date (yyyy/mm/dd)",
        "Number of securities purchased",
        "Price per share or highest price paid($)",
        "Lowest price paid ($)",
        "Total paid ($)",
        "Method of purchase",
        "Number of such securities purchased on the Exchange in the year to date (since ordinary resolution)",
        "% of number of shares in issue at time ordinary resolution passed "
        "acquired on the Exchange since date of resolution",
    ),
    LAYOUT_2026: (
        "Company",
        "Stock code",
        "Sec. type",
        "Trading date (yyyy/mm/dd)",
        "Number of shares/units repurchased",
        "Repurchase price or highest repurchase price per share/unit ($)",
        "Lowest repurchase price per share/unit ($)",
        "Aggregate price paid ($)",
        "Method of repurchase",
        "Total number of shares/units repurchased*",
        "Number of shares/units repurchased for cancellation*",
        "Number of shares/units repurchased for holding as treasury shares/units*",
        "Number of shares/units repurchased on the Exchange or another stock exchange under the "
        "repurchase mandate*",
        "As a % of number of issued shares/units (excluding treasury shares/units) "
        "as at the date of the resolution granting the repurchase mandate*",
    ),
}
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_PRINTED_RE = re.compile(r"Date\s+Printed\s*:\s*(\d{2})/(\d{2})/(\d{4})", re.IGNORECASE)
_END_RE = re.compile(r"^\*+\s*End\s+Of\s+Report\s*\*+$", re.IGNORECASE)
_TRADE_DATE_RE = re.compile(r"^(\d{4})/(\d{2})/(\d{2})$")
# A number column holding a reference to the report's notes instead of a figure ("Note 1 & 2").
_NOTE_RE = re.compile(r"^notes?\b", re.IGNORECASE)
# Text rows around the data (notes, the "*" footnote, the disclaimer) have text in the first column only.
_TEXT_ROW_RE = re.compile(r"^(\*|note\b|whilst\b)", re.IGNORECASE)


def parse(data: bytes) -> pd.DataFrame:
    """Parse the SRRPT .xls."""
    return _parse_rows(_rows_from_xls(data))


def _rows_from_xls(data: bytes) -> list[list[str]]:
    """Read the report sheet's cells as stripped text, one list per sheet row."""
    if not data.strip():
        raise MalformedFile(f"{NAME}: empty file ({len(data)} bytes)")
    if not data.startswith(_OLE2_MAGIC):
        head = data[:4000].decode("latin-1")
        reject_error_page(head, NAME)
        raise MalformedFile(f"{NAME}: not a legacy .xls (starts with {data[:16]!r})")
    try:
        # xlrd reports corruption by writing to a log file (stdout by default): keep the parser silent.
        book = xlrd.open_workbook(file_contents=data, logfile=io.StringIO())
        if book.nsheets == 0:
            raise MalformedFile(f"{NAME}: workbook has no sheets")
        # Any other sheet is only used if _parse_rows then finds the documented layout on it.
        sheet = book.sheet_by_name(SHEET) if SHEET in book.sheet_names() else book.sheet_by_index(0)
        return [[_cell_text(cell) for cell in sheet.row(index)] for index in range(sheet.nrows)]
    except MalformedFile:
        raise
    # Truncated or corrupt OLE2/BIFF bytes surface as XLRDError, CompDocError, struct.error, IndexError,
    # TypeError... from deep inside xlrd; all of them mean the same thing here.
    except Exception as exc:
        raise MalformedFile(f"{NAME}: unreadable .xls ({type(exc).__name__}: {exc})") from exc


def _cell_text(cell: xlrd.sheet.Cell) -> str:
    """A cell as text: the report stores everything as text, but tolerate plain numbers."""
    if cell.ctype == xlrd.XL_CELL_NUMBER and float(cell.value).is_integer():
        return str(int(cell.value))
    if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
        return ""
    return str(cell.value).strip()


def _parse_rows(rows: list[list[str]]) -> pd.DataFrame:
    """Parse the sheet's rows: printed date, header, data rows up to the end marker, group aggregates."""
    header_at, columns = _find_header(rows)
    report_date = _printed_date(rows[:header_at])
    records: list[dict[str, Any]] = []
    for index in range(header_at + 1, len(rows)):
        row = [str(cell).strip() for cell in rows[index]]
        if any(_END_RE.match(cell) for cell in row):
            break
        if not any(row) or _is_text_row(row):
            continue
        try:
            records.append(_record(_cells(row, columns), report_date))
        except MalformedFile as exc:
            raise MalformedFile(f"{NAME}: sheet row {index + 1}: {exc}") from exc
        records[-1]["_row"] = index + 1
    else:
        raise MalformedFile(f"{NAME}: no '*** End Of Report ***' marker: truncated report")
    layout = LAYOUT_2026 if "group_shares" in columns.values() else LAYOUT_2017
    reconciled = _carry_aggregates(records) if layout == LAYOUT_2026 else {}
    for record in records:
        record.pop("_row")
    # A day without buybacks is a valid report with no rows.
    frame = pd.DataFrame.from_records(records, columns=list(SCHEMA)) if records else empty_frame(SCHEMA)
    return finish(frame, SCHEMA, report_date, layout=layout, reconciled=reconciled)


def _find_header(rows: list[list[str]]) -> tuple[int, dict[int, str]]:
    """Index of the header row (first cell 'Company') and its columns' meanings by position."""
    for index, row in enumerate(rows):
        cells = [str(cell) for cell in row]
        if cells and _norm(cells[0]) == "company":
            return index, _columns(cells, index)
    raise MalformedFile(f"{NAME}: no header row starting with 'Company' in {len(rows)} rows")


def _columns(cells: list[str], index: int) -> dict[int, str]:
    """Meaning of each header cell; an unknown or repeated header, or a missing one, is a changed layout."""
    columns: dict[int, str] = {}
    for position, cell in enumerate(cells):
        if not cell.strip():
            continue
        meaning = _HEADER_MEANINGS.get(_norm(cell))
        if meaning is None or meaning in columns.values():
            what = "an unknown" if meaning is None else "a repeated"
            raise _changed(f"header row {index + 1} has {what} column {_shown(cell)!r}", cells)
        columns[position] = meaning
    missing = [meaning for meaning in _REQUIRED if meaning not in columns.values()]
    if missing:
        raise _changed(f"header row {index + 1} lacks column(s) {', '.join(missing)}", cells)
    return columns


def _changed(message: str, cells: Sequence[str]) -> MalformedFile:
    """A changed-layout error carrying the known headers and the ones found."""
    found = [_shown(cell) for cell in cells if cell.strip()]
    return MalformedFile(
        f"{NAME}: {message}", expected=KNOWN_HEADERS[LAYOUT_2026], found=found, layout=LAYOUT_2026
    )


def _shown(cell: str) -> str:
    """A header cell as one line."""
    return " ".join(cell.split())


def _is_text_row(row: list[str]) -> bool:
    """Notes, the '*' footnote and the disclaimer: text in the first column only, not a repurchase.

    A note may run on over several rows; a short lone name (a row cut after its company) is not a text row.
    """
    first = row[0]
    return bool(first) and not any(row[1:]) and (bool(_TEXT_ROW_RE.match(first)) or len(first.split()) > 8)


def _cells(row: list[str], columns: dict[int, str]) -> dict[str, str]:
    """The row's cells by meaning; data outside the header's columns is a changed layout."""
    stray = [cell for position, cell in enumerate(row) if cell and position not in columns]
    if stray:
        raise MalformedFile(f"data outside the header's columns: {stray!r}")
    return {meaning: row[position] if position < len(row) else "" for position, meaning in columns.items()}


def _printed_date(rows: list[list[str]]) -> date:
    """The 'Date Printed : dd/mm/yyyy' above the header (the report date, not the trade date)."""
    for cell in (cell for row in rows for cell in row):
        match = _PRINTED_RE.search(cell)
        if match:
            day, month, year = match.groups()
            try:
                return _date(year, month, day, "printed date")
            except MalformedFile as exc:
                raise MalformedFile(f"{NAME}: {exc}") from exc
    raise MalformedFile(f"{NAME}: no 'Date Printed : dd/mm/yyyy' above the header")


def _record(cells: dict[str, str], report_date: date) -> dict[str, Any]:
    """Convert one data row (cells by meaning) into a record of SCHEMA's columns."""
    if not cells["name"]:
        raise MalformedFile(f"blank company in a row with data: {list(cells.values())!r}")
    if not cells["sec_type"] or not cells["method"]:
        raise MalformedFile(f"blank security type or method of repurchase: {list(cells.values())!r}")
    high_currency, price_high = _required(
        parse_price(cells["price_high"]), "highest price", cells["price_high"]
    )
    # A blank (2026) or '-' (2017) lowest price means all shares were bought at the one price printed.
    low_currency, price_low = parse_price(cells["price_low"])
    if price_low is None:
        low_currency, price_low = high_currency, price_high
    if price_low > price_high:
        raise MalformedFile(
            f"lowest price {cells['price_low']!r} above highest price {cells['price_high']!r}"
        )
    total_currency, total_paid = _required(
        parse_price(cells["total_paid"]), "total paid", cells["total_paid"]
    )
    # Keep the total's currency when the cells disagree: the total is what the issuer paid.
    currency = total_currency or high_currency or low_currency
    notes: list[str] = []
    record: dict[str, Any] = {
        "report_date": report_date,
        "trade_date": _trade_date(cells["trade_date"], report_date),
        "code": norm_code(cells["code"]),
        "name": cells["name"],
        "shares": _count(cells["shares"], "number of shares repurchased", required=True),
        "price_high": price_high,
        "price_low": price_low,
        "currency": currency,
        "total_paid": total_paid,
        "method": " ".join(cells["method"].split()),
        "sec_type": " ".join(cells["sec_type"].split()),
    }
    for meaning in ("ytd_shares", *_AGGREGATES[:-1]):
        record[meaning] = _count(
            _noted(cells.get(meaning, ""), notes), meaning.replace("_", " "), required=False
        )
    for meaning in ("pct_of_issued", "mandate_pct"):
        record[meaning] = _percent(_noted(cells.get(meaning, ""), notes))
    if "mandate_total" in cells:  # 2026: the mandate columns are the cumulative figures
        record["ytd_shares"], record["pct_of_issued"] = record["mandate_total"], record["mandate_pct"]
    record["note"] = "; ".join(notes) or None
    return record


def _noted(raw: str, notes: list[str]) -> str:
    """A number cell, or "" when it holds a reference to the notes (kept in `notes`, never read as a number)."""
    if _NOTE_RE.match(raw):
        notes.append(" ".join(raw.split()))
        return ""
    return raw


def _carry_aggregates(records: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """Give every row of a same-day, same-currency group its last row's aggregates; check the group's total.

    Rows whose starred cells are all blank wait for the row that closes their group (same company, trade date
    and currency); that row's shares total must equal the sum of the group's rows, and cancellation plus
    treasury must equal it too. Returns the whole report's sums against its printed totals, for `doctor`.
    """
    pending: list[dict[str, Any]] = []
    rows_sum = printed = 0.0
    for record in records:
        pending.append(record)
        if all(record[meaning] is None for meaning in _AGGREGATES) and record["note"] is None:
            continue
        _close_group(pending)
        rows_sum += sum(r["shares"] for r in pending)
        printed += (
            record["group_shares"]
            if record["group_shares"] is not None
            else sum(r["shares"] for r in pending)
        )
        pending = []
    if pending:
        raise MalformedFile(
            f"{NAME}: sheet row {pending[0]['_row']}: no row with the group's aggregates follows "
            f"{pending[0]['name']} {pending[0]['trade_date']:%Y/%m/%d}"
        )
    return {"shares": (rows_sum, printed)}


def _close_group(group: list[dict[str, Any]]) -> None:
    """Check a group against its closing row's total and copy the aggregates to every row."""
    last = group[-1]
    identity = (last["code"], last["trade_date"], last["currency"])
    for record in group[:-1]:
        if (record["code"], record["trade_date"], record["currency"]) != identity:
            raise MalformedFile(
                f"{NAME}: sheet row {record['_row']}: starred aggregates are blank but the next row "
                f"is another company, day or currency"
            )
    shares = sum(r["shares"] for r in group)
    total = last["group_shares"]
    where = (
        f"{NAME}: sheet rows {group[0]['_row']}-{last['_row']} ({last['name']} {last['trade_date']:%Y/%m/%d})"
    )
    if total is not None and total != shares:
        raise MalformedFile(f"{where}: rows add up to {shares:,} shares but the total printed is {total:,}")
    split = [last[m] for m in ("for_cancellation", "for_treasury")]
    if total is not None and any(v is not None for v in split) and sum(v or 0 for v in split) != total:
        raise MalformedFile(
            f"{where}: cancellation {split[0] or 0:,} + treasury {split[1] or 0:,} is not the total {total:,}"
        )
    if total is not None:  # the report prints zero as "0" or leaves the cell blank
        last["for_cancellation"], last["for_treasury"] = split[0] or 0, split[1] or 0
    for record in group[:-1]:
        for meaning in (*_AGGREGATES, "ytd_shares", "pct_of_issued", "note"):
            record[meaning] = last[meaning]


def _trade_date(raw: str, report_date: date) -> date:
    """Trading date yyyy/mm/dd: a previous session, never after the printed date."""
    match = _TRADE_DATE_RE.match(raw)
    if not match:
        raise MalformedFile(f"trading date {raw!r} is not yyyy/mm/dd")
    year, month, day_of_month = match.groups()
    day = _date(year, month, day_of_month, "trading date")
    if day > report_date:
        raise MalformedFile(f"trading date {raw!r} after the printed date {report_date:%d/%m/%Y}")
    return day


def _date(year: str, month: str, day: str, what: str) -> date:
    """A calendar date from its digit groups; an impossible one (31/02) is malformed."""
    try:
        return date(int(year), int(month), int(day))
    except ValueError as exc:
        raise MalformedFile(f"impossible {what} {day}/{month}/{year}") from exc


def _required(price: tuple[str | None, float | None], what: str, raw: str) -> tuple[str | None, float]:
    """A parsed price cell that must carry a number."""
    currency, value = price
    if value is None:
        raise MalformedFile(f"missing {what} ({raw!r})")
    return currency, value


def _count(raw: str, what: str, *, required: bool) -> int | None:
    """A whole number of securities ('1,234,567'); None when absent and allowed to be."""
    value = parse_number(raw)
    if value is None:
        if required:
            raise MalformedFile(f"missing {what}")
        return None
    if value < 0 or not value.is_integer():
        raise MalformedFile(f"{what} {raw!r} is not a whole number")
    return int(value)


def _percent(raw: str) -> float | None:
    """The % of issued shares as printed ('1.93' = 1.93%); None when absent."""
    value = parse_number(raw)
    if value is not None and not 0 <= value <= 100:
        raise MalformedFile(f"percentage of issued shares {raw!r} outside 0..100")
    return value


def _norm(text: str) -> str:
    """Header text compared without whitespace, case-folded, without the aggregate star."""
    return "".join(text.split()).casefold().rstrip("*")


def paths(day: date) -> list[str]:
    """Path of the report printed on `day`."""
    return [f"/reports/sharerepur/documents/SRRPT{day:%Y%m%d}.xls"]


SOURCE = Source(
    name=NAME,
    title="HKEX share repurchase report (daily)",
    # Only www3.hkexnews.hk serves the report today; www and www1 answer 302 then 404 (data-formats.md §4a').
    base_setting="hkexnews_sdw_url",
    public_url="https://www3.hkexnews.hk",
    paths=paths,
    tables={"main": Table(SCHEMA, parse)},
    feeds={"buybacks": Feed(date_column="report_date")},
)
