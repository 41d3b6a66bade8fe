"""`sfc-short-positions`: SFC weekly aggregated reportable short positions CSV."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import date

import pandas as pd

from alerts.errors import MalformedFile
from alerts.sources.base import Feed, Source, Table, finish
from alerts.sources.common import decode_text, link_counters, norm_code, parse_number, reject_error_page

NAME = "sfc-short-positions"

SCHEMA: dict[str, str] = {
    "date": "datetime64[ns]",
    "code": "string",
    "name": "string",
    "short_shares": "Int64",
    "short_value_hkd": "float64",
    "non_hkd": "bool",
    "hkd_code": "string",
}


HEADER: tuple[str, ...] = (
    "Date",
    "Stock Code",
    "Stock Name",
    "Aggregated Reportable Short Positions (Shares)",
    "Aggregated Reportable Short Positions (HK$)",
)
_DATE_RE = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$")
_COLUMNS = ["date", "code", "name", "short_shares", "short_value_hkd"]


def parse(data: bytes) -> pd.DataFrame:
    """Parse the weekly CSV."""
    lines = _lines(data)
    header = _split(lines[0])
    if [field.strip() for field in header] != list(HEADER):
        raise MalformedFile(f"{NAME}: header {header!r} is not the documented {list(HEADER)!r}")
    # SFC lists every specified share, zeros included, so a list without rows is never a real publication.
    if len(lines) == 1:
        raise MalformedFile(f"{NAME}: header but no data rows")
    frame = pd.DataFrame.from_records(_records(lines[1:]), columns=_COLUMNS)
    dates = sorted(set(frame["date"]))
    if len(dates) != 1:
        shown = [f"{day:%d/%m/%Y}" for day in dates]
        raise MalformedFile(f"{NAME}: rows carry {len(dates)} different dates {shown}")
    duplicated = frame.loc[frame["code"].duplicated(), "code"].tolist()
    if duplicated:
        raise MalformedFile(f"{NAME}: stock code(s) listed twice: {duplicated[:5]}")
    return finish(link_counters(frame), SCHEMA, dates[0])


def _lines(data: bytes) -> list[str]:
    """Decode and split into lines; reject empty files and HTML served instead of the CSV."""
    text = decode_text(data)
    if not text.strip():
        raise MalformedFile(f"{NAME}: empty file ({len(data)} bytes)")
    reject_error_page(text, NAME)
    if text.lstrip().startswith("<"):
        raise MalformedFile(f"{NAME}: got HTML/XML ({text.lstrip()[:40]!r}) instead of the CSV")
    lines = text.splitlines()
    while not lines[-1].strip():
        lines.pop()
    return lines


def _split(line: str) -> list[str]:
    """Split one CSV line strictly (quotes honoured, stray quotes rejected)."""
    try:
        return next(csv.reader([line], strict=True))
    except csv.Error as exc:
        raise MalformedFile(f"{NAME}: bad CSV ({exc}): {line!r}") from exc


def _records(lines: list[str]) -> Iterator[tuple[date, str, str, int, float]]:
    """Convert the data lines, naming the file line of the first bad one."""
    for number, line in enumerate(lines, start=2):
        try:
            yield _record(line)
        except MalformedFile as exc:
            raise MalformedFile(f"{NAME}: line {number}: {exc}") from exc


def _record(line: str) -> tuple[date, str, str, int, float]:
    """Validate and convert one data line: date, code, name, shares, HK$ value."""
    fields = [field.strip() for field in _split(line)]
    if len(fields) != len(HEADER):
        raise MalformedFile(f"{len(fields)} fields instead of {len(HEADER)}: {line!r}")
    raw_date, raw_code, name, raw_shares, raw_value = fields
    match = _DATE_RE.match(raw_date)
    if not match:
        raise MalformedFile(f"date {raw_date!r} is not dd/mm/yyyy")
    try:
        day = date(int(match.group(3)), int(match.group(2)), int(match.group(1)))
    except ValueError as exc:
        raise MalformedFile(f"impossible date {raw_date!r}") from exc
    if not name:
        raise MalformedFile("empty stock name")
    shares = _required_number(raw_shares, "shares")
    if not shares.is_integer():
        raise MalformedFile(f"fractional share count {raw_shares!r}")
    return day, norm_code(raw_code), name, int(shares), _required_number(raw_value, "HK$ value")


def _required_number(raw: str, what: str) -> float:
    """A non-negative number that must be present (blank or '-' means the line was cut or garbled)."""
    value = parse_number(raw)
    if value is None or value < 0:
        raise MalformedFile(f"{what} {raw!r} is not a non-negative number")
    return value


def paths(day: date) -> list[str]:
    """Path of the CSV for a position date."""
    return [f"/-/media/EN/pdf/spr/{day:%Y/%m/%d}/Short_Position_Reporting_Aggregated_Data_{day:%Y%m%d}.csv"]


SOURCE = Source(
    name=NAME,
    title="SFC aggregated reportable short positions (weekly)",
    base_setting="sfc_url",
    public_url="https://www.sfc.hk",
    paths=paths,
    tables={"main": Table(SCHEMA, parse)},
    feeds={"sfc": Feed()},
)
