"""SEC EDGAR discovery (data-formats.md §8), pure parsers: daily form index, Atom feeds, ticker map, filing folders.

Every function here is pure (bytes in, frame/dict/path out). The multi-step fetch of one day's Form 4 filings
(index → each filing's index.json → its XML), with EDGAR's declared User-Agent and ≤ 10 requests per second, is
alerts.edgar.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime

import lxml.etree
import pandas as pd

from alerts.errors import MalformedFile
from alerts.sources.base import finish
from alerts.sources.common import decode_text, empty_frame, reject_error_page, xml_root

NAME = "sec-edgar"

INDEX_SCHEMA: dict[str, str] = {
    "form_type": "string",
    "company": "string",
    "cik": "string",  # no leading zeros
    "date_filed": "datetime64[ns]",
    "file_name": "string",  # edgar/data/{cik}/{accession}.txt
    "accession": "string",  # 0000899243-20-008928
}

ATOM_SCHEMA: dict[str, str] = {
    "accession": "string",
    "form_type": "string",
    "title": "string",
    "cik": "string",  # no leading zeros
    "role": "string",  # Reporting | Issuer (getcurrent); <NA> in a getcompany feed
    "updated": "datetime64[ns, UTC]",
    "link": "string",
}

FORM4_TYPES: tuple[str, ...] = ("4", "4/A")
_INDEX_LABELS: tuple[str, ...] = ("Form Type", "Company Name", "CIK", "Date Filed", "File Name")
# CIK, date and file name are read from the right so an over-long company name cannot shift them.
_INDEX_TAIL_RE = re.compile(r"\s(\d{1,10})\s+(\d{8}|\d{4}-\d{2}-\d{2})\s+(edgar/\S+)\s*$")
_FORM_OVERRUN_RE = re.compile(r"^(\S+(?: \S+)*) {2,}(\S.*)$")
_INDEX_FILE_RE = re.compile(r"^edgar/data/(\d{1,10})/(\d{10}-\d{2}-\d{6})\.txt$")
_RECEIVED_RE = re.compile(r"^Last Data Received:\s*(.+?)\s*$", re.M)
_ATOM = "{http://www.w3.org/2005/Atom}"
# "4 - CHASE ADAM (0001254843) (Reporting)" and the double-spaced "4  - Apple Inc.  (0000320193)  (Reporting)".
_TITLE_RE = re.compile(
    r"^\s*(?P<form>\S.*?)\s+-\s+(?P<name>.*?)\s*\((?P<cik>\d{1,10})\)\s*\((?P<role>[^()]+)\)\s*$"
)
_ACCESSION_RE = re.compile(r"(\d{10}-\d{2}-\d{6})")
_ARCHIVE = "/Archives/edgar/data"


# --- daily form index ---------------------------------------------------------------------------------------


def daily_index_path(day: date) -> str:
    """Path of the daily index by form type, e.g. /Archives/edgar/daily-index/2020/QTR1/form.20200318.idx."""
    quarter = (day.month - 1) // 3 + 1
    return f"/Archives/edgar/daily-index/{day:%Y}/QTR{quarter}/form.{day:%Y%m%d}.idx"


def parse_daily_index(data: bytes) -> pd.DataFrame:
    """Parse `form.{YYYYMMDD}.idx` into one row per filing; a header-only index is a valid empty day."""
    text = decode_text(data)
    if not text.strip():
        raise MalformedFile(f"{NAME}: empty daily index ({len(data)} bytes)")
    lines = text.splitlines()
    header_at = _index_header(lines, text)
    company_at = lines[header_at].index("Company Name")
    records = []
    for number, line in enumerate(lines[header_at + 2 :], start=header_at + 3):
        if line.strip():
            records.append(_index_row(line, company_at, number))
    frame = (
        pd.DataFrame.from_records(records, columns=list(INDEX_SCHEMA))
        if records
        else empty_frame(INDEX_SCHEMA)
    )
    return finish(frame, INDEX_SCHEMA, _received(text))


def form4_filings(index_frame: pd.DataFrame) -> pd.DataFrame:
    """Keep the Form 4 and 4/A rows of a parsed daily index.

    A filing is listed once per filer (issuer and each reporting owner, each under its own CIK folder), so
    2,040 Form 4 rows of 2020-03-18 are 974 filings: pass the result to `dedupe_accessions` before fetching.
    """
    return index_frame[index_frame["form_type"].isin(FORM4_TYPES)].reset_index(drop=True)


def _index_header(lines: list[str], text: str) -> int:
    """Line number of the 'Form Type … File Name' header, which the dashed separator must follow."""
    for number, line in enumerate(lines[:-1]):
        if line.startswith("Form Type") and all(label in line for label in _INDEX_LABELS):
            starts = [line.index(label) for label in _INDEX_LABELS]
            if starts != sorted(starts):
                raise MalformedFile(f"{NAME}: index header columns out of order: {line!r}")
            separator = lines[number + 1].strip()
            if not separator or set(separator) != {"-"}:
                raise MalformedFile(f"{NAME}: index header is not followed by the dashed line")
            return number
    reject_error_page(text, NAME)
    raise MalformedFile(f"{NAME}: no 'Form Type … File Name' header: not a daily form index")


def _index_row(line: str, company_at: int, number: int) -> tuple[str, str, str, date, str, str]:
    tail = _INDEX_TAIL_RE.search(line)
    if tail is None or tail.start() < company_at:
        raise MalformedFile(f"{NAME}: line {number} is not an index row: {line.rstrip()[:100]!r}")
    if line[company_at - 1] == " ":
        form_type, company = line[:company_at].strip(), line[company_at : tail.start()].strip()
    else:
        # A form type longer than its column ("SCHEDULE 13D/A", 14 characters, since December 2024) pushes the
        # company name right: the form type then ends at the first run of two spaces (form types have single ones).
        overrun = _FORM_OVERRUN_RE.match(line[: tail.start()])
        if overrun is None:
            raise MalformedFile(f"{NAME}: line {number} is not an index row: {line.rstrip()[:100]!r}")
        form_type, company = overrun.group(1), overrun.group(2).strip()
    raw_cik, raw_date, file_name = tail.groups()
    found = _INDEX_FILE_RE.match(file_name)
    if not form_type or not company or found is None:
        raise MalformedFile(
            f"{NAME}: line {number}: missing form type/company or odd file name: {line.rstrip()!r}"
        )
    try:
        filed = date.fromisoformat(
            raw_date if "-" in raw_date else f"{raw_date[:4]}-{raw_date[4:6]}-{raw_date[6:]}"
        )
    except ValueError:
        raise MalformedFile(f"{NAME}: line {number}: impossible date {raw_date!r}") from None
    return form_type, company, str(int(raw_cik)), filed, file_name, found.group(2)


def _received(text: str) -> date | None:
    """The 'Last Data Received: Mar 18, 2020' date (also 'March 29, 2025'); None when absent."""
    match = _RECEIVED_RE.search(text)
    if match is None:
        return None
    for fmt in ("%b %d, %Y", "%B %d, %Y"):
        try:
            return datetime.strptime(match.group(1), fmt).date()  # noqa: DTZ007 - a calendar date, no time
        except ValueError:
            continue
    raise MalformedFile(f"{NAME}: 'Last Data Received' {match.group(1)!r} is not a date")


# --- Atom feeds ---------------------------------------------------------------------------------------------


def current_feed_path(count: int = 40) -> str:
    """Path (with query) of the 'latest Form 4 filings' Atom feed."""
    if count <= 0:
        raise ValueError(f"count must be positive, got {count}")
    return f"/cgi-bin/browse-edgar?action=getcurrent&type=4&owner=include&count={count}&output=atom"


def parse_atom(data: bytes) -> pd.DataFrame:
    """Parse a getcurrent or getcompany Atom feed into one row per entry (getcurrent lists each filing twice)."""
    root = xml_root(data, "feed", NAME)
    company_cik = _cik_or_none(root.findtext(f"{_ATOM}company-info/{_ATOM}cik"))
    records = [
        _atom_entry(entry, company_cik, number)
        for number, entry in enumerate(root.iter(f"{_ATOM}entry"), start=1)
    ]
    frame = (
        pd.DataFrame.from_records(records, columns=list(ATOM_SCHEMA)) if records else empty_frame(ATOM_SCHEMA)
    )
    return finish(frame, ATOM_SCHEMA, None)


def dedupe_accessions(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per accession, the first listed (feeds: the Reporting entry; daily index: the first filer)."""
    return frame.drop_duplicates(subset="accession", keep="first").reset_index(drop=True)


