"""/export and /import: a chat's watchlist and recent alerts as CSV, and a watchlist read back from the same CSV.

The file is UTF-8 with a byte-order mark, so Excel opens Chinese names correctly. One row per watched stock
(section ``watch``) and one per alert (section ``alert``); /import reads only the ``watch`` rows (or, in a file
without a ``section`` column, every row's ``code``), so an export restores the watchlist it was taken from.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from alerts.model import Alert
from bot.render import alert_name, why_text

COLUMNS = ("section", "code", "name", "market", "rule", "trade_date", "severity", "why", "link")
EXPORT_DAYS = 90
MAX_IMPORT_BYTES = 64 * 1024  # a full 200-stock watchlist exports in a few KB; more is not a watchlist file
MAX_IMPORT_ROWS = (
    5000  # rows read at all (an export's alert rows included); the watch rows are capped by the store
)
MAX_TOKEN = 32  # characters of a code cell looked at (a code or a name, as /watch takes)
BOM = "\ufeff"
_US = re.compile(r"^[A-Z]{1,5}(?:[./][A-Z])?$")
# Spreadsheet formula triggers: a cell starting with one of these is run by Excel (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ImportRefused(ValueError):
    """The file as a whole cannot be read; `reason` is a catalogue key (import.bad_*), `detail` its value."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ImportRow:
    """One code cell to watch, with its line in the file (for the refusal list)."""

    line: int
    token: str


def market_of(code: str) -> str:
    """HK for 5-digit codes and MARKET-wide rows' own market, US for tickers."""
    return "US" if _US.match(code) else "HK"


def _cell(value: object) -> str:
    """A text cell that a spreadsheet shows as text, never runs as a formula."""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def export_csv(
    codes: Iterable[str], names: Mapping[str, str], alerts: Iterable[Alert], lang: str = "en"
) -> bytes:
    """The CSV document: the watchlist (sorted), then the alerts (newest first), UTF-8 with a BOM."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for code in codes:
        writer.writerow(["watch", code, _cell(names.get(code, "")), market_of(code), "", "", "", "", ""])
    ordered = sorted(alerts, key=lambda a: (a.trade_date, a.rule, a.code), reverse=True)
    for alert in ordered:
        writer.writerow(
            [
                "alert",
                alert.code,
                _cell(alert_name(alert, lang)),
                alert.market,
                alert.rule,
                alert.trade_date.isoformat(),
                alert.severity,
                _cell(why_text(alert, lang)),
                alert.links[0] if alert.links else "",
            ]
        )
    return (BOM + out.getvalue()).encode("utf-8")


def read_import(data: bytes) -> list[ImportRow]:
    """The code cells of a watchlist CSV (capped, in file order); ImportRefused when the file cannot be one."""
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportRefused("import.bad_size", str(MAX_IMPORT_BYTES // 1024))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRefused("import.bad_encoding") from None
    if "\x00" in text:
        raise ImportRefused("import.bad_encoding")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [cell.strip().lower() for cell in next(reader, [])]
    except csv.Error:
        raise ImportRefused("import.bad_csv") from None
    if "code" not in header:
        raise ImportRefused("import.bad_header")
    code_at, section_at = header.index("code"), header.index("section") if "section" in header else None
    rows: list[ImportRow] = []
    try:
        for count, row in enumerate(reader, start=1):
            if count > MAX_IMPORT_ROWS:
                raise ImportRefused("import.bad_rows", str(MAX_IMPORT_ROWS))
            section = (
                row[section_at].strip().lower() if section_at is not None and section_at < len(row) else None
            )
            if section_at is not None and section != "watch":
                continue  # an export's alert rows (and blank lines)
            token = row[code_at].strip()[:MAX_TOKEN] if code_at < len(row) else ""
            if token:
                rows.append(ImportRow(reader.line_num, token))
    except csv.Error:
        raise ImportRefused("import.bad_csv") from None
    return rows
