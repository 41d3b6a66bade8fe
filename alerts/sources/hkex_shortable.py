"""`hkex-shortable-list`: HKEX designated securities eligible for short selling (CSV, one file per revision).

HKEX revises the list quarterly and ad hoc (new listings, ETFs) and posts each revision as a CSV named by the date
it takes effect, under the Designated Securities Eligible for Short Selling page:
``/-/media/HKEX-Market/Services/Trading/Securities/Securities-Lists/Designated-Securities-Eligible-for-Short-Selling/
ds_list{YYYYMMDD}.csv``. How a URL maps to a date: the file for a date is the revision that takes effect on that
date, and it exists only for such dates (the list in effect on any other day is the latest earlier revision, which
the rule finds in history). Which dates will have a file is not known in advance, so the schedule
(config/sources.toml, ``dates = "revisions"``) polls every session's URL in short windows and treats a 404 as the
normal "no revision takes effect today", not as a late file. The file carries its own effective date in its
preamble and it must equal the date asked for (check_file_date).

The file name: two public scrapers fetch ``ds_list{YYYYMMDD}_c.csv`` and read Chinese names and types from it
(``_c`` is HKEX's suffix for the Chinese version, as in ``ListOfSecurities_c.xlsx``); the English list, whose
layout this parser reads, was saved by a public project as ``ds_list20230518.csv``, the unsuffixed name HKEX gives
its English files. The English name is inferred from those two facts, not read off the page (see
tests/fixtures/hkex-shortable-list/README.md).

Layout (a real file, effective 18/05/2023): three preamble lines (title, ``Effective date : 18/05/2023,``, a
note), a blank line, the header ``No.,Stock Code,Stock Short Name,Currency,Type,Exempt from Tick Rule,Remarks``,
then one line per security, every line ending in a comma (8 fields against 7 headers), codes not zero-padded,
``YES`` or blank for the tick-rule exemption. The file has no total; the "No." column numbering its rows 1..N
without a gap is the check that none is missing.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import date

import pandas as pd

from alerts.errors import MalformedFile
from alerts.sources.base import Feed, Source, Table, finish
from alerts.sources.common import decode_text, norm_code, reject_error_page

NAME = "hkex-shortable-list"
LAYOUT = "ds-list-2023"

SCHEMA: dict[str, str] = {
    "effective_date": "datetime64[ns]",
    "no": "Int64",
    "code": "string",
    "name": "string",
    "currency": "string",
    "type": "string",
    "tick_rule_exempt": "bool",
    "remarks": "string",
}

TITLE = "Designated Securities Eligible for Short Selling"
HEADER: tuple[str, ...] = (
    "No.",
    "Stock Code",
    "Stock Short Name",
    "Currency",
    "Type",
    "Exempt from Tick Rule",
    "Remarks",
)
_EFFECTIVE_RE = re.compile(r"Effective date\s*:\s*(\d{1,2})/(\d{1,2})/(\d{4})", re.IGNORECASE)
_COLUMNS = list(SCHEMA)
_Row = tuple[date, int, str, str, str, str, bool, str | None]


def parse(data: bytes) -> pd.DataFrame:
    """Parse one revision of the list: a row per designated security, with the revision's effective date."""
    lines = _lines(data)
    at = _header_index(lines)
    preamble = lines[:at]
    if not any(TITLE.lower() in line.lower() for line in preamble):
        raise MalformedFile(f"{NAME}: no title line naming the {TITLE} before the header", layout=LAYOUT)
    effective = _effective_date(preamble)
    found = _cells(lines[at])
    if tuple(found) != HEADER:
        raise MalformedFile(
            f"{NAME}: header {found!r} is not the documented {list(HEADER)!r}",
            expected=HEADER,
            found=found,
            layout=LAYOUT,
        )
    body = [(number, line) for number, line in enumerate(lines[at + 1 :], start=at + 2) if line.strip()]
    if not body:
        raise MalformedFile(f"{NAME}: header but no securities", layout=LAYOUT)
    frame = pd.DataFrame.from_records(list(_records(body, effective)), columns=_COLUMNS)
    last = _check_numbering(frame["no"].tolist(), [number for number, _ in body])
    duplicated = frame.loc[frame["code"].duplicated(), "code"].tolist()
    if duplicated:
        raise MalformedFile(f"{NAME}: stock code(s) listed twice: {duplicated[:5]}", layout=LAYOUT)
    return finish(frame, SCHEMA, effective, layout=LAYOUT, reconciled={"numbering": (len(frame), last)})