def _atom_entry(entry: lxml.etree._Element, company_cik: str | None, number: int) -> dict[str, object]:
    title = " ".join((entry.findtext(f"{_ATOM}title") or "").split()) or None
    match = _TITLE_RE.match(title or "")
    category = entry.find(f"{_ATOM}category")
    form_type = match.group("form") if match else (category.get("term") if category is not None else None)
    accession = _entry_accession(entry)
    if accession is None:
        raise MalformedFile(f"{NAME}: feed entry {number} carries no accession number")
    raw_updated = (entry.findtext(f"{_ATOM}updated") or "").strip()
    try:
        updated = pd.Timestamp(raw_updated)
    except ValueError:
        raise MalformedFile(
            f"{NAME}: feed entry {number} <updated> {raw_updated!r} is not a timestamp"
        ) from None
    if pd.isna(updated) or updated.tzinfo is None:
        raise MalformedFile(f"{NAME}: feed entry {number} <updated> {raw_updated!r} has no UTC offset")
    links = entry.findall(f"{_ATOM}link")
    alternate = next((link for link in links if link.get("rel", "alternate") == "alternate"), None)
    return {
        "accession": accession,
        "form_type": form_type,
        "title": title,
        "cik": _cik_or_none(match.group("cik")) if match else company_cik,
        "role": match.group("role").strip() if match else None,
        "updated": updated.tz_convert("UTC"),
        "link": alternate.get("href") if alternate is not None else None,
    }


