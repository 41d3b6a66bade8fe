"""`hkex-buybacks`: HKEXnews daily Share Repurchase Report SRRPT{YYYYMMDD}.xls."""

from __future__ import annotations

import io
import re
from datetime import date
from typing import Any

import pandas as pd
import xlrd

from alerts.errors import MalformedFile
from alerts.sources.base import Source, Table, finish
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
    "ytd_shares": "Int64",
    "pct_of_issued": "float64",
    "sec_type": "string",
}


SHEET = "SBNReport"
# Header texts as printed (cells hold embedded newlines; compared with whitespace collapsed, case-folded).
HEADERS: tuple[str, ...] = (
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
    "% of number of shares in issue at time ordinary resolution passed acquired on the Exchange since date"
    " of resolution",
)
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_PRINTED_RE = re.compile(r"Date\s+Printed\s*:\s*(\d{2})/(\d{2})/(\d{4})", re.IGNORECASE)
_END_RE = re.compile(r"^\*+\s*End\s+Of\s+Report\s*\*+$", re.IGNORECASE)
_TRADE_DATE_RE = re.compile(r"^(\d{4})/(\d{2})/(\d{2})$")


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
    """Parse the sheet's rows: printed date, header check, data rows up to the end marker."""
    header_at = _find_header(rows)
    report_date = _printed_date(rows[:header_at])
    records: list[dict[str, Any]] = []
    for index in range(header_at + 1, len(rows)):
        row = _padded(rows[index])
        if any(_END_RE.match(cell) for cell in row):
            break
        if not any(row):
            continue
        try:
            records.append(_record(row, report_date))
        except MalformedFile as exc:
            raise MalformedFile(f"{NAME}: sheet row {index + 1}: {exc}") from exc
    else:
        raise MalformedFile(f"{NAME}: no '*** End Of Report ***' marker: truncated report")
    # A day without buybacks is a valid report with no rows.
    frame = pd.DataFrame.from_records(records, columns=list(SCHEMA)) if records else empty_frame(SCHEMA)
    return finish(frame, SCHEMA, report_date)


def _find_header(rows: list[list[str]]) -> int:
    """Index of the header row (first cell 'Company'); its 11 cells must be the documented headers."""
    for index, row in enumerate(rows):
        if row and _norm(row[0]) == _norm(HEADERS[0]):
            found = [_norm(cell) for cell in row]
            expected = [_norm(text) for text in HEADERS]
            if found[: len(expected)] != expected or any(found[len(expected) :]):
                shown = [" ".join(cell.split()) for cell in row]
                raise MalformedFile(f"{NAME}: header row {index + 1} changed: {shown!r}")
            return index
    raise MalformedFile(f"{NAME}: no header row starting with 'Company' in {len(rows)} rows")


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


def _record(row: list[str], report_date: date) -> dict[str, Any]:
    """Convert one data row into a record of SCHEMA's columns."""
    if any(row[len(HEADERS) :]):
        raise MalformedFile(f"data beyond the {len(HEADERS)} documented columns: {row!r}")
    company, code, sec_type, trade, shares, high, low, total, method, ytd, pct = row[: len(HEADERS)]
    if not company:
        raise MalformedFile(f"blank company in a row with data: {row!r}")
    if not sec_type or not method:
        raise MalformedFile(f"blank security type or method of purchase: {row!r}")
    trade_date = _trade_date(trade, report_date)
    high_currency, price_high = _required(parse_price(high), "highest price", high)
    # '-' as lowest price means all shares were bought at the one price in the highest-price column.
    low_currency, price_low = parse_price(low)
    if price_low is None:
        low_currency, price_low = high_currency, price_high
    if price_low > price_high:
        raise MalformedFile(f"lowest price {low!r} above highest price {high!r}")
    total_currency, total_paid = _required(parse_price(total), "total paid", total)
    # Keep the total's currency when the cells disagree: the total is what the issuer paid. Mixed currencies
    # are not seen in the samples; prices then stay as printed, in their own currency.
    currency = total_currency or high_currency or low_currency
    return {
        "report_date": report_date,
        "trade_date": trade_date,
        "code": norm_code(code),
        "name": company,
        "shares": _count(shares, "number of securities purchased", required=True),
        "price_high": price_high,
        "price_low": price_low,
        "currency": currency,
        "total_paid": total_paid,
        "method": method,
        "ytd_shares": _count(ytd, "year-to-date securities purchased", required=False),
        "pct_of_issued": _percent(pct),
        "sec_type": sec_type,
    }


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
    """Whitespace-collapsed, case-folded text for comparing headers."""
    return " ".join(text.split()).casefold()


def _padded(row: list[str]) -> list[str]:
    """The row's cells stripped, padded to the documented width (hand-built row lists may be short)."""
    cells = [str(cell).strip() for cell in row]
    return cells + [""] * (len(HEADERS) - len(cells))


def paths(day: date) -> list[str]:
    """Path of the report printed on `day`."""
    return [f"/reports/sharerepur/documents/SRRPT{day:%Y%m%d}.xls"]


SOURCE = Source(
    name=NAME,
    title="HKEX share repurchase report (daily)",
    base_setting="hkexnews_url",
    paths=paths,
    tables={"main": Table(SCHEMA, parse)},
)