def _lines(data: bytes) -> list[str]:
    """Decode and split into lines; reject empty files and HTML served instead of the CSV."""
    text = decode_text(data).lstrip("\ufeff")
    if not text.strip():
        raise MalformedFile(f"{NAME}: empty file ({len(data)} bytes)")
    reject_error_page(text, NAME)
    if text.lstrip().startswith("<"):
        raise MalformedFile(f"{NAME}: got HTML/XML ({text.lstrip()[:40]!r}) instead of the CSV")
    return text.splitlines()


def _header_index(lines: list[str]) -> int:
    """Index of the header line: the first whose first cell is "No." (the preamble's length varies)."""
    for index, line in enumerate(lines[:20]):
        cells = _cells(line)
        if cells and cells[0] == HEADER[0]:
            return index
    raise MalformedFile(
        f"{NAME}: no header line starting {HEADER[0]!r} in the first 20 lines",
        expected=HEADER,
        found=_cells(next((line for line in lines if "," in line), "")),
        layout=LAYOUT,
    )


def _effective_date(preamble: list[str]) -> date:
    """The effective date the preamble states (``Effective date : 18/05/2023,``)."""
    for line in preamble:
        match = _EFFECTIVE_RE.search(line)
        if match:
            day, month, year = (int(part) for part in match.groups())
            try:
                return date(year, month, day)
            except ValueError as exc:
                raise MalformedFile(f"{NAME}: impossible effective date {match.group(0)!r}") from exc
    raise MalformedFile(f"{NAME}: no 'Effective date : dd/mm/yyyy' line before the header", layout=LAYOUT)


def _split(line: str) -> list[str]:
    """Split one CSV line strictly (quotes honoured, stray quotes rejected)."""
    try:
        return next(csv.reader([line], strict=True), [])
    except csv.Error as exc:
        raise MalformedFile(f"{NAME}: bad CSV ({exc}): {line!r}") from exc


def _cells(line: str) -> list[str]:
    """A line's cells, stripped, without the empty cell every line's trailing comma adds."""
    cells = [cell.strip() for cell in _split(line)]
    if len(cells) > len(HEADER) and not any(cells[len(HEADER) :]):
        cells = cells[: len(HEADER)]
    return cells


def _records(body: list[tuple[int, str]], effective: date) -> Iterator[_Row]:
    """Convert the security lines, naming the file line of the first bad one."""
    for number, line in body:
        try:
            yield _record(line, effective)
        except MalformedFile as exc:
            raise MalformedFile(f"{NAME}: line {number}: {exc}", layout=LAYOUT) from exc


def _record(line: str, effective: date) -> _Row:
    """Validate and convert one line: No., code, short name, currency, type, tick-rule exemption, remarks."""
    fields = _cells(line)
    if len(fields) != len(HEADER):
        raise MalformedFile(f"{len(fields)} fields instead of {len(HEADER)}: {line!r}")
    raw_no, raw_code, name, currency, kind, exempt, remarks = fields
    if not raw_no.isdigit():
        raise MalformedFile(f"No. {raw_no!r} is not a whole number")
    if not name or not currency or not kind:
        raise MalformedFile(f"blank name, currency or type: {line!r}")
    if exempt.upper() not in ("YES", ""):
        raise MalformedFile(f"'Exempt from Tick Rule' is {exempt!r}, not YES or blank")
    return (
        effective,
        int(raw_no),
        norm_code(raw_code),
        name,
        currency,
        kind,
        exempt.upper() == "YES",
        remarks or None,
    )


def _check_numbering(numbers: list[int], file_lines: list[int]) -> int:
    """The "No." column must run 1, 2, …, N: a gap or a repeat means a row is missing or doubled."""
    for position, (number, file_line) in enumerate(zip(numbers, file_lines, strict=True), start=1):
        if number != position:
            previous = numbers[position - 2] if position > 1 else 0
            raise MalformedFile(
                f"{NAME}: line {file_line}: No. jumps from {previous} to {number} "
                f"(the rows must be numbered 1..N without a gap)",
                layout=LAYOUT,
            )
    return numbers[-1]


def paths(day: date) -> list[str]:
    """Path of the revision taking effect on `day` (the English list; 404 when no revision starts that day)."""
    return [
        "/-/media/HKEX-Market/Services/Trading/Securities/Securities-Lists/"
        f"Designated-Securities-Eligible-for-Short-Selling/ds_list{day:%Y%m%d}.csv"
    ]


SOURCE = Source(
    name=NAME,
    title="HKEX designated securities eligible for short selling",
    base_setting="hkex_url",
    public_url="https://www.hkex.com.hk",
    paths=paths,
    tables={"main": Table(SCHEMA, parse)},
    feeds={"shortable": Feed(date_column="effective_date")},
    max_bytes=2 * 1024 * 1024,
)