def _entry_accession(entry: lxml.etree._Element) -> str | None:
    """Accession from <id> (urn:…accession-number=…), else <content><accession-number>, else the summary."""
    for text in (
        entry.findtext(f"{_ATOM}id"),
        entry.findtext(f"{_ATOM}content/{_ATOM}accession-number"),
        entry.findtext(f"{_ATOM}summary"),
    ):
        found = _ACCESSION_RE.search(text or "")
        if found:
            return found.group(1)
    return None


def _cik_or_none(raw: str | None) -> str | None:
    text = (raw or "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise MalformedFile(f"{NAME}: CIK {text!r} is not a number")
    return str(int(text))


# --- ticker map ---------------------------------------------------------------------------------------------


def parse_company_tickers(data: bytes) -> dict[str, str]:
    """Parse SEC `company_tickers.json` into ticker → CIK (string, no leading zeros)."""
    try:
        table = json.loads(decode_text(data))
    except json.JSONDecodeError as exc:
        reject_error_page(decode_text(data), NAME)
        raise MalformedFile(f"{NAME}: company_tickers.json is not JSON ({exc})") from None
    if not isinstance(table, dict) or not table:
        raise MalformedFile(f"{NAME}: company_tickers.json is not a non-empty object of entries")
    out: dict[str, str] = {}
    for key, entry in table.items():
        if not isinstance(entry, dict) or "ticker" not in entry or "cik_str" not in entry:
            raise MalformedFile(f"{NAME}: company_tickers.json entry {key!r} lacks ticker/cik_str: {entry!r}")
        ticker, cik = str(entry["ticker"]).strip().upper(), str(entry["cik_str"]).strip()
        if not ticker or not cik.isdigit():
            raise MalformedFile(f"{NAME}: company_tickers.json entry {key!r} has a bad ticker/CIK: {entry!r}")
        out.setdefault(ticker, str(int(cik)))
    return out


def fill_tickers(frame: pd.DataFrame, by_cik: dict[str, str]) -> pd.DataFrame:
    """`frame` with missing `ticker` cells filled from `by_cik` (CIK → ticker) by `issuer_cik`."""
    if frame.empty or not by_cik or not {"ticker", "issuer_cik"} <= set(frame.columns):
        return frame
    missing = frame["ticker"].isna()
    if not missing.any():
        return frame
    out = frame.copy()
    out.loc[missing, "ticker"] = out.loc[missing, "issuer_cik"].map(by_cik)
    out["ticker"] = out["ticker"].astype("string")
    return out


# --- filing folders -----------------------------------------------------------------------------------------


def filing_folder(file_name: str) -> str:
    """Folder of a filing from its index file name: edgar/data/1770787/0000899243-20-008928.txt →
    /Archives/edgar/data/1770787/000089924320008928/."""
    found = _INDEX_FILE_RE.match(file_name.strip().lstrip("/"))
    if found is None:
        raise ValueError(f"not an EDGAR index file name: {file_name!r}")
    return accession_folder(found.group(1), found.group(2))


def accession_folder(cik: str, accession: str) -> str:
    """Folder of a filing from the filer CIK and the accession number (dashed or not)."""
    digits = accession.replace("-", "")
    if not cik.isdigit() or len(digits) != 18 or not digits.isdigit():
        raise ValueError(f"not a CIK/accession pair: {cik!r}, {accession!r}")
    return f"{_ARCHIVE}/{int(cik)}/{digits}/"


def filing_index_path(file_name: str) -> str:
    """Path of the filing folder's JSON listing (index.json)."""
    return filing_folder(file_name) + "index.json"


def filing_xml_path(file_name: str, xml_name: str) -> str:
    """Path of a document (the Form 4 XML) inside the filing folder."""
    return filing_folder(file_name) + xml_name


def parse_filing_index_json(data: bytes) -> str | None:
    """Name of the filing's primary XML in a folder's index.json; None when it lists no such XML."""
    try:
        listing = json.loads(decode_text(data))
        items = listing["directory"]["item"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        reject_error_page(decode_text(data), NAME)
        raise MalformedFile(f"{NAME}: not an EDGAR folder index.json ({type(exc).__name__}: {exc})") from None
    if not isinstance(items, list):
        raise MalformedFile(f"{NAME}: index.json directory.item is not a list")
    for item in items:
        name = str(item.get("name", "")) if isinstance(item, dict) else ""
        lowered = name.lower()
        # Skip the rendered copy folder (xslF345X05/…), the -index files and XBRL's FilingSummary.
        if (
            lowered.endswith(".xml")
            and "-index" not in lowered
            and not lowered.startswith("xsl")
            and "/" not in name
            and lowered != "filingsummary.xml"
            and item.get("type") != "folder.gif"
        ):
            return name
    return None
