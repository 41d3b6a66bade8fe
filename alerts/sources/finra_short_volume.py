"""`finra-short-volume`: FINRA Reg SHO daily short sale volume file CNMSshvol{YYYYMMDD}.txt (consolidated NMS).

The file is pipe-delimited: a header, one row per symbol, and a trailer line holding the row count. The ratio
short_volume / total_volume is short VOLUME (trades reported as short sales that day, market makers included),
not short interest, and total_volume is only what FINRA's facilities reported, not consolidated exchange volume.
"""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pandas as pd

from alerts.errors import MalformedFile
from alerts.sources.base import Feed, Source, Table, finish
from alerts.sources.common import decode_text, empty_frame, reject_error_page

NAME = "finra-short-volume"

SCHEMA: dict[str, str] = {
    "date": "datetime64[ns]",
    "symbol": "string",  # verbatim: "BRK/B", "AAICpB"
    "short_volume": "float64",  # shares; includes short_exempt_volume; newer files print fractions
    "short_exempt_volume": "float64",
    "total_volume": "float64",  # shares reported to FINRA facilities in regular hours
    "market": "string",  # facility codes as printed, e.g. "B,Q,N"
    "short_ratio": "float64",  # short_volume / total_volume (0..1); NaN when total_volume is 0
}

HEADER = "Date|Symbol|ShortVolume|ShortExemptVolume|TotalVolume|Market"
_NUM = r"(\d+(?:\.\d+)?)"
_ROW_RE = re.compile(rf"(\d{{8}})\|([^|]+)\|{_NUM}\|{_NUM}\|{_NUM}\|([^|]*)")
_TRAILER_RE = re.compile(r"\d+")


def parse(data: bytes) -> pd.DataFrame:
    """Parse one daily short sale volume file (header, rows, row-count trailer)."""
    rows = _rows(_lines(data))
    if not rows:
        return finish(empty_frame(SCHEMA), SCHEMA, None)
    raw_date, symbol, short, exempt, total, market = (list(col) for col in zip(*rows, strict=True))
    dates = sorted(set(raw_date))
    if len(dates) != 1:
        raise MalformedFile(f"{NAME}: rows carry {len(dates)} different dates {dates[:5]}")
    day = _day(dates[0])
    duplicated = pd.Index(symbol).duplicated()
    if duplicated.any():
        twice = sorted({name for name, dup in zip(symbol, duplicated, strict=True) if dup})
        raise MalformedFile(f"{NAME}: symbol(s) listed twice: {twice[:5]}")
    short_volume = np.array(short, dtype="float64")
    total_volume = np.array(total, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(total_volume > 0, short_volume / total_volume, np.nan)
    frame = pd.DataFrame(
        {
            "date": pd.Timestamp(day),
            "symbol": symbol,
            "short_volume": short_volume,
            "short_exempt_volume": np.array(exempt, dtype="float64"),
            "total_volume": total_volume,
            "market": market,
            "short_ratio": ratio,
        }
    )
    return finish(frame, SCHEMA, day)


def _lines(data: bytes) -> list[str]:
    """Decode, reject empty/HTML/garbage files, check the header; return header-less lines (trailer last)."""
    if not data.strip():
        raise MalformedFile(f"{NAME}: empty file ({len(data)} bytes)")
    if b"\x00" in data:
        raise MalformedFile(f"{NAME}: binary data (NUL bytes) instead of the text file")
    text = decode_text(data)
    reject_error_page(text, NAME)
    if text.lstrip().startswith("<"):
        raise MalformedFile(f"{NAME}: got HTML/XML ({text.lstrip()[:40]!r}) instead of the text file")
    lines = text.splitlines()  # CRLF (real files) and LF alike
    while lines and not lines[-1].strip():
        lines.pop()
    if lines[0].strip() != HEADER:
        raise MalformedFile(f"{NAME}: header {lines[0][:80]!r} is not the documented {HEADER!r}")
    return lines[1:]


def _rows(lines: list[str]) -> list[tuple[str, ...]]:
    """Check the trailer row count against the rows, then split every row (naming the first bad one)."""
    if not lines or not _TRAILER_RE.fullmatch(lines[-1].strip()):
        shown = lines[-1][:60] if lines else "nothing"
        raise MalformedFile(f"{NAME}: truncated: no row-count trailer line (file ends with {shown!r})")
    expected, body = int(lines[-1].strip()), lines[:-1]
    if expected != len(body):
        raise MalformedFile(f"{NAME}: truncated: trailer says {expected} rows, file has {len(body)}")
    matches = [_ROW_RE.fullmatch(line) for line in body]
    if not all(matches):
        number = next(i for i, match in enumerate(matches) if match is None)
        raise MalformedFile(
            f"{NAME}: line {number + 2}: not a Date|Symbol|numbers|Market row: {body[number]!r}"
        )
    return [match.groups() for match in matches if match is not None]


def _day(raw: str) -> date:
    """The rows' YYYYMMDD date."""
    try:
        return date(int(raw[:4]), int(raw[4:6]), int(raw[6:]))
    except ValueError as exc:
        raise MalformedFile(f"{NAME}: impossible date {raw!r}") from exc


def paths(day: date) -> list[str]:
    """Path of the consolidated NMS file for a trade date."""
    return [f"/equity/regsho/daily/CNMSshvol{day:%Y%m%d}.txt"]


SOURCE = Source(
    name=NAME,
    title="FINRA Reg SHO daily short sale volume (consolidated NMS)",
    base_setting="finra_url",
    public_url="https://cdn.finra.org",
    paths=paths,
    tables={"main": Table(SCHEMA, parse)},
    feeds={"finra": Feed()},
    calendar="XNYS",
)
